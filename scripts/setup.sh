#!/usr/bin/env bash
# Set up distilqa from nothing: a virtual environment in .venv, the CPU torch wheel, then the package with
# its extras, pinned by constraints.txt (the versions CI tested). Safe to run again: it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  echo "[setup] installing torch 2.13.0 (CPU wheel)${DISTILQA_TORCH_INDEX_URL:+ from $DISTILQA_TORCH_INDEX_URL}"
  # torch first and pinned: a bare 'torch' requirement would pull a multi-GB CUDA build. On a stock package index
  # (pypi.org serves the CUDA build as 'torch') set DISTILQA_TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu.
  "${PIP[@]}" install torch==2.13.0 ${DISTILQA_TORCH_INDEX_URL:+--index-url "$DISTILQA_TORCH_INDEX_URL"}
fi
echo "[setup] installing distilqa[all] with constraints.txt"
"${PIP[@]}" install -c constraints.txt -e '.[all]'
echo "[setup] ready: $("$VENV/bin/python" -c 'import distilqa, torch, transformers; print(f"distilqa {distilqa.__version__}, torch {torch.__version__}, transformers {transformers.__version__}")')"
