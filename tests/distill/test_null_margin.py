"""The SQuAD 2.0 null-margin term: hand-computed margin and binary KL, exactness when off, gradients, the
context-mask column, the option and an end-to-end cached distillation on SQuAD 2.0 data."""

from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn.functional as F

from conftest import v2_squad_file
from distilqa.cli import main
from distilqa.distill.config import DistillationConfig
from distilqa.distill.losses import distillation_loss, null_margin, null_margin_loss
from distilqa.errors import InputError

# One window of 6 tokens: 0 the CLS (null) token, 1 a question token, 2-4 the context, 5 the SEP token.
CONTEXT = torch.tensor([[0, 0, 1, 1, 1, 0]])
# The question and SEP tokens score highest and span (2, 4) would be 3.5 + 3.0 = 6.5, but it is 3 tokens long:
# with max_answer_length 2 the valid spans are (2,2) 4.5, (2,3) 3.0, (3,3) 1.5, (3,4) 5.0, (4,4) 2.0.
STUDENT_START = torch.tensor([[1.0, 5.0, 3.5, 2.0, -1.0, 9.0]])
STUDENT_END = torch.tensor([[0.5, 7.0, 1.0, -0.5, 3.0, 9.0]])
# valid spans (2,2) 0.5, (2,3) 0.7, (3,3) 1.5, (3,4) 2.0, (4,4) 1.0; null 3.0 + 2.0
TEACHER_START = torch.tensor([[3.0, 0.0, 0.2, 1.0, 0.0, 0.0]])
TEACHER_END = torch.tensor([[2.0, 0.0, 0.3, 0.5, 1.0, 0.0]])


def hand_binary_kl(teacher_margin: float, student_margin: float, temperature: float) -> float:
    p = 1 / (1 + math.exp(-teacher_margin / temperature))
    q = 1 / (1 + math.exp(-student_margin / temperature))
    return temperature**2 * (p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q)))


def test_margin_matches_the_hand_computation():
    student = null_margin(STUDENT_START, STUDENT_END, CONTEXT, max_answer_length=2)
    teacher = null_margin(TEACHER_START, TEACHER_END, CONTEXT, max_answer_length=2)
    assert student.item() == pytest.approx((1.0 + 0.5) - 5.0)  # -3.5
    assert teacher.item() == pytest.approx((3.0 + 2.0) - 2.0)  # 3.0
    # a longer limit lets (2, 4) in
    assert null_margin(STUDENT_START, STUDENT_END, CONTEXT, 3).item() == pytest.approx(1.5 - 6.5)


def test_loss_matches_the_hand_computation():
    # a second window where student and teacher agree adds 0 to the sum and halves the mean
    start = torch.cat([STUDENT_START, TEACHER_START])
    end = torch.cat([STUDENT_END, TEACHER_END])
    teacher_start = torch.cat([TEACHER_START, TEACHER_START])
    teacher_end = torch.cat([TEACHER_END, TEACHER_END])
    context = torch.cat([CONTEXT, CONTEXT])
    expected = hand_binary_kl(3.0, -3.5, 2.0) / 2
    term = null_margin_loss(
        null_margin(start, end, context, 2), null_margin(teacher_start, teacher_end, context, 2), 2.0
    )
    assert term.item() == pytest.approx(expected, rel=1e-6)
    assert null_margin_loss(torch.tensor([3.0]), torch.tensor([3.0]), 2.0).item() == pytest.approx(
        0.0, abs=1e-7
    )
    gold = torch.tensor([3, 0])
    parts = distillation_loss(
        start, end, teacher_start, teacher_end, gold, torch.tensor([4, 0]), temperature=2.0,
        alpha_ce=0.5, alpha_squad=0.5, alpha_null=0.7, context_mask=context, max_answer_length=2,
    )  # fmt: skip
    assert parts.null.item() == pytest.approx(expected, rel=1e-6)
    assert parts.loss.item() == pytest.approx(
        0.5 * parts.soft.item() + 0.5 * parts.hard.item() + 0.7 * expected, rel=1e-6
    )


def test_margin_equals_a_plain_loop():
    generator = torch.Generator().manual_seed(0)
    start, end = torch.randn(5, 12, generator=generator), torch.randn(5, 12, generator=generator)
    context = (torch.rand(5, 12, generator=generator) > 0.3).long()
    context[:, 0] = 0
    for limit in (1, 3, 30):
        got = null_margin(start, end, context, limit)
        for b in range(5):
            spans = [
                start[b, i] + end[b, j]
                for i in range(12)
                for j in range(i, min(12, i + limit))
                if context[b, i] and context[b, j]
            ]
            assert got[b].item() == pytest.approx((start[b, 0] + end[b, 0] - max(spans)).item(), abs=1e-6)


