"""INT8 dynamic quantization of an exported ONNX model (onnxruntime)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from distilqa.qa.backends import require


@dataclass
class QuantizeOptions:
    """``quantize_dynamic`` settings (see the onnxruntime quantization docs).

    Args:
        op_types (`tuple[str, ...]`, defaults to ``("MatMul", "Gather")``): op types to quantize; ``Gather`` is
            the embedding lookup (most of a small model's bytes).
        per_channel (`bool`, defaults to `True`): one scale per output channel instead of one per weight
            matrix; why it is the default: docs/RESULTS.md, "How fast is the student?" (Which INT8 settings).
        reduce_range (`bool`, defaults to `False`): 7-bit weights, for CPUs without VNNI where 8-bit overflows.
        keep_qa_head (`bool`, defaults to `True`): leave the QA head (the ``hidden x 2`` MatMul) in float.
    """

    op_types: tuple[str, ...] = ("MatMul", "Gather")
    per_channel: bool = True
    reduce_range: bool = False
    keep_qa_head: bool = True


def quantize_int8(
    source: str | os.PathLike, target: str | os.PathLike, options: QuantizeOptions | None = None
) -> dict[str, Any]:
    """INT8 dynamic quantization of an fp32 ONNX file; returns the settings used (for the export report).

    The model is first pre-processed as the onnxruntime docs recommend (``quant_pre_process``: shape inference
    and graph optimisation); weights become ``QInt8``, activations are quantized at run time.
    """
    require("onnxruntime")
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    options = options or QuantizeOptions()
    with tempfile.TemporaryDirectory(prefix="distilqa-quant-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # Symbolic shape inference stops short on torch.export graphs ("Incomplete symbolic shape inference");
        # ONNX shape inference and onnxruntime's basic graph optimisation still run.
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        excluded = _qa_head_nodes(onnx.load(str(prepared))) if options.keep_qa_head else []
        quantize_dynamic(
            str(prepared),
            str(target),
            weight_type=QuantType.QInt8,
            op_types_to_quantize=list(options.op_types),
            per_channel=options.per_channel,
            reduce_range=options.reduce_range,
            nodes_to_exclude=excluded,
        )
    return {
        "method": "onnxruntime.quantization.quantize_dynamic after quant_pre_process(skip_symbolic_shape=True)",
        "weight_type": "QInt8",
        **{k: list(v) if isinstance(v, tuple) else v for k, v in asdict(options).items()},
        "excluded_nodes": excluded,
    }


def _qa_head_nodes(model) -> list[str]:
    """MatMul nodes whose weight is (hidden, 2): the QA head."""
    shapes = {init.name: list(init.dims) for init in model.graph.initializer}
    return [
        n.name
        for n in model.graph.node
        if n.op_type in ("MatMul", "Gemm") and any(shapes.get(i, [0])[-1:] == [2] for i in n.input)
    ]
