"""Packaging: the desktop entry, icons, style sheet and prompts in resources/, and packaging/install.sh's
desktop-entry, uninstall and torch-choice logic (no venv or pip work: that is packaging/test.sh itself)."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from stepvideo.doctor import report as doctor
from stepvideo_desktop import resource_files as resources

REPO = Path(__file__).resolve().parent.parent
RES = REPO / "stepvideo_desktop" / "resources"
INSTALL = REPO / "packaging" / "install.sh"
APP_ID = "stepvideo-desktop"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)

needs_validator = pytest.mark.skipif(shutil.which("desktop-file-validate") is None,
                                     reason="desktop-file-validate missing (apt-get install desktop-file-utils)")
needs_appstream = pytest.mark.skipif(shutil.which("appstreamcli") is None,
                                     reason="appstreamcli missing (apt-get install appstream)")
METAINFO = "io.github.stepvideo.desktop.metainfo.xml"


def validate(path: Path) -> None:
    done = subprocess.run(["desktop-file-validate", str(path)], capture_output=True, text=True)
    errors = [line for line in (done.stdout + done.stderr).splitlines() if " error: " in line]
    assert done.returncode == 0 and not errors, done.stdout + done.stderr


def run_install(*args: str, home: Path, path_prefix: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, HOME=str(home / "home"), XDG_DATA_HOME=str(home / "data"))
    if path_prefix is not None:
        env["PATH"] = f"{path_prefix}:{env['PATH']}"
    return subprocess.run(["bash", str(INSTALL), *args], capture_output=True, text=True, env=env, timeout=120)


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file (with its bytes) and folder (None) under root."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


# ---- resources ------------------------------------------------------------------------------------


@needs_validator
def test_desktop_entry_validates():
    validate(RES / f"{APP_ID}.desktop")


def test_desktop_entry_keys():
    text = (RES / f"{APP_ID}.desktop").read_text(encoding="utf-8")
    keys = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
    assert keys["Exec"] == f"{APP_ID} %F" and keys["Icon"] == APP_ID and keys["StartupWMClass"] == APP_ID
    # One main category, so the menu lists the app once; no MimeType, so it is not offered for every mp4.
    assert keys["Categories"] == "AudioVideo;Video;" and "MimeType" not in keys
    assert keys["Type"] == "Application" and keys["Terminal"] == "false"


@needs_appstream
def test_metainfo_validates():
    done = subprocess.run(["appstreamcli", "validate", "--no-net", str(RES / METAINFO)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_metainfo_names_the_desktop_entry():
    import xml.etree.ElementTree as ET

    root = ET.parse(RES / METAINFO).getroot()
    assert root.get("type") == "desktop-application"
    assert root.findtext("id") + ".metainfo.xml" == METAINFO  # the file is named after the component id
    assert root.findtext("launchable") == f"{APP_ID}.desktop"
    assert {b.text for b in root.iter("binary")} == {"stepvideo", "stepvideo-desktop"}


def test_icons_exist_in_every_size_and_match_the_svg(qapp):
    sys.path.insert(0, str(REPO / "packaging"))
    try:
        import render_icons
    finally:
        sys.path.pop(0)
    assert render_icons.check() == []  # every size present, readable, the right pixel size
    from PySide6.QtGui import QImage

    for size in (16, 64, 256):  # committed pixels = a fresh render of the SVG (stale PNGs fail)
        fresh = render_icons.render(size).convertToFormat(QImage.Format.Format_ARGB32)
        committed = QImage(str(render_icons.png_path(size))).convertToFormat(QImage.Format.Format_ARGB32)
        worst = max(
            abs(a - b)
            for y in range(0, size, max(1, size // 32)) for x in range(0, size, max(1, size // 32))
            for a, b in zip(fresh.pixelColor(x, y).getRgb(), committed.pixelColor(x, y).getRgb())
        )
        assert worst <= 8, f"{size}px PNG differs from the SVG by {worst}; run packaging/render_icons.py"
    svg = render_icons.SVG.read_text(encoding="utf-8")
    assert svg.lstrip().startswith("<?xml") and 'viewBox="0 0 256 256"' in svg


def test_style_sheet_parses_and_follows_the_palette(qapp, qtbot):
    from PySide6.QtCore import qInstallMessageHandler
    from PySide6.QtWidgets import QLineEdit, QPushButton, QVBoxLayout, QWidget

    qss = (RES / "app.qss").read_text(encoding="utf-8")
    messages: list[str] = []
    previous = qInstallMessageHandler(lambda _kind, _ctx, msg: messages.append(msg))
    try:
        w = QWidget()
        qtbot.addWidget(w)
        w.setStyleSheet(qss)
        layout = QVBoxLayout(w)
        button = QPushButton("Add to queue")
        button.setProperty("primary", True)
        layout.addWidget(button)
        layout.addWidget(QLineEdit("a fox"))
        w.show()
        qapp.processEvents()
        w.grab()
    finally:
        qInstallMessageHandler(previous)
    assert not [m for m in messages if "parse" in m.lower() or "stylesheet" in m.lower()], messages
    # One accent colour; every other colour comes from the palette or is a translucent tint.
    hexes = {h.upper() for h in re.findall(r"#[0-9A-Fa-f]{6}\b", re.sub(r"/\*.*?\*/", "", qss, flags=re.S))}
    assert "#6366F1" in hexes and hexes <= {"#6366F1", "#4F46E5", "#4338CA", "#FFFFFF", "#EF4444", "#F59E0B", "#10B981"}
    assert qss.count("palette(") >= 20
    # The 8 px grid: every pixel length is a multiple of 4 (half-steps only for hairlines and insets).
    lengths = {int(n) for n in re.findall(r"(?<![\w.#-])-?(\d+)px", qss)}
    assert all(n % 4 == 0 or n in (1, 2, 6) for n in lengths), sorted(lengths)


def test_example_prompts():
    eval_set = set((RES / "prompts" / "step-video-t2v-eval.txt").read_text(encoding="utf-8").splitlines())
    for name, is_chinese in (("examples_en.txt", False), ("examples_zh.txt", True)):
        lines = (RES / "prompts" / name).read_text(encoding="utf-8").splitlines()
        assert len(lines) == 12 and all(len(line.strip()) > 20 for line in lines), name
        assert len(set(lines)) == len(lines) and not set(lines) & eval_set
        cjk = [any("\u4e00" <= ch <= "\u9fff" for ch in line) for line in lines]
        assert all(cjk) if is_chinese else not any(cjk)


def test_resources_are_package_data_and_the_override_is_honoured(tmp_path, monkeypatch):
    assert resources.resources_dir() == RES
    assert resources.icon_path(48) == RES / "icons/hicolor/48x48/apps/stepvideo-desktop.png"
    assert resources.icon_path() == RES / "icons/hicolor/scalable/apps/stepvideo-desktop.svg"
    with pytest.raises(ValueError, match="shipped sizes: 16, 24"):
        resources.icon_path(20)
    (tmp_path / f"{APP_ID}.desktop").write_text("[Desktop Entry]\n")
    monkeypatch.setenv(resources.RESOURCES_ENV, str(tmp_path))
    assert resources.resources_dir() == tmp_path and resources.resource_path("app.qss") is None
    assert not (REPO / "resources").exists()  # one copy, inside the package: no symlink, no second place


# ---- install.sh: desktop entry and uninstall ------------------------------------------------------


def _fake_venv(root: Path) -> Path:
    exe = root / "bin" / APP_ID
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    (root / "pyvenv.cfg").write_text("home = /usr/bin\n")
    return exe


@pytest.mark.parametrize("venv_name", ["venv", "my apps/venv"])
def test_desktop_entry_install_and_uninstall(tmp_path, venv_name):
    data = tmp_path / "data"
    # What the user already has: another app's entry and icon, videos, models, a queue. All must survive.
    (data / "applications").mkdir(parents=True)
    (data / "applications" / "other.desktop").write_text("[Desktop Entry]\nType=Application\nName=Other\nExec=other\n")
    (data / "icons" / "hicolor" / "48x48" / "apps").mkdir(parents=True)
    (data / "icons" / "hicolor" / "48x48" / "apps" / "other.png").write_bytes(b"png")
    (data / "StepVideoDesktop").mkdir()
    (data / "StepVideoDesktop" / "queue.sqlite3").write_bytes(b"jobs")
    (tmp_path / "home" / "Videos" / "StepVideo").mkdir(parents=True)
    (tmp_path / "home" / "Videos" / "StepVideo" / "fox.mp4").write_bytes(b"video")
    exe = _fake_venv(tmp_path / venv_name)
    before = snapshot(tmp_path)

    for _ in range(2):  # a reinstall must not duplicate or lose manifest entries
        done = run_install("--desktop-entry-only", "--venv", str(tmp_path / venv_name), home=tmp_path)
        assert done.returncode == 0, done.stderr

    entry = data / "applications" / f"{APP_ID}.desktop"
    text = entry.read_text(encoding="utf-8")
    exec_line = f'Exec="{exe}" %F' if " " in str(exe) else f"Exec={exe} %F"
    assert exec_line in text.splitlines() and f"TryExec={exe}" in text.splitlines()
    assert "Icon=stepvideo-desktop" in text and "StartupWMClass=stepvideo-desktop" in text
    if shutil.which("desktop-file-validate"):
        validate(entry)
    for size in SIZES:
        icon = data / "icons" / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png"
        assert icon.read_bytes() == (RES / "icons/hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png").read_bytes()
    assert (data / "icons/hicolor/scalable/apps" / f"{APP_ID}.svg").is_file()
    assert (data / "metainfo" / METAINFO).read_bytes() == (RES / METAINFO).read_bytes()
    link = tmp_path / "home" / ".local" / "bin" / APP_ID  # the command on PATH, as pipx links it
    assert link.is_symlink() and os.readlink(link) == str(exe)
    manifest = (data / "StepVideoDesktop" / "install-manifest.txt").read_text().splitlines()
    assert len(manifest) == len(set(manifest)) and f"file\t{entry}" in manifest
    assert not any(str(exe.parent.parent) in line for line in manifest)  # we did not make that venv

    done = run_install("--uninstall", home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert snapshot(tmp_path) == before
    assert "videos, models, settings and the job queue were not touched" in done.stderr


def test_commands_are_linked_into_local_bin_but_never_over_a_foreign_file(tmp_path):
    (tmp_path / "home").mkdir()
    venv = tmp_path / "venv"
    _fake_venv(venv)
    cli = venv / "bin" / "stepvideo"
    cli.write_text("#!/bin/sh\n")
    cli.chmod(0o755)
    bin_home = tmp_path / "home" / ".local" / "bin"
    bin_home.mkdir(parents=True)
    foreign = bin_home / APP_ID
    foreign.write_text("#!/bin/sh\necho mine\n")  # the user's own script of that name
    before = snapshot(tmp_path)

    done = run_install("--desktop-entry-only", "--venv", str(venv), home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (bin_home / "stepvideo").is_symlink() and os.readlink(bin_home / "stepvideo") == str(cli)
    assert foreign.read_text() == "#!/bin/sh\necho mine\n" and f"kept {foreign}: it is not ours" in done.stderr
    assert "is not on your PATH" in done.stderr  # the test's PATH has no ~/.local/bin
    manifest = (tmp_path / "data" / "StepVideoDesktop" / "install-manifest.txt").read_text().splitlines()
    assert f"link\t{bin_home / 'stepvideo'}" in manifest and not any(str(foreign) in line for line in manifest)

    done = run_install("--uninstall", home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert snapshot(tmp_path) == before  # our link gone, the user's script kept


def test_no_path_links_option(tmp_path):
    (tmp_path / "home").mkdir()
    _fake_venv(tmp_path / "venv")
    done = run_install("--desktop-entry-only", "--no-path-links", "--venv", str(tmp_path / "venv"), home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "home" / ".local").exists()


def test_uninstall_in_an_empty_home_leaves_nothing(tmp_path):
    (tmp_path / "home").mkdir()
    assert run_install("--desktop-entry-only", home=tmp_path).returncode == 0
    assert (tmp_path / "data" / "applications" / f"{APP_ID}.desktop").is_file()
    assert run_install("--uninstall", home=tmp_path).returncode == 0
    assert snapshot(tmp_path) == {"home": None}


def test_uninstall_removes_a_venv_it_made_but_not_one_that_changed(tmp_path):
    (tmp_path / "home").mkdir()
    made, kept = tmp_path / "made", tmp_path / "kept"
    for venv in (made, kept):
        _fake_venv(venv)
    manifest = tmp_path / "m.txt"
    (kept / "pyvenv.cfg").unlink()  # no longer a venv: uninstall must not delete it
    manifest.write_text(f"venv\t{made}\nvenv\t{kept}\n")
    done = run_install("--uninstall", "--manifest", str(manifest), home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert not made.exists() and kept.is_dir() and not manifest.exists()
    assert "no longer looks like a virtual environment" in done.stderr


@pytest.mark.parametrize("args, message", [
    (["--torch", "rocm"], "--torch 'rocm' is not allowed; allowed: auto, cpu, cu118, cu121, cu124, cu126, cu128"),
    (["--frobnicate"], "unknown option '--frobnicate'; allowed:"),
    (["--venv"], "--venv needs a value"),
    (["--uninstall"], "nothing to uninstall: no manifest at"),
    (["--desktop-entry-only", "--no-desktop-entry"], "contradict each other"),
])
def test_bad_arguments_give_one_line(tmp_path, args, message):
    (tmp_path / "home").mkdir()
    done = run_install(*args, home=tmp_path)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("install.sh: error: ") and message in lines[0]


# ---- install.sh: the torch build ------------------------------------------------------------------


def _fake_nvidia_smi(bin_dir: Path, driver: str | None) -> None:
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "nvidia-smi"
    body = f'echo "{driver}"' if driver else 'echo "NVIDIA-SMI has failed" >&2; exit 9'
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)


@pytest.mark.parametrize("driver", [None, "580.65.06", "570.26", "560.35.03", "550.54.14", "535.183.01", "470.256.02"])
def test_torch_auto_matches_the_doctor(tmp_path, driver):
    (tmp_path / "home").mkdir()
    _fake_nvidia_smi(tmp_path / "bin", driver)
    done = run_install("--print-torch-choice", home=tmp_path, path_prefix=tmp_path / "bin")
    expected = doctor.torch_choice_for_driver(driver)
    if expected is None:
        assert done.returncode == 1 and "older than any CUDA build" in done.stderr
    else:
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == expected


def test_no_gpu_says_what_works_instead_of_only_a_gpu(tmp_path):
    (tmp_path / "home").mkdir()
    _fake_nvidia_smi(tmp_path / "bin", None)
    done = run_install("--print-torch-choice", home=tmp_path, path_prefix=tmp_path / "bin")
    assert done.returncode == 0 and done.stdout.strip() == "cpu"
    assert "The whole app works here" in done.stderr and "small test videos on the CPU" in done.stderr
    assert "can only make videos" not in done.stderr


@pytest.mark.parametrize("families", ["", "Noto Sans CJK SC"])
def test_installer_checks_for_a_chinese_font(tmp_path, families):
    (tmp_path / "home").mkdir()
    (tmp_path / "bin").mkdir()
    fc = tmp_path / "bin" / "fc-list"
    fc.write_text(f'#!/bin/sh\n[ "$1" = ":lang=zh" ] && [ -n "{families}" ] && echo "{families}"\nexit 0\n')
    fc.chmod(0o755)
    done = run_install("--check-fonts", home=tmp_path, path_prefix=tmp_path / "bin")
    assert done.returncode == 0, done.stderr
    if families:
        assert done.stderr == ""
    else:
        assert "no font for Chinese text" in done.stderr and "fonts-noto-cjk" in done.stderr


def test_explicit_torch_choice_is_kept(tmp_path):
    (tmp_path / "home").mkdir()
    done = run_install("--print-torch-choice", "--torch", "cu121", home=tmp_path)
    assert done.stdout.strip() == "cu121"


def test_driver_tables_agree():
    text = INSTALL.read_text()
    table = re.search(r"CUDA_DRIVER_TABLE=\(\n(.*?)\n\)", text, re.S).group(1)
    rows = dict(re.findall(r'"cu(\d+) ([\d.]+)"', table))
    assert {f"{k[:-1]}.{k[-1]}": v for k, v in rows.items()} == doctor.CUDA_MIN_DRIVER
    skips = re.search(r'AUTO_SKIPS=" (.*) "', text).group(1).split()
    assert {f"{s[2:-1]}.{s[-1]}" for s in skips} == set(doctor.AUTO_SKIPS)


@pytest.mark.slow
def test_wheel_ships_the_resources(tmp_path):
    """A wheel carries the resources as package data of stepvideo_desktop."""
    src = tmp_path / "src"
    shutil.copytree(REPO, src, symlinks=True,
                    ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "data", "__pycache__"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    import zipfile

    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for rel in ("app.qss", f"{APP_ID}.desktop", "prompts/examples_en.txt", "prompts/step-video-t2v-eval.txt",
                f"icons/hicolor/512x512/apps/{APP_ID}.png", f"icons/hicolor/scalable/apps/{APP_ID}.svg"):
        assert f"stepvideo_desktop/resources/{rel}" in names


def test_pyinstaller_spec_and_entry_compile():
    """The experimental bundle is not built in CI; at least its files must be valid Python."""
    for name in ("stepvideo-desktop.spec", "pyinstaller_entry.py", "render_icons.py"):
        path = REPO / "packaging" / name
        compile(path.read_text(encoding="utf-8"), str(path), "exec")


# ---- install.sh: what a rerun installs ------------------------------------------------------------

FAKE_PYTHON = """#!/bin/bash
# Stands in for the venv's python: records pip runs, reports a CPU torch, imports succeed.
printf '%s\\n' "$*" >>"$(dirname "$0")/../calls.log"
case "$*" in
    *"import torch; print"*) echo "2.13.0 cpu" ;;
