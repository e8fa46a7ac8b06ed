"""distilqa: task-specific knowledge distillation for extractive question answering.

The public API is re-exported lazily so that ``import distilqa`` (and ``distilqa --help``) stays fast:
torch and transformers are imported only when a name that needs them is first used.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "InputError": "distilqa.errors",
    "load_examples": "distilqa.data",
    "SquadExamples": "distilqa.data",
    "prepare_train_features": "distilqa.features",
    "prepare_eval_features": "distilqa.features",
    "validate_feature_params": "distilqa.features",
    "postprocess_predictions": "distilqa.postprocess",
    "squad_v1_score": "distilqa.metrics",
    "squad_v2_score": "distilqa.metrics",
    "score_predictions": "distilqa.metrics",
    "QAPredictor": "distilqa.inference",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'distilqa' has no attribute {name!r}")
