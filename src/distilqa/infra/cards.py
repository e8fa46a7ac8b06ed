"""Model cards: the ``README.md`` written into every saved model folder.

A card says what the model is, what it was made from, on what data and with which settings, how well and how
fast it did (and on which hardware), and how to use it. Cards are public: :func:`public_path` and
:func:`public_value` keep absolute home paths and secrets (tokens, passwords) out of them.

Example::

    >>> write_model_card("runs/student", title="MiniLM-L3 SQuAD student", base_models={"teacher": "runs/teacher"},
    ...                  data={"train": "squad train"}, hyperparameters={"epochs": 2}, metrics={"eval_data":
    ...                  "squad dev", "exact_match": 71.2, "f1": 80.3}, speed=None, hardware=None, notes=None)
"""

from __future__ import annotations

import enum
import json
import os
import re
from pathlib import Path
from typing import Any

from distilqa.infra.files import atomic_write_text, looks_local

TAGS = ("distilqa", "knowledge-distillation", "question-answering")
_SECRET_KEY = re.compile(
    r"pass(word|wd)|secret|api_?key|credential|private_?key|authorization|(^|[_\-.])token($|[_\-.])"
)
_SECRET_VALUE = re.compile(r"\bhf_[A-Za-z0-9]{20,}\b")
_HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")
REDACTED = "<redacted>"


def is_secret_key(key: str) -> bool:
    """Whether a key names a secret: ``hub_token``, ``token``, ``password``, ``api_key`` (not ``tokenizer``)."""
    return bool(_SECRET_KEY.search(str(key).lower()))


def public_path(path: str | os.PathLike) -> str:
    """A path fit to publish: relative under the working folder, ``~/...`` under the home folder.

    Text that merely contains such paths has them rewritten the same way; hub names, relative paths and
    paths elsewhere are returned unchanged (as strings). Hugging Face tokens in the text are redacted.

    Example::

        >>> public_path(Path.home() / "runs" / "teacher")
        '~/runs/teacher'
    """
    text = str(os.fspath(path))
    cwd, home = os.getcwd().rstrip(os.sep), os.path.expanduser("~").rstrip(os.sep)
    candidate = os.path.normpath(text) if os.path.isabs(text) else None
    if candidate is not None and cwd and (candidate == cwd or candidate.startswith(cwd + os.sep)):
        text = os.path.relpath(candidate, cwd)
    elif (
        candidate is not None
        and home
        and home != os.sep
        and (candidate == home or candidate.startswith(home + os.sep))
    ):
        text = "~" + candidate[len(home) :]
    else:
        if cwd and cwd != os.sep:
            text = text.replace(cwd + os.sep, "")
        if home and home != os.sep:
            text = text.replace(home + os.sep, "~" + os.sep).replace(home, "~")
    return _SECRET_VALUE.sub(REDACTED, text)


def public_value(value: Any) -> Any:
    """``value`` with secrets dropped (dict entries whose key looks like a token / password) and paths made public."""
    if isinstance(value, enum.Enum):  # SchedulerType.LINEAR -> "linear" (str enums would print their repr)
        return public_value(value.value)
    if isinstance(value, dict):
        return {k: public_value(v) for k, v in value.items() if not is_secret_key(k)}
    if isinstance(value, (list, tuple)):
        return [public_value(v) for v in value]
    if isinstance(value, (str, os.PathLike)):
        return public_path(value)
    return value


