"""Runs that keep to themselves: ``--resume`` continues only the same run, one process at a time writes a run
folder, checkpoints are kept to ``save_total_limit`` (2 by default) and the summary says how much disk they use,
and what a killed run left is removed when the next one starts."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import squad_file
from distilqa.cli import main
from distilqa.infra.checkpoints import checkpoint_folders
from distilqa.infra.locks import LOCK_FILE
from distilqa.infra.run_settings import RUN_FILE, check_resume, differences

TRAIN = ["--max_seq_length", "64", "--doc_stride", "16", "--max_query_length", "16", "--per_device_train_batch_size", "4",
         "--max_train_samples", "12", "--learning_rate", "1e-3", "--seed", "7", "--report_to", "none",
         "--use_cpu", "true", "--disable_tqdm", "true", "--save_strategy", "steps", "--save_steps", "1"]  # fmt: skip


@pytest.fixture
def data(tmp_path) -> Path:
    path = tmp_path / "train.json"
    shutil.copy(squad_file("train.json"), path)
    return path


def train(model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--model_name_or_path", str(model), "--train_file", str(data), "--output_dir", str(out),
            *TRAIN, *extra]  # fmt: skip


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("distilqa: error:"), err
    return err


# ------------------------------------------------------------------------------------------------ --resume


def test_resume_refuses_a_checkpoint_made_with_other_settings(tiny_bert_path, data, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(train(tiny_bert_path, data, out, "--max_steps", "3")) == 0
    settings = json.loads((out / RUN_FILE).read_text())
    assert settings["max_steps"] == 3 and settings["seed"] == 7 and settings["command"] == "train"
    assert len(settings["model"]["weights"]) == 64 and len(settings["train_file"]["sha256"]) == 64
    marker = json.loads((out / "checkpoint-3" / "distilqa_complete.json").read_text())
    assert marker["run"] == settings  # each checkpoint carries the settings it was made with
    before = snapshot(out)
    capsys.readouterr()
    assert main(train(tiny_bert_path, data, out, "--max_steps", "6", "--seed", "8", "--resume")) == 2
    err = one_error_line(capsys)
    assert f"--resume: {out / 'checkpoint-3'} was made with other settings" in err
    assert "max_steps 3 (now 6); seed 7 (now 8);" in err and "another output_dir" in err
    assert snapshot(out) == before  # refused before anything was written


def test_resume_refuses_changed_data_and_a_changed_model(
    tiny_bert_path, tiny_distilbert_path, data, tmp_path, capsys
):
    out = tmp_path / "run"
    model = Path(shutil.copytree(tiny_bert_path, tmp_path / "model"))
    assert main(train(model, data, out, "--max_steps", "2")) == 0
    original = data.read_text()
    data.write_text(original.replace("?", " ?", 1))  # the same path, other data (one question changed)
    capsys.readouterr()
    assert main(train(model, data, out, "--max_steps", "2", "--resume")) == 2
    err = one_error_line(capsys)
    assert "train_file sha256" in err and "max_steps" not in err
    data.write_text(original)
    shutil.copy(
        tiny_distilbert_path / "model.safetensors", model / "model.safetensors"
    )  # another model there
    assert main(train(model, data, out, "--max_steps", "2", "--resume")) == 2
    assert "model weights" in one_error_line(capsys)


def test_resume_with_the_same_settings_continues(tiny_bert_path, data, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(train(tiny_bert_path, data, out, "--max_steps", "2")) == 0
    capsys.readouterr()
    # Where and how often it saves may change.
    assert (
        main(train(tiny_bert_path, data, out, "--max_steps", "2", "--save_total_limit", "0", "--resume")) == 0
    )
    assert f"Resuming from {out / 'checkpoint-2'}" in capsys.readouterr().out


def test_differences_name_each_setting():
    recorded = {"max_steps": 3, "teacher": {"weights": "a" * 64}, "gone": 1}
    current = {"max_steps": 4, "teacher": {"weights": "b" * 64}, "new": True}
    assert differences(recorded, current) == [
        "max_steps 3 (now 4)", f"teacher weights {'a' * 12} (now {'b' * 12})", "new unset (now true)",
        "gone 1 (now unset)",
    ]  # fmt: skip
    assert differences(current, current) == []


def test_a_checkpoint_without_settings_is_resumed_with_a_warning(tmp_path, caplog):
    (tmp_path / "checkpoint-2").mkdir()
    (tmp_path / "checkpoint-2" / "distilqa_complete.json").write_text('{"global_step": 2, "files": {"a": 1}}')
    check_resume(tmp_path / "checkpoint-2", {"max_steps": 3})  # distilqa 0.1: nothing to compare
    assert "records no run settings" in caplog.text


# ------------------------------------------------------------------------------------------------ the lock

HOLD = textwrap.dedent(
    """
    import sys, time
    from distilqa.infra.locks import folder_lock
    with folder_lock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(120)
    """
)


def hold_lock(folder: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_process_is_refused_while_the_first_writes(tiny_bert_path, data, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(train(tiny_bert_path, data, out, "--max_steps", "1")) == 0
    before = snapshot(out)
    holder = hold_lock(out)
    try:
        capsys.readouterr()
        assert main(train(tiny_bert_path, data, out, "--max_steps", "1")) == 2
        err = one_error_line(capsys)
        assert f"output_dir {out} is being written by another distilqa process (pid {holder.pid})" in err
        assert snapshot(out) == {**before, LOCK_FILE: f"{holder.pid}\n".encode()}
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_left_by_a_killed_process_does_not_block(tiny_bert_path, data, tmp_path):
    out = tmp_path / "run"
    assert main(train(tiny_bert_path, data, out, "--max_steps", "1")) == 0
    holder = hold_lock(out)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (out / LOCK_FILE).read_text() == f"{holder.pid}\n"  # the file is left; the OS dropped the lock
    assert main(train(tiny_bert_path, data, out, "--max_steps", "1")) == 0
    assert not (out / LOCK_FILE).exists()  # the run removes its lock file when it ends


# ------------------------------------------------------------------------------------------------ disk


def test_checkpoints_keep_two_by_default_and_the_summary_says_their_disk(
    tiny_bert_path, data, tmp_path, capsys
):
    out = tmp_path / "run"
    capsys.readouterr()
    assert main(train(tiny_bert_path, data, out, "--max_steps", "4")) == 0
    assert [p.name for p in checkpoint_folders(out)] == ["checkpoint-3", "checkpoint-4"]
    size = sum(p.stat().st_size for f in checkpoint_folders(out) for p in f.rglob("*") if p.is_file())
    summary = json.loads((out / "metrics.json").read_text())["checkpoints"]
    assert summary == {"count": 2, "disk_mb": round(size / 2**20, 2), "save_total_limit": 2}
    assert size > 2**20  # weights and optimizer state: a real number
    assert f"checkpoints  2, {size / 2**20:.1f} MB on disk (save_total_limit 2)" in capsys.readouterr().out


def test_save_total_limit_zero_keeps_every_checkpoint_and_negative_is_refused(
    tiny_bert_path, data, tmp_path, capsys
):
    out = tmp_path / "run"
    assert main(train(tiny_bert_path, data, out, "--max_steps", "3", "--save_total_limit", "0")) == 0
    assert len(checkpoint_folders(out)) == 3
    capsys.readouterr()
    assert (
        main(train(tiny_bert_path, data, tmp_path / "other", "--max_steps", "3", "--save_total_limit", "-1"))
        == 2
    )
    assert "save_total_limit must be >= 0, got -1" in one_error_line(capsys)


# ------------------------------------------------------------------------------------------------ leftovers


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_what_a_killed_run_left_is_removed_when_the_next_one_starts(
    tiny_bert_path, data, tmp_path, monkeypatch
):
    import distilqa.qa.trainer

    out = tmp_path / "run"
    assert main(train(tiny_bert_path, data, out, "--max_steps", "1")) == 0
    pid = dead_pid()
    torn_model = out / f".model.distilqa-{pid}-0a1b2c3d.tmp"  # a final model/ cut short by a kill
    torn_model.mkdir()
    (torn_model / "model.safetensors").write_bytes(b"w" * 4096)
    torn_metrics = out / f".metrics.json.distilqa-{pid}-0a1b2c3e.tmp"
    torn_metrics.write_text("{")
    seen = {}
    real_train = distilqa.qa.trainer.QuestionAnsweringTrainer.train

    def spy(self, *args, **kwargs):
        seen["left"] = sorted(p.name for p in out.iterdir() if p.name.startswith(".") and "tmp" in p.name)
        return real_train(self, *args, **kwargs)

    monkeypatch.setattr(distilqa.qa.trainer.QuestionAnsweringTrainer, "train", spy)
    assert main(train(tiny_bert_path, data, out, "--max_steps", "1", "--resume")) == 0
    assert seen["left"] == []  # gone before training started, not only when the new model is written
