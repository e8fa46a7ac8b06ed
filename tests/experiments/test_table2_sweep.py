"""benchmarks/table2_sweep.py without running its jobs: the jobs a study plans, and its summary table."""

import json

import pytest

from conftest import benchmark_module


@pytest.mark.parametrize("smoke", [False, True])
def test_staged_study_plans_valid_table2_jobs(tmp_path, monkeypatch, smoke):
    sweep_module, table2 = benchmark_module("table2_sweep"), benchmark_module("table2_cpu")
    args = sweep_module.parse_args(
        ["--output", str(tmp_path), "--study", "staged", *(["--smoke"] if smoke else [])]
    )
    sweep = sweep_module.Sweep(args)
    planned = {}
    monkeypatch.setattr(sweep, "job", lambda name, settings, extra: planned.setdefault(name, extra) and [])
    # what the teacher job and the variant file would have left behind
    (tmp_path / "runs" / sweep_module.STUDY_TEACHER / "teacher" / "model").mkdir(parents=True)
    (tmp_path / "augmented").mkdir()
    (tmp_path / "augmented" / "train-aug4.json").write_text("{}")
    sweep_module.staged_study(sweep)

    students = {name: extra for name, extra in planned.items() if name != sweep_module.STUDY_TEACHER}
    assert len(students) == 3 * 11  # 3 seeds x (3 rows at 5 epochs' steps + 8 at 10)
    kinds = {}
    for name, extra in students.items():
        parsed = table2.parse_args(["--output", str(tmp_path / name), *extra])  # table2_cpu accepts every job
        (kind,) = parsed.kinds
        setting = (kind, parsed.student_epochs, parsed.stage1_epochs, parsed.stage1_augmented)
        kinds.setdefault(setting, set()).add(parsed.seeds[0])
        assert parsed.teacher == str(tmp_path / "runs" / sweep_module.STUDY_TEACHER / "teacher" / "model")
        assert parsed.alpha_hidden == 10.0 and parsed.augment_copies == 4
    assert all(seeds == {1, 2, 3} for seeds in kinds.values())
    if not smoke:
        assert ("staged-hidden", 5.0, 2.0, False) in kinds and ("staged-hidden", 10.0, 4.0, False) in kinds
        assert ("augmented-staged-hidden", 10.0, 2.0, False) in kinds and ("alone", 10.0, 2.0, False) in kinds
        assert ("staged-hidden", 5.0, 2.0, True) in kinds and ("staged-hidden", 10.0, 2.0, True) in kinds
    else:  # one epoch everywhere: the first stage must stay shorter than the row
        assert {(epochs, stage1) for _, epochs, stage1, _ in kinds} == {(1.0, 0.5)}


def test_summary_keeps_one_and_two_stage_rows_apart(tmp_path):
    sweep_module = benchmark_module("table2_sweep")
    common = {"phase": "s-main", "kind": "distilled", "init": "teacher", "epochs": 10, "learning_rate": 1e-4}
    common.update(temperature=2.0, alpha_ce=0.5, alpha_hidden=10.0, exact_match=40.0, train_s=1.0)
    rows = [
        {**common, "job": "s-hidden-e10-s1", "row": "r", "f1": 55.0},
        {**common, "job": "s-hidden-e10-s2", "row": "r", "f1": 56.0},
        {**common, "job": "s-staged-hidden-1st2-e10-s1", "row": "r", "f1": 58.0, "stage1_epochs": 2},
        {**common, "job": "x", "row": "r", "f1": 57.0, "stage1_epochs": 2, "stage1_augment_copies": 4},
    ]
    path = tmp_path / "sweep.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    table = sweep_module.summarise(path).splitlines()
    assert len(table) == 5  # header, rule, one line per setting
    assert "| 2 | 40.0 | 55.5 ± 0.7 |" in table[2] and "| 2 |  | 1 | 40.0 | 58.0 |" in table[3]
    # a first stage on variants is its own setting
    assert "| 2 (+4 variants) |  | 1 | 40.0 | 57.0 |" in table[4]
