"""One process at a time writes an output folder: an OS lock on a file inside it, held for the whole run.

:func:`folder_lock` takes ``fcntl.flock`` on ``FOLDER/.distilqa.lock`` (created if needed, with the holder's pid
in it) and removes the file when the run ends. A second process that asks for the same folder gets one line
naming the folder and the holder's pid (:class:`~distilqa.errors.InputError`, exit code 2) instead of writing
over the first one's files. The operating system drops the lock when its process ends in any way, ``SIGKILL``
included, so a lock file left by a killed run never blocks the next one. Where ``fcntl`` does not exist
(Windows) the folder is not locked.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from distilqa.errors import InputError
from distilqa.infra.ownership import LOCK_FILE  # the name lives there: ownership checks skip the file

__all__ = ["LOCK_FILE", "folder_lock"]

logger = logging.getLogger(__name__)


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
    except OSError:
        return "unknown"
    return text if text.isdigit() else "unknown"


def _acquire(path: Path, folder: Path, what: str) -> int | None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        logger.debug("no fcntl: %s is not locked", folder)
        return None
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _holder(fd)
            os.close(fd)
            raise InputError(
                f"{what} {folder} is being written by another distilqa process (pid {holder}); wait for it to "
                "end, or choose another output folder"
            ) from None
        # The previous holder removes the file when it ends: a lock taken on a file that is no longer the one at
        # ``path`` protects nothing, so open the new one and try again.
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
            return fd
        os.close(fd)


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, what: str = "output folder") -> Iterator[Path]:
    """Hold the lock of ``folder`` (which must exist) for the ``with`` block.

    Args:
        folder: the output folder.
        what (`str`): how the message names it (``"output_dir"``).

    Raises:
        InputError: another process holds the lock.
    """
    folder = Path(folder)
    path = folder / LOCK_FILE
    fd = _acquire(path, folder, what)
    try:
        yield path
    finally:
        if fd is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)  # before the lock is released: nobody else holds a lock on this file
            os.close(fd)
