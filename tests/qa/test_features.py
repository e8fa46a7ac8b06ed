from __future__ import annotations

import unicodedata

import numpy as np
import pytest

from conftest import squad_file
from distilqa.errors import InputError
from distilqa.qa.data import load_examples
from distilqa.qa.features import (
    FeatureParams,
    build_eval_features,
    build_train_features,
    validate_feature_params,
)


def test_train_positions_point_at_the_answer(tiny_tokenizer, tiny_squad):
    examples = load_examples(tiny_squad)
    features = build_train_features(examples, tiny_tokenizer, FeatureParams(64, 16, 16))
    assert "token_type_ids" in features.column_names
    long_windows = [f for f in features if f["example_index"] == 2]
    assert len(long_windows) > 3  # the long context needs several windows
    labelled = [f for f in long_windows if f["start_positions"] != 0]
    assert labelled, "some window must contain the answer"
    for feature in features:
        if feature["start_positions"] == 0:
            assert feature["end_positions"] == 0
            continue
        text = tiny_tokenizer.decode(
            feature["input_ids"][feature["start_positions"] : feature["end_positions"] + 1]
        )
        gold = examples[feature["example_index"]]["answers"]["text"][0]
        assert text.replace(" ", "") == gold.lower().replace("é", "e").replace(" ", "")


def test_eval_offsets_mark_only_context(tiny_tokenizer, tiny_squad):
    examples = load_examples(tiny_squad)
    features = build_eval_features(examples, tiny_tokenizer, FeatureParams(64, 16, 16))
    for feature in features:
        seq = np.asarray(feature["offset_mapping"])
        ids = np.asarray(feature["input_ids"])
        types = np.asarray(feature["token_type_ids"])
        assert (seq[0] == -1).all()  # CLS
        context = examples.rows[examples.ids.index(feature["example_id"])]["context"]
        is_context = seq[:, 0] >= 0
        # context tokens are exactly the non-special tokens of the second segment
        assert (is_context == ((types == 1) & ~np.isin(ids, tiny_tokenizer.all_special_ids))).all()
        for start, end in seq[is_context]:
            assert 0 <= start < end <= len(context)


def test_distilbert_tokenizer_has_no_token_type_ids(tiny_distilbert_path, tiny_squad):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_distilbert_path)
    features = build_train_features(load_examples(tiny_squad), tokenizer, FeatureParams(64, 16, 16))
    assert "token_type_ids" not in features.column_names


def test_long_question_is_cut_and_does_not_panic(tiny_tokenizer, tmp_path):
    import json

    question = "why " * 500 + "?"
    path = tmp_path / "q.jsonl"
    path.write_text(
        json.dumps(
            {
                "id": "x",
                "question": question,
                "context": "Ada wrote it.",
                "answers": {"text": ["Ada"], "answer_start": [0]},
            }
        )
    )
    features = build_train_features(load_examples(path), tiny_tokenizer, FeatureParams(32, 8, 12))
    assert len(features[0]["input_ids"]) == 32
    assert features[0]["start_positions"] > 12  # the context comes after the cut question


@pytest.mark.parametrize(
    "params, message",
    [
        (FeatureParams(384, 400, 64), "doc_stride 400 must be smaller than the context room"),
        (FeatureParams(64, 16, 64), "leaves no room for context"),
        (FeatureParams(1024, 128, 64), "exceeds the tokenizer's model_max_length 512"),
        (FeatureParams(384, 0, 64), "doc_stride must be a positive integer"),
    ],
)
def test_invalid_params_are_clear_errors(tiny_tokenizer, params, message):
    with pytest.raises(InputError, match=message):
        validate_feature_params(tiny_tokenizer, params)


# ---------------------------------------------------------------------------------------------------------
# Gold oracle: logits that put all mass on the gold token span must score EM 100 / F1 100 after
# post-processing. It proves that features, offsets, post-processing and metrics agree end to end.


def char_tokenizer(tmp_path, texts):
    """A WordPiece tokenizer whose vocabulary is single characters, so every answer is on token boundaries."""
    from transformers import BertTokenizerFast

    chars = set()
    for text in texts:
        folded = "".join(
            c for c in unicodedata.normalize("NFD", text.lower()) if unicodedata.category(c) != "Mn"
        )
        chars.update(folded)
    chars -= set(" \t\n\r\u00a0")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(chars), *sorted(f"##{c}" for c in chars)]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab), encoding="utf-8")
    return BertTokenizerFast(vocab=str(tmp_path / "vocab.txt"), do_lower_case=True)


