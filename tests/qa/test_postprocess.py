"""Tests for distilqa.qa.postprocess: the vectorised version against the plain-loop oracle, hand-built cases, errors."""

from __future__ import annotations

import numpy as np
import pytest
from postprocess_oracle import reference_postprocess

from distilqa.errors import InputError
from distilqa.qa.data import SquadExamples
from distilqa.qa.postprocess import PostprocessResult, offsets_array, postprocess_predictions

WORDS = ["alpha", "beta", "gamma", "delta", "é", "zeta", "theta", "iota", "kappa", "lambda", "mu"]


def random_batch(rng: np.random.Generator, n_examples: int, length: int, ties: bool = False):
    """Examples with 0-3 overlapping windows each (shuffled), some windows without context, random logits."""
    examples, example_ids, rows = [], [], []
    for e in range(n_examples):
        words = rng.choice(WORDS, size=int(rng.integers(5, 80)))
        context = " ".join(words)
        spans, pos = [], 0
        for word in words:
            spans.append([pos, pos + len(word)])
            pos += len(word) + 1
        qid = f"q{e}"
        examples.append({"id": qid, "context": context, "question": "?"})
        question_len = int(rng.integers(1, 6))
        room = length - question_len - 2
        n_windows = int(rng.choice([0, 1, 1, 1, 2, 3]))
        for w in range(n_windows):
            row = [[-1, -1]] * length
            if rng.random() > 0.1:  # one in ten windows has no context token at all
                first = min(w * max(room // 2, 1), max(len(spans) - 1, 0))
                chunk = spans[first : first + room]
                row = [[-1, -1]] * (question_len + 2) + chunk
                row = (row + [[-1, -1]] * length)[:length]
            rows.append(row)
            example_ids.append(qid)
    n = len(rows)
    order = rng.permutation(n)
    offsets = np.array(rows, dtype=np.int64).reshape(n, length, 2)[order]
    example_ids = [example_ids[i] for i in order]
    start = rng.normal(size=(n, length)).astype(np.float32) * 3
    end = rng.normal(size=(n, length)).astype(np.float32) * 3
    if ties:  # few distinct values: exact ties in top-k selection, in scores and against the null score
        start, end = np.round(start / 2), np.round(end / 2)
        start[:, 0] = np.where(rng.random(n) < 0.5, 0.0, -0.0)
    return examples, example_ids, offsets, start, end


def assert_same(got: PostprocessResult, want: PostprocessResult) -> None:
    assert got.predictions == want.predictions
    assert list(got.nbest) == list(want.nbest)
    for qid, entries in want.nbest.items():
        mine = got.nbest[qid]
        assert [(e["text"], e["start"], e["end"]) for e in mine] == [
            (e["text"], e["start"], e["end"]) for e in entries
        ]
        for key in ("probability", "start_logit", "end_logit"):
            np.testing.assert_allclose(
                [e[key] for e in mine], [e[key] for e in entries], rtol=1e-6, atol=1e-6
            )
    for mine, theirs in ((got.null_odds, want.null_odds), (got.scores, want.scores)):
        assert list(mine) == list(theirs)
        np.testing.assert_allclose(list(mine.values()), list(theirs.values()), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("version_2", [False, True])
@pytest.mark.parametrize("seed", range(12))
def test_matches_loop_oracle_on_random_logits(seed, version_2):
    rng = np.random.default_rng(seed)
    length = int(rng.choice([8, 24, 48]))
    batch = random_batch(rng, n_examples=int(rng.integers(1, 40)), length=length, ties=seed % 3 == 0)
    n_best = int(rng.choice([1, 2, 5, 20]))
    max_answer_length = int(rng.choice([1, 3, 30]))
    threshold = float(rng.choice([-2.0, 0.0, 1.5]))
    options = dict(
        n_best=n_best, max_answer_length=max_answer_length, version_2=version_2, null_threshold=threshold
    )
    got = postprocess_predictions(*batch, **options)
    assert_same(got, reference_postprocess(*batch, **options))
    for entries in got.nbest.values():
        assert 1 <= len(entries) <= n_best
        assert sum(e["probability"] for e in entries) == pytest.approx(1.0)


def one_window(start: list[float], end: list[float], offsets: list[list[int]], context: str, **options):
    examples = [{"id": "q", "context": context}]
    arrays = np.array([offsets]), np.array([start], dtype=np.float32), np.array([end], dtype=np.float32)
    return postprocess_predictions(examples, ["q"], *arrays, **options)


# "[CLS] who ? [SEP] the cat sat [SEP]": context tokens 4..6
OFFSETS = [[-1, -1], [-1, -1], [-1, -1], [-1, -1], [0, 3], [4, 7], [8, 11], [-1, -1]]
CONTEXT = "the cat sat"


def test_span_length_limit_and_order():
    start = [0, 0, 0, 0, 9, 1, 0, 0]
    end = [0, 0, 0, 0, 1, 0, 9, 0]
    assert one_window(start, end, OFFSETS, CONTEXT).predictions["q"] == "the cat sat"
    assert one_window(start, end, OFFSETS, CONTEXT, max_answer_length=2).predictions["q"] == "the"
    # the best end comes before the best start: that pair is skipped
    assert (
        one_window([0, 0, 0, 0, 0, 0, 9, 0], [0, 0, 0, 0, 9, 0, 1, 0], OFFSETS, CONTEXT).predictions["q"]
        == "sat"
    )


def test_non_context_tokens_are_never_answers():
    start = [9, 9, 9, 9, 1, 0, 0, 9]
    end = [9, 9, 9, 9, 0, 2, 0, 9]
    res = one_window(start, end, OFFSETS, CONTEXT, n_best=20)
    assert res.predictions["q"] == "the cat"
    assert all(e["start"] >= 0 for e in res.nbest["q"])
    # with n_best=4 only question / special tokens are in the top 4: nothing valid, empty answer
    res = one_window(start, end, OFFSETS, CONTEXT, n_best=4)
    assert res.predictions["q"] == "" and res.scores["q"] == 0.0
    assert res.nbest["q"] == [
        {"text": "", "probability": 1.0, "start_logit": 0.0, "end_logit": 0.0, "start": -1, "end": -1}
    ]


def test_best_span_over_windows_and_min_null():
    examples = [{"id": "q", "context": CONTEXT}]
    offsets = np.array([OFFSETS, OFFSETS])
    start = np.array([[3, 0, 0, 0, 2, 0, 0, 0], [1, 0, 0, 0, 0, 0, 4, 0]], dtype=np.float32)
    end = np.array([[3, 0, 0, 0, 2, 0, 0, 0], [1, 0, 0, 0, 0, 0, 4, 0]], dtype=np.float32)
    res = postprocess_predictions(examples, ["q", "q"], offsets, start, end, version_2=True)
    assert res.predictions["q"] == "sat" and res.scores["q"] == 8.0
    assert res.null_odds["q"] == 2.0 - 8.0  # the null score is the MIN over windows (2), not the max (6)
    assert res.nbest["q"][0]["text"] == "sat"
    null = [e for e in res.nbest["q"] if e["start"] == -1]
    assert null == [
        {
            "text": "",
            "probability": null[0]["probability"],
            "start_logit": 1.0,
            "end_logit": 1.0,
            "start": -1,
            "end": -1,
        }
    ]


def test_version_2_threshold():
    start = [5, 0, 0, 0, 4, 0, 0, 0]
    end = [5, 0, 0, 0, 4, 0, 0, 0]
    res = one_window(start, end, OFFSETS, CONTEXT, version_2=True)
    assert res.predictions["q"] == "" and res.null_odds["q"] == 2.0 and res.scores["q"] == 10.0
    assert res.nbest["q"][0]["text"] == "" and res.nbest["q"][1]["text"] == "the"
    res = one_window(start, end, OFFSETS, CONTEXT, version_2=True, null_threshold=2.0)
    assert res.predictions["q"] == "the" and res.scores["q"] == 8.0
    # a null entry below the n_best cut is left out of the list
    res = one_window(
        [-9, 0, 0, 0, 4, 0, 0, 0], [-9, 0, 0, 0, 4, 3, 2, 0], OFFSETS, CONTEXT, version_2=True, n_best=2
    )
    assert [e["text"] for e in res.nbest["q"]] == ["the", "the cat"]


def test_examples_without_windows_and_squad_examples_input():
    examples = SquadExamples([{"id": "a", "context": CONTEXT}, {"id": "b", "context": "x"}])
    start = np.array([[0, 0, 0, 0, 0, 3, 0, 0]], dtype=np.float32)
    res = postprocess_predictions(examples, ["a"], np.array([OFFSETS]), start, start, version_2=True)
    assert res.predictions == {"a": "cat", "b": ""}
    assert res.null_odds["b"] == 0.0 and res.nbest["b"][0]["probability"] == 1.0


def test_validation_errors():
    args = ([{"id": "q", "context": CONTEXT}], ["q"], np.array([OFFSETS]), np.zeros((1, 8)), np.zeros((1, 8)))
    with pytest.raises(InputError, match="n_best must be >= 1, got 0; pass --n_best"):
        postprocess_predictions(*args, n_best=0)
    with pytest.raises(InputError, match="max_answer_length must be >= 1, got -1"):
        postprocess_predictions(*args, max_answer_length=-1)
    with pytest.raises(InputError, match=r"start_logits \(1, 8\) and end_logits \(1, 7\)"):
        postprocess_predictions(*args[:4], np.zeros((1, 7)))
    with pytest.raises(InputError, match=r"offsets \(1, 7, 2\)"):
        postprocess_predictions(args[0], args[1], np.array([OFFSETS[:7]]), *args[3:])
    with pytest.raises(InputError, match=r"example_ids \(2,\)"):
        postprocess_predictions(args[0], ["q", "q"], *args[2:])
    with pytest.raises(InputError, match="'zz' is not among the 1 examples"):
        postprocess_predictions(args[0], ["zz"], *args[2:])
    with pytest.raises(InputError, match="NaN or inf"):
        postprocess_predictions(*args[:3], np.full((1, 8), np.nan), args[4])


def test_offsets_array_pads_and_maps_none():
    out = offsets_array([[[0, 1], None, [2, 5]], [[0, 3]], []])
    assert out.shape == (3, 3, 2) and out.dtype == np.int64
    assert out[0].tolist() == [[0, 1], [-1, -1], [2, 5]]
    assert out[1].tolist() == [[0, 3], [-1, -1], [-1, -1]] and (out[2] == -1).all()
    with pytest.raises(InputError, match="offset_mapping row 0"):
        offsets_array([[[0, 1, 2]]])


def test_input_types_and_empty_batch():
    examples = [{"id": "q", "context": CONTEXT}]
    start = np.array([[0, 0, 0, 0, 0, 3, 0, 0]], dtype=np.float64)
    res = postprocess_predictions(examples, ["q"], np.array([OFFSETS], dtype=np.int32), start, start.tolist())
    assert res.predictions == {"q": "cat"} and isinstance(res.scores["q"], float)
    with pytest.raises(InputError, match="offsets must be an integer array"):
        postprocess_predictions(examples, ["q"], np.array([OFFSETS], dtype=np.float32), start, start)
    empty = postprocess_predictions(
        [], [], np.zeros((0, 8, 2), dtype=np.int64), np.zeros((0, 8)), np.zeros((0, 8))
    )
    assert empty.predictions == {} and empty.nbest == {} and empty.scores == {}


def test_datasets_columns():
    datasets = pytest.importorskip("datasets")
    examples = datasets.Dataset.from_list([{"id": "q", "context": CONTEXT}])
    features = datasets.Dataset.from_list([{"example_id": "q", "offset_mapping": OFFSETS}])
    start = np.array([[0, 0, 0, 0, 0, 0, 3, 0]], dtype=np.float32)
    offsets = offsets_array(features["offset_mapping"])
    res = postprocess_predictions(examples, features["example_id"], offsets, start, start)
    assert res.predictions == {"q": "sat"}
