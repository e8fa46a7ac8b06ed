"""``distilqa demo``: offline end to end: fine-tune a MiniLM teacher, distill a 3-layer student, compare."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DemoOptions:
    """Where the report goes, and changes to the demo's recipe (``DemoSettings``, or its ``--quick`` variant)."""

    output: str = field(default="distilqa-demo", metadata={"help": "report folder"})
    quick: bool = field(
        default=False, metadata={"help": "a smoke run of about a minute (tiny subset, 1 epoch)"}
    )
    seed: int | None = field(default=None, metadata={"help": "random seed (default 42)"})
    teacher_epochs: float | None = field(default=None, metadata={"help": "epochs of teacher fine-tuning"})
    student_epochs: float | None = field(
        default=None, metadata={"help": "epochs of student training (alone and distilled)"}
    )
    precision: str | None = field(
        default=None,
        metadata={
            "help": "fp32, bf16, fp16 (CUDA) or auto (default: the fastest this machine runs natively, "
            "bf16 on CPUs with AMX / AVX512-BF16, else fp32)"
        },
    )


def build_parser():
    from distilqa.cli.parser import CommandParser
    from distilqa.cli.quiet import Quiet

    return CommandParser("distilqa demo", DemoOptions, Quiet, description=__doc__)


def main(argv: list[str]) -> int:
    args, _ = build_parser().parse(argv)
    from distilqa.demo.run import DemoSettings, replace_settings, run_demo

    settings = DemoSettings.quick() if args.quick else DemoSettings()
    settings = replace_settings(
        settings,
        seed=args.seed,
        teacher_epochs=args.teacher_epochs,
        student_epochs=args.student_epochs,
        precision=args.precision,
    )
    run_demo(args.output, settings=settings)
    return 0