def gold_logits(features, examples, high=10.0):
    """Start/end logits with `high` at the gold span of each window that holds the answer, 0 elsewhere."""
    by_id = {row["id"]: row for row in examples}
    offsets = np.asarray(features["offset_mapping"])
    start = np.zeros(offsets.shape[:2], dtype=np.float32)
    end = np.zeros_like(start)
    for i, qid in enumerate(features["example_id"]):
        answers = by_id[qid]["answers"]
        if not answers["text"]:
            start[i, 0] = end[i, 0] = high  # null answer
            continue
        char_start = answers["answer_start"][0]
        char_end = char_start + len(answers["text"][0])
        starts = np.flatnonzero(offsets[i, :, 0] == char_start)
        ends = np.flatnonzero(offsets[i, :, 1] == char_end)
        if len(starts) and len(ends):
            start[i, starts[0]] = high
            end[i, ends[-1]] = high
        else:
            # answer not in this window: the null span wins, never an answer
            start[i, 0] = end[i, 0] = high / 2
    return start, end


def run_oracle(examples, tokenizer, params, max_answer_length):
    from distilqa.qa.metrics import score_predictions
    from distilqa.qa.postprocess import offsets_array, postprocess_predictions

    features = build_eval_features(examples, tokenizer, params)
    start, end = gold_logits(features, examples)
    result = postprocess_predictions(
        examples,
        features["example_id"],
        offsets_array(features["offset_mapping"]),
        start,
        end,
        n_best=20,
        max_answer_length=max_answer_length,
        version_2=examples.version_2,
    )
    return result, score_predictions(examples, result.predictions, na_probs=result.null_odds or None)


def test_gold_oracle_scores_100_on_real_dev(tmp_path):
    examples = load_examples(squad_file("dev.json"))
    tokenizer = char_tokenizer(tmp_path, [r["context"] + r["question"] for r in examples])
    # windows overlap by 256 characters, more than the longest answer (239), so each answer fits a window
    result, scores = run_oracle(examples, tokenizer, FeatureParams(512, 256, 64), max_answer_length=300)
    assert scores == {"exact_match": 100.0, "f1": 100.0}
    assert all(result.predictions[r["id"]] == r["answers"]["text"][0] for r in examples)


def test_gold_oracle_v2_with_unanswerable(tmp_path):
    examples = load_examples(squad_file("dev.json"), limit=200)
    for i in range(0, len(examples), 3):  # every third question becomes unanswerable
        examples.rows[i]["answers"] = {"text": [], "answer_start": []}
    examples.version_2 = True
    tokenizer = char_tokenizer(tmp_path, [r["context"] + r["question"] for r in examples])
    result, scores = run_oracle(examples, tokenizer, FeatureParams(384, 128, 64), max_answer_length=200)
    assert scores["exact"] == 100.0 and scores["f1"] == 100.0
    assert scores["NoAns_total"] == 31 and scores["HasAns_total"] == 60  # 91 questions, every third
    assert scores["best_exact"] == 100.0


def test_gold_oracle_with_a_wordpiece_tokenizer(tiny_tokenizer):
    """With a real sub-word vocabulary, only answers that start or end inside a word can be missed."""
    examples = load_examples(squad_file("dev.json"))
    params = FeatureParams(384, 160, 64)
    result, scores = run_oracle(examples, tiny_tokenizer, params, max_answer_length=200)
    features = build_eval_features(examples, tiny_tokenizer, params)
    offsets = np.asarray(features["offset_mapping"])
    aligned = set()
    by_id = {r["id"]: r for r in examples}
    for i, qid in enumerate(features["example_id"]):
        a = by_id[qid]["answers"]
        s, e = a["answer_start"][0], a["answer_start"][0] + len(a["text"][0])
        if (offsets[i, :, 0] == s).any() and (offsets[i, :, 1] == e).any():
            aligned.add(qid)
    wrong = {qid for qid, text in result.predictions.items() if text != by_id[qid]["answers"]["text"][0]}
    assert wrong.isdisjoint(aligned)
    assert scores["exact_match"] >= 97.0
