"""Queue and checkpoint speed; prints one JSON object.

    python benchmarks/job_queue.py  (not queue.py: that name would shadow the standard library for every script here) [--dir DIR] [--jobs 1000]

Targets: listing 1,000 jobs < 100 ms, adding a job < 20 ms (each add is an fsynced transaction).
Checkpoint: write/read time and size at the real latent size of a 544x992, 204-frame video
(1×36×64×34×62 fp32). The filesystem type is reported: on tmpfs fsync costs nothing, so run it on the
disk that holds the app's data folder for figures that mean something.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE.parent))

from stepvideo.api import GenerationRequest  # noqa: E402
from stepvideo.jobs.store import JobQueue  # noqa: E402
from stepvideo.presets import latent_shape  # noqa: E402


def filesystem_of(path: Path) -> str:
    best, kind = "", "unknown"
    with open("/proc/mounts", encoding="utf-8") as mounts:
        for line in mounts:
            _, mount_point, fs_type, *_ = line.split()
            if str(path.resolve()).startswith(mount_point) and len(mount_point) > len(best):
                best, kind = mount_point, fs_type
    return kind


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def bench_queue(root: Path, jobs: int) -> dict:
    with JobQueue(root / "queue.sqlite3") as queue:
        request = GenerationRequest(prompt="一只猫在沙发上睡觉，阳光洒在它身上。" * 3)
        queue.add_many([request.replace(seed=i) for i in range(jobs)])  # one transaction
        adds = []
        for i in range(50):
            began = time.perf_counter()
            queue.add(request.replace(seed=jobs + i))
            adds.append(time.perf_counter() - began)
        total = jobs + 50
        lists = []
        for _ in range(10):
            began = time.perf_counter()
            listed = queue.list()
            lists.append(time.perf_counter() - began)
        assert len(listed) == total
        claims = []
        for _ in range(20):
            began = time.perf_counter()
            job = queue.claim_next()
            queue.mark_progress(job.id, step=1, steps=50)
            claims.append(time.perf_counter() - began)
    return {
        "jobs_listed": total,
        "list_ms_median": ms(statistics.median(lists)), "list_ms_max": ms(max(lists)),
        "list_target_ms": 100, "list_ok": statistics.median(lists) < 0.1,
        "add_ms_median": ms(statistics.median(adds)), "add_ms_max": ms(max(adds)),
        "add_target_ms": 20, "add_ok": statistics.median(adds) < 0.02,
        "claim_plus_progress_ms_median": ms(statistics.median(claims)),
    }


def bench_checkpoint(root: Path) -> dict:
    import torch

    from stepvideo.jobs.checkpoints import CheckpointStore

    shape = (1, *latent_shape(544, 992, 204))
    latents = torch.randn(shape, dtype=torch.float32)
    rng = torch.Generator().manual_seed(0).get_state()
    store = CheckpointStore(root / "checkpoints", 1)
    writes, reads = [], []
    for step in range(5):
        began = time.perf_counter()
        store.save(step, latents, rng, {"fingerprint": {"seed": 0}})
        writes.append(time.perf_counter() - began)
        began = time.perf_counter()
        loaded = store.load()
        reads.append(time.perf_counter() - began)
        assert torch.equal(loaded.latents, latents)
    return {
        "latent_shape": list(shape), "dtype": "float32",
        "checkpoint_bytes": store.path.stat().st_size,
        "write_ms_median": ms(statistics.median(writes)), "write_ms_max": ms(max(writes)),
        "read_ms_median": ms(statistics.median(reads)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=None, help="where to put the test database (default: a temp folder)")
    parser.add_argument("--jobs", type=int, default=1000)
    args = parser.parse_args()
    base = Path(args.dir) if args.dir else None
    if base is not None:
        base.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=base, prefix="stepvideo-queue-bench-") as tmp:
        root = Path(tmp)
        result = {
            "benchmark": "queue",
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "host": platform.node(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "filesystem": filesystem_of(root),
            "queue": bench_queue(root, args.jobs),
            "checkpoint": bench_checkpoint(root),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
