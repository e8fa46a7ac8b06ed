from __future__ import annotations

import os
from pathlib import Path

from distilqa.infra.cards import is_secret_key, public_path, public_value, write_model_card
from distilqa.infra.hardware import hardware_description

HOME = str(Path.home())


def _card(folder: Path, **overrides) -> str:
    arguments = {
        "title": "Tiny student",
        "base_models": {
            "teacher": "distilbert-base-uncased-distilled-squad",
            "student init": f"{HOME}/runs/init",
        },
        "data": {"train": f"{HOME}/data/train.json", "hub_token": "hf_abcdefghijklmnopqrstuvwxyz123456"},
        "hyperparameters": {"learning_rate": 3e-5, "epochs": 2, "hub_token": "hf_secret", "db_password": "x"},
        "metrics": {
            "eval_data": "SQuAD v1.1 dev subset",
            "exact_match": 71.25,
            "f1": 80.5,
            "num_questions": 400,
        },
        "speed": {"questions_per_second": 123.4},
        "hardware": "Test CPU (4 cores)",
        "notes": ["made for a test"],
    }
    arguments.update(overrides)
    return write_model_card(folder, **arguments).read_text(encoding="utf-8")


def test_card_holds_the_sections_and_numbers(tiny_bert_copy):
    text = _card(tiny_bert_copy)
    assert text.startswith("---\nlibrary_name: transformers\npipeline_tag: question-answering\n")
    assert "- knowledge-distillation" in text
    assert 'base_model: "distilbert-base-uncased-distilled-squad"' in text
    for heading in (
        "Base models",
        "Training data",
        "Hyperparameters",
        "Results",
        "Speed and size",
        "How to use",
        "Limitations",
    ):
        assert f"## {heading}" in text
    assert "| this model | 71.25 | 80.5 | 400 | SQuAD v1.1 dev subset |" in text
    assert "| questions / s | 123.4 |" in text and "Measured on: Test CPU (4 cores)." in text
    assert "| parameters |" in text and "size on disk (MB)" in text  # read from the folder
    assert "QAPredictor.from_pretrained(" in text and "distilqa predict --model" in text
    assert "made for a test" in text and "| learning_rate | 3e-05 |" in text


def test_card_has_no_home_paths_or_secrets(tiny_bert_copy):
    text = _card(tiny_bert_copy)
    assert HOME + "/" not in text
    assert "~/runs/init" in text and "~/data/train.json" in text
    assert "hf_secret" not in text and "hf_abcdef" not in text and "password" not in text


def test_card_without_results_or_hub_base_model(tmp_path):
    (tmp_path / "config.json").write_text(
        '{"model_type": "bert", "num_hidden_layers": 3, "hidden_size": 384}'
    )
    text = _card(tmp_path, base_models={"teacher": str(tmp_path)}, metrics=None, speed=None, hardware=None)
    assert "base_model:" not in text
    assert "Not evaluated yet." in text and "Speed not measured yet" in text
    assert "(bert, 3 layers, hidden size 384)" in text


def test_card_with_several_result_rows(tmp_path):
    metrics = {
        "eval_data": "dev.json",
        "teacher": {"exact_match": 80.0, "f1": 88.0},
        "student": {"exact": 75.0, "f1": 84.0},
    }
    text = _card(tmp_path, metrics=metrics)
    assert "| teacher | 80 | 88 |" in text and "| student | 75 | 84 |" in text and "on dev.json" in text


def test_public_path_rewrites_home_and_working_folder(tmp_path):
    assert public_path(Path.home() / "runs" / "teacher") == "~/runs/teacher"
    assert public_path(os.path.join(os.getcwd(), "runs", "x")) == os.path.join("runs", "x")
    assert public_path("bert-base-uncased") == "bert-base-uncased"
    assert public_path("runs/teacher") == "runs/teacher"
    assert public_path(f"trained from {HOME}/data/train.json") == "trained from ~/data/train.json"
    assert public_path("token hf_abcdefghijklmnopqrstuvwxyz") == "token <redacted>"


def test_public_value_drops_secret_keys():
    value = {
        "hub_token": "x",
        "token": "y",
        "HF_TOKEN": "z",
        "api_key": "k",
        "tokenizer": "t",
        "nested": [{"password": 1, "lr": 2}],
    }
    assert public_value(value) == {"tokenizer": "t", "nested": [{"lr": 2}]}
    assert not is_secret_key("max_tokens") and is_secret_key("push_to_hub_token")


def test_hardware_description_names_cpu_and_cores():
    text = hardware_description()
    assert "cores)" in text and text.strip() == text


def test_card_takes_the_eval_data_from_data_and_disk_mb_as_size(tmp_path):
    text = _card(
        tmp_path,
        data={"train": "train.json", "eval": "dev.json"},
        metrics={"exact_match": 70.0, "f1": 80.0},
        speed={"questions_per_second": 10.0, "disk_mb": 1.5},
    )
    assert "on dev.json" in text and "| size on disk (MB) | 1.5 |" in text and "disk_mb" not in text


def test_card_says_what_it_was_trained_on_and_prints_enums_as_values(tiny_bert_copy):
    from transformers.trainer_utils import SchedulerType

    demo = _card(
        tiny_bert_copy,
        data={"train": "distilqa built-in demo train set (original text, 311 questions)"},
        hyperparameters={"lr_scheduler_type": SchedulerType.LINEAR},
        metrics={"exact_match": 1.0, "f1": 2.0},
    )
    assert "Wikipedia" not in demo  # a demo model is not a SQuAD model
    assert "Trained on distilqa built-in demo train set (original text, 311 questions) only" in demo
    assert "| lr_scheduler_type | linear |" in demo and "SchedulerType" not in demo
    assert "| this model | 1 | 2 | not recorded |" in demo  # no empty questions cell
    squad = _card(tiny_bert_copy, data={"train": "squad-v1.1-subset/train.json"})
    assert "SQuAD-style questions about English Wikipedia" in squad
    assert "| 400 |" in squad
