"""Make a smaller student from chosen layers of a teacher (DistilBERT's initialisation: one layer out of two).

The student has the teacher's architecture with fewer layers. It is built from the teacher's config with a
reduced layer count and loaded with a state dict taken from the teacher: embeddings, the chosen layers (in the
given order, renumbered 0..k-1), the pooler if any and the QA head (``qa_outputs``). Every student tensor must
come from the teacher with the same shape; anything else is an error, so nothing is silently left random.

A teacher without a QA head (a base encoder such as a pretrained MiniLM) is accepted: its ``qa_outputs`` is
newly initialised when it is loaded, and ``info["qa_head"]`` says ``"new"``.

Example::

    >>> from distilqa.distill.student import init_student, save_student
    >>> student, info = init_student("runs/teacher", layers=[0, 2, 4])
    >>> save_student(student, "runs/student-init", info, tokenizer="runs/teacher")
"""

from __future__ import annotations

import copy
import logging
import os
from pathlib import Path
from typing import Any

from distilqa.errors import InputError

logger = logging.getLogger(__name__)

PROVENANCE_FILE = "distilqa_student.json"
# Config fields that hold the layer count, by model family (DistilBERT's n_layers, GPT-style n_layer, ...).
LAYER_COUNT_FIELDS = ("num_hidden_layers", "n_layers", "num_layers", "n_layer")
# Per-layer config lists that must follow the chosen layers.
PER_LAYER_CONFIG_FIELDS = ("layer_types",)


def default_layers(num_teacher_layers: int) -> list[int]:
    """Every other layer starting at 0: ``[0, 2, 4]`` for 6 layers, ``[0, 2, ..., 10]`` for 12."""
    return list(range(0, num_teacher_layers, 2))


