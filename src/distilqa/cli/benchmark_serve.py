"""``distilqa benchmark serve MODEL --data FILE``: throughput and latency of ``distilqa serve`` under load, beside
the offline batch throughput of the same model, then a run of malformed requests.

Example::

    distilqa benchmark serve runs/distilled/model --data ../shared/data/squad-v1.1-subset/dev.json \\
        --max_seq_length 256 --doc_stride 96 --concurrency 32 --duration 30 --output bench-serve

The server runs on 127.0.0.1 and a free port (loopback only) and is stopped at the end, also on error.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field


@dataclass
class ServeBenchmarkOptions:
    """The model, and where the report goes."""

    model: str = field(
        metadata={"help": "model folder (PyTorch or 'distilqa export' output)", "positional": True}
    )
    output: str | None = field(
        default=None,
        metadata={"help": "write results.json and results.md into this folder", "metavar": "DIR"},
    )
    no_offline: bool = field(default=False, metadata={"help": "skip the offline batch measurement"})


def build_parser():
    from distilqa.bench.serve import ServeBenchmarkSettings
    from distilqa.cli.helptext import docstring_help
    from distilqa.cli.parser import CommandParser, Section
    from distilqa.cli.quiet import Quiet

    return CommandParser(
        "distilqa benchmark serve",
        ServeBenchmarkOptions,
        Section(
            ServeBenchmarkSettings,
            fields={k: {"help": v} for k, v in docstring_help(ServeBenchmarkSettings).items()},
        ),  # fmt: skip
        Quiet,
        description=__doc__.split("\n\n")[0],
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    options, settings, _ = build_parser().parse(argv)
    from pathlib import Path

    from distilqa.bench.serve import markdown_report, run_benchmark
    from distilqa.infra.files import atomic_write_json, atomic_write_text

    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    result = run_benchmark(options.model, settings, offline=not options.no_offline, log=log)
    report = markdown_report(result)
    if options.output:
        out = Path(options.output)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "results.json", result)
        atomic_write_text(out / "results.md", report + "\n")
    print(report)
    return 0
