"""Which INT8 settings keep a student's F1? Dynamic-quantization variants of one model, side by side.

Exports the model to ONNX once, optionally applies onnxruntime's transformer graph fusion, then builds each
variant with ``onnxruntime.quantization.quantize_dynamic`` (QA head kept in float, as ``distilqa export`` does)
and reports, for each: windows/s on one batch (best of 3, ``--threads``), F1 on the data and its change against
PyTorch fp32, the share of answers unchanged, the largest logit difference and the file size. Results of the
variants are cached in OUTPUT, so a rerun only measures.

    python experiments/perf/int8_variants.py --model runs/alone/model --data ../shared/data/squad-v1.1-subset/dev.json \\
        --output /tmp/int8-variants
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="PyTorch QA model folder")
    parser.add_argument("--data", required=True, help="SQuAD .json/.jsonl file for F1")
    parser.add_argument("--output", required=True, help="folder for the ONNX files")
    parser.add_argument("--variants", help="comma-separated subset of the variant names")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-seq-length", type=int, default=256)
    parser.add_argument("--doc-stride", type=int, default=96)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process
    from onnxruntime.transformers.optimizer import optimize_model

    from distilqa.export.onnx import export_onnx
    from distilqa.export.parity import ParityCheck, ParityTolerance
    from distilqa.export.quantize import _qa_head_nodes
    from distilqa.infra.models import load_qa_model, load_tokenizer
    from distilqa.qa.backends import OnnxQAModel
    from distilqa.qa.data import load_examples
    from distilqa.qa.features import FeatureParams

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    model, tokenizer = load_qa_model(args.model), load_tokenizer(args.model)
    examples = load_examples(args.data, check_offsets="ignore")
    check = ParityCheck(
        model,
        tokenizer,
        examples,
        FeatureParams(args.max_seq_length, args.doc_stride, 64),
        ParityTolerance(),
        32,
    )
    print(f"pytorch fp32: {check.scores}", flush=True)
    raw = out / "raw.onnx"
    if not raw.exists():
        export_onnx(model, tokenizer, raw)
    fused = out / "fused.onnx"
    if not fused.exists():
        optimized = optimize_model(
            str(raw),
            model_type="bert",
            num_heads=model.config.num_attention_heads,
            hidden_size=model.config.hidden_size,
        )
        print(f"fusion: {optimized.get_fused_operator_statistics()}", flush=True)
        optimized.save_model_to_file(str(fused))
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in check.features.column_names]
    batch = {n: np.asarray(check.features[n][:32], dtype=np.int64) for n in names}

    def windows_per_s(path: Path) -> float:
        session = OnnxQAModel(path, threads=args.threads)
        feeds = {n: batch[n] for n in session.input_names}
        session(feeds)
        best = float("inf")
        for _ in range(3):
            began = time.perf_counter()
            session(feeds)
            best = min(best, time.perf_counter() - began)
        return len(batch["input_ids"]) / best

    def quantized(
        source: Path, name: str, ops=("MatMul", "Gather"), weight_type=QuantType.QInt8, **options
    ) -> Path:
        target = out / f"{name}.onnx"
        if not target.exists():
            prepared = out / f"prepared-{source.stem}.onnx"
            if not prepared.exists():
                quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
            head = _qa_head_nodes(onnx.load(str(prepared)))
            quantize_dynamic(
                str(prepared), str(target), weight_type=weight_type, op_types_to_quantize=list(ops),
                nodes_to_exclude=head, **options,
            )  # fmt: skip
        return target

    variants = {
        "fp32": lambda: raw,
        "fp32-fused": lambda: fused,
        "int8-per-tensor": lambda: quantized(raw, "int8-per-tensor"),
        "int8-per-tensor-reduce-range": lambda: quantized(raw, "int8-per-tensor-rr", reduce_range=True),
        "int8-per-tensor-matmul-only": lambda: quantized(raw, "int8-per-tensor-mm", ops=("MatMul",)),
        "int8-per-tensor-fused": lambda: quantized(fused, "int8-per-tensor-fused"),
        "int8-per-channel": lambda: quantized(raw, "int8-per-channel", per_channel=True),
        "int8-per-channel-matmul-only": lambda: quantized(
            raw, "int8-per-channel-mm", ops=("MatMul",), per_channel=True
        ),
        "uint8-weights-matmul-only": lambda: quantized(
            raw, "uint8-mm", ops=("MatMul",), weight_type=QuantType.QUInt8
        ),
    }
    wanted = args.variants.split(",") if args.variants else list(variants)
    unknown = [w for w in wanted if w not in variants]
    if unknown:
        print(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(variants)}", file=sys.stderr)
        return 2
    print("| variant | windows/s (batch 32) | F1 | F1 change | answers unchanged | max logit diff | MB |")
    print("|---|---|---|---|---|---|---|")
    for name in wanted:
        path = variants[name]()
        speed = windows_per_s(path)
        r = check.compare(path, quantized=name.startswith(("int8", "uint8")))
        print(
            f"| {name} | {speed:.1f} | {r['f1']:.2f} | {r['f1_change']:+.2f} | {r['span_agreement']:.1%} | "
            f"{r['max_abs_logit_diff']:.3g} | {path.stat().st_size / 1e6:.1f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
