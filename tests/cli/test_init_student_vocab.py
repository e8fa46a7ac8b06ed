"""``distilqa init-student --vocab-from``: a student with the training data's vocabulary, end to end."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
import torch
from transformers import AutoModelForQuestionAnswering, AutoTokenizer

from conftest import squad_file
from distilqa.cli import main
from distilqa.infra.cards import public_path

from .test_errors import run


def one_error_line(code: int, out: str, err: str) -> str:
    assert code == 2, err
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("distilqa: error: "), err
    return err.strip()


def test_vocab_from_writes_a_smaller_student_and_its_tokenizer(tiny_bert_path, tmp_path, capsys):
    out = tmp_path / "student"
    train = squad_file("train.json")
    code, printed, err = run(capsys, "init-student", "--teacher", str(tiny_bert_path), "--layers", "0",
                             "--output", str(out), "--vocab-from", str(train), "--vocab-size", "50")  # fmt: skip
    assert code == 0, err
    teacher_tokenizer = AutoTokenizer.from_pretrained(tiny_bert_path)
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForQuestionAnswering.from_pretrained(out)
    info = json.loads((out / "distilqa_student.json").read_text(encoding="utf-8"))
    assert info["vocab_from"] == [
        {"file": public_path(train), "sha256": hashlib.sha256(train.read_bytes()).hexdigest()}
    ]
    assert info["vocab_size"] == len(tokenizer) == model.config.vocab_size < len(teacher_tokenizer)
    assert info["teacher_vocab_size"] == len(teacher_tokenizer) and info["vocab_size_limit"] == 50
    assert (
        info["student_parameters"] == sum(p.numel() for p in model.parameters()) == info["parameters_after"]
    )
    assert info["embedding_parameters_after"] == model.get_input_embeddings().weight.numel()
    line = f"vocabulary: kept {len(tokenizer):,} of {len(teacher_tokenizer):,} tokens"
    assert line in printed
    assert (
        f"embedding parameters: {info['embedding_parameters_before']:,} -> {info['embedding_parameters_after']:,}"
        in printed
    )
    assert f"{info['parameters_before']:,} -> {info['parameters_after']:,}" in printed
    assert "vocabulary" in (out / "README.md").read_text(encoding="utf-8")
    # the tokenizer and the model go together: a question and context run through the model
    encoded = tokenizer("who built the lighthouse?", "the engineer built it.", return_tensors="pt")
    assert int(encoded["input_ids"].max()) < model.config.vocab_size
    with torch.no_grad():
        assert model(**encoded).start_logits.shape == encoded["input_ids"].shape


def test_without_vocab_from_the_vocabulary_is_the_teachers(tiny_bert_path, tmp_path, capsys):
    out = tmp_path / "student"
    code, printed, err = run(capsys, "init-student", "--teacher", str(tiny_bert_path), "--layers", "0",
                             "--output", str(out))  # fmt: skip
    assert code == 0, err
    assert "vocabulary" not in printed
    assert len(AutoTokenizer.from_pretrained(out)) == len(AutoTokenizer.from_pretrained(tiny_bert_path))
    assert "vocab_from" not in json.loads((out / "distilqa_student.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("content", "extra", "match"),
    [
        (None, [], "--vocab_from .*missing.json does not exist; give the SQuAD"),
        ('{"foo": 1}', [], "unknown schema"),
        ("[]", [], "holds no questions"),
        ('{"foo": 1}', ["--vocab-size", "-1"], "--vocab_size -1 is negative"),
    ],
)
def test_bad_vocab_from_is_one_line(tiny_bert_path, tmp_path, capsys, content, extra, match):
    path = tmp_path / "missing.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    out = tmp_path / "student"
    line = one_error_line(*run(capsys, "init-student", "--teacher", str(tiny_bert_path),
                          "--output", str(out), "--vocab-from", str(path), *extra))  # fmt: skip
    assert re.search(match, line), line
    assert not out.exists()


def test_vocab_size_needs_vocab_from(tiny_bert_path, tmp_path, capsys):
    line = one_error_line(*run(capsys, "init-student", "--teacher", str(tiny_bert_path),
                          "--output", str(tmp_path / "s"), "--vocab-size", "10"))  # fmt: skip
    assert "--vocab_size needs --vocab_from" in line


def test_a_trimmed_student_trains_and_evaluates_on_text_outside_its_vocabulary(
    tiny_bert_path, tmp_path, capsys
):
    from .test_train import COMMON, data_args

    student = tmp_path / "student"
    assert main(["init-student", "--teacher", str(tiny_bert_path), "--layers", "0", "--output", str(student),
                 "--vocab-from", str(squad_file("train.json")), "--vocab-size", "100"]) == 0  # fmt: skip
    out = tmp_path / "run"
    assert main(["train", "--model_name_or_path", str(student), *data_args(), "--output_dir", str(out),
                 "--max_steps", "2", "--save_strategy", "no", *COMMON]) == 0  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert "eval_f1" in json.dumps(metrics)
    kept = json.loads((student / "distilqa_student.json").read_text(encoding="utf-8"))["vocab_size"]
    assert kept == 5 + 2 * 68 + 100  # specials, "x" and "##x" for 68 characters, the 100 most frequent
    assert AutoModelForQuestionAnswering.from_pretrained(out / "model").config.vocab_size == kept
