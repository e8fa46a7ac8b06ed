"""``distilqa serve``: answer questions over HTTP (POST /v1/answer; GET /healthz, /readyz, /metrics).

Needs the optional ``serve`` extra (``pip install 'distilqa[serve]'``). Answers are those of ``distilqa predict``
with the same model and options; concurrent requests are batched together, up to --max_batch windows (--max_wait_ms).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from dataclasses import dataclass, field

from distilqa.errors import InputError


@dataclass
class ServeOptions:
    """The model, where to listen, batching and request limits."""

    model: str = field(
        metadata={"help": "model folder (PyTorch or ONNX export) or hub name", "positional": True}
    )
    host: str = field(
        default="127.0.0.1", metadata={"help": "address to listen on (0.0.0.0: every interface)"}
    )
    port: int = field(default=8000, metadata={"help": "TCP port"})
    max_batch: int = field(
        default=32,
        metadata={
            "help": "most windows per model call (a long context makes several; a larger request runs alone)"
        },
    )
    max_wait_ms: float = field(default=5.0, metadata={"help": "how long a batch waits for more questions"})
    queue_size: int = field(default=256, metadata={"help": "most waiting requests; more get 503"})
    timeout_s: float = field(
        default=30.0, metadata={"help": "longest wait of a request for its answer (504)"}
    )
    max_body_bytes: int = field(default=1_000_000, metadata={"help": "largest request body (413)"})
    max_question_chars: int = field(default=1_000, metadata={"help": "longest question (413)"})
    max_context_chars: int = field(default=100_000, metadata={"help": "longest context (413)"})
    max_items: int = field(default=64, metadata={"help": "most questions in one list request (413)"})
    workers: int = field(
        default=1, metadata={"help": "server processes sharing the port, each with its own copy of the model"}
    )
    log_level: str = field(default="info", metadata={"help": "uvicorn log level: warning, info, debug"})


MAX_WORKERS = 64
POSITIVE = ("port", "max_batch", "queue_size", "max_body_bytes", "max_question_chars", "max_context_chars", "max_items", "workers")  # fmt: skip


def build_parser():
    from distilqa.cli.parser import CommandParser, Section
    from distilqa.cli.runtime import RuntimeOptions
    from distilqa.qa.features import FeatureParams
    from distilqa.qa.predictor import PredictOptions

    return CommandParser(
        "distilqa serve",
        ServeOptions,
        Section(FeatureParams, "windowing"),
        Section(PredictOptions, "post-processing"),
        Section(RuntimeOptions, "runtime", exclude=("no_progress",)),
        description=__doc__,
    )


def _check(args) -> None:
    for name in POSITIVE:
        if getattr(args, name) <= 0:
            raise InputError(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.port > 65535:
        raise InputError(f"--port must be 1..65535, got {args.port}")
    if args.max_wait_ms < 0 or args.timeout_s <= 0:
        raise InputError("--max_wait_ms must be >= 0 and --timeout_s > 0")
    if args.workers > MAX_WORKERS:
        raise InputError(f"--workers must be at most {MAX_WORKERS}, got {args.workers}")


def _check_model_folder(model: str) -> None:
    from pathlib import Path

    from distilqa.infra.models import looks_local, resolve_model

    path = resolve_model(model)
    if looks_local(path) and not Path(path).is_dir():
        raise InputError(f"model folder {path} does not exist or is not a folder; check the path (or give a hub model name)")  # fmt: skip


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    args.no_progress = True
    _check(args)
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError:
        raise InputError("distilqa serve needs the serve extra: pip install 'distilqa[serve]'") from None
    from distilqa.serve.workers import SOCKET_ENV, inherited_socket, run_workers

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.workers > 1 and SOCKET_ENV not in os.environ:
        _check_model_folder(args.model)  # once here, not once per worker
        print(f"distilqa serve: {args.workers} workers on http://{args.host}:{args.port}", file=sys.stderr)
        # in-flight requests end within --timeout_s; a worker still loading its model gets the rest of the bound
        return run_workers(argv, args.host, args.port, args.workers, drain_s=args.timeout_s + 30)
    sock = inherited_socket()
    if sock is not None:  # a worker: stopped by the parent while still loading, nothing is in flight yet
        signal.signal(signal.SIGTERM, lambda sig, frame: sys.exit(0))
    from distilqa.cli.runtime import load_predictor, predict_options
    from distilqa.serve.app import create_app
    from distilqa.serve.validation import Limits

    options = predict_options(args)
    predictor = load_predictor(args, args.model)
    limits = Limits(args.max_body_bytes, args.max_question_chars, args.max_context_chars, args.max_items, options.n_best)  # fmt: skip
    app = create_app(
        predictor, options, limits, model_name=args.model, max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms, queue_size=args.queue_size, timeout_s=args.timeout_s,
        batch_size=args.batch_size,
    )  # fmt: skip
    # uvicorn drains in-flight requests on SIGTERM/SIGINT, then raises the signal again; a SIGTERM handler of our
    # own makes that second delivery a no-op, so a drained shutdown exits 0 rather than dying of the signal.
    signal.signal(signal.SIGTERM, lambda sig, frame: None)
    print(
        f"distilqa serve: {args.model} ({predictor.backend}) on http://{args.host}:{args.port}",
        file=sys.stderr,
    )
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level)
    uvicorn.Server(config).run(sockets=None if sock is None else [sock])
    return 0
