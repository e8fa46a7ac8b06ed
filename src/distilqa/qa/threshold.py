"""The SQuAD 2.0 no-answer threshold saved with a model: chosen on dev data, fingerprinted to the weights.

A SQuAD 2.0 model makes two decisions: where the answer is, and whether there is one. The second is carried by
the null threshold of post-processing (answer ``""`` when ``null_score - best_span_score > null_threshold``).
After ``train`` / ``distill`` on SQuAD 2.0 eval data, the threshold that maximises F1 there (the official v2.0
script's ``best_f1_thresh``) is written beside ``config.json`` as ``distilqa_threshold.json``::

    {"null_threshold": 1.73, "best_f1": 71.2,
     "chosen_on": {"file": "dev-v2-a.json", "sha256": "...", "questions": 500},
     "weights_sha256": "..."}

``evaluate``, ``predict``, ``serve`` and ``export`` use it when no ``--null_threshold`` is given
(:func:`resolve_threshold`); a folder without the file uses 0.0, as before. The record holds the sha256 of the
model's weight file(s): when the weights change (the folder was trained further, or files were copied over
it), the record no longer describes them and :func:`read_threshold` ignores it with a warning.

Example::

    >>> write_threshold("runs/student/model", 1.73, best_f1=71.2, data="dev-v2-a.json", questions=500)
    >>> read_threshold("runs/student/model")["null_threshold"]
    1.73
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from pathlib import Path
from typing import Any

from distilqa.infra.files import file_sha256

logger = logging.getLogger(__name__)

THRESHOLD_FILE = "distilqa_threshold.json"
DEFAULT_THRESHOLD = 0.0


def weight_files(folder: str | os.PathLike) -> list[Path]:
    """The weight files of a model folder: its ``*.safetensors`` (one file or the shards), else
    ``pytorch_model*.bin``, else an export's ``model.onnx``; sorted by name; [] when there are none."""
    folder = Path(folder)
    for pattern in ("*.safetensors", "pytorch_model*.bin", "model.onnx"):
        found = sorted(p for p in folder.glob(pattern) if p.is_file())
        if found:
            return found
    return []


def weights_fingerprint(folder: str | os.PathLike) -> str | None:
    """The sha256 of the model's weights: the file's own digest for one file; for shards, the digest of the
    ``name digest`` lines of every shard. None when the folder has no weight file."""
    files = weight_files(folder)
    if not files:
        return None
    if len(files) == 1:
        return file_sha256(files[0])
    lines = "".join(f"{p.name} {file_sha256(p)}\n" for p in files)
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def span_predictions(result) -> dict[str, str]:
    """Each question's best non-null answer from a :class:`~distilqa.qa.postprocess.PostprocessResult`.

    The official v2.0 script's threshold search assumes predictions that were not cut to ``""`` already: a
    prediction emptied by the threshold in force would hide every higher threshold. The n-best lists keep the
    spans; a question without one listed keeps ``""``.
    """
    return {
        qid: next((e["text"] for e in entries if e["start"] >= 0), "")
        for qid, entries in result.nbest.items()
    }


def choose_threshold(examples, result) -> dict[str, float]:
    """The F1-maximising no-answer threshold of ``result`` on the SQuAD 2.0 ``examples`` it answers.

    Scores the best non-null answers (:func:`span_predictions`) with the null odds as no-answer probabilities,
    as the official script does: ``{"null_threshold": best_f1_thresh, "best_f1": F1 at that threshold}``.

    Two departures. The script's threshold is the null odds of the last question it answers, so the
    smallest change in that question's logits (another batch order, another backend) flips it: the threshold is
    put half-way to the next null odds of the set instead, which answers the same questions here and leaves a
    margin both ways. And when answering no question at all scores best, the script still reports 0.0 (its
    starting value), which answers every question with negative odds; the threshold is then put below every
    null odds of the set, so that applying it gives the F1 it reports.
    """
    from distilqa.qa.metrics import squad_v2_score

    spans, odds = span_predictions(result), result.null_odds
    metrics = squad_v2_score(examples, spans, na_probs=odds)
    threshold = threshold_from_metrics(metrics)
    above = [value for value in odds.values() if value > threshold]
    threshold = (threshold + min(above)) / 2 if above else threshold + 1.0
    f1 = f1_at_threshold(examples, spans, odds, threshold)
    if f1 < metrics["best_f1"] - 1e-9 and odds:
        threshold = float(min(odds.values())) - 1.0
        f1 = f1_at_threshold(examples, spans, odds, threshold)
    return {"null_threshold": threshold, "best_f1": f1}


