"""The user docs point at things that exist: every results table in docs/RESULTS.md names its raw file in
docs/results/, every docs/results/ path and relative link in README.md and docs/RESULTS.md resolves, and the
section links (``RESULTS.md#...``) land on a heading; the scripts, modules and tests they name exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "RESULTS.md"
README = ROOT / "README.md"
DIARY = ROOT / "experiments" / "DIARY.md"
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
GUARANTEES = ROOT / "docs" / "GUARANTEES.md"

SCRIPT_PATH = re.compile(r"(?<![\w/.])((?:benchmarks|experiments)/[\w./\-]*\.(?:py|sh))\b")
MODULE = re.compile(r"-m (experiments(?:\.\w+)+)")
TEST_REF = re.compile(r"(?<![\w/.])(tests/[\w/]+\.py)(?:::(\w+))?")

RAW_PATH = re.compile(r"docs/results/[\w.\-/]*\w")
LINK = re.compile(r"\]\(([^)\s]+)\)")
SECTION_LINK = re.compile(r"([\w./\-]*\.md)#([\w\-]+)")


def _prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks."""
    out, fenced = [], False
    for number, line in enumerate(text.splitlines()):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            out.append((number, line))
    return out


def raw_references(text: str, doc: Path) -> set[Path]:
    """Files under docs/results/ that ``text`` (of the file ``doc``) names: as a ``docs/results/...`` path (from
    the repository root) or as a relative link that lands there. Folders do not count."""
    found = {ROOT / match for match in RAW_PATH.findall(text)}
    for target in LINK.findall(text):
        if "://" in target:
            continue
        path = (doc.parent / target.split("#")[0]).resolve()
        if (ROOT / "docs" / "results") in path.parents:
            found.add(path)
    return found


def unsourced_tables(text: str, doc: Path) -> list[str]:
    """The first line of every table in ``text`` that names no existing raw file of its own.

    A table's raw file is named in its cells or in the prose right before or after it, within its ``##``
    section; the prose between two tables serves one of them, not both (matched left to right)."""
    lines = text.splitlines()
    prose = {number for number, _ in _prose_lines(text)}
    sections, start = [], 0
    for number in sorted(prose):
        if lines[number].startswith("## "):
            sections.append((start, number))
            start = number
    sections.append((start, len(lines)))

    def sourced(begin: int, end: int) -> bool:
        return any(path.is_file() for path in raw_references("\n".join(lines[begin:end]), doc))

    problems = []
    for first, last in sections:
        tables, number = [], first
        while number < last:
            is_table = number in prose and lines[number].startswith("|")
            if is_table and number + 1 < last and re.match(r"^\|[\s:|-]+\|\s*$", lines[number + 1]):
                end = number
                while end < last and lines[end].startswith("|"):
                    end += 1
                tables.append((number, end))
                number = end
            else:
                number += 1
        # gaps[i] is the prose before table i; gaps[-1] the prose after the last one
        bounds = [first] + [edge for table in tables for edge in table] + [last]
        gaps = [(bounds[2 * i], bounds[2 * i + 1]) for i in range(len(tables) + 1)]
        used = set()
        for index, (begin, end) in enumerate(tables):
            if sourced(begin, end):
                continue
            if index not in used and sourced(*gaps[index]):
                used.add(index)
            elif sourced(*gaps[index + 1]):
                used.add(index + 1)
            else:
                problems.append(f"{doc.name} line {begin + 1}: {lines[begin][:60]}")
    return problems


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(doc: Path) -> set[str]:
    return {_slug(line.lstrip("#")) for _, line in _prose_lines(doc.read_text()) if line.startswith("#")}


def test_every_results_table_names_an_existing_raw_file():
    assert unsourced_tables(RESULTS.read_text(), RESULTS) == []


@pytest.mark.parametrize("doc", [README, RESULTS, DIARY], ids=lambda p: p.name)
def test_every_named_raw_file_exists(doc):
    text = doc.read_text()
    named = {ROOT / match for match in RAW_PATH.findall(text)}
    missing = sorted(str(path.relative_to(ROOT)) for path in named if not path.exists())
    assert missing == []


