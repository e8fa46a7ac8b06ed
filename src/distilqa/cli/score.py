"""``distilqa score``: score a predictions file like the official SQuAD v1.1 / v2.0 evaluation scripts.

Prints one JSON object, byte for byte what the official script prints for the same files: ``exact_match`` and
``f1`` for v1.1 data; ``exact``, ``f1``, ``total``, ``HasAns_*``, ``NoAns_*`` (and ``best_*`` with
--na_prob_file) for v2.0 data. Questions without a prediction score 0 and predictions for other ids are
ignored; both are reported as warnings on stderr.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

from distilqa.errors import InputError

_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}


@dataclass
class ScoreOptions:
    """The gold data, the predictions, and SQuAD 2.0's no-answer probabilities."""

    dataset: str = field(
        metadata={
            "help": "gold data: SQuAD v1.1 / v2.0 JSON, JSONL rows, or a hub dataset name",
            "positional": True,
        }
    )
    predictions: str = field(
        metadata={"help": 'JSON object {question id: answer text}; "" means no answer', "positional": True}
    )
    na_prob_file: str | None = field(
        default=None,
        metadata={"help": "SQuAD 2.0: JSON object {question id: probability of no answer}; adds best_*"},
    )
    na_prob_thresh: float | None = field(
        default=None,
        metadata={
            "help": "SQuAD 2.0: count a prediction as no answer when its probability exceeds this (default 1.0)"
        },
    )


def build_parser():
    from distilqa.cli.parser import CommandParser

    return CommandParser("distilqa score", ScoreOptions, description=__doc__)


def main(argv: list[str]) -> int:
    (args,) = build_parser().parse(argv)
    from distilqa.qa.data import load_examples
    from distilqa.qa.metrics import prediction_coverage, score_predictions

    examples = load_examples(args.dataset, check_offsets="ignore")
    if not examples.version_2 and (args.na_prob_file or args.na_prob_thresh is not None):
        raise InputError(
            f"{examples.source} is SQuAD v1.1 data (every question has an answer); --na_prob_file and "
            "--na_prob_thresh apply to SQuAD 2.0 data only: drop them"
        )
    predictions = _read_object(
        args.predictions, "predictions", _is_text, 'a string (the answer text, "" for none)'
    )
    coverage = prediction_coverage(examples, predictions)
    if len(coverage.missing) == len(examples):
        raise InputError(
            f"{args.predictions} has no prediction for any of the {len(examples)} questions of {examples.source}; "
            "is it the predictions file for this dataset?"
        )
    na_probs = None
    if args.na_prob_file:
        na_probs = _read_object(args.na_prob_file, "no-answer probabilities", _is_number, "a number")
        lacking = [qid for qid in examples.ids if qid in predictions and qid not in na_probs]
        if lacking:
            raise InputError(
                f"{args.na_prob_file} has no probability for {len(lacking)} predicted question(s) of "
                f"{examples.source} (first: {lacking[0]!r}); give one for every question"
            )
    if coverage.missing:
        _warn(
            f"{len(coverage.missing)} of {len(examples)} questions have no prediction in {args.predictions} "
            f"and score 0 (first: {coverage.missing[0]!r})"
        )
    if coverage.extra:
        _warn(
            f"ignored {len(coverage.extra)} prediction(s) for ids that are not in {examples.source} "
            f"(first: {coverage.extra[0]!r})"
        )
    thresh = 1.0 if args.na_prob_thresh is None else args.na_prob_thresh
    result = score_predictions(examples, predictions, na_probs, thresh)
    # The official v2.0 script prints with indent=2, the v1.1 script on one line.
    print(json.dumps(result, indent=2 if examples.version_2 else None))
    return 0


def _is_text(value) -> bool:
    return isinstance(value, str)


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _read_object(path: str, what: str, valid, wanted: str) -> dict:
    """Read a JSON object {question id: value}; every value must pass ``valid``."""
    file = Path(path)
    if not file.is_file():
        raise InputError(f"{what} file {path} does not exist or is not a file; check the path")
    try:
        obj = json.loads(file.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError as err:
        raise InputError(
            f"{what} file {path} is not UTF-8 text (byte {err.start}); re-save it as UTF-8"
        ) from None
    except json.JSONDecodeError as err:
        raise InputError(
            f"{what} file {path} is not valid JSON ({err.msg} at line {err.lineno}); give one JSON object "
            "{question id: value}"
        ) from None
    if not isinstance(obj, dict):
        raise InputError(
            f"{what} file {path} holds {_json_type(obj)}, not an object; give one JSON object {{question id: value}}"
            + (" (a list of records must be converted to {id: value})" if isinstance(obj, list) else "")
        )
    for key, value in obj.items():
        if not valid(value):
            raise InputError(
                f"{what} file {path}: the value for {key!r} is {_json_type(value)}; each value must be {wanted}"
            )
    return obj


def _json_type(value) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value} (not finite)"
    return _JSON_TYPES.get(type(value), "a number")


def _warn(message: str) -> None:
    print(f"distilqa: warning: {message}", file=sys.stderr)
