"""The training cost of distillation: seconds per step and peak memory of three ways to train one student.

* ``plain``: the student fine-tuned alone (:class:`distilqa.qa.trainer.QuestionAnsweringTrainer`), the baseline;
* ``online``: distillation with the teacher run on every batch (:class:`distilqa.distill.trainer.DistillationTrainer`);
* ``cached``: distillation from a :class:`distilqa.distill.cache.store.TeacherCache`, whose one-time build is timed
  separately (``cache_build_s``);
* ``hidden``: the online teacher plus the hidden-state term (``alpha_hidden``; both models return all their
  hidden states), when student and teacher have the same hidden size (skipped otherwise);
* ``attention``: the online teacher plus MiniLMv2's self-attention relation term (``alpha_attention``,
  ``attention_relation_heads``), when the relation heads divide both hidden sizes (skipped otherwise).

``plain-bf16`` and ``cached-bf16``: ``plain`` and ``cached`` with the Trainer's ``bf16`` (autocast), where the device
runs bf16 natively (a CPU with AMX or AVX512-BF16, a CUDA GPU with bf16), skipped elsewhere: the step-time ratio
of reduced-precision training, side by side with fp32.

When the student tokenizes differently from the teacher (a trimmed vocabulary, another tokenizer family), the
``online`` and ``cached`` modes distil through the cross-tokenizer projection (:mod:`distilqa.distill.projection`)
as ``distilqa distill`` does: the cache then holds projected rows and ``cached`` times what a cross-tokenizer
run from the cache costs per step; ``hidden`` and ``attention`` need matching positions and are skipped.

All modes see the same windows, batch size, student and number of steps; no evaluation runs. Each mode runs in
a fresh subprocess (``python -m distilqa.cli.benchmark_training --mode MODE``), so their RSS peaks are separate
and none inherits another's allocator state or warm caches.

**Timing.** A :class:`StepClock` callback stamps ``on_step_end`` (after a CUDA synchronise on a GPU); a step's
time is the interval between consecutive stamps. Intervals, rather than ``on_step_begin`` -> ``on_step_end``,
include fetching and collating the batch, which the cached mode changes (its extra ``feature_index`` column), as
well as the cache lookup. ``s_per_step`` is the median interval after ``warmup_steps`` (every step does the same
work, so the median is the typical step and ignores bursts of other load on a shared machine);
``s_per_step_mean`` (total time after warm-up / steps) is reported beside it. ``cpu_s_per_step`` is the median
of the process's CPU seconds per step (all threads): on a machine shared with other jobs it varies far less than
wall time, so ``*_cpu_over_plain`` is the steadier ratio there (it counts OpenMP spin-waits as work, though).

**Memory.** RSS sampled every 10 ms during ``trainer.train()`` (:class:`distilqa.bench.process.PeakRss`): the
models, optimizer state, activations and, for ``cached``, the pages of the cache that were read. Sampling can
miss a short peak, so the kernel's exact high-water mark of the (fresh) process, ``ru_maxrss``, is reported
beside it as ``process_max_rss_mb``. On a GPU, ``torch.cuda.max_memory_allocated`` too.

**Noise.** ``repeats`` > 1 runs the modes in interleaved rounds (plain, online, cached, plain, ...) and keeps each
mode's fastest round, the least disturbed by other load on the machine; every round's figure is reported.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

from distilqa.bench.training_modes import (  # noqa: F401 - one mode in its process; re-exported
    BF16_SUFFIX,
    CACHE_DIR,
    MODES,
    QA_TEACHER_DIR,
    RESULT_PREFIX,
    StepClock,
    _config,
    _features,
    prepare_teacher,
    run_mode,
    run_mode_in_subprocess,
)
from distilqa.infra.hardware import hardware_line


@dataclass
class TrainingBenchmarkSettings:
    """What every mode shares.

    Args:
        teacher (`str`): the teacher's model folder (a run folder stands for its ``model/``) or hub name. One
            without a QA head (a base encoder) gets a newly initialised, seeded one, saved under ``output_dir``
            (enough for timing, not for accuracy).
        student (`str`): the student's model folder or hub name, e.g. made by ``distilqa init-student``.
        train_file (`str`): SQuAD training data.
        output_dir (`str`): scratch folder (Trainer outputs, the cache).
        steps (`int`, defaults to 30): timed optimizer steps, after ``warmup_steps`` (defaults to 5) untimed ones.
        batch_size (`int`, defaults to 16): windows per step (no gradient accumulation).
        max_seq_length, doc_stride, max_query_length (`int`): windowing.
        max_train_samples (`int`, *optional*): questions to read; default ``(warmup_steps + steps) * batch_size``
            (at least one window each). The first ``(warmup_steps + steps) * batch_size`` windows are kept: one
            epoch, and the cache holds exactly the windows trained on.
        teacher_dtype (`str`, defaults to "float32"): precision of the online teacher and of the cache build.
        threads (`int`, *optional*): torch / OpenMP threads (default: torch's choice).
        device (`str`, defaults to "cpu"): "cpu" or "cuda".
        alpha_hidden (`float`, defaults to 10.0): weight of the hidden-state term in the ``hidden`` mode.
        alpha_attention (`float`, defaults to 1.0), attention_relation_heads (`int`, defaults to 12): the attention
            relation term of the ``attention`` mode.
    """

    teacher: str
    student: str
    train_file: str
    output_dir: str
    steps: int = 30
    warmup_steps: int = 5
    batch_size: int = 16
    max_seq_length: int = 256
    doc_stride: int = 128
    max_query_length: int = 64
    max_train_samples: int | None = None
    teacher_dtype: str = "float32"
    threads: int | None = None
    device: str = "cpu"
    seed: int = 0
    learning_rate: float = 5e-5
    alpha_hidden: float = 10.0
    alpha_attention: float = 1.0
    attention_relation_heads: int = 12

    def __post_init__(self):
        from distilqa.errors import InputError

        if self.steps < 1 or self.warmup_steps < 0:
            raise InputError(
                f"--steps must be >= 1 and --warmup_steps >= 0, got {self.steps} and {self.warmup_steps}"
            )
        if self.alpha_hidden < 0:
            raise InputError(f"--alpha_hidden must be >= 0, got {self.alpha_hidden}")
        if self.alpha_attention <= 0 or self.attention_relation_heads < 1:
            raise InputError(
                f"--alpha_attention must be > 0 (the attention mode times that term) and --attention_relation_heads >= 1, got {self.alpha_attention} and {self.attention_relation_heads}"
            )
        if self.max_train_samples is None:
            self.max_train_samples = (self.warmup_steps + self.steps) * self.batch_size


def busy_machine_warning(load_average: tuple[float, ...] | None, cores: int | None = None) -> str | None:
    """A warning when the 1-minute load average is above the machine's cores: other work then shares the CPUs
    and the modes' step times (and their ranking) say more about that work than about the modes."""
    cores = cores or os.cpu_count() or 1
    if not load_average or load_average[0] <= cores:
        return None
    return (
        f"WARNING: the machine is busy (load average {load_average[0]:.1f} on {cores} cores): the step-time ratios "
        "below are unreliable; rerun when the machine is idle"
    )


def run_benchmark(
    settings: TrainingBenchmarkSettings, repeats: int = 1, isolate: bool = True, log=None
) -> dict[str, Any]:
    """Build the cache, then time every mode of :data:`MODES` that applies (``repeats`` interleaved rounds).

    Args:
        isolate (`bool`, defaults to `True`): one subprocess per mode. `False` runs them in this process (for
            tests): the RSS peaks then include whatever earlier modes left behind.
        log (`callable`, *optional*): called with a progress line after each mode.

    Returns:
        `dict`: per mode ``s_per_step``, ``peak_rss_mb`` (and ``runs_s_per_step``); ``cache_build_s``, the ratios
        ``online_over_plain`` / ``cached_over_plain`` (time) and ``*_rss_over_plain`` (memory), hardware, settings.
    """
    log = log or (lambda line: None)
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    busy = busy_machine_warning(load_before)
    if busy:
        log(busy)
    teacher, teacher_note = prepare_teacher(settings)
    settings = TrainingBenchmarkSettings(**{**asdict(settings), "teacher": teacher})
    run = run_mode_in_subprocess if isolate else run_mode
    build = run(settings, "build")
    log(
        f"cache build: {build['cache_build_s']:.1f} s for {build['cache_rows']:,} windows ({build['cache_mb']:.1f} MB)"
    )
    sizes = _hidden_sizes(settings)
    modes = list(MODES)
    if _tokenizers_differ(settings):
        modes = [m for m in modes if m not in ("hidden", "attention")]
        log(
            "the tokenizers differ: online and cached distil through the projection; hidden and attention skipped"
        )
    elif len(set(sizes)) > 1:
        modes.remove("hidden")
        log("hidden mode skipped: student and teacher hidden sizes differ")
    if "attention" in modes and any(size % settings.attention_relation_heads for size in sizes):
        modes.remove("attention")
        log(
            f"attention mode skipped: {settings.attention_relation_heads} relation heads do not divide the hidden sizes {sizes}"
        )
    if not _native_bf16(settings):
        modes = [m for m in modes if not m.endswith(BF16_SUFFIX)]
        log("bf16 modes skipped: this device has no native bf16 (AMX or AVX512-BF16 on a CPU)")
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
    for round_ in range(repeats):
        for mode in modes:
            result = run(settings, mode)
            runs[mode].append(result)
            log(
                f"round {round_ + 1}/{repeats} {mode}: {result['s_per_step']:.3f} s/step "
                f"({result['cpu_s_per_step']:.3f} CPU s), peak RSS {result['peak_rss_mb']:.0f} MB"
            )
    report: dict[str, Any] = {}
    for mode in modes:
        best = min(runs[mode], key=lambda r: r["s_per_step"])
        report[mode] = {
            "s_per_step": best["s_per_step"],
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs[mode]),
            "s_per_step_mean": best["s_per_step_mean"],
            "cpu_s_per_step": min(r["cpu_s_per_step"] for r in runs[mode]),
            "rss_at_start_mb": best["rss_at_start_mb"],
            "process_max_rss_mb": max(r["process_max_rss_mb"] for r in runs[mode]),
            "runs_s_per_step": [r["s_per_step"] for r in runs[mode]],
            "runs_load_average_1min": [r["load_average_1min"] for r in runs[mode]],
            **({"cuda_peak_mb": best["cuda_peak_mb"]} if "cuda_peak_mb" in best else {}),
        }
    plain = report["plain"]
    for mode in modes[1:]:
        report[f"{mode}_over_plain"] = round(report[mode]["s_per_step"] / plain["s_per_step"], 3)
        report[f"{mode}_cpu_over_plain"] = round(report[mode]["cpu_s_per_step"] / plain["cpu_s_per_step"], 3)
        report[f"{mode}_rss_over_plain"] = round(report[mode]["peak_rss_mb"] / plain["peak_rss_mb"], 3)
        report[f"{mode}_max_rss_over_plain"] = round(
            report[mode]["process_max_rss_mb"] / plain["process_max_rss_mb"], 3
        )
    report.update(
        cache_build_s=build["cache_build_s"],
        cache_rows=build["cache_rows"],
        cache_mb=build["cache_mb"],
        hardware=hardware_line(_threads(settings)),
        load_average=[round(x, 2) for x in load_before] if load_before else None,
        warnings=[busy] if busy else [],
        settings={
            **asdict(settings),
            "teacher_note": teacher_note,
            "repeats": repeats,
            "windows": runs["plain"][0]["windows"],
            "cross_tokenizer": _tokenizers_differ(settings),
        },
    )
    return report