def write_model_card(
    folder: str | os.PathLike,
    *,
    title: str,
    base_models: dict[str, str],
    data: dict[str, Any],
    hyperparameters: dict[str, Any],
    metrics: dict[str, Any] | None = None,
    speed: dict[str, Any] | None = None,
    hardware: str | None = None,
    notes: list[str] | None = None,
    location: str | os.PathLike | None = None,
) -> Path:
    """Write ``README.md`` (YAML front matter + sections) into a saved model folder, atomically.

    Args:
        folder: the model folder (holding ``config.json`` and the weights).
        title (`str`): the card's heading.
        base_models (`dict[str, str]`): role -> model, e.g. ``{"teacher": ..., "student init": ...}``. The
            first hub name among them becomes ``base_model`` in the front matter.
        data (`dict`): what trained it, e.g. ``{"train": "squad (train, 87,599 questions)"}``.
        hyperparameters (`dict`): settings shown as a table (secret-looking keys are dropped).
        metrics (`dict`, *optional*): ``{"eval_data": ..., "exact_match": ..., "f1": ...}`` (``exact`` is read as
            EM too; ``data``, else ``data["eval"]``, names the eval data when ``eval_data`` is absent), or ``{"eval_data": ..., label: {...}, ...}`` for
            several rows (e.g. the teacher and the student).
        speed (`dict`, *optional*): ``questions_per_second``, ``parameters``, ``size_mb`` (or ``disk_mb``) and any
            other values.
            Parameters and size on disk are read from the folder when not given.
        hardware (`str`, *optional*): what measured the speed (see :func:`hardware_description`).
        notes (`list[str]`, *optional*): extra remarks, listed under the introduction.
        location (*optional*): where the model will live, for the usage examples (default: ``folder``; pass
            the final folder when ``folder`` is a temporary one).

    Returns:
        The path of the ``README.md`` written.
    """
    folder = Path(folder)
    config = _read_json(folder / "config.json")
    where = public_path(location if location is not None else folder)
    sections = [
        _front_matter(base_models),
        f"# {public_path(title)}",
        _introduction(config),
    ]
    if notes:
        sections.append("## Notes\n\n" + "\n".join(f"- {public_path(n)}" for n in notes))
    sections += [
        "## Base models\n\n"
        + _table(["role", "model"], [[k, v] for k, v in public_value(base_models).items()]),
        "## Training data\n\n"
        + ("\n".join(f"- **{k}**: {_cell(v)}" for k, v in public_value(data).items()) or "Not recorded."),
        "## Hyperparameters\n\n"
        + (_table(["name", "value"], list(public_value(hyperparameters).items())) or "Not recorded."),
        "## Results\n\n"
        + _results(public_value(metrics) if metrics else None, public_value(data).get("eval")),
        "## Speed and size\n\n"
        + _speed(folder, public_value(speed or {}), public_path(hardware) if hardware else None),
        _usage(where),
        _limitations(public_value(data).get("train")),
    ]
    return atomic_write_text(folder / "README.md", "\n\n".join(s.strip() for s in sections if s) + "\n")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _is_hub_name(name: str) -> bool:
    return bool(_HUB_NAME.match(name)) and not looks_local(name)


def _front_matter(base_models: dict[str, str]) -> str:
    lines = ["---", "library_name: transformers", "pipeline_tag: question-answering", "tags:"]
    lines += [f"- {tag}" for tag in TAGS]
    hub = next((str(v) for v in base_models.values() if _is_hub_name(str(v))), None)
    if hub:
        lines.append(f"base_model: {json.dumps(hub)}")
    return "\n".join([*lines, "---"])


def _introduction(config: dict[str, Any]) -> str:
    kind = config.get("model_type", "transformer")
    layers = config.get("num_hidden_layers", config.get("n_layers"))
    hidden = config.get("hidden_size", config.get("dim"))
    shape = ", ".join(
        x for x in (f"{layers} layers" if layers else "", f"hidden size {hidden}" if hidden else "") if x
    )
    return (
        f"An extractive question-answering model ({kind}{', ' + shape if shape else ''}) made with distilqa from "
        "the base models below: given a question and a context, it returns the span of the context that answers it "
        "(SQuAD style)."
    )


def _cell(value: Any) -> str:
    if isinstance(value, float):
        # metrics keep two decimals; small hyperparameters (learning rates, 1e-3) keep their significant digits
        text = f"{value:.4g}" if abs(value) < 0.1 and value else f"{value:,.2f}".rstrip("0").rstrip(".")
    elif isinstance(value, int) and not isinstance(value, bool):
        text = f"{value:,}"
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, enum.Enum):
        text = str(value.value)
    else:
        text = str(value)
    return text


