"""An export carries the saved SQuAD 2.0 no-answer threshold, fingerprinted to its model.onnx."""

from __future__ import annotations

import json

import pytest

from conftest import v2_squad_file

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from distilqa.cli import main  # noqa: E402
from distilqa.export.exporter import REPORT_FILE, export_model  # noqa: E402
from distilqa.infra.ownership import foreign_files, read_marker  # noqa: E402
from distilqa.qa.features import FeatureParams  # noqa: E402
from distilqa.qa.threshold import THRESHOLD_FILE, read_threshold, weights_fingerprint, write_threshold  # noqa: E402

SMALL = FeatureParams(max_seq_length=128, doc_stride=32, max_query_length=32)


def test_export_carries_the_saved_threshold(tiny_bert_copy, tmp_path, capsys):
    data = v2_squad_file(tmp_path)
    saved = write_threshold(tiny_bert_copy, -1e9, best_f1=42.0, data=data, questions=18)
    lines = []
    out = tmp_path / "onnx"
    report = export_model(tiny_bert_copy, out, data=data, params=SMALL, log=lines.append)
    assert "no-answer threshold -1e+09 (saved with the model, chosen on dev-v2.json)" in lines
    assert report["null_threshold"] == -1e9
    assert json.loads((out / REPORT_FILE).read_text())["null_threshold"] == -1e9
    carried = read_threshold(out)  # valid for the export's own weights
    assert (
        carried is not None
        and carried["weights_sha256"] == weights_fingerprint(out) != saved["weights_sha256"]
    )
    assert (carried["null_threshold"], carried["chosen_on"], carried["best_f1"]) == (
        -1e9, saved["chosen_on"], 42.0,
    )  # fmt: skip
    assert THRESHOLD_FILE in read_marker(out)["files"] and not foreign_files(out)
    # the parity check ran under it: every answer is "", so only the 6 unanswerable questions score
    assert report["parity"]["pytorch_fp32"]["f1"] == pytest.approx(100 * 6 / 18, abs=0.01)
    assert (
        report["parity"]["pytorch_fp32"]["NoAns_f1"] == 100.0
        and report["parity"]["pytorch_fp32"]["answered"] == 0
    )
    assert report["parity"]["onnx_fp32"]["no_answer_flips"] == 0.0 and report["parity"]["passed"]
    assert any(line.startswith("fp32 ONNX vs PyTorch (no-answer threshold -1e+09)") for line in lines)
    capsys.readouterr()
    argv = ["evaluate", "--model", str(out), "--data", str(data), "--max-seq-length", "128", "--doc-stride", "32",
            "--max-query-length", "32", "--no-progress", "--output-dir", str(tmp_path / "eval")]  # fmt: skip
    assert main(argv) == 0
    assert "saved with the model, chosen on dev-v2.json" in capsys.readouterr().err
    predictions = json.loads((tmp_path / "eval" / "predictions.json").read_text())
    assert not any(predictions.values())


def test_export_without_a_saved_threshold_writes_none(tiny_bert_path, tmp_path):
    out = tmp_path / "onnx"
    report = export_model(tiny_bert_path, out, limit=6, params=SMALL, log=lambda line: None)
    assert report["null_threshold"] == 0.0 and not (out / THRESHOLD_FILE).exists()
