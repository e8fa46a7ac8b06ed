"""experiments/table2: the rows recorded in docs/results read as settings, the tables and the figure made from them."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.table2.report import DOCS, document, summarise
from experiments.table2.results import load_rows, read_jsonl, select, unique
from experiments.table2.settings import load_study, plan, resolve, settings_hash

pytestmark = pytest.mark.experiments
REPO = Path(__file__).resolve().parents[2]
TABLE2 = REPO / "experiments" / "table2"
FILES = sorted(DOCS.glob("table2-*.jsonl"))


def rows_of(name: str) -> list[dict]:
    return load_rows(DOCS / name)


def planned(study: str, **overrides) -> set[str]:
    return {row.hash for row in plan(load_study(TABLE2 / "studies" / f"{study}.yaml"), overrides)}


def test_the_earlier_results_files_load_as_settings():
    assert len(FILES) == 9
    for path in FILES:
        records = read_jsonl(path)
        rows = load_rows(path)
        # every record is a row, but a teacher measured again for a job (reused) is the teacher's row already
        assert len(rows) == len([r for r in records if not (r["row"] == "teacher" and r.get("reused"))]) > 0
        assert all(
            row["hash"] == settings_hash(row["settings"]) and row["source"] == path.name for row in rows
        )
        assert all(
            row["legacy"]["row"] == record["row"]
            for row, record in zip(rows, (r for r in records if not r.get("reused")))
        )
    # a row on variants: 1.6 passes over the 5x file after a 2-epoch first stage are 10 epochs' steps
    variants = rows_of("table2-cpu-variants-staged.jsonl")[0]
    assert variants["legacy"]["row"] == "distilled/init=teacher/seed=1/T=2/ace=0.5/ah=10/aug=4/stage1=2"
    assert variants["settings"] == resolve({
        "kind": "distilled", "epochs": 10, "alpha_hidden": 10, "augment_copies": 4, "stage1_epochs": 2, "seed": 1,
    })  # fmt: skip
    # a sweep row: on the GPU, from the teacher job it names, on the demo's data for the demo phases
    sweep = {row["legacy"].get("job"): row["settings"] for row in rows_of("table2-gpu-sweep.jsonl")}
    assert sweep["demo-alone-e3-lr0.0004-s2"]["teacher"]["epochs"] == 4.0
    assert sweep["demo-alone-e3-lr0.0004-s2"]["data"] == "src/distilqa/demo/data"
    assert sweep["followup-alone-e10-lr0.0002-s1"]["teacher"]["epochs"] == 5.0  # its phase's teacher
    assert {s["device"] for s in sweep.values()} == {"cuda"}


def test_the_study_files_plan_the_recorded_rows():
    """The studies as data plan the very rows the earlier scripts recorded (the same hashes)."""
    recorded = {path.name: {row["hash"] for row in load_rows(path)} for path in FILES}
    assert planned("hidden", device="cuda") == recorded["table2-gpu-hidden.jsonl"]  # run to the end
    assert recorded["table2-gpu-augment.jsonl"] <= planned("augment", device="cuda")  # run in part
    demo = {row["hash"] for row in rows_of("table2-gpu-sweep.jsonl") if "demo" in row["settings"]["data"]}
    assert planned("demo-recipe", device="cuda") == demo
    assert recorded["table2-gpu-sweep.jsonl"] - demo <= planned("recipe", device="cuda")
    cpu = set().union(*(hashes for name, hashes in recorded.items() if "-cpu-" in name))
    assert cpu <= planned("cpu") and len(planned("cpu") - cpu) == 2  # 6.2's two rows have no raw file here


def test_the_tables_regenerate_from_the_files():
    text = document(FILES)
    assert text == (DOCS / "table2.md").read_text(), (
        "docs/results/table2.md is stale: python -m experiments.table2.report"
    )
    hidden = text.split("## table2-gpu-hidden.jsonl")[1].split("## ")[0]
    # RESULTS 6.1: alone at 10 epochs 50.2 ± 1.0 (82%), distilled + hidden 55.7 ± 0.7 (91%)
    assert "| alone | 2 | teacher | 10 |  |  |  |  | 1,2 | 34.66 ± 1.69 | 50.19 ± 0.96 | 81.8% |" in hidden
    assert (
        "| distilled | 2 | teacher | 10 | 2 | 0.5 | 0.5 | 10 | 1,2 | 39.31 ± 0.27 | 55.72 ± 0.71 | 90.9% |"
        in hidden
    )
    # RESULTS 6.10 / 6.11: the variants in the second stage over 4 seeds, only the confident ones over 3
    staged = text.split("## table2-cpu-variants-staged.jsonl")[1].split("## ")[0]
    assert "| 10 | 4 | 0 | 0 | 1,2,3,4 | 42.11 ± 0.83 | 57.51 ± 0.87 | 94.4% |" in staged
    assert "| 10 | 4 | 0.5 | 0 | 1,2,3 | 42.26 ± 0.26 | 57.41 ± 0.23 | 94.2% |" in staged


def test_the_summary_keeps_one_and_two_stage_rows_apart():
    def row(seed, f1, **settings):
        s = resolve({"kind": "distilled", "alpha_hidden": 10, "seed": seed, **settings})
        return {"hash": settings_hash(s), "name": "x", "settings": s, "f1": f1, "exact_match": 40.0,
                "params": 1000, "train_s": 1.0, "questions_per_s": 2.0}  # fmt: skip

    teacher = resolve({"kind": "teacher"})
    rows = [
        row(1, 55.0), row(2, 56.0), row(1, 58.0, stage1_epochs=2), row(1, 57.0, stage1_epochs=2, stage1_augment_copies=4),
        {"hash": settings_hash(teacher), "name": "teacher", "settings": teacher, "f1": 60.0, "exact_match": 45.0,
         "params": 2000, "train_s": None, "questions_per_s": 1.0},
    ]  # fmt: skip
    table = summarise(rows).splitlines()
    assert len(table) == 2 + 2 + 4  # shared settings, blank, header, rule, one line per setting
    assert table[4].startswith("| teacher |") and "| 42 | 45.00 | 60.00 | 100.0% | 2,000 | - |" in table[4]
    assert table[5] == "| distilled | 0 |  | 1,2 | 40.00 ± 0.00 | 55.50 ± 0.71 | 92.5% | 1,000 | 1 | 2.0 |"
    assert table[6] == "| distilled | 2 | 0 | 1 | 40.00 | 58.00 | 96.7% | 1,000 | 1 | 2.0 |"
    assert table[7] == "| distilled | 2 | 4 | 1 | 40.00 | 57.00 | 95.0% | 1,000 | 1 | 2.0 |"
    assert table[2].split(" | ")[:3] == ["| kind", "stage1_epochs", "stage1_augment_copies"]


def test_the_figure_pools_the_rows_it_always_did():
    """figure.yaml names its points by settings; they pool the rows the job-name predicates of the old plot did."""
    spec = load_study(TABLE2 / "figure.yaml")
    rows = unique([row for path in FILES for row in load_rows(path)])
    chosen = {point["label"]: [r["f1"] for r in select(rows, point["where"])] for point in spec["points"]}
    counts = [len(f1) for f1 in chosen.values()]
    assert counts == [1, 2, 2, 2, 2, 2, 1, 3, 3]
    assert round(statistics.mean(chosen["distilled + hidden, 10 epochs"]), 2) == 55.72
    assert round(statistics.mean(chosen["CPU: distilled + hidden, two stages (2 + 3 epochs)"]), 2) == 57.27
    assert round(statistics.mean(chosen["CPU: the same, 2 + 8 epochs"]), 2) == 57.19


def test_the_report_writes_the_figure(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "t.png"
    code = subprocess.run(
        [sys.executable, "-m", "experiments.table2.report", *map(str, FILES), "--plot", str(out), "--markdown", str(tmp_path / "t.md")],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    assert code.returncode == 0, code.stderr
    assert out.read_bytes()[:4] == b"\x89PNG" and (tmp_path / "t.md").read_text() == document(FILES)


def test_bad_results_files_exit_2_with_one_line(tmp_path):
    torn = tmp_path / "torn.jsonl"
    good = (DOCS / "table2-cpu-staged10.jsonl").read_text().splitlines()
    torn.write_text(good[0] + "\n{not json\n" + good[1] + "\n")
    nothing = tmp_path / "figure.yaml"
    spec = (TABLE2 / "figure.yaml").read_text()
    nothing.write_text(
        spec.replace("where: {<<: *cpu_two_stages, epochs: 10}", "where: {<<: *cpu_two_stages, epochs: 11}")
    )
    cases = [
        ([str(tmp_path / "missing.jsonl")], "missing.jsonl: cannot read it"),
        ([str(torn)], "torn.jsonl: line 2 is not JSON"),
        (
            [*map(str, FILES), "--plot", str(tmp_path / "x.png"), "--figure", str(nothing)],
            "no row has the settings of",
        ),
    ]
    for argv, message in cases:
        run = subprocess.run(
            [sys.executable, "-m", "experiments.table2.report", *argv],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        assert run.returncode == 2 and run.stderr.count("\n") == 1 and message in run.stderr, run.stderr
    # a torn last line (a run killed while writing it) is skipped
    torn.write_text(good[0] + "\n" + good[1] + '\n{"row": ')
    assert len(load_rows(torn)) == 2
    assert json.loads(good[0])["f1"] == load_rows(torn)[0]["f1"]
