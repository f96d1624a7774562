#!/usr/bin/env bash
# Create .venv (if needed) and install seqdb with its test extras from this repository.
# torch is installed first from the pinned CPU wheel so that nothing pulls a CUDA build.
# Idempotent: skips the install when pyproject.toml has not changed since the last one.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.seqdb-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q "torch==2.13.0"
  .venv/bin/python -m pip install -q -e ".[dev]"
  if .venv/bin/python -m pip list 2>/dev/null | grep -qi '^nvidia-'; then
    echo "setup: a CUDA build of torch slipped in (nvidia-* packages installed)" >&2; exit 1
  fi
  echo "$want" > "$stamp"
fi
