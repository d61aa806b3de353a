"""GPU acceptance run: proves the CUDA path in one prepared run of a few minutes, writes JSON.

    python benchmarks/gpu_acceptance.py --out DIR            # on the GPU machine
    python benchmarks/gpu_acceptance.py --cpu-smoke --out DIR   # every stage on CPU, tiny shapes (CI)

Stages, each in its own child process with its own timeout (a hung kernel or an out-of-memory kill
costs that stage only), under one budget for the whole run (`--budget`, 350 s by default):

1. environment   torch / CUDA / cuDNN versions, compute capability, the host-cache release function
                 this torch has, the SDPA backend order and which backends accept the DiT's shapes;
2. dit_block     TFLOP/s of one full-width block: batch 2, batch 1 with FFN chunking, and both with
                 cuDNN attention given priority;
3. streamer      a 6-block real-width DiT with random weights, qint8, through the production
                 BlockStreamer and forward under every profile (+ a bf16 resident baseline), at
                 75,888 and 6,324 tokens: memory peaks, NVML, VmHWM, the planner's prediction,
                 seconds per block per CFG row and the ratio to bf16;
4. vae_decode    one chunk tiled and untiled: peak against the tile estimate; Conv3d inputs > 2³¹;
5. gpu_tests     `pytest -p no:pytest-qt tests/test_gpu.py`.

Output in DIR: `gpu_acceptance.json` (rewritten before and after every stage, so a timeout or a kill
leaves every finished stage's figures) and `stages/<stage>.json` (each stage rewrites its own file
after every measurement, so a stage killed at its timeout still leaves what it measured).
Copy the summary to `benchmarks/results/<date>-gpu_acceptance-<gpu>.json` and commit it.

The budget and the stage timeouts are designed for an H100/H200 and have not been measured on one
yet. Exit status: 0 when every stage finished without an error, 1 otherwise, 2 for bad arguments.

What it needs on the GPU machine: torch with CUDA, and the packages listed in benchmarks/README.md
("GPU acceptance run"), installed offline from a folder of wheels. Everything else is optional and
imported where used: without NVML the NVML figures are null; tests whose packages are missing skip.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

from gpu_stages.schema import STAGES, missing_keys  # noqa: E402  (torch-free: the parent never imports torch)

log = logging.getLogger("gpu_acceptance")

# Seconds per stage on the GPU (designed for an H100/H200, not yet measured there) and in --cpu-smoke.
STAGE_TIMEOUTS = {"environment": 60, "dit_block": 75, "streamer": 180, "vae_decode": 90, "gpu_tests": 120}
SMOKE_TIMEOUTS = {"environment": 60, "dit_block": 60, "streamer": 90, "vae_decode": 60, "gpu_tests": 90}
RUN_BUDGET_S = 350  # the whole run stays under 6 minutes
MIN_STAGE_S = 5  # a stage with less time than this left in the budget is not started
SUMMARY = "gpu_acceptance.json"


class UsageError(Exception):
    pass


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="folder for the JSON (created if missing)")
    parser.add_argument("--cpu-smoke", action="store_true", help="every stage on CPU with tiny shapes")
    parser.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated subset of {','.join(STAGES)}")
    parser.add_argument("--timeout", action="append", default=[], metavar="STAGE=SECONDS",
                        help="override one stage's timeout (repeatable)")
    parser.add_argument("--budget", type=float, default=RUN_BUDGET_S, help="seconds for the whole run")
    parser.add_argument("--scratch", type=Path, default=Path(tempfile.gettempdir()),
                        help="where low-ram writes its block files (deleted afterwards)")
    parser.add_argument("--blocks", type=int, default=6, help="DiT blocks in the streamer stage")
    parser.add_argument("--balanced-resident", type=int, default=3,
                        help="resident blocks for balanced (about the share a 24 GB card keeps)")
    parser.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)  # internal: run one stage here
    parser.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = [s for s in stages if s not in STAGES]
    if unknown or not stages:
        raise UsageError(f"unknown stage {', '.join(unknown) or '(none given)'}; allowed: {', '.join(STAGES)}")
    args.stage_list = stages
    args.timeouts = dict(SMOKE_TIMEOUTS if args.cpu_smoke else STAGE_TIMEOUTS)
    for item in args.timeout:
        name, _, value = item.partition("=")
        try:
            seconds = float(value)
        except ValueError:
            seconds = -1.0
        if name not in STAGES or seconds <= 0:
            raise UsageError(f"--timeout {item!r} is not allowed; write STAGE=SECONDS with STAGE one of "
                             f"{', '.join(STAGES)} and SECONDS > 0")
        args.timeouts[name] = seconds
    for name in ("blocks", "balanced_resident"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.budget <= 0:
        raise UsageError(f"--budget must be more than 0 seconds, got {args.budget}")
    return args


# --- The parent: runs the stages, writes the summary ------------------------------------------------------


def orchestrate(args: argparse.Namespace) -> int:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    stage_dir = out / "stages"
    stage_dir.mkdir(exist_ok=True)
    started = time.time()
    summary = {
        "benchmark": "gpu_acceptance",
        "smoke": args.cpu_smoke,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "budget_s": args.budget,
        "seconds": None,
        "stages": {s: {"status": "pending"} for s in args.stage_list},
    }
    write_json(out / SUMMARY, summary)
    for stage in args.stage_list:
        left = args.budget - (time.time() - started)
        if left < MIN_STAGE_S:
            summary["stages"][stage] = {"status": "skipped", "reason": "the run's budget was spent"}
            write_json(out / SUMMARY, summary)
            continue
        timeout = min(args.timeouts[stage], left)
        summary["stages"][stage] = {"status": "running", "timeout_s": timeout}
        write_json(out / SUMMARY, summary)
        log.info("stage %s (timeout %.0f s)", stage, timeout)
        summary["stages"][stage] = run_child(args, stage, timeout, stage_dir / f"{stage}.json")
        summary["seconds"] = time.time() - started
        write_json(out / SUMMARY, summary)
        log.info("stage %s: %s in %.1f s", stage, summary["stages"][stage]["status"],
                 summary["stages"][stage]["seconds"])
    print(json.dumps(summary, indent=1, default=str))
    return 0 if all(s["status"] == "ok" for s in summary["stages"].values()) else 1


def run_child(args: argparse.Namespace, stage: str, timeout: float, result_file: Path) -> dict:
    result_file.unlink(missing_ok=True)
    command = [sys.executable, str(Path(__file__).resolve()), "--stage", stage, "--out", str(args.out),
               "--deadline", str(time.time() + timeout), "--scratch", str(args.scratch),
               "--blocks", str(args.blocks), "--balanced-resident", str(args.balanced_resident)]
    if args.cpu_smoke:
        command.append("--cpu-smoke")
    t0 = time.time()
    # Own session: on a timeout the whole group goes (the gpu_tests stage has a pytest child).
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True) as child:
        try:
            output, _ = child.communicate(timeout=timeout)
            status = "ok" if child.returncode == 0 else "error"
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            output, _ = child.communicate()
            status = "timeout"
    record = {"status": status, "seconds": time.time() - t0, "timeout_s": timeout, "returncode": child.returncode,
              "output_tail": output.decode(errors="replace")[-3000:]}
    result = read_json(result_file)
    record["result"] = result
    record["missing_keys"] = missing_keys(stage, result) if status == "ok" else None
    if status == "ok" and (record["missing_keys"] or result.get("error")):
        record["status"] = "error"
    return record


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


# --- The child: one stage ---------------------------------------------------------------------------------


def run_stage(args: argparse.Namespace) -> int:
    from gpu_stages.common import StageContext, StageError, first_line

    if args.cpu_smoke:
        import torch

        # Tiny shapes gain nothing from threads, and on a shared 2-core CI machine a second spinning
        # OpenMP thread made one smoke forward 100× slower (2.3 s instead of 0.01 s).
        torch.set_num_threads(1)
    ctx = StageContext(name=args.stage, out_dir=args.out, smoke=args.cpu_smoke, deadline=args.deadline,
                       scratch=args.scratch,
                       options={"blocks": args.blocks, "balanced_resident": args.balanced_resident})
    try:
        importlib.import_module(f"gpu_stages.{args.stage}").run(ctx)
        return 0
    except (StageError, ImportError) as exc:  # cannot run here: one line says why
        ctx.result["error"] = first_line(exc)
    except Exception as exc:  # a real failure: keep its traceback in the stage's output too
        traceback.print_exc()
        ctx.result["error"] = first_line(exc)
    ctx.save()
    return 1


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        args = parse_args(argv)
    except UsageError as exc:
        print(f"gpu_acceptance: {exc}", file=sys.stderr)
        return 2
    if args.stage is not None:
        return run_stage(args)
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
