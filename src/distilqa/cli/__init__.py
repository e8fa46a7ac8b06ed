"""The ``distilqa`` command: a thin dispatcher over one module per subcommand.

Each subcommand lives in ``distilqa.cli.<name>`` and exposes ``build_parser()`` (see :mod:`distilqa.cli.parser`)
and ``main(argv) -> int``; heavy imports happen inside functions so that ``distilqa --help`` stays fast.

Exit codes, each failure one line on stderr (``--debug`` anywhere on the line, or ``DISTILQA_DEBUG=1``, raises
instead, with the traceback):

* 0: done.
* 1: an internal error (a bug): ``distilqa: error: <type>: <message> (run with --debug for the traceback)``.
* 2: bad input: a malformed command line (``distilqa <command>: error: ...``), or a file, field, option or model
  that cannot be used (:class:`distilqa.errors.InputError`, a missing or unreadable file, ...:
  ``distilqa: error: ...``).
* 130: interrupted (Ctrl-C); for ``train`` and ``distill`` the line says how to resume.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import os
import sys

# name -> (module, one-line help). Order is the order shown in --help: the pipeline, then tools.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "offline end-to-end demo: fine-tune a teacher, distill a 3-layer student, compare"),
    "train": ("train", "fine-tune a question-answering model (a teacher, or a student alone)"),
    "init-student": ("init_student", "make a smaller student from chosen layers of a teacher"),
    "augment": ("augment", "enlarge a training set with teacher-labelled question variants (TinyBERT-style)"),
    "cache-teacher": ("cache_teacher", "precompute the teacher's logits on the training features"),
    "distill": ("distill", "distill a teacher into a student (DistilBERT's SQuAD recipe)"),
    "evaluate": ("evaluate", "run a model over a SQuAD dataset, write predictions and EM/F1"),
    "predict": ("predict", "answer questions about given contexts, as JSON"),
    "score": ("score", "score a predictions file like the official SQuAD v1.1 / v2.0 scripts"),
    "serve": ("serve", "answer questions over HTTP, with dynamic batching and request limits"),
    "export": ("export", "export a model to ONNX (optionally INT8) with a parity check"),
    "benchmark": ("benchmark", "measure speed / accuracy (inference) or training cost"),
}

USAGE = "usage: distilqa [--debug] <command> [options]\n"


def _help() -> str:
    from distilqa import __version__

    lines = [
        USAGE,
        f"distilqa {__version__}: small, fast extractive QA models by knowledge distillation.\n",
        "commands:",
    ]
    width = max(map(len, COMMANDS))
    for name, (_, text) in COMMANDS.items():
        lines.append(f"  {name:<{width}}  {text}")
    lines += [
        "",
        "Run 'distilqa <command> --help' for a command's options.",
        "--debug shows full tracebacks.",
    ]
    return "\n".join(lines)


def _fail(message: str, code: int = 2, prog: str = "distilqa") -> int:
    print(f"{prog}: error: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("DISTILQA_DEBUG") == "1"
    argv = [a for a in argv if a != "--debug"]
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(_help())
        return 0
    if argv[0] in {"-V", "--version"}:
        from distilqa import __version__

        print(__version__)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        import difflib

        near = difflib.get_close_matches(name, COMMANDS, n=1)
        hint = f"did you mean {near[0]}?" if near else f"choose one of: {', '.join(COMMANDS)}"
        return _fail(f"unknown command {name!r}; {hint}")
    from distilqa.cli import quiet
    from distilqa.cli.parser import UsageError
    from distilqa.infra.console import console

    module = importlib.import_module(f"distilqa.cli.{COMMANDS[name][0]}")
    try:
        # the library's INFO messages on stdout; serve configures logging itself (--log_level)
        with console() if name != "serve" else contextlib.nullcontext():
            try:
                return int(module.main(rest) or 0)
            finally:
                quiet.restore()  # inside the console block: --quiet's levels are undone before the console's own
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"distilqa {name}: interrupted" + _interrupted_hint(name), file=sys.stderr)
        return 130
    except UsageError as err:
        if debug:
            raise
        return _fail(" ".join(str(err).split()), prog=err.prog)
    except Exception as err:  # noqa: BLE001 - the CLI's one place that turns errors into exit codes
        if debug:
            raise
        return _fail(describe_error(err), 2 if is_bad_input(err) else 1)
    finally:
        _close_process_group()


def _close_process_group() -> None:
    """Destroy the process group a multi-process run set up (torchrun), before the interpreter exits.

    Left to interpreter shutdown, gloo's threads could be torn down while still running: "terminate called
    without an active exception", SIGABRT, and torchrun reports the finished run as failed.
    """
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _interrupted_hint(name: str) -> str:
    if name in ("train", "distill"):
        from distilqa.cli.train import RESUME_HINT

        return f"; {RESUME_HINT}"
    return ""


def is_bad_input(err: BaseException) -> bool:
    """Whether ``err`` is the user's (exit code 2) rather than a bug (exit code 1)."""
    from distilqa.errors import InputError

    return isinstance(err, InputError | OSError | UnicodeDecodeError)


def describe_error(err: BaseException) -> str:
    """One line for an exception: the message of an input error, else its type and message."""
    from distilqa.errors import InputError

    if isinstance(err, InputError):
        message = str(err)
    elif isinstance(err, FileNotFoundError):
        message = f"file not found: {err.filename or err}; check the path"
    elif isinstance(err, NotADirectoryError):  # a path that goes through a regular file
        message = (
            f"{err.filename or err}: a part of this path is a regular file, not a folder; choose another path"
        )
    elif isinstance(err, FileExistsError):  # mkdir(exist_ok=True) where a regular file is
        message = f"{err.filename or err} exists and is not a folder; choose another path"
    elif isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        message = f"no space left on the disk ({err.filename or err}); free some space (or write elsewhere) and run again"
    elif isinstance(err, PermissionError):
        message = f"permission denied: {err.filename or err}; choose a path you can write"
    elif isinstance(err, (UnicodeDecodeError,)):
        message = f"input is not UTF-8 text ({err.reason}); re-save it as UTF-8"
    elif isinstance(err, OSError) and getattr(err, "filename", None):
        message = f"{err.filename}: {err.strerror or err}"
    else:
        message = f"{type(err).__name__}: {err} (an internal error; run with --debug for the traceback)"
    return " ".join(message.split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
