#!/usr/bin/env bash
# The test command: set everything up from nothing, lint, then run the default (fast) test suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m slow` for the slow checks.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
.venv/bin/ruff check src tests experiments
.venv/bin/ruff format --check src tests experiments
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
