"""Which outputs distilqa may replace: its own folders carry a marker, and nothing else is ever replaced.

Every folder distilqa creates as an output holds a small ``.distilqa`` JSON file::

    {"made_by": "distilqa", "version": "0.1.0", "kind": "model", "files": ["config.json", ...]}

``kind`` is one of :data:`KINDS`. Folders written whole (:func:`distilqa.infra.files.atomic_directory`: a
``model/``, an init-student folder, an ONNX export, a teacher cache) also list the files written, so a file
added later by someone else is seen. Run folders (``train`` / ``distill`` ``output_dir``, ``evaluate
--output_dir``, the demo's report folder) get the marker when they are created (:func:`claim_folder`).

:func:`check_output` is the one rule every command applies to its outputs before any work:

* an output may be **missing**, an **empty folder**, or **distilqa's folder of the same kind** (for whole
  folders: holding no file it did not write); ``--force`` never widens this, it only lets a command replace
  distilqa's own output where it would otherwise keep it;
* an output is never an **input**: not the same file, and not the teacher's / student's / model's folder, a
  folder inside it or a folder around it (:func:`check_apart`, on resolved paths, so symlinks do not hide it).

Outputs of distilqa 0.1, made before the marker existed, are recognised by distilqa's own files
(:func:`recognise`): a cache by its ``manifest.json``, an export by ``distilqa_export.json``, an init-student
folder by ``distilqa_student.json``, a model folder by its distilqa model card, each only when every file in it
is one distilqa writes there; a run folder by such a ``model/`` or a checkpoint with ``distilqa_complete.json``;
an evaluate folder by its ``metrics.json``; a demo folder by its ``results.json`` or such sub-folders.
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from distilqa.errors import InputError
from distilqa.infra.files import atomic_write_json, check_writable, is_temp_name

MARKER_FILE = ".distilqa"
LOCK_FILE = ".distilqa.lock"  # distilqa.infra.locks.LOCK_FILE: a run folder's lock, left by a killed run
# A checkpoint's completeness marker (distilqa.infra.checkpoints, named here so this module needs no transformers).
CHECKPOINT_COMPLETE = "distilqa_complete.json"

CACHE, RUN, MODEL, CHECKPOINT, STUDENT, EXPORT, EVALUATE, DEMO = (
    "teacher-cache", "run", "model", "checkpoint", "init-student", "export", "evaluate", "demo",
)  # fmt: skip
KINDS = (CACHE, RUN, MODEL, CHECKPOINT, STUDENT, EXPORT, EVALUATE, DEMO)
# Written whole and replaced whole: the marker lists their files.
WHOLE = {CACHE, MODEL, STUDENT, EXPORT}
DESCRIPTION = {
    CACHE: "teacher cache", RUN: "train/distill run folder", MODEL: "model folder", CHECKPOINT: "checkpoint",
    STUDENT: "init-student folder", EXPORT: "ONNX export", EVALUATE: "evaluate output folder", DEMO: "demo report folder",
}  # fmt: skip

# -- recognising distilqa 0.1's outputs (no marker) ----------------------------------------------------------
CACHE_FORMAT = "distilqa-teacher-cache"  # distilqa.distill.cache.store.FORMAT (not imported: it needs numpy)
CACHE_FILES = ("manifest.json", "logits.npy")
# What save_pretrained / the tokenizers / distilqa write into a model folder.
MODEL_FILES = (
    "config.json", "generation_config.json", "*.safetensors", "model.safetensors.index.json", "tokenizer.json",
    "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "vocab.json", "merges.txt", "added_tokens.json",
    "*.model", "chat_template.jinja", "README.md", "distilqa_student.json", "distilqa_export.json", "model.onnx",
    "distilqa_threshold.json",
)  # fmt: skip
RUN_FILES = ("model", "metrics.json", "eval_predictions.json", "checkpoint-*", "runs", "distilqa_run.json")
EVALUATE_FILES = ("predictions.json", "nbest_predictions.json", "null_odds.json", "metrics.json")
DEMO_FILES = (
    "teacher", "student-init", "student-alone", "student-distilled", "teacher-cache", "results.json", "results.md",
)  # fmt: skip
CARD_TAG = "\n- distilqa\n"  # in the front matter of every card distilqa writes (distilqa.infra.cards.TAGS)


def _entries(folder: Path) -> list[str]:
    """The names in ``folder``, without distilqa's marker and temporary leftovers."""
    return sorted(n for n in os.listdir(folder) if n not in (MARKER_FILE, LOCK_FILE) and not is_temp_name(n))


