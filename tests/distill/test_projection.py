"""Span distillation across tokenizers (distilqa.distill.projection): identity when nothing differs, the gold
span carried exactly between really different tokenizers, and the distill / cache-teacher commands."""

from __future__ import annotations

import json
import string

import numpy as np
import pytest
import torch

from conftest import build_bert, squad_file
from distilqa.cli import main
from distilqa.distill.losses import distillation_loss
from distilqa.distill.projection import NO_MASS, SpanProjector, project_window, window_layouts
from distilqa.qa.data import load_examples
from distilqa.qa.features import FeatureParams, build_train_features, trim_padding_collator

PARAMS = FeatureParams(max_seq_length=96, doc_stride=32, max_query_length=24)  # several windows per context


@pytest.fixture(scope="module")
def char_tokenizer(tmp_path_factory):
    """A WordPiece tokenizer that knows only single characters: every word is cut into letters."""
    from transformers import BertTokenizerFast

    folder = tmp_path_factory.mktemp("chars")
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *[f"##{c}" for c in chars]]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizerFast(
        vocab=str(folder / "vocab.txt"), do_lower_case=True, model_max_length=512
    ).save_pretrained(folder)
    return BertTokenizerFast.from_pretrained(folder)


@pytest.fixture(scope="module")
def byte_tokenizer(tmp_path_factory):
    """A byte-level BPE tokenizer in RoBERTa's layout (<s> q </s></s> c </s>, spaces inside tokens, trimmed
    offsets), trained on the demo data: another family altogether."""
    from tokenizers import ByteLevelBPETokenizer
    from tokenizers.processors import RobertaProcessing
    from transformers import RobertaTokenizerFast

    texts = []
    for name in ("train.json", "dev.json"):
        for article in json.loads(squad_file(name).read_text(encoding="utf-8"))["data"]:
            for paragraph in article["paragraphs"]:
                texts.append(paragraph["context"])
                texts += [qa["question"] for qa in paragraph["qas"]]
    bpe = ByteLevelBPETokenizer(add_prefix_space=True, trim_offsets=True)
    bpe.train_from_iterator(texts, vocab_size=600, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.post_processor = RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=True, add_prefix_space=True)
    folder = tmp_path_factory.mktemp("bytes")
    bpe.save(str(folder / "tokenizer.json"))
    return RobertaTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"), model_max_length=512)


def _loss(student, teacher, temperature):
    zero = torch.zeros(student.shape[0], dtype=torch.long)
    return distillation_loss(
        student[:, 0], student[:, 1], teacher[:, 0], teacher[:, 1], zero, zero, temperature
    )


def test_same_tokenizer_is_the_identity_and_the_loss_is_unchanged(tiny_tokenizer):
    """Each position gets its own teacher logit shifted by one constant per window and side, so the loss over any
    batch width (the collator cuts the common padding) equals the same-tokenizer path."""
    examples = load_examples(squad_file("dev.json"))
    features = build_train_features(examples, tiny_tokenizer, PARAMS)
    projector = SpanProjector(tiny_tokenizer, tiny_tokenizer, examples, features, PARAMS, temperature=2.0)
    assert len(projector.teacher) == len(features) > len(examples)  # several windows for some contexts
    rng = np.random.default_rng(0)
    teacher = rng.normal(0, 3, size=(len(features), 2, PARAMS.max_seq_length)).astype(np.float32)
    rows = np.arange(len(features))
    projected = projector.project(rows, rows, teacher)
    shift = projected - teacher
    assert np.abs(shift - shift[:, :, :1]).max() < 1e-4
    for first in range(0, len(features), 8):
        batch = trim_padding_collator([features[int(i)] for i in rows[first : first + 8]])
        width = batch["input_ids"].shape[1]
        chosen = slice(first, first + 8)
        student = torch.randn(len(batch["input_ids"]), 2, width)
        for temperature in (1.0, 2.0):
            p = SpanProjector.__new__(SpanProjector)
            p.__dict__.update(projector.__dict__, temperature=temperature)
            ours = _loss(
                student, torch.from_numpy(p.project(rows[chosen], rows, teacher)[:, :, :width]), temperature
            )
            today = _loss(student, torch.from_numpy(teacher[chosen, :, :width]), temperature)
            torch.testing.assert_close(ours.loss, today.loss, rtol=1e-5, atol=1e-6)


def _point_mass(layouts, features, big=30.0):
    """Teacher logits with (almost) all mass on each window's gold start and end (the null position when the
    answer is not in the window), as the features label them."""
    logits = np.zeros((len(layouts), 2, layouts.role.shape[1]), dtype=np.float32)
    rows = np.arange(len(layouts))
    logits[rows, 0, np.asarray(features["start_positions"])] = big
    logits[rows, 1, np.asarray(features["end_positions"])] = big
    return logits


