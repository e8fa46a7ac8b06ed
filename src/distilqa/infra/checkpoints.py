"""Crash-safe Trainer checkpoints: a marker file says a ``checkpoint-N`` folder is complete.

The Trainer writes a checkpoint as many files (weights, optimizer, scheduler, RNG states, trainer state) with no
way to tell a finished folder from one cut short by a crash. distilqa writes ``distilqa_complete.json`` into a
folder once every process has written its part (after the files are flushed to disk), recording each file's
size; a folder without it, or whose files no longer have the recorded sizes, is incomplete:

* ``--resume`` starts from :func:`last_complete_checkpoint` and skips incomplete folders;
* :func:`rotate_checkpoints` (``save_total_limit``) deletes incomplete folders first and never the newest
  complete one, and a folder loses its marker before it is rewritten or deleted.

:class:`distilqa.qa.trainer.QuestionAnsweringTrainer` (and so the distillation trainer) does all of this itself;
:class:`CheckpointCompleteCallback` marks checkpoints of a plain ``transformers.Trainer``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from transformers import TrainerCallback

from distilqa.infra.files import atomic_write_json

logger = logging.getLogger(__name__)

COMPLETE_MARKER = "distilqa_complete.json"
PREFIX = "checkpoint-"


def checkpoint_step(folder: str | os.PathLike) -> int | None:
    """``N`` for a folder named ``checkpoint-N``, else None."""
    name = Path(folder).name
    if not name.startswith(PREFIX) or not name[len(PREFIX) :].isdigit():
        return None
    return int(name[len(PREFIX) :])


def checkpoint_folders(output_dir: str | os.PathLike) -> list[Path]:
    """The ``checkpoint-N`` folders of a run, by rising step."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = [(checkpoint_step(p), p) for p in output_dir.glob(f"{PREFIX}*") if p.is_dir()]
    return [p for step, p in sorted((s, p) for s, p in found if s is not None)]


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != COMPLETE_MARKER)


def mark_complete(folder: str | os.PathLike, global_step: int) -> None:
    """Flush every file of ``folder`` to disk, then write its marker (file sizes) atomically."""
    folder = Path(folder)
    files = {}
    for path in _files(folder):
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
        files[path.relative_to(folder).as_posix()] = path.stat().st_size
    atomic_write_json(folder / COMPLETE_MARKER, {"global_step": global_step, "files": files})


def unmark(folder: str | os.PathLike) -> None:
    """Remove the marker: the folder is about to be rewritten or deleted."""
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        os.unlink(Path(folder) / COMPLETE_MARKER)


def is_complete(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` has a readable marker and every recorded file with its recorded size."""
    folder = Path(folder)
    try:
        record = json.loads((folder / COMPLETE_MARKER).read_text(encoding="utf-8"))
        files = record["files"]
        return bool(files) and all(
            (folder / name).is_file() and (folder / name).stat().st_size == size
            for name, size in files.items()
        )
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return False


def last_complete_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    """The newest ``checkpoint-N`` of ``output_dir`` that :func:`is_complete`; newer incomplete ones are logged."""
    for folder in reversed(checkpoint_folders(output_dir)):
        if is_complete(folder):
            return folder
        logger.warning("skipping incomplete checkpoint %s (no valid %s)", folder, COMPLETE_MARKER)
    return None


def remove_checkpoint(folder: str | os.PathLike) -> None:
    """Delete a checkpoint folder, marker first, so that a kill half-way leaves an incomplete folder."""
    unmark(folder)
    shutil.rmtree(folder, ignore_errors=True)


def rotate_checkpoints(output_dir: str | os.PathLike, limit: int | None, keep: Iterable) -> list[Path]:
    """Keep at most ``limit`` checkpoints: delete incomplete ones first, then the oldest complete ones.

    Args:
        output_dir: the run folder.
        limit (`int`, *optional*): ``save_total_limit``; `None` or <= 0 keeps everything.
        keep: folders never deleted (the checkpoint just written, the best one).

    Returns:
        The deleted folders.
    """
    if not limit or limit <= 0:
        return []
    folders = checkpoint_folders(output_dir)
    protected = {Path(p).resolve() for p in keep if p}
    incomplete = [f for f in folders if not is_complete(f)]
    order = incomplete + [f for f in folders if f not in incomplete]
    remaining, deleted = len(folders), []
    for folder in order:
        if remaining <= max(limit, len(protected)):
            break
        if folder.resolve() in protected:
            continue
        logger.info("deleting checkpoint %s (save_total_limit %d)", folder, limit)
        remove_checkpoint(folder)
        deleted.append(folder)
        remaining -= 1
    return deleted


class CheckpointCompleteCallback(TrainerCallback):
    """Marks the checkpoints of a plain ``transformers.Trainer`` complete (``on_save`` runs after the save).

    distilqa's trainers mark their checkpoints themselves, before the Trainer's rotation and after all
    processes have saved; with a plain Trainer, a kill between its rotation and this callback can leave no
    marked checkpoint.
    """

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            folder = Path(args.output_dir) / f"{PREFIX}{state.global_step}"
            if folder.is_dir():
                mark_complete(folder, state.global_step)
