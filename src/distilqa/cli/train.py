"""``distilqa train [CONFIG] [--option value ...]``: fine-tune a QA model (a teacher, or a student alone).

Every ``TrainingArguments`` option is available (``--learning_rate``, ``--num_train_epochs``, ``--eval_strategy``,
...), plus the data, model and windowing options; a YAML/JSON config file may hold any of them.
"""

from __future__ import annotations

import sys

RESUME = (
    "--resume",
    {"action": "store_true", "help": "continue from the last complete checkpoint in output_dir"},
)


def run_command(argv: list[str], doc: str, prog: str, model_type, config_type, runner) -> int:
    """Parse ``[CONFIG] [--option value ...]`` into (model, data, config) and run ``runner`` with ``--resume``."""
    from distilqa.cli.args import parse_training_args
    from distilqa.qa.config import DataArguments

    if any(a in ("-h", "--help") for a in argv):
        print(doc.strip() + "\n", file=sys.stderr)
    (model_args, data_args, config), extra = parse_training_args(
        (model_type, DataArguments, config_type), argv, prog, [RESUME]
    )
    runner(model_args, data_args, config, resume=extra.resume)
    return 0


def main(argv: list[str]) -> int:
    from distilqa.qa.config import ModelArguments, QuestionAnsweringConfig
    from distilqa.runs import run_train

    return run_command(argv, __doc__, "distilqa train", ModelArguments, QuestionAnsweringConfig, run_train)
