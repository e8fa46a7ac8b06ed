"""The saved SQuAD 2.0 no-answer threshold: the file, its fingerprint, its choice, and how commands use it."""

from __future__ import annotations

import json
import logging

import pytest

from conftest import squad_file, v2_squad_file
from distilqa.cli import main
from distilqa.qa.data import load_examples
from distilqa.qa.features import FeatureParams
from distilqa.qa.postprocess import PostprocessResult
from distilqa.qa.predictor import PredictOptions, QAPredictor
from distilqa.qa.threshold import (
    THRESHOLD_FILE,
    choose_threshold,
    read_threshold,
    resolve_threshold,
    threshold_from_metrics,
    weights_fingerprint,
    write_threshold,
)

PARAMS = FeatureParams(max_seq_length=128, doc_stride=32, max_query_length=32)
WINDOWS = ["--max-seq-length", "128", "--doc-stride", "32", "--max-query-length", "32"]


def test_the_file_round_trips(tiny_bert_copy, tmp_path):
    data = v2_squad_file(tmp_path)
    record = write_threshold(tiny_bert_copy, 1.75, best_f1=61.23456, data=data, questions=18)
    assert json.loads((tiny_bert_copy / THRESHOLD_FILE).read_text()) == record
    assert read_threshold(tiny_bert_copy) == record
    assert record["null_threshold"] == 1.75 and record["best_f1"] == 61.2346
    assert record["chosen_on"]["file"] == "dev-v2.json" and record["chosen_on"]["questions"] == 18
    assert len(record["chosen_on"]["sha256"]) == 64
    assert record["weights_sha256"] == weights_fingerprint(tiny_bert_copy) is not None
    value, note, news = resolve_threshold(tiny_bert_copy)
    assert (value, news) == (1.75, True)
    assert note == "no-answer threshold 1.75 (saved with the model, chosen on dev-v2.json)"
    assert resolve_threshold(tiny_bert_copy, -2.0) == (
        -2.0,
        "no-answer threshold -2 (--null_threshold)",
        True,
    )


def test_changed_weights_make_the_file_ignored(tiny_bert_copy, caplog):
    write_threshold(tiny_bert_copy, 3.0, best_f1=50.0, data="squad_v2", questions=5)
    weights = tiny_bert_copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes() + b" ")  # any change of the weight file
    with caplog.at_level(logging.WARNING, logger="distilqa.qa.threshold"):
        assert read_threshold(tiny_bert_copy) is None
    assert "other weights" in caplog.text
    assert resolve_threshold(tiny_bert_copy)[:2] == (0.0, "no-answer threshold 0 (default)")


def test_a_broken_file_is_ignored_with_a_warning(tiny_bert_copy, caplog):
    (tiny_bert_copy / THRESHOLD_FILE).write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="distilqa.qa.threshold"):
        assert read_threshold(tiny_bert_copy) is None
    assert "cannot be read" in caplog.text


def test_sharded_weights_are_fingerprinted_together(tmp_path):
    (tmp_path / "model-00001-of-00002.safetensors").write_bytes(b"a")
    (tmp_path / "model-00002-of-00002.safetensors").write_bytes(b"b")
    before = weights_fingerprint(tmp_path)
    (tmp_path / "model-00002-of-00002.safetensors").write_bytes(b"c")
    assert before != weights_fingerprint(tmp_path) and len(before) == 64
    assert weights_fingerprint(tmp_path / "missing") is None


def test_threshold_from_metrics():
    assert threshold_from_metrics({"eval_best_f1": 70.0, "eval_best_f1_thresh": -1.5}) == -1.5
    assert threshold_from_metrics({"best_f1_thresh": 2}) == 2.0
    with pytest.raises(ValueError, match="best_f1_thresh"):
        threshold_from_metrics({"exact_match": 1.0, "f1": 2.0})


