"""Where the time of end-to-end inference goes: features, forward passes and post-processing timed apart, then
the forward passes profiled by operator (torch's profiler, or onnxruntime's own for an export).

One process, the questions of ``--data`` answered as ``distilqa evaluate`` does (windows sorted by length, batches
of ``--batch-size``), ``--threads`` threads, after a warm-up on a few questions; each stage is the best of
``--repeats`` passes. Prints two markdown tables and writes them as JSON.

    python experiments/perf/profile_inference.py --model runs/student/model \\
        --data ../shared/data/squad-v1.1-subset/dev.json --json /tmp/profile-student.json
    python experiments/perf/profile_inference.py --model runs/student-int8 --data ... # a 'distilqa export' folder
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile
import time
from pathlib import Path


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="PyTorch model folder or 'distilqa export' folder")
    parser.add_argument("--data", required=True, help="SQuAD .json/.jsonl file")
    parser.add_argument("--limit", type=int, help="only the first LIMIT questions")
    parser.add_argument("--precision", default="fp32", help="fp32, bf16 or auto (PyTorch folders)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-seq-length", type=int, default=256)
    parser.add_argument("--doc-stride", type=int, default=96)
    parser.add_argument("--max-query-length", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--top", type=int, default=12, help="operators listed")
    parser.add_argument("--json", help="write the stages and operators here")
    return parser.parse_args(argv)


def best_of(fn, repeats: int):
    best, value = float("inf"), None
    for _ in range(repeats):
        began = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - began)
    return best, value


def torch_operators(predictor, features, batch_size: int) -> tuple[list[tuple[str, float, int]], float]:
    """``[(operator, self CPU seconds, calls)]`` of one pass of forward passes, and the profiled total."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        predictor.logits(features, batch_size=batch_size, progress=False)
    rows = [(e.key, e.self_cpu_time_total / 1e6, e.count) for e in prof.key_averages()]
    return rows, sum(r[1] for r in rows)


def onnx_operators(
    predictor, features, batch_size: int, threads: int
) -> tuple[list[tuple[str, float, int]], float]:
    """The same from onnxruntime's profiler, grouped by operator type (fused kernels keep their own names)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(tempfile.mkdtemp()) / "ort")
    original = predictor.model.session
    predictor.model.session = ort.InferenceSession(
        str(predictor.model.path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    try:
        predictor.logits(features, batch_size=batch_size, progress=False)
        trace = json.loads(Path(predictor.model.session.end_profiling()).read_text())
    finally:
        predictor.model.session = original
    seconds, calls = collections.Counter(), collections.Counter()
    for event in trace:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            op = event.get("args", {}).get("op_name", "?")
            seconds[op] += event["dur"] / 1e6
            calls[op] += 1
    rows = [(op, s, calls[op]) for op, s in seconds.items()]
    return rows, sum(seconds.values())


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from distilqa.qa.data import load_examples
    from distilqa.qa.features import FeatureParams, build_eval_features
    from distilqa.qa.predictor import QAPredictor, is_onnx_folder

    torch.set_num_threads(args.threads)
    examples = load_examples(args.data, check_offsets="ignore")
    if args.limit:
        examples = examples[: args.limit]
    from distilqa.bench.inference import export_backend

    onnx = is_onnx_folder(args.model)
    params = FeatureParams(args.max_seq_length, args.doc_stride, args.max_query_length)
    predictor = QAPredictor.from_pretrained(
        args.model, params=params, precision=None if onnx else args.precision
    )
    if onnx:
        from distilqa.qa.backends import OnnxQAModel

        predictor.model = OnnxQAModel(Path(args.model), threads=args.threads)
    predictor.predict_examples(examples[:8], batch_size=args.batch_size, progress=False)  # warm-up

    t_features, features = best_of(
        lambda: build_eval_features(examples, predictor.tokenizer, params), args.repeats
    )
    t_forward, (start, end) = best_of(
        lambda: predictor.logits(features, batch_size=args.batch_size, progress=False), args.repeats
    )
    t_post, _ = best_of(lambda: predictor.postprocess(examples, features, start, end), args.repeats)
    total = t_features + t_forward + t_post
    stages = [
        {"stage": "features (tokenize, window)", "seconds": t_features},
        {"stage": "forward passes", "seconds": t_forward},
        {"stage": "post-processing", "seconds": t_post},
    ]
    if onnx:
        rows, profiled = onnx_operators(predictor, features, args.batch_size, args.threads)
    else:
        rows, profiled = torch_operators(predictor, features, args.batch_size)
    rows.sort(key=lambda r: -r[1])
    operators = [
        {"operator": name, "seconds": s, "share_of_forward": s / profiled, "calls": calls}
        for name, s, calls in rows[: args.top]
    ]
    from distilqa.infra.hardware import hardware_description

    hardware = hardware_description()
    backend = export_backend(args.model) if onnx else f"torch-{predictor.precision.name}"
    print(
        f"# {args.model}: {len(examples)} questions, {len(features['input_ids'])} windows, "
        f"{backend}, {args.threads} threads, {hardware}\n"
    )
    print("| stage | seconds | share |\n|---|---:|---:|")
    for s in stages:
        print(f"| {s['stage']} | {s['seconds']:.3f} | {s['seconds'] / total:.1%} |")
    print(f"| end to end | {total:.3f} ({len(examples) / total:.1f} questions/s) | 100% |\n")
    print("| operator (self time) | seconds | share of forward | calls |\n|---|---:|---:|---:|")
    for op in operators:
        print(f"| {op['operator']} | {op['seconds']:.3f} | {op['share_of_forward']:.1%} | {op['calls']} |")
    if args.json:
        record = {
            "model": args.model,
            "backend": backend,
            "questions": len(examples),
            "windows": len(features["input_ids"]),
            "threads": args.threads,
            "batch_size": args.batch_size,
            "max_seq_length": args.max_seq_length,
            "doc_stride": args.doc_stride,
            "hardware": hardware,
            "stages": stages,
            "questions_per_second": len(examples) / total,
            "profiled_forward_seconds": profiled,
            "operators": operators,
        }
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
