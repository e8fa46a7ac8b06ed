"""``distilqa benchmark inference``: EM/F1, questions/s, latency, size and memory per model and backend.

Example (the numbers in docs/RESULTS.md)::

    distilqa benchmark inference --models runs/teacher/model runs/distilled/model \\
        --data ../shared/data/squad-v1.1-subset/dev.json --max-seq-length 256 --doc-stride 96 \\
        --json bench.json --markdown bench.md --plot bench.png

Each model/backend runs in a fresh subprocess (this module with the hidden ``--worker`` flag), which prints
its result as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys

from distilqa.cli.options import add_feature_args


def build_parser() -> argparse.ArgumentParser:
    from distilqa.bench.inference import BACKENDS

    parser = argparse.ArgumentParser(
        prog="distilqa benchmark inference", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--models", nargs="+", help="model folders: PyTorch (exported on the fly) or 'distilqa export' output"
    )
    parser.add_argument("--data", help="SQuAD .json/.jsonl file (or hub dataset name) with the questions")
    parser.add_argument(
        "--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS, help="default: all three"
    )
    parser.add_argument("--limit", type=int, help="use only the first N questions")
    parser.add_argument(
        "--threads", type=int, help="intra-op threads for torch and onnxruntime (default: all logical CPUs)"
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=32,
        help="windows per forward pass, throughput run (default %(default)s)",
    )
    parser.add_argument(
        "--latency-samples",
        type=int,
        default=50,
        help="single questions timed at batch 1 (default %(default)s)",
    )
    parser.add_argument(
        "--warmup", type=int, default=3, help="untimed single-question runs first (default %(default)s)"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="timed passes over the set; questions/s is the best one (default %(default)s)",
    )
    parser.add_argument("--json", dest="json_path", metavar="OUT.json", help="write the rows as a JSON list")
    parser.add_argument("--markdown", metavar="OUT.md", help="write the markdown table")
    parser.add_argument("--plot", metavar="OUT.png", help="plot F1 against questions/s (needs matplotlib)")
    add_feature_args(parser)
    parser.add_argument(
        "--worker", help=argparse.SUPPRESS
    )  # internal: measure one model/backend in this process
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    from distilqa.bench.inference import (
        RESULT_PREFIX,
        InferenceBenchmarkSettings,
        markdown_report,
        measure,
        plot,
        run_benchmark,
    )
    from distilqa.bench.process import child_main
    from distilqa.errors import InputError
    from distilqa.infra.files import atomic_write_json, atomic_write_text

    if args.worker:  # a child process started by measure_in_subprocess
        spec = json.loads(args.worker)
        return child_main(
            lambda: measure(spec["folder"], spec["backend"], InferenceBenchmarkSettings(**spec["settings"])),
            RESULT_PREFIX,
        )
    missing = [flag for flag, value in (("--models", args.models), ("--data", args.data)) if not value]
    if missing:
        raise InputError(f"distilqa benchmark inference needs {' and '.join(missing)}; see --help")
    if args.plot:  # fail before measuring, not after
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise InputError("--plot needs matplotlib: pip install 'distilqa[plot]'") from None
    settings = InferenceBenchmarkSettings(
        data=args.data,
        limit=args.limit,
        threads=args.threads,
        batch_size=args.batch_size,
        latency_samples=args.latency_samples,
        warmup=args.warmup,
        repeats=args.repeats,
        max_seq_length=args.max_seq_length,
        doc_stride=args.doc_stride,
        max_query_length=args.max_query_length,
    )
    from distilqa.infra.hardware import cpu_model

    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    log(f"CPU: {cpu_model()}; threads pinned to {settings.threads}")
    rows = run_benchmark(args.models, settings, backends=args.backends, log=log)
    report = markdown_report(rows)
    if args.json_path:
        atomic_write_json(args.json_path, rows)
    if args.markdown:
        atomic_write_text(args.markdown, report + "\n")
    if args.plot:
        plot(rows, args.plot)
    print(report)
    return 0


if __name__ == "__main__":  # pragma: no cover - the --worker subprocess
    sys.exit(main())
