"""Tables and the figure of Table 2 rows, from results files: the runner's, and the earlier scripts' in docs/results.

    python -m experiments.table2.report                          # docs/results/table2-*.jsonl -> table2.md, table2.png
    python -m experiments.table2.report OUT/results.jsonl        # its table on stdout
    python -m experiments.table2.report A.jsonl B.jsonl --markdown T.md --plot T.png --figure my-figure.yaml

A table pools one file's rows by their settings without the seed: mean ± standard deviation over seeds. Its
columns are the settings that differ between its lines (named as in :mod:`experiments.table2.settings`; epochs
count optimizer steps in passes over the original questions); F1 / teacher is against the row of the line's
teacher settings, in any file read. The figure's points are in ``figure.yaml``, each named by the settings of the
rows it pools.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

from experiments.table2.results import load_rows, select, unique
from experiments.table2.settings import REPO, STUDENT, TEACHER, StudyError, flatten, settings_hash

HERE = Path(__file__).resolve().parent
DOCS = REPO / "docs" / "results"
ORDER = [
    "kind", "data", "device", "limit_train", "limit_dev", "max_seq_length", "doc_stride", "batch_size", "warmup",
    "weight_decay", "model", "teacher.model", "teacher.epochs", "teacher.learning_rate", "teacher.seed", "init",
    "student_layers", "epochs", "learning_rate", "seed", "temperature", "alpha_ce", "alpha_squad", "alpha_hidden",
    "alpha_attention", "attention_relation_heads", "augment_copies", "augment_min_probability", "stage1_epochs", "stage1_alpha_hidden",
    "stage1_augment_copies",
]  # fmt: skip
KIND_ORDER = {"teacher": 0, "alone": 1, "distilled": 2}
PAPER = "Paper (Table 2, SQuAD v1.1 dev, GPU): BERT-base 81.2/88.5, DistilBERT 77.7/85.8, DistilBERT (D) 79.1/86.9 EM/F1."


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def _view(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings as a table shows them: the teacher's as ``teacher.KEY`` (a teacher row's own too), no seed
    (lines pool seeds)."""
    if settings["kind"] == "teacher":
        settings = {**{k: settings[k] for k in settings if k not in TEACHER}, "teacher": settings}
    return {key: value for key, value in flatten(settings).items() if key != "seed"}


def _columns(views: list[dict[str, Any]]) -> tuple[list[str], dict[str, Any]]:
    """The keys with more than one value among ``views`` (and ``kind``), and the others' one value."""
    values: dict[str, set[str]] = {}
    for view in views:
        for key, value in view.items():
            values.setdefault(key, set()).add(_cell(value))
    varying = {key for key, cells in values.items() if len(cells) > 1} | {"kind"}
    shared = {key: next(iter(cells)) for key, cells in values.items() if key not in varying and cells != {""}}
    keyed = lambda key: (ORDER.index(key) if key in ORDER else len(ORDER), key)  # noqa: E731
    return sorted(varying, key=keyed), dict(sorted(shared.items(), key=lambda kv: keyed(kv[0])))


def _order(value: Any) -> tuple:
    if isinstance(value, str) and value in KIND_ORDER:
        return (0, KIND_ORDER[value], "")
    if value is None:
        return (0, 0, "")
    return (1, value, "") if isinstance(value, (int, float)) else (2, 0, _cell(value))


def plan_table(rows) -> str:
    """The planned rows (:class:`experiments.table2.settings.Row`) as markdown: hash, name, the settings that differ."""
    views = [
        {**_view(s), "seed": s["seed"] if s["kind"] != "teacher" else None}
        for s in (r.settings for r in rows)
    ]
    columns, shared = _columns(views)
    lines = ["| hash | name | " + " | ".join(columns) + " |", "|---" * (len(columns) + 2) + "|"]
    for row, view in zip(rows, views):
        lines.append(f"| {row.hash} | {row.name} | " + " | ".join(_cell(view.get(k)) for k in columns) + " |")
    common = ", ".join(f"{key} {value}" for key, value in shared.items())
    return "\n".join(lines + [f"\n{len(rows)} rows; the same in all that have them: {common}"])


