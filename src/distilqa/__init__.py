"""distilqa: task-specific knowledge distillation for extractive question answering.

The public API is re-exported lazily so that ``import distilqa`` (and ``distilqa --help``) stays fast:
torch and transformers are imported only when a name that needs them is first used.
"""

from __future__ import annotations

import importlib

from distilqa import _compat

__version__ = "0.1.0"

_LAZY = {
    "InputError": "distilqa.errors",
    "load_examples": "distilqa.qa.data",
    "SquadExamples": "distilqa.qa.data",
    "prepare_train_features": "distilqa.qa.features",
    "prepare_eval_features": "distilqa.qa.features",
    "validate_feature_params": "distilqa.qa.features",
    "postprocess_predictions": "distilqa.qa.postprocess",
    "squad_v1_score": "distilqa.qa.metrics",
    "squad_v2_score": "distilqa.qa.metrics",
    "score_predictions": "distilqa.qa.metrics",
    "QAPredictor": "distilqa.qa.predictor",
}

__all__ = ["__version__", *_LAZY]

_compat.install()  # the 0.1 module names (distilqa.distillation, ...) keep working for one release


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'distilqa' has no attribute {name!r}")
