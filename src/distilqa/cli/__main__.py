"""``python -m distilqa.cli``: the ``distilqa`` command, for launchers that run modules (``torchrun -m``)."""

from __future__ import annotations

import sys

from distilqa.cli import main

if __name__ == "__main__":
    sys.exit(main())
