"""The runtime options of the commands that run a model (device, batch size, remote code, progress), and the
predictor they load from a parsed command line."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Literal

from distilqa.errors import InputError


@dataclass
class RuntimeOptions:
    """Where and how a model runs."""

    device: str = field(default="cpu", metadata={"help": "torch device: cpu, cuda, cuda:1, mps"})
    precision: Literal["fp32", "bf16", "fp16", "auto"] | None = field(
        default=None,
        metadata={
            "help": "number format of a PyTorch model: fp32, bf16, fp16 (CUDA) or auto (the fastest this "
            "device runs natively; printed and written to metrics.json). Default: what 'export --target auto' "
            "chose for the folder, else fp32. Logits are post-processed in fp32",
        },
    )
    batch_size: int = field(default=32, metadata={"help": "windows per forward pass"})
    trust_remote_code: bool = field(
        default=False, metadata={"help": "allow custom modelling code from the checkpoint"}
    )
    no_progress: bool = field(default=False, metadata={"help": "hide progress bars"})


def feature_params(args):
    """The :class:`~distilqa.qa.features.FeatureParams` of a parsed command line."""
    from distilqa.qa.features import FeatureParams

    return FeatureParams(args.max_seq_length, args.doc_stride, args.max_query_length)


def predict_options(args):
    """The :class:`~distilqa.qa.predictor.PredictOptions` of a parsed command line."""
    from distilqa.qa.predictor import PredictOptions

    return PredictOptions(args.n_best, args.max_answer_length, args.null_threshold)


def describe_precision(precision) -> str:
    """``bf16`` when asked for, ``bf16 (auto: the CPU has native bf16 ...)`` when ``auto`` chose it."""
    if precision.requested == precision.name:
        return precision.name
    return f"{precision.name} ({precision.requested}: {precision.reason})"


def load_predictor(args, model: str):
    """A :class:`QAPredictor` for ``model`` with the windowing and runtime options of ``args``, checked against
    the model's limits. The SQuAD 2.0 no-answer threshold is decided here for every command: ``--null_threshold``
    if given, else the one saved with the model (a line on stderr says which), else 0.0.

    The tokenizer is loaded and the windowing checked before the weights, so bad options fail fast and quietly.
    """
    from distilqa.infra.models import load_tokenizer
    from distilqa.qa.features import validate_feature_params
    from distilqa.qa.predictor import QAPredictor

    if args.batch_size <= 0:
        raise InputError(f"--batch_size must be >= 1, got {args.batch_size}")
    if args.no_progress:  # also the loading / feature-building bars of transformers and datasets
        from distilqa.cli.quiet import hide_progress

        hide_progress()
    params = feature_params(args)
    tokenizer = load_tokenizer(model, trust_remote_code=args.trust_remote_code)
    validate_feature_params(tokenizer, params)
    predictor = QAPredictor.from_pretrained(
        model,
        params=params,
        device=args.device,
        trust_remote_code=args.trust_remote_code,
        tokenizer=tokenizer,
        precision=args.precision,
        null_threshold=getattr(args, "null_threshold", None),
    )
    if (
        predictor.threshold_is_news
    ):  # a saved or given threshold; a folder without one prints what it did before
        print(predictor.threshold_note, file=sys.stderr)
    limit = getattr(getattr(predictor.model, "config", None), "max_position_embeddings", None)
    if isinstance(limit, int) and params.max_seq_length > limit:
        raise InputError(
            f"--max_seq_length {params.max_seq_length} exceeds {model}'s max_position_embeddings {limit}; pass {limit} or less"
        )
    return predictor