def _native_bf16(settings: TrainingBenchmarkSettings) -> bool:
    import torch

    from distilqa.infra.precision import cpu_has_native_bf16

    if settings.device == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return cpu_has_native_bf16()


def _tokenizers_differ(settings: TrainingBenchmarkSettings) -> bool:
    from distilqa.infra.models import load_tokenizer, same_tokenizer

    return not same_tokenizer(load_tokenizer(settings.student), load_tokenizer(settings.teacher))


def _hidden_sizes(settings: TrainingBenchmarkSettings) -> tuple[int, int]:
    """The student's and the teacher's hidden sizes, from their configs."""
    from distilqa.infra.models import load_qa_config

    return tuple(
        load_qa_config(name, require_qa_head=False).hidden_size
        for name in (settings.student, settings.teacher)
    )


def _threads(settings: TrainingBenchmarkSettings) -> int:
    import torch

    return settings.threads or torch.get_num_threads()


def markdown_report(report: dict[str, Any]) -> str:
    """The report as a markdown table plus the build time, hardware and settings lines."""
    from distilqa.infra.markdown import markdown_table

    rows = []
    for mode in (m for m in MODES if m in report):
        entry = report[mode]
        rows.append(
            {
                "mode": mode,
                "s": entry["s_per_step"],
                "x": 1.0 if mode == "plain" else report[f"{mode}_over_plain"],
                "cpu": entry["cpu_s_per_step"],
                "xc": 1.0 if mode == "plain" else report[f"{mode}_cpu_over_plain"],
                "rss": entry["peak_rss_mb"],
                "max": entry["process_max_rss_mb"],
                "xr": 1.0 if mode == "plain" else report[f"{mode}_rss_over_plain"],
                "gpu": entry.get("cuda_peak_mb"),
            }
        )
    columns = [
        ("mode", "mode"),
        ("s", "s / step"),
        ("x", "x plain"),
        ("cpu", "CPU s / step"),
        ("xc", "CPU x plain"),
        ("rss", "peak RSS (MB)"),
        ("xr", "RSS x plain"),
        ("max", "process max RSS (MB)"),
    ]
    if any(r["gpu"] is not None for r in rows):
        columns.append(("gpu", "CUDA peak (MB)"))
    s = report["settings"]
    lines = [
        markdown_table(rows, columns),
        "",
        f"One-time cache build: {report['cache_build_s']:.1f} s for {report['cache_rows']:,} windows ({report['cache_mb']:.1f} MB).",
        f"Hardware: {report['hardware']}; load average before: {report['load_average']}.",
        *report.get("warnings", []),
        *(
            [
                "The student tokenizes differently from the teacher: online and cached distil through the projection."
            ]
            if s.get("cross_tokenizer")
            else []
        ),
        f"Settings: {s['steps']} timed steps after {s['warmup_steps']} warm-up, batch {s['batch_size']}, "
        f"max_seq_length {s['max_seq_length']}, doc_stride {s['doc_stride']}, {s['windows']:,} windows, "
        f"teacher {s['teacher']} ({s['teacher_note']}, {s['teacher_dtype']}), student {s['student']}, "
        f"device {s['device']}, best of {s['repeats']} interleaved round(s).",
    ]
    return "\n".join(lines)
