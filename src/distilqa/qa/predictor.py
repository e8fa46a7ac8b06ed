"""One predictor for every path that runs a QA model: evaluate, predict, the trainer-free demo steps, benchmarks.

:class:`QAPredictor` wraps a PyTorch model or an exported ONNX folder behind the same calls, builds features
with :mod:`distilqa.qa.features` and turns logits into answers with :mod:`distilqa.qa.postprocess`, so every backend
is scored by identical code.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from distilqa.errors import InputError
from distilqa.qa.features import FeatureParams, build_eval_features, model_input_names
from distilqa.qa.postprocess import mask_padding

TARGET_FILE = "distilqa_target.json"  # the choice of export --target auto


@dataclass
class PredictOptions:
    """Post-processing options.

    Args:
        n_best (`int`, defaults to 20): candidate starts/ends per window and answers kept per question.
        max_answer_length (`int`, defaults to 30): longest answer, in tokens.
        null_threshold (`float`, *optional*): SQuAD 2.0: answer "" when null score - best span score > this.
            `None` (the default): the predictor's own, i.e. the threshold saved with the model folder
            (:mod:`distilqa.qa.threshold`), else 0.0.
    """

    n_best: int = 20
    max_answer_length: int = 30
    null_threshold: float | None = field(
        default=None,
        metadata={
            "help": "SQuAD 2.0: answer '' when null - best span score exceeds this. Default: the threshold saved "
            "with the model (distilqa_threshold.json, chosen on dev data by train/distill), else 0.0",
        },
    )

    def __post_init__(self):
        if self.n_best <= 0:
            raise InputError(f"n_best must be >= 1, got {self.n_best}; pass --n_best 1 or more")
        if self.max_answer_length <= 0:
            raise InputError(
                f"max_answer_length must be >= 1, got {self.max_answer_length}; pass --max_answer_length 1 or more"
            )


def read_target(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The :data:`TARGET_FILE` (written by ``export --target auto``, :mod:`distilqa.export.target`) of ``folder`` (or of its ``model/``), `None` when there is none."""
    for candidate in (Path(folder) / TARGET_FILE, Path(folder) / "model" / TARGET_FILE):
        if candidate.is_file():
            try:
                return json.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                raise InputError(
                    f"{candidate} is not valid JSON; run 'distilqa export --target auto' again"
                ) from None
    return None


def folder_precision(path: str | os.PathLike, device: str = "cpu") -> str:
    """The precision ``export --target auto`` wrote for a PyTorch folder; fp32 for any other folder.

    A folder chosen bf16 on one machine and loaded on a machine without native bf16 runs ``auto`` there.
    """
    from distilqa.infra.precision import resolve_precision

    target = read_target(path) if Path(path).is_dir() else None
    chosen = (target or {}).get("chosen", {}).get("precision", "fp32")
    if chosen not in ("fp32", "bf16", "fp16"):  # an ONNX export runs as exported
        return "fp32"
    try:
        resolve_precision(chosen, device)
    except InputError:
        return "auto"
    return chosen


def is_onnx_folder(path: str | os.PathLike) -> bool:
    return Path(path).is_dir() and (Path(path) / "model.onnx").exists()


