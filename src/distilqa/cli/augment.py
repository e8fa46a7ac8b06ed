"""``distilqa augment``: write a training file enlarged with teacher-labelled question variants.

Each training question gets ``--copies`` variants with words swapped for near neighbours in the teacher's
embedding space (TinyBERT's augmentation, applied to the question only); the teacher answers them and its best
span becomes their gold answer. Distill on the output file as on any SQuAD file:

    distilqa augment --teacher runs/teacher --data train.json --output train-aug.json --copies 4
    distilqa distill --teacher runs/teacher --student runs/student-init --train_file train-aug.json ...
"""

from __future__ import annotations

import argparse
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
    parser = ArgumentParser(
        prog="distilqa augment", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--teacher",
        required=True,
        help="fine-tuned QA teacher (PyTorch folder or hub name): answers the variants, gives the embeddings",
    )
    parser.add_argument(
        "--data", required=True, help="training questions: SQuAD .json/.jsonl file or hub dataset name"
    )
    parser.add_argument("--split", default="train", help="split of a hub dataset (default %(default)s)")
    parser.add_argument("--output", required=True, help="SQuAD JSON file to write (official layout)")
    parser.add_argument("--copies", type=int, default=4, help="variants per question (default %(default)s)")
    parser.add_argument(
        "--replace-prob",
        type=float,
        default=0.3,
        help="chance that each word is swapped (default %(default)s)",
    )
    parser.add_argument(
        "--neighbours", type=int, default=15, help="candidate words per word (default %(default)s)"
    )
    parser.add_argument(
        "--min-probability",
        type=float,
        default=0.0,
        help="drop variants the teacher answers with less confidence (default %(default)s)",
    )
    parser.add_argument(
        "--no-original", action="store_true", help="write the variants only, not the original questions"
    )
    parser.add_argument(
        "--seed", type=int, default=42, help="random seed of the replacements (default %(default)s)"
    )
    parser.add_argument("--limit", type=int, help="only the first N questions")
    add_feature_args(parser)
    add_postprocess_args(parser)
    add_runtime_args(parser)
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from distilqa.distill.augment import AugmentConfig, NeighbourTable, augment_examples, to_squad_json
    from distilqa.errors import InputError
    from distilqa.infra.files import atomic_write_json
    from distilqa.infra.ownership import check_output
    from distilqa.qa.data import load_examples

    config = AugmentConfig(
        args.copies, args.replace_prob, args.neighbours, args.min_probability, args.seed, not args.no_original
    )
    output = check_output(args.output, None, "--output", {"--data file": args.data, "teacher": args.teacher})
    examples = load_examples(args.data, split=args.split, limit=args.limit)
    predictor = load_predictor(args, args.teacher)
    if predictor.backend != "torch":
        raise InputError(
            f"{args.teacher} is an ONNX export; augment needs the PyTorch teacher folder (its input embeddings)"
        )
    embeddings = predictor.model.get_input_embeddings().weight.detach().float().cpu().numpy()
    began = time.perf_counter()
    table = NeighbourTable(predictor.tokenizer, embeddings, k=config.neighbours)
    augmented, summary = augment_examples(
        examples,
        predictor,
        table,
        config,
        batch_size=args.batch_size,
        options=predict_options(args),
        progress=not args.no_progress,
    )
    atomic_write_json(output, to_squad_json(augmented), indent=None)
    summary["seconds"] = round(time.perf_counter() - began, 1)
    summary["output"] = str(output)
    width = max(map(len, summary))
    print("\n".join(f"  {k:<{width}}  {v}" for k, v in summary.items()), file=sys.stderr)
    return 0
