"""The CPU-scale Table 2 beside the paper's, as a figure: F1 on dev against parameters.

Left: our rows from ``table2_sweep.py`` results files (GPU) and ``table2_cpu.py`` ones (CPU; rows without a
``job``), mean and standard deviation over seeds, one point per setting named in ``ROWS``; right: the
DistilBERT paper's Table 2 (SQuAD v1.1 dev). Written atomically.

    python benchmarks/table2_plot.py docs/results/table2-gpu-hidden.jsonl docs/results/table2-gpu-augment.jsonl \
        docs/results/table2-cpu-staged.jsonl docs/results/table2-cpu-staged10.jsonl docs/results/table2.png
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path


def _cpu_two_stage(row: dict, epochs: float) -> bool:
    """A table2_cpu.py two-stage hidden-state row (first stage 2 epochs on the original questions) of ``epochs``
    epochs' steps in all."""
    return (
        row["job"] == ""
        and row.get("stage1_epochs") == 2
        and not row.get("stage1_augment_copies")
        and row.get("epochs") == epochs
        and bool(row.get("alpha_hidden"))
    )


# (label, marker, predicate on a row): the settings of docs/RESULTS.md section 6.1's main rows, 6.5's best on the
# GPU, and 6.8's / 6.9's two-stage rows on the CPU (their own teacher)
ROWS = [
    (
        "teacher (6 layers, 2 epochs)",
        "*",
        lambda r: r["job"] == "h-teacher-e2-lr0.0002" and r["row"] == "teacher",
    ),
    ("alone, 10 epochs", "o", lambda r: r["job"].startswith("h-t2-alone-long") and r.get("kind") == "alone"),
    ("alone, 5 epochs", "o", lambda r: r["job"].startswith("h-t2-alone-e5") and r.get("kind") == "alone"),
    (
        "distilled, logits, 5 epochs",
        "s",
        lambda r: r["job"].startswith("h-t2-distilled-e5") and r.get("kind") == "distilled",
    ),
    (
        "distilled + hidden, 10 epochs",
        "D",
        lambda r: r["job"].startswith("h-t2-hidden-long") and r.get("kind") == "distilled",
    ),
    (
        "distilled + hidden + 4 variants/question, steps of 10 epochs",
        "v",
        lambda r: r["job"].startswith("a-augmented-hidden4-e10") and r.get("kind") == "distilled",
    ),
    ("CPU: its teacher (6 layers, 2 epochs)", "*", lambda r: r["job"] == "" and r["row"] == "teacher"),
    ("CPU: distilled + hidden, two stages (2 + 3 epochs)", "P", lambda r: _cpu_two_stage(r, 5)),
    ("CPU: the same, 2 + 8 epochs", "X", lambda r: _cpu_two_stage(r, 10)),
]
PAPER = [
    ("BERT-base (teacher)", "*", 110e6, 88.5),
    ("DistilBERT alone", "o", 66e6, 85.8),
    ("DistilBERT (D)", "D", 66e6, 86.9),
]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("results", nargs="+", help="table2_sweep.py sweep.jsonl files")
    parser.add_argument("output", help="PNG to write")
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    unique = {}
    for path in args.results:
        for line in Path(path).read_text().splitlines():
            row = json.loads(line)
            row.setdefault("job", "")  # table2_cpu.py rows: one run, no sweep job
            unique[(row["job"] or path, row["row"])] = row
    fig, (ours, paper) = plt.subplots(1, 2, figsize=(10, 4))
    for label, marker, wanted in ROWS:
        rows = [r for r in unique.values() if wanted(r)]
        if not rows:
            print(f"no rows for {label!r} in {', '.join(args.results)}", file=sys.stderr)
            return 2
        f1 = [r["f1"] for r in rows]
        spread = statistics.stdev(f1) if len(f1) > 1 else 0.0
        ours.errorbar(
            rows[0]["params"] / 1e6,
            statistics.mean(f1),
            yerr=spread,
            fmt=marker,
            capsize=3,
            label=f"{label} (n={len(f1)})",
        )
    ours.set_title("This repo: MiniLM teacher, 3-layer students\n(3k SQuAD questions, 795 dev)")
    for label, marker, params, f1 in PAPER:
        paper.plot(params / 1e6, f1, marker, label=label)
    paper.set_title("Paper, Table 2 (full SQuAD v1.1)")
    for ax in (ours, paper):
        ax.set_xlabel("parameters (millions)")
        ax.set_ylabel("F1 on dev")
    ours.set_xlim(16.5, 40)  # room on the right for the legend: the students sit at 17M, the teacher at 23M
    ours.legend(fontsize=7, loc="lower right")
    paper.legend(fontsize=8)
    fig.tight_layout()
    out = Path(args.output)
    tmp = out.with_name(out.name + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
