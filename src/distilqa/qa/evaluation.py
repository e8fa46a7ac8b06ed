"""The one evaluation path: a model (folder, ONNX export or loaded predictor) on SQuAD examples -> predictions,
metrics and speed.

``distilqa evaluate``, the demo, ``distilqa benchmark inference``, the export parity check and the experiments all
call :func:`evaluate_model`, so every number they report is computed by the same features, forward pass,
post-processing and official-exact scoring. (Evaluation inside training runs through the same post-processing
and metrics from :class:`distilqa.qa.trainer.QuestionAnsweringTrainer`.)

Example::

    >>> from distilqa import load_examples
    >>> from distilqa.qa.evaluation import evaluate_model
    >>> evaluation = evaluate_model("runs/student", load_examples("dev.json"))
    >>> evaluation.headline, round(evaluation.questions_per_second)
    ({'exact_match': 61.2, 'f1': 70.4}, 180)
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from distilqa.qa.features import FeatureParams
from distilqa.qa.predictor import PredictOptions, QAPredictor


@dataclass
class Evaluation:
    """What :func:`evaluate_model` measured.

    Attributes:
        result (:class:`distilqa.qa.postprocess.PostprocessResult`): predictions, n-best lists, null odds.
        metrics (`dict`): the official SQuAD v1.1 / v2.0 scores (``exact_match``/``f1``, or ``exact``/``f1``/
            ``best_f1``/... for v2).
        num_questions (`int`), num_windows (`int`): what was evaluated.
        seconds (`float`): wall time of features + forward + post-processing (scoring excluded).
        backend (`str`): ``"torch"`` or ``"onnx"``.
        features, start_logits, end_logits: the windows and their logits, kept when ``keep_logits=True``.
    """

    result: Any
    metrics: dict[str, Any]
    num_questions: int
    num_windows: int
    seconds: float
    backend: str
    precision: dict[str, str] = field(default_factory=dict)
    features: Any = None
    start_logits: np.ndarray | None = None
    end_logits: np.ndarray | None = None

    @property
    def predictions(self) -> dict[str, str]:
        return self.result.predictions

    @property
    def headline(self) -> dict[str, float]:
        """EM and F1 rounded to 2 decimals, under the v1.1 names (v2's ``exact`` reported as ``exact_match``)."""
        em = self.metrics.get("exact_match", self.metrics.get("exact", 0.0))
        return {"exact_match": round(float(em), 2), "f1": round(float(self.metrics["f1"]), 2)}

    @property
    def questions_per_second(self) -> float:
        return self.num_questions / self.seconds if self.seconds > 0 else float("inf")

    def speed(self) -> dict[str, Any]:
        return {
            "num_questions": self.num_questions,
            "num_windows": self.num_windows,
            "seconds": round(self.seconds, 3),
            "questions_per_second": round(self.questions_per_second, 2),
            "backend": self.backend,
            **self.precision,
        }


def no_answer_scoring(
    predictor: QAPredictor, options: PredictOptions | None, result, v2: bool
) -> dict[str, Any]:
    """The ``na_probs`` / ``na_prob_thresh`` arguments of the v2 scoring: the null odds, cut at the threshold the
    answers were cut at (the script's default cut, 1.0, is meant for probabilities, not odds)."""
    if not v2:
        return {}
    given = None if options is None else options.null_threshold
    return {
        "na_probs": result.null_odds,
        "na_prob_thresh": predictor.null_threshold if given is None else given,
    }


def scored_answers(result, v2: bool) -> dict[str, str]:
    """The answers to score: v1.1 the predictions; v2 each question's best non-null span, which the scoring cuts
    to "no answer" where the null odds exceed the threshold in force. EM/F1 at that threshold are the same as
    scoring the cut predictions; ``best_f1`` can then also find a threshold above it (the predictions already
    cut to ``""`` would hide every higher one: the bug of transformers#8710)."""
    if not v2:
        return result.predictions
    from distilqa.qa.threshold import span_predictions

    return span_predictions(result)


def evaluate_model(
    model: str | os.PathLike | QAPredictor,
    examples,
    params: FeatureParams | None = None,
    options: PredictOptions | None = None,
    batch_size: int = 32,
    device: str = "cpu",
    trust_remote_code: bool = False,
    precision: str | None = None,
    keep_logits: bool = False,
    progress: bool = False,
) -> Evaluation:
    """Evaluate ``model`` on ``examples``: predictions, official-exact metrics and speed.

    Args:
        model: a model folder (PyTorch ``save_pretrained`` or an ONNX export), a hub name, or a
            :class:`QAPredictor` (then ``params``, ``device``, ``trust_remote_code`` and ``precision`` are its own).
        examples (:class:`distilqa.qa.data.SquadExamples`): the questions, with gold answers.
        params (:class:`FeatureParams`, *optional*): windowing (384 / 128 / 64 by default).
        options (:class:`PredictOptions`, *optional*): n-best, longest answer, SQuAD 2.0 null threshold.
        batch_size (`int`, defaults to 32): windows per forward pass.
        precision (`str`, *optional*): ``fp32``, ``bf16``, ``fp16`` or ``auto``
            (:mod:`distilqa.infra.precision`); default: the folder's ``export --target auto`` choice, else fp32.
            The choice is in :meth:`Evaluation.speed`.
        keep_logits (`bool`, defaults to `False`): keep the features and logits on the result (the parity check
            compares them).
        progress (`bool`, defaults to `False`): show the prediction bar.
    """
    from distilqa.qa.metrics import score_predictions

    predictor = (
        model
        if isinstance(model, QAPredictor)
        else QAPredictor.from_pretrained(
            model, params=params, device=device, trust_remote_code=trust_remote_code
        )
    )
    began = time.perf_counter()
    features, start, end, result = predictor.run(examples, batch_size, options, progress=progress)
    seconds = time.perf_counter() - began
    v2 = getattr(examples, "version_2", False)
    metrics = dict(
        score_predictions(
            examples, scored_answers(result, v2), **no_answer_scoring(predictor, options, result, v2)
        )
    )
    return Evaluation(
        result=result,
        metrics=metrics,
        num_questions=len(examples),
        num_windows=len(features),
        seconds=seconds,
        backend=predictor.backend,
        precision=predictor.precision.to_dict(),
        features=features if keep_logits else None,
        start_logits=start if keep_logits else None,
        end_logits=end if keep_logits else None,
    )
