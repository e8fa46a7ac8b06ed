"""The argument parser of the subcommands and the argument groups they share (windowing, post-processing, runtime)."""

from __future__ import annotations

import argparse

from distilqa.errors import InputError


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose usage errors are one line: it raises :class:`InputError` (exit code 2
    from the dispatcher) instead of printing the usage and calling ``sys.exit``. ``--help`` works as usual."""

    def error(self, message: str):
        raise InputError(f"{self.prog}: {message}; see '{self.prog} --help'")


def add_feature_args(
    parser: argparse.ArgumentParser, max_seq_length: int = 384, doc_stride: int = 128
) -> None:
    group = parser.add_argument_group("windowing")
    group.add_argument(
        "--max-seq-length", type=int, default=max_seq_length, help="tokens per window (default %(default)s)"
    )
    group.add_argument(
        "--doc-stride", type=int, default=doc_stride, help="overlap between windows (default %(default)s)"
    )
    group.add_argument(
        "--max-query-length",
        type=int,
        default=64,
        help="questions are cut to this many tokens (default %(default)s)",
    )


def add_postprocess_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("post-processing")
    group.add_argument(
        "--n-best", type=int, default=20, help="candidates per window and answers kept (default %(default)s)"
    )
    group.add_argument(
        "--max-answer-length", type=int, default=30, help="longest answer in tokens (default %(default)s)"
    )
    group.add_argument(
        "--null-threshold",
        type=float,
        default=0.0,
        help="SQuAD 2.0: answer '' when null - best span score > this (default %(default)s)",
    )


def add_runtime_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("runtime")
    group.add_argument(
        "--device", default="cpu", help="torch device: cpu, cuda, cuda:1, mps (default %(default)s)"
    )
    group.add_argument(
        "--batch-size", type=int, default=32, help="windows per forward pass (default %(default)s)"
    )
    group.add_argument(
        "--trust-remote-code", action="store_true", help="allow custom modelling code from the checkpoint"
    )
    group.add_argument("--no-progress", action="store_true", help="hide progress bars")


def feature_params(args: argparse.Namespace):
    from distilqa.qa.features import FeatureParams

    return FeatureParams(args.max_seq_length, args.doc_stride, args.max_query_length)


def predict_options(args: argparse.Namespace):
    from distilqa.qa.predictor import PredictOptions

    return PredictOptions(args.n_best, args.max_answer_length, args.null_threshold)


def load_predictor(args: argparse.Namespace, model: str):
    """A :class:`QAPredictor` for ``model`` with the windowing options, checked against the model's limits.

    The tokenizer is loaded and the windowing checked before the weights, so bad options fail fast and quietly.
    """
    from distilqa.infra.models import load_tokenizer
    from distilqa.qa.features import validate_feature_params
    from distilqa.qa.predictor import QAPredictor

    if args.batch_size <= 0:
        raise InputError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.no_progress:  # also the loading / feature-building bars of transformers and datasets
        import datasets
        import transformers

        transformers.utils.logging.disable_progress_bar()
        datasets.disable_progress_bars()
    params = feature_params(args)
    tokenizer = load_tokenizer(model, trust_remote_code=args.trust_remote_code)
    validate_feature_params(tokenizer, params)
    predictor = QAPredictor.from_pretrained(
        model,
        params=params,
        device=args.device,
        trust_remote_code=args.trust_remote_code,
        tokenizer=tokenizer,
    )
    limit = getattr(getattr(predictor.model, "config", None), "max_position_embeddings", None)
    if isinstance(limit, int) and params.max_seq_length > limit:
        raise InputError(
            f"--max-seq-length {params.max_seq_length} exceeds {model}'s max_position_embeddings {limit}; pass {limit} or less"
        )
    return predictor
