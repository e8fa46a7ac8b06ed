"""``distilqa distill [CONFIG] --teacher T --student S [--option value ...]``: DistilBERT's SQuAD distillation.

Loss: alpha_ce * T^2 * KL(teacher || student) on start and end logits + alpha_squad * cross-entropy on the gold
span (``--temperature``, ``--alpha_ce``, ``--alpha_squad``). ``--teacher_cache DIR`` precomputes the teacher's
logits once (see ``distilqa cache-teacher``). Every ``TrainingArguments`` option is available.
"""

from __future__ import annotations

import sys

from distilqa.cli.train import RESUME


def main(argv: list[str]) -> int:
    from distilqa.cli.args import parse_training_args
    from distilqa.config import DataArguments, DistillationConfig, DistillModelArguments
    from distilqa.pipeline import run_distill

    if any(a in ("-h", "--help") for a in argv):
        print(__doc__.strip() + "\n", file=sys.stderr)
    (model_args, data_args, config), extra = parse_training_args(
        (DistillModelArguments, DataArguments, DistillationConfig), argv, "distilqa distill", [RESUME]
    )
    run_distill(model_args, data_args, config, resume=extra.resume)
    return 0
