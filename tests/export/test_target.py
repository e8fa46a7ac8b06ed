"""``export --target auto``: the fastest candidate within the F1 budget is chosen, written, and loaded as chosen."""

from __future__ import annotations

import json

import pytest

import distilqa.infra.precision as precision
from distilqa.errors import InputError
from distilqa.export.target import TARGET_FILE, TARGET_REPORT, choose, export_auto
from distilqa.qa.features import FeatureParams
from distilqa.qa.predictor import QAPredictor, folder_precision

pytest.importorskip("onnxruntime")

SMALL = FeatureParams(max_seq_length=64, doc_stride=16, max_query_length=16)


def row(backend, f1, qps, note=""):
    return {"backend": backend, "f1": f1, "qps_batch32": qps, "note": note}


def test_choose_takes_the_fastest_within_the_budget():
    rows = [
        row("torch", 50.0, 10),
        row("torch-bf16", 49.6, 30),
        row("onnx", 50.0, 12),
        row("onnx-int8", 49.0, 40),
    ]
    chosen, marked = choose(rows, f1_budget=0.5)
    assert chosen["backend"] == "torch-bf16"  # int8 is faster but 1.0 F1 below fp32
    assert [r["eligible"] for r in marked] == [True, True, True, False]
    chosen, _ = choose(rows, f1_budget=1.0)
    assert chosen["backend"] == "onnx-int8"
    failed = [*rows[:3], row("onnx-int8", 50.0, 40, note="parity check failed: ...")]
    assert (
        choose(failed, f1_budget=5.0)[0]["backend"] == "torch-bf16"
    )  # a failed parity check is never chosen


def test_choose_needs_the_fp32_reference():
    with pytest.raises(InputError, match="PyTorch fp32"):
        choose([row("onnx", 50.0, 10)], 0.5)


def test_export_auto_writes_a_folder_that_loads_as_chosen(tiny_bert_path, tiny_squad, tmp_path):
    out = tmp_path / "auto"
    report = export_auto(tiny_bert_path, out, data=tiny_squad, params=SMALL, latency_samples=2, isolate=False, log=lambda line: None)  # fmt: skip
    backends = [c["backend"] for c in report["candidates"]]
    assert backends[0] == "torch" and "onnx" in backends and "onnx-int8" in backends
    eligible = [c for c in report["candidates"] if c["eligible"]]
    fastest = max(eligible, key=lambda c: c["qps_batch32"])
    assert report["chosen"]["backend"] == fastest["backend"]
    assert all(c["f1"] >= report["reference_f1"] - 0.5 for c in eligible)
    assert json.loads((out / TARGET_FILE).read_text())["chosen"] == report["chosen"]
    assert "| backend |" in (out / TARGET_REPORT).read_text()
    predictor = QAPredictor.from_pretrained(out, params=SMALL)
    assert predictor.backend == ("onnx" if fastest["backend"].startswith("onnx") else "torch")
    if fastest["backend"] == "torch-bf16":
        assert predictor.precision.name == "bf16"
    answers = predictor.answer(["Who wrote it?"], ["Ada Lovelace wrote it in 1843."])
    assert set(answers[0]) >= {"answer", "score", "probability", "start", "end"}


def test_a_bf16_choice_runs_auto_where_the_cpu_has_no_bf16(monkeypatch, tmp_path):
    (tmp_path / TARGET_FILE).write_text(
        json.dumps({"chosen": {"backend": "torch-bf16", "precision": "bf16"}})
    )
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert folder_precision(tmp_path) == "bf16"
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert folder_precision(tmp_path) == "auto"
    assert folder_precision(tmp_path / "elsewhere") == "fp32"  # a folder without a choice


def test_a_nan_budget_is_refused(tiny_bert_path, tiny_squad, tmp_path):
    with pytest.raises(InputError, match="f1_budget"):
        export_auto(
            tiny_bert_path, tmp_path / "x", data=tiny_squad, f1_budget=float("nan"), log=lambda line: None
        )
    assert not (tmp_path / "x").exists()