def evenly_spaced_layers(num_layers: int, num_teacher_layers: int) -> list[int]:
    """``num_layers`` indices spread evenly over the teacher, starting at 0 (3 of 6 -> ``[0, 2, 4]``)."""
    return [i * num_teacher_layers // num_layers for i in range(num_layers)]


def choose_layers(
    num_teacher_layers: int, layers: list[int] | None = None, num_layers: int | None = None
) -> list[int]:
    """Validate ``layers`` (or pick ``num_layers`` evenly spaced ones, or the default) for a teacher.

    Raises:
        InputError: both given; an index out of range or repeated; no layer; or every layer picked
            implicitly (the default on a 1-layer teacher, or ``num_layers`` >= the teacher's count).
    """
    total = num_teacher_layers
    if layers is not None and num_layers is not None:
        raise InputError("give --layers or --num_layers, not both")
    if layers is None:
        if num_layers is not None:
            if num_layers < 1:
                raise InputError(f"--num_layers must be at least 1, got {num_layers}")
            if num_layers >= total:
                raise InputError(
                    f"--num_layers {num_layers} keeps every layer of a {total}-layer teacher; choose fewer than "
                    f"{total}, or list all layers explicitly with --layers {','.join(map(str, range(total)))}"
                )
            return evenly_spaced_layers(num_layers, total)
        if total < 2:
            raise InputError(f"the teacher has only {total} layer; there is nothing to remove")
        return default_layers(total)
    layers = list(layers)
    if not layers:
        raise InputError("--layers is empty; keep at least one layer, e.g. --layers 0")
    out_of_range = [i for i in layers if not isinstance(i, int) or i < 0 or i >= total]
    if out_of_range:
        raise InputError(
            f"--layers {','.join(map(str, layers))}: {out_of_range[0]} is out of range for a teacher with {total} "
            f"layers; choose indices from 0 to {total - 1}"
        )
    repeated = sorted({i for i in layers if layers.count(i) > 1})
    if repeated:
        raise InputError(
            f"--layers {','.join(map(str, layers))} repeats layer {repeated[0]}; list each layer once"
        )
    return layers


def layer_count_field(config) -> str:
    """The name of the config field that holds the number of layers (``n_layers`` for DistilBERT)."""
    mapped = getattr(config, "attribute_map", {}).get("num_hidden_layers")
    for name in ([mapped] if mapped else []) + list(LAYER_COUNT_FIELDS):
        if isinstance(getattr(config, name, None), int) and name in config.to_dict():
            return name
    raise InputError(
        f"cannot tell how many layers a {type(config).__name__} has (none of {', '.join(LAYER_COUNT_FIELDS)}); "
        "init-student handles BERT-style encoders (BERT, DistilBERT, RoBERTa, ...)"
    )


def find_layer_list(model, num_layers: int) -> str:
    """The dotted name of the ``nn.ModuleList`` holding the ``num_layers`` transformer layers.

    The first ``ModuleList`` under the base model (``model.bert``, ``model.distilbert``, ...) whose length
    equals the configured layer count: ``bert.encoder.layer``, ``distilbert.transformer.layer``.
    """
    from torch import nn

    arch = type(model).__name__
    config = model.config
    if getattr(config, "num_hidden_groups", None) is not None or config.model_type == "albert":
        raise InputError(
            f"{arch} shares one set of layer weights across all its layers (ALBERT), so there are no separate "
            "layers to choose from; pick a teacher with separate layers (BERT, DistilBERT, RoBERTa, ...)"
        )
    prefix = getattr(model, "base_model_prefix", "") or ""
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == num_layers and name.startswith(prefix):
            shared = _shared_parameters(module)
            if shared:
                raise InputError(
                    f"the layers of {arch} share weights ({shared}); init-student needs separate layers"
                )
            return name
    raise InputError(
        f"cannot find the {num_layers} transformer layers of {arch} (no list of {num_layers} modules under "
        f"'{prefix}'); init-student handles BERT-style encoders (BERT, DistilBERT, RoBERTa, ...)"
    )


def _shared_parameters(layers) -> str | None:
    seen: dict[int, str] = {}
    for i, layer in enumerate(layers):
        for name, param in layer.named_parameters():
            owner = seen.setdefault(param.data_ptr(), f"layer {i} {name}")
            if not owner.startswith(f"layer {i} "):
                return f"layer {i} {name} is {owner}"
    return None


def _peek_layer_count(teacher: str | os.PathLike, trust_remote_code: bool) -> int | None:
    """The teacher's layer count from a local folder's config alone, or None (hub names, unreadable configs)."""
    from transformers import AutoConfig

    from distilqa.infra.models import resolve_model

    teacher = resolve_model(teacher)
    if not (Path(teacher) / "config.json").is_file():
        return None
    try:
        config = AutoConfig.from_pretrained(str(teacher), trust_remote_code=trust_remote_code)
        return getattr(config, layer_count_field(config))
    except Exception:  # noqa: BLE001 - loading the model reports the problem properly
        return None


def _load_teacher(teacher, trust_remote_code: bool):
    """``(model, name as given, whether the QA head was trained)`` for a path, a hub name or a model."""
    from distilqa.infra.models import is_qa_config, load_qa_model

    if isinstance(teacher, (str, os.PathLike)):
        model = load_qa_model(teacher, require_qa_head=False, trust_remote_code=trust_remote_code)
        return model, str(teacher), is_qa_config(model.config)
    if not type(teacher).__name__.endswith("ForQuestionAnswering"):
        raise InputError(
            f"the teacher is a {type(teacher).__name__}, not a question-answering model; pass its folder, or a "
            "model loaded with AutoModelForQuestionAnswering"
        )
    architectures = getattr(teacher.config, "architectures", None)
    name = getattr(teacher.config, "_name_or_path", "") or "(in-memory model)"
    # A model built in memory has no recorded architectures: its head is whatever it holds, copied as is.
    return teacher, name, is_qa_config(teacher.config) if architectures else True


def init_student(
    teacher_path_or_model,
    layers: list[int] | None = None,
    num_layers: int | None = None,
    trust_remote_code: bool = False,
) -> tuple[Any, dict[str, Any]]:
    """Build a student with the teacher's architecture from chosen teacher layers.

    Args:
        teacher_path_or_model: a model folder, a hub name, or a ``...ForQuestionAnswering`` model. A base
            encoder (no QA head) is accepted: the student's ``qa_outputs`` is then newly initialised.
        layers (`list[int]`, *optional*): teacher layer indices to keep, in this order. Defaults to every
            other layer from 0 (``[0, 2, 4]`` of 6).
        num_layers (`int`, *optional*): instead of ``layers``, keep this many evenly spaced layers.
        trust_remote_code (`bool`, defaults to `False`): allow custom modelling code from the checkpoint.

    Returns:
        ``(student, info)``: the student in eval mode, and a dict with ``teacher``, ``architecture``,
        ``layers``, ``teacher_layers``, ``layer_count_field``, ``layer_list``, ``teacher_parameters``,
        ``student_parameters``, ``ratio``, ``qa_head`` (``"copied"`` or ``"new"``) and ``copied_tensors``.
    """
    from distilqa.infra.models import count_parameters

    if isinstance(teacher_path_or_model, (str, os.PathLike)):
        total = _peek_layer_count(teacher_path_or_model, trust_remote_code)
        if total is not None:  # check the layers before the (slow) weights are loaded
            choose_layers(total, layers, num_layers)
    teacher, teacher_name, head_trained = _load_teacher(teacher_path_or_model, trust_remote_code)
    field = layer_count_field(teacher.config)
    total = getattr(teacher.config, field)
    layer_list = find_layer_list(teacher, total)
    chosen = choose_layers(total, layers, num_layers)

    config = copy.deepcopy(teacher.config)
    setattr(config, field, len(chosen))
    for name in PER_LAYER_CONFIG_FIELDS:
        value = getattr(config, name, None)
        if isinstance(value, (list, tuple)) and len(value) == total:
            setattr(config, name, [value[i] for i in chosen])
    student = type(teacher)(config).to(dtype=teacher.dtype)
    state = student_state_dict(teacher.state_dict(), student.state_dict(), layer_list, chosen)
    student.load_state_dict(state, strict=True)
    student.eval()

    teacher_params, student_params = count_parameters(teacher), count_parameters(student)
    info: dict[str, Any] = {
        "teacher": teacher_name,
        "architecture": type(teacher).__name__,
        "model_type": config.model_type,
        "teacher_layers": total,
        "layers": chosen,
        "layer_count_field": field,
        "layer_list": layer_list,
        "teacher_parameters": teacher_params,
        "student_parameters": student_params,
        "ratio": round(student_params / teacher_params, 4),
        "qa_head": "copied" if head_trained else "new",
        "copied_tensors": len(state),
    }
    # A teacher without a QA head was already named by the loader (infra.models); info["qa_head"] records it.
    return student, info


def student_state_dict(teacher_state: dict, student_state: dict, layer_list: str, layers: list[int]) -> dict:
    """The student's state dict taken from the teacher's: student layer ``i`` is teacher layer ``layers[i]``.

    Raises:
        InputError: a student tensor has no teacher counterpart or a different shape (the count and the first five).
    """
    prefix = layer_list + "."
    state, missing = {}, []
    for key, target in student_state.items():
        source = key
        if key.startswith(prefix):
            index, rest = key[len(prefix) :].split(".", 1)
            source = f"{prefix}{layers[int(index)]}.{rest}"
        tensor = teacher_state.get(source)
        if tensor is None or tensor.shape != target.shape:
            missing.append(
                key if tensor is None else f"{key} (shape {tuple(tensor.shape)} != {tuple(target.shape)})"
            )
            continue
        state[key] = tensor.detach().clone()
    if missing:
        raise InputError(
            f"{len(missing)} student tensors cannot be taken from the teacher: {', '.join(missing[:5])}"
        )
    return state


def save_student(
    student,
    output: str | os.PathLike,
    info: dict[str, Any],
    tokenizer=None,
    force: bool = False,
    trust_remote_code: bool = False,
) -> Path:
    """Save the student (safetensors), its tokenizer, ``distilqa_student.json`` and a model card, atomically.

    Args:
        student: the model from :func:`init_student`.
        output: the folder to write; see :func:`check_output_folder` for what is refused.
        info: the dict from :func:`init_student` (its ``teacher`` is stored as a public path).
        tokenizer: a tokenizer, or a path / hub name to load it from (default: none saved).
        force (`bool`, defaults to `False`): replace an earlier init-student folder (never anything else).
        trust_remote_code (`bool`, defaults to `False`): allow custom tokenizer code when loading ``tokenizer``.
    """
    from distilqa.infra.cards import public_path, public_value, write_model_card
    from distilqa.infra.files import atomic_directory, atomic_write_json
    from distilqa.infra.models import folder_size_mb, load_tokenizer
    from distilqa.infra.ownership import STUDENT

    output = check_output_folder(output, force, teacher=info.get("teacher"))
    if isinstance(tokenizer, (str, os.PathLike)):
        tokenizer = load_tokenizer(tokenizer, trust_remote_code=trust_remote_code)
    provenance = public_value({**info, "teacher": public_path(info.get("teacher", ""))})
    with atomic_directory(output, kind=STUDENT, what="--output") as tmp:
        student.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        atomic_write_json(tmp / PROVENANCE_FILE, provenance)
        write_model_card(tmp, **student_card(provenance, folder_size_mb(tmp)), location=output)
    return output


def check_output_folder(output: str | os.PathLike, force: bool = False, teacher: Any = None) -> Path:
    """Refuse an ``output`` that cannot be written, or may not be replaced; creates nothing.

    Refused: a file; a path that cannot be created (e.g. under a regular file); the teacher's folder, a folder
    inside it or around it (resolved paths); a folder distilqa did not make, or one of another kind, even with
    ``force``; an earlier init-student folder unless ``force``.
    """
    from distilqa.infra.ownership import STUDENT, check_output

    teacher = teacher if isinstance(teacher, (str, os.PathLike)) else None
    output = check_output(output, STUDENT, "--output", {"teacher": teacher})
    if output.is_dir() and any(output.iterdir()) and not force:
        raise InputError(
            f"--output {output} already exists and is not empty; choose another folder or pass --force"
        )
    return output


def student_card(info: dict[str, Any], size_mb: float) -> dict[str, Any]:
    """The :func:`distilqa.infra.cards.write_model_card` arguments describing a freshly initialised student."""
    kept = ", ".join(map(str, info["layers"]))
    notes = [
        "This model is an initialisation, not a trained model: distil it with 'distilqa distill' "
        "(or fine-tune it with 'distilqa train') before use."
    ]
    if info["qa_head"] == "new":
        notes.append(
            "The teacher had no question-answering head: the head (qa_outputs) is newly initialised."
        )
    hyperparameters = {
        "layers kept": kept,
        "teacher layers": info["teacher_layers"],
        "QA head": info["qa_head"],
    }
    if info.get("vocab_size") is not None:
        files = ", ".join(entry["file"] for entry in info.get("vocab_from", []))
        hyperparameters["vocabulary"] = f"{info['vocab_size']} of {info['teacher_vocab_size']} teacher tokens"
        notes.append(
            f"The vocabulary is trimmed to the tokens of {files} (plus special tokens and single characters): "
            "text outside that data may tokenize differently from the teacher."
        )
    return {
        "title": f"{info['architecture']} student: {len(info['layers'])} of {info['teacher_layers']} teacher layers",
        "base_models": {"teacher": info["teacher"], "student init": f"teacher layers {kept}"},
        "data": {"training": "none: weights copied from the teacher"},
        "hyperparameters": hyperparameters,
        "metrics": None,
        "speed": {
            "parameters": info["student_parameters"],
            "teacher parameters": info["teacher_parameters"],
            "size_mb": size_mb,
        },
        "hardware": None,
        "notes": notes,
    }
