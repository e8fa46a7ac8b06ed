"""``--precision`` on the commands that run a model: the choice is printed and written into metrics.json, what the
machine cannot run well is refused in one line, and an ONNX export takes only fp32/auto."""

from __future__ import annotations

import json

import pytest

import distilqa.infra.precision as precision
from distilqa.cli import main

WINDOWS = ["--max_seq_length", "64", "--doc_stride", "16", "--max_query_length", "16", "--no_progress"]


@pytest.mark.parametrize("native", [True, False])
def test_evaluate_auto_writes_its_choice_into_metrics(monkeypatch, native, tiny_bert_path, tiny_squad, tmp_path, capsys):  # fmt: skip
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    out = tmp_path / "eval"
    args = ["evaluate", "--model", str(tiny_bert_path), "--data", str(tiny_squad), "--output_dir", str(out)]
    assert main([*args, *WINDOWS, "--precision", "auto"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    chosen = "bf16" if native else "fp32"
    assert metrics["precision"] == chosen
    assert metrics["precision_requested"] == "auto"
    assert ("has native bf16" in metrics["precision_reason"]) == native
    assert f"{chosen} (auto: " in capsys.readouterr().err


def test_evaluate_fp32_and_bf16_score_the_same_questions(monkeypatch, tiny_bert_path, tiny_squad, tmp_path):
    monkeypatch.setattr(
        precision, "cpu_has_native_bf16", lambda: True
    )  # emulated where not native: same path
    results = {}
    for name in ("fp32", "bf16"):
        out = tmp_path / name
        args = [
            "evaluate",
            "--model",
            str(tiny_bert_path),
            "--data",
            str(tiny_squad),
            "--output_dir",
            str(out),
        ]
        assert main([*args, *WINDOWS, "--precision", name]) == 0
        results[name] = json.loads((out / "metrics.json").read_text())
        assert results[name]["precision"] == name
    assert results["fp32"]["num_questions"] == results["bf16"]["num_questions"] > 0
    predictions = [json.loads((tmp_path / n / "predictions.json").read_text()) for n in ("fp32", "bf16")]
    assert predictions[0].keys() == predictions[1].keys()


def test_bf16_without_native_support_is_one_line_exit_2(monkeypatch, tiny_bert_path, tiny_squad, capsys):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    args = [
        "evaluate",
        "--model",
        str(tiny_bert_path),
        "--data",
        str(tiny_squad),
        *WINDOWS,
        "--precision",
        "bf16",
    ]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no native bf16" in err and "--precision fp32 or auto" in err


def test_fp16_on_a_cpu_is_refused(tiny_bert_path, capsys):
    args = [
        "predict",
        "--model",
        str(tiny_bert_path),
        "--question",
        "Who?",
        "--context",
        "Ada wrote it.",
        "--precision",
        "fp16",
    ]
    assert main(args) == 2
    assert "needs a CUDA device" in capsys.readouterr().err


def test_predict_says_which_precision_it_used(monkeypatch, tiny_bert_path, capsys):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    args = [
        "predict",
        "--model",
        str(tiny_bert_path),
        "--question",
        "Who wrote it?",
        "--context",
        "Ada Lovelace wrote it.",
    ]
    assert main([*args, "--precision", "auto"]) == 0
    captured = capsys.readouterr()
    answer = json.loads(captured.out)
    assert set(answer) >= {"answer", "score", "probability", "start", "end"}
    assert "precision: bf16 (auto: " in captured.err


def test_demo_refuses_bf16_without_native_support_before_writing(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    out = tmp_path / "report"
    assert main(["demo", "--quick", "--precision", "bf16", "--output", str(out)]) == 2
    assert "no native bf16" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
def test_demo_auto_says_and_records_what_it_chose(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    out = tmp_path / "report"
    assert main(["demo", "--quick", "--output", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["precision"]["training"]["precision"] == "fp32"
    assert results["precision"]["evaluation"]["precision_requested"] == "auto"
    assert "precision: training fp32, evaluation fp32 (--precision auto:" in capsys.readouterr().out
    assert "Precision: training fp32" in (out / "results.md").read_text()