esac
exit 0
"""


def _fake_checkout(root: Path) -> Path:
    """packaging/install.sh in a folder with the source trees its app stamp hashes."""
    (root / "packaging").mkdir(parents=True)
    shutil.copy(INSTALL, root / "packaging" / "install.sh")
    (root / "pyproject.toml").write_text("[project]\nname = 'stepvideo'\n")
    for rel in ("stepvideo/__init__.py", "stepvideo_desktop/app.py", "stepvideo_desktop/resources/app.qss"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("# v1\n")
    python = root / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    return root


def _pip_installs(checkout: Path, *args: str) -> list[str]:
    """Run the fake checkout's install.sh; the `pip install` lines it ran, with "torch" or "app" for each."""
    log = checkout / "venv" / "calls.log"
    log.unlink(missing_ok=True)
    env = dict(os.environ, HOME=str(checkout / "home"), XDG_DATA_HOME=str(checkout / "data"))
    done = subprocess.run(["bash", str(checkout / "packaging" / "install.sh"), "--venv", str(checkout / "venv"),
                           "--torch", "cpu", "--no-desktop-entry", *args],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = log.read_text().splitlines() if log.exists() else []
    installs = [line.split()[3] for line in lines if line.startswith("-m pip install ") and "--dry-run" not in line]
    return ["torch" if what.startswith("torch") else "app" for what in installs]


def test_a_rerun_reinstalls_changed_app_code_but_not_torch(tmp_path):
    checkout = _fake_checkout(tmp_path / "repo")
    assert _pip_installs(checkout) == ["torch", "app"]
    assert _pip_installs(checkout) == []  # nothing changed: no pip run at all
    (checkout / "stepvideo_desktop" / "app.py").write_text("# v2\n")  # an updated checkout (git pull)
    assert _pip_installs(checkout) == ["app"]
    (checkout / "stepvideo_desktop" / "__pycache__").mkdir()
    (checkout / "stepvideo_desktop" / "__pycache__" / "app.cpython-312.pyc").write_bytes(b"bytecode")
    (checkout / "stepvideo_desktop" / "resources" / "prompts").mkdir()
    assert _pip_installs(checkout) == []  # caches and empty folders are not the app
    (checkout / "stepvideo_desktop" / "resources" / "prompts" / "examples_en.txt").write_text("a fox\n")
    assert _pip_installs(checkout) == ["app"]
    assert _pip_installs(checkout, "--editable") == ["app"]  # another install mode
    (checkout / "stepvideo" / "__init__.py").write_text("# v3\n")
    assert _pip_installs(checkout, "--editable") == []  # editable: the venv runs the checkout's files
    assert _pip_installs(checkout, "--force") == ["torch", "app"]
