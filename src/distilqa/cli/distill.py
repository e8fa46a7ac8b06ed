"""``distilqa distill [CONFIG_FILE] --teacher T --student S [--option value ...]``: DistilBERT's SQuAD distillation.

Loss: alpha_ce * T^2 * KL(teacher || student) on start and end logits + alpha_squad * cross-entropy on the gold
span (``--temperature``, ``--alpha_ce``, ``--alpha_squad``), optionally + alpha_hidden * MSE between the student's
hidden states and the teacher's, layers mapped uniformly as in TinyBERT (``--alpha_hidden``, online teacher only),
optionally + alpha_attention * MiniLMv2's self-attention relation KL between the last layers (``--alpha_attention``,
``--attention_relation_heads``, online teacher only), optionally + alpha_null * T^2 * binary KL of the teacher's and
the student's null-vs-best-span margins, for SQuAD 2.0 (``--alpha_null``; ``--null_window_weight`` weighs the
windows labelled null whose answer is in another window in the cross-entropy).
``--teacher_cache DIR`` precomputes the teacher's logits once (see ``distilqa cache-teacher``). Every
``TrainingArguments`` option is available.
"""

from __future__ import annotations

from distilqa.cli.train import run_command, training_parser


def build_parser():
    from distilqa.distill.config import DistillationConfig, DistillModelArguments

    return training_parser("distilqa distill", __doc__, DistillModelArguments, DistillationConfig)


def main(argv: list[str]) -> int:
    from distilqa.runs import run_distill

    return run_command(build_parser(), argv, run_distill)
