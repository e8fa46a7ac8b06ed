#!/usr/bin/env bash
# The main job: set everything up from nothing, then run the offline demo. Arguments go to `distilqa demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
.venv/bin/distilqa demo "$@"
