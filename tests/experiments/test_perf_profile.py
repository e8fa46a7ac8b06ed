"""experiments/perf/profile_inference.py: the stages add up to the end-to-end time and the operators come from the
profiler, for a PyTorch folder and an ONNX export of a tiny model."""

from __future__ import annotations

import json

import pytest

from experiments.perf.profile_inference import main

pytestmark = pytest.mark.experiments
WINDOWS = ["--max-seq-length", "64", "--doc-stride", "16", "--max-query-length", "16", "--repeats", "1", "--threads", "1"]  # fmt: skip


def check(record, backend):
    assert record["backend"] == backend
    assert record["questions"] > 0 and record["windows"] >= record["questions"]
    assert [s["stage"] for s in record["stages"]] == [
        "features (tokenize, window)",
        "forward passes",
        "post-processing",
    ]
    total = sum(s["seconds"] for s in record["stages"])
    assert record["questions_per_second"] == pytest.approx(record["questions"] / total)
    shares = [op["share_of_forward"] for op in record["operators"]]
    assert shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 1 + 1e-9


def test_profile_of_a_pytorch_folder(tiny_bert_path, tiny_squad, tmp_path, capsys):
    out = tmp_path / "p.json"
    assert (
        main(["--model", str(tiny_bert_path), "--data", str(tiny_squad), "--json", str(out), *WINDOWS]) == 0
    )
    record = json.loads(out.read_text())
    check(record, "torch-fp32")
    assert any("addmm" in op["operator"] or "linear" in op["operator"] for op in record["operators"])
    assert "| forward passes |" in capsys.readouterr().out


def test_profile_of_an_onnx_export(tiny_bert_path, tiny_squad, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from distilqa.export.exporter import export_model
    from distilqa.qa.features import FeatureParams

    folder = tmp_path / "onnx"
    export_model(tiny_bert_path, folder, limit=4, params=FeatureParams(64, 16, 16), log=lambda line: None)
    out = tmp_path / "p.json"
    assert main(["--model", str(folder), "--data", str(tiny_squad), "--json", str(out), *WINDOWS]) == 0
    record = json.loads(out.read_text())
    check(record, "onnx")
    assert any(op["operator"] in ("MatMul", "Attention", "FusedMatMul", "Gemm") for op in record["operators"])
