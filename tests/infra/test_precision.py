"""Precision: what auto picks on which device, what is refused, and bf16 round trips on a tiny model."""

from __future__ import annotations

import numpy as np
import pytest

import distilqa.infra.precision as precision
from distilqa.errors import InputError
from distilqa.infra.precision import resolve_precision
from distilqa.qa.data import load_examples
from distilqa.qa.features import FeatureParams, build_eval_features
from distilqa.qa.predictor import QAPredictor

PARAMS = FeatureParams(max_seq_length=64, doc_stride=24, max_query_length=20)


@pytest.mark.parametrize("native", [True, False])
def test_auto_on_a_cpu_is_bf16_only_where_it_is_native(monkeypatch, native):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    chosen = resolve_precision("auto", "cpu")
    assert chosen.name == ("bf16" if native else "fp32") and chosen.requested == "auto"
    assert ("has native" if native else "no native") in chosen.reason
    assert resolve_precision(None).name == resolve_precision("fp32").name == "fp32"
    assert chosen.to_dict()["precision"] == chosen.name


def test_what_a_cpu_cannot_run_well_is_refused(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    with pytest.raises(InputError, match="no native bf16.*fp32 or auto"):
        resolve_precision("bf16", "cpu")
    with pytest.raises(InputError, match="fp16 needs a CUDA device"):
        resolve_precision("fp16", "cpu")
    with pytest.raises(InputError, match="not one of fp32, bf16, fp16, auto"):
        resolve_precision("int4", "cpu")
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert resolve_precision("BF16", "cpu").name == "bf16"


def test_a_bf16_predictor_runs_in_bf16_and_hands_back_fp32_logits(monkeypatch, tiny_bert_path, tiny_squad):
    import torch

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)  # bf16 runs everywhere, only slower
    examples = load_examples(tiny_squad)
    fp32 = QAPredictor.from_pretrained(tiny_bert_path, params=PARAMS)
    bf16 = QAPredictor.from_pretrained(tiny_bert_path, params=PARAMS, precision="auto")
    assert bf16.precision.name == "bf16" and next(bf16.model.parameters()).dtype == torch.bfloat16
    assert next(fp32.model.parameters()).dtype == torch.float32
    features = build_eval_features(examples, fp32.tokenizer, PARAMS)
    (s32, e32), (s16, e16) = fp32.logits(features, progress=False), bf16.logits(features, progress=False)
    assert s16.dtype == np.float32
    mask = np.asarray(features["attention_mask"], dtype=bool)
    scale = np.abs(s32[mask]).max()
    assert 0 < np.abs(s16 - s32)[mask].max() <= 0.05 * scale + 0.05  # bf16 has 8 bits of mantissa
    assert np.abs(e16 - e32)[mask].max() <= 0.05 * np.abs(e32[mask]).max() + 0.05


def test_an_onnx_backend_refuses_another_precision(tiny_bert_path):
    class FakeOnnx:
        input_names = ["input_ids", "attention_mask"]

    tokenizer = QAPredictor.from_pretrained(tiny_bert_path).tokenizer
    assert QAPredictor(FakeOnnx(), tokenizer, precision="auto").precision.name == "fp32"
    with pytest.raises(InputError, match="ONNX export runs at the precision it was exported with"):
        QAPredictor(FakeOnnx(), tokenizer, precision="bf16")
