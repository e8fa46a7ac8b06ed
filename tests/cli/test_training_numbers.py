"""Every number of ``train`` / ``distill`` is checked: NaN, infinity and values below what the option means are
one line naming the option, exit code 2, before any work (flag or config file); the same for library users."""

from __future__ import annotations

import dataclasses
import math
import re

import pytest

from conftest import squad_file
from distilqa.cli import main
from distilqa.distill.config import DistillationConfig
from distilqa.errors import InputError
from distilqa.qa.config import QuestionAnsweringConfig


def argv(command: str, model, out) -> list[str]:
    models = (
        ["--model_name_or_path", str(model)]
        if command == "train"
        else ["--teacher", str(model), "--student", str(model)]
    )
    return [command, *models, "--train_file", str(squad_file("train.json")), "--output_dir", str(out),
            "--max_steps", "1", "--use_cpu", "true", "--report_to", "none"]  # fmt: skip


CASES = [("learning_rate", "-0.001"), ("num_train_epochs", "-1"), ("per_device_train_batch_size", "0"),
         ("gradient_accumulation_steps", "0"), ("save_steps", "0"), ("logging_steps", "-5"), ("max_steps", "-2"),
         ("warmup_steps", "-1"), ("seed", "-1"), ("weight_decay", "nan"), ("max_grad_norm", "inf"),
         ("null_threshold", "inf"), ("adam_beta1", "1.5"), ("dataloader_num_workers", "-1"), ("doc_stride", "0")]  # fmt: skip


@pytest.mark.parametrize("command", ["train", "distill"])
@pytest.mark.parametrize("option, value", CASES)
def test_a_meaningless_training_number_is_refused(command, option, value, tiny_bert_path, tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*argv(command, tiny_bert_path, out), f"--{option}", value]) == 2
    err = capsys.readouterr().err.strip()
    # the parser's own check ("distilqa train: error: ...") or the config's ("distilqa: error: ...")
    assert len(err.splitlines()) == 1 and re.match(rf"distilqa( {command})?: error: ", err), err
    assert option in err and (value.lstrip("-") in err), err
    assert not out.exists()


def test_a_meaningless_number_in_a_config_file_is_refused(tiny_bert_path, tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("gradient_accumulation_steps: 0\n")
    out = tmp_path / "run"
    words = argv("train", tiny_bert_path, out)
    assert main([words[0], str(config), *words[1:]]) == 2
    err = capsys.readouterr().err.strip()
    assert "gradient_accumulation_steps must be >= 1, got 0" in err and len(err.splitlines()) == 1
    assert not out.exists()


def _is_number(annotation) -> bool:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    return text.replace("typing.", "") in {
        "float",
        "int",
        "float | None",
        "int | None",
        "Optional[float]",
        "Optional[int]",
    }


NUMBER_FIELDS = [f.name for f in dataclasses.fields(DistillationConfig) if _is_number(f.type)]


def test_every_number_field_is_found():
    assert {"temperature", "alpha_ce", "learning_rate", "max_steps", "seed", "null_threshold"} <= set(
        NUMBER_FIELDS
    )
    assert len(NUMBER_FIELDS) > 30


@pytest.mark.parametrize("name", NUMBER_FIELDS)
@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_no_number_of_the_configs_takes_nan_or_infinity(name, value, tmp_path):
    for config in (QuestionAnsweringConfig, DistillationConfig):
        if name not in {f.name for f in dataclasses.fields(config)}:
            continue
        with pytest.raises(InputError, match=rf"^{name} must be a finite number, got {value}"):
            config(output_dir=str(tmp_path / "out"), use_cpu=True, **{name: value})
