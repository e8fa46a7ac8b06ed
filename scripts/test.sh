#!/usr/bin/env bash
# The test command (CI runs exactly this): set everything up from nothing, lint, then run EVERY test in two
# stages: the quick default suite, then the slow ones (crash/resume, 2-process, end-to-end experiment runs) and
# the experiments' own tests. `bash scripts/test.sh --quick` stops after the first stage (for development);
# any other arguments go to pytest as one run, e.g. `bash scripts/test.sh tests/qa -x`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
.venv/bin/ruff check src tests experiments
.venv/bin/ruff format --check src tests experiments
PYTEST=(.venv/bin/python -m pytest -q -p no:cacheprovider)
if [ "$#" -gt 0 ] && [ "$1" != "--quick" ]; then
  exec "${PYTEST[@]}" "$@"
fi
echo "[test] stage 1/2: the default suite"
"${PYTEST[@]}"
if [ "${1:-}" = "--quick" ]; then
  exit 0
fi
echo "[test] stage 2/2: the slow tests and the experiments' tests"
"${PYTEST[@]}" -m "slow or experiments"
