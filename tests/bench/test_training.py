"""``distilqa benchmark training`` on tiny models: the report's keys and positive numbers, never a wall-clock bound."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import squad_file
from distilqa.bench.training import (
    MODES,
    StepClock,
    TrainingBenchmarkSettings,
    markdown_report,
    run_benchmark,
)
from distilqa.cli import main as cli_main
from distilqa.errors import InputError


@pytest.fixture(autouse=True)
def restore_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # pin_threads writes it; monkeypatch restores it
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def settings(tmp_path, teacher, student, **overrides) -> TrainingBenchmarkSettings:
    values = dict(
        teacher=str(teacher),
        student=str(student),
        train_file=str(squad_file("train.json")),
        output_dir=str(tmp_path / "bench"),
        steps=3,
        warmup_steps=1,
        batch_size=4,
        max_seq_length=64,
        doc_stride=24,
        max_query_length=20,
        threads=1,
        attention_relation_heads=4,  # divides the tiny models' 32 (and 64) hidden units
    )
    return TrainingBenchmarkSettings(**{**values, **overrides})


def native_bf16() -> bool:
    from distilqa.infra.precision import cpu_has_native_bf16

    return cpu_has_native_bf16()


FP32_MODES = [m for m in MODES if not m.endswith("-bf16")]


def check_report(report: dict) -> None:
    # the bf16 twins run exactly where the CPU has native bf16
    assert [m for m in MODES if m in report] == (list(MODES) if native_bf16() else FP32_MODES)
    for mode in (m for m in MODES if m in report):
        assert report[mode]["s_per_step"] > 0 and report[mode]["peak_rss_mb"] > 0
        assert report[mode]["cpu_s_per_step"] > 0
    for key in (
        "online_over_plain",
        "cached_over_plain",
        "hidden_over_plain",
        "attention_over_plain",
        "attention_cpu_over_plain",
        "cached_cpu_over_plain",
        "cached_max_rss_over_plain",
        "cache_build_s",
        "cache_rows",
    ):
        assert report[key] > 0
    assert report["hardware"] and report["settings"]["steps"] == 3


def test_step_clock_averages_the_intervals_after_warmup():
    clock = StepClock()
    clock.stamps = [(t, t / 2) for t in (0.0, 5.0, 6.0, 7.5, 10.0)]  # train begin, then 4 step ends
    assert clock.seconds_per_step(1, cpu=True) == 0.75
    assert clock.intervals(1) == [1.0, 1.5, 2.5]
    assert clock.seconds_per_step(1) == 1.5  # the median
    assert clock.mean_seconds_per_step(1) == pytest.approx(5.0 / 3)
    assert clock.seconds_per_step(0) == 2.0  # median of 5, 1, 1.5, 2.5
    with pytest.raises(ValueError, match="warm-up"):
        clock.seconds_per_step(4)


def test_benchmark_in_process_reports_every_mode(tmp_path, tiny_bert_path, tiny_distilbert_path):
    lines: list[str] = []
    report = run_benchmark(
        settings(tmp_path, tiny_bert_path, tiny_distilbert_path), isolate=False, log=lines.append
    )
    check_report(report)
    assert report["settings"]["max_train_samples"] == (1 + 3) * 4  # at least one window per question
    # Exactly the windows trained on.
    assert report["settings"]["windows"] == report["cache_rows"] == (1 + 3) * 4
    assert report["settings"]["teacher_note"] == "QA model as given"
    lines = [
        line for line in lines if not line.startswith("WARNING: the machine is busy")
    ]  # depends on the load
    assert len(lines) == (8 if native_bf16() else 7) and lines[0].startswith("cache build")
    table = markdown_report(report)
    assert (
        table.startswith("| mode | s / step | x plain |")
        and "| cached |" in table
        and "| hidden |" in table
        and "| attention |" in table
        and "One-time cache build" in table
    )


def test_hidden_mode_is_skipped_when_hidden_sizes_differ(tmp_path, tiny_tokenizer, tiny_bert_path):
    from transformers import BertConfig, BertForQuestionAnswering

    wide = tmp_path / "wide"
    config = BertConfig(
        vocab_size=len(tiny_tokenizer),
        hidden_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
    )
    BertForQuestionAnswering(config).save_pretrained(wide)
    tiny_tokenizer.save_pretrained(wide)
    lines: list[str] = []
    report = run_benchmark(settings(tmp_path, str(wide), tiny_bert_path), isolate=False, log=lines.append)
    assert "hidden" not in report and "hidden_over_plain" not in report
    assert report["online_over_plain"] > 0 and any("hidden mode skipped" in line for line in lines)
    assert "| hidden |" not in markdown_report(report)
    assert report["attention_over_plain"] > 0  # relation heads need only divide both widths


def test_attention_mode_is_skipped_when_relation_heads_do_not_divide(
    tmp_path, tiny_bert_path, tiny_distilbert_path
):
    lines: list[str] = []
    s = settings(tmp_path, tiny_bert_path, tiny_distilbert_path, attention_relation_heads=12, steps=1)
    report = run_benchmark(s, isolate=False, log=lines.append)
    assert (
        "attention" not in report and "attention_over_plain" not in report and report["hidden_over_plain"] > 0
    )
    assert "attention mode skipped: 12 relation heads do not divide the hidden sizes (32, 32)" in lines


@pytest.mark.slow
def test_benchmark_cli_json_runs_each_mode_in_a_subprocess(
    tmp_path, tiny_bert_path, tiny_distilbert_path, capsys
):
    s = settings(tmp_path, tiny_bert_path, tiny_distilbert_path)
    argv = [
        "benchmark",
        "training",
        "--teacher",
        s.teacher,
        "--student",
        s.student,
        "--train_file",
        s.train_file,
    ]
    argv += [
        "--output-dir",
        s.output_dir,
        "--steps",
        "3",
        "--warmup-steps",
        "1",
        "--batch-size",
        "4",
        "--threads",
        "1",
    ]
    argv += ["--max-seq-length", "64", "--doc-stride", "24", "--max-query-length", "20", "--json"]
    # The default 12 relation heads do not divide the tiny models' 32 hidden units (the attention mode would be skipped).
    argv += ["--attention_relation_heads", str(s.attention_relation_heads)]
    assert cli_main(argv) == 0
    captured = capsys.readouterr()
    check_report(json.loads(captured.out))
    assert "hidden mode skipped" not in captured.err and "attention mode skipped" not in captured.err


def test_benchmark_cli_names_missing_options(capsys):
    assert cli_main(["benchmark", "training", "--steps", "3"]) == 2
    assert "--teacher, --student, --train_file, --output_dir" in capsys.readouterr().err


def test_teacher_names_resolve_like_everywhere_else(
    tmp_path, tiny_bert_path, tiny_distilbert_path, monkeypatch
):
    """The packaged-model alias (and run folders) work for --teacher: they go through resolve_model."""
    import distilqa.infra.models
    from distilqa.bench.training import prepare_teacher

    monkeypatch.setattr(
        distilqa.infra.models, "resolve_model", lambda name: str(tiny_bert_path) if name == "alias" else name
    )
    teacher, note = prepare_teacher(settings(tmp_path, "alias", tiny_distilbert_path))
    assert teacher != "alias" and Path(teacher).is_dir()


def test_bad_input_in_a_child_process_comes_back_as_one_line():
    import sys

    from distilqa.bench.process import run_child

    child = (
        "import sys; from distilqa.bench.process import child_main; from distilqa.errors import InputError\n"
        "def work():\n    raise InputError('--max-seq-length 64 leaves no room; raise it')\n"
        "sys.exit(child_main(work, 'RESULT '))"
    )
    with pytest.raises(InputError, match=r"^--max-seq-length 64 leaves no room; raise it$"):
        run_child([sys.executable, "-c", child], None, "RESULT ", "the child")
    ok = "import sys; from distilqa.bench.process import child_main; sys.exit(child_main(lambda: {'a': 1}, 'RESULT '))"
    assert run_child([sys.executable, "-c", ok], None, "RESULT ", "the child") == {"a": 1}
    with pytest.raises(RuntimeError, match="the child failed"):
        run_child([sys.executable, "-c", "raise SystemExit(3)"], None, "RESULT ", "the child")


def test_negative_alpha_hidden_is_refused_before_any_mode_runs(tmp_path, tiny_bert_path):
    with pytest.raises(InputError, match="--alpha_hidden must be >= 0, got -1"):
        settings(tmp_path, tiny_bert_path, tiny_bert_path, alpha_hidden=-1.0)
    with pytest.raises(
        InputError,
        match=r"--alpha_attention must be > 0 \(the attention mode times that term\) and --attention_relation_heads >= 1, got 0.0",
    ):
        settings(tmp_path, tiny_bert_path, tiny_bert_path, alpha_attention=0.0)


def test_each_mode_turns_on_only_its_own_loss_term(tmp_path, tiny_bert_path):
    from distilqa.bench.training import _config

    s = settings(tmp_path, tiny_bert_path, tiny_bert_path, alpha_hidden=3.0, alpha_attention=2.0)
    terms = {
        mode: (
            getattr(_config(s, mode), "alpha_hidden", None),
            getattr(_config(s, mode), "alpha_attention", None),
        )
        for mode in FP32_MODES
    }
    assert terms == {
        "plain": (None, None), "online": (0.0, 0.0), "cached": (0.0, 0.0), "hidden": (3.0, 0.0), "attention": (0.0, 2.0),
    }  # fmt: skip
    assert _config(s, "attention").attention_relation_heads == 4
    assert not _config(s, "plain").bf16 and not _config(s, "cached").bf16
    if native_bf16():  # elsewhere the Trainer refuses bf16 (the modes are skipped before)
        assert _config(s, "plain-bf16").bf16 and _config(s, "cached-bf16").bf16
        assert _config(s, "cached-bf16").alpha_hidden == 0.0


def test_a_busy_machine_is_named_in_the_report():
    from distilqa.bench.training import busy_machine_warning

    assert busy_machine_warning((1.5, 1.0, 1.0), cores=2) is None
    assert busy_machine_warning(None, cores=2) is None
    warning = busy_machine_warning((3.2, 2.0, 1.0), cores=2)
    assert "load average 3.2 on 2 cores" in warning and "unreliable" in warning


def test_a_student_with_another_vocabulary_distils_through_the_projection(tmp_path, tiny_bert_path):
    """A trimmed-vocabulary student: online and cached run the cross-tokenizer path, hidden and attention
    (matching positions) are skipped, and the cache holds exactly the windows trained on."""
    from distilqa.distill.student import init_student, save_student
    from distilqa.distill.vocab import trim_student
    from distilqa.infra.models import load_tokenizer

    student, info = init_student(str(tiny_bert_path), layers=[0])
    tokenizer, vocab = trim_student(
        student, load_tokenizer(tiny_bert_path), [str(squad_file("train.json"))], size=20
    )
    save_student(student, tmp_path / "trimmed", {**info, **vocab}, tokenizer=tokenizer)
    lines: list[str] = []
    report = run_benchmark(
        settings(tmp_path, tiny_bert_path, tmp_path / "trimmed"), isolate=False, log=lines.append
    )
    assert [m for m in FP32_MODES if m in report] == ["plain", "online", "cached"]
    assert report["settings"]["cross_tokenizer"] is True
    assert report["cached_over_plain"] > 0 and report["online_over_plain"] > 0
    assert report["cache_rows"] == report["settings"]["windows"] == (1 + 3) * 4
    assert any("the tokenizers differ" in line for line in lines)
    assert "distil through the projection" in markdown_report(report)
    manifest = json.loads((tmp_path / "bench" / "teacher-cache" / "manifest.json").read_text())
    assert "projection" in manifest["components"]  # the rows are the teacher's logits projected
