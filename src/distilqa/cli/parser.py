"""The one parser of every ``distilqa`` command: options from dataclass fields, config files, one-line errors.

A command lists the dataclasses its options come from, the library's own where they exist (``FeatureParams``,
``PredictOptions``, ``QuestionAnsweringConfig`` with every ``TrainingArguments`` field, ...). Each field becomes
``--field_name``, spelled as in the Python API and the config files; ``--field-name`` is accepted for it too.
Its help is ``metadata["help"]``, else its entry in the ``Args:`` of the class docstring. Types become options as
``transformers.HfArgumentParser`` makes them, so the training commands parse exactly as they did with it: a
``bool`` takes ``--flag`` or ``--flag false`` (plus ``--no_flag`` when it defaults to true), a ``Literal`` or
``Enum`` its choices, a ``list`` one or more values.

The training commands also read an optional ``CONFIG_FILE`` first: a YAML/JSON mapping of option names to values,
turned into options placed before the command line's, so the command line wins.

A malformed command line (an unknown option, a bad or missing value, a missing argument) raises
:class:`UsageError`, which the dispatcher prints as one line, ``distilqa <command>: error: ...``, exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import enum
import json
import math
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any

from distilqa.cli.helptext import HelpFormatter, docstring_help
from distilqa.errors import InputError

CONFIG_SUFFIXES = (".yaml", ".yml", ".json")

# Keys of a field's metadata (or of a Section's per-field changes) that this parser reads, not argparse.
OWN_KEYS = ("aliases", "no_aliases", "positional", "exclusive", "hidden")

# Options where a negative number means nothing (besides every alpha_*); the dataclasses check their own ranges too.
NON_NEGATIVE = frozenset(
    {"temperature", "learning_rate", "weight_decay", "max_grad_norm", "warmup_ratio", "f1_budget", "max_f1_drop",
     "max_logit_diff", "min_span_agreement", "adam_epsilon", "label_smoothing_factor"}
)  # fmt: skip

_NEGATIVE_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")


class UsageError(InputError):
    """A command line the command cannot parse; printed as ``<prog>: error: <message>``."""

    def __init__(self, prog: str, message: str):
        super().__init__(message)
        self.prog = prog


@dataclasses.dataclass(frozen=True)
class Section:
    """A dataclass whose fields are options of a command.

    Args:
        type: the dataclass.
        title (`str`, *optional*): heading of its options in ``--help`` (default: listed with the others).
        fields (`dict[str, dict]`, *optional*): per-field changes: ``help``, ``default``, ``metavar``, and
            ``aliases`` (more option names), ``no_aliases`` (more names for the ``--no_field`` of a bool that
            defaults to true), ``positional``, ``exclusive`` (the name of a group of options that exclude each
            other), ``hidden`` (accepted but not listed). A field's own metadata may hold the same keys.
        exclude (`tuple[str, ...]`): fields that are not options; they keep their dataclass defaults.
    """

    type: type
    title: str | None = None
    fields: dict = dataclasses.field(default_factory=dict)
    exclude: tuple = ()


def string_to_bool(value):
    """``true/false, yes/no, t/f, y/n, 1/0`` (any case) -> bool, as ``HfArgumentParser`` reads them."""
    if isinstance(value, bool):
        return value
    if value.lower() in ("yes", "true", "t", "y", "1"):
        return True
    if value.lower() in ("no", "false", "f", "n", "0"):
        return False
    raise argparse.ArgumentTypeError(
        f"Truthy value expected: got {value} but expected one of yes/no, true/false, t/f, y/n, 1/0 (case insensitive)."
    )


def _choice_type(choices: list):
    by_text = {str(choice): choice for choice in choices}
    return lambda text: by_text.get(text, text)


KEBAB_NOTE = "Each option may also be spelled with hyphens: --max-seq-length for --max_seq_length."


class CommandParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` over the fields of dataclasses (see the module docstring).

    Args:
        prog (`str`): the command, e.g. ``"distilqa evaluate"``; it starts every error line.
        *sections: dataclasses, or :class:`Section` objects, whose fields are the options. A field name in two
            sections is one option that fills both.
        description (`str`, *optional*): the text above the options in ``--help``.
        config_file (`bool`, defaults to `False`): accept a YAML/JSON config file as the first argument.
    """

    def __init__(self, prog: str, *sections, description: str | None = None, config_file: bool = False):
        epilog = KEBAB_NOTE
        if config_file:
            epilog = (
                "CONFIG_FILE: a YAML/JSON mapping of option names (as listed above) to values;\n"
                "options on the command line win over the file's.\n" + epilog
            )
        super().__init__(
            prog=prog,
            description=description,
            epilog=epilog,
            formatter_class=HelpFormatter,
            allow_abbrev=False,
        )
        self.sections = [s if isinstance(s, Section) else Section(s) for s in sections]
        self.config_file = config_file
        self._source: str | None = None
        self._names: list[list[str]] = []
        self._groups: dict[str, Any] = {}
        self._exclusive: dict[str, Any] = {}
        for section in self.sections:
            self._names.append(self._add_section(section))
        self._kebab = {
            "--" + name[2:].replace("_", "-"): name
            for name in self._option_string_actions
            if name.startswith("--") and "_" in name
        }
        self._kebab = {k: v for k, v in self._kebab.items() if k not in self._option_string_actions}
        self.usage = self._short_usage()

    # -- building --------------------------------------------------------------------------------------------------

    def _add_section(self, section: Section) -> list[str]:
        hints = typing.get_type_hints(section.type)
        helps = docstring_help(section.type)
        container = self
        if section.title:
            if section.title not in self._groups:
                self._groups[section.title] = self.add_argument_group(section.title)
            container = self._groups[section.title]
        names = []
        dests = {action.dest for action in self._actions}
        for item in dataclasses.fields(section.type):
            if not item.init or item.name in section.exclude:
                continue
            names.append(item.name)
            if item.name in dests:
                continue  # the same option fills every dataclass that has the field
            meta = {**item.metadata, **section.fields.get(item.name, {})}
            if "help" not in meta and item.name in helps:
                meta["help"] = helps[item.name]
            self._add_field(container, item, hints[item.name], meta)
        return names

    def _add_field(self, container, item: dataclasses.Field, hint, meta: dict) -> None:
        """One option (or positional argument) for ``item``, typed as ``HfArgumentParser`` types it."""
        kwargs = {k: v for k, v in meta.items() if k not in OWN_KEYS and k != "default"}
        missing = dataclasses.MISSING
        default = meta.get("default", item.default)
        factory = item.default_factory if "default" not in meta else missing
        kind, origin = hint, getattr(hint, "__origin__", hint)
        if origin is typing.Union or isinstance(origin, types.UnionType):
            args = hint.__args__
            if str not in args and (len(args) != 2 or type(None) not in args):
                raise TypeError(f"{item.name}: only X | None, or unions with str, can be options")
            if type(None) not in args:
                kind = args[0] if args[1] is str else args[1]
            elif bool not in args:
                kind = args[0] if isinstance(None, args[1]) else args[1]
            origin = getattr(kind, "__origin__", kind)
        negative = None
        if origin is typing.Literal or (isinstance(kind, type) and issubclass(kind, enum.Enum)):
            kwargs["choices"] = list(kind.__args__) if origin is typing.Literal else [x.value for x in kind]
            kwargs["type"] = _choice_type(kwargs["choices"])
            if default is not missing:
                kwargs["default"] = default
            else:
                kwargs["required"] = True
        elif kind is bool or kind == bool | None:
            negative = dict(kwargs)
            kwargs["type"] = string_to_bool
            if kind is bool or (default is not None and default is not missing):
                kwargs["default"] = False if default is missing else default
                kwargs.update(nargs="?", const=True, metavar=kwargs.get("metavar", "true|false"))
        elif isinstance(origin, type) and issubclass(origin, list):
            kwargs.update(type=kind.__args__[0], nargs="+")
            if factory is not missing:
                kwargs["default"] = factory()
            elif "default" in meta:
                kwargs["default"] = meta["default"]
            elif item.default is missing:  # a plain default is not passed on, as by HfArgumentParser
                kwargs["required"] = True
        else:
            kwargs["type"] = kind
            if default is not missing:
                kwargs["default"] = default
            elif factory is not missing:
                kwargs["default"] = factory()
            else:
                kwargs["required"] = True
        if meta.get("hidden"):
            kwargs["help"] = argparse.SUPPRESS
        if meta.get("exclusive"):
            if meta["exclusive"] not in self._exclusive:
                self._exclusive[meta["exclusive"]] = container.add_mutually_exclusive_group()
            container = self._exclusive[meta["exclusive"]]
        if meta.get("positional"):
            if not kwargs.pop("required", False):
                kwargs["nargs"] = "?"
            container.add_argument(item.name, **kwargs)
            return
        container.add_argument(f"--{item.name}", *meta.get("aliases", ()), **kwargs)
        if negative is not None and default is True:
            negative.update(default=False, help=negative.get("help") and f"turn --{item.name} off")
            if meta.get("hidden"):
                negative["help"] = argparse.SUPPRESS
            negative.pop("metavar", None)
            names = [f"--no_{item.name}", *meta.get("no_aliases", ())]
            container.add_argument(*names, action="store_false", dest=item.name, **negative)

    def _short_usage(self) -> str:
        parts = [self.prog]
        if self.config_file:
            parts.append("[CONFIG_FILE]")
        for action in self._actions:
            if action.help is argparse.SUPPRESS:
                continue
            if not action.option_strings:
                name = action.metavar or action.dest
                parts.append(name if action.nargs != "?" else f"[{name}]")
            elif action.required:
                parts.append(f"{action.option_strings[0]} {action.dest.upper()}")
        return " ".join([*parts, "[options]"])

    # -- parsing ---------------------------------------------------------------------------------------------------

    def parse_args(self, args=None, namespace=None) -> argparse.Namespace:
        """Parse ``[CONFIG_FILE] [options]`` into one namespace of every field; ``--quiet`` takes effect here."""
        from distilqa.cli import quiet

        argv = list(sys.argv[1:] if args is None else args)
        file_argv: list[str] = []
        if self.config_file:
            if argv and not argv[0].startswith("-") and argv[0].endswith(CONFIG_SUFFIXES):
                path, argv = argv[0], argv[1:]
                values = read_config_file(path)
                known = {action.dest for action in self._actions}
                unknown = sorted(k for k in values if k not in known)
                if unknown:
                    raise InputError(
                        f"config file {path}: unknown key(s) {', '.join(unknown)}; keys are the option names of '{self.prog} --help'"
                    )
                file_argv = _to_argv(values)
                self._source = f"{path} or the command line"
        argv = self.normalize(file_argv + argv)
        self._check_option_names(argv)
        parsed, leftover = self.parse_known_args(argv, namespace)
        if leftover:
            self.error(f"unrecognized arguments: {' '.join(leftover)}")
        self._check_numbers(parsed)
        quiet.apply(parsed)
        return parsed

    def instances(self, namespace: argparse.Namespace) -> tuple:
        """One instance per section, in order, from a parsed namespace; a ``ValueError`` of one is a usage error."""
        values = vars(namespace)
        built = []
        for section, names in zip(self.sections, self._names, strict=True):
            try:
                built.append(section.type(**{name: values[name] for name in names}))
            except InputError:
                raise
            except ValueError as err:  # e.g. TrainingArguments refusing a combination of options
                raise UsageError(self.prog, " ".join(str(err).split())) from None
        return tuple(built)

    def parse(self, args=None) -> tuple:
        """:meth:`parse_args`, then :meth:`instances`."""
        return self.instances(self.parse_args(args))

    def normalize(self, argv: list[str]) -> list[str]:
        """``--max-seq-length`` -> ``--max_seq_length`` (also in ``--x-y=value``), up to a ``--``."""
        out = []
        for i, token in enumerate(argv):
            if token == "--":
                return out + argv[i:]
            if token.startswith("--"):
                name, eq, value = token.partition("=")
                token = self._kebab.get(name, name) + eq + value
            out.append(token)
        return out

    def _check_option_names(self, argv: list[str]) -> None:
        """Refuse unknown options first (before 'required' errors), naming the nearest known one."""
        unknown = []
        for token in argv:
            if token == "--":
                break
            name = token.partition("=")[0]
            if (
                token.startswith("-")
                and len(token) > 1
                and " " not in token
                and not _NEGATIVE_NUMBER.match(token)
                and name not in self._option_string_actions
            ):
                unknown.append(name)
        if not unknown:
            return
        listed = [
            option
            for action in self._actions
            if action.help is not argparse.SUPPRESS
            for option in action.option_strings
            if option.startswith("--")
        ]
        near = []
        for name in unknown:
            guess = "--" + name.lstrip("-").replace("-", "_")
            near += difflib.get_close_matches(guess, listed, n=1, cutoff=0.75)
        hint = f"did you mean {' or '.join(dict.fromkeys(near))}?" if near else None
        self.error(f"unrecognized arguments: {' '.join(unknown)}", hint)

    def _check_numbers(self, namespace: argparse.Namespace) -> None:
        """Refuse NaN / infinity for every number, and a negative value where it means nothing."""
        for name, value in vars(namespace).items():
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, bool) or not isinstance(item, int | float):
                    continue
                if not math.isfinite(item):
                    self.error(f"--{name} {item} is not a finite number", "give a number")
                if item < 0 and (name in NON_NEGATIVE or name.startswith("alpha_")):
                    self.error(f"--{name} {item} is negative", "give 0 or more")

    def error(self, message: str, hint: str | None = None):
        where = f" (in {self._source})" if self._source else ""
        hint = hint or f"see '{self.prog} --help'"
        raise UsageError(self.prog, f"{message}{where}; {hint}")


