"""``--quiet``: no progress bars and no library logs while a command runs; its own result lines stay.

The parser applies it as soon as the command line is parsed (:func:`apply`): it turns the command's own
progress options off (``no_progress``, the Trainer's ``disable_tqdm``) and silences the rest (:func:`silence`):
the loading and ``map`` bars of transformers, datasets and the hub, any other tqdm bar (a library bar with no
``disable`` argument defaults to disabled), the Trainer's printed log lines, the loggers of transformers,
datasets, the hub and distilqa below ERROR, and Python warnings. The dispatcher undoes all of it when the
command ends (:func:`restore`), so an in-process caller gets its settings back.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

# Options of a command that --quiet turns on (when the command has them).
IMPLIES = {"no_progress": True, "disable_tqdm": True}

# What silence() changed, undone last-first by restore().
_undo: list[Callable[[], None]] = []
_silenced: list[bool] = []  # [True] between silence() and restore()


@dataclass
class Quiet:
    """The ``--quiet`` option of the long commands."""

    quiet: bool = field(
        default=False,
        metadata={
            "help": "no progress bars and no library logs or warnings: only the command's own result lines "
            "(and errors)"
        },
    )


def apply(namespace) -> None:
    """If ``namespace.quiet``: set the options in :data:`IMPLIES` that the namespace has, and :func:`silence`."""
    if not getattr(namespace, "quiet", False):
        return
    for name, value in IMPLIES.items():
        if hasattr(namespace, name):
            setattr(namespace, name, value)
    silence(trainer=hasattr(namespace, "disable_tqdm"))


def silence(trainer: bool = False) -> None:
    """Silence bars, logs and warnings until :func:`restore`; ``trainer``: also the Trainer's printed logs."""
    if _silenced:
        return
    _silenced.append(True)
    for name in ("distilqa", "torch", "accelerate"):
        _set_level(logging.getLogger(name), logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - a dependency
        pass
    else:
        level = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        _undo.append(lambda: hf_logging.set_verbosity(level))
        if hf_logging.is_progress_bar_enabled():
            hf_logging.disable_progress_bar()
            _undo.append(hf_logging.enable_progress_bar)
    try:
        import datasets
        from datasets.utils import logging as ds_logging
    except ImportError:  # pragma: no cover - a dependency
        pass
    else:
        level = ds_logging.get_verbosity()
        ds_logging.set_verbosity_error()
        _undo.append(lambda: ds_logging.set_verbosity(level))
        if not datasets.utils.are_progress_bars_disabled():
            datasets.disable_progress_bars()
            _undo.append(datasets.enable_progress_bars)
    import huggingface_hub.utils as hub

    _set_level(logging.getLogger("huggingface_hub"), logging.ERROR)
    if not hub.are_progress_bars_disabled():
        hub.disable_progress_bars()
        _undo.append(hub.enable_progress_bars)
    _disable_tqdm_by_default()
    if trainer:
        _silence_trainer_printer()
    catcher = warnings.catch_warnings()
    catcher.__enter__()
    warnings.simplefilter("ignore")
    _undo.append(lambda: catcher.__exit__(None, None, None))


def hide_progress() -> None:
    """The progress bars of transformers and datasets off until :func:`restore` (``--no_progress``)."""
    import datasets
    from transformers.utils import logging as hf_logging

    if hf_logging.is_progress_bar_enabled():
        hf_logging.disable_progress_bar()
        _undo.append(hf_logging.enable_progress_bar)
    if not datasets.utils.are_progress_bars_disabled():
        datasets.disable_progress_bars()
        _undo.append(datasets.enable_progress_bars)


def restore() -> None:
    """Undo :func:`silence` (nothing when it was not called)."""
    while _undo:
        _undo.pop()()
    _silenced.clear()


def is_silenced() -> bool:
    return bool(_silenced)


def _set_level(logger: logging.Logger, level: int) -> None:
    old = logger.level
    logger.setLevel(max(level, old))
    _undo.append(lambda: logger.setLevel(old))


def _disable_tqdm_by_default() -> None:
    """Make ``disable=True`` the default of every tqdm bar (a bar that passes ``disable`` itself keeps it)."""
    import tqdm.std

    cls = tqdm.std.tqdm
    original = cls.__dict__["__init__"]

    def __init__(self, *args, **kwargs):
        if len(args) < 10:  # disable is tqdm's 11th parameter, after iterable ... ascii
            kwargs.setdefault("disable", True)
        original.__get__(self, type(self))(*args, **kwargs)

    cls.__init__ = __init__
    _undo.append(lambda: setattr(cls, "__init__", original))


def _silence_trainer_printer() -> None:
    """The Trainer prints its log dicts (``{'loss': ...}``) through ``PrinterCallback`` when ``disable_tqdm``."""
    if "transformers" not in sys.modules:  # pragma: no cover - the training commands import it to parse
        return
    from transformers import trainer_callback

    cls = trainer_callback.PrinterCallback
    original = cls.__dict__["on_log"]
    cls.on_log = lambda self, args, state, control, logs=None, **kwargs: None
    _undo.append(lambda: setattr(cls, "on_log", original))
