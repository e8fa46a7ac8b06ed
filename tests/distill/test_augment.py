"""Teacher-labelled question variants: neighbours, replacement, teacher labels, the written file, the command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from distilqa.cli import main
from distilqa.distill.augment import (
    AugmentConfig,
    NeighbourTable,
    _match_case,
    augment_examples,
    keep_confident,
    question_variants,
    to_squad_json,
)
from distilqa.errors import InputError
from distilqa.qa.data import SquadExamples, load_examples

WORDS = (
    "the a of in at by near was is who which when where what how built painted planted fed river stream mill village "
    "lighthouse engineer cape old new oak trees water city town tall stands metres year"
).split()


@pytest.fixture(scope="module")
def word_tokenizer(tmp_path_factory):
    """An uncased WordPiece tokenizer over a fixed list of whole words (independent of any corpus)."""
    import string

    from transformers import BertTokenizerFast

    folder = tmp_path_factory.mktemp("words")
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *[f"##{c}" for c in chars], *WORDS]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    return BertTokenizerFast(vocab=str(folder / "vocab.txt"), do_lower_case=True)


@pytest.fixture(scope="module")
def embeddings(word_tokenizer):
    """Random embeddings in which "river" and "stream" are each other's nearest words."""
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(len(word_tokenizer), 16)).astype(np.float32)
    vocab = word_tokenizer.get_vocab()
    matrix[vocab["stream"]] = matrix[vocab["river"]] + 0.01 * rng.normal(size=16)
    return matrix


@pytest.fixture(scope="module")
def table(word_tokenizer, embeddings):
    return NeighbourTable(word_tokenizer, embeddings, k=3)


def test_neighbours_are_nearest_whole_words_never_the_word_itself(table, word_tokenizer, embeddings):
    assert table("river")[0] == "stream" and table("stream")[0] == "river"
    vocab = word_tokenizer.get_vocab()
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    for word in ("river", "mill", "village"):
        got = table(word)
        assert len(got) == 3 and word not in got
        assert all(
            w.isalpha() and not w.startswith("##") and w not in word_tokenizer.all_special_tokens for w in got
        )
        sims = [float(unit[vocab[word]] @ unit[vocab[w]]) for w in got]
        assert sims == sorted(sims, reverse=True)
        # no whole word outside the list is nearer than the last one listed
        others = [t for t in table.words if t != word and t not in got]
        assert max(float(unit[vocab[word]] @ unit[vocab[t]]) for t in others) <= sims[-1] + 1e-6


def test_words_map_to_vocabulary_entries_case_insensitively_for_an_uncased_tokenizer(table):
    assert table.key("River") == "river"
    assert table.key("zzzqqq") is None  # several word pieces: not replaceable


