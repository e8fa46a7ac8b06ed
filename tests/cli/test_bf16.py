"""bf16 training on the CPU: the fine-tuning and the cached distillation both run and save a loadable model."""

from __future__ import annotations

import json

import pytest

import distilqa.infra.precision as precision
from conftest import squad_file
from distilqa.cli import main

COMMON = [
    "--max_seq_length", "96", "--doc_stride", "32", "--max_query_length", "24", "--max_steps", "2",
    "--per_device_train_batch_size", "4", "--save_strategy", "no", "--disable_tqdm", "true",
    "--report_to", "none", "--use_cpu", "true", "--bf16", "true",
    "--train_file", str(squad_file("train.json")), "--max_train_samples", "8",
]  # fmt: skip


def test_bf16_train_and_cached_distill(monkeypatch, tiny_bert_path, tmp_path):
    if not precision.cpu_has_native_bf16():
        monkeypatch.setattr(
            precision, "cpu_has_native_bf16", lambda: True
        )  # emulated here: slower, same path
    assert main(["train", "--model_name_or_path", str(tiny_bert_path), "--output_dir", str(tmp_path / "t"), *COMMON]) == 0  # fmt: skip
    assert main(["distill", "--teacher", str(tiny_bert_path), "--student", str(tiny_bert_path), "--output_dir",
                 str(tmp_path / "s"), "--teacher_cache", str(tmp_path / "cache"), *COMMON]) == 0  # fmt: skip
    for run in ("t", "s"):
        summary = json.loads((tmp_path / run / "metrics.json").read_text())
        assert summary["parameters"] > 0
        assert (tmp_path / run / "model" / "model.safetensors").exists()


def test_bf16_is_refused_without_native_support(monkeypatch, tiny_bert_path, tmp_path, capsys):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    code = main(
        ["train", "--model_name_or_path", str(tiny_bert_path), "--output_dir", str(tmp_path / "t"), *COMMON]
    )
    assert code == 2
    assert "--force_bf16" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()


pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
