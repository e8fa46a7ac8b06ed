"""``distilqa init-student``: make a smaller student from chosen layers of a teacher (default: every other layer)."""

from __future__ import annotations

from dataclasses import dataclass, field

from distilqa.errors import InputError


@dataclass
class InitStudentOptions:
    """The teacher, the layers the student keeps, and where it goes."""

    teacher: str = field(metadata={"help": "teacher model folder or hub name (a base encoder is fine)"})
    output: str = field(metadata={"help": "folder to write the student to"})
    layers: str | None = field(
        default=None,
        metadata={
            "help": "teacher layers to keep, in order, e.g. 0,2,4 (default: every other layer from 0)",
            "exclusive": "layers",
        },
    )
    num_layers: int | None = field(
        default=None,
        metadata={"help": "keep this many evenly spaced layers instead of --layers", "exclusive": "layers"},
    )
    force: bool = field(default=False, metadata={"help": "replace an existing non-empty --output folder"})
    trust_remote_code: bool = field(
        default=False, metadata={"help": "allow custom modelling code from the checkpoint"}
    )


def build_parser():
    from distilqa.cli.parser import CommandParser

    return CommandParser("distilqa init-student", InitStudentOptions, description=__doc__)


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
    (args,) = build_parser().parse(argv)
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
