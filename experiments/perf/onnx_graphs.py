"""Why onnxruntime ran slower than PyTorch: the same model exported with each attention implementation, with and
without onnxruntime's transformer fusions, fp32 and INT8, timed side by side on one batch against PyTorch.

One process, one batch of random token ids (``--batch`` x ``--length``, full attention mask), ``--threads``
threads, best of ``--repeats`` after a warm-up. Prints a markdown table and writes the rows as JSON.

    python experiments/perf/onnx_graphs.py --model runs/student/model --output /tmp/onnx-graphs \\
        --json docs/results/onnx-graphs-amx.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def best_of(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True)
    parser.add_argument("--output", required=True, help="folder for the ONNX files")
    parser.add_argument("--json", help="write the rows here")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    import onnx
    import onnxruntime as ort
    import torch

    from distilqa.export.onnx import export_onnx, optimize_for_cpu
    from distilqa.export.quantize import quantize_int8
    from distilqa.infra.hardware import cpu_line
    from distilqa.infra.markdown import render_table
    from distilqa.infra.models import load_qa_model, load_tokenizer

    torch.set_num_threads(args.threads)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = load_tokenizer(args.model)
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, tokenizer.vocab_size, size=(args.batch, args.length))
    feeds = {
        "input_ids": ids.astype(np.int64),
        "attention_mask": np.ones_like(ids, dtype=np.int64),
        "token_type_ids": np.zeros_like(ids, dtype=np.int64),
    }
    rows = []
    model = load_qa_model(args.model)
    tensors = {k: torch.from_numpy(v) for k, v in feeds.items()}
    with torch.inference_mode():
        rows.append({"variant": "PyTorch fp32", "seconds": best_of(lambda: model(**tensors), args.repeats)})
        bf16 = load_qa_model(args.model).to(torch.bfloat16)
        rows.append(
            {"variant": "PyTorch bf16 weights", "seconds": best_of(lambda: bf16(**tensors), args.repeats)}
        )
    files = {}
    for attention in ("sdpa", "eager"):
        path = out / f"{attention}.onnx"
        if not path.exists():
            if attention == "sdpa":  # what torch.export traces without distilqa's eager switch
                import distilqa.export.onnx as onnx_export

                keep = onnx_export.eager_attention
                onnx_export.eager_attention = lambda model: __import__("contextlib").nullcontext()
                try:
                    export_onnx(model, tokenizer, path)
                finally:
                    onnx_export.eager_attention = keep
            else:
                export_onnx(model, tokenizer, path)
        files[f"{attention} attention"] = path
        fused = out / f"{attention}-fused.onnx"
        if not fused.exists():
            fused.write_bytes(path.read_bytes())
            optimize_for_cpu(fused, model.config)
        files[f"{attention} attention + fusions"] = fused
    for name, path in list(files.items()):
        int8 = path.with_name(path.stem + "-int8.onnx")
        if not int8.exists():
            quantize_int8(path, int8)
        files[f"{name}, INT8"] = int8
    for name, path in files.items():
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        seconds = best_of(lambda s=session, n=names: s.run(None, {k: feeds[k] for k in n}), args.repeats)
        ops = sorted({node.op_type for node in onnx.load(str(path)).graph.node})
        rows.append({"variant": f"ONNX {name}", "seconds": seconds, "ops": ops})
    base = rows[0]["seconds"]
    for row in rows:
        row["x_pytorch_fp32"] = round(base / row["seconds"], 2)
        row["ms_per_batch"] = round(row.pop("seconds") * 1000, 1)
    header = {"hardware": cpu_line(), "model": str(args.model), **{k: getattr(args, k) for k in ("batch", "length", "threads", "repeats")}, "onnxruntime": ort.__version__, "torch": torch.__version__}  # fmt: skip
    print(header)
    print(render_table(["variant", "ms / batch", "x PyTorch fp32"], [[r["variant"], f"{r['ms_per_batch']:.1f}", f"{r['x_pytorch_fp32']:.2f}"] for r in rows]))  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps({"settings": header, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