def test_the_choice_sees_past_the_threshold_in_force():
    """Hand-computed: answering q1 and q2 (odds 1 and 2) and not q3 (odds 3) is best, so the threshold is 2.0 to 3.0;
    predictions already cut at 0.0 would hide it (their threshold search never passes 0)."""
    rows = [
        {"id": "q1", "context": "red", "question": "?", "answers": {"text": ["red"], "answer_start": [0]}},
        {"id": "q2", "context": "blue", "question": "?", "answers": {"text": ["blue"], "answer_start": [0]}},
        {"id": "q3", "context": "green", "question": "?", "answers": {"text": [], "answer_start": []}},
    ]
    from distilqa.qa.data import SquadExamples

    examples = SquadExamples(rows, version_2=True)

    def nbest(text):  # the null entry first (odds > 0), the span second
        null = {"text": "", "probability": 0.6, "start_logit": 0.0, "end_logit": 0.0, "start": -1, "end": -1}
        span = {"text": text, "probability": 0.4, "start_logit": 0.0, "end_logit": 0.0, "start": 0, "end": 1}
        return [null, span]

    result = PostprocessResult(
        predictions={"q1": "", "q2": "", "q3": ""},  # cut at threshold 0.0: every odds is > 0
        nbest={"q1": nbest("red"), "q2": nbest("blue"), "q3": nbest("green")},
        null_odds={"q1": 1.0, "q2": 2.0, "q3": 3.0},
    )
    # the script's 2.0 (q2's odds), moved half-way to q3's 3.0 so that a tiny change in q2's logits flips nothing
    assert choose_threshold(examples, result) == {"null_threshold": 2.5, "best_f1": 100.0}
    from distilqa.qa.metrics import squad_v2_score

    capped = squad_v2_score(examples, result.predictions, na_probs=result.null_odds)
    assert capped["best_f1_thresh"] == 0.0  # what the thresholded predictions alone would choose
    from distilqa.qa.evaluation import scored_answers

    reported = squad_v2_score(
        examples, scored_answers(result, True), na_probs=result.null_odds, na_prob_thresh=0.0
    )
    assert reported["f1"] == pytest.approx(100 / 3) == capped["f1"]  # at the threshold in force: q3 only
    assert (
        reported["best_f1"] == 100.0 and reported["best_f1_thresh"] == 2.0
    )  # what evaluate/the Trainer report


def test_a_folder_without_a_file_behaves_as_before(tiny_bert_path, tmp_path):
    assert not (tiny_bert_path / THRESHOLD_FILE).exists()
    examples = load_examples(v2_squad_file(tmp_path))
    predictor = QAPredictor.from_pretrained(tiny_bert_path, params=PARAMS)
    assert predictor.null_threshold == 0.0 and not predictor.threshold_is_news
    default = predictor.predict_examples(examples, progress=False).predictions
    explicit = predictor.predict_examples(
        examples, options=PredictOptions(null_threshold=0.0), progress=False
    )
    assert default == explicit.predictions


def _evaluate(model, data, out, capsys, *extra):
    capsys.readouterr()
    argv = ["evaluate", "--model", str(model), "--data", str(data), *WINDOWS, "--no-progress"]
    assert main([*argv, "--output-dir", str(out), *extra]) == 0
    err = capsys.readouterr().err
    return (
        json.loads((out / "predictions.json").read_text()),
        json.loads((out / "metrics.json").read_text()),
        err,
    )


