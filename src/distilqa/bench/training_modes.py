"""One mode of ``distilqa benchmark training`` in this process (:func:`run_mode`), or in a fresh one
(:func:`run_mode_in_subprocess`), with the :class:`StepClock` that times its steps. What the modes are and how
their figures are read: :mod:`distilqa.bench.training`.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback

from distilqa.bench.process import PeakRss, peak_rss_mb, run_child
from distilqa.infra.hardware import pin_threads

if TYPE_CHECKING:
    from distilqa.bench.training import TrainingBenchmarkSettings

MODES = ("plain", "online", "cached", "hidden", "attention", "plain-bf16", "cached-bf16")
BF16_SUFFIX = "-bf16"
RESULT_PREFIX = "DISTILQA_BENCHMARK_RESULT "
CACHE_DIR = "teacher-cache"
QA_TEACHER_DIR = "teacher-qa"


class StepClock(TrainerCallback):
    """Wall-clock (``perf_counter``, CUDA synchronised) and process-CPU (``process_time``) stamps of
    ``on_train_begin`` and every ``on_step_end``."""

    def __init__(self):
        self.stamps: list[tuple[float, float]] = []

    def _stamp(self):
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()
        self.stamps.append((time.perf_counter(), time.process_time()))

    def on_train_begin(self, args, state, control, **kwargs):
        self.stamps = []
        self._stamp()

    def on_step_end(self, args, state, control, **kwargs):
        self._stamp()

    def intervals(self, warmup_steps: int, cpu: bool = False) -> list[float]:
        """Seconds of each step after the first ``warmup_steps`` (from one step end to the next)."""
        if len(self.stamps) - 1 <= warmup_steps:
            raise ValueError(
                f"only {len(self.stamps) - 1} steps ran; need more than {warmup_steps} warm-up steps"
            )
        times = [stamp[1 if cpu else 0] for stamp in self.stamps[warmup_steps:]]
        return [b - a for a, b in zip(times, times[1:], strict=False)]

    def seconds_per_step(self, warmup_steps: int, cpu: bool = False) -> float:
        """Median step time after warm-up (``cpu``: process CPU seconds, all threads)."""
        return statistics.median(self.intervals(warmup_steps, cpu))

    def mean_seconds_per_step(self, warmup_steps: int) -> float:
        """Total wall time after warm-up divided by the steps."""
        return statistics.fmean(self.intervals(warmup_steps))


def prepare_teacher(settings: TrainingBenchmarkSettings) -> tuple[str, str]:
    """The teacher to use and a note: the given QA model, or a QA copy of a base encoder with a seeded new head."""
    from transformers import AutoConfig, set_seed

    from distilqa.infra.models import is_qa_config, load_qa_model, load_tokenizer, resolve_model

    teacher = resolve_model(settings.teacher)  # the packaged-model alias and run folders, as everywhere else
    if is_qa_config(AutoConfig.from_pretrained(teacher, trust_remote_code=False)):
        return teacher, "QA model as given"
    folder = Path(settings.output_dir) / QA_TEACHER_DIR
    set_seed(settings.seed)
    load_qa_model(teacher, require_qa_head=False).save_pretrained(folder)
    load_tokenizer(teacher).save_pretrained(folder)
    return str(
        folder
    ), f"{settings.teacher} with a newly initialised QA head (seed {settings.seed}): timing only"


def _features(settings: TrainingBenchmarkSettings, temperature: float, project: bool = True):
    """The student's tokenizer, the windows the steps consume and, when the teacher tokenizes differently, the
    :class:`distilqa.distill.projection.SpanProjector` of all the windows of those questions (else `None`)."""
    from distilqa.distill.projection import SpanProjector
    from distilqa.infra.models import load_tokenizer, same_tokenizer
    from distilqa.qa.data import load_examples
    from distilqa.qa.features import FeatureParams, build_train_features

    tokenizer = load_tokenizer(settings.student)
    examples = load_examples(settings.train_file, limit=settings.max_train_samples)
    params = FeatureParams(settings.max_seq_length, settings.doc_stride, settings.max_query_length)
    features = build_train_features(examples, tokenizer, params).remove_columns(["example_index"])
    teacher_tokenizer = load_tokenizer(settings.teacher)
    projector = None
    if project and not same_tokenizer(teacher_tokenizer, tokenizer):
        projector = SpanProjector(teacher_tokenizer, tokenizer, examples, features, params, temperature)
    # Exactly the windows the steps consume (one epoch): the cache build then costs what a run would need. They
    # are the first rows of the projector's windows, so their row numbers index it.
    keep = min(len(features), (settings.warmup_steps + settings.steps) * settings.batch_size)
    return tokenizer, features.select(range(keep)), projector


def _config(settings: TrainingBenchmarkSettings, mode: str):
    from distilqa.distill.config import DistillationConfig
    from distilqa.qa.config import QuestionAnsweringConfig

    values = dict(
        output_dir=str(Path(settings.output_dir) / mode),
        max_steps=settings.warmup_steps + settings.steps,
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        max_seq_length=settings.max_seq_length,
        doc_stride=settings.doc_stride,
        max_query_length=settings.max_query_length,
        eval_strategy="no",
        save_strategy="no",
        logging_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=settings.device == "cpu",
        dataloader_pin_memory=settings.device != "cpu",
        seed=settings.seed,
        bf16=mode.endswith(BF16_SUFFIX),
    )
    if mode.removesuffix(BF16_SUFFIX) == "plain":
        return QuestionAnsweringConfig(**values)
    return DistillationConfig(
        **values,
        teacher_dtype=settings.teacher_dtype,
        cache_spot_check=0,
        alpha_hidden=settings.alpha_hidden if mode == "hidden" else 0.0,
        alpha_attention=settings.alpha_attention if mode == "attention" else 0.0,
        attention_relation_heads=settings.attention_relation_heads,
    )


def run_mode(settings: TrainingBenchmarkSettings, mode: str) -> dict[str, Any]:
    """Run one mode in this process: "build" (the cache) or one of :data:`MODES`; returns its measurements."""
    import torch
    from transformers import set_seed

    from distilqa.distill.cache.fingerprint import compute_fingerprint
    from distilqa.distill.cache.store import TeacherCache
    from distilqa.distill.trainer import CACHE_INDEX, DistillationTrainer
    from distilqa.infra.models import load_qa_model
    from distilqa.qa.trainer import QuestionAnsweringTrainer

    pin_threads(settings.threads)
    set_seed(settings.seed)
    config = _config(settings, mode)
    base = mode.removesuffix(BF16_SUFFIX)  # the bf16 modes are their fp32 twins under the Trainer's bf16
    tokenizer, features, projector = _features(settings, getattr(config, "temperature", 2.0), base != "plain")
    cache_dir = Path(settings.output_dir) / CACHE_DIR
    if mode == "build":
        began = time.perf_counter()
        cache = TeacherCache.build(
            cache_dir, settings.teacher, tokenizer, features, config, projector=projector
        )
        seconds = time.perf_counter() - began
        return {
            "mode": mode,
            "cache_build_s": round(seconds, 3),
            "cache_rows": len(cache),
            "cache_mb": cache.size_mb,
        }
    student = load_qa_model(settings.student, require_qa_head=False)
    common = dict(
        model=student,
        args=config,
        train_dataset=features,
        processing_class=tokenizer,
        callbacks=[clock := StepClock()],
    )
    if base == "plain":
        trainer = QuestionAnsweringTrainer(**common)
    elif base in ("online", "hidden", "attention"):
        if projector is not None:  # the projection looks rows up by their index, as the cache does
            common["train_dataset"] = features.add_column(CACHE_INDEX, list(range(len(features))))
        trainer = DistillationTrainer(teacher=load_qa_model(settings.teacher), projector=projector, **common)
    elif base == "cached":
        fingerprint = compute_fingerprint(
            settings.teacher, tokenizer, features, config.feature_params, config.teacher_dtype, projector
        )
        cache = TeacherCache.load(cache_dir, fingerprint)
        common["train_dataset"] = features.add_column(CACHE_INDEX, list(range(len(features))))
        trainer = DistillationTrainer(teacher_cache=cache, **common)
    else:
        raise ValueError(f"unknown mode {mode!r}; choose build or one of {MODES}")
    cuda = torch.device(config.device).type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    with PeakRss() as rss:
        rss_start = rss.peak_mb
        trainer.train()
    result = {
        "mode": mode,
        "s_per_step": round(clock.seconds_per_step(settings.warmup_steps), 4),
        "s_per_step_mean": round(clock.mean_seconds_per_step(settings.warmup_steps), 4),
        "cpu_s_per_step": round(clock.seconds_per_step(settings.warmup_steps, cpu=True), 4),
        "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "peak_rss_mb": rss.peak_mb,
        "rss_at_start_mb": rss_start,
        "process_max_rss_mb": peak_rss_mb(),
        "steps": trainer.state.global_step,
        "windows": len(features),
    }
    if cuda:
        result["cuda_peak_mb"] = round(torch.cuda.max_memory_allocated() / 1e6, 1)
    return result


def run_mode_in_subprocess(settings: TrainingBenchmarkSettings, mode: str) -> dict[str, Any]:
    """:func:`run_mode` in a fresh Python process; its result comes back as one JSON line on stdout."""
    env = dict(os.environ)
    if settings.threads:
        env.update(OMP_NUM_THREADS=str(settings.threads), MKL_NUM_THREADS=str(settings.threads))
    command = [
        sys.executable,
        "-m",
        "distilqa.cli.benchmark_training",
        "--mode",
        mode,
        "--settings-json",
        json.dumps(asdict(settings)),
    ]
    return run_child(command, env, RESULT_PREFIX, f"benchmark mode {mode!r}")
