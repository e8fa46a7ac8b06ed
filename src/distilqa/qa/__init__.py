"""Extractive question answering, the pipeline's first half: data -> features -> model -> post-processing -> metrics.

``data`` loads SQuAD v1.1/v2.0, ``features`` cuts questions and contexts into windows, ``trainer`` is the
``Trainer`` with SQuAD evaluation, ``postprocess`` turns logits into answers, ``metrics`` scores them as the
official scripts do, ``predictor`` runs any backend (``backends``: PyTorch or ONNX Runtime) end to end and
``evaluation`` is the one path that evaluates a model folder. Nothing here imports distillation or export.
"""
