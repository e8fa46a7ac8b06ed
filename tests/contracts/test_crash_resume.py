"""A run killed at any moment and restarted with ``--resume`` ends with the same weights as an uninterrupted one.

Bit-exact on CPU: the resumed run restores the optimizer, scheduler, RNG states (dropout) and the position in the
shuffled data from the last checkpoint marked complete (``distilqa_complete.json``); torn checkpoints are skipped
and never kept over a complete one. The slow tests SIGKILL a real ``python -m distilqa.cli`` process at a random
moment; the fast ones tear a checkpoint by hand.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from distilqa.cli import main
from distilqa.infra.checkpoints import (
    COMPLETE_MARKER,
    begin_checkpoint,
    checkpoint_folders,
    foreign_checkpoints,
    is_complete,
    is_own,
    last_complete_checkpoint,
    mark_complete,
    rotate_checkpoints,
)

# Deterministic training: fixed seeds (model init, dropout, shuffling), no loader workers, dropout on.
COMMON = ["--max_seq_length", "64", "--doc_stride", "16", "--max_query_length", "16", "--per_device_train_batch_size", "4",
          "--learning_rate", "1e-3", "--seed", "7", "--data_seed", "11", "--dataloader_num_workers", "0", "--logging_steps", "1",
          "--save_strategy", "steps", "--report_to", "none", "--use_cpu", "true", "--disable_tqdm", "true"]  # fmt: skip


@pytest.fixture(scope="module")
def train_file(tmp_path_factory) -> Path:
    """30 questions over short contexts (one window each): an epoch is 8 steps, so runs cross epochs."""
    rows = []
    for i in range(30):
        number = str(3 + i)
        context = (
            f"In year {1900 + i} the village of Marrow Hill planted {number} oak trees near the old mill."
        )
        rows.append(
            {
                "id": f"q{i}",
                "context": context,
                "question": f"How many oak trees were planted in year {1900 + i}?",
                "answers": {"text": [number], "answer_start": [context.index(f" {number} ") + 1]},
            }
        )
    path = tmp_path_factory.mktemp("crash-data") / "train.json"
    path.write_text(json.dumps(rows))
    return path


def command(kind: str, models: dict[str, Path], train_file: Path, out: Path, *extra: str) -> list[str]:
    if kind == "train":
        head = ["train", "--model_name_or_path", str(models["bert"])]
    else:
        head = ["distill", "--teacher", str(models["bert"]), "--student", str(models["distilbert"])]
        if kind == "distill-cached":
            head += ["--teacher_cache", str(out) + "-cache"]
    return [*head, "--train_file", str(train_file), "--output_dir", str(out), *COMMON, *extra]


@pytest.fixture
def models(tiny_bert_path, tiny_distilbert_path) -> dict[str, Path]:
    return {"bert": tiny_bert_path, "distilbert": tiny_distilbert_path}


def assert_same_weights(a: Path, b: Path) -> None:
    first, second = load_file(a / "model" / "model.safetensors"), load_file(b / "model" / "model.safetensors")
    assert first.keys() == second.keys()
    different = [name for name in first if not torch.equal(first[name], second[name])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


def tear(folder: Path, source: Path) -> None:
    """A checkpoint cut short by a crash: its ownership marker (written before the Trainer's files), some of its
    files, one of them truncated, no completeness marker."""
    begin_checkpoint(folder)
    shutil.copy(source / "model.safetensors", folder / "model.safetensors")
    data = (source / "optimizer.pt").read_bytes()
    (folder / "optimizer.pt").write_bytes(data[: len(data) // 3])


# ------------------------------------------------------------------------------------------------ fast checks


def test_resume_skips_a_torn_checkpoint_and_is_bit_exact(models, train_file, tmp_path, capsys):
    whole, crashed = tmp_path / "whole", tmp_path / "crashed"
    args = ["--save_steps", "2", "--max_steps", "6", "--save_total_limit", "0"]  # 0: keep every checkpoint
    assert main(command("train", models, train_file, whole, *args)) == 0
    # The crashed run got as far as writing checkpoint-4 (torn) after the complete checkpoint-2.
    crashed.mkdir()
    shutil.copytree(whole / "checkpoint-2", crashed / "checkpoint-2")
    tear(crashed / "checkpoint-4", whole / "checkpoint-4")
    assert last_complete_checkpoint(crashed) == crashed / "checkpoint-2"
    capsys.readouterr()
    assert main(command("train", models, train_file, crashed, *args, "--resume")) == 0
    assert f"Resuming from {crashed / 'checkpoint-2'}" in capsys.readouterr().out
    assert_same_weights(whole, crashed)
    assert is_complete(crashed / "checkpoint-4") and is_complete(crashed / "checkpoint-6")


def test_rotation_never_keeps_a_torn_checkpoint_over_a_complete_one(
    models, train_file, tmp_path, monkeypatch
):
    """save_total_limit=1, resumed after a crash that left a torn checkpoint-7 beyond the complete checkpoint-4.

    HF's own rotation keeps the newest folder by mtime, or by step number when the mtimes lie within a second:
    it would keep the torn checkpoint-7 and delete the checkpoint-6 just written. It also runs before the
    ``on_save`` callbacks, so with a marker written there a kill in between would leave no complete checkpoint.
    """
    import distilqa.qa.trainer

    rotations = []

    def spy(output_dir, limit, keep):
        rotations.append(limit)
        assert is_complete(keep[0]), "rotation must come after the new checkpoint is marked complete"
        return rotate_checkpoints(output_dir, limit, keep)

    monkeypatch.setattr(distilqa.qa.trainer, "rotate_checkpoints", spy)
    from distilqa.infra.checkpoints import remove_checkpoint

    out = tmp_path / "run"
    args = ["--save_steps", "2", "--max_steps", "6"]
    assert main(command("train", models, train_file, out, *args, "--save_total_limit", "0")) == 0
    remove_checkpoint(out / "checkpoint-6")  # as if the run had been killed during its step-6 save ...
    tear(out / "checkpoint-7", out / "checkpoint-4")  # ... and an older crash had left a torn checkpoint-7
    assert main(command("train", models, train_file, out, *args, "--save_total_limit", "1", "--resume")) == 0
    assert [p.name for p in checkpoint_folders(out)] == ["checkpoint-6"]
    assert is_complete(out / "checkpoint-6")
    assert rotations == [0, 0, 0, 1]  # one per save, each after marking (HF's rotation ran with no limit)


def fake_checkpoint(out: Path, step: int, complete: bool = True, owned: bool = True) -> Path:
    folder = out / f"checkpoint-{step}"
    if owned:
        begin_checkpoint(folder)
    else:
        folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"w" * 64)
    (folder / "sub").mkdir()
    (folder / "sub" / "state.json").write_text("{}")
    if complete:
        mark_complete(folder, step)
    return folder


def test_completeness_marker(tmp_path):
    folder = fake_checkpoint(tmp_path, 3)
    assert is_complete(folder)
    record = json.loads((folder / COMPLETE_MARKER).read_text())
    assert record == {"global_step": 3, "files": {"model.safetensors": 64, "sub/state.json": 2}}
    (folder / "sub" / "state.json").write_text("{}  ")  # changed after marking: not the checkpoint it was
    assert not is_complete(folder)
    for marker in ("{", "[]", '{"files": {}}', '{"files": 3}', ""):
        (folder / COMPLETE_MARKER).write_text(marker)
        assert not is_complete(folder), marker
    assert last_complete_checkpoint(tmp_path) is None and last_complete_checkpoint(tmp_path / "none") is None


def test_rotate_deletes_torn_ones_first_and_keeps_the_protected(tmp_path):
    for step in (1, 2, 3):
        fake_checkpoint(tmp_path, step)
    fake_checkpoint(tmp_path, 9, complete=False)
    newest = fake_checkpoint(tmp_path, 4)
    deleted = rotate_checkpoints(tmp_path, 2, keep=[newest, tmp_path / "checkpoint-1"])
    assert [p.name for p in deleted] == ["checkpoint-9", "checkpoint-2", "checkpoint-3"]
    assert [p.name for p in checkpoint_folders(tmp_path)] == ["checkpoint-1", "checkpoint-4"]
    assert rotate_checkpoints(tmp_path, None, keep=[]) == []


def test_rotate_deletes_only_the_runs_own_checkpoints(tmp_path):
    """Folders without distilqa's markers, or holding a file the marker does not list, are neither deleted nor
    counted; distilqa 0.1's complete checkpoints (a completeness marker listing exactly their files) are."""
    foreign = fake_checkpoint(tmp_path, 1, complete=False, owned=False)
    (foreign / "precious.txt").write_text("mine")
    added = fake_checkpoint(tmp_path, 2)
    (added / "precious.txt").write_text("mine too")
    legacy = fake_checkpoint(tmp_path, 3, owned=False)
    torn = fake_checkpoint(tmp_path, 4, complete=False)
    newest = fake_checkpoint(tmp_path, 5)
    deleted = rotate_checkpoints(tmp_path, 1, keep=[newest])
    assert deleted == [torn, legacy]
    assert (foreign / "precious.txt").read_text() == "mine" and (added / "precious.txt").is_file()
    assert [p.name for p in checkpoint_folders(tmp_path)] == ["checkpoint-1", "checkpoint-2", "checkpoint-5"]


def test_a_checkpoint_loses_its_ownership_marker_last(tmp_path, monkeypatch):
    """A kill while a checkpoint is deleted leaves a folder still known as the run's own."""
    import distilqa.infra.checkpoints as checkpoints
    from distilqa.infra.ownership import MARKER_FILE

    folder = fake_checkpoint(tmp_path, 1)
    (folder / "sub" / "deeper").mkdir()
    order = []
    real_unlink = os.unlink

    def unlink(path, *args, **kwargs):
        order.append(os.path.basename(path))
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", unlink)
    checkpoints.remove_checkpoint(folder)
    assert not folder.exists()
    assert order[0] == COMPLETE_MARKER and order[-1] == MARKER_FILE


def test_a_kill_while_a_checkpoint_is_created_leaves_no_bare_folder(tmp_path, monkeypatch):
    """The folder appears with its ownership marker already inside: a kill before the marker is written leaves
    only a temporary name, which the next write cleans, and no checkpoint-N the next run would call foreign."""
    import distilqa.infra.checkpoints as checkpoints

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # stands in for SIGKILL between the folder and its marker

    monkeypatch.setattr(checkpoints, "write_marker", killed)
    with pytest.raises(KeyboardInterrupt):
        begin_checkpoint(tmp_path / "checkpoint-6")
    monkeypatch.undo()
    assert not (tmp_path / "checkpoint-6").exists() and foreign_checkpoints(tmp_path) == []
    (leftover,) = tmp_path.iterdir()
    leftover.rename(
        tmp_path / leftover.name.replace(f"-{os.getpid()}-", "-999999999-")
    )  # the killed process's
    begin_checkpoint(tmp_path / "checkpoint-6")  # the rerun writes it and removes the leftover
    assert is_own(tmp_path / "checkpoint-6") and [p.name for p in tmp_path.iterdir()] == ["checkpoint-6"]


def test_a_kill_while_a_checkpoint_is_deleted_leaves_no_bare_folder(tmp_path, monkeypatch):
    """Deletion renames the folder away first: a kill half-way leaves no checkpoint-N without its marker."""
    import distilqa.infra.checkpoints as checkpoints

    folder = fake_checkpoint(tmp_path, 2)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoints.shutil, "rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        checkpoints.remove_checkpoint(folder)
    monkeypatch.undo()
    assert not folder.exists() and checkpoint_folders(tmp_path) == [] and foreign_checkpoints(tmp_path) == []
    (parked,) = tmp_path.iterdir()
    parked.rename(tmp_path / parked.name.replace(f"-{os.getpid()}-", "-999999999-"))  # the killed process's
    newest = fake_checkpoint(tmp_path, 4)
    rotate_checkpoints(tmp_path, 3, keep=[newest])  # after each save: what killed runs left is removed
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint-4"]


def test_an_empty_checkpoint_folder_is_not_foreign(tmp_path):
    """An empty checkpoint-N holds nobody's data (begin_checkpoint writes into it); one with a file does."""
    (tmp_path / "checkpoint-4").mkdir()
    assert foreign_checkpoints(tmp_path) == []
    (tmp_path / "checkpoint-4" / "precious.txt").write_text("mine")
    assert foreign_checkpoints(tmp_path) == [tmp_path / "checkpoint-4"]


# ------------------------------------------------------------------------------------------------ SIGKILL


STEP_PAUSE = 0.04  # seconds the killed run sleeps after each step (a lower bound on its time; see below)
MAX_DELAY = 0.4  # the kill comes up to this long after the wanted checkpoint marker
# The run kills itself: a timer started when it writes its k-th checkpoint marker sends it SIGKILL after a random
# delay, so a busy machine cannot make the test notice the marker late. The run also sleeps STEP_PAUSE after
# every optimizer step (sleeping draws no random number and changes no tensor), so after its 3rd checkpoint
# (step 6 of 24) it has at least 18 x 0.04 = 0.72 s > MAX_DELAY left, however fast the machine: the kill always
# lands before the run ends (a tiny run could otherwise finish inside the delay), at any point of a step or save.
KILLED_CLI = (
    "import os, signal, sys, threading, time\n"
    "import distilqa.qa.trainer as qa_trainer\n"
    "wanted, delay, pause = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])\n"
    "step, mark, marks = qa_trainer.QuestionAnsweringTrainer.training_step, qa_trainer.mark_complete, []\n"
    "def paused(self, *args, **kwargs):\n"
    "    loss = step(self, *args, **kwargs)\n"
    "    time.sleep(pause)\n"
    "    return loss\n"
    "def marked(*args, **kwargs):\n"
    "    mark(*args, **kwargs)\n"
    "    marks.append(1)\n"
    "    if len(marks) == wanted:\n"
    "        timer = threading.Timer(delay, os.kill, (os.getpid(), signal.SIGKILL))\n"
    "        timer.daemon = True  # a run that ends first exits 0, and the test says so\n"
    "        timer.start()\n"
    "qa_trainer.QuestionAnsweringTrainer.training_step, qa_trainer.mark_complete = paused, marked\n"
    "from distilqa.cli import main\n"
    "sys.exit(main(sys.argv[4:]))\n"
)


def kill_at_random(argv: list[str], out: Path, rng: random.Random, timeout: float = 120.0) -> str:
    """Run the CLI on ``argv`` and SIGKILL it at a random moment 0-0.4 s after its 1st, 2nd or 3rd checkpoint.

    Returns what happened, for the failure message: the checkpoint marker and the delay.
    """
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    wanted, delay = rng.randint(1, 3), rng.uniform(0.0, MAX_DELAY)
    what = f"killed {delay:.3f} s after checkpoint marker {wanted}"
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_CLI, str(wanted), str(delay), str(STEP_PAUSE), *argv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=timeout,
    )
    assert proc.returncode == -signal.SIGKILL, (
        f"the run was to be {what}, but ended with code {proc.returncode}: {proc.stderr.decode()[-2000:]}"
    )
    assert list(out.glob(f"checkpoint-*/{COMPLETE_MARKER}")), (
        what
    )  # (save_total_limit 2 keeps the newest two)
    return what


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["train", "distill", "distill-cached"])
def test_sigkill_then_resume_is_bit_exact(kind, models, train_file, tmp_path, capsys):
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    whole, crashed = tmp_path / "whole", tmp_path / "crashed"
    args = ["--save_steps", "2", "--max_steps", "24"]
    assert main(command(kind, models, train_file, whole, *args)) == 0
    what = kill_at_random(command(kind, models, train_file, crashed, *args), crashed, rng)
    assert not (crashed / "model").exists()
    capsys.readouterr()
    assert main(command(kind, models, train_file, crashed, *args, "--resume")) == 0, what
    assert "Resuming from" in capsys.readouterr().out, what
    left = [p.name for p in crashed.rglob(".*") if p.name not in (".distilqa",)]
    assert left == [], f"the resumed run left {left} ({what})"  # no temporary file, no lock file
    try:
        assert_same_weights(whole, crashed)
    except AssertionError as err:
        raise AssertionError(f"{err} ({what}, random seed {seed})") from None
