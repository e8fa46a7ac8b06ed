"""Crash-safe Trainer checkpoints: a marker file says a ``checkpoint-N`` folder is complete.

The Trainer writes a checkpoint as many files (weights, optimizer, scheduler, RNG states, trainer state) with no
way to tell a finished folder from one cut short by a crash. distilqa writes ``distilqa_complete.json`` into a
folder once every process has written its part (after the files are flushed to disk), recording each file's
size; a folder without it, or whose files no longer have the recorded sizes, is incomplete:

* ``--resume`` starts from :func:`last_complete_checkpoint` and skips incomplete folders;
* :func:`rotate_checkpoints` (``save_total_limit``) deletes incomplete folders first and never the newest
  complete one, and a folder loses its marker before it is rewritten or deleted.

A checkpoint is the run's own when :func:`begin_checkpoint` gave it distilqa's ownership marker (``.distilqa``,
kind ``checkpoint``, written before the Trainer's first file, so torn folders have it too), or, for folders of
distilqa 0.1, when it has a completeness marker listing exactly its files. Rotation deletes only those (and not
one that holds a file its completeness marker does not list); :func:`foreign_checkpoints` names the others, and
``train`` / ``distill`` refuse to start in a run folder that holds one.

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

from distilqa.errors import InputError
from distilqa.infra.files import atomic_write_json, clean_leftovers, fsync_dir, temp_path, temp_target
from distilqa.infra.ownership import CHECKPOINT, CHECKPOINT_COMPLETE, MARKER_FILE, read_marker, write_marker

logger = logging.getLogger(__name__)

COMPLETE_MARKER = CHECKPOINT_COMPLETE
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


def checkpoint_disk(output_dir: str | os.PathLike) -> dict[str, float]:
    """``{"count", "disk_mb"}``: the ``checkpoint-N`` folders of a run and the disk their files use."""
    folders = checkpoint_folders(output_dir)
    size = sum(p.stat().st_size for folder in folders for p in folder.rglob("*") if p.is_file())
    return {"count": len(folders), "disk_mb": round(size / 2**20, 2)}


def _files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and p.relative_to(folder).as_posix() not in _MARKERS
    )


_MARKERS = (COMPLETE_MARKER, MARKER_FILE)


def mark_complete(folder: str | os.PathLike, global_step: int, run: dict | None = None) -> None:
    """Flush every file of ``folder`` to disk, then write its marker (file sizes; the run's settings, given
    ``run``, see :mod:`distilqa.infra.run_settings`) atomically."""
    folder = Path(folder)
    files = {}
    for path in _files(folder):
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
        files[path.relative_to(folder).as_posix()] = path.stat().st_size
    record = {"global_step": global_step, "files": files}
    if run is not None:
        record["run"] = run
    atomic_write_json(folder / COMPLETE_MARKER, record)


def unmark(folder: str | os.PathLike) -> None:
    """Remove the marker: the folder is about to be rewritten or deleted."""
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        os.unlink(Path(folder) / COMPLETE_MARKER)


def _record(folder: Path) -> dict | None:
    try:
        record = json.loads((folder / COMPLETE_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("files"), dict) else None


def unlisted_files(folder: str | os.PathLike) -> list[str]:
    """Files of a complete checkpoint that its completeness marker does not list (put there by someone else)."""
    folder = Path(folder)
    record = _record(folder)
    if record is None:
        return []
    return sorted({p.relative_to(folder).as_posix() for p in _files(folder)} - set(record["files"]))


def is_own(folder: str | os.PathLike) -> bool:
    """Whether a checkpoint folder was written by distilqa's trainers (see the module docstring)."""
    folder = Path(folder)
    marker = read_marker(folder)
    if marker is not None:
        return marker["kind"] == CHECKPOINT
    record = _record(folder)  # distilqa 0.1: no ownership marker, a completeness marker listing every file
    return bool(record and record["files"]) and not unlisted_files(folder) and is_complete(folder)


