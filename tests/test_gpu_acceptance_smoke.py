"""benchmarks/gpu_acceptance.py cannot rot between GPU runs: its CPU smoke mode runs every stage with
tiny shapes and must write every key the GPU run writes; a stage past its timeout must still leave
the summary; bad arguments get one line and exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_acceptance.py"
sys.path.insert(0, str(ROOT / "benchmarks"))

from gpu_stages.schema import STAGES  # noqa: E402

PROFILES = {"bf16-resident", "resident", "balanced", "low-vram", "low-ram"}


def _run(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu-acceptance")
    scratch = tmp_path_factory.mktemp("gpu-acceptance-scratch")
    done = _run("--cpu-smoke", "--out", str(out), "--scratch", str(scratch))
    summary = json.loads((out / "gpu_acceptance.json").read_text())
    return done, summary, out, scratch


@pytest.mark.slow  # the smoke run: about 20 s of CPU time, shared by these four tests
def test_every_stage_runs_on_cpu_and_writes_every_key(smoke):
    done, summary, out, _ = smoke
    problems = {name: (s["status"], s.get("missing_keys"), s["output_tail"][-800:])
                for name, s in summary["stages"].items() if s["status"] != "ok"}
    assert not problems, problems
    assert done.returncode == 0, done.stderr[-2000:]
    assert list(summary["stages"]) == list(STAGES) and summary["smoke"] is True
    for name, stage in summary["stages"].items():
        assert stage["missing_keys"] == [], (name, stage["missing_keys"])
        assert stage["result"] == json.loads((out / "stages" / f"{name}.json").read_text())
    assert json.loads(done.stdout) == summary  # the same summary on stdout


@pytest.mark.slow
def test_streamer_covers_every_profile_at_both_sizes(smoke):
    runs = smoke[1]["stages"]["streamer"]["result"]["runs"]
    assert {(r["profile"], r["size"]) for r in runs} == {(p, s) for p in PROFILES for s in ("544x992x204", "544x992x17")}
    for r in runs:
        assert r["error"] is None, r
        assert r["seconds_per_step"] > 0 and r["ratio_to_bf16"] > 0
        assert r["predicted"]["planner_48_blocks"]["resident_blocks"] >= 1
    by = {(r["profile"], r["size"]): r for r in runs}
    assert by[("bf16-resident", "544x992x204")]["ratio_to_bf16"] == 1.0
    low_vram = by[("low-vram", "544x992x204")]
    assert low_vram["forwards_per_step"] == 2 and low_vram["block_loads"] > 0
    assert low_vram["peak_materialised_blocks"] <= 2  # one block + the one in flight
    assert by[("resident", "544x992x204")]["block_loads"] == 0


@pytest.mark.slow
def test_low_ram_files_are_deleted(smoke):
    scratch = smoke[3]
    assert list(scratch.iterdir()) == []


@pytest.mark.slow
def test_vae_and_block_cases_ran(smoke):
    stages = smoke[1]["stages"]
    vae = stages["vae_decode"]["result"]["cases"]
    assert [c["case"] for c in vae] == ["tiled", "untiled"]
    assert all(c["error"] is None and c["output_finite"] and c["conv3d_spot_checks"] > 0 for c in vae)
    blocks = stages["dit_block"]["result"]["cases"]
    assert len(blocks) == 4 and all(c["error"] is None and c["block_tflops"] > 0 for c in blocks)
    tests = stages["gpu_tests"]["result"]
    assert tests["returncode"] == 0 and tests["counts"]["failed"] == 0 and tests["counts"]["skipped"] > 0


def test_a_stage_past_its_timeout_leaves_the_summary(tmp_path):
    done = _run("--cpu-smoke", "--out", str(tmp_path), "--stages", "environment", "--timeout", "environment=0.05",
                timeout=60)
    assert done.returncode == 1
    stage = json.loads((tmp_path / "gpu_acceptance.json").read_text())["stages"]["environment"]
    assert stage["status"] == "timeout" and stage["timeout_s"] == 0.05


@pytest.mark.parametrize("args, message", [
    (["--stages", "environment,warp"], "unknown stage warp; allowed: environment, dit_block"),
    (["--timeout", "streamer=soon"], "--timeout 'streamer=soon' is not allowed"),
    (["--blocks", "0"], "--blocks must be at least 1"),
])
def test_bad_arguments_get_one_line_and_exit_2(tmp_path, args, message):
    done = _run("--out", str(tmp_path), *args, timeout=60)
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
