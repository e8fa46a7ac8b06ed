"""The teacher cache's fingerprint: a sha256 of everything that determines the cached logits."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from distilqa.errors import InputError
from distilqa.infra.files import file_sha256, looks_local


def _json_sha256(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Fingerprint:
    """What determines the teacher's logits, one JSON-able value per component; ``digest`` is its sha256."""

    components: dict[str, Any]

    @property
    def digest(self) -> str:
        return _json_sha256(self.components)

    def changes(self, recorded: dict[str, Any]) -> list[str]:
        """Human-readable differences between ``recorded`` components (a cache's) and these (the live ones)."""
        out = []
        for name in sorted(set(self.components) | set(recorded)):
            old, new = recorded.get(name), self.components.get(name)
            if old == new:
                continue
            if isinstance(old, dict) and isinstance(new, dict):
                keys = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
                detail = ", ".join(f"{k} {_short(old.get(k))} -> {_short(new.get(k))}" for k in keys)
            else:
                detail = f"{_short(old)} -> {_short(new)}"
            out.append(f"{name} ({detail})")
        return out


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text[:12] if isinstance(value, str) and len(value) == 64 else text[:60]


def teacher_files(teacher: str | os.PathLike) -> tuple[list[Path], Path]:
    """The teacher's safetensors weight file(s) and its config.json (a local folder, or from the hub cache).

    A distilqa run folder stands for its ``model/`` (:func:`distilqa.infra.models.resolve_model`).
    """
    from distilqa.infra.models import resolve_model

    teacher = resolve_model(teacher)
    if looks_local(teacher):
        folder = Path(teacher)

        def resolve(name: str) -> Path | None:
            return folder / name if (folder / name).is_file() else None

    else:
        from transformers.utils import cached_file

        def resolve(name: str) -> Path | None:
            found = cached_file(str(teacher), name, _raise_exceptions_for_missing_entries=False)
            return Path(found) if found else None

    config = resolve("config.json")
    index = resolve("model.safetensors.index.json")
    if index is not None:
        shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        weights = [resolve(name) for name in shards]
    else:
        weights = [resolve("model.safetensors")]
    if config is None or any(w is None for w in weights):
        raise InputError(
            f"teacher {teacher} has no config.json and model.safetensors; give a folder saved with save_pretrained"
        )
    return weights, config


def teacher_component(teacher: str | os.PathLike) -> dict[str, str]:
    """sha256 of the teacher's weight files (streamed) and of its config without re-save noise."""
    weights, config_file = teacher_files(teacher)
    digest = hashlib.sha256()
    for path in weights:
        digest.update(path.name.encode())
        digest.update(file_sha256(path).encode())
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config = {k: v for k, v in config.items() if k not in VOLATILE_CONFIG_KEYS}
    return {"weights": digest.hexdigest(), "config": _json_sha256(config)}


def tokenizer_component(tokenizer) -> str:
    """sha256 of the tokenizer's vocabulary, normalizer, pre-tokenizer and special tokens (not its class)."""
    from distilqa.infra.models import tokenizer_signature

    signature = tokenizer_signature(tokenizer)
    signature.pop("class", None)  # BertTokenizerFast and DistilBertTokenizerFast over one vocab agree
    return _json_sha256(signature)


def data_component(features, chunk_rows: int = 2048) -> dict[str, Any]:
    """sha256 of the windows' token ids, token types and attention masks (the arrays, as int64)."""
    columns = [c for c in DATA_COLUMNS if c in features.column_names]
    if "input_ids" not in columns:
        raise InputError(
            "the training features have no input_ids column; build them with distilqa.qa.features.build_train_features"
        )
    digest = hashlib.sha256()
    table = features.with_format("numpy", columns=columns)
    width = None
    for start in range(0, len(features), chunk_rows):
        batch = table[start : start + chunk_rows]
        for name in columns:
            array = batch[name]
            if array.dtype == object or array.ndim != 2:
                raise InputError(
                    "the teacher cache needs windows of one length: build the features with padding='max_length'"
                )
            width = array.shape[1]
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(array, dtype=np.int64).tobytes())
    return {"rows": len(features), "seq_len": width, "columns": columns, "sha256": digest.hexdigest()}


def compute_fingerprint(
    teacher, tokenizer, train_features, feature_params, teacher_dtype: str, projector=None
) -> Fingerprint:
    """The :class:`Fingerprint` of a cache for these inputs (reads the teacher's files, not the model).

    With a ``projector`` (:class:`distilqa.distill.projection.SpanProjector`: the teacher tokenizes differently)
    the teacher's own windows and the temperature the projection used are part of it too.
    """
    components = {
        "teacher": teacher_component(teacher),
        "tokenizer": tokenizer_component(tokenizer),
        "features": {**feature_params.to_dict(), "padding": "max_length"},
        "data": data_component(train_features),
        "teacher_dtype": teacher_dtype,
    }
    if projector is not None:
        components["projection"] = projector.fingerprint()
    return Fingerprint(components)


# Config keys that change when a model is merely re-saved, not what it computes.
VOLATILE_CONFIG_KEYS = ("transformers_version", "_name_or_path", "dtype", "torch_dtype")


DATA_COLUMNS = ("input_ids", "token_type_ids", "attention_mask")
