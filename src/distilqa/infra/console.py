"""The library's messages to the user on the console while a command runs.

Library modules say what they do with ``logging.getLogger(__name__).info(...)`` (building or reusing a teacher
cache, distilling across tokenizers, ...), never ``print``: a program that uses distilqa as a library decides
where those go. The ``distilqa`` command and the experiment runners show them with :func:`console`: INFO lines on
stdout as plain text, warnings and errors on stderr, for the duration of the ``with`` block.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator


class _Console(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            # the streams are looked up at each record, so a replaced sys.stdout (pytest's capture) is followed
            stream = sys.stdout if record.levelno < logging.WARNING else sys.stderr
            print(self.format(record), file=stream, flush=True)
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)


@contextlib.contextmanager
def console(logger_name: str = "distilqa") -> Iterator[None]:
    """Print the INFO and higher messages of ``logger_name`` (and its children) while the block runs.

    ``--quiet`` (:mod:`distilqa.cli.quiet`) raises the logger's level inside the block, which hides them again.
    """
    logger = logging.getLogger(logger_name)
    handler = _Console()
    handler.setFormatter(logging.Formatter("%(message)s"))
    level = logger.level
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