@pytest.mark.parametrize("teacher_kind", ["chars", "bytes"])
def test_a_point_mass_on_the_gold_span_lands_on_the_students_gold_span(
    teacher_kind, tiny_tokenizer, char_tokenizer, byte_tokenizer
):
    """Oracle on the package's real dev file: a teacher sure of the gold span, tokenized really differently
    (letters; byte-level BPE), projects onto the student's gold span in every window that holds the answer, onto
    the null position in every window that holds none of it, and every question gets its gold span somewhere."""
    teacher_tokenizer = char_tokenizer if teacher_kind == "chars" else byte_tokenizer
    examples = load_examples(squad_file("dev.json"))
    student = build_train_features(examples, tiny_tokenizer, PARAMS)
    teacher = build_train_features(examples, teacher_tokenizer, PARAMS)
    projector = SpanProjector(teacher_tokenizer, tiny_tokenizer, examples, student, PARAMS, temperature=1.0)
    assert len(projector.teacher) == len(teacher) and len(teacher) != len(student)
    logits = _point_mass(projector.teacher, teacher)
    rows = np.arange(len(student))
    projected = projector.project(rows, np.arange(len(teacher)), logits)
    gold = np.stack([student["start_positions"], student["end_positions"]], axis=1)
    found = np.argmax(projected, axis=2)
    layouts = projector.student
    answered = set()
    for row in rows:
        example = examples[int(layouts.example[row])]
        a = example["answers"]["answer_start"][0]
        b = a + len(example["answers"]["text"][0])
        context = np.flatnonzero(layouts.role[row] == 1)
        low, high = layouts.start[row, context[0]], layouts.end[row, context[-1]]
        if gold[row, 0] > 0:
            assert found[row].tolist() == gold[row].tolist(), (row, example["question"])
            answered.add(int(layouts.example[row]))
        elif b <= low or a >= high:
            assert found[row].tolist() == [0, 0], (row, example["question"])
    assert answered == set(range(len(examples)))


def test_mass_outside_the_window_goes_to_null_and_windows_are_merged_by_the_best_mass():
    """Hand-computed: a student window of 4 context tokens covered by two teacher windows."""
    C, S, P = 1, 2, 3
    # student: [CLS] [SEP] t0 t1 t2 t3 [SEP]; context characters 0-4, 5-9, 10-14, 15-19
    s_role = np.array([S, S, C, C, C, C, S])
    s_start = np.array([0, 0, 0, 5, 10, 15, 0])
    s_end = np.array([0, 0, 4, 9, 14, 19, 0])
    # teacher A holds characters 0-14 (3 tokens), teacher B 10-24 (3 tokens, the last outside the student window)
    t_role = np.array([S, S, C, C, C, S, P])
    a = (t_role, np.array([0, 0, 0, 5, 10, 0, 0]), np.array([0, 0, 4, 9, 14, 0, 0]))
    b = (t_role, np.array([0, 0, 10, 15, 20, 0, 0]), np.array([0, 0, 14, 19, 24, 0, 0]))
    logit = np.log
    # A: start mass null .1, t0 .2, t1 .3, t2 .4 ; B: null .1, t2 .6, t3 .1, outside .2 (padding: not normalised)
    la = np.array([[logit(0.1), -np.inf, logit(0.2), logit(0.3), logit(0.4), -np.inf, 5.0]] * 2)
    lb = np.array([[logit(0.1), -np.inf, logit(0.6), logit(0.1), logit(0.2), -np.inf, 5.0]] * 2)
    out = project_window((s_role, s_start, s_end), [(*a, la), (*b, lb)], temperature=1.0)
    # Neither holds all of the student's characters 0-19: each token takes the larger mass (t2: max(.4, .6)),
    # null the smaller not-here mass: min(A: .1 + 0 outside, B: .1 + .2 outside) = .1
    expected = np.array([0.1, 0.0, 0.2, 0.3, 0.6, 0.1, 0.0])
    alone = project_window((s_role, s_start, s_end), [(*a, la)], temperature=1.0)
    assert np.exp(alone[0, 4]) == pytest.approx(0.4) and alone[0, 5] == NO_MASS  # t3: A does not reach it
    probs = np.exp(out[0].astype(np.float64))
    probs[out[0] == NO_MASS] = 0.0
    np.testing.assert_allclose(probs, expected, rtol=1e-6, atol=1e-12)
    assert (
        out[0, 1] == NO_MASS and out[0, 6] == NO_MASS
    )  # the second [SEP] has no teacher counterpart with mass


