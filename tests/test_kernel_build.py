"""quanto's kernel builds: a stale lock left by a killed build is removed, a build runs under a time limit."""

from __future__ import annotations

import os
import time

from stepvideo.memory import kernel_build
from stepvideo.memory.kernel_build import build_kernels, clear_stale_locks, is_stale


def test_staleness_is_age_beyond_any_build():
    assert is_stale(lock_mtime=0.0, now=kernel_build.BUILD_TIMEOUT_S + 1)
    assert not is_stale(lock_mtime=0.0, now=60.0)


def test_a_planted_stale_lock_is_removed_and_a_fresh_one_is_kept(tmp_path):
    old, fresh = tmp_path / "cpp" / "build", tmp_path / "cuda" / "build"
    for folder in (old, fresh):
        folder.mkdir(parents=True)
        (folder / "lock").touch()
    hours_ago = time.time() - 3 * 3600
    os.utime(old / "lock", (hours_ago, hours_ago))  # a build killed three hours ago
    removed = clear_stale_locks([old, fresh, tmp_path / "never-built"])
    assert removed == [old / "lock"] and not (old / "lock").exists() and (fresh / "lock").exists()


def test_quanto_build_dirs_are_where_torch_puts_its_lock():
    dirs = kernel_build.quanto_build_dirs()
    assert dirs and all(d.name == "build" and "quanto" in str(d) for d in dirs)


def test_a_build_past_its_time_limit_is_killed_and_reported_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(kernel_build, "PROGRESS_EVERY_S", 0.05)
    events = []
    problem = build_kernels("qint4", "cpu", timeout_s=0.0, on_progress=events.append, build_dirs=[tmp_path])
    assert problem == "building quanto's qint4 kernels took longer than 0 s"
    assert events and all(e["type"] == "log" for e in events)
