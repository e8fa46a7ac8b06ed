"""experiments/table2/run.py: bad input, the plan, and a tiny study end to end (tiny BERT, the demo's data)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.table2 import run
from experiments.table2.settings import settings_hash

pytestmark = pytest.mark.experiments
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["no-such-study"], "no study 'no-such-study': name a file or one of "),
        (["staged", "--set", "tempreature=2"], "staged.yaml: rows[1] (alone): unknown setting 'tempreature'"),
        (
            ["staged", "--set", "epochs=2"],
            "staged.yaml: rows[2] (staged-hidden): stage1_epochs 2: the first stage",
        ),
        (["staged", "--set", "device"], "--set 'device': write KEY=VALUE"),
        (["staged", "--where", "=1"], "--where '=1': write KEY=VALUE"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, argv, message):
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "experiments.table2.run", *argv, "--output", str(out)], cwd=REPO, capture_output=True, text=True
    )  # fmt: skip
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert not out.exists()  # nothing made


def test_an_output_folder_of_another_tool_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.jsonl").write_text(json.dumps({"row": "alone-seed1", "f1": 50.0}) + "\n")
    result = subprocess.run(
        [sys.executable, "-m", "experiments.table2.run", "staged", "--output", str(out)], cwd=REPO, capture_output=True, text=True
    )  # fmt: skip
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "results.jsonl: row 1 has no hash: not a results file of this runner" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["results.jsonl"]  # nothing added


def test_the_plan_lists_the_rows_and_runs_nothing(tmp_path, capsys):
    assert run.main(["staged", "--output", str(tmp_path / "out"), "--plan", "--where", "seed=2"]) == 0
    text = capsys.readouterr().out
    assert "\n11 rows;" in text and text.count("| staged-hidden |") == 3 and not (tmp_path / "out").exists()


def tiny_study(tmp_path: Path, model: Path, extra: tuple = ()) -> Path:
    """Every kind of row on 8 questions of the demo's data, from a tiny 2-layer BERT teacher (and ``extra``)."""
    study = {
        "description": "tiny",
        "settings": {
            "data": "src/distilqa/demo/data", "limit_train": 8, "limit_dev": 4, "max_seq_length": 128, "doc_stride": 32,
            "student_layers": [0], "epochs": 1, "teacher": {"model": str(model), "epochs": 1},
        },
        "rows": [
            {"name": "alone", "kind": "alone"},
            {"name": "distilled", "kind": "distilled"},
            {"name": "hidden", "kind": "distilled", "alpha_hidden": 10},
            {"name": "attention", "kind": "distilled", "alpha_attention": 1, "attention_relation_heads": 4},
            {"name": "augmented-hidden", "kind": "distilled", "alpha_hidden": 10, "augment_copies": 2},
            {"name": "staged-hidden", "kind": "distilled", "alpha_hidden": 10, "stage1_epochs": 0.5},
            {"name": "staged", "kind": "distilled", "stage1_epochs": 0.5},
            {"name": "both-stages-augmented", "kind": "distilled", "alpha_hidden": 10, "stage1_epochs": 0.5,
             "augment_copies": 2, "stage1_augment_copies": 2, "augment_min_probability": 0.2},
            {"name": "pretrained", "kind": "alone", "init": "pretrained"},
            *extra,
        ],
    }  # fmt: skip
    path = tmp_path / "tiny.yaml"
    path.write_text(json.dumps(study))  # JSON is YAML
    return path


