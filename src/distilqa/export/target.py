"""``distilqa export --target auto``: the fastest backend x precision for a model on this machine, within an F1
budget, written as a folder that ``evaluate``, ``predict`` and the predictor load directly.

Every backend this machine runs natively (:func:`distilqa.bench.inference.default_backends`: PyTorch fp32, PyTorch
bf16 where the CPU has AMX / AVX512-BF16, ONNX fp32, ONNX INT8) is measured end to end on the user's questions by
the inference benchmark (each in its own process, as ``distilqa benchmark inference`` does). A candidate is
eligible when its F1 is at most ``f1_budget`` below the PyTorch fp32 F1 and its export passed the parity check;
the eligible one with the most questions per second is written:

- an ONNX winner: the export folder of ``distilqa export`` (with or without ``--quantize int8``);
- a PyTorch winner: the model's files, with :data:`TARGET_FILE` naming the precision it runs in, which
  :meth:`distilqa.qa.predictor.QAPredictor.from_pretrained` uses when no precision is given.

Either way the folder holds :data:`TARGET_FILE` (every candidate's F1, questions/s, p50/p95 latency at batch 1,
size, the hardware and the machine's load) and :data:`TARGET_REPORT` (the same as a markdown table).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from distilqa.errors import InputError
from distilqa.qa.predictor import TARGET_FILE, read_target  # noqa: F401 (read_target: the folder file's reader)

TARGET_REPORT = "distilqa_target.md"
PRECISION_OF = {"torch": "fp32", "torch-bf16": "bf16", "onnx": "fp32", "onnx-int8": "int8"}


def choose(rows: list[dict[str, Any]], f1_budget: float) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The fastest eligible row and every row marked ``eligible`` (see the module docstring)."""
    reference = next((r for r in rows if r["backend"] == "torch"), None)
    if reference is None:
        raise InputError("the PyTorch fp32 row is missing; it is the reference of the F1 budget")
    floor = reference["f1"] - f1_budget
    marked = [{**r, "eligible": r["f1"] >= floor and not r.get("note")} for r in rows]
    eligible = [r for r in marked if r["eligible"]]
    return max(eligible, key=lambda r: r["qps_batch32"]), marked


def markdown(report: dict[str, Any]) -> str:
    from distilqa.infra.markdown import render_table

    header = [
        "backend",
        "precision",
        "F1",
        "EM",
        "questions/s",
        "p50 ms",
        "p95 ms",
        "disk MB",
        "eligible",
        "chosen",
    ]
    rows = [
        [
            r["backend"], PRECISION_OF[r["backend"]], f"{r['f1']:.2f}", f"{r['exact_match']:.2f}",
            f"{r['qps_batch32']:.1f}", f"{r['p50_ms_batch1']:.1f}", f"{r['p95_ms_batch1']:.1f}",
            f"{r['disk_mb']:.1f}", "yes" if r["eligible"] else "no" + (f" ({r['note']})" if r.get("note") else ""),
            "**yes**" if r["backend"] == report["chosen"]["backend"] else "",
        ]
        for r in report["candidates"]
    ]  # fmt: skip
    return (
        f"# distilqa export --target auto\n\nModel `{report['model']}` on {report['hardware']} "
        f"(load average before: {report['load_average']}); {report['num_questions']} questions of "
        f"{report['data']}; F1 budget {report['f1_budget']:g} below PyTorch fp32 ({report['reference_f1']:.2f}).\n\n"
        + render_table(header, rows)
        + "\n"
    )


def export_auto(
    model_dir: str | os.PathLike,
    output: str | os.PathLike,
    data: str | os.PathLike,
    limit: int | None = None,
    params=None,
    f1_budget: float = 0.5,
    threads: int | None = None,
    latency_samples: int = 20,
    isolate: bool = True,
    log=print,
) -> dict[str, Any]:
    """Measure every candidate, write the fastest within ``f1_budget`` to ``output``; returns the report."""
    from distilqa.bench.inference import InferenceBenchmarkSettings, default_backends, run_benchmark
    from distilqa.export.exporter import export_model
    from distilqa.infra.files import atomic_directory, atomic_write_json, atomic_write_text
    from distilqa.infra.ownership import EXPORT, MODEL, check_output
    from distilqa.qa.features import FeatureParams
    from distilqa.qa.predictor import is_onnx_folder

    if not (f1_budget >= 0):  # also refuses NaN
        raise InputError(f"--f1_budget must be a number >= 0, got {f1_budget}")
    if is_onnx_folder(model_dir):
        raise InputError(f"{model_dir} is already an ONNX export; give the PyTorch model folder it came from")
    check_output(output, EXPORT, "--output", {"model": model_dir, "--data file": data})
    params = params or FeatureParams()
    settings = InferenceBenchmarkSettings(
        data=str(data), limit=limit, threads=threads, latency_samples=latency_samples,
        max_seq_length=params.max_seq_length, doc_stride=params.doc_stride, max_query_length=params.max_query_length,
    )  # fmt: skip
    rows = run_benchmark([str(model_dir)], settings, backends=default_backends(), isolate=isolate, log=log)
    chosen, marked = choose(rows, f1_budget)
    keep = ("backend", "precision", "exact_match", "f1", "qps_batch32", "p50_ms_batch1", "p95_ms_batch1", "disk_mb", "peak_rss_mb", "note", "eligible")  # fmt: skip
    report = {
        "model": str(model_dir),
        "data": str(data),
        "num_questions": rows[0]["num_questions"],
        "hardware": rows[0]["hardware"],
        "load_average": rows[0]["load_average"],
        "f1_budget": f1_budget,
        "reference_f1": next(r["f1"] for r in rows if r["backend"] == "torch"),
        "candidates": [{k: r.get(k) for k in keep} for r in marked],
        "chosen": {"backend": chosen["backend"], "precision": PRECISION_OF[chosen["backend"]]},
        "feature_params": params.to_dict(),
    }
    log(f"chosen: {chosen['backend']} ({chosen['qps_batch32']:.1f} questions/s, F1 {chosen['f1']:.2f})")
    extra = {TARGET_FILE: report, TARGET_REPORT: markdown(report)}
    if chosen["backend"].startswith("onnx"):
        quantize = "int8" if chosen["backend"] == "onnx-int8" else None
        export_model(model_dir, output, quantize=quantize, data=data, limit=limit, params=params, extra_files=extra, log=log)  # fmt: skip
    else:
        from distilqa.infra.models import resolve_model

        source = resolve_model(model_dir)
        with atomic_directory(output, kind=MODEL, what="--output") as tmp:
            for item in Path(source).iterdir():
                if item.is_file() and not item.name.startswith("."):
                    shutil.copy2(item, tmp / item.name)
            atomic_write_json(tmp / TARGET_FILE, report)
            atomic_write_text(tmp / TARGET_REPORT, extra[TARGET_REPORT])
    log(f"wrote {output}: {chosen['backend']}; report in {Path(output) / TARGET_REPORT}")
    return report
