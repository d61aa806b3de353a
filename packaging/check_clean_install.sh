#!/usr/bin/env bash
# Checks that a plain `pip install .` into a fresh venv and `pipx install .` both give working
# `stepvideo` and `stepvideo-desktop` commands whose shipped resources load (issue 12). Not part of the
# test suite: it installs everything twice (a few minutes, a few GB). Prints one JSON line.
#
#   bash packaging/check_clean_install.sh [WORK_DIR]
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=${1:-$(mktemp -d)}
mkdir -p "$work/home"
export HOME=$work/home QT_QPA_PLATFORM=offscreen PIPX_HOME=$work/pipx PIPX_BIN_DIR=$work/pipx-bin
git clone -q "$repo" "$work/src"

check() {  # $1: folder holding the two commands, $2: its python
    "$1/stepvideo" make-tiny-model "$work/tiny-$3" >/dev/null
    "$1/stepvideo" generate --model "$work/tiny-$3" --prompt "waves" --size 64x96 --frames 17 --steps 2 \
        --output "$work/$3.mp4" >/dev/null 2>&1
    "$1/stepvideo-desktop" --screenshot "$work/$3.png" --page composer >/dev/null 2>&1
    "$2" -c 'from stepvideo_desktop import assets, resource_files as r
assert r.icon_path(48) and assets.style_sheet() and assets.example_prompts(), "resources missing"'
    [[ -s $work/$3.mp4 && -s $work/$3.png ]]
}

python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "torch==${TORCH_VERSION:-2.13.0}"
"$work/venv/bin/pip" install -q "$work/src"
check "$work/venv/bin" "$work/venv/bin/python" pip && pip_ok=true || pip_ok=false

pipx install "$work/src" >/dev/null
check "$PIPX_BIN_DIR" "$PIPX_HOME/venvs/stepvideo-desktop/bin/python" pipx && pipx_ok=true || pipx_ok=false

printf '{"check": "clean_install", "pip_install": %s, "pipx_install": %s, "work_dir": "%s"}\n' \
    "$pip_ok" "$pipx_ok" "$work"
[[ $pip_ok == true && $pipx_ok == true ]]
