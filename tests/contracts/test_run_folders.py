"""A ``train`` / ``distill`` run folder stands for its ``model/`` in every command that takes a model, as the
README says: ``distill --teacher/--student`` (with and without ``--teacher_cache``), ``cache-teacher``,
``init-student``, ``train``, ``evaluate``, ``predict``, ``export`` and both benchmarks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import squad_file
from distilqa.cli import main
from distilqa.infra.ownership import MODEL, RUN, write_marker

WINDOW = ["--max_seq_length", "64", "--doc_stride", "16", "--max_query_length", "16"]
TRAIN = ["--max_steps", "1", "--per_device_train_batch_size", "4", "--max_train_samples", "8",
         "--report_to", "none", "--use_cpu", "true", "--disable_tqdm", "true", "--save_strategy", "no"]  # fmt: skip


def run_folder(model: Path, root: Path, name: str) -> Path:
    """What ``train`` leaves: RUN/.distilqa, RUN/model/ (marked), metrics.json."""
    run = root / name
    shutil.copytree(model, run / "model")
    write_marker(run / "model", MODEL)
    write_marker(run, RUN)
    (run / "metrics.json").write_text("{}")
    return run


@pytest.fixture
def runs(tiny_bert_path, tiny_distilbert_path, tmp_path) -> dict[str, Path]:
    return {
        "teacher": run_folder(tiny_bert_path, tmp_path, "teacher-run"),
        "student": run_folder(tiny_distilbert_path, tmp_path, "student-run"),
    }


def call(argv: list[str], capsys) -> str:
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err[-2000:]
    return captured.out


def test_distill_and_cache_teacher_take_run_folders(runs, tmp_path, capsys):
    data = str(squad_file("train.json"))
    cache = tmp_path / "cache"
    call(["cache-teacher", "--teacher", str(runs["teacher"]), "--train_file", data, "--output", str(cache),
          "--max_train_samples", "8", *WINDOW, "--use_cpu", "true"], capsys)  # fmt: skip
    manifest = json.loads((cache / "manifest.json").read_text())
    assert manifest["components"]["data"]["rows"] > 0
    for extra in ([], ["--teacher_cache", str(cache)]):
        out = tmp_path / f"distilled{len(extra)}"
        call(["distill", "--teacher", str(runs["teacher"]), "--student", str(runs["student"]), "--train_file", data,
              "--output_dir", str(out), *WINDOW, *TRAIN, *extra], capsys)  # fmt: skip
        assert (out / "model" / "model.safetensors").is_file()
    assert "Building the teacher cache" not in capsys.readouterr().out  # the cache was reused, not rebuilt


def test_train_init_student_evaluate_predict_export_take_run_folders(runs, tmp_path, capsys):
    teacher = str(runs["teacher"])
    call(["train", "--model_name_or_path", teacher, "--train_file", str(squad_file("train.json")),
          "--output_dir", str(tmp_path / "retrained"), *WINDOW, *TRAIN], capsys)  # fmt: skip
    call(["init-student", "--teacher", teacher, "--output", str(tmp_path / "init")], capsys)
    assert json.loads((tmp_path / "init" / "config.json").read_text())["num_hidden_layers"] == 1
    call(["evaluate", "--model", teacher, "--data", str(squad_file("dev.json")), "--limit", "4", *WINDOW,
          "--output_dir", str(tmp_path / "eval"), "--no_progress"], capsys)  # fmt: skip
    answer = json.loads(
        call(["predict", "--model", teacher, "--question", "Who?", "--context", "Ann went home."], capsys)
    )
    assert isinstance(answer, dict) and "answer" in answer
    pytest.importorskip("onnxruntime")
    call(["export", "--model", teacher, "--output", str(tmp_path / "onnx")], capsys)
    assert (tmp_path / "onnx" / "model.onnx").is_file()


@pytest.mark.slow
def test_benchmarks_take_run_folders(runs, tmp_path, capsys):
    from distilqa.infra.models import folder_size_mb

    out = call(["benchmark", "inference", "--models", str(runs["teacher"]), "--backends", "torch",
                "--data", str(squad_file("dev.json")), "--limit", "4", *WINDOW, "--json",
                str(tmp_path / "bench.json")], capsys)  # fmt: skip
    assert out
    [row] = json.loads((tmp_path / "bench.json").read_text())
    assert row["disk_mb"] == pytest.approx(folder_size_mb(runs["teacher"] / "model"), abs=0.01)
    assert row["disk_mb"] > 0.1  # the weights, not the run folder's small files
    call(["benchmark", "training", "--teacher", str(runs["teacher"]), "--student", str(runs["student"]),
          "--train_file", str(squad_file("train.json")), "--output_dir", str(tmp_path / "bench-train"),
          "--steps", "1", "--warmup_steps", "0", "--batch_size", "2", "--threads", "1", *WINDOW,
          "--attention_relation_heads", "4", "--json"], capsys)  # fmt: skip
