"""The parity check on SQuAD 2.0 data: the answer / no-answer split under the threshold, not only spans."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import v2_squad_file
from distilqa.errors import InputError
from distilqa.export.parity import ParityCheck, ParityTolerance, no_answer_flips
from distilqa.qa.data import load_examples
from distilqa.qa.evaluation import evaluate_model
from distilqa.qa.features import FeatureParams
from distilqa.qa.predictor import QAPredictor

SMALL = FeatureParams(max_seq_length=128, doc_stride=32, max_query_length=32)
# only the split may fail these checks: spans and F1 are let through
LOOSE = ParityTolerance(max_logit_diff=1e9, min_span_agreement=0.0, max_f1_drop=100.0)


class Backend:
    """The PyTorch model as a numpy backend, with ``cls_shift`` added to the start and end logits of position 0
    (the null answer): an "export" that leans towards no answer."""

    def __init__(self, model, input_names, cls_shift: float = 0.0):
        self.model, self.input_names, self.cls_shift = model, input_names, cls_shift

    def __call__(self, batch):
        import torch

        with torch.inference_mode():
            out = self.model(**{k: torch.from_numpy(v) for k, v in batch.items()})
        start, end = out.start_logits.float().numpy().copy(), out.end_logits.float().numpy().copy()
        start[:, 0] += self.cls_shift
        end[:, 0] += self.cls_shift
        return start, end


@pytest.fixture
def check_parts(tiny_bert_path, tmp_path):
    from distilqa.infra.models import load_qa_model, load_tokenizer

    model, tokenizer = load_qa_model(tiny_bert_path), load_tokenizer(tiny_bert_path)
    examples = load_examples(v2_squad_file(tmp_path, questions=30))
    reference = QAPredictor(model, tokenizer, SMALL)
    odds = evaluate_model(reference, examples).result.null_odds
    threshold = float(np.median(list(odds.values())))  # about half the questions answered
    return model, tokenizer, examples, threshold, reference.input_names


def test_an_export_that_keeps_the_split_passes(check_parts):
    model, tokenizer, examples, threshold, names = check_parts
    check = ParityCheck(model, tokenizer, examples, SMALL, LOOSE, 8, null_threshold=threshold)
    assert 0.3 <= check.scores["answered"] <= 0.7 and {"HasAns_f1", "NoAns_f1"} <= set(check.scores)
    result = check.compare_backend(Backend(model, names), quantized=True)
    assert result["no_answer_flips"] == 0.0 and result["answered"] == check.scores["answered"]
    assert result["HasAns_f1_change"] == 0.0 and result["NoAns_f1_change"] == 0.0
    assert check.failures == []


def test_an_export_that_flips_the_split_fails(check_parts):
    model, tokenizer, examples, threshold, names = check_parts
    check = ParityCheck(model, tokenizer, examples, SMALL, LOOSE, 8, null_threshold=threshold)
    result = check.compare_backend(Backend(model, names, cls_shift=50.0), quantized=True)
    assert result["answered"] == 0.0 and result["no_answer_flips"] == check.scores["answered"] > 0.02
    assert len(check.failures) == 1 and "flips the answer / no-answer decision" in check.failures[0]
    assert "--max_no_answer_flips 0.02" in check.failures[0]
    # within a tolerance that allows it, the same export passes
    lenient = ParityCheck(model, tokenizer, examples, SMALL, ParityTolerance(1e9, 0.0, 100.0, 1.0), 8, null_threshold=threshold)  # fmt: skip
    lenient.compare_backend(Backend(model, names, cls_shift=50.0), quantized=False)
    assert lenient.failures == []


def test_v1_data_has_no_split_check(tiny_bert_path, tiny_squad):
    from distilqa.infra.models import load_qa_model, load_tokenizer

    model, tokenizer = load_qa_model(tiny_bert_path), load_tokenizer(tiny_bert_path)
    check = ParityCheck(model, tokenizer, load_examples(tiny_squad), SMALL, LOOSE, 8)
    result = check.compare_backend(Backend(model, QAPredictor(model, tokenizer).input_names, 50.0), True)
    assert "no_answer_flips" not in result and "answered" not in check.scores and check.failures == []


def test_flip_share_and_tolerance_bounds():
    assert (
        no_answer_flips({"a": "x", "b": "", "c": "y", "d": ""}, {"a": "", "b": "", "c": "z", "d": "w"}) == 0.5
    )
    with pytest.raises(InputError, match="max_no_answer_flips"):
        ParityTolerance(max_no_answer_flips=1.5)