@pytest.mark.parametrize("doc", [README, RESULTS, DIARY], ids=lambda p: p.name)
def test_relative_links_resolve(doc):
    broken = []
    for target in LINK.findall(doc.read_text()):
        if "://" in target or target.startswith(("#", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        resolved = (doc.parent / path).resolve()
        if not resolved.exists():
            broken.append(target)
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(target)
    assert broken == []


def dead_references(text: str) -> list[str]:
    """The script paths (``benchmarks/...``, ``experiments/...``), ``python -m experiments...`` modules and
    ``tests/...py[::test]`` references in ``text`` that name nothing in the repository."""
    dead = [path for path in SCRIPT_PATH.findall(text) if not (ROOT / path).is_file()]
    for module in MODULE.findall(text):
        path = ROOT / module.replace(".", "/")
        if not path.with_suffix(".py").is_file() and not (path / "__init__.py").is_file():
            dead.append(f"-m {module}")
    for path, name in TEST_REF.findall(text):
        file = ROOT / path
        if not file.is_file():
            dead.append(path)
        elif name and not re.search(rf"^\s*(?:async )?def {name}\(", file.read_text(), re.MULTILINE):
            dead.append(f"{path}::{name}")
    return sorted(set(dead))


@pytest.mark.parametrize("doc", [README, RESULTS, GUARANTEES], ids=lambda p: p.name)
def test_named_scripts_modules_and_tests_exist(doc):
    assert dead_references(doc.read_text()) == []


def test_the_reference_check_catches_dead_paths():
    assert dead_references("python benchmarks/table2_cpu.py --output T2") == ["benchmarks/table2_cpu.py"]
    assert dead_references("`experiments/perf/no_such.sh`") == ["experiments/perf/no_such.sh"]
    assert dead_references("python -m experiments.table2.nothing") == ["-m experiments.table2.nothing"]
    assert dead_references("(`tests/contracts/test_docs.py::test_gone`)") == [
        "tests/contracts/test_docs.py::test_gone"
    ]
    assert dead_references("tests/nowhere/test_x.py") == ["tests/nowhere/test_x.py"]
    alive = (
        "python -m experiments.table2.run cpu; experiments/perf/postprocess_speed.py; "
        "tests/contracts/test_docs.py::test_slugs_follow_github"
    )
    assert dead_references(alive) == []


def test_section_links_in_configs_land_on_a_heading():
    """Each config's header points at the RESULTS section behind it; a renamed heading must not break it."""
    broken = []
    for path in CONFIGS:
        for doc, anchor in SECTION_LINK.findall(path.read_text()):
            target = ROOT / doc
            if not target.is_file() or anchor not in _anchors(target):
                broken.append(f"{path.name}: {doc}#{anchor}")
    assert broken == []


def test_the_table_check_catches_a_table_without_a_raw_file():
    doc = ROOT / "docs" / "EXAMPLE.md"
    table = "| a | b |\n|---|---|\n| 1 | 2 |\n"
    sourced = f"## One\n\n{table}\nRaw rows: [docs/results/inference.json](results/inference.json).\n"
    linked_only = f"## One\n\n{table}\n[the rows](results/inference.json)\n"
    unsourced = f"## One\n\n{table}\n## Two\n\nRaw rows: docs/results/inference.json\n"
    missing = f"## One\n\n{table}\nRaw rows: docs/results/no-such-file.json\n"
    two_tables = f"## One\n\n{table}\ntext\n\n{table}\nRaw rows: docs/results/inference.json\n"
    one_source_for_two = f"## One\n\n{table}\nRaw rows: docs/results/inference.json\n\n{table}\ntext\n"
    in_cells = "## One\n\n| a | raw |\n|---|---|\n| 1 | docs/results/inference.json |\n"
    fenced = f"## One\n\n```\n{table}```\n"
    assert unsourced_tables(sourced, doc) == []
    assert unsourced_tables(linked_only, doc) == []
    assert unsourced_tables(fenced, doc) == []
    assert unsourced_tables(unsourced, doc) == ["EXAMPLE.md line 3: | a | b |"]
    assert unsourced_tables(missing, doc) == ["EXAMPLE.md line 3: | a | b |"]
    assert unsourced_tables(two_tables, doc) == ["EXAMPLE.md line 3: | a | b |"]
    assert unsourced_tables(one_source_for_two, doc) == ["EXAMPLE.md line 9: | a | b |"]
    assert unsourced_tables(in_cells, doc) == []


def test_slugs_follow_github():
    assert _slug(" What did the recipe search find?") == "what-did-the-recipe-search-find"
    assert _slug(" Status: what is reached and what is open") == "status-what-is-reached-and-what-is-open"
    assert _slug(" 6.1 The recipe (second search)") == "61-the-recipe-second-search"