def read_config_file(path: str) -> dict[str, Any]:
    """The mapping in a YAML/JSON config file; :class:`InputError` naming the file for anything else."""
    file = Path(path)
    if not file.is_file():
        raise InputError(f"config file {path} does not exist; check the path")
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"config file {path} is not UTF-8 text") from None
    try:
        if file.suffix == ".json":
            values = json.loads(text, object_pairs_hook=lambda pairs: _unique_keys(path, pairs))
        else:
            values = _load_yaml(path, text)
    except InputError:
        raise
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


def _given_twice(path: str, key: Any, line: int | None = None) -> InputError:
    where = f" (line {line})" if line else ""
    return InputError(f"config file {path}: key {key!r} is given twice{where}; keep one")


def _unique_keys(path: str, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's pairs as a dict, refusing a key given twice (``json`` keeps the last silently)."""
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _given_twice(path, key)
        seen[key] = value
    return seen


def _load_yaml(path: str, text: str):
    """``yaml.safe_load`` that refuses a key given twice in one mapping (PyYAML keeps the last silently)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            keys = [self.construct_object(k, deep=deep) for k, _ in node.value]
            for i, key in enumerate(keys):
                if key in keys[:i]:
                    raise _given_twice(path, key, node.value[i][0].start_mark.line + 1)
            return super().construct_mapping(node, deep=deep)

    return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


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
