"""experiments/squad2/run.py: row names and the table pooled over seeds (no training here)."""

from __future__ import annotations

import pytest

from experiments.squad2.run import COLUMNS, distilled_name, parse_args, summary

pytestmark = pytest.mark.experiments


def test_distilled_row_names_carry_the_window_weight_only_when_set():
    assert distilled_name(0.0, 1.0, 1) == "distilled-null0-seed1"
    assert distilled_name(1.0, 1.0, 2) == "distilled-null1-seed2"
    assert distilled_name(0.0, 0.25, 2) == "distilled-null0-w0.25-seed2"
    assert parse_args(["--data", "D", "--output", "O"]).null_window_weight == 1.0


def test_a_negative_window_weight_is_refused_before_anything_runs(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--data", "D", "--output", "O", "--null-window-weight", "-0.5"])
    assert exit_info.value.code == 2
    assert "--null-window-weight must be >= 0, got -0.5" in capsys.readouterr().err


def row(name: str, f1: float) -> dict:
    split = {key: f1 for _, key, _ in COLUMNS} | {"answered": 0.5}
    return {"name": name, "a": dict(split), "b": dict(split, best_f1=f1 + 1.0)}


def test_summary_pools_the_seeds_of_a_row_with_mean_and_spread():
    table = summary([row("teacher", 78.0), row("distilled-null0-w0.25-seed1", 70.0),
                     row("distilled-null0-w0.25-seed2", 72.0), row("distilled-null0-seed1", 71.0)])  # fmt: skip
    lines = table.splitlines()
    assert lines[0].startswith("| row | seeds | A EM | A F1 |")
    by_row = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in lines[2:]}
    assert set(by_row) == {"teacher", "distilled-null0-w0.25", "distilled-null0"}
    assert by_row["distilled-null0-w0.25"][1] == "2"
    assert by_row["distilled-null0-w0.25"][3] == "71.00 ± 1.41"  # A F1: mean of 70 and 72, sd sqrt(2)
    assert by_row["distilled-null0-w0.25"][6] == "50.00 ± 0.00"  # the answered share in percent
    assert by_row["teacher"][-1] == "1.00 |"  # B best F1 - B F1, one seed: no spread
