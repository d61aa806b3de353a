#!/usr/bin/env bash
# StepVideo Desktop installer for Linux (per user, no root).
#
# 1. makes a virtual environment (default $XDG_DATA_HOME/StepVideoDesktop/venv),
# 2. installs the torch build that fits this machine ON PURPOSE (a plain `pip install` would pick
#    PyPI's default CUDA wheel, several GB, whatever the driver),
# 3. installs the app into it,
# 4. installs the desktop entry, icons and AppStream metainfo where XDG desktops look for them,
# 5. links `stepvideo` and `stepvideo-desktop` into ~/.local/bin (as pipx does), never over a file
#    that is not ours.
# Every file and folder it adds is written to a manifest, and `--uninstall` removes exactly those:
# never the user's videos, models, settings or queue.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: packaging/install.sh [options]

  --venv DIR             virtual environment to create or update
                         (default: $XDG_DATA_HOME/StepVideoDesktop/venv, i.e. ~/.local/share/...)
  --torch CHOICE         auto | cpu | cu118 | cu121 | cu124 | cu126 | cu128   (default: auto)
                         auto reads the NVIDIA driver version (nvidia-smi) and takes the newest CUDA
                         build that driver runs; without an NVIDIA driver it takes cpu.
  --torch-spec SPEC      pip requirement for torch (default: torch==2.13.0 for cpu, torch>=2.6 for CUDA)
  --python PY            interpreter that makes the venv, 3.10 or newer (default: python3)
  --dev                  editable install with the [test] extra (for developing the app)
  --editable             editable install without the test extra
  --force                run pip again even if torch and the app are already up to date
  --no-desktop-entry     skip the desktop entry, icons and metainfo
  --no-path-links        do not link the commands into ~/.local/bin (or $XDG_BIN_HOME)
  --desktop-entry-only   install only the desktop entry and icons (no venv, no pip)
  --manifest FILE        where the record of installed files is kept
                         (default: $XDG_DATA_HOME/StepVideoDesktop/install-manifest.txt)
  --print-torch-choice   print the torch build `--torch` resolves to (cpu, cu126, ...) and exit
  --check-fonts          only check for a font that can show Chinese text (fc-list :lang=zh) and exit
  --uninstall            remove everything the manifest lists, then the manifest
  -q, --quiet            less pip output
  -h, --help             this text
EOF
}

APP_ID=stepvideo-desktop
METAINFO=io.github.stepvideo.desktop.metainfo.xml
COMMANDS=(stepvideo stepvideo-desktop)
BIN_HOME=${XDG_BIN_HOME:-$HOME/.local/bin}   # where pipx links commands too
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RESOURCES=$REPO/stepvideo_desktop/resources
DATA_HOME=${XDG_DATA_HOME:-$HOME/.local/share}
APP_DATA=$DATA_HOME/StepVideoDesktop
ICON_SIZES=(16 24 32 48 64 128 256 512)
TORCH_INDEX_BASE=https://download.pytorch.org/whl
CPU_TORCH_SPEC="torch==2.13.0"
CUDA_TORCH_SPEC="torch>=2.6"   # the app's floor (pyproject); the index holds the newest build for it

# Minimum Linux driver for each CUDA release (NVIDIA's CUDA toolkit release notes, table 3).
# stepvideo/doctor.py keeps the same table (CUDA_MIN_DRIVER); tests/test_packaging.py compares them.
CUDA_DRIVER_TABLE=(
    "cu128 570.26"
    "cu126 560.28.03"
    "cu124 550.54.14"
    "cu121 530.30.02"
    "cu118 520.61.05"
)
# PyTorch published no torch >= 2.6 for CUDA 12.1, so auto never picks it (ask for it by name).
AUTO_SKIPS=" cu121 "

VENV=$APP_DATA/venv
MANIFEST=""
TORCH=auto
TORCH_SPEC=""
PYTHON=${PYTHON:-python3}
MODE=release   # release | editable | dev
FORCE=0
DESKTOP=1
PATH_LINKS=1
ONLY_DESKTOP=0
UNINSTALL=0
PRINT_TORCH=0
CHECK_FONTS_ONLY=0
PIP_QUIET=()

