"""The query, key and value projections of one transformer layer, captured during a forward pass.

MiniLM-style attention distillation (:func:`distilqa.distill.losses.attention_relation_loss`) compares what the
student's and the teacher's attention is made of. The attention probabilities themselves are a poor handle:
transformers' fused kernels (sdpa, flash) never materialise them, and the eager path returns them after dropout
in training. The projections are plain ``nn.Linear`` outputs, the same under every attention implementation, so
forward hooks on them are enough.
"""

from __future__ import annotations

from contextlib import contextmanager

from torch import nn

# (query, key, value) module names: BERT / RoBERTa / ELECTRA / XLM-R / MiniLM, DistilBERT, DeBERTa, most decoder code
PROJECTION_NAMES = [
    ("query", "key", "value"),
    ("q_lin", "k_lin", "v_lin"),
    ("query_proj", "key_proj", "value_proj"),
    ("q_proj", "k_proj", "v_proj"),
]
# cross-attention (BERT as a decoder, BART's encoder_attn) mixes two sequences: not a self-attention relation
CROSS_ATTENTION = ("crossattention", "encoder_attn")


def attention_projections(model: nn.Module, layer: int = -1) -> tuple[nn.Linear, nn.Linear, nn.Linear]:
    """The query, key and value ``nn.Linear`` modules of self-attention layer ``layer`` (default: the last one).

    Raises:
        ValueError: the model has no such modules (an architecture with fused q/k/v, say) or too few layers.
    """
    linears = {name: module for name, module in model.named_modules() if isinstance(module, nn.Linear)}
    for q, k, v in PROJECTION_NAMES:
        prefixes = [name[: -len(q)] for name in linears if name.endswith("." + q)]
        prefixes = [p for p in prefixes if not any(part in p.split(".") for part in CROSS_ATTENTION)]
        layers = [
            p for p in prefixes if p + k in linears and p + v in linears
        ]  # registration order: bottom to top
        if layers:
            if not -len(layers) <= layer < len(layers):
                raise ValueError(
                    f"layer {layer} does not exist: {type(model).__name__} has {len(layers)} attention layers"
                )
            prefix = layers[layer]
            return linears[prefix + q], linears[prefix + k], linears[prefix + v]
    names = ", ".join("/".join(triple) for triple in PROJECTION_NAMES)
    raise ValueError(
        f"{type(model).__name__} has no query/key/value projections named {names}; attention distillation cannot read it"
    )


@contextmanager
def capture_projections(model: nn.Module, layer: int = -1):
    """Within the block, every forward pass of ``model`` stores layer ``layer``'s query, key and value projections
    (each of shape (batch, seq_len, hidden), with their autograd history) in the yielded list, replacing the
    previous pass's; the hooks are removed on exit.

    Example::

        >>> with capture_projections(student) as projections:   # doctest: +SKIP
        ...     outputs = student(**batch)
        >>> query, key, value = projections
    """
    captured: list = [None, None, None]

    def hook(index):
        def store(module, args, output):
            captured[index] = output

        return store

    handles = [
        module.register_forward_hook(hook(i)) for i, module in enumerate(attention_projections(model, layer))
    ]
    try:
        yield captured
    finally:
        for handle in handles:
            handle.remove()
