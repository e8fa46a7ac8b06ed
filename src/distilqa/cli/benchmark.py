"""``distilqa benchmark {inference,training,serve} ...``: measure speed / accuracy, the cost of distillation, or
the server under load."""

from __future__ import annotations

import importlib

KINDS = {
    "inference": (
        "benchmark_inference",
        "EM/F1, questions/s, latency, size per model and backend (PyTorch, ONNX, INT8)",
    ),
    "training": (
        "benchmark_training",
        "seconds per step and memory: plain fine-tuning vs online vs cached distillation",
    ),
    "serve": (
        "benchmark_serve",
        "distilqa serve under concurrent load and malformed requests, beside offline batch throughput",
    ),
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: distilqa benchmark {inference,training,serve} [options]\n")
        for name, (_, text) in KINDS.items():
            print(f"  {name:<10} {text}")
        return 0
    if argv[0] not in KINDS:
        import difflib

        from distilqa.cli.parser import UsageError

        near = difflib.get_close_matches(argv[0], KINDS, n=1)
        hint = f"did you mean {near[0]}?" if near else "choose inference, training or serve"
        raise UsageError("distilqa benchmark", f"unknown benchmark {argv[0]!r}; {hint}")
    module = importlib.import_module(f"distilqa.cli.{KINDS[argv[0]][0]}")
    return module.main(argv[1:])