def test_byte_level_bpe_vocabularies_work_too(tmp_path):
    """RoBERTa-style tokenizers mark word starts ("Ġcity"): those entries are the candidates, not the bare pieces."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    corpus = ["the river ran past the old mill and the stream ran past the village"] * 20
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus, vocab_size=300, min_frequency=1, special_tokens=["<s>", "</s>", "<pad>"])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    matrix = np.random.default_rng(0).normal(size=(len(tokenizer), 8)).astype(np.float32)
    table = NeighbourTable(tokenizer, matrix, k=2)
    assert {"river", "stream", "village", "mill"} <= set(table.words)
    assert table.key("river") == "river" and table.key("zzqq") is None
    assert all(w.isalpha() for w in table.words) and all(w.isalpha() for w in table("river"))
    variant = question_variants("Which river?", table, 1, 1.0, np.random.default_rng(0))[0]
    assert (
        variant.startswith("Which ") and variant.endswith("?") and variant.split()[1][:-1] in table("river")
    )


def test_match_case():
    assert _match_case("stream", "River") == "Stream"
    assert _match_case("stream", "RIVER") == "STREAM"
    assert _match_case("stream", "river") == "stream"
    assert _match_case("a", "I") == "A"


def test_every_replaceable_word_changes_when_replace_prob_is_one(table):
    question = "Which River, near zzzqqq, fed the mill?"
    variants = question_variants(question, table, copies=3, replace_prob=1.0, rng=np.random.default_rng(1))
    assert 1 <= len(variants) <= 3 and len(set(variants)) == len(variants) and question not in variants
    original = question.split()
    for variant in variants:
        words = variant.split()
        assert (
            len(words) == len(original) and words[3] == "zzzqqq," and variant.endswith("?")
        )  # the rest stays
        for old, new in zip(original, words, strict=True):
            old, new = old.strip(",?"), new.strip(",?")
            if table.key(old) is not None:
                assert new.lower() in table(table.key(old)) and new[0].isupper() == old[0].isupper()


def test_no_replaceable_word_gives_no_variant(table):
    assert (
        question_variants("zzzqqq 1871?", table, copies=4, replace_prob=1.0, rng=np.random.default_rng(0))
        == []
    )


def test_variants_depend_on_the_seed_only(table):
    question = "Who planted new oak trees near the old mill in the village?"
    make = lambda seed: question_variants(question, table, 4, 0.3, np.random.default_rng(seed))  # noqa: E731
    assert make(3) == make(3)
    assert make(3) != make(4)


def test_config_is_validated():
    for bad in (
        {"copies": 0},
        {"replace_prob": 0.0},
        {"replace_prob": 1.5},
        {"neighbours": 0},
        {"min_probability": 1.0},
    ):
        with pytest.raises(InputError):
            AugmentConfig(**bad)


def _examples(version_2=False):
    context = "The lighthouse at Cape Verlin was built in 1871 by the engineer Tomas Erdi near the old mill."
    rows = [
        {"id": "q1", "title": "Cape", "context": context, "question": "Who built the lighthouse near the mill?", "answers": {"text": ["Tomas Erdi"], "answer_start": [context.index("Tomas")]}},
        {"id": "q2", "title": "Cape", "context": context, "question": "When was the lighthouse built?", "answers": {"text": ["1871"], "answer_start": [context.index("1871")]}},
    ]  # fmt: skip
    if version_2:
        rows.append(
            {
                "id": "q3",
                "title": "Cape",
                "context": context,
                "question": "Who painted the lighthouse?",
                "answers": {"text": [], "answer_start": []},
            }
        )
    return SquadExamples(rows, version_2, "test")


@pytest.fixture(scope="module")
def teacher(tiny_bert_path):
    from distilqa.qa.features import FeatureParams
    from distilqa.qa.predictor import QAPredictor

    return QAPredictor.from_pretrained(tiny_bert_path, params=FeatureParams(64, 16, 32))


def test_variants_are_answered_by_the_teacher_and_round_trip_through_squad_json(teacher, table, tmp_path):
    examples = _examples()
    augmented, summary = augment_examples(
        examples, teacher, table, AugmentConfig(copies=3, seed=5), progress=False
    )
    assert augmented.rows[:2] == examples.rows  # originals first, gold answers untouched
    variants = augmented.rows[2:]
    assert summary["variants made"] == summary["variants kept"] == len(variants) > 0
    assert {v["augmented_from"] for v in variants} <= {"q1", "q2"}
    direct = teacher.predict_examples(
        SquadExamples([{**v, "answers": {"text": [], "answer_start": []}} for v in variants]), progress=False
    )
    for v in variants:
        source = next(r for r in examples if r["id"] == v["augmented_from"])
        assert (
            v["id"].startswith(source["id"] + "-aug")
            and v["question"] != source["question"]
            and v["context"] == source["context"]
        )
        (text,), (start,) = v["answers"]["text"], v["answers"]["answer_start"]
        assert text == direct.predictions[v["id"]] and v["context"][start : start + len(text)] == text
        assert 0.0 < v["teacher_probability"] <= 1.0
    path = tmp_path / "aug.json"
    path.write_text(json.dumps(to_squad_json(augmented)))
    loaded = load_examples(path, check_offsets="error")
    assert not loaded.version_2
    assert sorted(loaded.ids) == sorted(augmented.ids)
    by_id = {r["id"]: r for r in loaded}
    assert all(
        by_id[r["id"]]["answers"] == r["answers"] and by_id[r["id"]]["question"] == r["question"]
        for r in augmented
    )


def _everything_and_median(teacher, table):
    """The two questions with 3 variants each (seed 5), and the median teacher probability of the variants."""
    everything, _ = augment_examples(
        _examples(), teacher, table, AugmentConfig(copies=3, seed=5), progress=False
    )
    probabilities = sorted(r["teacher_probability"] for r in everything.rows[2:])
    return everything, probabilities[len(probabilities) // 2]


def test_min_probability_and_include_original(teacher, table):
    examples = _examples()
    everything, cut = _everything_and_median(teacher, table)
    kept, summary = augment_examples(
        examples,
        teacher,
        table,
        AugmentConfig(copies=3, seed=5, min_probability=cut, include_original=False),
        progress=False,
    )
    assert all(r["teacher_probability"] >= cut for r in kept)
    assert [r["id"] for r in kept] == [
        r["id"] for r in everything.rows[2:] if r["teacher_probability"] >= cut
    ]
    assert summary["variants made"] == len(everything) - 2 and summary["rows written"] == len(kept)


def test_keep_confident_filters_a_written_file_as_min_probability_would(teacher, table):
    everything, cut = _everything_and_median(teacher, table)
    filtered, _ = augment_examples(
        _examples(), teacher, table, AugmentConfig(copies=3, seed=5, min_probability=cut), progress=False
    )
    written = json.loads(json.dumps(to_squad_json(everything)))
    kept = keep_confident(written, cut)
    assert kept == json.loads(json.dumps(to_squad_json(filtered)))
    assert 2 < sum(len(p["qas"]) for a in kept["data"] for p in a["paragraphs"]) < len(everything)
    assert keep_confident(written, 0.0) == written
    with pytest.raises(InputError, match="min_probability"):
        keep_confident(written, 1.0)
    # a variant that no teacher labelled cannot be filtered: one clear error, not a KeyError
    qa = {"id": "q-aug1", "question": "x", "answers": [], "augmented_from": "q"}
    bare = {"data": [{"title": "t", "paragraphs": [{"context": "c", "qas": [qa]}]}]}
    with pytest.raises(InputError, match="'q-aug1' has no teacher_probability"):
        keep_confident(bare, 0.5)


def test_squad_2_variants_may_be_unanswerable_and_the_file_says_v2(tiny_bert_path, table, tmp_path):
    from distilqa.qa.features import FeatureParams
    from distilqa.qa.predictor import PredictOptions, QAPredictor

    teacher = QAPredictor.from_pretrained(tiny_bert_path, params=FeatureParams(64, 16, 32))
    examples = _examples(version_2=True)
    # a threshold far below any score difference: the teacher answers "" for every variant
    augmented, summary = augment_examples(
        examples,
        teacher,
        table,
        AugmentConfig(copies=2, seed=1),
        options=PredictOptions(null_threshold=-1e9),
        progress=False,
    )
    assert summary["unanswerable variants"] == summary["variants kept"] > 0
    document = to_squad_json(augmented)
    assert document["version"] == "v2.0"
    path = tmp_path / "aug.json"
    path.write_text(json.dumps(document))
    loaded = load_examples(path)
    assert loaded.version_2 and len(loaded) == len(augmented)
    assert sum(not r["answers"]["text"] for r in loaded) == 1 + summary["unanswerable variants"]


def test_command_writes_a_training_file_and_is_deterministic(tiny_bert_path, tiny_squad, tmp_path, capsys):
    argv = ["augment", "--teacher", str(tiny_bert_path), "--data", str(tiny_squad), "--copies", "2", "--max-seq-length", "64", "--doc-stride", "16", "--max-query-length", "32", "--no-progress"]  # fmt: skip
    assert main([*argv, "--output", str(tmp_path / "a.json")]) == 0
    assert main([*argv, "--output", str(tmp_path / "b.json")]) == 0
    assert "variants kept" in capsys.readouterr().err
    assert (tmp_path / "a.json").read_text() == (tmp_path / "b.json").read_text()
    original, augmented = load_examples(tiny_squad), load_examples(tmp_path / "a.json")
    assert set(original.ids) < set(augmented.ids)
    assert len(augmented) <= 3 * len(original)
    assert not list(tmp_path.glob(".*.tmp"))


def test_squad_1_variants_without_a_span_are_dropped(table):
    """A SQuAD 1.1 file must not gain unanswerable questions (that would make it SQuAD 2.0 on loading)."""
    from distilqa.qa.postprocess import PostprocessResult

    class NoSpan:
        def predict_examples(self, examples, **kwargs):
            return PostprocessResult({r["id"]: "" for r in examples}, {r["id"]: [] for r in examples})

    augmented, summary = augment_examples(
        _examples(), NoSpan(), table, AugmentConfig(copies=2), progress=False
    )
    assert summary["variants made"] > 0 and summary["variants kept"] == 0
    assert augmented.ids == ["q1", "q2"] and not augmented.version_2