def test_evaluate_uses_the_saved_threshold_and_the_flag_overrides_it(tiny_bert_copy, tmp_path, capsys):
    data = v2_squad_file(tmp_path)
    before, metrics, err = _evaluate(tiny_bert_copy, data, tmp_path / "e0", capsys)
    assert "no-answer threshold" not in err and metrics["null_threshold"] == 0.0  # no file: as before

    write_threshold(tiny_bert_copy, 1e9, best_f1=1.0, data=data, questions=18)
    answered, metrics, err = _evaluate(tiny_bert_copy, data, tmp_path / "e1", capsys)
    assert "no-answer threshold 1e+09 (saved with the model, chosen on dev-v2.json)" in err
    assert all(answered.values()) and metrics["null_threshold"] == 1e9  # a huge threshold answers everything
    assert answered != before or all(before.values())

    empty, metrics, err = _evaluate(tiny_bert_copy, data, tmp_path / "e2", capsys, "--null_threshold=-1e9")
    assert "no-answer threshold -1e+09 (--null_threshold)" in err and "saved with the model" not in err
    assert not any(empty.values()) and metrics["null_threshold"] == -1e9  # the flag wins: every answer ""

    write_threshold(tiny_bert_copy, -1e9, data=data, questions=18)
    saved_empty, _, _ = _evaluate(tiny_bert_copy, data, tmp_path / "e3", capsys)
    assert saved_empty == empty


def test_predict_prints_the_saved_threshold(tiny_bert_copy, capsys):
    write_threshold(tiny_bert_copy, -1e9, data="dev-a.json", questions=3)
    capsys.readouterr()
    argv = ["predict", "--model", str(tiny_bert_copy), "--question", "Who built it?", "--allow_null", "true",
            "--context", "The lighthouse was built in 1871 by Tomas Erdi.", *WINDOWS]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr()
    assert "no-answer threshold -1e+09 (saved with the model, chosen on dev-a.json)" in out.err
    assert json.loads(out.out)["answer"] == ""
    assert main([*argv, "--null_threshold", "1e9"]) == 0
    assert json.loads(capsys.readouterr().out)["answer"] != ""


def test_train_on_v2_data_saves_the_threshold(tiny_bert_path, tmp_path, capsys):
    from distilqa.infra.ownership import foreign_files, read_marker

    data = v2_squad_file(tmp_path)
    out = tmp_path / "run"
    argv = ["train", "--model_name_or_path", str(tiny_bert_path), "--train_file", str(squad_file("train.json")),
            "--eval_file", str(data), "--max_train_samples", "16", "--output_dir", str(out), "--max_steps", "2",
            "--save_strategy", "no", "--max_seq_length", "128", "--doc_stride", "32", "--max_query_length", "32",
            "--per_device_train_batch_size", "8", "--disable_tqdm", "true", "--report_to", "none",
            "--use_cpu", "true"]  # fmt: skip
    assert main(argv) == 0
    model = out / "model"
    record = read_threshold(model)
    assert record is not None and record["chosen_on"]["file"] == "dev-v2.json"
    assert record["chosen_on"]["questions"] == 18
    assert THRESHOLD_FILE in read_marker(model)["files"] and not foreign_files(model)
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["metrics"]["null_threshold"]["null_threshold"] == record["null_threshold"]
    # the saved threshold is the best one: evaluate with it reaches the best F1 of the span predictions
    _, metrics, err = _evaluate(model, data, tmp_path / "eval", capsys)
    assert "saved with the model, chosen on dev-v2.json" in err
    assert metrics["f1"] == pytest.approx(record["best_f1"], abs=1e-3)


def test_train_on_v1_data_saves_no_threshold(tiny_bert_path, tmp_path):
    out = tmp_path / "run"
    argv = ["train", "--model_name_or_path", str(tiny_bert_path), "--train_file", str(squad_file("train.json")),
            "--eval_file", str(squad_file("dev.json")), "--max_train_samples", "8", "--max_eval_samples", "6",
            "--output_dir", str(out), "--max_steps", "1", "--save_strategy", "no", "--max_seq_length", "128",
            "--doc_stride", "32", "--max_query_length", "32", "--disable_tqdm", "true", "--report_to", "none",
            "--use_cpu", "true"]  # fmt: skip
    assert main(argv) == 0
    assert not (out / "model" / THRESHOLD_FILE).exists()
