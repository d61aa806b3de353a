"""quanto's JIT-compiled kernels (qint4 unpack in C++, fp8/int4 in CUDA), built under a time limit.

quanto compiles its extensions with torch.utils.cpp_extension on first use, into
`<optimum.quanto>/library/extensions/<kind>/build/`. Two things went wrong there:
- a build (nvcc) can take many minutes with nothing on screen, and could hang a job forever;
- torch guards a build with a `lock` file in that folder (FileBaton) and waits, without limit, for
  it to disappear. A build that was killed leaves it behind, so every later run waits forever.

So the build runs in a child Python with a timeout while the caller gets progress events, and a
lock older than the build timeout (no build of ours can be that old) is removed first.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..api import event

log = logging.getLogger(__name__)

BUILD_TIMEOUT_S = 20 * 60  # nvcc builds of quanto's CUDA kernels take minutes, not tens of them
PROGRESS_EVERY_S = 10.0
LOCK_NAME = "lock"  # torch.utils.cpp_extension's FileBaton in the build directory

Progress = Callable[[dict[str, Any]], None]


def quanto_build_dirs() -> list[Path]:
    """The build folders of quanto's registered extensions (they may not exist yet)."""
    try:
        from optimum.quanto.library.extensions import extension
    except ImportError:
        return []
    return [Path(ext.build_directory) for ext in extension._extensions.values()]


def is_stale(lock_mtime: float, now: float, max_age_s: float = BUILD_TIMEOUT_S) -> bool:
    """A build lock older than any build may take was left by a build that was killed."""
    return now - lock_mtime > max_age_s


def clear_stale_locks(build_dirs: list[Path], now: float | None = None, max_age_s: float = BUILD_TIMEOUT_S) -> list[Path]:
    """Remove stale `lock` files from these build folders; returns the ones removed."""
    now = time.time() if now is None else now
    removed = []
    for folder in build_dirs:
        lock = Path(folder) / LOCK_NAME
        try:
            if is_stale(lock.stat().st_mtime, now, max_age_s):
                lock.unlink()
                removed.append(lock)
                log.warning("removed a stale kernel build lock left by a killed build: %s", lock)
        except FileNotFoundError:
            continue
    return removed


_BUILD = """
import sys
from stepvideo.memory.quantize import _probe
import torch
problem = _probe(sys.argv[1], torch.device(sys.argv[2]))
print(problem or "ok")
"""


def build_kernels(qtype: str, device_type: str, *, timeout_s: float = BUILD_TIMEOUT_S,
                  on_progress: Progress | None = None, build_dirs: list[Path] | None = None) -> str | None:
    """Build (or find built) quanto's kernels for `qtype` on `device_type` in a child process.
    Returns None when they built, else one line saying why not (a timeout included)."""
    dirs = quanto_build_dirs() if build_dirs is None else build_dirs
    clear_stale_locks(dirs)
    emit = on_progress or (lambda _e: None)
    began = time.monotonic()
    emit(event("log", level="info", message=f"checking quanto's {qtype} kernels (built once per install)"))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                                       os.environ.get("PYTHONPATH", "")]))
    child = subprocess.Popen([sys.executable, "-c", _BUILD, qtype, device_type], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    try:
        while True:
            try:
                out, err = child.communicate(timeout=PROGRESS_EVERY_S)
                break
            except subprocess.TimeoutExpired:
                elapsed = time.monotonic() - began
                if elapsed > timeout_s:
                    child.kill()
                    child.communicate()
                    clear_stale_locks(dirs, max_age_s=-1)  # ours, and we just killed it
                    return f"building quanto's {qtype} kernels took longer than {timeout_s:.0f} s"
                emit(event("log", level="info",
                           message=f"building quanto's {qtype} kernels ({elapsed:.0f} s so far; once per install)"))
    finally:
        if child.poll() is None:
            child.kill()
    emit(event("log", level="info", message=f"quanto's {qtype} kernels ready after {time.monotonic() - began:.0f} s"))
    last = (out.strip().splitlines() or [""])[-1]
    if child.returncode != 0 or not last:
        tail = (err.strip().splitlines() or ["no output"])[-1]
        return f"the {qtype} kernel build failed ({tail})"
    return None if last == "ok" else last
