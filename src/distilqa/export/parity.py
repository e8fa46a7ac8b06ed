"""The parity check that gates an export: the exported model against PyTorch fp32 on real features.

On SQuAD 2.0 data it also compares the second decision, whether there is an answer: HasAns F1, NoAns F1 and the
answered / no-answer split under the no-answer threshold in force (the one saved with the model, by default);
an export that flips that decision for more than ``max_no_answer_flips`` of the questions fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from distilqa.errors import InputError
from distilqa.qa.backends import OnnxQAModel
from distilqa.qa.metrics import paired_bootstrap_interval, question_f1


class ParityError(InputError):
    """The exported model does not match the PyTorch model within the stated tolerance."""


@dataclass
class ParityTolerance:
    """What the exported model must meet before it is written.

    Args:
        max_logit_diff (`float`, defaults to 1e-3): fp32: largest allowed |ONNX - PyTorch| start/end logit over
            the real (non-padding) tokens of every window.
        min_span_agreement (`float`, defaults to 0.8): INT8: share of questions whose answer text equals the
            PyTorch fp32 model's. INT8 changes many answers for little F1 (docs/RESULTS.md, "How fast is the
            student?"), so F1 is the real guard.
        max_f1_drop (`float`, defaults to 1.0): INT8: largest allowed F1 loss (points) against PyTorch fp32.
        max_no_answer_flips (`float`, defaults to 0.02): SQuAD 2.0 data, fp32 and INT8: largest allowed share of
            questions answered by one model and given no answer by the other, under the same threshold.
    """

    max_logit_diff: float = 1e-3
    min_span_agreement: float = 0.8
    max_f1_drop: float = 1.0
    max_no_answer_flips: float = 0.02

    def __post_init__(self):
        for name in ("max_logit_diff", "max_f1_drop"):
            if getattr(self, name) < 0:
                raise InputError(f"{name} must be >= 0, got {getattr(self, name)}; pass --{name} 0 or more")
        if not 0.0 <= self.min_span_agreement <= 1.0:
            raise InputError(
                f"min_span_agreement must lie in [0, 1], got {self.min_span_agreement}; pass e.g. --min_span_agreement 0.9"
            )
        if not 0.0 <= self.max_no_answer_flips <= 1.0:
            raise InputError(
                f"max_no_answer_flips must lie in [0, 1], got {self.max_no_answer_flips}; pass e.g. "
                "--max_no_answer_flips 0.02"
            )


class ParityCheck:
    """PyTorch fp32 answers and logits on the parity features, and comparisons of exports against them."""

    def __init__(
        self,
        model,
        tokenizer,
        examples,
        params,
        tolerance: ParityTolerance,
        batch_size: int,
        null_threshold: float = 0.0,
    ):
        from distilqa.qa.predictor import QAPredictor

        self.tokenizer, self.examples, self.params = tokenizer, examples, params
        self.tolerance, self.batch_size, self.null_threshold = tolerance, batch_size, float(null_threshold)
        reference = self._run(QAPredictor(model, tokenizer, params, null_threshold=self.null_threshold))
        self.features = reference.features
        self.mask = np.asarray(self.features["attention_mask"], dtype=bool)
        self.start, self.end = reference.start_logits, reference.end_logits
        self.predictions, self.scores = reference.predictions, reference.headline
        self.version_2 = bool(getattr(examples, "version_2", False))
        if self.version_2:
            self.scores = {**self.scores, **no_answer_scores(reference)}
        self.question_f1 = question_f1(examples, self.predictions)
        self.failures: list[str] = []

    def _run(self, predictor):
        from distilqa.qa.evaluation import evaluate_model

        return evaluate_model(predictor, self.examples, batch_size=self.batch_size, keep_logits=True)

    def compare(self, onnx_file: Path, quantized: bool) -> dict[str, Any]:
        """Run the export on the same features; record a failure when it misses the tolerance."""
        return self.compare_backend(OnnxQAModel(onnx_file), quantized)

    def compare_backend(self, backend, quantized: bool) -> dict[str, Any]:
        """:meth:`compare` for any backend :class:`~distilqa.qa.predictor.QAPredictor` runs (``__call__``,
        ``input_names``)."""
        from distilqa.qa.predictor import QAPredictor

        export = self._run(
            QAPredictor(backend, self.tokenizer, self.params, null_threshold=self.null_threshold)
        )
        start, end, predictions, scores = (
            export.start_logits,
            export.end_logits,
            export.predictions,
            export.headline,
        )
        diff = max(np.abs(self.start - start)[self.mask].max(), np.abs(self.end - end)[self.mask].max())
        same = sum(predictions.get(k) == v for k, v in self.predictions.items())
        low, high = paired_bootstrap_interval(self.question_f1, question_f1(self.examples, predictions))
        result = {
            "max_abs_logit_diff": float(diff),
            "span_agreement": round(same / len(self.predictions), 4),
            **scores,
            "f1_change": round(scores["f1"] - self.scores["f1"], 2),
            # 95% paired bootstrap interval over these questions: how much the change could move on another
            # sample of the same size
            "f1_change_95ci": [round(low, 2), round(high, 2)],
        }
        if self.version_2:
            result.update(no_answer_scores(export))
            result["no_answer_flips"] = no_answer_flips(self.predictions, predictions)
            for key in ("HasAns_f1", "NoAns_f1"):
                if key in result and key in self.scores:
                    result[f"{key}_change"] = round(result[key] - self.scores[key], 2)
        tol = self.tolerance
        kind = "INT8" if quantized else "fp32"
        if self.version_2 and result["no_answer_flips"] > tol.max_no_answer_flips:
            self.failures.append(
                f"{kind} flips the answer / no-answer decision of {result['no_answer_flips']:.1%} of the questions "
                f"(answered {self.scores['answered']:.1%} -> {result['answered']:.1%}, no-answer threshold "
                f"{self.null_threshold:g}) > --max_no_answer_flips {tol.max_no_answer_flips:g}"
            )
        if not quantized and result["max_abs_logit_diff"] > tol.max_logit_diff:
            self.failures.append(
                f"fp32 max |logit diff| {diff:.2e} > --max_logit_diff {tol.max_logit_diff:g}"
            )
        if quantized and result["span_agreement"] < tol.min_span_agreement:
            self.failures.append(
                f"INT8 span agreement {result['span_agreement']:.1%} < --min_span_agreement {tol.min_span_agreement:g}"
            )
        if quantized and -result["f1_change"] > tol.max_f1_drop:
            self.failures.append(
                f"INT8 F1 drop {-result['f1_change']:.2f} > --max_f1_drop {tol.max_f1_drop:g} (95% interval "
                f"of the change on these {len(self.predictions)} questions: {low:+.2f} to {high:+.2f})"
            )
        return result


def no_answer_scores(evaluation) -> dict[str, float]:
    """SQuAD 2.0: HasAns / NoAns F1 (rounded) and the share of questions answered (not ``""``)."""
    out = {
        k: round(float(evaluation.metrics[k]), 2)
        for k in ("HasAns_f1", "NoAns_f1")
        if k in evaluation.metrics
    }
    predictions = evaluation.predictions
    out["answered"] = round(sum(bool(v) for v in predictions.values()) / max(len(predictions), 1), 4)
    return out


def no_answer_flips(reference: dict[str, str], other: dict[str, str]) -> float:
    """The share of questions answered in one of the two prediction sets and given no answer (``""``) in the
    other."""
    flips = sum(bool(text) != bool(other.get(qid, "")) for qid, text in reference.items())
    return round(flips / max(len(reference), 1), 4)
