from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import squad_file
from distilqa.errors import InputError
from distilqa.infra.models import load_qa_model, load_tokenizer
from distilqa.qa.config import QuestionAnsweringConfig
from distilqa.qa.data import load_examples
from distilqa.qa.features import (
    FeatureParams,
    build_eval_features,
    build_train_features,
    trim_padding_collator,
)
from distilqa.qa.metrics import score_predictions
from distilqa.qa.trainer import QuestionAnsweringTrainer

PARAMS = FeatureParams(128, 32, 32)


def qa_config(tmp_path, **kwargs):
    defaults = dict(
        output_dir=str(tmp_path / "out"), max_seq_length=128, doc_stride=32, max_query_length=32,
        per_device_train_batch_size=8, per_device_eval_batch_size=16, learning_rate=1e-3, seed=0,
        save_strategy="no", report_to="none", disable_tqdm=True, use_cpu=True,
    )  # fmt: skip
    return QuestionAnsweringConfig(**{**defaults, **kwargs})


@pytest.fixture(scope="module")
def small_data(tiny_tokenizer):
    train = load_examples(squad_file("train.json"), limit=48)
    dev = load_examples(squad_file("dev.json"), limit=24)
    return (
        train,
        build_train_features(train, tiny_tokenizer, PARAMS),
        dev,
        build_eval_features(dev, tiny_tokenizer, PARAMS),
    )


def test_training_lowers_the_loss_and_evaluation_reports_squad_metrics(tiny_bert_path, small_data, tmp_path):
    _, train_features, dev, dev_features = small_data
    model = load_qa_model(tiny_bert_path)
    trainer = QuestionAnsweringTrainer(
        model=model,
        args=qa_config(tmp_path, max_steps=40, logging_steps=10, eval_strategy="steps", eval_steps=20),
        train_dataset=train_features.remove_columns(["example_index"]),
        eval_dataset=dev_features,
        eval_examples=dev,
        data_collator=trim_padding_collator,
    )
    trainer.train()
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    assert losses[-1] < losses[0] - 0.5
    evals = [log for log in trainer.state.log_history if "eval_f1" in log]
    assert len(evals) == 2
    assert set(trainer.last_predictions.predictions) == set(dev.ids)
    # The logged EM/F1 are the official scores of the answers the evaluation gave (the last one's, here).
    scores = score_predictions(dev, trainer.last_predictions.predictions)
    assert evals[-1]["eval_exact_match"] == pytest.approx(scores["exact_match"])
    assert (
        evals[-1]["eval_f1"] == pytest.approx(scores["f1"])
        and evals[-1]["eval_f1"] >= evals[-1]["eval_exact_match"]
    )


def test_evaluation_matches_the_standalone_predictor(tiny_bert_path, tiny_tokenizer, small_data, tmp_path):
    """The Trainer's evaluation (trimmed batches, gathered logits) equals QAPredictor + score on the same model."""
    from distilqa.qa.metrics import score_predictions
    from distilqa.qa.predictor import QAPredictor

    _, _, dev, dev_features = small_data
    model = load_qa_model(tiny_bert_path)
    trainer = QuestionAnsweringTrainer(
        model=model,
        args=qa_config(tmp_path),
        eval_dataset=dev_features,
        eval_examples=dev,
        data_collator=trim_padding_collator,
    )
    metrics = trainer.evaluate()
    predictor = QAPredictor(model, load_tokenizer(tiny_bert_path), params=PARAMS)
    result = predictor.predict_examples(dev, batch_size=5, progress=False)
    assert result.predictions == trainer.last_predictions.predictions
    scores = score_predictions(dev, result.predictions)
    assert metrics["eval_f1"] == pytest.approx(scores["f1"]) and metrics["eval_exact_match"] == pytest.approx(
        scores["exact_match"]
    )


def test_evaluation_answers_do_not_depend_on_the_eval_batch_size(tiny_bert_path, small_data, tmp_path):
    """Padding inside a batch (a window shorter than its batch's longest) never takes an n-best slot.

    The model is made to give every padding position a high logit; with batches of one there is no padding.
    """
    _, _, dev, dev_features = small_data
    model = load_qa_model(tiny_bert_path)

    def high_padding_logits(module, args, kwargs, output):
        padding = 10.0 * (1 - kwargs["attention_mask"].to(output.start_logits.dtype))
        output.start_logits = output.start_logits + padding
        output.end_logits = output.end_logits + padding
        return output

    model.register_forward_hook(high_padding_logits, with_kwargs=True)
    answers = {}
    for batch in (1, 16):
        trainer = QuestionAnsweringTrainer(
            model=model,
            args=qa_config(tmp_path, per_device_eval_batch_size=batch),
            eval_dataset=dev_features,
            eval_examples=dev,
            data_collator=trim_padding_collator,
        )
        trainer.evaluate()
        answers[batch] = trainer.last_predictions.predictions
    assert sum(text != "" for text in answers[1].values()) == len(dev.ids)  # v1.1: a span for every question
    assert answers[16] == answers[1]


