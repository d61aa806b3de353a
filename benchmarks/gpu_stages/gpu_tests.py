"""Stage 5, the `gpu` tests: `pytest -p no:pytest-qt tests/test_gpu.py` in a child process, with its
outcome per test read from pytest's JUnit XML (stdlib only). pytest-qt is disabled because a bare GPU
machine has no PySide6; tests whose packages are missing skip and say which package."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET

from .common import ROOT, StageContext

TEST_FILE = "tests/test_gpu.py"
GRACE_S = 5.0  # leave this much of the stage's time to write the result after a hung test


def run(ctx: StageContext) -> None:
    junit = ctx.out_dir / "gpu_tests.junit.xml"
    command = [sys.executable, "-m", "pytest", "-p", "no:pytest-qt", "-p", "no:cacheprovider", "-q", "-rs",
               TEST_FILE, f"--junitxml={junit}"]
    ctx.result.update(command=" ".join(command[1:]), returncode=None, counts=None, tests=[], output_tail="")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=max(1.0, ctx.time_left() - GRACE_S))
        ctx.result.update(returncode=done.returncode, output_tail=(done.stdout + done.stderr)[-4000:])
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        ctx.result.update(returncode="timeout", output_tail=out[-4000:])
    if junit.is_file():
        ctx.result["tests"], ctx.result["counts"] = read_junit(junit)
    ctx.save()


def read_junit(path) -> tuple[list[dict], dict[str, int]]:
    tests, counts = [], {"passed": 0, "failed": 0, "skipped": 0}
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome, message = "passed", None
        for tag in ("failure", "error", "skipped"):
            found = case.find(tag)
            if found is not None:
                outcome = "skipped" if tag == "skipped" else "failed"
                message = (found.get("message") or "").splitlines()[0][:300] if found.get("message") else tag
                break
        counts[outcome] += 1
        tests.append({"name": case.get("name"), "outcome": outcome, "seconds": float(case.get("time") or 0),
                      "message": message})
    return tests, counts
