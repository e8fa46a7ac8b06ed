"""Every command line of ``distilqa``: the commands of ``distilqa.cli.COMMANDS``, with ``benchmark`` as its two kinds."""

from __future__ import annotations

import importlib

from distilqa.cli import COMMANDS
from distilqa.cli.benchmark import KINDS

NAMES = [name for name in COMMANDS if name != "benchmark"] + [f"benchmark {kind}" for kind in KINDS]


def argv(name: str) -> list[str]:
    """The words before the options: ``["benchmark", "inference"]`` for ``"benchmark inference"``."""
    return name.split()


def build_parser(name: str):
    words = name.split()
    module = COMMANDS[words[0]][0] if len(words) == 1 else KINDS[words[1]][0]
    return importlib.import_module(f"distilqa.cli.{module}").build_parser()
