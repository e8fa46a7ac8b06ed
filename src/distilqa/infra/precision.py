"""Which number format a model runs in: ``fp32``, ``bf16``, ``fp16`` or ``auto`` (the fastest this device runs
natively), with the reason for the choice, so every report can say what ran.

``auto`` picks bf16 on a CPU with AMX or AVX512-BF16 (torch's oneDNN kernels use them), bf16 on a CUDA device
that supports it (else fp16), and fp32 everywhere else. An explicit ``bf16`` on a CPU without native bf16, or
``fp16`` on a CPU, is refused: emulated half precision is slower than fp32 there. Post-processing always gets
fp32 logits.
"""

from __future__ import annotations

from dataclasses import dataclass

from distilqa.errors import InputError

PRECISIONS = ("fp32", "bf16", "fp16", "auto")
TORCH_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


@dataclass(frozen=True)
class Precision:
    """A resolved precision: ``name`` (fp32/bf16/fp16), what was asked for, and why this one."""

    name: str
    requested: str
    reason: str

    @property
    def torch_dtype(self):
        import torch

        return getattr(torch, TORCH_DTYPES[self.name])

    def to_dict(self) -> dict[str, str]:
        return {
            "precision": self.name,
            "precision_requested": self.requested,
            "precision_reason": self.reason,
        }


def cpu_has_native_bf16() -> bool:
    """AMX-BF16 or AVX512-BF16 on this CPU, and a torch whose oneDNN kernels use it."""
    from distilqa.infra.hardware import cpu_features

    if not {"amx_bf16", "avx512_bf16"} & set(cpu_features()):
        return False
    try:
        import torch

        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # an older torch or a build without oneDNN
        return False


def resolve_precision(requested: str | None, device: str = "cpu", backend: str = "torch") -> Precision:
    """Turn ``fp32`` / ``bf16`` / ``fp16`` / ``auto`` into what runs on ``device``; refuse what it cannot run well.

    ``backend="onnx"``: an export runs at the precision it was exported with, so only fp32 (and auto) are taken.

    Raises:
        InputError: an unknown name, a reduced precision for an ONNX export, fp16 on a CPU, bf16 on a CPU
            without native bf16, or a CUDA device without bf16 for ``bf16``.
    """
    requested = (requested or "fp32").lower()
    if requested not in PRECISIONS:
        raise InputError(
            f"--precision {requested!r} is not one of {', '.join(PRECISIONS)}; pass e.g. --precision auto"
        )
    if backend == "onnx":
        if requested not in ("fp32", "auto"):
            raise InputError(
                f"--precision {requested}: an ONNX export runs at the precision it was exported with; "
                "pass --precision fp32 (or auto), or use the PyTorch model folder"
            )
        return Precision("fp32", requested, "ONNX export (runs as exported)")
    cuda = str(device).startswith("cuda")
    if cuda:
        import torch

        bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        if requested == "auto":
            return Precision(
                "bf16" if bf16 else "fp16", requested, "CUDA " + ("bf16" if bf16 else "fp16 (no bf16)")
            )
        if requested == "bf16" and not bf16:
            raise InputError("--precision bf16: this CUDA device has no bf16; pass --precision fp16 or auto")
        return Precision(requested, requested, f"asked for, on {device}")
    if requested == "fp16":
        raise InputError("--precision fp16 needs a CUDA device; on a CPU pass --precision bf16, auto or fp32")
    native = cpu_has_native_bf16()
    if requested == "auto":
        if native:
            return Precision("bf16", requested, "the CPU has native bf16 (AMX / AVX512-BF16)")
        return Precision("fp32", requested, "the CPU has no native bf16 (AMX / AVX512-BF16)")
    if requested == "bf16" and not native:
        raise InputError(
            "--precision bf16: this CPU has no native bf16 (AMX or AVX512-BF16), where it runs slower than fp32; "
            "pass --precision fp32 or auto"
        )
    return Precision(requested, requested, "asked for")