say() { printf 'install.sh: %s\n' "$*" >&2; }
die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }

need_value() { [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value; see --help"; }

while [[ $# -gt 0 ]]; do
    case $1 in
        --venv) need_value "$@"; VENV=$2; shift 2 ;;
        --torch) need_value "$@"; TORCH=$2; shift 2 ;;
        --torch-spec) need_value "$@"; TORCH_SPEC=$2; shift 2 ;;
        --python) need_value "$@"; PYTHON=$2; shift 2 ;;
        --manifest) need_value "$@"; MANIFEST=$2; shift 2 ;;
        --dev) MODE=dev; shift ;;
        --editable) [[ $MODE == dev ]] || MODE=editable; shift ;;
        --force) FORCE=1; shift ;;
        --no-desktop-entry) DESKTOP=0; shift ;;
        --no-path-links) PATH_LINKS=0; shift ;;
        --desktop-entry-only) ONLY_DESKTOP=1; shift ;;
        --print-torch-choice) PRINT_TORCH=1; shift ;;
        --check-fonts) CHECK_FONTS_ONLY=1; shift ;;
        --uninstall) UNINSTALL=1; shift ;;
        -q|--quiet) PIP_QUIET=(-q); shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option '$1'; allowed: --venv --torch --torch-spec --python --dev --editable --force --no-desktop-entry --no-path-links --desktop-entry-only --manifest --print-torch-choice --check-fonts --uninstall --quiet --help" ;;
    esac
done

case $TORCH in
    auto|cpu|cu118|cu121|cu124|cu126|cu128) ;;
    *) die "--torch '$TORCH' is not allowed; allowed: auto, cpu, cu118, cu121, cu124, cu126, cu128" ;;
esac
if [[ $ONLY_DESKTOP == 1 && $DESKTOP == 0 ]]; then
    die "--desktop-entry-only and --no-desktop-entry contradict each other; pass one of them"
fi
VENV=$(realpath -m -- "$VENV")
MANIFEST=$(realpath -m -- "${MANIFEST:-$APP_DATA/install-manifest.txt}")

# ---- manifest -------------------------------------------------------------------------------------
# One line per thing we added: "<kind>\t<absolute path>", kind = file | link | dir | venv | cache. Lines are
# collected in memory and merged into the manifest on exit, even a failed one, so a half-finished
# install can still be uninstalled. The manifest may live inside the venv (packaging/test.sh does that).

ADDED=()
record() { ADDED+=("$(printf '%s\t%s' "$1" "$2")"); }

