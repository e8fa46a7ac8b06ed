"""benchmarks/table2_cpu.py end to end on a few questions: every row kind, and a rerun recomputes nothing."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import benchmark_module, shared_file

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "table2_cpu.py"


@pytest.mark.slow
def test_table2_rows_and_resume(tmp_path):
    cmd = [
        sys.executable, str(SCRIPT), "--output", str(tmp_path), "--train", str(shared_file("train.json")),
        "--dev", str(shared_file("dev.json")), "--limit-train", "12", "--limit-dev", "8", "--seeds", "1",
        "--inits", "teacher", "--teacher-epochs", "1", "--student-epochs", "1", "--max-seq-length", "128",
        "--doc-stride", "32", "--grid", "4:0.9", "--kinds", "alone", "distilled", "hidden", "augmented", "augmented-hidden", "attention",
        "staged", "staged-hidden", "augmented-staged-hidden", "--augment-copies", "2", "--stage1-epochs", "0.5",
    ]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True)
    rows = {
        json.loads(line)["row"]: json.loads(line)
        for line in (tmp_path / "results.jsonl").read_text().splitlines()
    }
    assert set(rows) == {
        "teacher", "alone/init=teacher/seed=1", "distilled/init=teacher/seed=1/T=2/ace=0.5",
        "distilled/init=teacher/seed=1/T=2/ace=0.5/ah=10", "distilled/init=teacher/seed=1/T=4/ace=0.9",
        "distilled/init=teacher/seed=1/T=2/ace=0.5/aug=2", "distilled/init=teacher/seed=1/T=2/ace=0.5/ah=10/aug=2",
        "distilled/init=teacher/seed=1/T=2/ace=0.5/aa=1", "distilled/init=teacher/seed=1/T=2/ace=0.5/stage1=0.5",
        "distilled/init=teacher/seed=1/T=2/ace=0.5/ah=10/stage1=0.5",
        "distilled/init=teacher/seed=1/T=2/ace=0.5/ah=10/aug=2/stage1=0.5",
    }  # fmt: skip
    hidden = rows["distilled/init=teacher/seed=1/T=2/ace=0.5/ah=10"]
    assert hidden["alpha_hidden"] == 10.0 and hidden["kind"] == "distilled" and hidden["layers"] == 3
    attention = rows["distilled/init=teacher/seed=1/T=2/ace=0.5/aa=1"]
    assert attention["alpha_attention"] == 1.0 and attention["alpha_hidden"] == 0.0
    augmented = rows["distilled/init=teacher/seed=1/T=2/ace=0.5/ah=10/aug=2"]
    assert augmented["augment_copies"] == 2 and augmented["alpha_hidden"] == 10.0
    # 12 questions + at most 2 variants each, trained for the same number of steps: 1 epoch / ratio
    written = json.loads((tmp_path / "train-aug2.json").read_text())
    questions = sum(len(p["qas"]) for a in written["data"] for p in a["paragraphs"])
    assert 12 < questions <= 36 and augmented["train_questions_ratio"] == round(questions / 12, 3)
    assert augmented["epochs"] == pytest.approx(12 / questions, abs=1e-3)
    # the two staged rows share one first stage (hidden states only) and start their second stage from it
    staged = rows["distilled/init=teacher/seed=1/T=2/ace=0.5/ah=10/stage1=0.5"]
    assert staged["stage1_epochs"] == 0.5 and staged["epochs"] == 1.0 and staged["alpha_hidden"] == 10.0
    assert rows["distilled/init=teacher/seed=1/T=2/ace=0.5/stage1=0.5"]["alpha_hidden"] == 0.0
    (first,) = tmp_path.glob("stage1_*")
    stage1 = json.loads((first / "stage1.json").read_text())["settings"]
    assert stage1["config"]["alpha_ce"] == stage1["config"]["alpha_squad"] == 0.0
    assert stage1["config"]["alpha_hidden"] == 10.0 and stage1["config"]["num_train_epochs"] == 0.5
    second = json.loads(
        (tmp_path / "distilled_initteacher_seed1_T2_ace0.5_stage10.5" / "row-settings.json").read_text()
    )
    assert second["models"]["student"] == str(first / "model") and second["config"]["num_train_epochs"] == 0.5
    # both levers: the same first stage, then the rest of the row's steps over originals + variants
    both = rows["distilled/init=teacher/seed=1/T=2/ace=0.5/ah=10/aug=2/stage1=0.5"]
    assert both["stage1_epochs"] == 0.5 and both["epochs"] == pytest.approx(0.5 * 12 / questions, abs=1e-3)
    settings = json.loads(
        (
            tmp_path / "distilled_initteacher_seed1_T2_ace0.5_ah10_aug2_stage10.5" / "row-settings.json"
        ).read_text()
    )
    assert settings["models"]["student"] == str(first / "model")
    assert settings["data"]["train_file"] == str(tmp_path / "train-aug2.json")
    assert all({"exact_match", "f1", "params", "questions_per_s", "train_s"} <= set(r) for r in rows.values())
    assert (tmp_path / "table2.md").read_text().count("\n| ") >= 5
    lines = (tmp_path / "results.jsonl").read_text().count("\n")
    subprocess.run(cmd, check=True, capture_output=True)
    assert (tmp_path / "results.jsonl").read_text().count("\n") == lines  # finished rows are not recomputed
    # another folder with this one's teacher reuses its first stage instead of making one
    other = tmp_path / "other"
    again = [*cmd[:3], str(other), *cmd[4:cmd.index("--kinds")], "--kinds", "staged-hidden", "--stage1-epochs", "0.5",
             "--rows", "main", "--teacher", str(tmp_path / "teacher" / "model"), "--stage1-from", str(tmp_path)]  # fmt: skip
    run = subprocess.run(again, check=True, capture_output=True, text=True)
    assert "the first stage of" in run.stdout and not list(other.glob("stage1_*"))
    reused = json.loads((other / "results.jsonl").read_text().splitlines()[-1])
    assert reused["row"] == "distilled/init=teacher/seed=1/T=2/ace=0.5/ah=10/stage1=0.5"
    # the same start, the same row
    assert reused["stage1_from"] == str(first) and reused["f1"] == staged["f1"]
    # TinyBERT's augmentation in both stages: the first stage, too, makes its steps over originals + variants
    both_stages = tmp_path / "both"
    again[again.index(str(other))] = str(both_stages)
    subprocess.run([*again, "--stage1-augmented", "--augment-copies", "2", "--augment-dir", str(tmp_path)], check=True, capture_output=True)  # fmt: skip
    (first_aug,) = both_stages.glob("stage1_*")
    stage1 = json.loads((first_aug / "stage1.json").read_text())["settings"]
    assert first_aug.name.endswith("_aug2")
    assert stage1["data"]["train_file"] == str(tmp_path / "train-aug2.json")
    assert stage1["config"]["num_train_epochs"] == pytest.approx(0.5 * 12 / questions)
    row = json.loads((both_stages / "results.jsonl").read_text().splitlines()[-1])
    assert row["row"].endswith("/stage1=0.5/stage1aug=2") and row["stage1_augment_copies"] == 2
    assert "stage1_from" not in row and not (both_stages / "train-aug2.json").exists()
    # the variants the teacher is less sure of dropped (distilqa augment --min-probability): a file of its own,
    # filtered from the full one, fewer passes' worth of questions, the same steps
    cut = sorted(
        qa["teacher_probability"]
        for a in written["data"]
        for p in a["paragraphs"]
        for qa in p["qas"]
        if "augmented_from" in qa
    )[(questions - 12) // 2]
    filtered = tmp_path / "filtered"
    again[again.index(str(both_stages))] = str(filtered)
    again[again.index("staged-hidden")] = "augmented-staged-hidden"
    subprocess.run([*again, "--augment-copies", "2", "--augment-dir", str(tmp_path), "--augment-min-probability", str(cut)], check=True, capture_output=True)  # fmt: skip
    kept = json.loads((tmp_path / f"train-aug2-p{cut:g}.json").read_text())
    kept_questions = sum(len(p["qas"]) for a in kept["data"] for p in a["paragraphs"])
    assert 12 < kept_questions < questions
    row = json.loads((filtered / "results.jsonl").read_text().splitlines()[-1])
    assert row["row"].endswith(f"/aug=2/minp={cut:g}/stage1=0.5") and row["augment_min_probability"] == cut
    assert row["train_questions_ratio"] == round(kept_questions / 12, 3)
    assert row["epochs"] == pytest.approx(0.5 * 12 / kept_questions, abs=1e-3)


def _table2_module():
    return benchmark_module("table2_cpu")


class Interrupted(Exception):
    pass


@pytest.mark.slow
def test_an_interrupted_row_resumes_from_its_checkpoint(tmp_path, monkeypatch, capsys):
    """A row killed half-way starts again from its newest complete checkpoint when its settings are unchanged
    (and from scratch when they changed); no checkpoint is left once it is recorded."""
    from distilqa.qa.trainer import QuestionAnsweringTrainer

    table2 = _table2_module()
    argv = [
        "--output", str(tmp_path), "--train", str(shared_file("train.json")), "--dev", str(shared_file("dev.json")),
        "--limit-train", "12", "--limit-dev", "4", "--rows", "teacher", "--teacher-epochs", "2",
        "--max-seq-length", "128", "--doc-stride", "32", "--checkpoint-steps", "1",
    ]  # fmt: skip
    save, steps_run = QuestionAnsweringTrainer._save_checkpoint, []

    def save_then_die(self, model, trial):
        save(self, model, trial)
        steps_run.append(self.state.global_step)
        if self.state.global_step == 2:
            raise Interrupted

    monkeypatch.setattr(QuestionAnsweringTrainer, "_save_checkpoint", save_then_die)
    with pytest.raises(Interrupted):
        table2.main(argv)
    # newest kept only
    assert [p.name for p in (tmp_path / "teacher").glob("checkpoint-*")] == ["checkpoint-2"]
    assert not (tmp_path / "results.jsonl").exists()

    # other settings: the checkpoint is not theirs
    with pytest.raises(Interrupted):
        table2.main([*argv, "--teacher-lr", "1e-4"])
    assert "made with other settings; starting the row again" in capsys.readouterr().out
    assert steps_run == [1, 2, 1, 2]

    # the same settings again: training goes on from step 2 to the end
    monkeypatch.setattr(
        QuestionAnsweringTrainer,
        "_save_checkpoint",
        lambda self, model, trial: steps_run.append(self.state.global_step) or save(self, model, trial),
    )
    assert table2.main([*argv, "--teacher-lr", "1e-4"]) == 0
    assert "Resuming from" in capsys.readouterr().out
    row = json.loads((tmp_path / "results.jsonl").read_text())
    assert row["row"] == "teacher" and row["resumed_from_step"] == 2 and row["learning_rate"] == 1e-4
    assert steps_run[4] == 3 and row["train_s"] > row["train_s_measured"] > 0  # no step before 3 ran again
    assert not list((tmp_path / "teacher").glob("checkpoint-*"))


def test_a_first_stage_as_long_as_the_row_is_refused(tmp_path, capsys):
    table2 = _table2_module()
    argv = ["--output", str(tmp_path), "--kinds", "staged-hidden", "--student-epochs", "2"]
    with pytest.raises(SystemExit) as exit_:
        table2.parse_args([*argv, "--stage1-epochs", "2"])
    assert exit_.value.code == 2 and "--stage1-epochs 2" in capsys.readouterr().err
    assert table2.parse_args([*argv, "--stage1-epochs", "1"]).stage1_epochs == 1.0
    # no staged row runs: the teacher alone, or the grid, may have a short student schedule
    for rows in ("teacher", "grid"):
        assert table2.parse_args([*argv, "--stage1-epochs", "2", "--rows", rows]).rows == rows
    assert table2.parse_args(
        ["--output", str(tmp_path), "--kinds", "alone", "--stage1-epochs", "9", "--student-epochs", "2"]
    )


def test_a_min_probability_outside_0_1_is_refused(tmp_path, capsys):
    table2 = _table2_module()
    with pytest.raises(SystemExit) as exit_:
        table2.parse_args(["--output", str(tmp_path), "--augment-min-probability", "1"])
    assert (
        exit_.value.code == 2 and "--augment-min-probability 1: must be in [0, 1)" in capsys.readouterr().err
    )
    assert (
        table2.parse_args(
            ["--output", str(tmp_path), "--augment-min-probability", "0.5"]
        ).augment_min_probability
        == 0.5
    )


def test_a_first_stage_of_another_folder_matches_only_with_the_same_settings(tmp_path, capsys):
    table2 = _table2_module()
    relocated = table2.relocated
    earlier, now = tmp_path / "earlier", tmp_path / "now"
    # a mistyped folder must not mean a silent first stage from scratch
    with pytest.raises(SystemExit) as exit_:
        table2.parse_args(["--output", str(now), "--stage1-from", str(earlier)])
    assert exit_.value.code == 2 and f"--stage1-from {earlier}: no such folder" in capsys.readouterr().err

    def settings(out, seed=1, teacher=str(earlier / "teacher" / "model"), student=None):
        return {"config": {"output_dir": str(out / "stage1_x"), "seed": seed}, "data": {"train_file": "train.json"},
                "models": {"teacher": teacher, "student": student or str(out / "student-init-teacher")}}  # fmt: skip

    assert relocated(settings(earlier), earlier) == relocated(settings(now), now)
    assert relocated(settings(earlier, seed=2), earlier) != relocated(settings(now), now)
    # the teacher keeps its path even inside the earlier folder: another teacher is another first stage
    assert relocated(settings(earlier), earlier)["models"]["teacher"] == str(earlier / "teacher" / "model")
    assert relocated(settings(earlier), earlier) != relocated(settings(now, teacher=str(now / "t")), now)
    # a student from outside either folder is compared as named
    assert relocated(settings(earlier, student="/s"), earlier) != relocated(settings(now), now)
    assert relocated(settings(earlier, student="/s"), earlier) == relocated(settings(now, student="/s"), now)


def test_a_folder_of_other_settings_is_refused(tmp_path, capsys):
    """Rows are keyed by name only: a rerun with another schedule or teacher must not report old rows as its own."""
    table2 = _table2_module()
    teacher = {"row": "teacher", "epochs": 2.0, "learning_rate": 2e-4, "max_seq_length": 256, "doc_stride": 96,
               "batch_size": 16}  # fmt: skip
    alone = {**teacher, "row": "alone/init=teacher/seed=1", "epochs": 5.0, "learning_rate": 1e-4}
    augmented = {**alone, "row": "distilled/x/aug=4", "epochs": 0.996, "train_questions_ratio": 5.0}
    rows = {r["row"]: r for r in (teacher, alone, augmented)}
    own = tmp_path / "teacher" / "model"

    def check(*argv):
        return table2.mismatched_row(rows, table2.parse_args(["--output", str(tmp_path), *argv]), own)

    assert check("--student-epochs", "5") is None  # 0.996 epochs over 5x the questions: the same steps
    assert check("--student-epochs", "5", "--teacher", str(own)) is None  # the folder's own teacher, named
    assert "--student-epochs 10" in check()  # the default schedule differs from the rows'
    assert "--student-lr 0.0002" in check("--student-epochs", "5", "--student-lr", "2e-4")
    assert "--teacher-lr 0.0001" in check("--student-epochs", "5", "--teacher-lr", "1e-4")
    assert "--doc-stride 128" in check("--student-epochs", "5", "--doc-stride", "128")
    assert "--teacher elsewhere" in check("--student-epochs", "5", "--teacher", "elsewhere")

    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows.values()))
    lines = (tmp_path / "results.jsonl").read_text()
    assert table2.main(["--output", str(tmp_path), "--student-lr", "3e-4", "--student-epochs", "5"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "results.jsonl" in err and "--student-lr 0.0003" in err
    assert (tmp_path / "results.jsonl").read_text() == lines  # nothing touched
