"""``distilqa init-student``: make a smaller student from chosen layers of a teacher (default: every other layer)."""

from __future__ import annotations

import argparse

from distilqa.cli.options import ArgumentParser
from distilqa.errors import InputError


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="distilqa init-student", description=__doc__)
    parser.add_argument(
        "--teacher", required=True, help="teacher model folder or hub name (a base encoder is fine)"
    )
    parser.add_argument("--output", required=True, help="folder to write the student to")
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--layers", help="teacher layers to keep, in order, e.g. 0,2,4 (default: every other layer from 0)"
    )
    which.add_argument(
        "--num-layers", type=int, help="keep this many evenly spaced layers instead of --layers"
    )
    parser.add_argument("--force", action="store_true", help="replace an existing non-empty --output folder")
    parser.add_argument(
        "--trust-remote-code", action="store_true", help="allow custom modelling code from the checkpoint"
    )
    return parser


def parse_layers(text: str) -> list[int]:
    """``"0,2,4"`` -> ``[0, 2, 4]``; anything else is an :class:`InputError` naming ``--layers``."""
    parts = [p.strip() for p in text.split(",")]
    try:
        return [int(p) for p in parts if p]
    except ValueError:
        raise InputError(
            f"--layers {text!r} is not a comma-separated list of layer indices; e.g. --layers 0,2,4"
        ) from None


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from distilqa.distill.student import check_output_folder, init_student, save_student

    layers = parse_layers(args.layers) if args.layers is not None else None
    # Checked before loading the teacher, which may take a while; save_student checks again.
    output = check_output_folder(args.output, args.force, teacher=args.teacher)
    student, info = init_student(
        args.teacher, layers=layers, num_layers=args.num_layers, trust_remote_code=args.trust_remote_code
    )
    save_student(
        student,
        output,
        info,
        tokenizer=args.teacher,
        force=args.force,
        trust_remote_code=args.trust_remote_code,
    )
    kept = ",".join(map(str, info["layers"]))
    print(f"kept teacher layers {kept} ({len(info['layers'])} of {info['teacher_layers']})")
    print(
        f"parameters: teacher {info['teacher_parameters']:,} -> student {info['student_parameters']:,} "
        f"({info['ratio']:.1%} of the teacher)"
    )
    head = (
        "newly initialised (the teacher has no QA head)"
        if info["qa_head"] == "new"
        else "copied from the teacher"
    )
    print(f"QA head (qa_outputs): {head}")
    print(
        f"saved to {output} (with README.md and distilqa_student.json); next: distilqa distill --student {output} ..."
    )
    return 0
