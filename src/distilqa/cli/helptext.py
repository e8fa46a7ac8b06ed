"""The help text of the options: from the ``Args:`` of a dataclass docstring, and each option's default."""

from __future__ import annotations

import argparse
import inspect
import re


def docstring_help(cls) -> dict[str, str]:
    """Help per field from the ``Args:`` sections of ``cls`` and its bases (``name (`type`, ...): text``)."""
    helps: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        doc = klass.__dict__.get("__doc__")
        if not doc:
            continue
        lines = inspect.cleandoc(doc).splitlines()
        starts = [i for i, line in enumerate(lines) if line.strip() in ("Args:", "Arguments:")]
        if not starts:
            continue
        base = len(lines[starts[0]]) - len(lines[starts[0]].lstrip())
        entries: list[str] = []
        indent = None
        for line in lines[starts[0] + 1 :]:
            if not line.strip():
                continue
            depth = len(line) - len(line.lstrip())
            if depth <= base:
                break
            if indent is not None and depth > indent and entries:
                entries[-1] += " " + line.strip()
            else:
                indent = depth
                entries.append(line.strip())
        for entry in entries:
            names, text = _split_entry(entry)
            text = text.replace("``", "").replace("`", "").replace("%", "%%").removesuffix(".")
            helps.update(dict.fromkeys(names, text))
    return helps


def _split_entry(entry: str) -> tuple[list[str], str]:
    """``"a, b (`int`, defaults to 1): text"`` -> ``(["a", "b"], "text")``: the names outside brackets and quotes."""
    depth, quoted, head = 0, False, []
    for i, char in enumerate(entry):
        if char == "`":
            quoted = not quoted
        elif not quoted and char in "([":
            depth += 1
        elif not quoted and char in ")]":
            depth -= 1
        elif not quoted and depth == 0 and char == ":":
            return re.findall(r"[A-Za-z_]\w*", "".join(head)), entry[i + 1 :].strip()
        elif not quoted and depth == 0:
            head.append(char)
    return [], ""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written; each option's default after its help, unless it is None or false."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if "%(default)" in text or default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        if isinstance(default, list | tuple):
            default = " ".join(map(str, default))
        return f"{text} (default: {str(default).replace('%', '%%')})"
