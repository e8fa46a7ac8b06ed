"""``distilqa benchmark training``: seconds per step and peak memory of plain fine-tuning vs online, cached, hidden-state and attention-relation distillation.

Example (the numbers in docs/RESULTS.md)::

    distilqa benchmark training --teacher runs/minilm --student runs/student-3l \\
        --train_file ../shared/data/squad-v1.1-subset/train.json --steps 30 --warmup_steps 5 --batch_size 16

Each mode runs in a fresh subprocess (this module with the hidden ``--mode`` flag first), which prints its result
as one JSON line.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field


@dataclass
class TrainingBenchmarkOptions:
    """How often to measure, and how to print the report."""

    repeats: int = field(default=1, metadata={"help": "interleaved rounds; each mode keeps its fastest"})
    json: bool = field(default=False, metadata={"help": "print one JSON object instead of a markdown table"})


def build_parser():
    from distilqa.bench.training import TrainingBenchmarkSettings
    from distilqa.cli.helptext import docstring_help
    from distilqa.cli.parser import CommandParser, Section
    from distilqa.cli.quiet import Quiet
    from distilqa.qa.features import FeatureParams

    helps = {k: {"help": v} for k, v in docstring_help(FeatureParams).items()}
    helps["teacher_dtype"] = {"choices": ["float32", "bfloat16", "float16"]}
    helps["learning_rate"] = {"help": "learning rate of every mode"}
    helps["seed"] = {"help": "seed of the data order and any new QA head"}
    return CommandParser(
        "distilqa benchmark training",
        Section(TrainingBenchmarkSettings, fields=helps),
        TrainingBenchmarkOptions,
        Quiet,
        description=__doc__.split("\n\n")[0],
    )


def main(argv: list[str] | None = None) -> int:
    from distilqa.errors import InputError

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--mode"]:  # a child process started by run_benchmark: --mode MODE --settings-json JSON
        return _child(argv)
    settings, options, _ = build_parser().parse(argv)
    from distilqa.bench.training import markdown_report, run_benchmark

    if options.repeats < 1:
        raise InputError(f"--repeats must be >= 1, got {options.repeats}")
    report = run_benchmark(
        settings, repeats=options.repeats, log=lambda line: print(line, file=sys.stderr, flush=True)
    )
    print(json.dumps(report) if options.json else markdown_report(report))
    return 0


def _child(argv: list[str]) -> int:
    """Run one mode in this process (``--mode MODE --settings-json JSON``)."""
    from distilqa.bench.process import child_main
    from distilqa.bench.training import RESULT_PREFIX, TrainingBenchmarkSettings, run_mode

    mode, settings = argv[1], argv[argv.index("--settings-json") + 1]
    return child_main(
        lambda: run_mode(TrainingBenchmarkSettings(**json.loads(settings)), mode), RESULT_PREFIX
    )


if __name__ == "__main__":  # the subprocess entry point of each mode
    sys.exit(main())