def results(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_a_tiny_study_end_to_end(tmp_path, tiny_bert_path, capsys):
    trimmed = (
        {"name": "trimmed-alone", "kind": "alone", "student_vocab": "train"},
        {"name": "trimmed", "kind": "distilled", "student_vocab": "train", "student_vocab_size": 50},
    )
    study, out = tiny_study(tmp_path, tiny_bert_path, trimmed), tmp_path / "out"
    assert run.main([str(study), "--output", str(out)]) == 0
    rows = {row["name"]: row for row in results(out)}
    assert len(results(out)) == len(rows) == 12  # the teacher, made for its students, is a row of its own
    assert all(row["hash"] == settings_hash(row["settings"]) for row in rows.values())
    assert all(
        {"exact_match", "f1", "params", "questions_per_s", "train_s", "hardware"} <= set(r)
        for r in rows.values()
    )
    teacher = rows["teacher"]["settings"]
    assert all(row["settings"].get("teacher", teacher) == teacher for row in rows.values())
    # the variants: one file from the teacher (8 questions + at most 2 variants each), one filtered from it
    variants = sorted((out / "variants").glob("*.json"), key=lambda p: p.stat().st_size)
    assert len(variants) == 2
    questions = [
        sum(len(p["qas"]) for a in json.loads(v.read_text())["data"] for p in a["paragraphs"])
        for v in variants
    ]
    assert 8 < questions[1] <= 24 and 8 <= questions[0] <= questions[1]
    assert rows["augmented-hidden"]["train_questions_ratio"] == round(questions[1] / 8, 3)
    # the two stages: one first stage shared by the two rows on the original questions, one on the variants
    stages = [json.loads(p.read_text())["settings"] for p in (out / "runs").glob("*/stage1.json")]
    assert sorted(s["augment_copies"] for s in stages) == [0, 2] and all(s["epochs"] == 0.5 for s in stages)
    second = json.loads((out / "runs" / rows["staged"]["hash"] / "model" / "config.json").read_text())
    assert second["num_hidden_layers"] == 1
    # trimmed vocabularies: smaller embeddings, the teacher's logits cached apart (projected onto their windows)
    vocab = {name: json.loads((out / "runs" / rows[name]["hash"] / "model" / "config.json").read_text())["vocab_size"]
             for name in ("alone", "trimmed-alone", "trimmed")}  # fmt: skip
    assert vocab["trimmed"] < vocab["trimmed-alone"] < vocab["alone"]
    assert rows["trimmed"]["params"] < rows["trimmed-alone"]["params"] < rows["alone"]["params"]
    assert "student_vocab" not in rows["alone"]["settings"]  # rows from before trimming keep their hashes
    assert len(list((out / "caches").iterdir())) == 2
    summary = (out / "summary.md").read_text()
    assert summary.count("\n| ") == 13  # header + 12 lines
    assert "| student_vocab |" in summary and "| alone | teacher |" in summary  # full and trimmed told apart
    capsys.readouterr()

    # the same study again: every row is found by its hash, nothing is trained
    assert run.main([str(study), "--output", str(out)]) == 0
    assert len(results(out)) == 12 and "[table2]" not in capsys.readouterr().out
    # another student learning rate: new student rows, the same teacher (its settings did not change)
    assert (
        run.main([str(study), "--output", str(out), "--set", "learning_rate=3e-4", "--where", "kind=alone"])
        == 0
    )
    again = results(out)
    assert len(again) == 15 and [r["name"] for r in again[12:]] == ["alone", "pretrained", "trimmed-alone"]
    assert all(r["settings"]["learning_rate"] == 3e-4 for r in again[12:])


@pytest.mark.slow
def test_workers_share_what_rows_share(tmp_path, tiny_bert_path):
    """--jobs 2: each row once, the teacher and the first stage made once, the same rows as one process makes."""
    study, out = tiny_study(tmp_path, tiny_bert_path), tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "experiments.table2.run",
        str(study),
        "--output",
        str(out),
        "--jobs",
        "2",
    ]
    done = subprocess.run([*command, "--where", "kind=distilled", "--where", "augment_copies=0"], cwd=REPO, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    hashes = [row["hash"] for row in results(out)]
    assert (
        len(hashes) == len(set(hashes)) == 6
    )  # the teacher, distilled, hidden, attention, the two staged rows
    assert len(list((out / "runs").glob("*/stage1.json"))) == 1


class Interrupted(BaseException):
    """A kill in the middle of training."""


@pytest.mark.slow
def test_an_interrupted_row_resumes_from_its_checkpoint(tmp_path, tiny_bert_path, monkeypatch, capsys):
    from distilqa.qa.trainer import QuestionAnsweringTrainer

    study = tmp_path / "teacher.yaml"
    study.write_text(json.dumps({
        "rows": [{"kind": "teacher"}],
        "settings": {"data": "src/distilqa/demo/data", "limit_train": 40, "limit_dev": 4, "max_seq_length": 128,
                     "doc_stride": 32, "batch_size": 8, "teacher": {"model": str(tiny_bert_path), "epochs": 1}},
    }))  # fmt: skip
    argv = [str(study), "--output", str(tmp_path / "out"), "--checkpoint-steps", "1"]
    save, steps = QuestionAnsweringTrainer._save_checkpoint, []

    def save_then_die(self, model, trial):
        save(self, model, trial)
        steps.append(self.state.global_step)
        if self.state.global_step == 2:
            raise Interrupted

    monkeypatch.setattr(QuestionAnsweringTrainer, "_save_checkpoint", save_then_die)
    with pytest.raises(Interrupted):
        run.main(argv)
    (folder,) = (tmp_path / "out" / "runs").iterdir()
    assert [p.name for p in folder.glob("checkpoint-*")] == ["checkpoint-2"]  # the newest kept
    assert not (tmp_path / "out" / "results.jsonl").exists()

    def save_and_count(self, model, trial):
        steps.append(self.state.global_step)
        save(self, model, trial)

    monkeypatch.setattr(QuestionAnsweringTrainer, "_save_checkpoint", save_and_count)
    assert run.main(argv) == 0  # its folder is named by its settings: the checkpoint there is its own
    assert "Resuming from" in capsys.readouterr().out
    (row,) = results(tmp_path / "out")
    assert row["hash"] == folder.name and row["resumed_from_step"] == 2 and steps[:3] == [1, 2, 3]
    assert row["train_s"] >= row["train_s_measured"] > 0 and not list(folder.glob("checkpoint-*"))
