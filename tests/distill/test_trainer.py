from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import build_bert, build_tokenizer, squad_file
from distilqa.distill.attention import capture_projections
from distilqa.distill.config import DistillationConfig
from distilqa.distill.losses import (
    attention_relation_loss,
    hidden_state_loss,
    soft_cross_entropy,
    uniform_layer_map,
)
from distilqa.distill.trainer import DistillationTrainer
from distilqa.errors import InputError
from distilqa.infra.models import check_same_tokenizer, load_qa_model, load_tokenizer
from distilqa.qa.data import load_examples
from distilqa.qa.evaluation import evaluate_model
from distilqa.qa.features import (
    FeatureParams,
    build_eval_features,
    build_train_features,
    trim_padding_collator,
)

PARAMS = FeatureParams(128, 32, 32)


def distill_config(tmp_path, **kwargs):
    defaults = dict(
        output_dir=str(tmp_path / "out"), max_seq_length=128, doc_stride=32, max_query_length=32,
        per_device_train_batch_size=8, learning_rate=1e-3, seed=0, save_strategy="no", report_to="none",
        disable_tqdm=True, use_cpu=True,
    )  # fmt: skip
    return DistillationConfig(**{**defaults, **kwargs})


@pytest.fixture(scope="module")
def train_features(tiny_tokenizer):
    examples = load_examples(squad_file("train.json"), limit=32)
    return build_train_features(examples, tiny_tokenizer, PARAMS).remove_columns(["example_index"])


def no_dropout(model):
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return model


def test_bert_teacher_gets_token_type_ids_from_a_distilbert_student_batch(
    tiny_bert_path, tiny_distilbert_path, train_features, tmp_path
):
    teacher = load_qa_model(tiny_bert_path)
    student = load_qa_model(tiny_distilbert_path)
    seen = {"teacher": [], "student": []}

    def recorder(name):
        def hook(module, args, kwargs):  # a hook, not a wrapped forward: the signatures stay as they are
            seen[name].append(set(kwargs))

        return hook

    teacher.register_forward_pre_hook(recorder("teacher"), with_kwargs=True)
    student.register_forward_pre_hook(recorder("student"), with_kwargs=True)
    trainer = DistillationTrainer(
        model=student,
        teacher=teacher,
        args=distill_config(tmp_path, max_steps=2),
        train_dataset=train_features,
    )
    trainer.train()
    assert len(seen["teacher"]) == 2 and all("token_type_ids" in kwargs for kwargs in seen["teacher"])
    assert len(seen["student"]) == 2 and not any("token_type_ids" in kwargs for kwargs in seen["student"])
    assert "token_type_ids" in trainer._signature_columns


def test_union_of_inputs_from_signatures(tiny_bert_path, tiny_distilbert_path, train_features, tmp_path):
    trainer = DistillationTrainer(
        model=load_qa_model(tiny_distilbert_path), teacher=load_qa_model(tiny_bert_path),
        args=distill_config(tmp_path, max_steps=1), train_dataset=train_features,
    )  # fmt: skip
    trainer._set_signature_columns_if_needed()
    assert {"input_ids", "attention_mask", "token_type_ids", "start_positions", "end_positions"} <= set(
        trainer._signature_columns
    )
    assert "token_type_ids" not in trainer._student_inputs and "token_type_ids" in trainer._teacher_inputs


def test_distilled_student_moves_toward_the_teacher(tiny_bert_path, tiny_tokenizer, train_features, tmp_path):
    teacher = load_qa_model(tiny_bert_path)
    student_dir = build_bert(tmp_path / "student", tiny_tokenizer, layers=1, seed=7)
    student = no_dropout(load_qa_model(student_dir))
    batch = trim_padding_collator([train_features[i] for i in range(16)])
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}

    def gap():
        with torch.no_grad():
            s, t = student(**inputs), teacher(**inputs)
        return (
            soft_cross_entropy(s.start_logits, t.start_logits, 2.0)
            + soft_cross_entropy(s.end_logits, t.end_logits, 2.0)
        ).item()

    before = gap()
    config = distill_config(tmp_path, max_steps=30, alpha_ce=1.0, alpha_squad=0.0, learning_rate=3e-3)
    DistillationTrainer(
        model=student,
        teacher=teacher,
        args=config,
        train_dataset=train_features,
        data_collator=trim_padding_collator,
    ).train()
    student.eval()
    assert gap() < 0.5 * before