class QAPredictor:
    """Run a QA model (PyTorch or ONNX) over SQuAD examples or free question/context pairs.

    Args:
        model: a ``PreTrainedModel`` for question answering, or any callable backend with
            ``__call__(inputs: dict[str, np.ndarray]) -> (start_logits, end_logits)`` and ``input_names``.
        tokenizer: its fast tokenizer.
        params (:class:`FeatureParams`): windowing (max_seq_length 384, doc_stride 128 by default).
        device (`str`, defaults to ``"cpu"``): torch device for PyTorch models.
        precision (`str`, defaults to ``"fp32"``): ``fp32``, ``bf16``, ``fp16`` (CUDA) or ``auto`` (the fastest this
            device runs natively; see :mod:`distilqa.infra.precision`). A PyTorch model is cast to it; an ONNX
            export runs as exported (fp32 only). Logits reach post-processing as fp32.
        null_threshold (`float`, defaults to 0.0): SQuAD 2.0 threshold used when ``PredictOptions.null_threshold``
            is `None`; :meth:`from_pretrained` sets it from the folder's saved threshold.

    Example::

        >>> predictor = QAPredictor.from_pretrained("runs/student")
        >>> predictor.answer(["Who wrote it?"], ["It was written by Ada Lovelace in 1843."])
        [{'answer': 'ada lovelace', ...}]
    """

    def __init__(
        self,
        model,
        tokenizer,
        params: FeatureParams | None = None,
        device: str = "cpu",
        precision: str = "fp32",
        null_threshold: float = 0.0,
    ):
        from distilqa.infra.precision import resolve_precision

        self.model = model
        self.null_threshold = float(null_threshold)
        # where null_threshold came from, one line (set by from_pretrained); threshold_is_news: not the default
        self.threshold_note, self.threshold_is_news = f"no-answer threshold {self.null_threshold:g}", False
        self.tokenizer = tokenizer
        self.params = params or FeatureParams()
        self.device = device
        self.backend = "onnx" if not hasattr(model, "parameters") else "torch"
        self.precision = resolve_precision(precision, device, backend=self.backend)
        if self.backend == "torch":
            from distilqa.infra.models import forward_parameters

            model.to(device=device, dtype=self.precision.torch_dtype)
            model.eval()
            self.input_names = [n for n in tokenizer.model_input_names if n in forward_parameters(model)]
        else:
            self.input_names = list(model.input_names)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        params: FeatureParams | None = None,
        device: str = "cpu",
        trust_remote_code: bool = False,
        tokenizer=None,
        precision: str | None = None,
        null_threshold: float | None = None,
    ) -> QAPredictor:
        """Load a saved PyTorch model folder, a hub name, or an ONNX folder made by ``distilqa export``.

        ``tokenizer`` (already loaded from the same folder) skips loading it again. ``precision=None``: the one
        ``distilqa export --target auto`` chose for the folder (``auto`` where this machine cannot run it), else
        fp32. ``null_threshold=None``: the SQuAD 2.0 threshold saved with the folder
        (:func:`distilqa.qa.threshold.resolve_threshold`), else 0.0; ``threshold_note`` says which.
        """
        from distilqa.infra.models import load_qa_model, load_tokenizer
        from distilqa.qa.threshold import resolve_threshold

        if precision is None:
            precision = folder_precision(name_or_path, device)

        if is_onnx_folder(name_or_path):
            from distilqa.qa.backends import OnnxQAModel

            model = OnnxQAModel(Path(name_or_path) / "model.onnx")
        else:
            model = load_qa_model(name_or_path, require_qa_head=True, trust_remote_code=trust_remote_code)
        if tokenizer is None:
            tokenizer = load_tokenizer(name_or_path, trust_remote_code=trust_remote_code)
        threshold, note, news = resolve_threshold(name_or_path, null_threshold)
        predictor = cls(
            model, tokenizer, params=params, device=device, precision=precision, null_threshold=threshold
        )
        predictor.threshold_note, predictor.threshold_is_news = note, news
        return predictor

    def logits(
        self, features, batch_size: int = 32, progress: bool = True, sort_by_length: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Start and end logits, shape (num_features, max_seq_length), float32.

        With ``sort_by_length`` (the default) the windows are batched longest first, so that short contexts do not
        pay for long ones; each batch is cut to its longest real sequence (trailing padding columns are not
        computed) and the logits go back to the windows' own rows; every padding position gets a very low value
        (:func:`~distilqa.qa.postprocess.mask_padding`), so padding never fills the n-best. The order changes which windows share a batch, not the answers.
        """
        from tqdm.auto import tqdm

        if batch_size <= 0:
            raise InputError(f"batch_size must be >= 1, got {batch_size}; pass --batch_size 1 or more")
        names = [n for n in model_input_names(features) if n in self.input_names]
        columns = {n: np.asarray(features[n], dtype=np.int64) for n in names}
        total, length = columns["input_ids"].shape
        starts = np.full((total, length), -1e4, dtype=np.float32)
        ends = np.full((total, length), -1e4, dtype=np.float32)
        lengths = columns["attention_mask"].sum(axis=1)
        order = np.argsort(-lengths, kind="stable") if sort_by_length else np.arange(total)
        bar = tqdm(total=total, desc="Predicting", unit="win", disable=not progress, leave=False)
        for begin in range(0, total, batch_size):
            rows = order[begin : begin + batch_size]
            width = int(lengths[rows].max())
            batch = {n: c[rows, :width] for n, c in columns.items()}
            start, end = self._forward(batch)
            starts[rows, :width] = start
            ends[rows, :width] = end
            bar.update(len(rows))
        bar.close()
        mask = columns["attention_mask"].astype(bool)
        return mask_padding(starts, mask), mask_padding(ends, mask)

    def _forward(self, batch: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        if self.backend != "torch":
            return self.model(batch)
        import torch

        with torch.inference_mode():
            inputs = {k: torch.from_numpy(v).to(self.device) for k, v in batch.items()}
            out = self.model(**inputs)
        return out.start_logits.float().cpu().numpy(), out.end_logits.float().cpu().numpy()

    def predict_examples(
        self,
        examples,
        batch_size: int = 32,
        options: PredictOptions | None = None,
        version_2: bool | None = None,
        progress: bool = True,
    ):
        """Answers for SQuAD examples: a :class:`distilqa.qa.postprocess.PostprocessResult`."""
        return self.run(examples, batch_size, options, version_2, progress)[-1]

    def run(
        self,
        examples,
        batch_size: int = 32,
        options: PredictOptions | None = None,
        version_2: bool | None = None,
        progress: bool = True,
    ):
        """Features -> logits -> answers: ``(features, start_logits, end_logits, PostprocessResult)``."""
        features = build_eval_features(examples, self.tokenizer, self.params)
        start, end = self.logits(features, batch_size=batch_size, progress=progress)
        return features, start, end, self.postprocess(examples, features, start, end, options, version_2)

    def postprocess(
        self,
        examples,
        features,
        start: np.ndarray,
        end: np.ndarray,
        options: PredictOptions | None = None,
        version_2: bool | None = None,
    ):
        """Answers from the logits of ``features`` (built from ``examples`` by this predictor's windowing)."""
        from distilqa.qa.postprocess import offsets_array, postprocess_predictions

        options = options or PredictOptions()
        v2 = getattr(examples, "version_2", False) if version_2 is None else version_2
        return postprocess_predictions(
            examples,
            features["example_id"],
            offsets_array(features["offset_mapping"]),
            start,
            end,
            n_best=options.n_best,
            max_answer_length=options.max_answer_length,
            version_2=v2,
            null_threshold=self.null_threshold if options.null_threshold is None else options.null_threshold,
        )

    def answer(
        self,
        questions: list[str],
        contexts: list[str],
        batch_size: int = 32,
        options: PredictOptions | None = None,
        allow_null: bool = False,
        progress: bool = False,
        alternatives: int = 0,
    ) -> list[dict[str, Any]]:
        """Answer free question/context pairs: ``[{"answer", "score", "probability", "start", "end"}]``.

        ``alternatives`` > 0 adds ``"alternatives"``: up to that many n-best entries (best first, the answer
        itself included) with the same keys; at most ``options.n_best`` exist.
        """
        from distilqa.qa.data import SquadExamples

        if len(questions) != len(contexts):
            raise InputError(
                f"got {len(questions)} questions but {len(contexts)} contexts; give one context per question"
            )
        rows = []
        for i, (question, context) in enumerate(zip(questions, contexts, strict=True)):
            for key, value in (("question", question), ("context", context)):
                if not isinstance(value, str) or not value.strip():
                    raise InputError(f"item {i}: '{key}' is missing or empty; give non-empty text")
            rows.append(
                {
                    "id": str(i),
                    "question": question,
                    "context": context,
                    "answers": {"text": [], "answer_start": []},
                }
            )
        examples = SquadExamples(rows, version_2=allow_null, source="input")
        result = self.predict_examples(examples, batch_size=batch_size, options=options, progress=progress)
        answers = []
        for row in rows:
            best = result.best_entry(row["id"])
            answers.append(
                {
                    "question": row["question"],
                    "answer": result.predictions[row["id"]],
                    "score": None if best is None else float(best["start_logit"] + best["end_logit"]),
                    "probability": None if best is None else float(best["probability"]),
                    "start": None if best is None else int(best["start"]),
                    "end": None if best is None else int(best["end"]),
                }
            )
            if alternatives > 0:
                answers[-1]["alternatives"] = [_entry(e) for e in result.nbest[row["id"]][:alternatives]]
        return answers


def _entry(entry: dict[str, Any]) -> dict[str, Any]:
    """An n-best entry with the keys of :meth:`QAPredictor.answer` (``start``/``end`` None for the null answer)."""
    null = entry["start"] < 0
    return {
        "answer": entry["text"],
        "score": float(entry["start_logit"] + entry["end_logit"]),
        "probability": float(entry["probability"]),
        "start": None if null else int(entry["start"]),
        "end": None if null else int(entry["end"]),
    }