def f1_at_threshold(examples, spans: dict[str, str], odds: dict[str, float], threshold: float) -> float:
    """SQuAD 2.0 F1 of the answers ``spans`` cut to ``""`` where the null odds exceed ``threshold``, as
    post-processing cuts them."""
    from distilqa.qa.metrics import squad_v2_score

    answers = {qid: text if odds.get(qid, 0.0) <= threshold else "" for qid, text in spans.items()}
    return float(squad_v2_score(examples, answers)["f1"])


def threshold_from_metrics(metrics: dict[str, Any]) -> float:
    """``best_f1_thresh`` of SQuAD 2.0 metrics (also under a ``eval_`` / ``test_`` prefix).

    Raises:
        ValueError: the metrics are not SQuAD 2.0 metrics with no-answer probabilities.
    """
    for key, value in metrics.items():
        if key == "best_f1_thresh" or key.endswith("_best_f1_thresh"):
            return float(value)
    raise ValueError("no best_f1_thresh in the metrics: score SQuAD 2.0 data with na_probs (the null odds)")


def data_record(data: str | os.PathLike | None, questions: int) -> dict[str, Any]:
    """``{"file": name, "sha256": digest or None, "questions": n}`` of the dev data a threshold was chosen on.

    A local file is named by its file name and fingerprinted; a hub dataset keeps its name, without a digest.
    """
    path = Path(data) if data else None
    if path is not None and path.is_file():
        return {"file": path.name, "sha256": file_sha256(path), "questions": int(questions)}
    return {"file": None if data is None else str(data), "sha256": None, "questions": int(questions)}


def write_threshold(
    folder: str | os.PathLike,
    null_threshold: float,
    best_f1: float | None = None,
    data: str | os.PathLike | None = None,
    questions: int = 0,
    chosen_on: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``folder/distilqa_threshold.json`` (atomically) for the weights now in ``folder``.

    Args:
        folder: the model folder (its weights are fingerprinted, so write them first).
        null_threshold (`float`): the threshold, in null-odds units (``null_score - best_span_score``).
        best_f1 (`float`, *optional*): the F1 at that threshold on the dev data.
        data (*optional*): the dev file (or hub name) it was chosen on; ``questions``: how many questions.
        chosen_on (`dict`, *optional*): an existing ``chosen_on`` record (an export copies its source's).

    Returns:
        `dict`: the record written.
    """
    from distilqa.infra.files import atomic_write_json

    if not math.isfinite(float(null_threshold)):
        raise ValueError(f"null_threshold must be a finite number, got {null_threshold}")
    record = {
        "null_threshold": float(null_threshold),
        "best_f1": None if best_f1 is None else round(float(best_f1), 4),
        "chosen_on": chosen_on if chosen_on is not None else data_record(data, questions),
        "weights_sha256": weights_fingerprint(folder),
    }
    atomic_write_json(Path(folder) / THRESHOLD_FILE, record)
    return record


def read_threshold(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The saved threshold record of a model folder, or None.

    None when the folder (or hub name) has no ``distilqa_threshold.json``; also None, with a logged warning,
    when the file cannot be read or its weights fingerprint is not that of the weights now in the folder.
    """
    path = Path(folder) / THRESHOLD_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        value = float(record["null_threshold"])
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError):
        logger.warning("%s cannot be read as a saved no-answer threshold; ignoring it (using 0.0)", path)
        return None
    if not math.isfinite(value):
        logger.warning("%s holds a non-finite no-answer threshold; ignoring it (using 0.0)", path)
        return None
    if record.get("weights_sha256") != weights_fingerprint(folder):
        logger.warning(
            "%s was saved for other weights than those now in %s (the weights changed after the threshold was "
            "chosen); ignoring it (using 0.0): re-choose it on dev data or pass --null_threshold",
            path,
            folder,
        )
        return None
    return record


def resolve_threshold(folder: str | os.PathLike, explicit: float | None = None) -> tuple[float, str, bool]:
    """The threshold a command uses for ``folder``, a line that says where it came from, and whether that
    line is news (a saved or an explicit threshold; the plain default of a folder without one is not).

    ``explicit`` (``--null_threshold``) wins; else the saved record (:func:`read_threshold`); else 0.0.
    """
    if explicit is not None:
        return float(explicit), f"no-answer threshold {explicit:g} (--null_threshold)", True
    record = read_threshold(folder) if Path(folder).is_dir() else None
    if record is None:
        return DEFAULT_THRESHOLD, f"no-answer threshold {DEFAULT_THRESHOLD:g} (default)", False
    name = (record.get("chosen_on") or {}).get("file") or "unknown data"
    value = record["null_threshold"]
    return value, f"no-answer threshold {value:.4g} (saved with the model, chosen on {name})", True