def test_gradient_accumulation_gives_the_same_weights(
    tiny_bert_path, tiny_tokenizer, train_features, tmp_path
):
    data = train_features.select(range(24))
    student_dir = build_bert(tmp_path / "student", tiny_tokenizer, layers=1, seed=3)
    weights = []
    for batch, accumulation in ((8, 1), (4, 2)):
        student = no_dropout(load_qa_model(student_dir))
        config = distill_config(
            tmp_path, per_device_train_batch_size=batch, gradient_accumulation_steps=accumulation, max_steps=3,
            optim="sgd", learning_rate=0.5, max_grad_norm=0.0,
        )  # fmt: skip
        DistillationTrainer(
            model=student, teacher=load_qa_model(tiny_bert_path), args=config, train_dataset=data
        ).train()
        weights.append(torch.cat([p.detach().flatten() for p in student.parameters()]).numpy())
    initial = torch.cat([p.detach().flatten() for p in load_qa_model(student_dir).parameters()]).numpy()
    assert np.abs(weights[0] - initial).max() > 1e-3  # the weights did move (far more than the tolerance)
    np.testing.assert_allclose(weights[0], weights[1], atol=1e-5)


def test_loss_parts_are_logged(tiny_bert_path, tiny_distilbert_path, train_features, tmp_path):
    trainer = DistillationTrainer(
        model=load_qa_model(tiny_distilbert_path), teacher=load_qa_model(tiny_bert_path),
        args=distill_config(tmp_path, max_steps=4, logging_steps=2, alpha_ce=0.8, alpha_squad=0.2), train_dataset=train_features,
    )  # fmt: skip
    trainer.train()
    logs = [log for log in trainer.state.log_history if "loss" in log]
    assert len(logs) == 2
    for log in logs:  # the logged loss is alpha_ce * soft + alpha_squad * hard (terms rounded to 4 places)
        assert log["loss_soft"] > 0 and log["loss_hard"] > 0
        assert log["loss"] == pytest.approx(0.8 * log["loss_soft"] + 0.2 * log["loss_hard"], abs=2e-4)


def test_teacher_evaluation_and_student_evaluation(
    tiny_bert_path, tiny_distilbert_path, tiny_tokenizer, tmp_path
):
    dev = load_examples(squad_file("dev.json"), limit=12)
    features = build_eval_features(dev, tiny_tokenizer, PARAMS)
    trainer = DistillationTrainer(
        model=load_qa_model(tiny_distilbert_path), teacher=load_qa_model(tiny_bert_path),
        args=distill_config(tmp_path), eval_dataset=features, eval_examples=dev,
    )  # fmt: skip
    teacher_metrics = trainer.evaluate_teacher()
    student_metrics = trainer.evaluate()
    # Each is the score of that model alone, as the standalone evaluation gives it.
    for model, metrics, prefix in (
        (tiny_bert_path, teacher_metrics, "teacher"),
        (tiny_distilbert_path, student_metrics, "eval"),
    ):
        expected = evaluate_model(model, dev, params=PARAMS).metrics
        assert metrics[f"{prefix}_exact_match"] == pytest.approx(expected["exact_match"])
        assert metrics[f"{prefix}_f1"] == pytest.approx(expected["f1"])


