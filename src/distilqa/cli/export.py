"""``distilqa export``: write a model as ONNX (optionally INT8) after a parity check against PyTorch.

The output folder (model.onnx, tokenizer, config.json, distilqa_export.json, README.md) is written only when
the check passes, or with --force. Parity data: --data, else the built-in demo dev set (91 questions).
"""

from __future__ import annotations

import argparse
import json

from distilqa.cli.options import add_feature_args, feature_params


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="distilqa export", description=__doc__)
    parser.add_argument(
        "--model", required=True, help="PyTorch QA model folder (saved by distilqa train / distill)"
    )
    parser.add_argument("--output", required=True, help="folder to write the ONNX export to")
    parser.add_argument("--quantize", choices=["int8"], help="dynamic INT8 quantization (default: fp32)")
    parser.add_argument("--opset", type=int, default=18, help="ONNX opset (default %(default)s)")
    parser.add_argument(
        "--force", action="store_true", help="write the export even when the parity check fails"
    )
    check = parser.add_argument_group("parity check")
    check.add_argument(
        "--data", help="SQuAD .json/.jsonl file for the check (default: the built-in demo dev set)"
    )
    check.add_argument("--limit", type=int, help="use only the first N questions of --data")
    check.add_argument(
        "--batch-size", type=int, default=32, help="windows per forward pass (default %(default)s)"
    )
    check.add_argument(
        "--max-logit-diff",
        type=float,
        default=1e-3,
        help="fp32: largest |ONNX - PyTorch| logit (default %(default)s)",
    )
    check.add_argument(
        "--min-span-agreement",
        type=float,
        default=0.8,
        help="INT8: share of answers equal to PyTorch fp32's (default %(default)s)",
    )
    check.add_argument(
        "--max-f1-drop",
        type=float,
        default=1.0,
        help="INT8: largest F1 loss in points vs PyTorch fp32 (default %(default)s)",
    )
    quant = parser.add_argument_group("INT8 quantization")
    quant.add_argument(
        "--quantize-ops",
        default="MatMul,Gather",
        help="op types to quantize, comma-separated (default %(default)s)",
    )
    quant.add_argument(
        "--per-channel",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="one weight scale per output channel (default; --no-per-channel: one per tensor, less accurate)",
    )
    quant.add_argument("--reduce-range", action="store_true", help="7-bit weights (for CPUs without VNNI)")
    quant.add_argument(
        "--quantize-qa-head", action="store_true", help="quantize the QA head too (kept in float by default)"
    )
    add_feature_args(parser)
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from distilqa.errors import InputError
    from distilqa.export.exporter import export_model
    from distilqa.export.parity import ParityTolerance
    from distilqa.export.quantize import QuantizeOptions

    ops = tuple(op.strip() for op in args.quantize_ops.split(",") if op.strip())
    if not ops:
        raise InputError("--quantize-ops is empty; give op types such as MatMul,Gather")
    report = export_model(
        args.model,
        args.output,
        quantize=args.quantize,
        data=args.data,
        limit=args.limit,
        params=feature_params(args),
        tolerance=ParityTolerance(args.max_logit_diff, args.min_span_agreement, args.max_f1_drop),
        quantize_options=QuantizeOptions(ops, args.per_channel, args.reduce_range, not args.quantize_qa_head),
        opset=args.opset,
        force=args.force,
        batch_size=args.batch_size,
    )
    print(json.dumps(report["parity"], indent=2))
    return 0
