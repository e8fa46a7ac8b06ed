"""``distilqa benchmark training``: seconds per step and peak memory of plain fine-tuning vs online, cached, hidden-state and attention-relation distillation.

Example (the numbers in docs/RESULTS.md)::

    distilqa benchmark training --teacher runs/minilm --student runs/student-3l \\
        --train_file ../shared/data/squad-v1.1-subset/train.json --steps 30 --warmup-steps 5 --batch-size 16

Each mode runs in a fresh subprocess (this module with the hidden ``--mode`` flag), which prints its result as
one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys

from distilqa.cli.options import ArgumentParser, add_feature_args


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="distilqa benchmark training", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--teacher", help="teacher folder or hub name (a base encoder gets a new QA head: timing only)"
    )
    parser.add_argument("--student", help="student folder or hub name (e.g. from 'distilqa init-student')")
    parser.add_argument("--train_file", "--train-file", dest="train_file", help="SQuAD training data")
    parser.add_argument("--output-dir", help="scratch folder for the Trainer outputs and the cache")
    parser.add_argument(
        "--steps", type=int, default=30, help="timed optimizer steps per mode (default %(default)s)"
    )
    parser.add_argument(
        "--warmup-steps", type=int, default=5, help="untimed steps before them (default %(default)s)"
    )
    parser.add_argument("--batch-size", type=int, default=16, help="windows per step (default %(default)s)")
    parser.add_argument(
        "--max-train-samples",
        type=int,
        default=None,
        help="questions to use (default: (warmup + steps) x batch size)",
    )
    parser.add_argument(
        "--teacher-dtype",
        default="float32",
        choices=("float32", "bfloat16", "float16"),
        help="teacher precision",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch / OpenMP threads (default: torch's choice)"
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default %(default)s)")
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="interleaved rounds; each mode keeps its fastest (default %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the data order and any new QA head (default %(default)s)"
    )
    parser.add_argument(
        "--alpha-hidden",
        type=float,
        default=10.0,
        help="hidden-state weight of the 'hidden' mode (default %(default)s)",
    )
    parser.add_argument(
        "--alpha-attention",
        type=float,
        default=1.0,
        help="attention relation weight of the 'attention' mode (default %(default)s)",
    )
    parser.add_argument(
        "--attention-relation-heads",
        type=int,
        default=12,
        help="relation heads of the 'attention' mode; must divide both hidden sizes (default %(default)s)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object instead of a markdown table"
    )
    add_feature_args(parser, max_seq_length=256, doc_stride=128)
    parser.add_argument("--mode", help=argparse.SUPPRESS)  # internal: run one mode in this process
    parser.add_argument("--settings-json", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    from distilqa.errors import InputError

    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    from distilqa.bench.process import child_main
    from distilqa.bench.training import (
        RESULT_PREFIX,
        TrainingBenchmarkSettings,
        markdown_report,
        run_benchmark,
        run_mode,
    )

    if args.mode:  # a child process started by run_benchmark
        return child_main(
            lambda: run_mode(TrainingBenchmarkSettings(**json.loads(args.settings_json)), args.mode),
            RESULT_PREFIX,
        )
    missing = [flag for flag, value in (("--teacher", args.teacher), ("--student", args.student), ("--train_file", args.train_file), ("--output-dir", args.output_dir)) if not value]  # fmt: skip
    if missing:
        raise InputError(f"distilqa benchmark training needs {', '.join(missing)}; see --help")
    if args.repeats < 1:
        raise InputError(f"--repeats must be >= 1, got {args.repeats}")
    settings = TrainingBenchmarkSettings(
        teacher=args.teacher,
        student=args.student,
        train_file=args.train_file,
        output_dir=args.output_dir,
        steps=args.steps,
        warmup_steps=args.warmup_steps,
        batch_size=args.batch_size,
        max_seq_length=args.max_seq_length,
        doc_stride=args.doc_stride,
        max_query_length=args.max_query_length,
        max_train_samples=args.max_train_samples,
        teacher_dtype=args.teacher_dtype,
        threads=args.threads,
        device=args.device,
        seed=args.seed,
        alpha_hidden=args.alpha_hidden,
        alpha_attention=args.alpha_attention,
        attention_relation_heads=args.attention_relation_heads,
    )
    report = run_benchmark(
        settings, repeats=args.repeats, log=lambda line: print(line, file=sys.stderr, flush=True)
    )
    print(json.dumps(report) if args.json else markdown_report(report))
    return 0


if __name__ == "__main__":  # the subprocess entry point of each mode
    sys.exit(main())
