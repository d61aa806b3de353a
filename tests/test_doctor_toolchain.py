"""The doctor's GPU-architecture, bf16, kernel-toolchain and symlink checks, judged on made-up machines,
plus the real probes (symlink test in a folder where os.symlink fails)."""

from __future__ import annotations

import dataclasses
import errno
import os

import pytest
from test_doctor import GiB, fake_machine

from stepvideo.doctor import report as doctor
from stepvideo.doctor.gpu_support import arch_covers
from stepvideo.doctor.probes import GpuInfo, NvidiaFacts, TorchFacts
from stepvideo.doctor.toolchain import ToolchainFacts, probe_toolchain, symlinks_supported

TOOLS = ToolchainFacts("/usr/local/cuda/bin/nvcc", "/venv/bin/ninja", "/models", True)


def checks(**changes) -> dict[str, doctor.Check]:
    return {c.name: c for c in doctor.diagnose(fake_machine(toolchain=TOOLS, **changes)).checks}


def with_gpu(name: str, cap: str, arch_list=("sm_80", "sm_86", "sm_89", "sm_90")) -> dict:
    return {"nvidia": NvidiaFacts("570.86.15", "12.8", (GpuInfo(0, name, 24 * GiB, 23 * GiB, cap),)),
            "torch": TorchFacts("2.13.0+cu128", "12.8", True, 1, arch_list)}


@pytest.mark.parametrize(("cap", "arch_list", "covered"), [
    ((8, 9), ("sm_80", "sm_89"), True),
    ((8, 6), ("sm_80", "sm_90"), True),  # a cubin for 8.0 runs on 8.6 (same major, newer minor)
    ((8, 0), ("sm_86", "sm_90"), False),  # …but not the other way round
    ((12, 0), ("sm_80", "sm_90"), False),  # Blackwell on a torch built before it
    ((12, 0), ("sm_80", "compute_90"), True),  # PTX is JIT-compiled for newer GPUs
    ((9, 0), ("sm_90a",), True),
    ((7, 5), ("sm_80", "sm_90", "compute_90"), False),
])
def test_arch_coverage(cap, arch_list, covered):
    assert arch_covers(cap, arch_list) is covered


def test_a_gpu_torch_has_no_kernels_for_is_named():
    found = checks(**with_gpu("NVIDIA RTX PRO 6000 Blackwell", "12.0"))
    assert found["gpu_arch"].status == "warn"
    assert "no kernels for the NVIDIA RTX PRO 6000 Blackwell (compute capability 12.0)" in found["gpu_arch"].summary
    assert "--torch auto" in found["gpu_arch"].fix
    assert checks()["gpu_arch"].status == "ok"


def test_bf16_needs_ampere():
    turing = checks(**with_gpu("NVIDIA GeForce RTX 2080 Ti", "7.5", ("sm_75", "sm_80")))
    assert turing["bf16"].status == "warn" and "RTX 2080 Ti (compute capability 7.5)" in turing["bf16"].summary
    assert checks()["bf16"].status == "ok"


def test_no_gpu_means_no_arch_or_bf16_line_and_tools_only_matter_with_one():
    no_gpu = {"nvidia": NvidiaFacts(None, None, error="no driver"), "torch": TorchFacts("2.13.0+cpu")}
    found = checks(**no_gpu)
    assert "gpu_arch" not in found and "bf16" not in found
    bare = dataclasses.replace(TOOLS, nvcc=None, ninja=None)
    report = {c.name: c for c in doctor.diagnose(fake_machine(toolchain=bare, **no_gpu)).checks}
    assert report["kernels"].status == "ok" and "only matters on an NVIDIA GPU" in report["kernels"].summary


def test_missing_nvcc_or_ninja_warns_with_the_fallback():
    found = {c.name: c for c in doctor.diagnose(fake_machine(toolchain=dataclasses.replace(TOOLS, ninja=None))).checks}
    assert found["kernels"].status == "warn"
    assert found["kernels"].summary.startswith("ninja not found: qfloat8 and qint4 fall back to qint8")
    assert found["kernels"].fix == "pip install ninja in the app's venv"
    assert checks()["kernels"].status == "ok"


def test_models_folder_without_symlinks_warns():
    no_links = dataclasses.replace(TOOLS, symlinks=False, symlink_error="Operation not permitted")
    found = {c.name: c for c in doctor.diagnose(fake_machine(toolchain=no_links)).checks}
    assert found["symlinks"].status == "warn" and "does not support symbolic links" in found["symlinks"].summary
    assert checks()["symlinks"].status == "ok"
    assert doctor.diagnose(fake_machine(toolchain=no_links)).exit_code == 0  # a warning, not a failure


def test_symlink_probe_on_a_folder_that_refuses_them(tmp_path, monkeypatch):
    assert symlinks_supported(tmp_path / "not" / "yet") == (True, None)  # the nearest existing parent is tried
    assert not list(tmp_path.iterdir())  # the probe link is removed again

    def refuse(*args, **kwargs):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "symlink", refuse)
    facts = probe_toolchain(tmp_path)
    assert facts.symlinks is False and facts.symlink_error == "Operation not permitted"
