"""One parser for the training commands: a YAML/JSON config file, then command-line overrides.

``distilqa distill configs/x.yaml --learning_rate 3e-5``: the file's keys are exactly the dataclass field
names (every ``TrainingArguments`` field included); its values are turned into arguments placed before the
command line's, so argparse checks their types and the command line wins.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from distilqa.errors import InputError

CONFIG_SUFFIXES = (".yaml", ".yml", ".json")


def read_config_file(path: str) -> dict[str, Any]:
    file = Path(path)
    if not file.is_file():
        raise InputError(f"config file {path} does not exist; check the path")
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"config file {path} is not UTF-8 text") from None
    try:
        if file.suffix == ".json":
            values = json.loads(text)
        else:
            import yaml

            values = yaml.safe_load(text)
    except (json.JSONDecodeError, ValueError) as err:
        raise InputError(f"config file {path} cannot be parsed: {' '.join(str(err).split())[:160]}") from None
    except Exception as err:  # yaml.YAMLError
        raise InputError(
            f"config file {path} is not valid YAML: {' '.join(str(err).split())[:160]}"
        ) from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise InputError(f"config file {path} must hold a mapping of option names to values")
    return values


def _to_argv(values: dict[str, Any]) -> list[str]:
    argv: list[str] = []
    for key, value in values.items():
        if value is None:
            continue
        flag = f"--{key}"
        if isinstance(value, bool):
            argv += [flag, "true" if value else "false"]
        elif isinstance(value, list):
            argv += [flag, *map(str, value)]
        elif isinstance(value, dict):
            argv += [flag, json.dumps(value)]
        else:
            argv += [flag, str(value)]
    return argv


def parse_training_args(
    dataclass_types: tuple, argv: list[str], prog: str, extra: list[tuple[str, dict]] = ()
):
    """Parse ``[CONFIG_FILE] [--field value ...]`` into instances of ``dataclass_types`` plus extra flags.

    Returns:
        (tuple of dataclass instances, argparse.Namespace of the extra flags)
    """
    from transformers import HfArgumentParser

    parser = HfArgumentParser(dataclass_types, prog=prog)
    for flag, kwargs in extra:
        parser.add_argument(flag, **kwargs)
    source = "the command line"
    file_argv: list[str] = []
    if argv and not argv[0].startswith("-") and argv[0].endswith(CONFIG_SUFFIXES):
        path, argv = argv[0], argv[1:]
        values = read_config_file(path)
        known = {action.dest for action in parser._actions}
        unknown = sorted(k for k in values if k not in known)
        if unknown:
            raise InputError(
                f"config file {path}: unknown key(s) {', '.join(unknown)}; keys are the option names of '{prog} --help'"
            )
        file_argv = _to_argv(values)
        source = f"{path} or the command line"

    def error(message: str):
        raise InputError(f"{prog}: {message} (in {source})")

    parser.error = error  # one clear line instead of argparse's usage dump and SystemExit
    namespace, leftover = parser.parse_known_args(file_argv + list(argv))
    if leftover:
        raise InputError(f"{prog}: unrecognised argument(s) {' '.join(leftover)}; see '{prog} --help'")
    outputs = []
    for dtype in dataclass_types:
        import dataclasses

        names = {f.name for f in dataclasses.fields(dtype) if f.init}
        outputs.append(dtype(**{k: v for k, v in vars(namespace).items() if k in names}))
    rest = {
        k: v
        for k, v in vars(namespace).items()
        if not any(k in {f.name for f in dataclasses.fields(d)} for d in dataclass_types)
    }
    import argparse

    return tuple(outputs), argparse.Namespace(**rest)
