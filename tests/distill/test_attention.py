from __future__ import annotations

import pytest
import torch

from distilqa.distill.attention import attention_projections, capture_projections
from distilqa.infra.models import load_qa_model


def batch(tokenizer):
    encoded = tokenizer(
        ["who wrote the book?", "when"],
        ["the book was written in 1900 by a teacher", "in 1900"],
        padding=True,
        return_tensors="pt",
    )
    return dict(encoded)


def test_finds_the_last_layer_of_bert_and_distilbert(tiny_bert_path, tiny_distilbert_path):
    bert = load_qa_model(tiny_bert_path)
    query, key, value = attention_projections(bert)
    assert query is bert.bert.encoder.layer[-1].attention.self.query
    assert value is bert.bert.encoder.layer[-1].attention.self.value
    assert attention_projections(bert, layer=0)[1] is bert.bert.encoder.layer[0].attention.self.key
    distil = load_qa_model(tiny_distilbert_path)
    assert attention_projections(distil)[0] is distil.distilbert.transformer.layer[-1].attention.q_lin
    with pytest.raises(
        ValueError, match="layer 5 does not exist: BertForQuestionAnswering has 2 attention layers"
    ):
        attention_projections(bert, layer=5)
    with pytest.raises(
        ValueError, match="Sequential has no query/key/value projections named query/key/value"
    ):
        attention_projections(torch.nn.Sequential(torch.nn.Linear(2, 2)))


def test_captured_projections_give_the_models_own_attention(tiny_bert_path, tiny_tokenizer):
    """softmax(Q K^T / sqrt(d)) of the captured projections, per model head, is the attention the eager path
    returns: the hooks catch the right tensors. Hooks are gone after the block."""
    model = load_qa_model(tiny_bert_path).eval()
    model.set_attn_implementation("eager")
    inputs = batch(tiny_tokenizer)
    with torch.no_grad(), capture_projections(model) as (projections):
        attentions = model(**inputs, output_attentions=True).attentions[-1]
    query, key, value = projections
    heads = model.config.num_attention_heads
    b, n, h = query.shape
    q = query.view(b, n, heads, h // heads).transpose(1, 2)
    k = key.view(b, n, heads, h // heads).transpose(1, 2)
    scores = q @ k.transpose(-1, -2) / (h // heads) ** 0.5
    scores = scores.masked_fill(~inputs["attention_mask"].bool()[:, None, None, :], float("-inf"))
    assert torch.allclose(scores.softmax(-1), attentions, atol=1e-5)
    assert value.shape == (b, n, h)
    assert all(not m._forward_hooks for m in attention_projections(model))


def test_capture_is_the_same_under_sdpa_and_keeps_gradients(tiny_bert_path, tiny_tokenizer):
    model = load_qa_model(tiny_bert_path).eval()
    inputs = batch(tiny_tokenizer)
    captured = {}
    for implementation in ("eager", "sdpa"):
        model.set_attn_implementation(implementation)
        with capture_projections(model) as projections:
            model(**inputs)
        captured[implementation] = projections
    for eager, sdpa in zip(captured["eager"], captured["sdpa"]):
        assert torch.allclose(eager, sdpa, atol=1e-5)  # the kernels round differently, layer by layer
        assert eager.requires_grad  # the student's loss reaches its projections


def test_cross_attention_is_not_taken_for_self_attention(tiny_tokenizer):
    """A BERT decoder has a cross-attention block after each self-attention one; the relation needs the latter."""
    from transformers import BertConfig, BertForQuestionAnswering

    config = BertConfig(vocab_size=len(tiny_tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, is_decoder=True, add_cross_attention=True)  # fmt: skip
    model = BertForQuestionAnswering(config)
    assert hasattr(model.bert.encoder.layer[-1], "crossattention")
    assert attention_projections(model)[0] is model.bert.encoder.layer[-1].attention.self.query


def test_hooks_are_removed_when_the_forward_fails(tiny_bert_path):
    model = load_qa_model(tiny_bert_path)
    with pytest.raises(IndexError), capture_projections(model):
        model(input_ids=torch.full((1, 4), 10**6))  # an id outside the vocabulary
    assert all(not m._forward_hooks for m in attention_projections(model))
