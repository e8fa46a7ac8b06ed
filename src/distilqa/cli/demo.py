"""``distilqa demo``: offline end to end: fine-tune a MiniLM teacher, distill a 3-layer student, compare."""

from __future__ import annotations

import argparse

from distilqa.cli.options import ArgumentParser


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="distilqa demo", description=__doc__)
    parser.add_argument("--output", default="distilqa-demo", help="report folder (default %(default)s)")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run of about a minute (tiny subset, 1 epoch)"
    )
    parser.add_argument("--seed", type=int, help="random seed (default 42)")
    parser.add_argument("--teacher-epochs", type=float, help="epochs of teacher fine-tuning")
    parser.add_argument(
        "--student-epochs", type=float, help="epochs of student training (alone and distilled)"
    )
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from distilqa.demo.run import DemoSettings, replace_settings, run_demo

    settings = DemoSettings.quick() if args.quick else DemoSettings()
    settings = replace_settings(
        settings, seed=args.seed, teacher_epochs=args.teacher_epochs, student_epochs=args.student_epochs
    )
    run_demo(args.output, settings=settings)
    return 0
