"""``distilqa evaluate``: run a QA model over a SQuAD dataset, write predictions and metrics, print EM/F1."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field

from distilqa.cli.runtime import describe_precision, load_predictor, predict_options


@dataclass
class EvaluateOptions:
    """What to evaluate, on what, and where the predictions go."""

    model: str = field(metadata={"help": "model folder (PyTorch or ONNX export) or hub name"})
    data: str = field(metadata={"help": "SQuAD .json/.jsonl file or hub dataset name"})
    split: str = field(default="validation", metadata={"help": "split of a hub dataset"})
    output_dir: str | None = field(
        default=None,
        metadata={
            "help": "write predictions.json, nbest_predictions.json, null_odds.json (v2), metrics.json"
        },
    )
    limit: int | None = field(default=None, metadata={"help": "evaluate only the first N questions"})


def build_parser():
    from distilqa.cli.parser import CommandParser, Section
    from distilqa.cli.quiet import Quiet
    from distilqa.cli.runtime import RuntimeOptions
    from distilqa.qa.features import FeatureParams
    from distilqa.qa.predictor import PredictOptions

    return CommandParser(
        "distilqa evaluate",
        EvaluateOptions,
        Section(FeatureParams, "windowing"),
        Section(PredictOptions, "post-processing"),
        Section(RuntimeOptions, "runtime"),
        Section(Quiet, "runtime"),
        description=__doc__,
    )


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from distilqa.infra.cards import public_value
    from distilqa.infra.files import atomic_write_json
    from distilqa.infra.ownership import EVALUATE, check_output, claim_folder
    from distilqa.qa.data import load_examples
    from distilqa.qa.evaluation import evaluate_model

    options = predict_options(args)
    # Checked, not created: a run that fails on its input leaves no output folder behind.
    out = check_output(args.output_dir, EVALUATE, "--output_dir", {"model": args.model, "--data file": args.data}) if args.output_dir else None  # fmt: skip
    examples = load_examples(args.data, split=args.split, check_offsets="ignore", limit=args.limit)
    predictor = load_predictor(args, args.model)
    evaluation = evaluate_model(
        predictor, examples, options=options, batch_size=args.batch_size, progress=not args.no_progress
    )
    result = evaluation.result
    metrics = dict(evaluation.metrics)
    metrics.update(
        {
            "num_questions": evaluation.num_questions,
            "seconds": round(evaluation.seconds, 3),
            "questions_per_second": round(evaluation.questions_per_second, 2),
            "model": str(args.model),
            "data": examples.source,
            "backend": predictor.backend,
            **predictor.precision.to_dict(),
        }
    )
    if examples.version_2:  # the no-answer threshold the answers were cut with
        metrics["null_threshold"] = (
            predictor.null_threshold if options.null_threshold is None else options.null_threshold
        )
    if out is not None:
        claim_folder(out, EVALUATE, "--output_dir")
        atomic_write_json(out / "predictions.json", result.predictions)
        atomic_write_json(out / "nbest_predictions.json", result.nbest)
        if examples.version_2:
            atomic_write_json(out / "null_odds.json", result.null_odds)
        atomic_write_json(out / "metrics.json", public_value(metrics))  # no home paths in a shared report
    print(json.dumps(metrics, indent=2))
    em = metrics.get("exact_match", metrics.get("exact"))
    print(
        f"{len(examples)} questions  EM {em:.2f}  F1 {metrics['f1']:.2f}  "
        f"({metrics['questions_per_second']:.1f} questions/s, {predictor.backend} {describe_precision(predictor.precision)})"
        + (f"  -> {out}" if out else ""),
        file=sys.stderr,
    )
    return 0
