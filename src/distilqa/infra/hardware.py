"""What machine this is: the CPU model and its features, threads, and the GPU when there is one."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def pin_threads(threads: int | None) -> int:
    """Pin torch (and BLAS / OpenMP for child libraries) to ``threads`` threads; returns the count in use."""
    import torch

    if threads:
        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def hardware_line(threads: int) -> str:
    import torch

    line = f"{cpu_model()}, {os.cpu_count()} logical CPUs, {threads} torch threads, torch {torch.__version__}"
    if torch.cuda.is_available():
        line += f", GPU {torch.cuda.get_device_name(0)}"
    return line


def hardware_description() -> str:
    """CPU model and core count, plus the CUDA device when torch sees one: ``"AMD EPYC 7R13 (16 cores); NVIDIA H100"``."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cpu = " ".join((cpu or platform.processor() or platform.machine() or "unknown CPU").split())
    text = f"{cpu} ({os.cpu_count() or '?'} cores)"
    try:
        import torch

        if torch.cuda.is_available():
            count = torch.cuda.device_count()
            text += f"; {torch.cuda.get_device_name(0)}" + (f" x{count}" if count > 1 else "")
    except Exception:  # noqa: BLE001 - a description never fails for lack of torch or a driver
        pass
    return text
