"""Round trips of the training commands on tiny models and a slice of the shared SQuAD subset."""

from __future__ import annotations

import json

import pytest
from transformers import AutoModelForQuestionAnswering

from conftest import squad_file
from distilqa.cli import main

COMMON = [
    "--max_seq_length", "128", "--doc_stride", "32", "--max_query_length", "32",
    "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "16",
    "--learning_rate", "1e-3", "--disable_tqdm", "true", "--report_to", "none", "--use_cpu", "true",
]  # fmt: skip


def data_args(train=24, dev=12):
    return ["--train_file", str(squad_file("train.json")), "--eval_file", str(squad_file("dev.json")),
            "--max_train_samples", str(train), "--max_eval_samples", str(dev)]  # fmt: skip


def test_train_then_evaluate_then_predict(tiny_bert_path, tmp_path, capsys):
    out = tmp_path / "teacher"
    code = main(
        [
            "train",
            "--model_name_or_path",
            str(tiny_bert_path),
            *data_args(),
            "--output_dir",
            str(out),
            "--max_steps",
            "4",
            "--save_strategy",
            "no",
            *COMMON,
        ]
    )
    assert code == 0
    model_dir = out / "model"
    assert (model_dir / "model.safetensors").exists() and (model_dir / "README.md").exists()
    AutoModelForQuestionAnswering.from_pretrained(model_dir)  # reloads with the plain HF API
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["exact_match"] == round(summary["metrics"]["eval_exact_match"], 2)
    assert summary["f1"] == round(summary["metrics"]["eval_f1"], 2) and 0 <= summary["f1"] <= 100
    assert summary["parameters"] == sum(
        p.numel() for p in AutoModelForQuestionAnswering.from_pretrained(model_dir).parameters()
    )
    card = (model_dir / "README.md").read_text()
    assert f"{summary['f1']:.2f}" in card

    capsys.readouterr()
    assert main(["evaluate", "--model", str(model_dir), "--data", str(squad_file("dev.json")), "--limit", "12",
                 "--max-seq-length", "128", "--doc-stride", "32", "--max-query-length", "32", "--output-dir", str(tmp_path / "eval"), "--no-progress"]) == 0  # fmt: skip
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["f1"] == pytest.approx(summary["f1"], abs=0.01)  # the trainer's evaluation = evaluate's
    for name in ("predictions.json", "nbest_predictions.json", "metrics.json"):
        assert (tmp_path / "eval" / name).exists()

    assert main(["predict", "--model", str(model_dir), "--question", "Who built it?", "--context", "Ada built it in 1843.", "--max-seq-length", "64", "--doc-stride", "16", "--max-query-length", "16"]) == 0  # fmt: skip
    answer = json.loads(capsys.readouterr().out)
    assert {"answer", "score", "start", "end"} <= set(answer)
    assert "Ada built it in 1843."[answer["start"] : answer["end"]] == answer["answer"]


def test_distill_with_yaml_config_and_overrides(tiny_bert_path, tiny_distilbert_path, tmp_path, capsys):
    config = tmp_path / "distill.yaml"
    config.write_text(
        f"teacher: {tiny_bert_path}\nstudent: {tiny_distilbert_path}\ntemperature: 3.0\nalpha_ce: 0.7\n"
        f"learning_rate: 0.5\nmax_steps: 3\nsave_strategy: 'no'\noutput_dir: {tmp_path / 'distilled'}\n"
    )
    code = main(["distill", str(config), *data_args(), *COMMON, "--alpha_ce", "0.9"])
    assert code == 0
    summary = json.loads((tmp_path / "distilled" / "metrics.json").read_text())
    teacher = json.loads(capsys.readouterr().out.split("Teacher on the eval set:")[1].splitlines()[0])
    assert summary["metrics"]["teacher_f1"] == pytest.approx(teacher["f1"], abs=0.005)  # printed rounded
    assert summary["metrics"]["teacher_exact_match"] == pytest.approx(teacher["exact_match"], abs=0.005)
    card = (tmp_path / "distilled" / "model" / "README.md").read_text()
    assert "| alpha_ce | 0.9 |" in card and "| temperature | 3 |" in card  # CLI override; the file's value
    assert "| learning_rate | 0.001 |" in card  # learning_rate from the command line beat the file's 0.5


def test_config_file_errors(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("teacher: a\nstudent: b\nno_such_option: 1\n")
    assert main(["distill", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown key(s) no_such_option" in err
    typed = tmp_path / "typed.yaml"
    typed.write_text("teacher: a\nstudent: b\nlearning_rate: fast\n")
    assert main(["distill", str(typed)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "learning_rate" in err and "invalid float value" in err


def test_resume_continues_from_the_last_complete_checkpoint(tiny_bert_path, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--model_name_or_path", str(tiny_bert_path), *data_args(dev=4), "--output_dir", str(out), *COMMON,
            "--save_strategy", "steps", "--save_steps", "2"]  # fmt: skip
    assert main([*args, "--max_steps", "6", "--save_total_limit", "0"]) == 0
    for step in (4, 6):  # pretend the run was killed while saving step 4 (a later save would not exist)
        (out / f"checkpoint-{step}" / "distilqa_complete.json").unlink()
    capsys.readouterr()
    assert main([*args, "--max_steps", "6", "--resume"]) == 0
    assert f"Resuming from {out / 'checkpoint-2'}" in capsys.readouterr().out
    state = json.loads((out / "checkpoint-6" / "trainer_state.json").read_text())
    assert state["global_step"] == 6


def test_init_student_then_distill(tiny_bert_path, tmp_path):
    student = tmp_path / "student"
    assert (
        main(["init-student", "--teacher", str(tiny_bert_path), "--layers", "0", "--output", str(student)])
        == 0
    )
    out = tmp_path / "distilled"
    assert main(["distill", "--teacher", str(tiny_bert_path), "--student", str(student), *data_args(), "--output_dir", str(out), "--max_steps", "2", "--save_strategy", "no", *COMMON]) == 0  # fmt: skip
    AutoModelForQuestionAnswering.from_pretrained(out / "model")
