"""``distilqa score``: JSON on stdout like the official scripts, warnings and errors as single stderr lines."""

from __future__ import annotations

import json

import pytest

from conftest import FIXTURES
from distilqa.cli import main

V1 = str(FIXTURES / "metrics_v1_tiny.json")
V2 = str(FIXTURES / "metrics_v2_tiny.json")
V1_PRED = str(FIXTURES / "score_v1_predictions.json")
V2_PRED = str(FIXTURES / "score_v2_predictions.json")
V2_NA = str(FIXTURES / "score_v2_na_probs.json")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["score", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write(tmp_path, name: str, content) -> str:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return str(path)


def test_v1_prints_one_line_and_warns(capsys):
    code, out, err = run(capsys, V1, V1_PRED)
    assert code == 0
    assert out == '{"exact_match": 40.0, "f1": 59.16666666666667}\n'  # what evaluate-v1.1.py prints
    lines = err.splitlines()
    assert len(lines) == 2
    assert "1 of 10 questions have no prediction" in lines[0] and "'cb-3'" in lines[0]
    assert "ignored 1 prediction(s)" in lines[1] and "'xx-1'" in lines[1]


def test_v2_with_na_probs(capsys):
    code, out, err = run(capsys, V2, V2_PRED, "--na-prob-file", V2_NA, "--na-prob-thresh", "0.5")
    assert code == 0 and err == ""
    assert out.startswith('{\n  "exact": 58.333333333333336,\n')  # indent=2, like evaluate-v2.0.py
    result = json.loads(out)
    assert list(result)[-4:] == ["best_exact", "best_exact_thresh", "best_f1", "best_f1_thresh"]
    assert (result["NoAns_total"], result["best_f1_thresh"]) == (5, 0.3)


def test_v2_without_na_probs_has_no_best_keys(capsys):
    code, out, _ = run(capsys, V2, V2_PRED)
    assert code == 0 and "best_exact" not in json.loads(out)


def assert_fails(capsys, argv, *fragments: str) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("distilqa: error: ") and "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        ("{not json", ["not valid JSON", "line 1"]),
        (b'{"hp-1": "caf\xe9"}', ["not UTF-8"]),
        ([{"id": "hp-1", "prediction_text": "1887"}], ["holds an array", "{id: value}"]),
        ({"hp-1": "1887", "hp-2": ["whale oil"], "hp-3": 3}, ["'hp-2' is an array", "must be a string"]),
        ({"hp-1": None}, ["'hp-1' is null"]),
    ],
)
def test_bad_predictions_file(capsys, tmp_path, content, fragments):
    path = write(tmp_path, "pred.json", content)
    assert_fails(capsys, [V1, path], "predictions file", path, *fragments)


def test_predictions_for_another_dataset(capsys, tmp_path):
    path = write(tmp_path, "pred.json", {"other-1": "x"})
    assert_fails(capsys, [V1, path], "no prediction for any of the 10 questions")


def test_missing_predictions_file(capsys, tmp_path):
    assert_fails(capsys, [V1, str(tmp_path / "nope.json")], "does not exist")


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        ({"hp-1": "0.5"}, ["'hp-1' is a string", "must be a number"]),
        ({"hp-1": True}, ["'hp-1' is a boolean"]),
        ('{"hp-1": NaN}', ["not finite"]),
        ([0.5], ["holds an array"]),
        ({"hp-1": 0.5}, ["no probability for 11 predicted question(s)", "(first: 'hp-2')"]),
    ],
)
def test_bad_na_prob_file(capsys, tmp_path, content, fragments):
    path = write(tmp_path, "na.json", content)
    assert_fails(capsys, [V2, V2_PRED, "--na-prob-file", path], path, *fragments)


@pytest.mark.parametrize("option", [["--na-prob-file", V2_NA], ["--na-prob-thresh", "0.5"]])
def test_na_options_need_v2_data(capsys, option):
    assert_fails(capsys, [V1, V1_PRED, *option], "SQuAD v1.1 data", "SQuAD 2.0 data only")


def test_bad_dataset(capsys, tmp_path):
    assert_fails(capsys, [write(tmp_path, "data.json", "[1, 2]"), V1_PRED], "row 0 is not an object")
