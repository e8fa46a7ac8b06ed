"""Load SQuAD-style data into flat rows, with schema and answer-offset checks.

Sources:
    * the official SQuAD JSON (``{"version": ..., "data": [{"title", "paragraphs": [{"context", "qas"}]}]}``),
      v1.1 or v2.0 (``is_impossible`` / empty ``answers`` mark unanswerable questions);
    * JSON or JSONL rows with the columns of the hub's ``squad`` dataset:
      ``id, title, context, question, answers{text: [..], answer_start: [..]}`` (a JSON list, or ``{"data": [...]}``);
    * a hub dataset name (``squad``, ``squad_v2``, ``user/name``) through ``datasets.load_dataset``; this needs
      the network unless the dataset is in the local cache.

Every source becomes a :class:`SquadExamples`: a list of rows shaped like the hub's ``squad`` columns and a flag
that says whether the data is SQuAD 2.0 (has, or may have, unanswerable questions).
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distilqa.errors import InputError
from distilqa.infra.files import looks_local

REQUIRED = ("id", "context", "question", "answers")


@dataclass
class SquadExamples:
    """Flat SQuAD rows plus what is known about the set.

    Args:
        rows (`list[dict]`): each ``{"id", "title", "context", "question", "answers": {"text", "answer_start"}}``;
            an unanswerable question has empty answer lists.
        version_2 (`bool`): SQuAD 2.0 semantics (unanswerable questions exist, null answers are scored).
        source (`str`): where the rows came from, for messages and model cards.
    """

    rows: list[dict[str, Any]]
    version_2: bool = False
    source: str = ""
    offset_mismatches: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, index):
        """One row for an integer; a :class:`SquadExamples` of those rows for a slice (``dev[:100]``)."""
        if isinstance(index, slice):
            return SquadExamples(self.rows[index], self.version_2, self.source)
        return self.rows[index]

    @property
    def ids(self) -> list[str]:
        return [row["id"] for row in self.rows]

    def select(self, indices) -> SquadExamples:
        return SquadExamples([self.rows[i] for i in indices], self.version_2, self.source)

    def to_dataset(self):
        """The rows as a ``datasets.Dataset`` (for ``Dataset.map`` based feature building)."""
        import datasets

        return datasets.Dataset.from_list(self.rows)


def load_examples(
    source: str | os.PathLike,
    split: str = "validation",
    check_offsets: str = "error",
    version_2: bool | None = None,
    limit: int | None = None,
) -> SquadExamples:
    """Load SQuAD data from a local file or a hub dataset name.

    Args:
        source (`str` or `PathLike`): a ``.json`` / ``.jsonl`` file, or a hub dataset name.
        split (`str`, defaults to ``"validation"``): the split to take from a hub dataset.
        check_offsets (`str`, defaults to ``"error"``): what to do when an ``answer_start`` does not point at its
            answer text: ``"error"`` (training needs exact offsets), ``"warn"`` or ``"ignore"`` (scoring does not
            use offsets).
        version_2 (`bool`, *optional*): force SQuAD 2.0 semantics; by default detected from the data.
        limit (`int`, *optional*): keep only the first ``limit`` questions.

    Returns:
        :class:`SquadExamples`

    Example::

        >>> examples = load_examples("../shared/data/squad-v1.1-subset/dev.json")
        >>> len(examples), examples.version_2
        (795, False)
    """
    if check_offsets not in {"error", "warn", "ignore"}:
        raise ValueError(f"check_offsets must be 'error', 'warn' or 'ignore', not {check_offsets!r}")
    path = Path(source)
    if looks_local(source):
        if not path.exists():
            raise InputError(f"data file {path} does not exist; check the path")
        if path.is_dir():
            raise InputError(f"{path} is a folder; give a SQuAD .json or .jsonl file")
        rows, declared_v2 = _read_file(path)
        name = str(path)
    else:
        rows, declared_v2 = _read_hub(str(source), split), "v2" in str(source)
        name = f"{source} ({split})"
    if limit is not None:
        rows = rows[:limit]
    if not rows:
        raise InputError(f"{name}: the dataset holds no questions; give a file with at least one question")
    mismatches = _validate(rows, name)
    if mismatches and check_offsets != "ignore":
        shown = ", ".join(mismatches[:10]) + (
            f" and {len(mismatches) - 10} more" if len(mismatches) > 10 else ""
        )
        message = (
            f"{name}: answer_start does not point at the answer text for {len(mismatches)} question(s): {shown}; "
            "fix the offsets (answer_start is a character index into context)"
        )
        if check_offsets == "error":
            raise InputError(message)
        warnings.warn(message, stacklevel=2)
    has_unanswerable = any(not row["answers"]["text"] for row in rows)
    is_v2 = bool(declared_v2 or has_unanswerable) if version_2 is None else version_2
    return SquadExamples(rows, is_v2, name, mismatches)


def _read_file(path: Path) -> tuple[list[dict[str, Any]], bool]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(f"{path} is not UTF-8 text (byte {err.start}); re-save it as UTF-8") from None
    if path.suffix == ".jsonl":
        rows = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise InputError(
                        f"{path}:{number}: not valid JSON ({err.msg}); one JSON object per line"
                    ) from None
        return _rows_from_records(rows, path), False
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        # A .json file that is really JSON Lines is common; accept it.
        try:
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError:
            raise InputError(
                f"{path}: not valid JSON ({err.msg} at line {err.lineno}); give SQuAD JSON or JSONL"
            ) from None
        return _rows_from_records(records, path), False
    if (
        isinstance(obj, dict)
        and isinstance(obj.get("data"), list)
        and obj["data"]
        and isinstance(obj["data"][0], dict)
        and "paragraphs" in obj["data"][0]
    ):
        return _rows_from_official(obj, path), str(obj.get("version", "")).lstrip("v").startswith("2")
    if isinstance(obj, dict) and isinstance(obj.get("data"), list):
        return _rows_from_records(obj["data"], path), False
    if isinstance(obj, list):
        return _rows_from_records(obj, path), False
    raise InputError(
        f"{path}: unknown schema; expected the official SQuAD JSON ({{'data': [{{'paragraphs': ...}}]}}) "
        "or a list of rows with id, context, question, answers"
    )


def _rows_from_official(obj: dict, path: Path) -> list[dict[str, Any]]:
    rows = []
    for a, article in enumerate(obj["data"]):
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            raise InputError(f"{path}: data[{a}] has no 'paragraphs' list; fix the article's schema")
        title = article.get("title", "")
        for p, paragraph in enumerate(article["paragraphs"]):
            where = f"{path}: data[{a}].paragraphs[{p}]"
            if not isinstance(paragraph, dict) or not isinstance(paragraph.get("qas"), list):
                raise InputError(f"{where} has no 'qas' list; fix the paragraph's schema")
            context = paragraph.get("context")
            for q, qa in enumerate(paragraph["qas"]):
                if not isinstance(qa, dict):
                    raise InputError(
                        f"{where}.qas[{q}] is not an object; each question is {{id, question, answers}}"
                    )
                answers = qa.get("answers")
                if not isinstance(answers, list):
                    raise InputError(f"{where}.qas[{q}] (id {qa.get('id')!r}): 'answers' must be a list")
                if qa.get("is_impossible"):
                    answers = []
                for answer in answers:
                    if not isinstance(answer, dict) or "text" not in answer or "answer_start" not in answer:
                        raise InputError(
                            f"{where}.qas[{q}] (id {qa.get('id')!r}): each answer needs 'text' and 'answer_start'"
                        )
                rows.append(
                    {
                        "id": qa.get("id"),
                        "title": title,
                        "context": context,
                        "question": qa.get("question"),
                        "answers": {
                            "text": [ans["text"] for ans in answers],
                            "answer_start": [ans["answer_start"] for ans in answers],
                        },
                    }
                )
    return rows


def _rows_from_records(records: list, path: Path | str) -> list[dict[str, Any]]:
    rows = []
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise InputError(
                f"{path}: row {i} is not an object; each row is {{id, context, question, answers}}"
            )
        missing = [key for key in REQUIRED if key not in record]
        if missing:
            raise InputError(f"{path}: row {i} (id {record.get('id')!r}) lacks field(s) {', '.join(missing)}")
        answers = record["answers"]
        if isinstance(answers, list):  # [{"text", "answer_start"}] -> columns
            if not all(isinstance(a, dict) and "text" in a and "answer_start" in a for a in answers):
                raise InputError(
                    f"{path}: row {i} (id {record['id']!r}): each answer needs 'text' and 'answer_start'"
                )
            answers = {
                "text": [a["text"] for a in answers],
                "answer_start": [a["answer_start"] for a in answers],
            }
        if (
            not isinstance(answers, dict)
            or not isinstance(answers.get("text"), list)
            or not isinstance(answers.get("answer_start"), list)
        ):
            raise InputError(
                f"{path}: row {i} (id {record['id']!r}): 'answers' must be {{'text': [...], 'answer_start': [...]}}"
            )
        if len(answers["text"]) != len(answers["answer_start"]):
            raise InputError(
                f"{path}: row {i} (id {record['id']!r}): answers.text and answers.answer_start differ in length"
            )
        rows.append(
            {
                "id": record["id"],
                "title": record.get("title", ""),
                "context": record["context"],
                "question": record["question"],
                "answers": {"text": list(answers["text"]), "answer_start": list(answers["answer_start"])},
            }
        )
    return rows


def _validate(rows: list[dict[str, Any]], name: str) -> list[str]:
    """Check types, emptiness and uniqueness; return the ids whose answer_start misses the answer text."""
    seen: set[str] = set()
    mismatches = []
    for i, row in enumerate(rows):
        qid = row.get("id")
        if isinstance(qid, int):
            qid = row["id"] = str(qid)
        if not isinstance(qid, str) or not qid.strip():
            raise InputError(
                f"{name}: question {i} has a missing or empty 'id'; give every question a unique id"
            )
        if qid in seen:
            raise InputError(f"{name}: duplicate question id {qid!r}; ids must be unique")
        seen.add(qid)
        for key in ("context", "question"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise InputError(
                    f"{name}: question {qid!r} has a missing or empty '{key}'; give it non-empty text"
                )
        answers = row["answers"]
        for text, start in zip(answers["text"], answers["answer_start"], strict=True):
            if not isinstance(text, str) or not text:
                raise InputError(
                    f"{name}: question {qid!r} has an empty answer text; remove it or give the text"
                )
            if isinstance(start, bool) or not isinstance(start, int):
                raise InputError(f"{name}: question {qid!r}: answer_start must be an integer, not {start!r}")
            if not 0 <= start < len(row["context"]) or row["context"][start : start + len(text)] != text:
                mismatches.append(qid)
                break
        row.setdefault("title", "")
    return mismatches


def _read_hub(name: str, split: str) -> list[dict[str, Any]]:
    """Load a hub dataset; fails with a clear message when offline and not cached."""
    try:
        import datasets
    except ImportError:  # pragma: no cover - datasets is a dependency
        raise InputError("loading a hub dataset needs the 'datasets' package") from None
    try:
        dataset = datasets.load_dataset(name, split=split)
    except Exception as err:  # noqa: BLE001 - any failure here is the user's name, split or network
        offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1"
        hint = (
            "offline mode is on (HF_HUB_OFFLINE=1) and it is not in the local cache"
            if offline
            else "check the name and split, and that the hub is reachable"
        )
        reason = " ".join(str(err).split())[:200]
        raise InputError(
            f"cannot load dataset {name!r} split {split!r} from the hub: {hint}; or give a local SQuAD .json/.jsonl file ({reason})"
        ) from None
    return _rows_from_records(list(dataset), name)
