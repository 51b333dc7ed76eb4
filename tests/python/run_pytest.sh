#!/usr/bin/env bash
# Runs pytest with the virtual environment's Python: run_pytest.sh VENV [pytest args].
set -euo pipefail
venv=$1
shift
if [ ! -x "$venv/bin/python" ]; then
  echo "no virtual environment at $venv: make it as README.md says:" >&2
  echo "  /usr/bin/python3 -m venv .venv && .venv/bin/pip install \".[ray,test]\"" >&2
  exit 1
fi
exec "$venv/bin/python" -m pytest -q -s "$@"
