"""``distilqa benchmark inference``: EM/F1, questions/s, latency, size and memory per model and backend.

Example (the numbers in docs/RESULTS.md)::

    distilqa benchmark inference --models runs/teacher/model runs/distilled/model \\
        --data ../shared/data/squad-v1.1-subset/dev.json --max_seq_length 256 --doc_stride 96 \\
        --json bench.json --markdown bench.md --plot bench.png

Each model/backend runs in a fresh subprocess (this module with the hidden ``--worker`` flag first), which
prints its result as one JSON line.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field

from distilqa.bench.inference import BACKENDS, default_backends


@dataclass
class InferenceBenchmarkOptions:
    """What to measure, and where the report goes."""

    models: list[str] = field(
        metadata={"help": "model folders: PyTorch (exported on the fly) or 'distilqa export' output"}
    )
    backends: list[str] = field(
        default_factory=default_backends,
        metadata={
            "choices": BACKENDS,
            "help": "backends to measure (default: every one this CPU runs natively; torch-bf16 needs AMX or "
            "AVX512-BF16)",
        },
    )
    json: str | None = field(
        default=None, metadata={"help": "write the rows as a JSON list", "metavar": "OUT.json"}
    )
    markdown: str | None = field(
        default=None, metadata={"help": "write the markdown table", "metavar": "OUT.md"}
    )
    plot: str | None = field(
        default=None,
        metadata={"help": "plot F1 against questions/s (needs matplotlib)", "metavar": "OUT.png"},
    )


def build_parser():
    from distilqa.bench.inference import InferenceBenchmarkSettings
    from distilqa.cli.helptext import docstring_help
    from distilqa.cli.parser import CommandParser, Section
    from distilqa.cli.quiet import Quiet
    from distilqa.qa.features import FeatureParams

    return CommandParser(
        "distilqa benchmark inference",
        InferenceBenchmarkOptions,
        Section(
            InferenceBenchmarkSettings,
            fields={k: {"help": v} for k, v in docstring_help(FeatureParams).items()},
        ),
        Quiet,
        description=__doc__.split("\n\n")[0],
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:  # a child process started by measure_in_subprocess
        return _worker(argv[1])
    options, settings, _ = build_parser().parse(argv)
    from distilqa.bench.inference import markdown_report, plot, run_benchmark
    from distilqa.errors import InputError
    from distilqa.infra.files import atomic_write_json, atomic_write_text

    if options.plot:  # fail before measuring, not after
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise InputError("--plot needs matplotlib: pip install 'distilqa[plot]'") from None
    from distilqa.infra.hardware import cpu_model

    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    log(f"CPU: {cpu_model()}; threads pinned to {settings.threads}")
    from distilqa.infra.models import resolve_model

    models = [resolve_model(model) for model in options.models]  # a run folder stands for its model/
    rows = run_benchmark(models, settings, backends=options.backends, log=log)
    report = markdown_report(rows)
    if options.json:
        atomic_write_json(options.json, rows)
    if options.markdown:
        atomic_write_text(options.markdown, report + "\n")
    if options.plot:
        plot(rows, options.plot)
    print(report)
    return 0


def _worker(spec: str) -> int:
    """Measure one model/backend in this process (``--worker SPEC``, SPEC the JSON of measure_in_subprocess)."""
    from distilqa.bench.inference import RESULT_PREFIX, InferenceBenchmarkSettings, measure
    from distilqa.bench.process import child_main

    spec = json.loads(spec)
    return child_main(
        lambda: measure(spec["folder"], spec["backend"], InferenceBenchmarkSettings(**spec["settings"])),
        RESULT_PREFIX,
    )


if __name__ == "__main__":  # pragma: no cover - the --worker subprocess
    sys.exit(main())