def _files(folder: Path) -> list[str]:
    """Every file under ``folder`` (relative POSIX paths), without the marker and temporary leftovers."""
    found = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not is_temp_name(d)]
        for name in names:
            rel = Path(root, name).relative_to(folder).as_posix()
            if rel not in (MARKER_FILE, LOCK_FILE) and not is_temp_name(name):
                found.append(rel)
    return sorted(found)


def _matches(name: str, patterns) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def write_marker(folder: str | os.PathLike, kind: str, files: bool | None = None) -> dict[str, Any]:
    """Write ``folder/.distilqa`` saying distilqa made it as ``kind``; whole folders also list their files."""
    from distilqa import __version__

    if kind not in KINDS:
        raise ValueError(f"unknown output kind {kind!r}; one of {KINDS}")
    folder = Path(folder)
    record: dict[str, Any] = {"made_by": "distilqa", "version": __version__, "kind": kind}
    if (kind in WHOLE) if files is None else files:
        record["files"] = _files(folder)
    atomic_write_json(folder / MARKER_FILE, record)
    return record


def read_marker(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The marker of ``folder``, or None when there is none or it is not distilqa's."""
    record = _json(Path(folder) / MARKER_FILE)
    if isinstance(record, dict) and record.get("made_by") == "distilqa" and record.get("kind") in KINDS:
        return record
    return None


def _is_card(path: Path) -> bool:
    try:
        return CARD_TAG in path.read_text(encoding="utf-8")[:2000]
    except (OSError, UnicodeDecodeError):
        return False


def recognise(folder: str | os.PathLike) -> str | None:
    """The kind of a distilqa output folder, from its marker or (distilqa 0.1) from its own files; else None."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    record = read_marker(folder)
    if record is not None:
        return record["kind"]
    names = _entries(folder)
    if not names:
        return None
    top = set(names)
    if top <= set(CACHE_FILES) and (_json(folder / "manifest.json") or {}).get("format") == CACHE_FORMAT:
        return CACHE
    if "config.json" in top and all(_matches(n, MODEL_FILES) for n in _files(folder)):
        if "distilqa_export.json" in top:
            return EXPORT
        if "distilqa_student.json" in top:
            return STUDENT
        if _is_card(folder / "README.md"):
            return MODEL
    if all(_matches(n, RUN_FILES) for n in names):
        if recognise(folder / "model") == MODEL or any(
            (folder / n / CHECKPOINT_COMPLETE).is_file() for n in names if n.startswith("checkpoint-")
        ):
            return RUN
    if top <= set(EVALUATE_FILES):
        metrics = _json(folder / "metrics.json")
        if isinstance(metrics, dict) and {"num_questions", "backend"} <= set(metrics):
            return EVALUATE
    if top <= set(DEMO_FILES):
        results = _json(folder / "results.json")
        if (isinstance(results, dict) and "rows" in results) or any(
            recognise(folder / n) for n in names if (folder / n).is_dir()
        ):
            return DEMO
    return None


def foreign_files(folder: str | os.PathLike) -> list[str]:
    """Files in a marked whole folder that its marker does not list (put there by someone else)."""
    record = read_marker(folder)
    if record is None or not isinstance(record.get("files"), list):
        return []
    return sorted(set(_files(Path(folder))) - set(record["files"]))


def _a(noun: str) -> str:
    return f"{'an' if noun[0].lower() in 'aeiou' else 'a'} {noun}"


def _sample(names: list[str], limit: int = 3) -> str:
    more = f", ... ({len(names)} in all)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def check_replaceable(path: str | os.PathLike, kind: str, what: str = "output folder") -> Path:
    """Raise :class:`InputError` unless the folder ``path`` may be written as (or replaced by) a ``kind`` output.

    OK: missing, an empty folder, or distilqa's folder of this ``kind`` (a whole folder: with no file its
    marker does not list). Refused: a file, any other folder (a user's, or distilqa's of another kind).
    Creates nothing.
    """
    path = Path(path)
    if path.is_symlink():
        path = path.resolve()
    if path.exists() and not path.is_dir():
        raise InputError(f"{what} {path} is a file, not a folder; choose a folder path")
    if not path.is_dir():
        return path
    names = _entries(path)
    found = recognise(path)
    if found is None:
        if not names:
            return path
        raise InputError(
            f"{what} {path} is a folder distilqa did not make (it holds {_sample(names)}); choose a new or empty "
            "folder: distilqa replaces only its own outputs, with or without --force"
        )
    if found != kind:
        raise InputError(
            f"{what} {path} is distilqa's {DESCRIPTION[found]}, not {_a(DESCRIPTION[kind])}; choose another folder"
        )
    extra = foreign_files(path)
    if extra:
        raise InputError(
            f"{what} {path} holds files distilqa did not write ({_sample(extra)}); move them out of it or choose "
            "another folder"
        )
    return path


def _resolved(path: str | os.PathLike) -> Path:
    return Path(os.path.realpath(os.path.expanduser(os.fspath(path))))


def _inside(path: Path, folder: Path) -> bool:
    return path != folder and folder in path.parents


def check_apart(
    output: str | os.PathLike,
    what: str,
    inputs: Mapping[str, str | os.PathLike | None],
    planned: Mapping[str, str | os.PathLike | None] | None = None,
) -> None:
    """Refuse an ``output`` that is an input, lies inside an input folder, or holds an input (resolved paths).

    Args:
        output: the file or folder a command will write.
        what (`str`): how the message names it (``"--output"``, ``"output_dir"``).
        inputs: label -> path of what the command reads (``{"teacher": ..., "--data file": ...}``); hub names
            and other paths that do not exist are skipped.
        planned: label -> path of other outputs of the same command that ``output`` must not be or hold (they
            need not exist yet).
    """
    out = _resolved(output)
    entries = [(label, value, True) for label, value in inputs.items()]
    entries += [(label, value, False) for label, value in (planned or {}).items()]
    for label, value, must_exist in entries:
        if value is None or value == "" or (must_exist and not os.path.lexists(os.path.expanduser(value))):
            continue
        other = _resolved(value)
        kind = "folder" if other.is_dir() else "file"
        if out == other:
            raise InputError(
                f"{what} {output} is the {label} {kind}{'' if str(value) == str(output) else f' ({value})'}; "
                "writing there would replace it: choose another path"
            )
        if _inside(out, other):
            raise InputError(
                f"{what} {output} is inside the {label} {kind} {value}; choose a path outside it"
            )
        if _inside(other, out):
            raise InputError(
                f"{what} {output} holds the {label} {value}; choose a path that does not contain it"
            )


def check_output(
    path: str | os.PathLike,
    kind: str | None,
    what: str,
    inputs: Mapping[str, str | os.PathLike | None] | None = None,
    planned: Mapping[str, str | os.PathLike | None] | None = None,
) -> Path:
    """Everything a command checks about an output before any work; creates nothing.

    ``kind=None`` means a single file (it may replace an existing file, never a folder); otherwise a folder
    of that kind. Checks :func:`check_writable`, then :func:`check_apart`, then :func:`check_replaceable`.
    """
    path = Path(path)
    check_writable(path, what, folder=kind is not None)
    check_apart(path, what, inputs or {}, planned)
    if kind is not None:
        check_replaceable(path, kind, what)
    return path


def claim_folder(path: str | os.PathLike, kind: str, what: str = "output folder") -> Path:
    """Create the run-like folder ``path`` (if needed) with its marker, after :func:`check_replaceable`."""
    path = Path(path)
    check_replaceable(path, kind, what)
    path.mkdir(parents=True, exist_ok=True)
    if read_marker(path) is None:
        write_marker(path, kind)
    return path
