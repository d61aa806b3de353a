"""The doctor's judgement on what the GPU and the build tools allow (pure functions over Machine facts):

- gpu_arch: torch ships compiled kernels for a list of architectures (torch.cuda.get_arch_list());
  a GPU whose compute capability none of them covers fails with "no kernel image is available".
  A cubin for sm_XY runs on any X.Z with Z ≥ Y; PTX (compute_XY) is JIT-compiled for any newer GPU.
- bf16: the model runs in bfloat16; cards before Ampere (compute capability < 8.0) have no bf16 math.
- kernels: optimum-quanto JIT-builds its qfloat8/qint4 CUDA kernels with nvcc and ninja; without them
  the engine falls back to qint8 (memory/quantize.resolve_qtype), which needs neither.
- symlinks: the hub cache links each file of a version to a shared blob; a models folder without
  symlinks (exFAT, some NTFS mounts and network shares) still works, but versions no longer share files.
"""

from __future__ import annotations

from stepvideo.doctor.check import Check
from stepvideo.doctor.probes import GpuInfo, Machine
from stepvideo.memory.attention_support import bf16_attention_problem

BF16_MIN_CAPABILITY = (8, 0)  # Ampere


def capability(text: str | None) -> tuple[int, int] | None:
    """'8.9' → (8, 9); None when unknown or unreadable."""
    try:
        major, minor = (text or "").split(".")
        return int(major), int(minor)
    except ValueError:
        return None


def arch_covers(cap: tuple[int, int], arch_list: tuple[str, ...] | list[str]) -> bool:
    """Whether torch built with `arch_list` (['sm_80', 'sm_90', 'compute_90', ...]) runs on `cap`."""
    for arch in arch_list:
        kind, _, digits = arch.partition("_")
        digits = digits.rstrip("af")  # sm_90a, sm_100f: arch-specific variants of the same family
        if not digits.isdigit() or len(digits) < 2:
            continue
        built = (int(digits[:-1]), int(digits[-1]))
        if kind == "sm" and built[0] == cap[0] and built[1] <= cap[1]:
            return True
        if kind == "compute" and built <= cap:
            return True
    return False


def _gpus(m: Machine) -> tuple[GpuInfo, ...]:
    return m.nvidia.gpus or m.torch.devices


def check_gpu_arch(m: Machine) -> Check | None:
    """None when there is nothing to judge (no GPU, or a torch that cannot see CUDA)."""
    arch_list = tuple(m.torch.arch_list)
    gpus = [g for g in _gpus(m) if capability(g.compute_capability)]
    if not gpus or not arch_list:
        return None
    details = {"arch_list": list(arch_list), "gpus": {g.name: g.compute_capability for g in gpus}}
    unsupported = [g for g in gpus if not arch_covers(capability(g.compute_capability), arch_list)]
    if unsupported:
        names = ", ".join(f"{g.name} (compute capability {g.compute_capability})" for g in unsupported)
        return Check("gpu_arch", "warn", f"torch {m.torch.version} has no kernels for the {names}; it covers "
                     f"{', '.join(arch_list)}",
                     fix="reinstall torch with packaging/install.sh --torch auto (a build that includes this GPU)",
                     details=details)
    listed = ", ".join(f"{g.name} ({g.compute_capability})" for g in gpus)
    return Check("gpu_arch", "ok", f"torch's kernels cover the {listed}", details=details)


def check_bf16(m: Machine) -> Check | None:
    gpus = [g for g in _gpus(m) if capability(g.compute_capability)]
    if not gpus:
        return None
    old = [g for g in gpus if capability(g.compute_capability) < BF16_MIN_CAPABILITY]
    details = {"gpus": {g.name: g.compute_capability for g in gpus}}
    if old:
        # one line, the planner's own (memory/attention_support.py): why generating is refused up front
        summary = bf16_attention_problem(old[0].compute_capability, old[0].name)
        return Check("bf16", "warn", summary, fix="use an RTX 30xx / A-series or newer GPU for generating",
                     details=details)
    return Check("bf16", "ok", "bfloat16 supported", details=details)


def check_kernel_tools(m: Machine) -> Check | None:
    t = m.toolchain
    if t is None:
        return None
    details = {"nvcc": t.nvcc, "ninja": t.ninja}
    missing = [name for name, path in (("nvcc", t.nvcc), ("ninja", t.ninja)) if path is None]
    if not missing:
        return Check("kernels", "ok", f"nvcc ({t.nvcc}) and ninja ({t.ninja}) found: qfloat8 and qint4 kernels can be built",
                     details=details)
    summary = f"{' and '.join(missing)} not found: qfloat8 and qint4 fall back to qint8 (same quality, more VRAM)"
    fix = "; ".join(f for name, f in (("nvcc", "install the CUDA toolkit (nvcc) matching torch's CUDA"),
                                       ("ninja", "pip install ninja in the app's venv")) if name in missing)
    if not _gpus(m):
        return Check("kernels", "ok", summary + " (only matters on an NVIDIA GPU)", details=details)
    return Check("kernels", "warn", summary, fix=fix, details=details)


def check_symlinks(m: Machine) -> Check | None:
    t = m.toolchain
    if t is None or t.symlinks is None:
        return None
    details = {"models_dir": t.models_dir, "symlinks": t.symlinks, "error": t.symlink_error}
    if t.symlinks:
        return Check("symlinks", "ok", f"the models folder {t.models_dir} supports symbolic links", details=details)
    return Check("symlinks", "warn", f"the models folder {t.models_dir} does not support symbolic links "
                 f"({t.symlink_error}): downloads still work, but versions of a model do not share files",
                 fix="choose a models folder on an ext4, btrfs or xfs drive in Settings (or STEPVIDEO_MODELS_DIR)",
                 details=details)


def toolchain_checks(m: Machine) -> tuple[Check, ...]:
    found = (check_gpu_arch(m), check_bf16(m), check_kernel_tools(m), check_symlinks(m))
    return tuple(c for c in found if c is not None)
