"""Atomic writes: every output is written under a temporary name beside its target and renamed into place.

A crash (or SIGKILL) therefore leaves either the old file / folder or the complete new one, never a torn one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from distilqa.errors import InputError


def ensure_writable_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` (and parents) if needed and check that files can be created in it."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-", delete=True)
        probe.close()
    except OSError as err:
        raise InputError(
            f"output folder {path} cannot be written ({err.strerror}); choose another folder"
        ) from None
    return path


def check_writable(path: str | os.PathLike, what: str = "output folder", folder: bool = True) -> Path:
    """Raise :class:`InputError` unless ``path`` (a folder, or a file when ``folder=False``) can be written later.

    Creates nothing, so a command can check its outputs before any work and leave no trace when it fails.
    Permission bits are checked with ``os.access`` (which root passes); a path under a regular file always fails.
    """
    path = Path(path)
    if path.exists():
        if folder and not path.is_dir():
            raise InputError(f"{what} {path} is a file, not a folder; choose a folder path")
        if not folder and path.is_dir():
            raise InputError(f"{what} {path} is a folder; give a file path")
    existing = path if folder and path.is_dir() else next((p for p in path.parents if p.exists()), Path("."))
    if not existing.is_dir():
        raise InputError(
            f"{what} {path} cannot be created: {existing} is a file, not a folder; choose another path"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"{what} {path} cannot be written: {existing} is not writable; choose another path")
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it replaces ``path``, on error it is removed.

    Example::

        with atomic_directory("out/model") as tmp:
            model.save_pretrained(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not overwrite:
        raise InputError(f"{path} already exists; remove it or choose another output folder")
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if path.exists():
        old = path.parent / f".{path.name}.old-{os.getpid()}"
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def looks_local(name_or_path: str | os.PathLike) -> bool:
    """Whether a model/data argument means a local path rather than a hub name like ``squad`` or ``user/name``."""
    text = str(name_or_path)
    return (
        Path(text).exists()
        or text.startswith((".", "/", "~"))
        or text.endswith((".json", ".jsonl"))
        or text.count("/") > 1
        or (os.sep != "/" and os.sep in text)
    )