def test_mask_padding_fills_padding_and_missing_columns():
    from distilqa.qa.trainer import mask_padding

    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 0]], dtype=bool)
    logits = np.array([[0.5, 0.25, 9.0], [1.0, 2.0, 3.0]], dtype=np.float32)  # a batch cut to width 3
    assert mask_padding(logits, mask).tolist() == [[0.5, 0.25, -1e4, -1e4], [1.0, 2.0, 3.0, -1e4]]
    wider = np.concatenate([logits, np.full((2, 2), -100.0, dtype=np.float32)], axis=1)  # width 5 > 4
    assert mask_padding(wider, mask).tolist() == [[0.5, 0.25, -1e4, -1e4], [1.0, 2.0, 3.0, -1e4]]


def test_load_best_model_at_end_uses_f1(tiny_bert_path, small_data, tmp_path):
    _, train_features, dev, dev_features = small_data
    config = qa_config(
        tmp_path,
        max_steps=6,
        eval_strategy="steps",
        eval_steps=2,
        save_strategy="steps",
        save_steps=2,
        load_best_model_at_end=True,
    )
    assert config.metric_for_best_model == "f1"
    trainer = QuestionAnsweringTrainer(
        model=load_qa_model(tiny_bert_path), args=config, train_dataset=train_features.remove_columns(["example_index"]),
        eval_dataset=dev_features, eval_examples=dev,
    )  # fmt: skip
    trainer.train()
    f1s = {log["step"]: log["eval_f1"] for log in trainer.state.log_history if "eval_f1" in log}
    assert trainer.state.best_metric == pytest.approx(max(f1s.values()))


def test_predict_returns_answers_and_metrics(tiny_bert_path, small_data, tmp_path):
    _, _, dev, dev_features = small_data
    trainer = QuestionAnsweringTrainer(model=load_qa_model(tiny_bert_path), args=qa_config(tmp_path))
    output = trainer.predict(dev_features, test_examples=dev)
    assert set(output.predictions.predictions) == set(dev.ids)
    scores = score_predictions(dev, output.predictions.predictions)
    assert output.metrics["test_f1"] == pytest.approx(scores["f1"])
    assert output.metrics["test_exact_match"] == pytest.approx(scores["exact_match"])


def test_gradient_accumulation_gives_the_same_weights(tiny_bert_path, small_data, tmp_path):
    """batch 8 x 1 and batch 4 x 2 accumulation steps: same updates (dropout off, same data order).

    Plain SGD without clipping, so an unscaled (or doubly scaled) accumulated loss would show as a 2x larger (smaller) update;
    Adam would normalise that away, and amplify the rounding noise of the QA-head bias, whose gradient is 0.
    """
    _, train_features, _, _ = small_data
    data = train_features.remove_columns(["example_index"]).select(range(24))
    weights = []
    for batch, accumulation in ((8, 1), (4, 2)):
        model = load_qa_model(tiny_bert_path)
        model.config.hidden_dropout_prob = model.config.attention_probs_dropout_prob = 0.0
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        config = qa_config(
            tmp_path,
            per_device_train_batch_size=batch,
            gradient_accumulation_steps=accumulation,
            max_steps=3,
            optim="sgd",
            learning_rate=0.5,
            max_grad_norm=0.0,
        )
        QuestionAnsweringTrainer(model=model, args=config, train_dataset=data).train()
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    initial = torch.cat([p.detach().flatten() for p in load_qa_model(tiny_bert_path).parameters()])
    assert (weights[0] - initial).abs().max() > 1e-3  # the weights did move
    np.testing.assert_allclose(weights[0].numpy(), weights[1].numpy(), atol=1e-5)


def test_config_validation(tmp_path):
    with pytest.raises(InputError, match="n_best must be >= 1"):
        qa_config(tmp_path, n_best=0)
    with pytest.raises(InputError, match="--output_dir"):
        QuestionAnsweringConfig(output_dir=None)
