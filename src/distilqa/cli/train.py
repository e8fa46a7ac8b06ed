"""``distilqa train [CONFIG_FILE] [--option value ...]``: fine-tune a QA model (a teacher, or a student alone).

Every ``TrainingArguments`` option is available (``--learning_rate``, ``--num_train_epochs``, ``--eval_strategy``,
...), plus the data, model and windowing options; a YAML/JSON config file may hold any of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from distilqa.cli.quiet import Quiet

# The end of the line the dispatcher prints when train or distill is interrupted (Ctrl-C).
RESUME_HINT = (
    "the checkpoints saved so far are kept: run the same command with --resume (resume: true in a config "
    "file) to continue from the last complete one"
)


@dataclass
class RunOptions:
    """How a training run starts."""

    resume: bool = field(
        default=False, metadata={"help": "continue from the last complete checkpoint in output_dir"}
    )


def training_parser(prog: str, doc: str, model_type, config_type, *extra, config_fields: dict | None = None):
    """The parser of the training commands: ``[CONFIG_FILE]``, the model, data and config dataclasses (with
    ``config_fields`` changes, see :class:`~distilqa.cli.parser.Section`), then ``extra`` sections (default:
    ``--resume`` and ``--quiet``)."""
    from distilqa.cli.parser import CommandParser, Section
    from distilqa.qa.config import DataArguments

    return CommandParser(
        prog,
        Section(model_type, "model"),
        Section(DataArguments, "data"),
        Section(config_type, "training (TrainingArguments, windowing, post-processing)", config_fields or {}),
        *(extra or (Section(RunOptions, "run"), Section(Quiet, "run"))),
        description=doc,
        config_file=True,
    )


def run_command(parser, argv: list[str], runner) -> int:
    """Parse ``[CONFIG_FILE] [--option value ...]`` with a :func:`training_parser` and run ``runner``."""
    model_args, data_args, config, run, _ = parser.parse(argv)
    runner(model_args, data_args, config, resume=run.resume)
    return 0


def build_parser():
    from distilqa.qa.config import ModelArguments, QuestionAnsweringConfig

    return training_parser("distilqa train", __doc__, ModelArguments, QuestionAnsweringConfig)


def main(argv: list[str]) -> int:
    from distilqa.runs import run_train

    return run_command(build_parser(), argv, run_train)
