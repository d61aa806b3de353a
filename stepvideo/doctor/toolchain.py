"""Facts for the doctor's kernel and disk checks: are nvcc and ninja there (optimum-quanto JIT-builds
its qfloat8/qint4 CUDA kernels with them), and does the models folder take symbolic links (the hub
cache links every file of a version to a shared blob). Gathered here, judged in gpu_support.py."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ToolchainFacts:
    nvcc: str | None  # path, or None when not found
    ninja: str | None
    models_dir: str
    symlinks: bool | None  # None: could not be tested (folder missing and not creatable, read-only)
    symlink_error: str | None = None


def find_nvcc() -> str | None:
    """nvcc on PATH, else in $CUDA_HOME/bin (where torch.utils.cpp_extension looks too)."""
    found = shutil.which("nvcc")
    if found:
        return found
    for var in ("CUDA_HOME", "CUDA_PATH"):
        home = os.environ.get(var)
        if home and os.access(Path(home) / "bin" / "nvcc", os.X_OK):
            return str(Path(home) / "bin" / "nvcc")
    default = Path("/usr/local/cuda/bin/nvcc")
    return str(default) if os.access(default, os.X_OK) else None


def find_ninja() -> str | None:
    """ninja on PATH, or the one the `ninja` wheel put next to this Python (a venv not activated)."""
    return shutil.which("ninja") or shutil.which("ninja", path=str(Path(sys.executable).parent))


def symlinks_supported(folder: Path) -> tuple[bool | None, str | None]:
    """Try a symlink in `folder` (or its nearest existing parent) and remove it again."""
    probe_dir = Path(folder).expanduser().absolute()
    while not probe_dir.exists() and probe_dir != probe_dir.parent:
        probe_dir = probe_dir.parent
    link = probe_dir / f".stepvideo-symlink-test-{os.getpid()}"
    try:
        os.symlink("target-that-need-not-exist", link)
    except PermissionError as exc:
        if not os.access(probe_dir, os.W_OK):
            return None, f"{probe_dir} is not writable"
        return False, exc.strerror or str(exc)
    except OSError as exc:
        return False, exc.strerror or str(exc)
    try:
        link.unlink()
    except OSError:
        pass
    return True, None


def probe_toolchain(models_dir: Path) -> ToolchainFacts:
    ok, error = symlinks_supported(models_dir)
    return ToolchainFacts(find_nvcc(), find_ninja(), str(models_dir), ok, error)
