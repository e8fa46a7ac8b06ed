"""``distilqa train [CONFIG] [--option value ...]``: fine-tune a QA model (a teacher, or a student alone).

Every ``TrainingArguments`` option is available (``--learning_rate``, ``--num_train_epochs``, ``--eval_strategy``,
...), plus the data, model and windowing options; a YAML/JSON config file may hold any of them.
"""

from __future__ import annotations

import sys

RESUME = ("--resume", {"action": "store_true", "help": "continue from the last complete checkpoint in output_dir"})


def main(argv: list[str]) -> int:
    from distilqa.cli.args import parse_training_args
    from distilqa.config import DataArguments, ModelArguments, QuestionAnsweringConfig
    from distilqa.pipeline import run_train

    if any(a in ("-h", "--help") for a in argv):
        print(__doc__.strip() + "\n", file=sys.stderr)
    (model_args, data_args, config), extra = parse_training_args(
        (ModelArguments, DataArguments, QuestionAnsweringConfig), argv, "distilqa train", [RESUME]
    )
    run_train(model_args, data_args, config, resume=extra.resume)
    return 0
