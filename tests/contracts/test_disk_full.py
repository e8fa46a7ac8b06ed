"""A full disk is one line naming the folder, exit code 2, and nothing torn is left behind: a checkpoint cut short
is removed, a model folder or file being written is removed and the old version kept."""

from __future__ import annotations

import errno
import os
from collections import namedtuple
from pathlib import Path

import pytest

from conftest import squad_file
from distilqa.cli import main
from distilqa.errors import InputError
from distilqa.infra.files import atomic_write_text, is_temp_name

TRAIN = ["--max_seq_length", "64", "--doc_stride", "16", "--max_query_length", "16", "--per_device_train_batch_size", "4",
         "--max_train_samples", "8", "--max_steps", "2", "--report_to", "none", "--use_cpu", "true",
         "--disable_tqdm", "true"]  # fmt: skip
ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
TORCH_ENOSPC = RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 1152 vs 1040")


def train(model: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--model_name_or_path", str(model), "--train_file", str(squad_file("train.json")),
            "--output_dir", str(out), *TRAIN, *extra]  # fmt: skip


def torn_optimizer(monkeypatch, error: BaseException) -> None:
    """The Trainer's optimizer save writes half a file into the checkpoint, then the disk is full."""
    import transformers

    def save(self, output_dir):
        Path(output_dir, "optimizer.pt").write_bytes(b"\0" * 1000)
        raise error

    monkeypatch.setattr(transformers.Trainer, "_save_optimizer_and_scheduler", save)


def one_line(capsys, internal: bool = False) -> str:
    """The error: stderr's last line, its only error line (progress bars may come before it)."""
    err = capsys.readouterr().err.strip()
    assert err.count("distilqa: error: ") == 1 and "Traceback" not in err, err
    last = err.splitlines()[-1]
    assert last.startswith("distilqa: error: ") and ("--debug" in last) == internal, last
    return last


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if is_temp_name(p.name)]


@pytest.mark.parametrize("error", [ENOSPC, TORCH_ENOSPC], ids=["OSError", "torch-RuntimeError"])
def test_disk_full_during_a_checkpoint(error, tiny_bert_path, tmp_path, monkeypatch, capsys):
    import shutil

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**10, 10**10 - 2**20, 2**20))  # 1 MB free
    torn_optimizer(monkeypatch, error)
    out = tmp_path / "run"
    capsys.readouterr()
    assert main(train(tiny_bert_path, out, "--save_strategy", "steps", "--save_steps", "1")) == 2
    err = one_line(capsys)
    assert (
        f"no space left on the disk of {out} (1 MB free): checkpoint-1 could not be written and was removed"
        in err
    )
    assert err.endswith("free some space, then run the same command with --resume")
    assert not (out / "checkpoint-1").exists() and not (out / "model").exists() and leftovers(out) == []


def test_a_torch_write_failure_with_room_on_the_disk_stays_an_internal_error(
    tiny_bert_path, tmp_path, monkeypatch, capsys
):
    torn_optimizer(monkeypatch, TORCH_ENOSPC)  # the disk has room: not called "disk full"
    capsys.readouterr()
    assert main(train(tiny_bert_path, tmp_path / "run", "--save_strategy", "steps", "--save_steps", "1")) == 1
    assert "an internal error; run with --debug" in one_line(capsys, internal=True)


def test_disk_full_while_the_final_model_is_written(tiny_bert_path, tmp_path, monkeypatch, capsys):
    import distilqa.infra.cards

    def card(folder, **kwargs):
        Path(folder, "README.md").write_text("half a card")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(Path(folder, "README.md")))

    monkeypatch.setattr(distilqa.infra.cards, "write_model_card", card)
    out = tmp_path / "run"
    capsys.readouterr()
    assert main(train(tiny_bert_path, out, "--save_strategy", "no")) == 2
    err = one_line(capsys)
    assert f"no space left on the disk of {out}" in err and f"{out / 'model'} was not written" in err
    assert not (out / "model").exists() and leftovers(out) == []


def test_disk_full_while_a_file_is_written_keeps_the_old_version(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    target.write_text("old")
    real_fsync = os.fsync

    def fsync(fd):
        if is_temp_name(Path(os.readlink(f"/proc/self/fd/{fd}")).name):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(
        InputError, match=rf"^no space left on the disk of {tmp_path} \(\d+ MB free\): {target}"
    ):
        atomic_write_text(target, "new")
    assert target.read_text() == "old" and leftovers(tmp_path) == []


def test_any_other_disk_full_error_is_one_line_exit_2(monkeypatch, capsys):
    import distilqa.cli.score

    def fail(argv):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/data/out.json")

    monkeypatch.setattr(distilqa.cli.score, "main", fail)
    assert main(["score"]) == 2
    assert "no space left on the disk (/data/out.json); free some space" in one_line(capsys)