def test_projected_teacher_logits_give_a_finite_margin():
    # cross-tokenizer logits are log-masses, -1e4 where the teacher put no mass (here: all but null and one span)
    start = torch.full((1, 6), -1e4)
    end = torch.full((1, 6), -1e4)
    start[0, 0], end[0, 0], start[0, 3], end[0, 4] = -0.1, -0.2, -2.0, -2.5
    margin = null_margin(start, end, CONTEXT, 2)
    assert margin.item() == pytest.approx(-0.3 - (-4.5))
    # a window whose context has no token stays finite too
    empty = null_margin(start, end, torch.zeros(1, 6, dtype=torch.long), 2)
    assert torch.isfinite(empty).all()
    loss = null_margin_loss(null_margin(STUDENT_START, STUDENT_END, CONTEXT, 2), empty, 2.0)
    assert torch.isfinite(loss)


def reference_loss(s_start, s_end, t_start, t_end, gold_start, gold_end, temperature, alpha_ce, alpha_squad):
    """The two-term loss as it was before the null-margin term existed, written out."""

    def soft(student, teacher):
        log_s = F.log_softmax(student.float() / temperature, dim=-1)
        log_t = F.log_softmax(teacher.float() / temperature, dim=-1)
        return F.kl_div(log_s, log_t, reduction="batchmean", log_target=True) * temperature**2

    length = s_start.size(-1)
    hard = (
        F.cross_entropy(s_start.float(), gold_start.clamp(0, length - 1))
        + F.cross_entropy(s_end.float(), gold_end.clamp(0, length - 1))
    ) / 2
    return alpha_ce * ((soft(s_start, t_start) + soft(s_end, t_end)) / 2) + alpha_squad * hard


def test_alpha_null_zero_is_bit_identical_to_the_two_term_loss():
    generator = torch.Generator().manual_seed(1)
    logits = [torch.randn(4, 20, generator=generator) for _ in range(4)]
    gold = torch.tensor([0, 3, 5, 19]), torch.tensor([0, 4, 9, 19])
    context = torch.ones(4, 20, dtype=torch.long)
    expected = reference_loss(*logits, *gold, 2.0, 0.3, 0.7)
    for extra in ({}, {"alpha_null": 0.0, "context_mask": context, "max_answer_length": 5}):
        parts = distillation_loss(*logits, *gold, temperature=2.0, alpha_ce=0.3, alpha_squad=0.7, **extra)
        assert torch.equal(parts.loss, expected)
        assert parts.null.item() == 0.0


def test_gradient_reaches_the_null_and_best_span_logits_only():
    start = STUDENT_START.clone().requires_grad_(True)
    end = STUDENT_END.clone().requires_grad_(True)
    parts = distillation_loss(
        start, end, TEACHER_START, TEACHER_END, torch.tensor([3]), torch.tensor([4]),
        alpha_ce=0.0, alpha_squad=0.0, alpha_null=1.0, context_mask=CONTEXT, max_answer_length=2,
    )  # fmt: skip
    parts.loss.backward()
    # the student says "answer" (margin -3.5), the teacher "no answer" (3.0): the loss raises the null score
    # and lowers the best span (3, 4)
    assert start.grad[0, 0] < 0 and end.grad[0, 0] < 0
    assert start.grad[0, 3] > 0 and end.grad[0, 4] > 0
    others = [(start.grad, i) for i in (1, 2, 4, 5)] + [(end.grad, j) for j in (1, 2, 3, 5)]
    assert all(grad[0, k] == 0 for grad, k in others)
    with pytest.raises(ValueError, match="context_mask"):
        distillation_loss(
            start, end, TEACHER_START, TEACHER_END, torch.tensor([3]), torch.tensor([4]), alpha_null=1.0
        )


def test_context_mask_column_marks_the_context_and_is_off_by_default(tiny_tokenizer, tmp_path):
    from distilqa.distill.cache.fingerprint import data_component
    from distilqa.qa.data import load_examples
    from distilqa.qa.features import FeatureParams, build_train_features

    examples = load_examples(v2_squad_file(tmp_path), limit=6)
    params = FeatureParams(96, 32, 24)
    plain = build_train_features(examples, tiny_tokenizer, params)
    masked = build_train_features(examples, tiny_tokenizer, params, context_mask=True)
    assert "context_mask" not in plain.column_names
    assert masked.column_names == [*plain.column_names, "context_mask"]
    assert masked.remove_columns(["context_mask"]).to_dict() == plain.to_dict()
    assert data_component(masked) == data_component(plain)  # the teacher-cache fingerprint does not change
    for row in masked:
        ids, mask = row["input_ids"], row["context_mask"]
        sep = [i for i, t in enumerate(ids) if t == tiny_tokenizer.sep_token_id]
        expected = [int(sep[0] < i < sep[1]) for i in range(len(ids))]
        assert mask == expected


def test_alpha_null_option_checks():
    with pytest.raises(InputError, match="alpha_null must be a finite number"):
        DistillationConfig(output_dir="x", alpha_null=float("nan"))
    with pytest.raises(InputError, match="alpha_null must be >= 0"):
        DistillationConfig(output_dir="x", alpha_null=-1.0)
    with pytest.raises(InputError, match="all 0"):
        DistillationConfig(output_dir="x", alpha_ce=0.0, alpha_squad=0.0)
    # the null-margin term alone is something to learn
    assert DistillationConfig(output_dir="x", alpha_ce=0.0, alpha_squad=0.0, alpha_null=1.0).alpha_null == 1.0


