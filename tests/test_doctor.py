"""`stepvideo doctor`: a real run on this machine (text and --json), and the judgement on made-up machines."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from stepvideo import paths
from stepvideo.cli import main
from stepvideo.doctor import report as doctor
from stepvideo.doctor.probes import (
    DiskFacts,
    FfmpegFacts,
    FontFacts,
    GpuInfo,
    Machine,
    MemoryFacts,
    ModelFacts,
    NvidiaFacts,
    QtFacts,
    TorchFacts,
    cgroup_limit_bytes,
    free_bytes_at,
    probe_machine,
)
from stepvideo.memory import planner
from stepvideo.presets import BASE_REPO, TURBO_REPO

GiB = 1 << 30
REPO = Path(__file__).resolve().parent.parent


def _has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


cpu_only = pytest.mark.skipif(_has_cuda(), reason="checks the report of a machine without a CUDA GPU")


# ---- a real run -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def machine() -> Machine:
    return probe_machine()  # the real probes, once for the module (the torch import dominates)


@pytest.fixture
def real_doctor(machine, monkeypatch):
    monkeypatch.setattr(doctor, "probe_machine", lambda: machine)
    return machine


@cpu_only
def test_text_report_on_this_cpu_machine(real_doctor, capsys):
    code = main(["doctor"])
    out = capsys.readouterr().out
    assert code == 0, out  # no GPU is not fatal: the app runs
    lines = out.splitlines()
    assert lines[0] == "StepVideo Desktop doctor"
    status = {line.split()[1]: line.split()[0] for line in lines if line.startswith("  ") and len(line.split()) > 2
              and line.split()[0] in ("OK", "WARN", "FAIL")}
    assert set(status) - {"kernels", "symlinks"} == {"python", "gpu", "cpu", "torch", "ram", "disk", "ffmpeg", "qt", "models", "fonts"}
    assert status["gpu"] == "WARN" and status["models"] == "WARN"  # no GPU here, nothing downloaded in the sandbox
    assert status["fonts"] in ("OK", "WARN")  # a Chinese font or not: never fatal
    assert status["torch"] == "OK" and status["ffmpeg"] == "OK" and status["python"] == "OK"
    assert "FAIL" not in status.values()
    rec = lines[lines.index("Recommendation") + 1]
    assert rec.strip().startswith("No NVIDIA GPU: this machine cannot generate videos.")
    assert "544x992x204" in rec and "GiB of free VRAM" in rec
    assert lines[-1] == "Result: the app runs, but cannot generate videos on this machine (see the recommendation)"


@cpu_only
def test_json_report_on_this_cpu_machine_matches_the_machine(real_doctor, capsys):
    import imageio_ffmpeg
    import torch

    from stepvideo.hub import cache_root

    code = main(["doctor", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["exit_code"] == 0
    assert report["can_run"] is True and report["can_generate"] is False
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["torch"]["details"]["version"] == torch.__version__
    assert checks["torch"]["details"]["cuda"] is None and "CPU build" in checks["torch"]["summary"]
    assert checks["ffmpeg"]["summary"].startswith(f"ffmpeg {imageio_ffmpeg.get_ffmpeg_version()} ")
    assert checks["ram"]["details"]["total_bytes"] == psutil.virtual_memory().total
    disks = {d["label"]: d for d in checks["disk"]["details"]["disks"]}
    assert disks["model cache"]["path"] == str(cache_root())  # the sandbox's HF cache (conftest)
    videos = Path(disks["videos"]["path"])
    assert videos == paths.videos_dir() and disks["videos"]["free_bytes"] > 0  # free space moves; the place must not
    assert checks["models"]["details"]["models"] == []
    rec = report["recommendation"]
    leanest = rec["details"]["leanest"]
    # The leanest VRAM need is the planner's own number for the standard video.
    preds = planner.predict_all(544, 992, 204, leanest["quantization"], 2, 0, 0)
    assert leanest["vram_bytes"] == preds[leanest["profile"]].vram_bytes
    assert rec["profile"] is None and rec["request"] == "544x992x204"


def test_doctor_never_loads_qt_or_torch_into_its_own_process():
    """torch and Qt are probed in child processes: the engine process stays Qt-free, and a broken
    CUDA library cannot crash the doctor."""
    code = ("import json, sys\nfrom stepvideo.doctor import report as doctor\nreport = doctor.run_doctor()\n"
            "assert not [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'torch', 'stepvideo_desktop')], 'imported'\n"
            "print(json.dumps(report.to_dict()))\nsys.exit(report.exit_code)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert done.stdout, done.stderr
    report = json.loads(done.stdout)
    assert done.returncode == report["exit_code"] == (0 if report["can_run"] else 1), done.stderr
    assert report["verdict"] and report["recommendation"]["summary"]


# ---- judgement on made-up machines ----------------------------------------------------------------


def fake_machine(**changes) -> Machine:
    """A healthy 24 GB workstation; tests change one thing at a time."""
    base = Machine(
        python="3.11.7", system="Linux x86_64", glibc="2.36",
        nvidia=NvidiaFacts("570.86.15", "12.8", (GpuInfo(0, "NVIDIA GeForce RTX 4090", 24 * GiB, 23 * GiB, "8.9"),)),
        torch=TorchFacts("2.13.0+cu128", "12.8", True, 1, ("sm_80", "sm_89", "sm_90")),
        qt=QtFacts("6.11.3"),
        ffmpeg=FfmpegFacts("/x/ffmpeg", "n9.0.2"),
        memory=MemoryFacts(64 * GiB, 60 * GiB, None, 60 * GiB),
        disks=(DiskFacts("model cache", "/m", 500 * 10**9, 1), DiskFacts("quantized weights", "/d", 500 * 10**9, 1),
               DiskFacts("videos", "/v", 500 * 10**9, 1)),
        models=(ModelFacts(BASE_REPO, "a" * 40, ("main",), "verified", 101 * 10**9),),
    )
    return dataclasses.replace(base, **changes)


def by_name(report: doctor.Report) -> dict[str, doctor.Check]:
    return {c.name: c for c in report.checks}


def test_healthy_gpu_machine_gets_the_planners_profile():
    m = fake_machine()
    report = doctor.diagnose(m)
    assert all(c.status == "ok" for c in report.checks), [c for c in report.checks if c.status != "ok"]
    assert report.exit_code == 0 and report.verdict() == "ready"
    plan = planner.plan(544, 992, 204, cfg=9.0, gpu_bytes=23 * GiB, ram_bytes=60 * GiB)
    assert plan.fits
    rec = report.recommendation
    assert rec.can_generate and (rec.profile, rec.quantization) == (plan.profile, plan.quantization)
    assert f"Use memory profile '{plan.profile}'" in rec.summary and "23.0 GiB free VRAM" in rec.summary


@pytest.mark.parametrize("field, facts, fragment", [
    ("torch", TorchFacts(None, error="ModuleNotFoundError: No module named 'torch'"), "torch does not import"),
    ("qt", QtFacts(None, error="ImportError: libEGL.so.1: cannot open shared object file"), "desktop app cannot start"),
    ("ffmpeg", FfmpegFacts(None, error="RuntimeError: No ffmpeg exe could be found"), "no video can be written"),
])
def test_what_stops_the_app_fails_with_a_reason(field, facts, fragment, capsys, monkeypatch):
    m = fake_machine(**{field: facts})
    report = doctor.diagnose(m)
    failed = [c for c in report.checks if c.status == "fail"]
    assert [c.name for c in failed] == [field] and fragment in failed[0].summary and failed[0].fix
    assert report.exit_code == 1 and report.verdict().startswith("the app cannot run: ")
    monkeypatch.setattr(doctor, "probe_machine", lambda: m)
    assert main(["doctor"]) == 1
    assert f"Result: the app cannot run: {failed[0].summary}" in capsys.readouterr().out


def test_missing_qtmultimedia_is_a_warning_naming_libpulse():
    check = by_name(doctor.diagnose(fake_machine(qt=QtFacts("6.11.3", multimedia_error="ImportError: libpulse.so.0"))))["qt"]
    assert check.status == "warn" and check.fix == "sudo apt-get install libpulse0"


def test_old_glibc_is_named_when_qt_fails():
    m = fake_machine(glibc="2.31", qt=QtFacts(None, error="ImportError: GLIBC_2.34 not found"))
    assert "glibc ≥ 2.34" in by_name(doctor.diagnose(m))["qt"].fix


def test_cpu_torch_on_a_gpu_machine_says_how_to_reinstall():
    m = fake_machine(torch=TorchFacts("2.13.0+cpu", None, False))
    report = doctor.diagnose(m)
    check = by_name(report)["torch"]
    assert check.status == "warn" and "--torch cu128" in check.fix
    assert report.exit_code == 0 and not report.recommendation.can_generate
    assert "CPU build" in report.recommendation.summary


def test_torch_newer_than_the_driver_is_flagged():
    m = fake_machine(nvidia=NvidiaFacts("550.54.14", "12.4", fake_machine().nvidia.gpus))
    check = by_name(doctor.diagnose(m))["torch"]
    assert check.status == "warn" and "CUDA ≤ 12.4" in check.summary and "--torch cu124" in check.fix


def test_small_gpu_gets_what_would_fit_or_a_refusal():
    small = fake_machine(nvidia=NvidiaFacts("570.86.15", "12.8", (GpuInfo(0, "tiny", 4 * GiB, 4 * GiB),)))
    rec = doctor.diagnose(small).recommendation
    assert not rec.can_generate and rec.summary.startswith("Nothing fits: ") and "does not fit" in rec.summary
    mid = fake_machine(nvidia=NvidiaFacts("570.86.15", "12.8", (GpuInfo(0, "mid", 24 * GiB, 16 * GiB),)))
    plan = planner.plan(544, 992, 204, cfg=9.0, gpu_bytes=16 * GiB, ram_bytes=60 * GiB)
    rec = doctor.diagnose(mid).recommendation
    if plan.fits:
        assert rec.can_generate and rec.profile == plan.profile
    else:
        assert rec.can_generate == bool(plan.suggestions)


def test_disks_on_one_file_system_add_their_needs():
    models_none = ()
    shared = (DiskFacts("model cache", "/m", 120 * 10**9, 7), DiskFacts("quantized weights", "/d", 120 * 10**9, 7),
              DiskFacts("videos", "/v", 120 * 10**9, 7))
    check = by_name(doctor.diagnose(fake_machine(disks=shared, models=models_none)))["disk"]
    assert check.status == "warn"  # 102 GB of model + the quantized cache do not fit in 120 GB together
    assert "model cache, quantized weights, videos: 120.0 GB free" in check.summary
    apart = (DiskFacts("model cache", "/m", 120 * 10**9, 1), DiskFacts("quantized weights", "/d", 120 * 10**9, 2),
             DiskFacts("videos", "/v", 120 * 10**9, 3))
    assert by_name(doctor.diagnose(fake_machine(disks=apart, models=models_none)))["disk"].status == "ok"


@pytest.mark.parametrize("models, status, fragment", [
    ((), "warn", "no model installed"),
    (None, "warn", "could not list"),
    ((ModelFacts(BASE_REPO, "b" * 40, (), "partial"),), "warn", "partial"),
    ((ModelFacts(TURBO_REPO, "c" * 40, ("main",), "complete"),), "warn", "base model"),
    ((ModelFacts(BASE_REPO, "d" * 40, ("main",), "complete"),), "ok", "not hash-verified"),
    ((ModelFacts(BASE_REPO, "e" * 40, ("main",), "verified"),), "ok", "stepvideo-t2v@main verified"),
])
def test_models_check(models, status, fragment):
    check = by_name(doctor.diagnose(fake_machine(models=models, models_error="boom" if models is None else None)))["models"]
    assert check.status == status and fragment in check.summary


def test_low_ram_warns():
    m = fake_machine(memory=MemoryFacts(64 * GiB, 60 * GiB, 6 * GiB, 5 * GiB))
    check = by_name(doctor.diagnose(m))["ram"]
    assert check.status == "warn" and "cgroup limit 6.0 GiB" in check.summary


# ---- small pure helpers ---------------------------------------------------------------------------


@pytest.mark.parametrize("driver, choice", [
    (None, "cpu"), ("580.65.06", "cu128"), ("570.26", "cu128"), ("570.25", "cu126"), ("560.35.03", "cu126"),
    ("555.42.02", "cu124"), ("550.54.14", "cu124"), ("535.183.01", "cu118"), ("520.61.05", "cu118"), ("470.256.02", None),
])
def test_torch_choice_for_driver(driver, choice):
    assert doctor.torch_choice_for_driver(driver) == choice


def test_newest_cuda_includes_12_1_outside_install():
    assert doctor.newest_cuda_for_driver("535.54.03") == "12.1"
    assert doctor.newest_cuda_for_driver("535.54.03", for_install=True) == "11.8"


def test_cgroup_limit_v2_v1_and_unlimited(tmp_path):
    (tmp_path / "memory.max").write_text("max\n")
    assert cgroup_limit_bytes(tmp_path) is None
    (tmp_path / "memory.max").write_text("8589934592\n")
    assert cgroup_limit_bytes(tmp_path) == 8 * GiB
    v1 = tmp_path / "v1"
    (v1 / "memory").mkdir(parents=True)
    (v1 / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    assert cgroup_limit_bytes(v1) is None
    (v1 / "memory" / "memory.limit_in_bytes").write_text("4294967296\n")
    assert cgroup_limit_bytes(v1) == 4 * GiB
    assert cgroup_limit_bytes(tmp_path / "absent") is None


def test_free_bytes_of_a_folder_not_made_yet(tmp_path):
    assert free_bytes_at(tmp_path / "not" / "yet") == free_bytes_at(tmp_path) > 0


@pytest.mark.parametrize(("python", "pyside", "status"), [
    ("3.11.7", "6.12.0", "fail"), ("3.10.13", "6.12.0", "fail"), ("3.12.1", "6.12.0", "ok"), ("3.11.7", "6.11.3", "ok"),
])
def test_the_pyside_release_that_leaks_none_fails_only_where_none_is_mortal(python, pyside, status):
    check = by_name(doctor.diagnose(fake_machine(python=python, qt=QtFacts(pyside))))["qt"]
    assert check.status == status
    if status == "fail":
        assert "aborts within minutes" in check.summary and "install.sh" in check.fix


def test_a_gpu_before_ampere_is_refused_in_one_line():
    t4 = fake_machine(nvidia=NvidiaFacts("570.86.15", "12.8", (GpuInfo(0, "Tesla T4", 16 * GiB, 15 * GiB, "7.5"),)))
    report = doctor.diagnose(t4)
    bf16 = by_name(report)["bf16"]
    assert bf16.status == "warn" and "Tesla T4 (compute capability 7.5)" in bf16.summary and "\n" not in bf16.summary
    rec = report.recommendation
    assert not rec.can_generate and "flash or memory-efficient attention" in rec.summary and "\n" not in rec.summary
    ampere = fake_machine(nvidia=NvidiaFacts("570.86.15", "12.8", (GpuInfo(0, "A10", 24 * GiB, 23 * GiB, "8.6"),)))
    assert by_name(doctor.diagnose(ampere))["bf16"].status == "ok" and doctor.diagnose(ampere).recommendation.can_generate


@pytest.mark.parametrize("flags, override, fragment", [
    ((), None, "CPU runs compute in float32: the CPU has no native bf16"),
    (("avx512f", "avx512_bf16"), None, "CPU runs compute in bfloat16: the CPU runs bf16 natively (avx512_bf16)"),
    (("amx_bf16",), "fp32", "CPU runs compute in float32: forced by STEPVIDEO_CPU_DTYPE=fp32"),
])
def test_cpu_check_says_the_engines_compute_dtype(flags, override, fragment):
    check = by_name(doctor.diagnose(fake_machine(cpu_flags=flags, cpu_dtype_override=override)))["cpu"]
    assert check.status == "ok" and check.summary.startswith(fragment)


def test_a_bad_cpu_dtype_override_is_a_warning_naming_what_is_allowed():
    check = by_name(doctor.diagnose(fake_machine(cpu_dtype_override="fp16")))["cpu"]
    assert check.status == "warn" and "allowed: bf16, fp32" in check.summary


# ---- fonts for Chinese text -------------------------------------------------------------------------


def test_no_cjk_font_is_a_warning_that_says_how_to_get_one():
    check = by_name(doctor.diagnose(fake_machine(fonts=FontFacts(()))))["fonts"]
    assert check.status == "warn" and "boxes" in check.summary and "fonts-noto-cjk" in check.fix
    check = by_name(doctor.diagnose(fake_machine(fonts=FontFacts(("Noto Sans CJK SC", "WenQuanYi Zen Hei")))))["fonts"]
    assert check.status == "ok" and check.summary == "Chinese text: Noto Sans CJK SC and 1 more"
    check = by_name(doctor.diagnose(fake_machine(fonts=FontFacts(error="fc-list (fontconfig) is not installed"))))["fonts"]
    assert check.status == "warn" and "fc-list" in check.summary


def test_fonts_are_found_with_fc_list_without_qt(tmp_path, monkeypatch):
    from stepvideo.doctor import probes

    fc = tmp_path / "fc-list"
    fc.write_text('#!/bin/sh\n[ "$1" = ":lang=zh" ] && printf "Noto Sans CJK SC,Noto Sans CJK SC Regular\\nAR PL UMing\\n"\n')
    fc.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    assert probes.probe_fonts() == FontFacts(("AR PL UMing", "Noto Sans CJK SC"))
    fc.write_text("#!/bin/sh\nexit 0\n")
    assert probes.probe_fonts() == FontFacts(())
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    assert probes.probe_fonts().error == "fc-list (fontconfig) is not installed"
