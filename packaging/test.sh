#!/usr/bin/env bash
# Runs the test suite in the repo's own virtual environment (.venv), made or refreshed first by
# packaging/install.sh with the CPU build of torch and the [test] extra, editable.
#
#   bash packaging/test.sh                      # the whole suite
#   bash packaging/test.sh tests/test_doctor.py -x -q
#
# Works non-interactively on a fresh Debian machine with Python 3.10+ and python3-venv; a second run
# skips pip when pyproject.toml has not changed. Set PYTHON to choose the interpreter that makes .venv.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=$repo/.venv

bash "$repo/packaging/install.sh" --venv "$venv" --manifest "$venv/stepvideo-install-manifest.txt" \
    --torch cpu --dev --no-desktop-entry --quiet

export QT_QPA_PLATFORM=offscreen
cd "$repo"
exec "$venv/bin/python" -m pytest "$@"