def test_layouts_match_the_training_features(byte_tokenizer):
    examples = load_examples(squad_file("dev.json"))
    features = build_train_features(examples, byte_tokenizer, PARAMS)
    layouts = window_layouts(byte_tokenizer, examples, PARAMS)
    assert np.array_equal(layouts.inputs["input_ids"], np.asarray(features["input_ids"]))
    assert set(np.unique(layouts.role)) == {0, 1, 2, 3}


# --------------------------------------------------------------------------------------------------- commands


@pytest.fixture(scope="module")
def char_teacher(tmp_path_factory, char_tokenizer):
    return build_bert(tmp_path_factory.mktemp("char-teacher") / "bert", char_tokenizer)


def distill_argv(teacher, student, out, *extra):
    return ["distill", "--teacher", str(teacher), "--student", str(student), "--train_file",
            str(squad_file("dev.json")), "--output_dir", str(out), "--max_steps", "2", "--max_train_samples", "8",
            "--per_device_train_batch_size", "4", "--max_seq_length", "96", "--doc_stride", "32",
            "--max_query_length", "24", "--use_cpu", "true", "--report_to", "none", "--disable_tqdm", "true",
            *extra]  # fmt: skip


def test_distill_across_tokenizers_online_and_cached(char_teacher, tiny_bert_path, tmp_path, capsys):
    assert main(distill_argv(char_teacher, tiny_bert_path, tmp_path / "online", "--logging_steps", "1")) == 0
    printed = capsys.readouterr().out
    assert "tokenize differently" in printed and "character offsets" in printed
    cache = tmp_path / "cache"
    argv = distill_argv(char_teacher, tiny_bert_path, tmp_path / "cached", "--teacher_cache", str(cache))
    assert main(argv) == 0
    manifest = json.loads((cache / "manifest.json").read_text())
    assert manifest["components"]["projection"]["temperature"] == 2.0
    capsys.readouterr()
    assert (
        main(distill_argv(char_teacher, tiny_bert_path, tmp_path / "cached1", "--teacher_cache", str(cache)))
        == 0
    )
    assert "valid" in capsys.readouterr().out  # same inputs: the projected rows are reused
    again = distill_argv(char_teacher, tiny_bert_path, tmp_path / "cached2", "--teacher_cache", str(cache),
                         "--temperature", "3")  # fmt: skip
    assert main(again) == 0
    assert (
        "projection (temperature 2.0 -> 3.0" in capsys.readouterr().out
    )  # the projection depends on T: rebuilt


def test_cross_tokenizer_refusals(char_teacher, tiny_bert_path, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(distill_argv(char_teacher, tiny_bert_path, out, "--require_same_tokenizer", "true")) == 2
    err = capsys.readouterr().err.strip()
    assert "do not share a tokenizer" in err and len(err.splitlines()) == 1
    assert main(distill_argv(char_teacher, tiny_bert_path, out, "--alpha_hidden", "1")) == 2
    err = capsys.readouterr().err.strip()
    assert "alpha_hidden > 0" in err and "one tokenizer" in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_the_online_projection_equals_the_cached_rows(char_teacher, char_tokenizer, tiny_tokenizer):
    """The online teacher (per batch, its own windows of the batch's examples) gives the rows the cache stores."""
    from distilqa.distill.projection import ProjectedTeacher
    from distilqa.infra.models import load_qa_model

    examples = load_examples(squad_file("dev.json"), limit=12)
    features = build_train_features(examples, tiny_tokenizer, PARAMS)
    projector = SpanProjector(char_tokenizer, tiny_tokenizer, examples, features, PARAMS, temperature=2.0)
    model = load_qa_model(str(char_teacher), require_qa_head=True).eval()
    runner = ProjectedTeacher(
        model, projector, ["input_ids", "attention_mask", "token_type_ids"], batch_size=3
    )
    everything = runner(np.arange(len(features))).numpy()
    for rows in ([3, 0, 7], [len(features) - 1]):
        torch.testing.assert_close(
            runner(np.array(rows)), torch.from_numpy(everything[rows]), rtol=1e-4, atol=1e-4
        )
    assert np.isfinite(everything).all() and (everything[:, :, 0] > NO_MASS).all()


def test_null_margin_term_across_tokenizers(char_teacher, tiny_bert_path, tmp_path, capsys):
    """--alpha_null reads the margin of the projected teacher (log-masses, -1e4 where it has none)."""
    argv = distill_argv(
        char_teacher, tiny_bert_path, tmp_path / "v2", "--logging_steps", "1", "--alpha_null", "1"
    )
    assert main(argv) == 0
    logged = [line for line in capsys.readouterr().out.splitlines() if "'loss_null'" in line]
    assert len(logged) == 2 and all("nan" not in line for line in logged)
