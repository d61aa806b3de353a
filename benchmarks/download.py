"""Loopback download throughput: our resumable, sha256-checked download (stepvideo.hub.download) vs a
plain HTTP GET of the same bytes from the same local hub server, in the same run. Prints JSON.

    python benchmarks/download.py [--size-mib 512] [--rounds 3] [--workers 4]

Target: ratio = ours / plain >= 0.8. Both write to the same filesystem; rounds alternate the two so
page cache and CPU noise hit both alike; the median round of each is reported.
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
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

from tests.fixtures.local_hub import LocalHub  # noqa: E402

REPO = "bench/model"
CHUNK = 1 << 20


def plain_get(url: str, target: Path) -> int:
    """One GET with http.client, body copied to a file in 1 MiB reads: the baseline."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    conn.request("GET", parts.path)
    resp = conn.getresponse()
    assert resp.status == 200, resp.status
    n = 0
    with open(target, "wb") as f:
        while chunk := resp.read(CHUNK):
            f.write(chunk)
            n += len(chunk)
    conn.close()
    return n


def make_files(folder: Path, size: int, count: int) -> dict[str, Path]:
    files = {}
    block = os.urandom(CHUNK)
    per_file = size // count
    for i in range(count):
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
    parser.add_argument("--files", type=int, default=2, help="split into this many shards")
    parser.add_argument("--rounds", type=int, default=3)
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
            plain_s, ours_s = [], []
            for r in range(args.rounds):
                out = work / f"plain-{r}"
                out.mkdir()
                t0 = time.perf_counter()
                got = sum(plain_get(f"{hub.url}/{REPO}/resolve/{commit}/{name}", out / name) for name in files)
                plain_s.append(time.perf_counter() - t0)
                assert got == total
                shutil.rmtree(out)

                cache = work / f"cache-{r}"
                t0 = time.perf_counter()
                snap = model_hub.download(REPO, cache_dir=cache, workers=args.workers)
                ours_s.append(time.perf_counter() - t0)
                assert sum((snap / n).stat().st_size for n in files) == total
                shutil.rmtree(cache)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    plain, ours = statistics.median(plain_s), statistics.median(ours_s)
    mib = total / CHUNK
    result = {
        "benchmark": "download_loopback",
        "bytes": total,
        "files": args.files,
        "rounds": args.rounds,
        "workers": args.workers,
        "plain_get_seconds": [round(s, 3) for s in plain_s],
        "ours_seconds": [round(s, 3) for s in ours_s],
        "plain_get_mib_s": round(mib / plain, 1),
        "ours_mib_s": round(mib / ours, 1),
        "ratio": round(plain / ours, 3),
        "target_ratio": 0.8,
        "meets_target": plain / ours >= 0.8,
        "ours_includes": "revision + tree requests, sha256 of every byte, fsync-free append, rename, symlink",
        "dir": str(args.dir or tempfile.gettempdir()),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg()[0],
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
