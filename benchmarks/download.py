"""Loopback download throughput: our resumable, sha256-checked download (stepvideo.hub.downloader) vs
plain HTTP GETs of the same bytes from the same local hub server, in the same run. Prints JSON.

    python benchmarks/download.py [--size-mib 512] [--files 4] [--rounds 5] [--workers 4]

Two like-for-like comparisons (throughput ratio = plain seconds / our seconds; target >= 0.8):
  parallel  ours with --workers N  vs  N threads, each a plain GET of one file at a time (the same
            number of concurrent connections: min(N, files))
  single    ours with --workers 1  vs  one plain GET after another on one connection at a time
Everything writes to the same filesystem; each round runs the four in turn so page cache and CPU
noise hit all alike; the median round of each is reported. Every shard has its own bytes (shards
with equal bytes share one blob, so ours would fetch them once while the baseline fetches each), and
the server's byte counter checks that ours fetched all of them. The server runs in this process
(its own threads, sendfile), as in the tests.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

from tests.fixtures.local_hub import LocalHub  # noqa: E402

REPO = "bench/model"
CHUNK = 1 << 20


def plain_get(url: str, target: Path) -> int:
    """One GET with http.client, the body read into one reused 1 MiB buffer and written straight to
    the file (no per-chunk allocation, no hashing): the fastest plain copy Python does, the baseline."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    conn.request("GET", parts.path)
    resp = conn.getresponse()
    assert resp.status == 200, resp.status
    buf = memoryview(bytearray(CHUNK))
    n = 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        while got := resp.readinto(buf):
            view = buf[:got]
            while view:
                view = view[os.write(fd, view):]
            n += got
    finally:
        os.close(fd)
    conn.close()
    return n


def plain_get_all(urls_targets: list[tuple[str, Path]], connections: int) -> int:
    """The baseline: `connections` threads, each fetching one whole file per plain GET."""
    if connections <= 1:
        return sum(plain_get(url, target) for url, target in urls_targets)
    with ThreadPoolExecutor(max_workers=connections) as pool:
        return sum(pool.map(lambda ut: plain_get(*ut), urls_targets))


def make_files(folder: Path, size: int, count: int) -> dict[str, Path]:
    files = {}
    per_file = size // count
    for i in range(count):
        block = os.urandom(CHUNK)  # per file: identical files would share one blob and be fetched once
        path = folder / f"model-{i + 1:05d}-of-{count:05d}.safetensors"
        with open(path, "wb") as f:
            left = per_file
            while left > 0:
                f.write(block[: min(CHUNK, left)])
                left -= CHUNK
        files[path.name] = path
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=512, help="total bytes served (MiB)")
    parser.add_argument("--files", type=int, default=4, help="split into this many shards")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=4, help="files in parallel in our download")
    parser.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None,
                        help="where files are served from and written to (default: /dev/shm, so disk "
                             "write-back stalls do not drown the comparison; give a disk path to include it)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="stepvideo-bench-", dir=args.dir))
    try:
        (work / "src").mkdir()
        files = make_files(work / "src", args.size_mib * CHUNK, args.files)
        with LocalHub() as hub:
            os.environ["HF_ENDPOINT"] = hub.url
            from stepvideo import hub as model_hub

            repo = hub.create_repo(REPO)
            commit = repo.commit({"config.json": b"{}", **files})
            total = sum(p.stat().st_size for p in files.values())
            connections = min(args.workers, args.files)
            seconds: dict[str, list[float]] = {k: [] for k in ("plain_parallel", "ours_parallel",
                                                               "plain_single", "ours_single")}

            def run_plain(name: str, conns: int, r: int) -> None:
                out = work / f"{name}-{r}"
                out.mkdir()
                jobs = [(f"{hub.url}/{REPO}/resolve/{commit}/{n}", out / n) for n in files]
                t0 = time.perf_counter()
                got = plain_get_all(jobs, conns)
                seconds[name].append(time.perf_counter() - t0)
                assert got == total
                shutil.rmtree(out)

            def run_ours(name: str, workers: int, r: int) -> None:
                cache = work / f"{name}-{r}"
                hub.reset_counters()
                t0 = time.perf_counter()
                snap = model_hub.download(REPO, cache_dir=cache, workers=workers)
                seconds[name].append(time.perf_counter() - t0)
                assert sum((snap / n).stat().st_size for n in files) == total
                assert hub.bytes_served(REPO) >= total  # every byte went over the wire (no shared blobs)
                shutil.rmtree(cache)

            started = time.perf_counter()
            for r in range(args.rounds):
                run_plain("plain_parallel", connections, r)
                run_ours("ours_parallel", args.workers, r)
                run_plain("plain_single", 1, r)
                run_ours("ours_single", 1, r)
            wall = time.perf_counter() - started
    finally:
        shutil.rmtree(work, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in seconds.items()}
    mib = total / CHUNK
    ratio_parallel = med["plain_parallel"] / med["ours_parallel"]
    ratio_single = med["plain_single"] / med["ours_single"]
    result = {
        "benchmark": "download_loopback",
        "bytes": total,
        "files": args.files,
        "rounds": args.rounds,
        "workers": args.workers,
        "concurrent_connections": connections,
        "seconds": {k: [round(x, 3) for x in v] for k, v in seconds.items()},
        "mib_s": {k: round(mib / v, 1) for k, v in med.items()},
        "ratio_parallel": round(ratio_parallel, 3),
        "ratio_parallel_compares": f"ours --workers {args.workers} vs {connections} threads of plain GETs",
        "ratio_single": round(ratio_single, 3),
        "ratio_single_compares": "ours --workers 1 vs one plain GET at a time",
        "target_ratio": 0.8,
        "meets_target": min(ratio_parallel, ratio_single) >= 0.8,
        "ours_includes": "revision + tree requests, sha256 of every byte, fsync-free append, rename, symlink",
        "plain_includes": "http.client GET, readinto a reused 1 MiB buffer, os.write; no hashing",
        "bench_wall_seconds": round(wall, 1),
        "dir": str(args.dir or tempfile.gettempdir()),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg()[0],
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