def foreign_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """The ``checkpoint-N`` folders of ``output_dir`` that distilqa would neither delete nor write into."""
    return [
        f
        for f in checkpoint_folders(output_dir)
        if _holds_anything(f) and (not is_own(f) or unlisted_files(f))
    ]


def _holds_anything(folder: Path) -> bool:
    """An empty ``checkpoint-N`` is nobody's data: :func:`begin_checkpoint` writes into it like a new folder."""
    try:
        return any(folder.iterdir())
    except OSError:
        return True


def begin_checkpoint(folder: str | os.PathLike) -> None:
    """Before a checkpoint is (re)written: drop its completeness marker, create it with the ownership marker.

    Raises:
        InputError: ``folder`` exists with files and distilqa did not write it.
    """
    folder = Path(folder)
    if folder.is_dir() and any(folder.iterdir()) and (not is_own(folder) or unlisted_files(folder)):
        raise InputError(
            f"{folder} exists and was not written by distilqa; move it out of the run folder, then run again"
        )
    unmark(folder)
    if folder.is_dir():
        if read_marker(folder) is None:
            write_marker(folder, CHECKPOINT)
        return
    # A new folder appears under its name with the marker already in it (made under a temporary name, then
    # renamed): a kill between mkdir and the marker would otherwise leave a bare checkpoint-N that no later run
    # can tell from someone else's, and `--resume` would refuse the run folder.
    folder.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(folder)
    tmp = temp_path(folder)
    tmp.mkdir()
    write_marker(tmp, CHECKPOINT)
    try:
        os.rename(tmp, folder)
    except OSError:  # another rank made the folder first (its rng state file): mark it in place
        with contextlib.suppress(OSError):
            (tmp / MARKER_FILE).unlink()
            tmp.rmdir()
        if read_marker(folder) is None:
            write_marker(folder, CHECKPOINT)
    fsync_dir(folder.parent)


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
    """Delete a checkpoint folder: its completeness marker first (a kill half-way leaves an incomplete folder),
    its ownership marker last (so that what is left is still known to be the run's own)."""
    folder = Path(folder)
    unmark(folder)
    if not folder.is_dir():
        return
    # Renamed away first, so a kill half-way leaves a temporary name (cleaned by the next write of this
    # checkpoint), never a bare checkpoint-N without its ownership marker.
    parked = temp_path(folder)
    try:
        os.rename(folder, parked)
    except OSError:
        parked = folder
    for entry in parked.iterdir():
        if entry.name == MARKER_FILE:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
    with contextlib.suppress(FileNotFoundError):
        (parked / MARKER_FILE).unlink()
    with contextlib.suppress(OSError):
        parked.rmdir()


def _clean_checkpoint_leftovers(output_dir: str | os.PathLike) -> None:
    """Remove checkpoints a killed run was creating or deleting (temporary names of processes that are gone)."""
    with contextlib.suppress(OSError):
        for name in {temp_target(n) for n in os.listdir(output_dir)}:
            if name and checkpoint_step(Path(name)) is not None:
                clean_leftovers(Path(output_dir) / name)


def rotate_checkpoints(output_dir: str | os.PathLike, limit: int | None, keep: Iterable) -> list[Path]:
    """Keep at most ``limit`` of the run's own checkpoints: delete incomplete ones first, then the oldest complete.

    Folders that are not the run's own (:func:`is_own`), or that hold files their marker does not list, are
    never deleted nor counted.

    Args:
        output_dir: the run folder.
        limit (`int`, *optional*): ``save_total_limit``; `None` or <= 0 keeps everything.
        keep: folders never deleted (the checkpoint just written, the best one).

    Returns:
        The deleted folders.
    """
    _clean_checkpoint_leftovers(output_dir)
    if not limit or limit <= 0:
        return []
    folders = []
    for folder in checkpoint_folders(output_dir):
        extra = unlisted_files(folder)
        if is_own(folder) and not extra:
            folders.append(folder)
        else:
            logger.warning(
                "keeping %s: %s",
                folder,
                f"it holds {', '.join(extra[:3])}" if extra else "distilqa did not write it",
            )
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
