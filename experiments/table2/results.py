"""Results files as rows: reading them (the runner's and the earlier scripts'), and choosing rows by settings.

A row is a dict: ``hash``, ``name``, ``settings`` (see :mod:`experiments.table2.settings`), the measurements
(``exact_match``, ``f1``, ``params``, ``disk_mb``, ``questions_per_s``, ``train_s``, ...), and where it came from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from experiments.table2.legacy import is_legacy, legacy_rows
from experiments.table2.settings import StudyError, matches


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The objects of a JSON-lines file; a torn last line (a run killed while writing it) is skipped."""
    try:
        lines = [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    except OSError as error:
        raise StudyError(f"{path}: cannot read it ({error.strerror})") from None
    out = []
    for n, line in enumerate(lines, 1):
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as error:
            if n < len(lines):
                raise StudyError(f"{path}: line {n} is not JSON ({error.msg})") from None
            print(f"{path}: its last line is incomplete (a run cut off while writing it); skipped")
    return out


def load_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a results file, ``source`` set to its name; the earlier scripts' rows through
    :mod:`experiments.table2.legacy`."""
    path = Path(path)
    records = read_jsonl(path)
    old = [record for record in records if is_legacy(record)]
    try:
        rows = legacy_rows(old, path.name) if old else []
    except (KeyError, ValueError) as error:
        raise StudyError(f"{path}: an earlier row cannot be read as settings ({error})") from None
    new = [{**record, "source": path.name} for record in records if not is_legacy(record)]
    for n, record in enumerate(new, 1):
        if not {"hash", "settings", "f1"} <= set(record):
            raise StudyError(
                f"{path}: row {n} has no hash, settings or f1: not a results file of this runner"
            )
    return rows + new


def unique(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per hash, the first; a later one with other numbers is named on stdout (the same settings
    measured again, e.g. on another machine of the same device)."""
    seen: dict[str, dict[str, Any]] = {}
    for row in rows:
        first = seen.setdefault(row["hash"], row)
        if first is not row and first.get("f1") != row.get("f1"):
            print(
                f"note: {row['hash']} ({row['name']}) has F1 {first.get('f1')} in {first.get('source')} and "
                f"{row.get('f1')} in {row.get('source')}; the first is used"
            )
    return list(seen.values())


def select(rows: list[dict[str, Any]], where: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows whose settings have every value in ``where`` (``{"kind": "alone", "teacher.epochs": 2}``)."""
    return [row for row in rows if matches(row["settings"], where)]
