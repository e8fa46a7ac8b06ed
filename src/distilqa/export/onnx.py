"""ONNX export of a PyTorch QA model: one self-contained ``model.onnx`` with dynamic batch and sequence axes."""

from __future__ import annotations

import contextlib
import os

from distilqa.errors import InputError
from distilqa.qa.backends import OUTPUTS, require

DEFAULT_OPSET = 18


MAX_SINGLE_FILE_BYTES = 2_000_000_000  # protobuf's 2 GB limit on one ONNX file


def onnx_input_names(model, tokenizer) -> list[str]:
    """The tokenizer's inputs that the model's forward takes, in forward-signature order."""
    from distilqa.infra.models import forward_parameters

    forward = forward_parameters(model)
    wanted = set(tokenizer.model_input_names) | {"input_ids", "attention_mask"}
    return [name for name in forward if name in wanted]


def export_onnx(model, tokenizer, path: str | os.PathLike, opset: int = DEFAULT_OPSET) -> list[str]:
    """Write ``model`` (a PyTorch QA model) to one ONNX file with dynamic batch and sequence axes.

    Returns:
        `list[str]`: the ONNX input names.
    """
    require("onnx"), require("onnxscript")
    import inspect

    import torch

    names = onnx_input_names(model, tokenizer)
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    if size >= MAX_SINGLE_FILE_BYTES:
        raise InputError(
            f"the model's weights take {size / 1e9:.1f} GB; one ONNX file holds < 2 GB: export a smaller model"
        )

    class LogitsOnly(torch.nn.Module):
        """The model with named tensor inputs and a (start_logits, end_logits) tuple out."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, **inputs):
            out = self.inner(**inputs)
            return out.start_logits, out.end_logits

    # torch.export needs explicit parameters, not **inputs: build forward(self, input_ids, ...) for these names.
    LogitsOnly.forward.__signature__ = inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names]
    )
    dummy = tokenizer(
        ["Who wrote it?", "When?"],
        ["It was written by Ada Lovelace in 1843.", "In the spring of 1871, long after the war had ended."],
        padding=True,
        return_tensors="pt",
    )
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    wrapper = LogitsOnly(model.eval()).eval()
    with torch.no_grad(), _quiet_exporter(), eager_attention(model):
        torch.onnx.export(
            wrapper,
            (),
            str(path),
            kwargs={n: dummy[n] for n in names},
            input_names=names,
            output_names=list(OUTPUTS),
            dynamic_shapes={n: {0: batch, 1: sequence} for n in names},
            opset_version=opset,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    _check_dynamic(path, names)
    return names


@contextlib.contextmanager
def eager_attention(model):
    """Export the attention as plain MatMul/Softmax ops (``attn_implementation="eager"``), then restore.

    Traced through torch's scaled_dot_product_attention, the exported graph carries the mask as an IsNaN/Where
    chain that onnxruntime neither fuses nor runs fast: on a 3-layer MiniLM student (batch 32 x 256 tokens,
    2 threads, Intel Xeon with AMX) the SDPA export ran at 0.66x PyTorch fp32 and its INT8 version at 0.60x;
    the eager export at 1.05x and 1.55x (docs/RESULTS.md, "Why was ONNX Runtime slower than PyTorch?").
    The two implementations compute the same function; the parity check compares the export with the model.
    """
    setter = getattr(model, "set_attn_implementation", None)
    before = getattr(model.config, "_attn_implementation", None)
    if setter is None or before in (None, "eager"):
        yield
        return
    try:
        setter("eager")
    except (ValueError, AttributeError):  # a model without an eager path: export it as it is
        yield
        return
    try:
        yield
    finally:
        setter(before)


def optimize_for_cpu(path: str | os.PathLike, config) -> dict:
    """Fuse LayerNorm + residual (SkipLayerNormalization) and bias + GELU (BiasGelu) with onnxruntime's
    transformer optimizer, in place, for BERT-like models; returns what was fused (for the export report).

    Any model the optimizer does not know is left as exported (``{"skipped": reason}``).
    """
    heads = getattr(config, "num_attention_heads", None) or getattr(config, "n_heads", None)
    hidden = getattr(config, "hidden_size", None) or getattr(config, "dim", None)
    if not heads or not hidden:
        return {"skipped": "the config names no attention heads / hidden size"}
    try:
        from onnxruntime.transformers.optimizer import optimize_model
    except ImportError:  # pragma: no cover - part of onnxruntime
        return {"skipped": "onnxruntime.transformers is not installed"}
    import logging

    quiet = logging.getLogger("onnxruntime.transformers")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        optimized = optimize_model(
            str(path), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=0
        )
        fused = {k: v for k, v in optimized.get_fused_operator_statistics().items() if v}
        optimized.save_model_to_file(str(path))
    except Exception as err:  # noqa: BLE001 - an optimizer failure leaves the plain export, which is correct
        return {"skipped": f"{type(err).__name__}: {' '.join(str(err).split())[:120]}"}
    finally:
        quiet.setLevel(level)
    return {"tool": "onnxruntime.transformers.optimizer (model_type bert, opt_level 0)", "fused": fused}


@contextlib.contextmanager
def _quiet_exporter():
    """Silence the exporter's chatter (torchvision not installed, axis renaming, pytree deprecations)."""
    import logging
    import warnings

    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        logger.setLevel(level)


def _check_dynamic(path: str | os.PathLike, names: list[str]) -> None:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    for item in [*graph.input, *graph.output]:
        dims = item.type.tensor_type.shape.dim
        if len(dims) != 2 or not all(d.dim_param for d in dims):
            raise InputError(
                f"the export of {item.name} has fixed shape {[d.dim_value for d in dims]}; please report this"
            )
    if [i.name for i in graph.input] != names:
        raise InputError(
            f"the export has inputs {[i.name for i in graph.input]}, expected {names}; please report this"
        )
