"""Model backends for :class:`distilqa.qa.predictor.QAPredictor` beside PyTorch: an exported ONNX model on onnxruntime."""

from __future__ import annotations

import json
import os
import types
from pathlib import Path

import numpy as np

from distilqa.errors import InputError

ONNX_FILE = "model.onnx"


OUTPUTS = ("start_logits", "end_logits")


INSTALL_HINT = "pip install 'distilqa[onnx]'"


def require(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise InputError(f"ONNX export and inference need {module.split('.')[0]}: {INSTALL_HINT}") from None


class OnnxQAModel:
    """An exported ``model.onnx`` behind the backend interface of :class:`distilqa.qa.predictor.QAPredictor`.

    Args:
        path: the ``model.onnx`` file (or the folder holding it).
        threads (`int`, *optional*): intra-op threads (default: onnxruntime's choice, the physical cores).

    ``model(batch)`` takes ``{input name: int64 array (B, L)}`` and returns float32 ``(start_logits,
    end_logits)``, each (B, L); B and L may differ from call to call.
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        ort = require("onnxruntime")
        path = Path(path)
        if path.is_dir():
            path = path / ONNX_FILE
        if not path.is_file():
            raise InputError(f"{path} does not exist; export a model first with 'distilqa export'")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        if threads:
            options.intra_op_num_threads = int(threads)
        try:
            self.session = ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # noqa: BLE001 - onnxruntime raises its own, untyped errors
            raise InputError(
                f"onnxruntime cannot load {path}: {' '.join(str(err).split())[:200]}; re-export it"
            ) from None
        self.path = path
        self.input_names = [i.name for i in self.session.get_inputs()]
        missing = [o for o in OUTPUTS if o not in {o.name for o in self.session.get_outputs()}]
        if missing:
            raise InputError(f"{path} has no output {missing[0]!r}; export it with 'distilqa export'")
        config = path.parent / "config.json"
        # Read-only view of config.json (e.g. max_position_embeddings) without importing transformers.
        self.config = (
            types.SimpleNamespace(**json.loads(config.read_text(encoding="utf-8")))
            if config.exists()
            else None
        )

    def __call__(self, batch: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        missing = [n for n in self.input_names if n not in batch]
        if missing:
            raise InputError(
                f"{self.path} needs input {missing[0]!r}; build features with the tokenizer saved beside it"
            )
        feeds = {n: np.ascontiguousarray(batch[n], dtype=np.int64) for n in self.input_names}
        start, end = self.session.run(list(OUTPUTS), feeds)
        return start, end
