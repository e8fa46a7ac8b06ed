"""``distilqa augment``: write a training file enlarged with teacher-labelled question variants.

Each training question gets ``--copies`` variants with words swapped for near neighbours in the teacher's
embedding space (TinyBERT's augmentation, applied to the question only); the teacher answers them and its best
span becomes their gold answer. Distill on the output file as on any SQuAD file:

    distilqa augment --teacher runs/teacher --data train.json --output train-aug.json --copies 4
    distilqa distill --teacher runs/teacher --student runs/student-init --train_file train-aug.json ...
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

from distilqa.cli.runtime import load_predictor, predict_options


@dataclass
class AugmentFiles:
    """The teacher, the questions to vary and the file to write."""

    teacher: str = field(
        metadata={
            "help": "fine-tuned QA teacher (PyTorch folder or hub name): answers the variants, gives the embeddings"
        }
    )
    data: str = field(metadata={"help": "training questions: SQuAD .json/.jsonl file or hub dataset name"})
    output: str = field(metadata={"help": "SQuAD JSON file to write (official layout)"})
    split: str = field(default="train", metadata={"help": "split of a hub dataset"})
    limit: int | None = field(default=None, metadata={"help": "only the first N questions"})


def build_parser():
    from distilqa.cli.parser import CommandParser, Section
    from distilqa.cli.quiet import Quiet
    from distilqa.cli.runtime import RuntimeOptions
    from distilqa.distill.augment import AugmentConfig
    from distilqa.qa.features import FeatureParams
    from distilqa.qa.predictor import PredictOptions

    return CommandParser(
        "distilqa augment",
        AugmentFiles,
        Section(AugmentConfig, "variants", fields={"include_original": {"no_aliases": ["--no_original"]}}),
        Section(FeatureParams, "windowing"),
        Section(PredictOptions, "post-processing"),
        Section(RuntimeOptions, "runtime"),
        Section(Quiet, "runtime"),
        description=__doc__,
    )


def main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from distilqa.distill.augment import NeighbourTable, augment_examples, to_squad_json
    from distilqa.errors import InputError
    from distilqa.infra.files import atomic_write_json
    from distilqa.infra.ownership import check_output
    from distilqa.qa.data import load_examples

    config = parser.instances(args)[1]
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