def test_alpha_null_is_a_resume_setting_only_when_on():
    from distilqa.infra.run_settings import differences, run_settings

    class Data:
        train_file, train_split, max_train_samples = "train.json", None, None

    class Models:
        teacher = student = None

    off = run_settings("distill", Models, Data, DistillationConfig(output_dir="x"))
    on = run_settings("distill", Models, Data, DistillationConfig(output_dir="x", alpha_null=1.0))
    assert "alpha_null" not in off  # a checkpoint from before the option resumes with it off
    assert differences(off, on) == ["alpha_null unset (now 1.0)"]


V2_ARGS = [
    "--max_seq_length", "96", "--doc_stride", "32", "--max_query_length", "24", "--max_steps", "2",
    "--per_device_train_batch_size", "4", "--save_strategy", "no", "--disable_tqdm", "true",
    "--report_to", "none", "--use_cpu", "true", "--logging_steps", "1",
]  # fmt: skip


def test_cached_v2_distillation_logs_the_null_part(tiny_bert_path, tmp_path, capsys):
    data = str(v2_squad_file(tmp_path))
    argv = ["distill", "--teacher", str(tiny_bert_path), "--student", str(tiny_bert_path), "--train_file", data,
            "--output_dir", str(tmp_path / "s"), "--teacher_cache", str(tmp_path / "cache"), "--alpha_null", "1",
            *V2_ARGS]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    logged = [line for line in out.splitlines() if "'loss_null'" in line]
    assert len(logged) == 2, out  # one log per step (logging_steps 1)
    values = [float(re.search(r"'loss_null': '?([-0-9.e]+)", line).group(1)) for line in logged]
    assert all(value > 0 for value in values), logged
    assert (tmp_path / "s" / "model" / "model.safetensors").exists()


def test_nan_alpha_null_is_refused_on_the_command_line(tiny_bert_path, tmp_path, capsys):
    argv = ["distill", "--teacher", str(tiny_bert_path), "--student", str(tiny_bert_path), "--train_file",
            str(v2_squad_file(tmp_path)), "--output_dir", str(tmp_path / "s"), "--alpha_null", "nan", *V2_ARGS]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--alpha_null nan is not a finite number" in err and "Traceback" not in err


def test_alpha_null_in_a_config_file(tmp_path):
    from distilqa.cli import distill

    path = tmp_path / "v2.yaml"
    path.write_text("teacher: t\nstudent: s\noutput_dir: out\ntrain_file: train.json\nalpha_null: 0.5\n")
    _, _, config, _, _ = distill.build_parser().parse([str(path), "--use_cpu", "true"])
    assert config.alpha_null == 0.5
    path.write_text("teacher: t\nstudent: s\noutput_dir: out\ntrain_file: train.json\nalpha_null: .nan\n")
    with pytest.raises(InputError, match="alpha_null nan is not a finite number"):
        distill.build_parser().parse([str(path), "--use_cpu", "true"])


def test_online_teacher_needs_and_uses_the_context_mask(
    tiny_bert_path, tiny_distilbert_path, tiny_tokenizer, tmp_path
):
    from distilqa.distill.trainer import DistillationTrainer
    from distilqa.infra.models import load_qa_model
    from distilqa.qa.data import load_examples
    from distilqa.qa.features import FeatureParams, build_train_features, trim_padding_collator

    examples = load_examples(v2_squad_file(tmp_path), limit=8)
    params = FeatureParams(96, 32, 24)
    config = DistillationConfig(
        output_dir=str(tmp_path / "out"), max_seq_length=96, doc_stride=32, max_query_length=24, max_steps=2,
        per_device_train_batch_size=4, logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=True,
        use_cpu=True, alpha_null=1.0,
    )  # fmt: skip
    for with_mask in (False, True):
        features = build_train_features(examples, tiny_tokenizer, params, context_mask=with_mask)
        trainer = DistillationTrainer(
            model=load_qa_model(tiny_distilbert_path), teacher=load_qa_model(tiny_bert_path), args=config,
            train_dataset=features.remove_columns(["example_index"]), data_collator=trim_padding_collator,
        )  # fmt: skip
        if not with_mask:
            with pytest.raises(ValueError, match="context_mask"):
                trainer.train()
            continue
        trainer.train()
        logs = [log for log in trainer.state.log_history if "loss" in log]
        assert len(logs) == 2 and all(log["loss_null"] > 0 for log in logs)
        # the logged loss is the sum of its weighted parts (each rounded to 4 places)
        for log in logs:
            assert log["loss"] == pytest.approx(
                0.5 * log["loss_soft"] + 0.5 * log["loss_hard"] + log["loss_null"], abs=5e-4
            )
