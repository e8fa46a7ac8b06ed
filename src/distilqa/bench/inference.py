"""Speed against accuracy of QA models on one CPU: PyTorch fp32, ONNX fp32 and ONNX INT8, side by side.

For every model and backend, in one run on the same questions: EM / F1, questions per second at batch 32
(end to end: features, forward passes and post-processing of the whole set), p50 / p95 latency of single
questions at batch 1 (end to end too), parameters, size of the weights on disk, and the peak RSS of a fresh
process that loads the model and runs all of it (each model/backend runs in its own subprocess:
``python -m distilqa.cli.benchmark_inference --worker``). Thread counts are pinned; warm-up runs come first.

A PyTorch folder is exported to ONNX (and INT8) into a temporary folder on the fly, with the parity check on
the built-in demo dev set (a failed check is reported, not fatal); a folder made by ``distilqa export`` is
measured as it is, with its own backend.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from distilqa.bench.process import run_child
from distilqa.errors import InputError
from distilqa.qa.features import WINDOW

BACKENDS = ("torch", "torch-bf16", "onnx", "onnx-int8")
# the PyTorch backends and the precision each runs the model in (distilqa.infra.precision)
TORCH_PRECISIONS = {"torch": "fp32", "torch-bf16": "bf16"}


def default_backends() -> list[str]:
    """Every backend this machine runs natively: bf16 only on a CPU with AMX / AVX512-BF16."""
    from distilqa.infra.precision import cpu_has_native_bf16

    return [b for b in BACKENDS if b != "torch-bf16" or cpu_has_native_bf16()]


RESULT_PREFIX = "DISTILQA_INFERENCE_RESULT "
COLUMNS = [
    ("name", "model"),
    ("backend", "backend"),
    ("exact_match", "EM"),
    ("f1", "F1"),
    ("qps_batch32", "questions/s (batch 32)"),
    ("speedup", "speed-up"),
    ("p50_ms_batch1", "p50 ms (batch 1)"),
    ("p95_ms_batch1", "p95 ms (batch 1)"),
    ("params", "parameters"),
    ("disk_mb", "disk MB"),
    ("peak_rss_mb", "peak RSS MB"),
]


@dataclass
class InferenceBenchmarkSettings:
    """What one benchmark run measures.

    Args:
        data (`str`): SQuAD file (or hub name) with the questions.
        limit (`int`, *optional*): use only the first ``limit`` questions.
        threads (`int`, *optional*): intra-op threads for torch and onnxruntime (default: all logical CPUs).
        batch_size (`int`, defaults to 32): windows per forward pass for the throughput run.
        latency_samples (`int`, defaults to 50): single questions timed at batch 1 (the first ones of the set).
        warmup (`int`, defaults to 3): untimed single-question runs before timing (plus one small batch).
        repeats (`int`, defaults to 1): timed passes over the whole set; questions/s is the best of them (on a
            shared or virtual machine a single pass varied by about 15% between two identical architectures).
        max_seq_length, doc_stride, max_query_length: windowing (384 / 128 / 64 by default).
    """

    data: str
    limit: int | None = None
    threads: int | None = None
    batch_size: int = 32
    latency_samples: int = 50
    warmup: int = 3
    repeats: int = 1
    max_seq_length: int = WINDOW.max_seq_length
    doc_stride: int = WINDOW.doc_stride
    max_query_length: int = WINDOW.max_query_length

    def __post_init__(self):
        for name in ("batch_size", "latency_samples", "threads", "limit", "repeats"):
            value = getattr(self, name)
            minimum = 0 if name == "latency_samples" else 1
            if value is not None and value < minimum:
                raise InputError(f"--{name} must be >= {minimum}, got {value}")
        if self.warmup < 0:
            raise InputError(f"--warmup must be >= 0, got {self.warmup}")
        if not self.threads:
            self.threads = os.cpu_count() or 1

    @property
    def params(self):
        from distilqa.qa.features import FeatureParams

        return FeatureParams(self.max_seq_length, self.doc_stride, self.max_query_length)


def export_backend(folder: str | os.PathLike) -> str | None:
    """``"onnx"`` or ``"onnx-int8"`` for a folder made by ``distilqa export``; `None` for a PyTorch folder."""
    from distilqa.export.exporter import REPORT_FILE
    from distilqa.qa.predictor import is_onnx_folder

    if not is_onnx_folder(folder):
        return None
    report = Path(folder) / REPORT_FILE
    quantized = report.exists() and json.loads(report.read_text(encoding="utf-8")).get("quantization")
    return "onnx-int8" if quantized else "onnx"


def process_peak_rss_mb() -> float:
    """Peak RSS of this process image, in MB (10^6 bytes).

    ``VmHWM`` from /proc, not ``ru_maxrss``: Linux carries ``ru_maxrss`` across fork + exec, so a worker started
    by a large parent would report the parent's peak. Falls back to ``ru_maxrss`` where /proc is missing.
    """
    from distilqa.bench.process import peak_rss_mb

    try:
        with open("/proc/self/status", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) * 1024 / 1e6, 1)
    except OSError:
        pass
    return peak_rss_mb()


def _percentile(values: list[float], q: float) -> float:
    import numpy as np

    return round(float(np.percentile(values, q)), 2) if values else float("nan")


def measure(folder: str | os.PathLike, backend: str, settings: InferenceBenchmarkSettings) -> dict[str, Any]:
    """Measure one model folder with one backend in this process (see the module docstring)."""
    from distilqa.infra.models import folder_size_mb, load_tokenizer
    from distilqa.qa.data import load_examples
    from distilqa.qa.evaluation import evaluate_model
    from distilqa.qa.predictor import QAPredictor

    tokenizer = load_tokenizer(folder)
    precision = TORCH_PRECISIONS.get(backend, "fp32")
    if backend in TORCH_PRECISIONS:
        from distilqa.infra.hardware import pin_threads
        from distilqa.infra.models import count_parameters, load_qa_model

        threads = pin_threads(settings.threads)
        model = load_qa_model(folder)
        params = count_parameters(model)
    else:
        from distilqa.export.exporter import REPORT_FILE
        from distilqa.qa.backends import OnnxQAModel

        threads = settings.threads
        model = OnnxQAModel(Path(folder), threads=threads)
        report = Path(folder) / REPORT_FILE
        params = json.loads(report.read_text(encoding="utf-8")).get("parameters") if report.exists() else None
    predictor = QAPredictor(model, tokenizer, params=settings.params, precision=precision)
    examples = load_examples(settings.data, check_offsets="ignore", limit=settings.limit)

    def answer(subset, batch_size):
        return evaluate_model(predictor, subset, batch_size=batch_size)

    answer(examples[: settings.batch_size], settings.batch_size)
    for i in range(settings.warmup):
        answer(examples.select([i % len(examples)]), 1)
    best = None
    for _ in range(settings.repeats):
        evaluation = answer(examples, settings.batch_size)
        best = evaluation if best is None or evaluation.seconds < best.seconds else best
    seconds = best.seconds
    latencies = [
        answer(examples.select([i]), 1).seconds * 1000
        for i in range(min(settings.latency_samples, len(examples)))
    ]
    return {
        "model": str(folder),
        "backend": backend,
        "precision": predictor.precision.name,
        **best.headline,
        "qps_batch32": round(len(examples) / seconds, 2),
        "p50_ms_batch1": _percentile(latencies, 50),
        "p95_ms_batch1": _percentile(latencies, 95),
        "params": params,
        "disk_mb": folder_size_mb(folder),
        "peak_rss_mb": process_peak_rss_mb(),
        "num_questions": len(examples),
        "seconds_batch32": round(seconds, 3),
        "latency_samples": len(latencies),
        "threads": threads,
        "torch_imported": "torch" in sys.modules,
    }


def measure_in_subprocess(
    folder: str | os.PathLike, backend: str, settings: InferenceBenchmarkSettings
) -> dict[str, Any]:
    """:func:`measure` in a fresh Python process (so its peak RSS is its own); the result is one JSON line."""
    threads = str(settings.threads)
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "RAYON_NUM_THREADS": threads}
    spec = json.dumps({"folder": str(folder), "backend": backend, "settings": asdict(settings)})
    command = [sys.executable, "-m", "distilqa.cli.benchmark_inference", "--worker", spec]
    return run_child(command, env, RESULT_PREFIX, f"measuring {folder} with {backend}")


@dataclass
class Job:
    """One row to measure: ``folder`` (maybe a temporary export of ``model``) with ``backend``."""

    model: str
    name: str
    folder: str
    backend: str
    note: str = ""


PARITY_QUESTIONS = 200  # questions of --data for the export parity check of on-the-fly exports


def plan(
    models: list[str],
    backends: list[str],
    workdir: str | os.PathLike,
    settings: InferenceBenchmarkSettings,
    log=print,
) -> list[Job]:
    """The rows to measure; PyTorch folders are exported to ONNX / INT8 under ``workdir`` as needed."""
    from distilqa.export.exporter import display_name, export_model

    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise InputError(f"unknown backend {unknown[0]!r}; choose from {', '.join(BACKENDS)}")
    if "torch-bf16" in backends and "torch-bf16" not in default_backends():
        # refused before anything is exported or measured, not after the first rows
        raise InputError(
            "--backends torch-bf16: this CPU has no native bf16 (AMX or AVX512-BF16), where it runs slower than "
            "fp32; leave it out: the default measures every backend this CPU runs natively"
        )
    jobs = []
    for index, model in enumerate(models):
        if not Path(model).is_dir():
            raise InputError(
                f"--models {model}: not a folder; give saved model folders (PyTorch or 'distilqa export' output)"
            )
        label = display_name(model)
        own = export_backend(model)
        if own is not None:
            if own in backends:
                jobs.append(Job(model, label, model, own))
            else:
                log(f"skipping {model}: an {own} export, not among --backends {' '.join(backends)}")
            continue
        for backend in backends:
            if backend in TORCH_PRECISIONS:
                jobs.append(Job(model, label, model, backend))
                continue
            folder = Path(workdir) / f"{index}-{backend}"
            log(f"exporting {model} -> {backend} ...")
            report = export_model(
                model,
                folder,
                quantize="int8" if backend == "onnx-int8" else None,
                data=settings.data,  # the benchmark's own questions, not the built-in demo set
                limit=min(settings.limit or PARITY_QUESTIONS, PARITY_QUESTIONS),
                params=settings.params,
                force=True,
                log=lambda line: None,
            )
            parity = report["parity"]
            note = "" if parity["passed"] else "parity check failed: " + "; ".join(parity["failures"])
            where = f"the first {parity['questions']} questions of --data"
            log(f"  parity on {where}: {'passed' if parity['passed'] else note}")
            jobs.append(Job(model, label, str(folder), backend, note))
    return jobs


def run_benchmark(
    models: list[str],
    settings: InferenceBenchmarkSettings,
    backends: list[str] | None = None,
    isolate: bool = True,
    log=print,
) -> list[dict[str, Any]]:
    """Measure every model with every backend; one row per (model, backend), in order.

    Args:
        models: PyTorch model folders and/or ``distilqa export`` folders.
        settings (:class:`InferenceBenchmarkSettings`): data, threads, batch size, latency samples, windowing.
        backends: any of :data:`BACKENDS` (default: :func:`default_backends`, those this machine runs natively).
        isolate (`bool`, defaults to `True`): measure each row in a fresh subprocess. `False` measures in this
            process (for tests): peak RSS then covers everything measured so far.

    Returns:
        `list[dict]`: rows with ``model``, ``name``, ``backend``, ``exact_match``, ``f1``, ``qps_batch32``,
        ``speedup`` (over the first row), ``p50_ms_batch1``, ``p95_ms_batch1``, ``params``, ``disk_mb``,
        ``peak_rss_mb``, ``num_questions``, ``threads``, ``hardware``, ``note``.
    """
    from distilqa.infra.hardware import cpu_line

    backends = list(backends or default_backends())
    rows = []
    load = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    with tempfile.TemporaryDirectory(prefix="distilqa-bench-") as workdir:
        for job in plan(models, backends, workdir, settings, log):
            row = (measure_in_subprocess if isolate else measure)(job.folder, job.backend, settings)
            row.update(model=job.model, name=job.name, note=job.note)
            rows.append(row)
            log(
                f"{job.name} [{job.backend}]: EM {row['exact_match']:.2f} F1 {row['f1']:.2f}, {row['qps_batch32']:.1f} questions/s, "
                f"p50 {row['p50_ms_batch1']:.1f} ms, p95 {row['p95_ms_batch1']:.1f} ms, peak RSS {row['peak_rss_mb']:.0f} MB"
            )
    hardware = f"{cpu_line()}, {settings.threads} threads"
    for row in rows:
        row["speedup"] = round(row["qps_batch32"] / rows[0]["qps_batch32"], 2) if rows else None
        row.update(hardware=hardware, load_average=load, settings=asdict(settings))
    return rows


def versions() -> str:
    import importlib.metadata as md

    found = []
    for package in ("torch", "onnxruntime", "transformers"):
        try:
            found.append(f"{package} {md.version(package)}")
        except md.PackageNotFoundError:
            pass
    return ", ".join(found)


def markdown_report(rows: list[dict[str, Any]]) -> str:
    """A markdown table of the rows with the data, windowing, threads and hardware above it."""
    from distilqa.infra.markdown import markdown_table

    if not rows:
        return "No rows: nothing was measured."
    first = rows[0]
    s = first["settings"]
    lines = [
        f"Data: {s['data']} ({first['num_questions']} questions), max_seq_length {s['max_seq_length']}, doc_stride "
        f"{s['doc_stride']}; questions/s at batch {s['batch_size']} (best of {s.get('repeats', 1)} passes) and latency at batch 1 ({first['latency_samples']} "
        "questions) are end to end (features + forward + post-processing); speed-up is over the first row.",
        f"Hardware: {first['hardware']}; {versions()}"
        + (f"; load average before the run {first['load_average']}" if first.get("load_average") else "")
        + ".",
        "",
        markdown_table(rows, COLUMNS),
    ]
    notes = [f"- {r['name']} [{r['backend']}]: {r['note']}" for r in rows if r.get("note")]
    return "\n".join(lines + (["", *notes] if notes else []))


def plot(rows: list[dict[str, Any]], path: str | os.PathLike) -> Path:
    """Save F1 against questions/s (log scale), one marker per backend, one colour per model, as a PNG."""
    try:
        import matplotlib
    except ImportError:
        raise InputError("--plot needs matplotlib: pip install 'distilqa[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from distilqa.infra.files import atomic_write_bytes

    markers = {"torch": "o", "torch-bf16": "D", "onnx": "s", "onnx-int8": "^"}
    names = list(dict.fromkeys(r["name"] for r in rows))
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for row in rows:
        color = f"C{names.index(row['name']) % 10}"
        ax.scatter(row["qps_batch32"], row["f1"], marker=markers.get(row["backend"], "x"), color=color, s=60)
        ax.annotate(
            f"{row['name']} [{row['backend']}]",
            (row["qps_batch32"], row["f1"]),
            textcoords="offset points",
            xytext=(6, 4),
            fontsize=8,
        )
    ax.set_xscale("log")
    ax.set_xlabel("questions / s (batch 32, end to end, log scale)")
    ax.set_ylabel("F1")
    ax.set_title(f"F1 vs speed on {rows[0]['hardware']}" if rows else "F1 vs speed", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return atomic_write_bytes(path, buffer.getvalue())
