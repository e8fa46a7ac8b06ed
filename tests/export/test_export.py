"""ONNX export, INT8 quantization and the parity gate, on tiny BERT / DistilBERT models (no hub).

Each export takes ~10 s (torch.export tracing), so a few module-scoped exports are shared between tests.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from distilqa.cli import main  # noqa: E402
from distilqa.errors import InputError  # noqa: E402
from distilqa.export.exporter import REPORT_FILE, export_model
from distilqa.export.parity import ParityError, ParityTolerance
from distilqa.qa.backends import ONNX_FILE, OnnxQAModel  # noqa: E402
from distilqa.qa.features import FeatureParams  # noqa: E402

SMALL = FeatureParams(max_seq_length=128, doc_stride=32, max_query_length=32)
WINDOWS = ["--max-seq-length", "128", "--doc-stride", "32", "--max-query-length", "32"]


@pytest.fixture(scope="module")
def bert_onnx(tiny_bert_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "bert-onnx"
    report = export_model(tiny_bert_path, out, limit=12, params=SMALL, log=lambda line: None)
    return out, report


@pytest.fixture(scope="module")
def distilbert_int8(tiny_distilbert_path, tmp_path_factory):
    """INT8 of a random model, with tolerances it cannot meet: written only because of force=True."""
    out = tmp_path_factory.mktemp("export") / "distilbert-int8"
    tolerance = ParityTolerance(min_span_agreement=1.0, max_f1_drop=0.0, max_logit_diff=0.0)
    report = export_model(
        tiny_distilbert_path,
        out,
        quantize="int8",
        limit=12,
        params=SMALL,
        tolerance=tolerance,
        force=True,
        log=lambda line: None,
    )
    return out, report


def _torch_logits(model_path, batch):
    import torch

    from distilqa.infra.models import load_qa_model

    model = load_qa_model(model_path)
    with torch.no_grad():
        out = model(**{k: torch.from_numpy(v) for k, v in batch.items()})
    return out.start_logits.numpy(), out.end_logits.numpy()


def _batch(model_path, names, questions, contexts):
    from distilqa.infra.models import load_tokenizer

    encoded = load_tokenizer(model_path)(questions, contexts, padding=True, return_tensors="np")
    return {n: encoded[n].astype(np.int64) for n in names}


def test_fp32_export_writes_a_complete_folder(bert_onnx):
    out, report = bert_onnx
    assert {p.name for p in out.iterdir()} >= {
        ONNX_FILE,
        REPORT_FILE,
        "config.json",
        "tokenizer.json",
        "README.md",
    }
    assert not [p for p in out.iterdir() if p.suffix == ".data"]  # one self-contained model file
    saved = json.loads((out / REPORT_FILE).read_text())
    assert saved == json.loads(json.dumps(report))
    assert saved["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert saved["outputs"] == ["start_logits", "end_logits"]
    assert saved["quantization"] is None
    parity = saved["parity"]
    assert parity["passed"] and parity["questions"] == 12
    assert parity["onnx_fp32"]["max_abs_logit_diff"] < 1e-3
    assert parity["onnx_fp32"]["span_agreement"] == 1.0
    assert "ONNX fp32" in (out / "README.md").read_text()


def test_onnx_matches_pytorch_on_new_batch_and_sequence_sizes(bert_onnx, tiny_bert_path):
    out, _ = bert_onnx
    model = OnnxQAModel(out / ONNX_FILE)
    # The export's dummy input is 2 windows; these are 3 windows of another length, with padding.
    batch = _batch(
        tiny_bert_path,
        model.input_names,
        ["Who built the lighthouse?", "How tall is it?", "When?"],
        [
            "The lighthouse at Cape Verlin was built in 1871 by the engineer Tomas Erdi. " * 4,
            "It stands 42 metres tall.",
            "In 1871.",
        ],
    )
    assert batch["input_ids"].shape[0] == 3 and batch["input_ids"].shape[1] > 60
    for rows, width in ((slice(0, 3), None), (slice(1, 2), 9)):  # full batch; one window cut to 9 tokens
        part = {k: v[rows, :width] for k, v in batch.items()}
        start, end = model(part)
        ref_start, ref_end = _torch_logits(tiny_bert_path, part)
        assert start.dtype == np.float32 and start.shape == part["input_ids"].shape
        np.testing.assert_allclose(start, ref_start, atol=1e-4)
        np.testing.assert_allclose(end, ref_end, atol=1e-4)


def test_distilbert_int8_report_and_forced_write(distilbert_int8, tiny_distilbert_path):
    out, report = distilbert_int8
    assert report["inputs"] == ["input_ids", "attention_mask"]  # DistilBERT takes no token_type_ids
    quant = report["quantization"]
    assert quant["weight_type"] == "QInt8" and quant["op_types"] == ["MatMul", "Gather"]
    # per tensor cost 6.3 F1 on a real student (docs/RESULTS.md, section 5)
    assert quant["per_channel"] is True
    assert len(quant["excluded_nodes"]) == 1  # the QA head stays float
    int8 = report["parity"]["onnx_int8"]
    assert set(int8) >= {"span_agreement", "f1", "exact_match", "f1_change", "max_abs_logit_diff"}
    assert 0.0 <= int8["span_agreement"] <= 1.0
    low, high = int8["f1_change_95ci"]
    assert low <= int8["f1_change"] <= high
    assert not report["parity"]["passed"] and report["forced"]  # max_logit_diff 0 cannot be met
    assert json.loads((out / REPORT_FILE).read_text())["forced"] is True
    assert "FAILED" in (out / "README.md").read_text()
    ops = {node.op_type for node in __import__("onnx").load(str(out / ONNX_FILE)).graph.node}
    assert "MatMulInteger" in ops or "DynamicQuantizeMatMul" in ops
    model = OnnxQAModel(out)
    batch = _batch(tiny_distilbert_path, model.input_names, ["Who?"], ["Ada wrote it in 1843."])
    start, _ = model(batch)
    ref, _ = _torch_logits(tiny_distilbert_path, batch)
    scale = np.abs(ref).max()
    assert scale > 0.01  # logits of about 0.2: an absolute tolerance would let all-zero logits pass
    # quantized: close (3e-5 measured, 0.02% of the scale), not equal; all zeros would miss by 100% of it
    assert np.abs(start - ref).max() < 0.05 * scale


def test_failed_parity_writes_nothing(tiny_distilbert_path, tmp_path, capsys):
    out = tmp_path / "never"
    code = main(
        [
            "export",
            "--model",
            str(tiny_distilbert_path),
            "--output",
            str(out),
            "--limit",
            "4",
            "--max-logit-diff",
            "0",
            *WINDOWS,
        ]
    )
    assert code == 2
    error = capsys.readouterr().err
    assert "parity check failed" in error and "--force" in error and "--max_logit_diff" in error
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary folder left behind either


def test_evaluate_and_predict_accept_an_export(bert_onnx, tiny_bert_path, tiny_squad, capsys):
    out, _ = bert_onnx
    scores = {}
    for model in (tiny_bert_path, out):
        assert (
            main(["evaluate", "--model", str(model), "--data", str(tiny_squad), "--no-progress", *WINDOWS])
            == 0
        )
        scores[model] = json.loads(capsys.readouterr().out)
    assert scores[out]["backend"] == "onnx" and scores[tiny_bert_path]["backend"] == "torch"
    assert scores[out]["f1"] == pytest.approx(scores[tiny_bert_path]["f1"])
    assert (
        main(
            [
                "predict",
                "--model",
                str(out),
                "--question",
                "Who built it?",
                "--context",
                "Tomas Erdi built it in 1871.",
                *WINDOWS,
            ]
        )
        == 0
    )
    answer = json.loads(capsys.readouterr().out)
    assert isinstance(answer["answer"], str) and answer["start"] is not None


def test_onnx_model_input_errors(bert_onnx, tmp_path):
    out, _ = bert_onnx
    with pytest.raises(InputError, match="does not exist"):
        OnnxQAModel(tmp_path / "missing.onnx")
    with pytest.raises(InputError, match="token_type_ids"):
        OnnxQAModel(out, threads=1)(
            {"input_ids": np.ones((1, 4), np.int64), "attention_mask": np.ones((1, 4), np.int64)}
        )


def test_export_refuses_unsafe_outputs_and_bad_options(tiny_bert_path, bert_onnx, tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="distilqa did not make"):
        export_model(tiny_bert_path, tmp_path)
    with pytest.raises(InputError, match="is the model folder"):
        export_model(tiny_bert_path, tiny_bert_path)
    with pytest.raises(InputError, match="already an ONNX export"):
        export_model(bert_onnx[0], tmp_path / "again")
    with pytest.raises(InputError, match="--quantize"):
        export_model(tiny_bert_path, tmp_path / "x", quantize="int4")
    with pytest.raises(InputError, match="min_span_agreement"):
        ParityTolerance(min_span_agreement=1.5)
    assert issubclass(ParityError, InputError)


def test_missing_onnxruntime_gives_install_hint(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(InputError, match=r"pip install 'distilqa\[onnx\]'"):
        OnnxQAModel(tmp_path / ONNX_FILE)


def test_cli_per_channel_is_the_default_and_can_be_turned_off():
    from distilqa.cli.export import build_parser

    base = ["--model", "m", "--output", "o", "--quantize", "int8"]
    assert build_parser().parse_args(base).per_channel is True
    assert build_parser().parse_args([*base, "--no-per-channel"]).per_channel is False


def test_the_export_is_the_fast_graph_onnxruntime_fuses(bert_onnx, tiny_bert_path):
    """Eager attention in the graph (no SDPA mask chain of IsNaN/Where), LayerNorm+residual fused by onnxruntime's
    transformer optimizer, and the model itself left with the attention implementation it had."""
    import onnx

    from distilqa.infra.models import load_qa_model

    out, report = bert_onnx
    ops = {node.op_type for node in onnx.load(str(out / ONNX_FILE)).graph.node}
    assert "IsNaN" not in ops
    assert "SkipLayerNormalization" in ops
    assert report["graph_optimization"]["fused"]["SkipLayerNormalization"] > 0
    assert "eager attention" in report["exporter"]
    model = load_qa_model(tiny_bert_path)
    from distilqa.export.onnx import eager_attention

    before = model.config._attn_implementation
    with eager_attention(model):
        assert model.config._attn_implementation == "eager"
    assert model.config._attn_implementation == before
