"""``distilqa evaluate``: run a QA model over a SQuAD dataset, write predictions and metrics, print EM/F1."""

from __future__ import annotations

import argparse
import json
import sys

from distilqa.cli.options import (
    ArgumentParser,
    add_feature_args,
    add_postprocess_args,
    add_runtime_args,
    load_predictor,
    predict_options,
)


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="distilqa evaluate", description=__doc__)
    parser.add_argument("--model", required=True, help="model folder (PyTorch or ONNX export) or hub name")
    parser.add_argument("--data", required=True, help="SQuAD .json/.jsonl file or hub dataset name")
    parser.add_argument("--split", default="validation", help="split of a hub dataset (default %(default)s)")
    parser.add_argument(
        "--output-dir",
        help="write predictions.json, nbest_predictions.json, null_odds.json (v2), metrics.json",
    )
    parser.add_argument("--limit", type=int, help="evaluate only the first N questions")
    add_feature_args(parser)
    add_postprocess_args(parser)
    add_runtime_args(parser)
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from distilqa.infra.cards import public_value
    from distilqa.infra.files import atomic_write_json, check_writable
    from distilqa.qa.data import load_examples
    from distilqa.qa.evaluation import evaluate_model

    options = predict_options(args)
    # Checked, not created: a run that fails on its input leaves no output folder behind.
    out = check_writable(args.output_dir, "--output-dir") if args.output_dir else None
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
        }
    )
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "predictions.json", result.predictions)
        atomic_write_json(out / "nbest_predictions.json", result.nbest)
        if examples.version_2:
            atomic_write_json(out / "null_odds.json", result.null_odds)
        atomic_write_json(out / "metrics.json", public_value(metrics))  # no home paths in a shared report
    print(json.dumps(metrics, indent=2))
    em = metrics.get("exact_match", metrics.get("exact"))
    print(
        f"{len(examples)} questions  EM {em:.2f}  F1 {metrics['f1']:.2f}  "
        f"({metrics['questions_per_second']:.1f} questions/s, {predictor.backend})"
        + (f"  -> {out}" if out else ""),
        file=sys.stderr,
    )
    return 0