def test_tokenizer_mismatch_names_both_models(tmp_path, tiny_bert_path):
    other = build_tokenizer(tmp_path / "other")
    other_words = other.get_vocab()
    assert other_words == load_tokenizer(tiny_bert_path).get_vocab()  # same recipe, same vocabulary
    check_same_tokenizer(load_tokenizer(tiny_bert_path), other, "teacher-dir", "student-dir")
    from transformers import BertTokenizerFast

    vocab = tmp_path / "small.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b"]))
    small = BertTokenizerFast(vocab=str(vocab))
    with pytest.raises(InputError, match="teacher-dir and student student-dir do not share a tokenizer"):
        check_same_tokenizer(load_tokenizer(tiny_bert_path), small, "teacher-dir", "student-dir")
    cased = BertTokenizerFast(vocab=str(tmp_path / "other" / "vocab.txt"), do_lower_case=False)
    with pytest.raises(InputError, match="normalizer"):
        check_same_tokenizer(load_tokenizer(tiny_bert_path), cased, "teacher-dir", "student-dir")


def test_hidden_state_term_pulls_the_student_toward_the_teacher_states(
    tiny_tokenizer, train_features, tmp_path
):
    teacher = load_qa_model(build_bert(tmp_path / "teacher", tiny_tokenizer, layers=4, seed=1))
    student = no_dropout(load_qa_model(build_bert(tmp_path / "student", tiny_tokenizer, layers=2, seed=7)))
    batch = trim_padding_collator([train_features[i] for i in range(16)])
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    layer_map = uniform_layer_map(2, 4)

    def gap():
        with torch.no_grad():
            s = student(**inputs, output_hidden_states=True).hidden_states
            t = teacher(**inputs, output_hidden_states=True).hidden_states
        return hidden_state_loss(s, t, inputs["attention_mask"], layer_map).item()

    before = gap()
    config = distill_config(
        tmp_path,
        max_steps=30,
        alpha_ce=0.0,
        alpha_squad=0.0,
        alpha_hidden=1.0,
        learning_rate=3e-3,
        logging_steps=10,
    )
    trainer = DistillationTrainer(
        model=student,
        teacher=teacher,
        args=config,
        train_dataset=train_features,
        data_collator=trim_padding_collator,
    )
    trainer.train()
    student.eval()
    assert gap() < 0.5 * before
    logs = [log for log in trainer.state.log_history if "loss" in log]
    assert logs and all("loss_hidden" in log for log in logs)
    assert trainer._layer_map == [(0, 0), (1, 2), (2, 4)]


def test_hidden_state_term_needs_equal_sizes_and_the_online_teacher(
    tiny_tokenizer, tiny_bert_path, train_features, tmp_path
):
    from transformers import BertConfig, BertForQuestionAnswering

    wide = BertForQuestionAnswering(
        BertConfig(
            vocab_size=len(tiny_tokenizer),
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
        )
    )
    with pytest.raises(InputError, match="same hidden size in student and teacher, got 32 and 64"):
        DistillationTrainer(
            model=load_qa_model(tiny_bert_path),
            teacher=wide,
            args=distill_config(tmp_path, alpha_hidden=1.0),
            train_dataset=train_features,
        )
    with pytest.raises(InputError, match="drop --teacher_cache"):
        distill_config(tmp_path, alpha_hidden=1.0, teacher_cache=str(tmp_path / "cache"))


