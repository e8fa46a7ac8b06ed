"""Atomic, durable writes: every output is written under a temporary name beside its target and renamed into place.

A crash (or SIGKILL) therefore leaves either the old file / folder or the complete new one, never a torn one:

* :func:`atomic_write_bytes` (``_text``, ``_json``) writes ``.NAME.distilqa-PID-XXXX.tmp``, ``fsync``\\ s it,
  renames it over ``NAME`` and ``fsync``\\ s the parent folder, so the rename itself survives a power cut.
* :func:`atomic_directory` yields such a temporary folder; on success every file and folder in it is
  ``fsync``\\ ed, it replaces the target in one step (Linux ``renameat2(RENAME_EXCHANGE)``; elsewhere two renames,
  the old folder parked at ``.NAME.distilqa-old-PID`` in between) and the parent is ``fsync``\\ ed. With a
  ``kind`` it also writes distilqa's ownership marker (:mod:`distilqa.infra.ownership`) into the folder and
  refuses to replace anything distilqa did not make.
* New files get mode ``0666 & ~umask`` and new folders ``0777 & ~umask``, like any other program's output.
* A full disk (``ENOSPC``, ``EDQUOT``) is one line naming the folder (:func:`disk_full_error`, exit code 2): the
  partial copy is removed and the old version stays.
* What a killed write leaves beside its target (a temporary file or folder of a process that no longer runs,
  or a parked old folder) is removed by the next write to the same target; a parked old folder whose target is
  missing (a kill between the two renames) is put back first. Nothing else is ever touched.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import logging
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from distilqa.errors import InputError

logger = logging.getLogger(__name__)

TEMP_TAG = "distilqa"
# .NAME.distilqa-PID-RANDOM.tmp (a file or folder being written) and .NAME.distilqa-old-PID (a replaced folder).
_TEMP = re.compile(rf"^\.(?P<name>.+)\.{TEMP_TAG}-(?P<pid>\d+)-[0-9a-f]+\.tmp$")
_OLD = re.compile(rf"^\.(?P<name>.+)\.{TEMP_TAG}-old-(?P<pid>\d+)$")
# What distilqa 0.1 left: .NAME.XXXXXXXX.tmp (tempfile's 8 random characters) and .NAME.old-PID.
_LEGACY_TEMP = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp$")
_LEGACY_OLD = re.compile(r"^\.(?P<name>.+)\.old-(?P<pid>\d+)$")


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 hex digest of a file, read in 1 MiB blocks."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


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
    Whether an existing output may be replaced is :func:`distilqa.infra.ownership.check_output`'s question.
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


# -- temporary names and what killed writes leave ------------------------------------------------------------


def temp_path(target: str | os.PathLike) -> Path:
    """A fresh temporary name beside ``target``: ``.NAME.distilqa-PID-RANDOM.tmp``."""
    target = Path(target)
    return target.parent / f".{target.name}.{TEMP_TAG}-{os.getpid()}-{secrets.token_hex(4)}.tmp"


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is one of distilqa's temporary or parked names (this version's or 0.1's)."""
    return temp_target(name) is not None


def temp_target(name: str) -> str | None:
    """The name a temporary or parked name stands in for (``.model.distilqa-12-ab.tmp`` -> ``model``), else None."""
    for pattern in (_TEMP, _OLD, _LEGACY_TEMP, _LEGACY_OLD):
        match = pattern.match(name)
        if match:
            return match["name"]
    return None


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True  # this process: another thread may be writing the same target
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process, or we cannot tell: leave its files alone
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def clean_leftovers(target: str | os.PathLike) -> list[Path]:
    """Remove what killed writes of ``target`` left beside it; put a parked old folder back if ``target`` is gone.

    Only names of the forms ``.NAME.distilqa-PID-RANDOM.tmp`` and ``.NAME.distilqa-old-PID`` of processes that no
    longer run (and 0.1's ``.NAME.XXXXXXXX.tmp`` / ``.NAME.old-PID``) are touched. Returns what was removed.
    """
    target = Path(target)
    parent = target.parent
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return []
    removed, parked = [], []
    for entry in entries:
        for pattern in (_TEMP, _OLD, _LEGACY_TEMP, _LEGACY_OLD):
            match = pattern.match(entry.name)
            if match and match["name"] == target.name:
                pid = int(match.groupdict().get("pid") or 0)
                if pid and _running(pid):
                    break
                if pattern in (_OLD, _LEGACY_OLD):
                    parked.append(Path(entry.path))
                else:
                    removed.append(Path(entry.path))
                break
    if parked and not os.path.lexists(target):
        newest = max(parked, key=lambda p: p.stat().st_mtime)
        os.replace(newest, target)  # a kill between the two renames: the old version comes back
        logger.warning("restored %s from %s (a write was killed while replacing it)", target, newest.name)
        parked.remove(newest)
    for path in removed + parked:
        logger.info("removing %s (left by a killed write of %s)", path, target.name)
        _remove(path)
    return removed + parked


