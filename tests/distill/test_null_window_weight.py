"""``null_window_weight``: the weight in the gold-span cross-entropy of windows labelled with the null position
although their question has an answer in another window. Hand-computed weighted CE, the column, the option."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import v2_squad_file
from distilqa.cli import main
from distilqa.distill.config import DistillationConfig
from distilqa.distill.losses import distillation_loss, span_cross_entropy
from distilqa.errors import InputError

# window 0: labelled null (0, 0), its answer is elsewhere; window 1: gold span (1, 2)
START = torch.tensor([[2.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
END = torch.tensor([[1.0, 0.0, 0.0, 3.0], [0.0, 0.0, 2.0, 0.0]])
GOLD_START, GOLD_END = torch.tensor([0, 1]), torch.tensor([0, 2])
OUTSIDE = torch.tensor([1, 0])


def lse(values):
    return math.log(sum(math.exp(v) for v in values))


def hand_hard(weight: float) -> float:
    window0 = ((lse([2, 0, 1, 0]) - 2) + (lse([1, 0, 0, 3]) - 1)) / 2
    window1 = ((lse([0, 1, 0, 0]) - 1) + (lse([0, 0, 2, 0]) - 2)) / 2
    return (weight * window0 + window1) / 2  # divided by the batch size, not by the sum of the weights


@pytest.mark.parametrize("weight", [0.0, 0.25, 1.0, 3.0])
def test_weighted_cross_entropy_matches_the_hand_computation(weight):
    parts = distillation_loss(
        START, END, START, END, GOLD_START, GOLD_END, alpha_ce=0.0, alpha_squad=1.0,
        answer_outside=OUTSIDE, null_window_weight=weight,
    )  # fmt: skip
    assert parts.hard.item() == pytest.approx(hand_hard(weight), rel=1e-6)
    assert parts.loss.item() == pytest.approx(hand_hard(weight), rel=1e-6)


def test_weight_one_is_bit_identical_and_the_flag_is_needed_otherwise():
    plain = distillation_loss(START, END, END, START, GOLD_START, GOLD_END)
    flagged = distillation_loss(START, END, END, START, GOLD_START, GOLD_END, answer_outside=OUTSIDE)
    assert torch.equal(plain.loss, flagged.loss)
    assert torch.equal(plain.hard, span_cross_entropy(START, END, GOLD_START, GOLD_END))
    with pytest.raises(ValueError, match="answer_outside"):
        distillation_loss(START, END, END, START, GOLD_START, GOLD_END, null_window_weight=0.5)


def test_answer_outside_column(tiny_tokenizer, tmp_path):
    from distilqa.qa.data import load_examples
    from distilqa.qa.features import FeatureParams, build_train_features

    examples = load_examples(v2_squad_file(tmp_path), limit=9)
    params = FeatureParams(96, 32, 24)
    plain = build_train_features(examples, tiny_tokenizer, params)
    flagged = build_train_features(examples, tiny_tokenizer, params, answer_outside=True)
    assert "answer_outside" not in plain.column_names
    assert flagged.remove_columns(["answer_outside"]).to_dict() == plain.to_dict()
    answerable = [bool(examples[i]["answers"]["text"]) for i in flagged["example_index"]]
    expected = [
        int(has and start == 0) for has, start in zip(answerable, flagged["start_positions"], strict=True)
    ]
    assert flagged["answer_outside"] == expected
    assert 0 < sum(expected) < sum(answerable)  # both kinds of answerable window occur here
    assert not all(answerable)  # and unanswerable windows, which are not flagged


def test_null_window_weight_option(tiny_bert_path, tmp_path, capsys):
    with pytest.raises(InputError, match="null_window_weight must be >= 0"):
        DistillationConfig(output_dir="x", null_window_weight=-0.5)
    argv = ["distill", "--teacher", str(tiny_bert_path), "--student", str(tiny_bert_path), "--train_file",
            str(v2_squad_file(tmp_path)), "--output_dir", str(tmp_path / "s"), "--teacher_cache",
            str(tmp_path / "cache"), "--null_window_weight", "0.3", "--alpha_null", "1", "--max_seq_length", "96",
            "--doc_stride", "32", "--max_query_length", "24", "--max_steps", "2", "--per_device_train_batch_size",
            "4", "--save_strategy", "no", "--disable_tqdm", "true", "--report_to", "none", "--use_cpu", "true"]  # fmt: skip
    assert main(argv) == 0
    card = (tmp_path / "s" / "model" / "README.md").read_text()
    assert "null_window_weight" in card and "alpha_null" in card


def test_null_window_weight_is_a_resume_setting_only_when_not_one():
    from distilqa.infra.run_settings import differences, run_settings

    class Data:
        train_file, train_split, max_train_samples = "train.json", None, None

    class Models:
        teacher = student = None

    plain = run_settings("distill", Models, Data, DistillationConfig(output_dir="x"))
    weighted = run_settings(
        "distill", Models, Data, DistillationConfig(output_dir="x", null_window_weight=0.2)
    )
    assert "null_window_weight" not in plain
    assert differences(weighted, plain) == ["null_window_weight 0.2 (now unset)"]