def test_attention_relation_term_pulls_the_student_toward_the_teacher_relations(
    tiny_tokenizer, tiny_distilbert_path, train_features, tmp_path
):
    """MiniLMv2's relation term alone (no logits, no gold) moves a DistilBERT student's last-layer relations
    toward a 4-layer BERT teacher's (other module names, other depth); the term is logged."""
    teacher = load_qa_model(build_bert(tmp_path / "teacher", tiny_tokenizer, layers=4, seed=1))
    student = no_dropout(load_qa_model(tiny_distilbert_path))
    batch = trim_padding_collator([train_features[i] for i in range(16)])
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}

    def gap():
        with torch.no_grad(), capture_projections(student) as s, capture_projections(teacher) as t:
            student(**inputs)
            teacher(**inputs, token_type_ids=batch["token_type_ids"])
        return attention_relation_loss(s, t, inputs["attention_mask"], relation_heads=4).item()

    before = gap()
    config = distill_config(
        tmp_path, max_steps=30, alpha_ce=0.0, alpha_squad=0.0, alpha_attention=1.0, attention_relation_heads=4, learning_rate=3e-3, logging_steps=10
    )  # fmt: skip
    trainer = DistillationTrainer(
        model=student,
        teacher=teacher,
        args=config,
        train_dataset=train_features,
        data_collator=trim_padding_collator,
    )
    trainer.train()
    student.eval()
    assert gap() < 0.5 * before
    logs = [log for log in trainer.state.log_history if "loss" in log]
    assert logs and all("loss_attention" in log and "loss_hidden" not in log for log in logs)


def test_attention_relation_term_refuses_a_student_without_gradients(
    tiny_bert_path, train_features, tmp_path
):
    """Reentrant gradient checkpointing runs the layers without autograd: the relation term would teach nothing."""
    config = distill_config(
        tmp_path, max_steps=1, alpha_attention=1.0, attention_relation_heads=4, activation_checkpointing=True,
        activation_checkpointing_kwargs={"use_reentrant": True},
    )  # fmt: skip
    trainer = DistillationTrainer(model=load_qa_model(tiny_bert_path), teacher=load_qa_model(tiny_bert_path), args=config, train_dataset=train_features)  # fmt: skip
    with pytest.raises(InputError, match="activation_checkpointing_kwargs"):
        trainer.train()


def test_attention_relation_term_checks(tiny_bert_path, train_features, tmp_path):
    with pytest.raises(
        InputError, match="--attention_relation_heads 12 does not divide the student's hidden size 32"
    ):
        DistillationTrainer(
            model=load_qa_model(tiny_bert_path), teacher=load_qa_model(tiny_bert_path), args=distill_config(tmp_path, alpha_attention=1.0), train_dataset=train_features
        )  # fmt: skip
    with pytest.raises(InputError, match="alpha_attention > 0 needs the online teacher"):
        distill_config(tmp_path, alpha_attention=1.0, teacher_cache=str(tmp_path / "cache"))
    with pytest.raises(InputError, match="alpha_attention must be >= 0"):
        distill_config(tmp_path, alpha_attention=-1)
    with pytest.raises(InputError, match="attention_relation_heads must be >= 1"):
        distill_config(tmp_path, alpha_attention=1.0, attention_relation_heads=0)
    # the relation term alone is something to learn
    assert distill_config(tmp_path, alpha_ce=0, alpha_squad=0, alpha_attention=1.0).alpha_attention == 1.0


def test_config_checks(tmp_path):
    with pytest.raises(InputError, match="temperature must be > 0"):
        distill_config(tmp_path, temperature=0)
    with pytest.raises(InputError, match="all 0"):
        distill_config(tmp_path, alpha_ce=0, alpha_squad=0)
    with pytest.raises(InputError, match="teacher_dtype"):
        distill_config(tmp_path, teacher_dtype="int8")
    with pytest.raises(InputError, match="alpha_hidden must be >= 0"):
        distill_config(tmp_path, alpha_hidden=-1)


def test_model_card_settings_name_the_loss_terms(tmp_path):
    """The card's and metrics.json's settings table holds every loss weight; relation heads only when that term is on."""
    from distilqa.runs import _hyperparameters

    off = _hyperparameters(distill_config(tmp_path))
    assert (
        off["alpha_hidden"] == 0.0 and off["alpha_attention"] == 0.0 and "attention_relation_heads" not in off
    )
    on = _hyperparameters(distill_config(tmp_path, alpha_attention=1.0, attention_relation_heads=4))
    assert on["alpha_attention"] == 1.0 and on["attention_relation_heads"] == 4
