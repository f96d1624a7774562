#!/usr/bin/env bash
# The README's main command: install (if needed), then run the demo scaling study.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/seqdb demo "$@"
