"""Deployable students: ONNX export (``onnx``), INT8 quantization (``quantize``) and the parity check that gates
the written folder (``parity``); ``exporter.export_model`` puts them together.

The names are re-exported lazily, so ``from distilqa.export import export_model`` keeps working.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "export_model": "distilqa.export.exporter",
    "display_name": "distilqa.export.exporter",
    "REPORT_FILE": "distilqa.export.exporter",
    "export_onnx": "distilqa.export.onnx",
    "onnx_input_names": "distilqa.export.onnx",
    "DEFAULT_OPSET": "distilqa.export.onnx",
    "quantize_int8": "distilqa.export.quantize",
    "QuantizeOptions": "distilqa.export.quantize",
    "ParityError": "distilqa.export.parity",
    "ParityTolerance": "distilqa.export.parity",
    "OnnxQAModel": "distilqa.qa.backends",
    "ONNX_FILE": "distilqa.qa.backends",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'distilqa.export' has no attribute {name!r}")