def pooled(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """``rows`` (one per hash) grouped by their settings without the seed."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in unique(rows):
        settings = {key: value for key, value in row["settings"].items() if key != "seed"}
        groups.setdefault(settings_hash(settings), []).append(row)
    return list(groups.values())


def _spread(values: list[float]) -> str:
    mean = statistics.mean(values)
    return f"{mean:.2f}" + (f" ± {statistics.stdev(values):.2f}" if len(values) > 1 else "")


def summarise(rows: list[dict[str, Any]], everything: list[dict[str, Any]] | None = None) -> str:
    """The markdown table of ``rows`` pooled over seeds (see the module docstring), after a line of the settings
    all its lines share; teachers are looked up in ``everything`` (default: ``rows``)."""
    if not rows:
        return "(no rows recorded)"
    teachers = {
        row["hash"]: row for row in unique(everything or rows) if row["settings"]["kind"] == "teacher"
    }
    groups = pooled(rows)
    views = [_view(group[0]["settings"]) for group in groups]
    if any("student_vocab" in view for view in views):  # beside trimmed rows, the others show the default
        for view, group in zip(views, groups, strict=True):  # (their settings omit it, to keep their hashes)
            if group[0]["settings"]["kind"] != "teacher":
                view.setdefault("student_vocab", STUDENT["student_vocab"])
    columns, shared = _columns(views)
    head = ["seeds", "EM", "F1", "F1 / teacher", "parameters", "train s", "questions/s"]
    lines = [
        "The same in every line that has them: " + ", ".join(f"{k} {v}" for k, v in shared.items()) + ".",
        "",
        "| " + " | ".join(columns + head) + " |",
        "|---" * (len(columns) + len(head)) + "|",
    ]
    ordered = sorted(zip(views, groups), key=lambda vg: [_order(vg[0].get(key)) for key in columns])
    for view, group in ordered:
        settings, f1 = group[0]["settings"], [row["f1"] for row in group]
        teacher = (
            group[0] if settings["kind"] == "teacher" else teachers.get(settings_hash(settings["teacher"]))
        )
        ratio = f"{100 * statistics.mean(f1) / teacher['f1']:.1f}%" if teacher and teacher["f1"] else ""
        train = [row["train_s"] for row in group if row.get("train_s") is not None]
        seeds = ",".join(
            str(row["settings"]["seed"]) for row in sorted(group, key=lambda r: r["settings"]["seed"])
        )
        cells = [_cell(view.get(key)) for key in columns] + [
            seeds, _spread([row["exact_match"] for row in group]), _spread(f1), ratio, f"{group[0]['params']:,}",
            f"{statistics.mean(train):.0f}" if train else "-",
            f"{statistics.mean(row['questions_per_s'] for row in group):.1f}",
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def document(files: list[Path]) -> str:
    """One table per results file, beside the paper's numbers."""
    every = {path: load_rows(path) for path in files}
    everything = [row for rows in every.values() for row in rows]
    parts = [
        "# Table 2 rows, pooled over seeds",
        "",
        "Made by `python -m experiments.table2.report` from " + ", ".join(f"`{p.name}`" for p in files) + " "
        "(rerun it rather than editing this file). One table per file: its rows pooled by their settings without "
        "the seed (mean ± standard deviation over seeds); the columns are the settings that differ between the "
        "lines (see `experiments/table2/settings.py`; `epochs` counts optimizer steps in passes over the original "
        "questions, also for rows on teacher-labelled variants); F1 / teacher: against the line's teacher. "
        "Training seconds are the machine's of the day (GPU rows: several runs sharing one GPU).",
    ]
    for path, rows in every.items():
        parts += ["", f"## {path.name}", "", summarise(rows, everything)]
    return "\n".join(parts + ["", PAPER, ""])


def figure(rows: list[dict[str, Any]], spec: dict[str, Any], path: Path) -> None:
    """The figure of ``spec`` (``figure.yaml``): each point pools the rows whose settings match its ``where``,
    beside the paper's points; written atomically."""
    import os

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = unique(rows)
    fig, (ours, paper) = plt.subplots(1, 2, figsize=(10, 4))
    for point in spec["points"]:
        chosen = select(rows, point["where"])
        if not chosen:
            raise StudyError(f"figure: no row has the settings of {point['label']!r} ({point['where']})")
        f1 = [row["f1"] for row in chosen]
        spread = statistics.stdev(f1) if len(f1) > 1 else 0.0
        label = f"{point['label']} (n={len(f1)})"
        ours.errorbar(
            chosen[0]["params"] / 1e6,
            statistics.mean(f1),
            yerr=spread,
            fmt=point["marker"],
            capsize=3,
            label=label,
        )
    ours.set_title(spec["title"])
    for point in spec["paper"]:
        paper.plot(point["params"] / 1e6, point["f1"], point["marker"], label=point["label"])
    paper.set_title(spec["paper_title"])
    for ax in (ours, paper):
        ax.set_xlabel("parameters (millions)")
        ax.set_ylabel("F1 on dev")
    ours.set_xlim(*spec["xlim"])
    ours.legend(fontsize=7, loc="lower right")
    paper.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "results", nargs="*", type=Path, help="results files (default: docs/results/table2-*.jsonl)"
    )
    parser.add_argument("--markdown", type=Path, help="write the tables here (default: docs/results/table2.md "
                        "for the default files, else stdout)")  # fmt: skip
    parser.add_argument("--plot", type=Path, help="write the figure here (default: docs/results/table2.png for "
                        "the default files, else none)")  # fmt: skip
    parser.add_argument("--figure", type=Path, default=HERE / "figure.yaml", help="the figure's points")
    args = parser.parse_args(argv)
    files = args.results or sorted(DOCS.glob("table2-*.jsonl"))
    markdown = args.markdown or (None if args.results else DOCS / "table2.md")
    plot = args.plot or (None if args.results else DOCS / "table2.png")
    try:
        text = document(files)
        spec = _figure_spec(args.figure) if plot else None
        if plot:
            figure([row for path in files for row in load_rows(path)], spec, plot)
    except StudyError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if markdown:
        from distilqa.infra.files import atomic_write_text

        atomic_write_text(markdown, text)
        print(f"wrote {markdown}")
    else:
        print(text)
    if plot:
        print(f"wrote {plot}")
    return 0


def _figure_spec(path: Path) -> dict[str, Any]:
    from experiments.table2.settings import load_study

    spec = load_study(path)
    missing = {"title", "paper_title", "xlim", "points", "paper"} - set(spec or {})
    if missing:
        raise StudyError(
            f"{path}: no {', '.join(sorted(missing))}: a figure names its title, paper_title, xlim, points and paper"
        )
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise StudyError("no plot without matplotlib: pip install 'distilqa[plot]'") from None
    return spec


if __name__ == "__main__":
    sys.exit(main())
