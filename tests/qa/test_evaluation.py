"""The one evaluation path: evaluate_model gives what predict + score give, for a folder or a predictor."""

from __future__ import annotations

import numpy as np
import pytest

from distilqa.infra.models import load_tokenizer
from distilqa.qa.data import SquadExamples, load_examples
from distilqa.qa.evaluation import evaluate_model
from distilqa.qa.features import FeatureParams
from distilqa.qa.metrics import score_predictions
from distilqa.qa.predictor import PredictOptions, QAPredictor
from distilqa.qa.threshold import choose_threshold

PARAMS = FeatureParams(max_seq_length=64, doc_stride=24, max_query_length=20)


def test_evaluate_model_equals_predict_then_score(tiny_bert_path, tiny_squad):
    examples = load_examples(tiny_squad)
    predictor = QAPredictor.from_pretrained(tiny_bert_path, params=PARAMS)
    options = PredictOptions(n_best=5, max_answer_length=12)
    evaluation = evaluate_model(predictor, examples, options=options, batch_size=2, keep_logits=True)
    expected = predictor.predict_examples(examples, batch_size=2, options=options, progress=False)
    assert evaluation.predictions == expected.predictions
    assert evaluation.result.nbest == expected.nbest
    assert evaluation.metrics == score_predictions(examples, expected.predictions)
    assert evaluation.num_questions == 3 and evaluation.num_windows == len(evaluation.features) > 3
    assert evaluation.start_logits.shape == (evaluation.num_windows, PARAMS.max_seq_length)
    assert evaluation.headline == {
        "exact_match": round(evaluation.metrics["exact_match"], 2),
        "f1": round(evaluation.metrics["f1"], 2),
    }
    speed = evaluation.speed()
    assert speed["backend"] == "torch" and speed["num_questions"] == 3 and speed["seconds"] >= 0


def test_evaluate_model_loads_a_folder_like_the_predictor(tiny_bert_path, tiny_squad):
    examples = load_examples(tiny_squad)
    from_folder = evaluate_model(tiny_bert_path, examples, params=PARAMS)
    predictor = QAPredictor(
        QAPredictor.from_pretrained(tiny_bert_path).model, load_tokenizer(tiny_bert_path), params=PARAMS
    )
    assert from_folder.predictions == evaluate_model(predictor, examples).predictions
    assert from_folder.features is None and from_folder.start_logits is None  # kept only when asked


def test_a_slice_of_examples_is_examples(tiny_bert_path, tiny_squad):
    examples = load_examples(tiny_squad)
    head = examples[:2]
    assert isinstance(head, SquadExamples) and head.ids == examples.ids[:2]
    assert head.version_2 == examples.version_2 and head.source == examples.source
    assert examples[0] == examples.rows[0]
    evaluation = evaluate_model(tiny_bert_path, head, params=PARAMS)
    assert set(evaluation.predictions) == set(examples.ids[:2])


def test_v2_headline_uses_exact(tiny_bert_path, tiny_squad):
    examples = load_examples(tiny_squad)
    v2 = SquadExamples(examples.rows, version_2=True, source="v2")
    evaluation = evaluate_model(tiny_bert_path, v2, params=PARAMS)
    cut = score_predictions(
        v2, evaluation.predictions, na_probs=evaluation.result.null_odds, na_prob_thresh=0.0
    )
    for key in ("exact", "f1", "HasAns_f1"):  # at the threshold in force: the cut answers' scores
        assert evaluation.metrics[key] == pytest.approx(cut[key]), key
    # best_f1 searches past the threshold in force, over the uncut spans, as the saved threshold is chosen
    assert evaluation.metrics["best_f1"] == pytest.approx(choose_threshold(v2, evaluation.result)["best_f1"])
    assert evaluation.metrics["best_f1"] >= cut["best_f1"] >= cut["f1"]
    assert evaluation.headline["exact_match"] == pytest.approx(evaluation.metrics["exact"], abs=0.005)
    assert np.isfinite(list(evaluation.result.null_odds.values())).all()


def test_length_sorted_batches_give_the_same_answers(tiny_bert_path):
    from conftest import squad_file

    examples = load_examples(squad_file("dev.json"))[:40]
    predictor = QAPredictor.from_pretrained(tiny_bert_path, params=PARAMS)
    features = evaluate_model(predictor, examples, keep_logits=True).features
    lengths = np.asarray(features["attention_mask"]).sum(axis=1)
    assert len(set(lengths.tolist())) > 5  # windows of many lengths: the order matters
    sorted_start, sorted_end = predictor.logits(features, batch_size=8, progress=False)
    plain_start, plain_end = predictor.logits(features, batch_size=8, progress=False, sort_by_length=False)
    real = np.asarray(features["attention_mask"], dtype=bool)  # padding columns depend on the batch partners
    np.testing.assert_allclose(sorted_start[real], plain_start[real], atol=1e-5)
    np.testing.assert_allclose(sorted_end[real], plain_end[real], atol=1e-5)
    assert predictor.postprocess(examples, features, sorted_start, sorted_end).predictions == (
        predictor.postprocess(examples, features, plain_start, plain_end).predictions
    )