# -- durability ----------------------------------------------------------------------------------------------


def fsync_dir(path: str | os.PathLike) -> None:
    """Flush a folder's entries (new names, renames) to disk; a no-op where folders cannot be opened (Windows)."""
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: str | os.PathLike) -> None:
    """``fsync`` every file and folder under ``root`` (``root`` included), deepest first."""
    for folder, _, files in os.walk(root, topdown=False):
        for name in files:
            path = os.path.join(folder, name)
            if os.path.islink(path):
                continue
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(folder)


def _create_file(path: Path) -> int:
    # O_EXCL on a fresh name; mode 0666 so that the kernel applies the umask (mkstemp would give 0600).
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and durably (see the module docstring); returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(path)
    tmp = temp_path(path)
    try:
        with os.fdopen(_create_file(tmp), "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if is_disk_full(err, path.parent):
            raise disk_full_error(
                path.parent, f"{path} was not written (the old version, if any, is kept)"
            ) from err
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one step (Linux ``renameat2``); False where that is not available."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
        return False  # kernel or file system without exchange: fall back to two renames
    raise OSError(code, os.strerror(code), str(b))


def _replace_dir(tmp: Path, path: Path) -> None:
    if not os.path.lexists(path):
        os.replace(tmp, path)
    elif _exchange(tmp, path):
        _remove(tmp)  # now the old folder
    else:
        old = path.parent / f".{path.name}.{TEMP_TAG}-old-{os.getpid()}"
        os.replace(path, old)
        os.replace(tmp, path)
        _remove(old)
    fsync_dir(path.parent)


DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
# torch.save's zip writer turns ENOSPC into a RuntimeError with one of these.
_TORCH_WRITE_FAILED = ("unexpected pos", "file write failed", "No space left on device")
NEARLY_FULL_BYTES = 256 * 2**20


def _free_bytes(path: Path) -> int | None:
    for folder in (path, *path.parents):
        try:
            return shutil.disk_usage(folder).free
        except OSError:
            continue
    return None


def is_disk_full(err: BaseException, where: str | os.PathLike) -> bool:
    """Whether ``err``, raised while writing under ``where``, means the disk (or the user's quota) is full.

    An ``OSError`` says so by its errno; the RuntimeError of torch's writer is believed when the disk of ``where``
    has less than 256 MiB free.
    """
    if isinstance(err, OSError):
        return err.errno in DISK_FULL_ERRNOS
    if isinstance(err, RuntimeError) and any(text in str(err) for text in _TORCH_WRITE_FAILED):
        free = _free_bytes(Path(where))
        return free is not None and free < NEARLY_FULL_BYTES
    return False


def disk_full_error(where: str | os.PathLike, what: str, then: str = "run again") -> InputError:
    """The one line for a full disk: the folder, what was (not) written, how much is free, what to do."""
    free = _free_bytes(Path(where))
    room = f" ({free / 2**20:.0f} MB free)" if free is not None else ""
    return InputError(f"no space left on the disk of {where}{room}: {what}; free some space, then {then}")


@contextlib.contextmanager
def atomic_directory(
    path: str | os.PathLike, overwrite: bool = True, kind: str | None = None, what: str = "output folder"
) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it replaces ``path``, on error it is removed.

    Args:
        path: the folder to write (a symlink is followed: the folder it points to is replaced).
        overwrite (`bool`, defaults to `True`): when False, an existing ``path`` is refused.
        kind (`str`, *optional*): the :mod:`distilqa.infra.ownership` kind (``"model"``, ``"teacher-cache"``,
            ...). An existing ``path`` is then replaced only if it is missing, empty, or distilqa's folder of
            that kind holding no file distilqa did not write (checked before and again right before the
            rename), and the marker is written into the new folder.
        what (`str`): how error messages name ``path`` (e.g. ``"--output"``).

    Example::

        with atomic_directory("out/model", kind="model") as tmp:
            model.save_pretrained(tmp)
    """
    path = Path(path)
    if path.is_symlink():
        path = path.resolve()
    check = None
    if kind is not None:
        from distilqa.infra.ownership import check_replaceable, write_marker

        def check():
            check_replaceable(path, kind, what)

        check()
    if path.exists() and not overwrite:
        raise InputError(f"{path} already exists; remove it or choose another output folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(path)
    tmp = temp_path(path)
    os.mkdir(tmp, 0o777)  # the umask applies (mkdtemp would give 0700)
    try:
        yield tmp
        if kind is not None:
            write_marker(tmp, kind)
        fsync_tree(tmp)
        if check is not None:
            check()  # the target may have changed during a long write (a user's file put there meanwhile)
        _replace_dir(tmp, path)
    except BaseException as err:
        _remove(tmp)
        if is_disk_full(err, path.parent):
            raise disk_full_error(
                path.parent, f"{path} was not written (the partial copy is removed)"
            ) from err
        raise


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
