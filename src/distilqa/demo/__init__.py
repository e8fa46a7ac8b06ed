"""The offline demo: fine-tune the packaged MiniLM as a teacher, distill a 3-layer student, compare.

The built-in data (``demo/data/train.json``, ``dev.json``) is original text written for distilqa.
"""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"


def demo_data(split: str) -> Path:
    """Path of the built-in demo split, ``"train"`` or ``"dev"``."""
    return DATA_DIR / f"{split}.json"
