"""The module names of distilqa 0.1's flat layout, kept importable for one release.

``import distilqa.distillation`` (and every other old module name) still works: a meta-path finder hands back
the module that now holds the code, with a ``DeprecationWarning`` naming the new place. A module that was
split (``config``, ``benchmark``, ``teacher_cache``) comes back as a small module that looks names up in each of
its new homes. Nothing is imported until an old name is used.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings

# old module -> the module(s) that hold its names now, searched in order
OLD_MODULES: dict[str, tuple[str, ...]] = {
    "data": ("distilqa.qa.data",),
    "features": ("distilqa.qa.features",),
    "postprocess": ("distilqa.qa.postprocess",),
    "metrics": ("distilqa.qa.metrics",),
    "trainer": ("distilqa.qa.trainer",),
    "inference": ("distilqa.qa.predictor",),
    "losses": ("distilqa.distill.losses",),
    "attention": ("distilqa.distill.attention",),
    "distillation": ("distilqa.distill.trainer",),
    "student": ("distilqa.distill.student",),
    "augment": ("distilqa.distill.augment",),
    "teacher_cache": ("distilqa.distill.cache.store", "distilqa.distill.cache.fingerprint"),
    "config": ("distilqa.distill.config", "distilqa.qa.config"),
    "benchmark": ("distilqa.bench.process", "distilqa.infra.hardware", "distilqa.infra.markdown"),
    "benchmark_inference": ("distilqa.bench.inference",),
    "benchmark_training": ("distilqa.bench.training",),
    "card": ("distilqa.infra.cards", "distilqa.infra.hardware"),
    "checkpoints": ("distilqa.infra.checkpoints",),
    "files": ("distilqa.infra.files",),
    "models": ("distilqa.infra.models",),
    "pipeline": ("distilqa.runs",),
}


def _combined(name: str, targets: tuple[str, ...]) -> types.ModuleType:
    module = types.ModuleType(name, f"Old name of {', '.join(targets)} (distilqa 0.1 layout).")
    homes = [importlib.import_module(t) for t in targets]

    def __getattr__(attr: str):
        for home in homes:
            if hasattr(home, attr):
                return getattr(home, attr)
        raise AttributeError(f"module {name!r} has no attribute {attr!r}")

    module.__getattr__ = __getattr__
    return module


class _OldNames(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        prefix, _, old = fullname.partition(".")
        if prefix == "distilqa" and old in OLD_MODULES:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        targets = OLD_MODULES[spec.name.partition(".")[2]]
        warnings.warn(
            f"{spec.name} moved to {' and '.join(targets)}; the old name goes away in distilqa 0.3",
            DeprecationWarning,
            stacklevel=3,
        )
        if len(targets) == 1:
            return importlib.import_module(targets[0])
        return _combined(spec.name, targets)

    def exec_module(self, module):
        """The module returned by create_module is complete already."""


def install() -> None:
    if not any(isinstance(finder, _OldNames) for finder in sys.meta_path):
        sys.meta_path.append(_OldNames())
