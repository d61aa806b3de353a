"""Resume across failures: a dropped connection and a SIGKILLed process both continue from the bytes
on disk; the server's byte counters prove nothing is fetched twice. Bad bytes never reach blobs/."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stepvideo import hub
from stepvideo.engine import layout
from stepvideo.hub.remote import HubUnreachable
from stepvideo.hub.transfer import HashMismatch
from tests.fixtures import local_hub as hub_fixtures

stepvideo_hub = hub_fixtures.stepvideo_hub  # a pytest fixture, bound by name so pytest finds it

BASE = hub.BASE_REPO
VAE = layout.VAE_WEIGHTS
ROOT = Path(__file__).resolve().parent.parent


def vae_file(tmp_path):
    plan = hub.plan_download(BASE, "v1.0", cache_dir=tmp_path)
    return next(f for f in plan.files if f.path == VAE)


def partial_path(tmp_path, etag: str) -> Path:
    return tmp_path / "models--stepfun-ai--stepvideo-t2v" / "blobs" / f"{etag}.incomplete"


def test_dropped_connection_resumes_within_the_run(stepvideo_hub, tmp_path):
    h = stepvideo_hub
    h.hub.drop_after(BASE, VAE, 7_000_000, times=2)
    snap = hub.download(BASE, "v1.0", cache_dir=tmp_path)
    size = (snap / VAE).stat().st_size
    assert h.hub.bytes_served(BASE, VAE) == size  # every byte exactly once
    ranges = [rng for method, path, rng in h.hub.requests if method == "GET" and path.endswith(VAE)]
    assert ranges == [None, "bytes=7000000-", "bytes=14000000-"]
    assert hub.verify(BASE, "v1.0", cache_dir=tmp_path).ok


def test_dropped_connection_resumes_in_the_next_run(stepvideo_hub, tmp_path):
    h = stepvideo_hub
    f = vae_file(tmp_path)
    h.hub.drop_after(BASE, VAE, 5_000_000)
    with pytest.raises(HubUnreachable, match="resume"):
        hub.download(BASE, "v1.0", cache_dir=tmp_path, retries=0, workers=1)
    assert partial_path(tmp_path, f.etag).stat().st_size == 5_000_000
    plan = hub.plan_download(BASE, "v1.0", cache_dir=tmp_path)
    assert {p.path: (p.state, p.on_disk) for p in plan.files}[VAE] == ("partial", 5_000_000)
    before = h.hub.bytes_served(BASE)

    h.hub.reset_counters()
    hub.download(BASE, "v1.0", cache_dir=tmp_path)
    assert h.hub.bytes_served(BASE, VAE) == f.size - 5_000_000
    assert h.hub.bytes_served(BASE) == plan.bytes_to_fetch  # finished files are not fetched again
    assert before + h.hub.bytes_served(BASE) == plan.total_bytes
    assert not partial_path(tmp_path, f.etag).exists()


def test_killed_process_resumes_from_the_bytes_on_disk(stepvideo_hub, tmp_path):
    h = stepvideo_hub
    f = vae_file(tmp_path)
    cut = 6_000_000
    release = h.hub.stall_after(BASE, VAE, cut)
    env = {**os.environ, "HF_ENDPOINT": h.url, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "stepvideo", "models", "download", "base", "--revision", "v1.0",
           "--cache-dir", str(tmp_path), "--workers", "1"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    partial = partial_path(tmp_path, f.etag)
    deadline = time.monotonic() + 120
    try:
        while not (partial.exists() and partial.stat().st_size == cut):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the download never reached the stall point"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        release.set()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    first = {path: n for (_r, path), n in h.hub.served.items()}
    assert first[VAE] == cut
    # Every other file (workers=1, the VAE comes last) was finished before the kill.
    plan = hub.plan_download(BASE, "v1.0", cache_dir=tmp_path)
    assert {p.path for p in plan.files if p.state != "cached"} == {VAE}

    h.hub.reset_counters()
    snap = hub.download(BASE, "v1.0", cache_dir=tmp_path)
    second = {path: n for (_r, path), n in h.hub.served.items() if n}
    assert second == {VAE: f.size - cut}
    assert (snap / VAE).stat().st_size == f.size and hub.verify(BASE, "v1.0", cache_dir=tmp_path).ok


def test_bytes_that_do_not_match_the_published_sha256_are_never_used(stepvideo_hub, tmp_path):
    h = stepvideo_hub
    f = vae_file(tmp_path)
    partial = partial_path(tmp_path, f.etag)
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"\0" * 4_000_000)  # a "partial" whose bytes are not the file's
    with pytest.raises(HashMismatch, match="vae/vae_v2.safetensors.*sha256"):
        hub.download(BASE, "v1.0", cache_dir=tmp_path, workers=1)
    snap = tmp_path / "models--stepfun-ai--stepvideo-t2v" / "snapshots" / h.v1
    assert not partial.exists() and not (snap / VAE).exists()
    assert not (tmp_path / "models--stepfun-ai--stepvideo-t2v" / "blobs" / f.etag).exists()
    h.hub.reset_counters()
    hub.download(BASE, "v1.0", cache_dir=tmp_path)
    assert h.hub.bytes_served(BASE, VAE) == f.size
    assert hub.verify(BASE, "v1.0", cache_dir=tmp_path).ok