def _table(header: list[str], rows: list[list[Any]]) -> str:
    from distilqa.infra.markdown import render_table

    return render_table(header, [[_cell(c) for c in row] for row in rows]) if rows else ""


def _em(values: dict[str, Any]) -> Any:
    return values.get("exact_match", values.get("exact", values.get("em", "")))


def _results(metrics: dict[str, Any] | None, default_eval_data: Any = None) -> str:
    if not metrics:
        return "Not evaluated yet."
    metrics = dict(metrics)
    eval_data = metrics.pop("eval_data", None) or metrics.pop("data", None) or default_eval_data
    nested = {k: v for k, v in metrics.items() if isinstance(v, dict)}
    rows_in = nested or {"this model": metrics}
    rows = [
        [
            label,
            _em(v),
            v.get("f1", ""),
            v.get("num_questions", v.get("total", "not recorded")),
            v.get("data", eval_data or ""),
        ]
        for label, v in rows_in.items()
    ]
    table = _table(["model", "EM", "F1", "questions", "eval data"], rows)
    return f"Exact match and F1 (official SQuAD scoring) on {eval_data or 'the eval data in the table'}:\n\n{table}"


def _speed(folder: Path, speed: dict[str, Any], hardware: str | None) -> str:
    speed = dict(speed)
    if "parameters" not in speed:
        count = _parameter_count(folder)
        if count:
            speed["parameters"] = count
    if "disk_mb" in speed:
        speed["size_mb"] = speed.pop("disk_mb")
    if "size_mb" not in speed:
        from distilqa.infra.models import folder_size_mb

        speed["size_mb"] = folder_size_mb(folder)
    names = {
        "questions_per_second": "questions / s",
        "parameters": "parameters",
        "size_mb": "size on disk (MB)",
    }
    rows = [[names.get(k, k.replace("_", " ")), v] for k, v in speed.items()]
    measured = "questions_per_second" in speed
    if measured:
        footer = f"Measured on: {hardware or 'hardware not recorded'}."
    else:
        footer = "Speed not measured yet: run `distilqa benchmark` to measure it."
    return _table(["", "value"], rows) + "\n\n" + footer


def _parameter_count(folder: Path) -> int | None:
    """Parameters in the folder's safetensors files, from their headers (no torch needed)."""
    total = 0
    for path in sorted(folder.glob("*.safetensors")):
        try:
            with path.open("rb") as handle:
                size = int.from_bytes(handle.read(8), "little")
                header = json.loads(handle.read(size))
        except (OSError, ValueError):
            return None
        for name, entry in header.items():
            if name != "__metadata__":
                count = 1
                for dim in entry.get("shape", []):
                    count *= dim
                total += count
    return total or None


def _usage(where: str) -> str:
    return f"""## How to use

Command line:

```bash
distilqa predict --model {where} --question "Who built the lighthouse?" \\
    --context "The lighthouse at Cape Verlin was built in 1871 by Tomas Erdi."
```

Python:

```python
from distilqa import QAPredictor

predictor = QAPredictor.from_pretrained("{where}")
print(predictor.answer(["Who built the lighthouse?"], ["The lighthouse at Cape Verlin was built in 1871 by Tomas Erdi."]))
```

It is also a standard `transformers` model: `AutoModelForQuestionAnswering.from_pretrained("{where}")`."""


def _limitations(train_data: Any = None) -> str:
    if train_data and "squad" in str(train_data).lower():
        domain = (
            f"- Trained on SQuAD-style questions about English Wikipedia ({_cell(train_data)}); expect lower "
        )
    elif train_data:
        domain = f"- Trained on {_cell(train_data)} only; expect lower "
    else:
        domain = "- Training data not recorded; expect lower "
    return (
        "## Limitations\n\n"
        "- Extractive only: the answer is always a span of the given context; it cannot answer from outside "
        "knowledge or paraphrase.\n" + domain + "accuracy on other domains, languages and question styles.\n"
        "- Unless trained on SQuAD 2.0, it always returns some span, even when the context holds no answer.\n"
        "- Knowledge distillation copies the teacher's errors and biases along with its skill."
    )
