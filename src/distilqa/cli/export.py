"""``distilqa export``: write a model as ONNX (optionally INT8) after a parity check against PyTorch.

The output folder (model.onnx, tokenizer, config.json, distilqa_export.json, README.md) is written only when
the check passes, or with --force. Parity data: --data, else the built-in demo dev set (91 questions).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal


@dataclass
class ExportOptions:
    """What to export, where, and how."""

    model: str = field(metadata={"help": "PyTorch QA model folder (saved by distilqa train / distill)"})
    output: str = field(metadata={"help": "folder to write the ONNX export to"})
    quantize: Literal["int8"] | None = field(
        default=None, metadata={"help": "dynamic INT8 quantization (default: fp32)"}
    )
    target: Literal["onnx", "auto"] = field(
        default="onnx",
        metadata={
            "help": "onnx: the ONNX export (fp32, or --quantize int8); auto: measure every backend x precision "
            "this machine runs on --data, write the fastest within --f1_budget of PyTorch fp32, with a report"
        },
    )
    f1_budget: float = field(
        default=0.5, metadata={"help": "--target auto: the most F1 a candidate may lose against PyTorch fp32"}
    )
    opset: int = field(default=18, metadata={"help": "ONNX opset"})
    force: bool = field(default=False, metadata={"help": "write the export even when the parity check fails"})


@dataclass
class ParityData:
    """The questions of the parity check."""

    data: str | None = field(
        default=None,
        metadata={"help": "SQuAD .json/.jsonl file for the check (default: the built-in demo dev set)"},
    )
    limit: int | None = field(default=None, metadata={"help": "use only the first N questions of --data"})
    batch_size: int = field(default=32, metadata={"help": "windows per forward pass"})
    null_threshold: float | None = field(
        default=None,
        metadata={
            "help": "SQuAD 2.0 no-answer threshold of the check. Default: the one saved with the model "
            "(distilqa_threshold.json, carried into the export), else 0.0",
        },
    )


@dataclass
class QuantizeOps:
    """The op types of INT8 quantization, as one option."""

    quantize_ops: str = field(
        default="MatMul,Gather", metadata={"help": "op types to quantize, comma-separated"}
    )


def build_parser():
    from distilqa.cli.parser import CommandParser, Section
    from distilqa.cli.quiet import Quiet
    from distilqa.export.parity import ParityTolerance
    from distilqa.export.quantize import QuantizeOptions
    from distilqa.qa.features import FeatureParams

    int8 = "INT8 quantization"
    return CommandParser(
        "distilqa export",
        ExportOptions,
        Section(Quiet),
        Section(ParityData, "parity check"),
        Section(ParityTolerance, "parity check"),
        Section(QuantizeOps, int8),
        Section(
            QuantizeOptions,
            int8,
            exclude=("op_types",),
            fields={"keep_qa_head": {"no_aliases": ["--quantize_qa_head"]}},
        ),
        Section(FeatureParams, "windowing"),
        description=__doc__,
    )


def main(argv: list[str]) -> int:
    import dataclasses

    from distilqa.errors import InputError
    from distilqa.export.exporter import export_model

    options, _, parity, tolerance, ops, quantize, params = build_parser().parse(argv)
    op_types = tuple(op.strip() for op in ops.quantize_ops.split(",") if op.strip())
    if not op_types:
        raise InputError("--quantize_ops is empty; give op types such as MatMul,Gather")
    if options.target == "auto":
        from distilqa.demo import demo_data
        from distilqa.export.target import export_auto

        if options.quantize:
            raise InputError("--target auto chooses the quantization itself; leave out --quantize")
        report = export_auto(
            options.model,
            options.output,
            data=parity.data or demo_data("dev"),
            limit=parity.limit,
            params=params,
            f1_budget=options.f1_budget,
        )
        print(json.dumps(report["chosen"]))
        return 0
    report = export_model(
        options.model,
        options.output,
        quantize=options.quantize,
        data=parity.data,
        limit=parity.limit,
        params=params,
        tolerance=tolerance,
        quantize_options=dataclasses.replace(quantize, op_types=op_types),
        opset=options.opset,
        force=options.force,
        batch_size=parity.batch_size,
        null_threshold=parity.null_threshold,
    )
    print(json.dumps(report["parity"], indent=2))
    return 0