flush_manifest() {
    [[ ${#ADDED[@]} -gt 0 ]] || return 0
    make_dir "$(dirname -- "$MANIFEST")"
    local tmp=$MANIFEST.tmp.$$
    { [[ -f $MANIFEST ]] && cat -- "$MANIFEST"; printf '%s\n' "${ADDED[@]}"; } | awk '!seen[$0]++' >"$tmp"
    mv -f -- "$tmp" "$MANIFEST"
    ADDED=()
}

# mkdir -p that records each folder it creates, so uninstall can remove the ones left empty.
make_dir() {
    local dir=$1 missing=()
    while [[ ! -d $dir ]]; do
        missing=("$dir" "${missing[@]}")
        dir=$(dirname -- "$dir")
    done
    for dir in "${missing[@]}"; do
        mkdir -- "$dir"
        record dir "$dir"
    done
}

# ---- torch choice ---------------------------------------------------------------------------------

version_ge() {  # version_ge A B: A >= B (dotted numbers)
    [[ $(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1) == "$2" ]]
}

driver_version() {
    command -v nvidia-smi >/dev/null 2>&1 || return 1
    local v
    v=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -n 1 | tr -d '[:space:]') || return 1
    [[ $v =~ ^[0-9]+(\.[0-9]+)*$ ]] || return 1
    printf '%s\n' "$v"
}

resolve_torch() {
    if [[ $TORCH != auto ]]; then
        printf '%s\n' "$TORCH"
        return
    fi
    local driver row tag min
    if ! driver=$(driver_version); then
        say "no NVIDIA driver found (nvidia-smi): installing the CPU build of torch. The whole app works here (Create, Queue, Gallery, Models, Settings), and it makes small test videos on the CPU with a small model (stepvideo make-tiny-model); the full 30B model needs an NVIDIA GPU (stepvideo doctor says what this machine can run)"
        printf 'cpu\n'
        return
    fi
    for row in "${CUDA_DRIVER_TABLE[@]}"; do
        read -r tag min <<<"$row"
        [[ $AUTO_SKIPS == *" $tag "* ]] && continue
        if version_ge "$driver" "$min"; then
            say "NVIDIA driver $driver: using the $tag build of torch"
            printf '%s\n' "$tag"
            return
        fi
    done
    die "NVIDIA driver $driver is older than any CUDA build of torch >= 2.6 supports (needs >= 520.61.05); update the driver, or pass --torch cpu"
}

# ---- venv and pip ---------------------------------------------------------------------------------

check_python() {
    command -v "$PYTHON" >/dev/null 2>&1 || die "'$PYTHON' not found; install Python 3.10 or newer, or pass --python"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
        die "$("$PYTHON" -V 2>&1) is too old; StepVideo Desktop needs Python 3.10 or newer (pass --python)"
}

make_venv() {
    if [[ -x $VENV/bin/python ]]; then
        say "using the virtual environment $VENV"
        return
    fi
    if [[ -e $VENV && -n $(find "$VENV" -mindepth 1 -maxdepth 1 ! -path "$MANIFEST" -print -quit) ]]; then
        die "$VENV exists and is not a virtual environment; pick another --venv"
    fi
    check_python
    make_dir "$(dirname -- "$VENV")"
    local fresh=1
    [[ -e $VENV ]] && fresh=0  # an empty folder (or one holding only our manifest) is reused
    say "creating the virtual environment $VENV"
    if ! "$PYTHON" -m venv -- "$VENV" || [[ ! -x $VENV/bin/python ]] || ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
        # A venv without pip (Debian without python3-venv) would only fail later: take it away now.
        [[ $fresh == 1 ]] && rm -rf -- "$VENV"
        die "'$PYTHON -m venv' could not make a venv with pip; on Debian/Ubuntu: sudo apt-get install python3-venv"
    fi
    record venv "$VENV"
}

pip() { "$VENV/bin/python" -m pip "${PIP_QUIET[@]}" "$@"; }

url_reachable() {
    "$VENV/bin/python" - "$1" <<'EOF' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(urllib.request.Request(sys.argv[1], method="HEAD"), timeout=5)
EOF
}

torch_build() {  # prints "<version> <cuda or cpu>" of the venv's torch; fails if it does not import
    "$VENV/bin/python" -W ignore -c 'import torch; print(torch.__version__, torch.version.cuda or "cpu")' 2>/dev/null
}

build_matches() {  # build_matches CHOICE "<version> <cuda>"
    local cuda=${2#* }
    if [[ $1 == cpu ]]; then [[ $cuda == cpu ]]; else [[ ${cuda//./} == "${1#cu}" ]]; fi
}

install_torch() {
    local choice=$1 spec have
    # pip keeps a torch that satisfies the version spec whatever its build, so a build change
    # (cpu → cu126, cu128 → cu124 after a driver downgrade) needs the old one removed first.
    if have=$(torch_build) && ! build_matches "$choice" "$have"; then
        say "replacing torch ${have% *} (${have#* }) with the $choice build"
        pip uninstall -y torch
    fi
    if [[ $choice == cpu ]]; then
        spec=${TORCH_SPEC:-$CPU_TORCH_SPEC}
        if url_reachable "$TORCH_INDEX_BASE/cpu/"; then
            # --extra-index-url: the +cpu build outranks PyPI's same-numbered CUDA build.
            pip install "$spec" --extra-index-url "$TORCH_INDEX_BASE/cpu"
        else
            # Offline from the PyTorch index: accept only a CPU build found elsewhere (e.g. a local
            # wheel in pip's find-links), never PyPI's multi-GB CUDA build by accident.
            say "the PyTorch CPU index is unreachable; looking for a local CPU build of $spec"
            local found
            found=$(pip install --dry-run --quiet --report - "$spec" 2>/dev/null |
                "$VENV/bin/python" -c 'import json, sys
print(" ".join(i["metadata"]["version"] for i in json.load(sys.stdin)["install"] if i["metadata"]["name"].lower() == "torch"))') || found=""
            if [[ -n $found && $found != *+cpu* ]]; then
                die "$TORCH_INDEX_BASE/cpu is unreachable and pip would install torch $found (a CUDA build); connect to the internet or put a CPU wheel in pip's find-links"
            fi
            pip install "$spec"
        fi
    else
        spec=${TORCH_SPEC:-$CUDA_TORCH_SPEC}
        pip install "$spec" --index-url "$TORCH_INDEX_BASE/$choice" ||
            die "pip found no $spec for $choice at $TORCH_INDEX_BASE/$choice; pick a newer --torch (cu126, cu128) or a different --torch-spec"
    fi
    have=$(torch_build) || die "torch was installed but does not import; see the messages above"
    say "torch ${have% *} (CUDA: ${have#* })"
    build_matches "$choice" "$have" || die "asked for the $choice build of torch but got ${have% *} (CUDA: ${have#* })"
}

install_app() {
    local extras=""
    [[ $MODE == dev ]] && extras="[test,dev]"
    if [[ $MODE == release ]]; then
        pip install "${REPO}${extras}"
    else
        pip install -e "${REPO}${extras}"
    fi
}

# Two stamps in the venv save pip runs when nothing that decides that part of the install changed:
# torch (the build choice and spec) and the app (pyproject, install mode and, for a non-editable
# install, every source file it copies into the venv: an updated checkout must reach the venv).
TORCH_STAMP=.stepvideo-torch-stamp
APP_STAMP=.stepvideo-app-stamp

source_tree_hash() {  # one hash over the paths and contents of the files a wheel takes from the checkout
    (cd "$REPO" && find stepvideo stepvideo_desktop -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 |
        LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -d' ' -f1
}

torch_stamp_value() {
    printf '%s|%s\n' "$1" "$TORCH_SPEC" | sha256sum | cut -d' ' -f1
}

app_stamp_value() {
    {
        cat "$REPO/pyproject.toml"
        printf '%s\n' "$MODE"
        # An editable install runs the checkout's files in place: only pyproject (entry points,
        # dependencies) needs a new pip run.
        if [[ $MODE == release ]]; then source_tree_hash; fi
    } | sha256sum | cut -d' ' -f1
}

stamp_matches() {  # stamp_matches FILE VALUE
    [[ $FORCE == 0 && -f $VENV/$1 && $(<"$VENV/$1") == "$2" ]]
}

install_python_side() {
    local choice torch_stamp app_stamp
    choice=$(resolve_torch)
    make_venv
    rm -f -- "$VENV/.stepvideo-install-stamp"  # the single stamp of earlier versions of this script
    torch_stamp=$(torch_stamp_value "$choice")
    app_stamp=$(app_stamp_value)
    if stamp_matches "$TORCH_STAMP" "$torch_stamp" && torch_build >/dev/null; then
        say "torch is up to date (pass --force to reinstall it)"
    else
        rm -f -- "$VENV/$TORCH_STAMP"
        install_torch "$choice"
        printf '%s\n' "$torch_stamp" >"$VENV/$TORCH_STAMP"
    fi
    if stamp_matches "$APP_STAMP" "$app_stamp" && "$VENV/bin/python" -c 'import stepvideo, stepvideo_desktop' >/dev/null 2>&1; then
        say "the app is up to date (pass --force to reinstall it)"
        return
    fi
    rm -f -- "$VENV/$APP_STAMP"
    install_app
    printf '%s\n' "$app_stamp" >"$VENV/$APP_STAMP"
}

# ---- desktop entry and icons ----------------------------------------------------------------------

desktop_exec() {
    # The entry must name the program by absolute path: the venv's bin/ is not on PATH.
    if [[ -x $VENV/bin/$APP_ID ]]; then
        printf '%s\n' "$VENV/bin/$APP_ID"
    elif command -v "$APP_ID" >/dev/null 2>&1; then
        command -v "$APP_ID"
    else
        say "warning: $APP_ID is not installed yet; the menu entry will appear once it is on PATH"
        printf '%s\n' "$APP_ID"
    fi
}

install_file() {  # install_file SRC DEST: copy atomically and record DEST
    make_dir "$(dirname -- "$2")"
    cp -f -- "$1" "$2.tmp.$$"
    chmod 0644 -- "$2.tmp.$$"
    mv -f -- "$2.tmp.$$" "$2"
    record file "$2"
}

refresh_caches() {
    local apps=$DATA_HOME/applications hicolor=$DATA_HOME/icons/hicolor
    local had_mime=0 had_icons=0
    [[ -e $apps/mimeinfo.cache ]] && had_mime=1
    [[ -e $hicolor/icon-theme.cache ]] && had_icons=1
    if command -v update-desktop-database >/dev/null 2>&1 && [[ -d $apps ]]; then
        update-desktop-database -q "$apps" || say "warning: update-desktop-database failed (harmless)"
    fi
    if command -v gtk-update-icon-cache >/dev/null 2>&1 && [[ -d $hicolor ]]; then
        gtk-update-icon-cache -q -t -f "$hicolor" || say "warning: gtk-update-icon-cache failed (harmless)"
    fi
    # A cache that exists only because of us is ours to remove again.
    if [[ $UNINSTALL == 0 ]]; then
        [[ $had_mime == 0 && -e $apps/mimeinfo.cache ]] && record cache "$apps/mimeinfo.cache"
        [[ $had_icons == 0 && -e $hicolor/icon-theme.cache ]] && record cache "$hicolor/icon-theme.cache"
    fi
    return 0
}

check_exec_path() {
    # Exec= quoting rules (desktop entry spec) make these characters fragile; refuse rather than guess.
    if [[ $1 == *[\"\`\$\\]* || $1 == *$'\n'* ]]; then
        die "the program path '$1' holds a quote, backquote, dollar or backslash, which a desktop entry cannot name safely; choose another --venv"
    fi
}

install_desktop_entry() {
    local exe entry tmp size
    exe=$(desktop_exec)
    check_exec_path "$exe"
    entry=$DATA_HOME/applications/$APP_ID.desktop
    tmp=$(mktemp)
    # Only the Exec/TryExec lines change; everything else is the validated file in resources/.
    local quoted=$exe
    [[ $exe == *[[:space:]]* ]] && quoted="\"$exe\""
    awk -v exec_line="Exec=$quoted %F" -v try_line="TryExec=$exe" '
        /^Exec=/ { print exec_line; next }
        /^TryExec=/ { print try_line; next }
        { print }' "$RESOURCES/$APP_ID.desktop" >"$tmp"
    install_file "$tmp" "$entry"
    rm -f -- "$tmp"
    for size in "${ICON_SIZES[@]}"; do
        install_file "$RESOURCES/icons/hicolor/${size}x${size}/apps/$APP_ID.png" \
            "$DATA_HOME/icons/hicolor/${size}x${size}/apps/$APP_ID.png"
    done
    install_file "$RESOURCES/icons/hicolor/scalable/apps/$APP_ID.svg" \
        "$DATA_HOME/icons/hicolor/scalable/apps/$APP_ID.svg"
    install_file "$RESOURCES/$METAINFO" "$DATA_HOME/metainfo/$METAINFO"
    refresh_caches
    say "desktop entry: $entry (runs $exe)"
}

# ---- commands on PATH -----------------------------------------------------------------------------

link_commands() {
    # Like pipx: a symlink per command in ~/.local/bin. A file or link there that is not ours (another
    # install, the user's own script) is left alone and named.
    local cmd target link linked=0
    for cmd in "${COMMANDS[@]}"; do
        target=$VENV/bin/$cmd
        [[ -x $target ]] || continue
        link=$BIN_HOME/$cmd
        if [[ -L $link && $(readlink -- "$link") == "$target" ]]; then
            record link "$link"
            linked=1
            continue
        fi
        if [[ -e $link || -L $link ]]; then
            say "kept $link: it is not ours (run $target directly, or remove it and install again)"
            continue
        fi
        make_dir "$BIN_HOME"
        ln -s -- "$target" "$link"
        record link "$link"
        linked=1
        say "linked $link -> $target"
    done
    if [[ $linked == 1 && :$PATH: != *:"$BIN_HOME":* ]]; then
        say "note: $BIN_HOME is not on your PATH; add it (e.g. in ~/.profile) to run stepvideo by name"
    fi
    return 0
}

# ---- uninstall ------------------------------------------------------------------------------------

uninstall() {
    [[ -f $MANIFEST ]] || die "nothing to uninstall: no manifest at $MANIFEST (pass --manifest if it lives elsewhere)"
    local kind path dirs=() caches=()
    while IFS=$'\t' read -r kind path; do
        [[ -n $path ]] || continue
        case $kind in
            file) if [[ -f $path || -L $path ]]; then rm -f -- "$path" && say "removed $path"; fi ;;
            link)  # only while it is still our symlink into a venv's bin/ (not a file put there since)
                if [[ -L $path && $(readlink -- "$path") == */bin/"$(basename -- "$path")" ]]; then
                    rm -f -- "$path" && say "removed $path"
                fi ;;
            venv)
                if [[ -f $path/pyvenv.cfg ]]; then
                    rm -rf -- "$path" && say "removed the virtual environment $path"
                elif [[ -e $path ]]; then
                    say "kept $path: it no longer looks like a virtual environment"
                fi ;;
            cache) caches+=("$path") ;;
            dir) dirs+=("$path") ;;
            *) say "ignored a manifest line of unknown kind '$kind'" ;;
        esac
    done <"$MANIFEST"
    refresh_caches
    # A cache that did not exist before we installed goes too: caches are optional, and without
    # ours the folder is back to how we found it. Caches that were there already stay, refreshed.
    for path in "${caches[@]}"; do
        rm -f -- "$path"
    done
    rm -f -- "$MANIFEST"
    # Deepest folders first; rmdir leaves any folder that holds something else (e.g. user data).
    local dir
    while IFS= read -r dir; do
        rmdir -- "$dir" 2>/dev/null || true
    done < <(for dir in "${dirs[@]}"; do printf '%s\t%s\n' "$(tr -cd / <<<"$dir" | wc -c)" "$dir"; done |
        sort -t$'\t' -k1,1nr | cut -f2-)
    say "uninstalled; videos, models, settings and the job queue were not touched"
}

# ---- fonts ----------------------------------------------------------------------------------------

check_cjk_font() {  # Chinese prompts, examples and the official negative prompt need a CJK font
    if ! command -v fc-list >/dev/null 2>&1; then
        say "could not check for a Chinese font (fc-list, from fontconfig, is not installed)"
        return 0
    fi
    if [[ -z $(fc-list :lang=zh family 2>/dev/null | head -n 1) ]]; then
        say "no font for Chinese text was found: Chinese prompts and the official negative prompt would show as boxes (the app then shows English examples). Install one: sudo apt install fonts-noto-cjk (Debian/Ubuntu) or sudo dnf install google-noto-sans-cjk-fonts (Fedora)"
    fi
}

# ---- main -----------------------------------------------------------------------------------------

if [[ $PRINT_TORCH == 1 ]]; then
    resolve_torch
    exit 0
fi
if [[ $CHECK_FONTS_ONLY == 1 ]]; then
    check_cjk_font
    exit 0
fi
if [[ $UNINSTALL == 1 ]]; then
    uninstall
    exit 0
fi
trap flush_manifest EXIT
if [[ $ONLY_DESKTOP == 0 ]]; then
    install_python_side
fi
if [[ $DESKTOP == 1 ]]; then
    install_desktop_entry
fi
if [[ $PATH_LINKS == 1 ]]; then
    link_commands
fi
if [[ $ONLY_DESKTOP == 0 ]]; then
    check_cjk_font
    say "done. Start it from the menu or with: $VENV/bin/$APP_ID   (check the machine: $VENV/bin/stepvideo doctor)"
fi
