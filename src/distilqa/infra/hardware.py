"""What machine this is: the CPU model and the matrix features that decide its fast paths, threads, and the GPU.

One reader of ``/proc/cpuinfo`` for everything that names the hardware beside a number (benchmarks, model
cards, the demo's report): the development machines change between sessions (an AMD EPYC with AVX2 only, Intel
Xeons with AVX-512 + VNNI or with AMX), so every figure says which one it ran on.
"""

from __future__ import annotations

import functools
import os
import platform

# The flags that change which kernels run: int8 dot products (VNNI), bf16 (AVX512-BF16), AMX tiles.
MATRIX_FLAGS = (
    "avx2",
    "avx512f",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_bf16",
    "amx_int8",
    "amx_tile",
)


@functools.lru_cache(maxsize=1)
def _cpuinfo() -> tuple[str, frozenset[str]]:
    """(model name, flags) of the first processor in /proc/cpuinfo; ("", {}) where there is none."""
    model, flags = "", frozenset()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                if key == "model name" and not model:
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = frozenset(value.split())
                if model and flags:
                    break
    except OSError:
        pass
    return " ".join(model.split()), flags


def cpu_model() -> str:
    """``"Intel(R) Xeon(R) Processor"``: the CPU's model name (the platform's description where /proc is missing)."""
    return _cpuinfo()[0] or platform.processor() or platform.machine() or "unknown CPU"


def cpu_features() -> list[str]:
    """The :data:`MATRIX_FLAGS` this CPU has, e.g. ``["avx2", "avx512f", "avx512_vnni", "amx_bf16", ...]``."""
    flags = _cpuinfo()[1]
    return [flag for flag in MATRIX_FLAGS if flag in flags]


def pin_threads(threads: int | None) -> int:
    """Pin torch (and BLAS / OpenMP for child libraries) to ``threads`` threads; returns the count in use."""
    import torch

    if threads:
        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def cpu_line() -> str:
    """``"Intel(R) Xeon(R) Processor [avx2/avx512f/...], 2 logical CPUs"``: the CPU as every report names it."""
    return f"{cpu_model()} [{'/'.join(cpu_features()) or 'no AVX2'}], {os.cpu_count()} logical CPUs"


def hardware_line(threads: int) -> str:
    """One line for a benchmark report: :func:`cpu_line`, torch threads, torch, the GPU."""
    import torch

    line = f"{cpu_line()}, {threads} torch threads, torch {torch.__version__}"
    if torch.cuda.is_available():
        line += f", GPU {torch.cuda.get_device_name(0)}"
    return line


def hardware_description() -> str:
    """CPU model and core count, plus the CUDA device when torch sees one: ``"AMD EPYC 7R13 (16 cores); NVIDIA H100"``."""
    text = f"{cpu_model()} ({os.cpu_count() or '?'} cores)"
    try:
        import torch

        if torch.cuda.is_available():
            count = torch.cuda.device_count()
            text += f"; {torch.cuda.get_device_name(0)}" + (f" x{count}" if count > 1 else "")
    except Exception:  # noqa: BLE001 - a description never fails for lack of torch or a driver
        pass
    return text
