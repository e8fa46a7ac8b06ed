"""``distilqa evaluate``: run a QA model over a SQuAD dataset, write predictions and metrics, print EM/F1."""

from __future__ import annotations

import argparse
import json
import sys
import time

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
    from distilqa.infra.files import atomic_write_json
    from distilqa.infra.ownership import EVALUATE, check_output, claim_folder
    from distilqa.qa.data import load_examples
    from distilqa.qa.metrics import score_predictions

    options = predict_options(args)
    # Checked, not created: a run that fails on its input leaves no output folder behind.
    out = check_output(args.output_dir, EVALUATE, "--output-dir", {"model": args.model, "--data file": args.data}) if args.output_dir else None  # fmt: skip
    examples = load_examples(args.data, split=args.split, check_offsets="ignore", limit=args.limit)
    predictor = load_predictor(args, args.model)
    began = time.perf_counter()
    result = predictor.predict_examples(
        examples, batch_size=args.batch_size, options=options, progress=not args.no_progress
    )
    seconds = time.perf_counter() - began
    na_probs = result.null_odds if examples.version_2 else None
    metrics = dict(score_predictions(examples, result.predictions, na_probs=na_probs))
    metrics.update(
        {
            "num_questions": len(examples),
            "seconds": round(seconds, 3),
            "questions_per_second": round(len(examples) / seconds, 2),
            "model": str(args.model),
            "data": examples.source,
            "backend": predictor.backend,
        }
    )
    if out is not None:
        claim_folder(out, EVALUATE, "--output-dir")
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
