"""Checkpoints: exact round trip, atomic replacement, unreadable files, orphan cleaning."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from stepvideo.jobs.checkpoints import CheckpointStore, clean_orphans

ROOT = Path(__file__).resolve().parent.parent


def test_round_trip_is_exact(tmp_path):
    store = CheckpointStore(tmp_path, 7)
    assert store.load() is None
    latents = torch.randn(1, 6, 64, 2, 2).to(torch.bfloat16)
    gen = torch.Generator().manual_seed(3)
    torch.randn(5, generator=gen)
    store.save(4, latents, gen.get_state(), {"fingerprint": {"seed": 3, "size": [32, 32, 17]}})
    got = store.load()
    assert got.step == 4 and got.latents.dtype == torch.bfloat16 and torch.equal(got.latents, latents)
    assert got.meta == {"fingerprint": {"seed": 3, "size": [32, 32, 17]}}
    resumed = torch.Generator().set_state(got.rng_state)
    assert torch.equal(torch.randn(5, generator=resumed), torch.randn(5, generator=gen))
    assert store.path == tmp_path / "job-7.safetensors"


def test_rng_dict_and_overwrite(tmp_path):
    store = CheckpointStore(tmp_path, "abc")
    states = {"cpu": torch.Generator().get_state(), "extra": torch.arange(4, dtype=torch.uint8)}
    store.save(1, torch.zeros(3), states)
    store.save(2, torch.ones(3), None)
    got = store.load()
    assert got.step == 2 and torch.equal(got.latents, torch.ones(3)) and got.rng_state is None
    store.save(3, torch.ones(3), states)
    assert set(store.load().rng_state) == {"cpu", "extra"}
    assert [p.name for p in tmp_path.iterdir()] == ["job-abc.safetensors"]  # no temporaries left


def test_unreadable_checkpoint_is_dropped_not_fatal(tmp_path):
    store = CheckpointStore(tmp_path, 1)
    store.save(2, torch.zeros(4))
    store.path.write_bytes(store.path.read_bytes()[:40])  # torn by something outside our control
    assert store.load() is None
    assert not store.exists()


def test_bad_job_id_is_refused(tmp_path):
    with pytest.raises(ValueError, match="letters, digits"):
        CheckpointStore(tmp_path, "../etc")


def test_clear_and_clean_orphans(tmp_path):
    for job in (1, 2, 3):
        CheckpointStore(tmp_path, job).save(1, torch.zeros(2))
    (tmp_path / ".job-2.safetensors.999999999.tmp").write_bytes(b"half")  # writer long dead
    (tmp_path / "notes.txt").write_text("not ours")
    CheckpointStore(tmp_path, 3).clear()
    assert clean_orphans(tmp_path, {2}) == 2  # job 1's file and the dead writer's temporary
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job-2.safetensors", "notes.txt"]
    assert clean_orphans(tmp_path / "missing", []) == 0


SAVER = textwrap.dedent("""
    import sys, torch
    from stepvideo.jobs.checkpoints import CheckpointStore
    store = CheckpointStore(sys.argv[1], 5)
    step = 0
    while True:
        step += 1
        store.save(step, torch.full((64, 64, 64), float(step)))
        print(step, flush=True)
""")


def test_kill_during_save_leaves_a_whole_checkpoint(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", SAVER, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    seen = [int(proc.stdout.readline()) for _ in range(3)]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    got = CheckpointStore(tmp_path, 5).load()
    assert got is not None and got.step >= seen[-1]
    assert torch.equal(got.latents, torch.full((64, 64, 64), float(got.step)))
    clean_orphans(tmp_path, {5})  # its temporary, if any, belongs to a dead pid
    assert [p.name for p in tmp_path.iterdir()] == ["job-5.safetensors"]
