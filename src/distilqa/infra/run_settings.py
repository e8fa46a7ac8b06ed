"""The settings a ``train`` / ``distill`` run is made of, recorded so that ``--resume`` continues the same run.

:func:`run_settings` collects what decides a run's weights: the command, the models (sha256 of their weights and
config, so a model changed at the same path is seen), the training data (sha256 of the file, or the hub name and
split), and the options of the schedule, the batch, the optimizer, the windowing and the loss. The run writes them
into ``OUTPUT_DIR/distilqa_run.json`` when it starts, and into each checkpoint's completeness marker
(:mod:`distilqa.infra.checkpoints`). :func:`check_resume` compares the settings of a ``--resume`` with those of the
checkpoint it would continue and refuses, naming each setting that differs, rather than continue another run.

What may change between a run and its resume: where and how often it saves, logs and evaluates, the eval data,
and other options that do not change the training (see :data:`TRAINING_KEYS`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from distilqa.errors import InputError
from distilqa.infra.files import atomic_write_json, looks_local

RUN_FILE = "distilqa_run.json"

# The options that decide a run's weights (those the config has; distill's loss terms only for distill).
TRAINING_KEYS = (
    "max_steps", "num_train_epochs", "seed", "data_seed", "per_device_train_batch_size",
    "gradient_accumulation_steps", "learning_rate", "lr_scheduler_type", "warmup_steps", "warmup_ratio",
    "weight_decay", "adam_beta1", "adam_beta2", "adam_epsilon", "max_grad_norm", "optim", "bf16", "fp16",
    "label_smoothing_factor", "max_seq_length", "doc_stride", "max_query_length", "temperature", "alpha_ce",
    "alpha_squad", "alpha_hidden", "alpha_attention", "attention_relation_heads", "teacher_dtype",
)  # fmt: skip

# Options added later, recorded only when they differ from their default: a checkpoint made before they existed
# (which records none) resumes with the default, and one made with another value is refused like any setting.
DEFAULTED_KEYS = {"alpha_null": 0.0, "null_window_weight": 1.0}


def model_fingerprint(name_or_path: str) -> dict[str, str]:
    """sha256 of a model's weights and config (a local folder, a run folder, or a hub model in the local cache);
    the name alone where the files cannot be read."""
    from distilqa.distill.cache.fingerprint import teacher_component

    try:
        return teacher_component(name_or_path)
    except (InputError, OSError, ValueError):
        return {"name": str(name_or_path)}


def data_fingerprint(source: str, split: str | None) -> dict[str, str]:
    """sha256 of a local data file; a hub dataset's name and split."""
    from distilqa.distill.cache.fingerprint import file_sha256

    if looks_local(source) and Path(source).is_file():
        return {"sha256": file_sha256(Path(source))}
    return {"name": str(source), "split": str(split)}


def run_settings(command: str, model_args, data_args, config) -> dict[str, Any]:
    """The settings of a run (JSON values), see the module docstring."""
    models = {}
    for name in ("model_name_or_path", "teacher", "student"):
        value = getattr(model_args, name, None)
        if value:
            models["model" if name == "model_name_or_path" else name] = model_fingerprint(value)
    settings: dict[str, Any] = {"command": command, **models}
    settings["train_file"] = data_fingerprint(data_args.train_file, data_args.train_split)
    settings["max_train_samples"] = data_args.max_train_samples
    settings["processes"] = int(getattr(config, "world_size", 1) or 1)
    if hasattr(config, "teacher_cache"):
        settings["teacher_cache"] = bool(config.teacher_cache)  # cached logits are rounded to float16
    for key in TRAINING_KEYS:
        if hasattr(config, key):
            value = getattr(config, key)
            settings[key] = value if isinstance(value, (int, float, str, bool, type(None))) else str(value)
    for key, default in DEFAULTED_KEYS.items():
        if hasattr(config, key) and getattr(config, key) != default:
            settings[key] = getattr(config, key)
    return json.loads(json.dumps(settings))  # plain JSON, as read back


def write_run_settings(output_dir: str | os.PathLike, settings: dict[str, Any]) -> Path:
    return atomic_write_json(Path(output_dir) / RUN_FILE, settings)


def recorded_settings(checkpoint: str | os.PathLike) -> dict[str, Any] | None:
    """The settings recorded in a checkpoint's completeness marker, else in its run folder's ``distilqa_run.json``."""
    from distilqa.infra.checkpoints import COMPLETE_MARKER

    checkpoint = Path(checkpoint)
    for path, key in ((checkpoint / COMPLETE_MARKER, "run"), (checkpoint.parent / RUN_FILE, None)):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        record = record.get(key) if key and isinstance(record, dict) else record
        if isinstance(record, dict):
            return record
    return None


def _flat(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key} "))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _show(value: Any) -> str:
    if isinstance(value, str) and len(value) == 64:
        return value[:12]  # a sha256
    return json.dumps(value) if not isinstance(value, str) else value


def differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``"name RECORDED (now CURRENT)"`` for each setting that differs, in the order of ``current``."""
    old, new = _flat(recorded), _flat(current)
    found = []
    for key in dict.fromkeys([*new, *old]):
        if old.get(key, "unset") != new.get(key, "unset"):
            was = _show(old[key]) if key in old else "unset"
            now = _show(new[key]) if key in new else "unset"
            found.append(f"{key} {was} (now {now})")
    return found


def check_resume(checkpoint: str | os.PathLike, current: dict[str, Any]) -> None:
    """Refuse to resume ``checkpoint`` with settings other than those it was made with.

    A checkpoint of distilqa 0.1 records none: it is resumed with a warning.

    Raises:
        InputError: one line naming every setting that differs.
    """
    import logging

    recorded = recorded_settings(checkpoint)
    if recorded is None:
        logging.getLogger(__name__).warning(
            "%s records no run settings (distilqa 0.1): resuming without checking them", checkpoint
        )
        return
    changed = differences(recorded, current)
    if changed:
        raise InputError(
            f"--resume: {checkpoint} was made with other settings: {'; '.join(changed)}; resume with the "
            "options it was made with, or start a fresh run in another output_dir"
        )
