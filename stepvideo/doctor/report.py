"""`stepvideo doctor`: can this machine run StepVideo Desktop, and with which memory profile?

The facts come from probes.py; here they are judged, as pure functions a test can feed with
any machine. Each check says ok, warn or fail, in one line, with a fix when it is not ok. Only a
`fail` (the app cannot run at all: no torch, no Qt, no ffmpeg) makes the command exit non-zero;
a machine without an NVIDIA GPU runs the app but cannot generate, and the report says so.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from stepvideo.doctor.check import Check
from stepvideo.doctor.gpu_support import toolchain_checks
from stepvideo.doctor.probes import DiskFacts, GpuInfo, Machine, probe_machine
from stepvideo.engine.compute_dtype import choose_cpu_dtype
from stepvideo.errors import InvalidRequest
from stepvideo.presets import BASE_REPO, DEFAULT_FRAMES, DEFAULT_SIZE, PRESETS

REPORT_VERSION = 1
GiB = 1 << 30
GB = 10**9

# Minimum Linux driver for each CUDA release (NVIDIA's CUDA toolkit release notes, table 3).
# packaging/install.sh keeps the same table; tests/test_packaging.py checks that they agree.
CUDA_MIN_DRIVER = {
    "12.8": "570.26",
    "12.6": "560.28.03",
    "12.4": "550.54.14",
    "12.1": "530.30.02",
    "11.8": "520.61.05",
}
# PyTorch published no torch >= 2.6 for CUDA 12.1, so install.sh's `--torch auto` never picks it.
AUTO_SKIPS = frozenset({"12.1"})

# Download size of the base model (facts §1.1: DiT 58.7 GB, Step-LLM 39.2 GB, VAE ≈2 GB, CLIP ≈1.4 GB).
BASE_MODEL_BYTES = 102 * GB
VIDEO_SPACE_BYTES = 2 * GB  # room for a few dozen 8-second videos and their previews
MIN_USABLE_RAM_BYTES = 8 * GiB  # below this even the leanest profile cannot load the text encoder
STATUSES = ("ok", "warn", "fail")
__all__ = ["Check", "Report", "Recommendation", "diagnose", "render_text", "run_doctor"]


@dataclass(frozen=True)
class Recommendation:
    can_generate: bool
    summary: str
    profile: str | None = None
    quantization: str | None = None
    request: str = f"{DEFAULT_SIZE[0]}x{DEFAULT_SIZE[1]}x{DEFAULT_FRAMES}"
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Report:
    checks: tuple[Check, ...]
    recommendation: Recommendation

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.status == "fail")

    @property
    def can_run(self) -> bool:
        return not self.failures

    @property
    def exit_code(self) -> int:
        return 0 if self.can_run else 1

    def verdict(self) -> str:
        if not self.can_run:
            return "the app cannot run: " + "; ".join(c.summary for c in self.failures)
        if not self.recommendation.can_generate:
            return "the app runs, but cannot generate videos on this machine (see the recommendation)"
        if any(c.status == "warn" for c in self.checks):
            return "ready, with warnings"
        return "ready"

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": REPORT_VERSION,
            "can_run": self.can_run,
            "can_generate": self.recommendation.can_generate,
            "verdict": self.verdict(),
            "exit_code": self.exit_code,
            "checks": [c.to_dict() for c in self.checks],
            "recommendation": self.recommendation.to_dict(),
        }


# ---- versions -------------------------------------------------------------------------------------


def version_tuple(text: str) -> tuple[int, ...]:
    """'550.54.14' → (550, 54, 14); stops at the first part that is not a number ('2.13.0+cpu')."""
    parts = []
    for piece in text.split("+")[0].split("."):
        if not piece.isdigit():
            break
        parts.append(int(piece))
    return tuple(parts)


def newest_cuda_for_driver(driver: str, *, for_install: bool = False) -> str | None:
    """The newest CUDA release in CUDA_MIN_DRIVER this driver runs (install.sh's `--torch auto`
    when for_install), or None when the driver is older than all of them."""
    have = version_tuple(driver)
    for cuda, needed in sorted(CUDA_MIN_DRIVER.items(), key=lambda kv: version_tuple(kv[0]), reverse=True):
        if for_install and cuda in AUTO_SKIPS:
            continue
        if have >= version_tuple(needed):
            return cuda
    return None


def torch_choice_for_driver(driver: str | None) -> str | None:
    """install.sh's `--torch auto`: 'cpu' without a driver, 'cu126' etc., or None if too old."""
    if driver is None:
        return "cpu"
    cuda = newest_cuda_for_driver(driver, for_install=True)
    return None if cuda is None else "cu" + cuda.replace(".", "")


def gib(n: int | None) -> str:
    return "unknown" if n is None else f"{n / GiB:.1f} GiB"


# ---- checks (pure) --------------------------------------------------------------------------------


def check_python(m: Machine) -> Check:
    glibc = f", glibc {m.glibc}" if m.glibc else ""
    return Check("python", "ok", f"Python {m.python} on {m.system}{glibc}", details={"python": m.python, "glibc": m.glibc})


def check_gpu(m: Machine) -> Check:
    nv = m.nvidia
    gpus = nv.gpus or m.torch.devices
    details = {"driver": nv.driver, "cuda_driver": nv.cuda_driver, "gpus": [dataclasses.asdict(g) for g in gpus]}
    if not gpus:
        why = nv.error or "no device"
        return Check("gpu", "warn", f"no NVIDIA GPU found ({why})",
                     fix="videos can only be generated on an NVIDIA GPU with a working driver; the rest of the app works",
                     details=details)
    listed = ", ".join(f"{g.name} ({gib(g.free_bytes)} free of {gib(g.total_bytes)})" for g in gpus)
    driver = f"; driver {nv.driver} (CUDA ≤ {nv.cuda_driver})" if nv.driver else ""
    return Check("gpu", "ok", f"{listed}{driver}", details=details)


def check_cpu(m: Machine) -> Check:
    """The dtype CPU runs compute in (engine/compute_dtype.py): the same choice the engine makes."""
    details = {"override": m.cpu_dtype_override,
               "native_bf16_flags": sorted(f for f in m.cpu_flags if f in ("avx512_bf16", "amx_bf16"))}
    try:
        choice = choose_cpu_dtype(m.cpu_flags, m.cpu_dtype_override)
    except InvalidRequest as exc:
        return Check("cpu", "warn", str(exc), fix="unset STEPVIDEO_CPU_DTYPE or set it to bf16 or fp32", details=details)
    details["dtype"] = choice.name
    return Check("cpu", "ok", f"CPU runs compute in {choice.name}: {choice.reason}", details=details)


def check_torch(m: Machine) -> Check:
    t, nv = m.torch, m.nvidia
    details = {"version": t.version, "cuda": t.cuda, "cuda_available": t.cuda_available, "arch_list": list(t.arch_list)}
    if t.version is None:
        return Check("torch", "fail", f"torch does not import ({t.error})",
                     fix="reinstall with packaging/install.sh (it picks the torch build for this machine)", details=details)
    build = f"CUDA {t.cuda} build" if t.cuda else "CPU build"
    summary = f"torch {t.version} ({build}), CUDA {'available' if t.cuda_available else 'not available'}"
    choice = torch_choice_for_driver(nv.driver)
    reinstall = f"reinstall torch with packaging/install.sh --torch {choice or 'auto'}"
    if nv.gpus and t.cuda is None:
        return Check("torch", "warn", summary + ": this CPU build cannot use the GPU", fix=reinstall, details=details)
    if nv.driver and t.cuda:
        newest = nv.cuda_driver or newest_cuda_for_driver(nv.driver)
        if newest is None or version_tuple(t.cuda) > version_tuple(newest):
            return Check("torch", "warn", summary + f": built for CUDA {t.cuda}, but driver {nv.driver} runs CUDA ≤ {newest}",
                         fix=f"update the NVIDIA driver, or {reinstall}", details=details)
    if nv.gpus and not t.cuda_available:
        return Check("torch", "warn", summary + f": torch cannot reach the GPU ({t.error or 'cuda.is_available() is False'})",
                     fix="check the driver with nvidia-smi and CUDA_VISIBLE_DEVICES; then " + reinstall, details=details)
    return Check("torch", "ok", summary, details=details)


def check_memory(m: Machine) -> Check:
    mem = m.memory
    limit = f", cgroup limit {gib(mem.cgroup_limit_bytes)}" if mem.cgroup_limit_bytes is not None else ""
    summary = f"RAM {gib(mem.usable_bytes)} usable of {gib(mem.total_bytes)}{limit}"
    details = dataclasses.asdict(mem)
    if mem.usable_bytes < MIN_USABLE_RAM_BYTES:
        return Check("ram", "warn", summary, fix=f"close other programs: generating needs at least {gib(MIN_USABLE_RAM_BYTES)} free",
                     details=details)
    return Check("ram", "ok", summary, details=details)


def _disk_need(label: str, models_installed: bool, quantized_bytes: int | None) -> int:
    if label == "model cache":
        return 0 if models_installed else BASE_MODEL_BYTES
    if label == "quantized weights":
        return quantized_bytes or 0
    return VIDEO_SPACE_BYTES


def check_disks(m: Machine, quantized_bytes: int | None = None) -> Check:
    """Free space where the models, the quantized-weight cache and the videos go. Places on one file
    system share its free space, so their needs are added up before comparing."""
    installed = any(x.state in ("verified", "complete") for x in m.models or ())
    short, parts = [], []
    groups: dict[Any, list[DiskFacts]] = {}
    for disk in m.disks:
        if disk.free_bytes is None:
            short.append(f"{disk.label}: {disk.error}")
        else:
            parts.append(f"{disk.label} {disk.free_bytes / GB:.0f} GB free")
            groups.setdefault(disk.device if disk.device is not None else disk.path, []).append(disk)
    for disks in groups.values():
        need = sum(_disk_need(d.label, installed, quantized_bytes) for d in disks)
        free = disks[0].free_bytes or 0
        if free < need:
            names = ", ".join(d.label for d in disks)
            short.append(f"{names}: {free / GB:.1f} GB free on {'their' if len(disks) > 1 else 'its'} disk, "
                         f"need about {need / GB:.0f} GB")
    details = {"disks": [dataclasses.asdict(d) for d in m.disks], "base_model_bytes": BASE_MODEL_BYTES,
               "quantized_cache_bytes": quantized_bytes}
    if short:
        return Check("disk", "warn", "; ".join(short),
                     fix="free some space, or choose other folders in Settings (or STEPVIDEO_MODELS_DIR, STEPVIDEO_DATA_DIR, STEPVIDEO_VIDEOS_DIR)",
                     details=details)
    return Check("disk", "ok", ", ".join(parts), details=details)


def check_ffmpeg(m: Machine) -> Check:
    f = m.ffmpeg
    details = dataclasses.asdict(f)
    if f.error or not f.version:
        return Check("ffmpeg", "fail", f"ffmpeg does not run, so no video can be written ({f.error})",
                     fix="pip install --force-reinstall imageio-ffmpeg (or point IMAGEIO_FFMPEG_EXE at an ffmpeg)", details=details)
    return Check("ffmpeg", "ok", f"ffmpeg {f.version} ({f.path})", details=details)


# The PySide6 release that decrefs None on void calls; fatal where None is mortal (Python < 3.12).
# pyproject excludes it, but a venv made before that exclusion may still hold it.
PYSIDE_NONE_LEAK = "6.12.0"


def check_qt(m: Machine) -> Check:
    q = m.qt
    details = dataclasses.asdict(q)
    if q.error:
        glibc_note = ""
        if m.glibc and version_tuple(m.glibc) < (2, 34):
            glibc_note = f"; PySide6 6.7+ wheels need glibc ≥ 2.34, this system has {m.glibc}"
        return Check("qt", "fail", f"the desktop app cannot start: Qt does not load ({q.error})",
                     fix="reinstall the app (bash packaging/install.sh, or pip install . in its venv); on a server, the `stepvideo` CLI still works" + glibc_note,
                     details=details)
    if q.version == PYSIDE_NONE_LEAK and version_tuple(m.python) < (3, 12):
        return Check("qt", "fail", f"PySide6 {q.version} on Python {m.python} drops a reference to None on every Qt call: "
                     "the window aborts within minutes",
                     fix="reinstall the app (bash packaging/install.sh) to get another PySide6 release, or use Python 3.12+",
                     details=details)
    if q.multimedia_error:
        return Check("qt", "warn", f"PySide6 {q.version}, but QtMultimedia does not load: the gallery cannot play videos ({q.multimedia_error})",
                     fix="sudo apt-get install libpulse0", details=details)
    return Check("qt", "ok", f"PySide6 {q.version} with QtMultimedia", details=details)


CJK_FONT_FIX = ("sudo apt install fonts-noto-cjk (Debian/Ubuntu); sudo dnf install google-noto-sans-cjk-fonts "
                "(Fedora); then restart the app")


def check_fonts(m: Machine) -> Check:
    """Chinese text in the app (examples, the official negative prompt, Chinese prompts) needs a CJK font."""
    f = m.fonts
    details = dataclasses.asdict(f) if f else {}
    if f is None or f.error:
        return Check("fonts", "warn", f"could not check for a Chinese font ({f.error if f else 'not probed'})",
                     fix=CJK_FONT_FIX, details=details)
    if not f.cjk_families:
        return Check("fonts", "warn", "no font for Chinese text: the app shows Chinese prompts and the official "
                     "negative prompt as boxes (it falls back to English examples)", fix=CJK_FONT_FIX, details=details)
    return Check("fonts", "ok", f"Chinese text: {f.cjk_families[0]}" + (
        f" and {len(f.cjk_families) - 1} more" if len(f.cjk_families) > 1 else ""), details=details)


def check_models(m: Machine) -> Check:
    if m.models is None:
        return Check("models", "warn", f"could not list the installed models ({m.models_error})",
                     details={"error": m.models_error})
    details = {"models": [dataclasses.asdict(x) for x in m.models]}
    if not m.models:
        return Check("models", "warn", "no model installed",
                     fix=f"download {BASE_REPO} (about {BASE_MODEL_BYTES / GB:.0f} GB) on the Models page or with `stepvideo models download`",
                     details=details)
    listed = ", ".join(f"{x.repo}@{(x.refs or (x.commit[:7],))[0]} {x.state}" for x in m.models)
    if any(x.state in ("partial", "corrupt") for x in m.models):
        return Check("models", "warn", listed, fix="finish or repair it on the Models page, or with `stepvideo models verify` then `stepvideo models download`",
                     details=details)
    if not any(x.repo == BASE_REPO and x.state in ("verified", "complete") for x in m.models):
        return Check("models", "warn", listed + f"; the base model {BASE_REPO} is missing",
                     fix=f"download {BASE_REPO}: every model needs its text encoders and VAE", details=details)
    if not any(x.state == "verified" for x in m.models):
        return Check("models", "ok", listed + " (not hash-verified yet: Verify on the Models page or `stepvideo models verify`)", details=details)
    return Check("models", "ok", listed, details=details)


# ---- recommendation -------------------------------------------------------------------------------


def _first_gpu(m: Machine) -> GpuInfo | None:
    gpus = m.nvidia.gpus or m.torch.devices
    return gpus[0] if gpus else None


def recommend(m: Machine) -> Recommendation:
    """Which memory profile the standard request (544×992×204, standard preset) should use here."""
    height, width = DEFAULT_SIZE
    frames = DEFAULT_FRAMES
    try:
        from stepvideo.memory import planner
    except ImportError:
        planner = None
    gpu = _first_gpu(m)
    if planner is None:
        if gpu is None:
            return Recommendation(False, "No NVIDIA GPU: this machine cannot generate videos.")
        return Recommendation(True, f"Use the 'auto' memory profile on the {gpu.name} (the memory planner is not installed, so no prediction).")
    leanest = _leanest(planner, height, width, frames)
    details: dict[str, Any] = {"leanest": leanest}
    if gpu is None or m.torch.cuda is None and m.torch.version is not None:
        need = (f"On an NVIDIA GPU, the standard {height}x{width}x{frames} video needs at least "
                f"{gib(leanest['vram_bytes'])} of free VRAM and {gib(leanest['ram_bytes'])} of RAM "
                f"(profile {leanest['profile']}, {leanest['quantization']}).")
        first = "No NVIDIA GPU: this machine cannot generate videos." if gpu is None else \
            f"torch here is a CPU build, so the {gpu.name} cannot be used yet."
        return Recommendation(False, f"{first} {need}", details=details)
    plan = planner.plan(height, width, frames, cfg=PRESETS["standard"].cfg, profile="auto",
                        gpu_bytes=gpu.free_bytes, ram_bytes=m.memory.usable_bytes, capability=gpu.compute_capability)
    if plan.unsupported:
        return Recommendation(False, plan.unsupported[0].upper() + plan.unsupported[1:] + ".", details=details)
    details["plan"] = {"predicted_vram_bytes": plan.predicted_vram_bytes, "predicted_ram_bytes": plan.predicted_ram_bytes,
                       "gpu_bytes": plan.gpu_bytes, "ram_bytes": plan.ram_bytes,
                       "suggestions": [s.describe() for s in plan.suggestions]}
    if plan.fits:
        return Recommendation(
            True,
            f"Use memory profile '{plan.profile}' with {plan.quantization}: the standard {height}x{width}x{frames} video "
            f"needs about {gib(plan.predicted_vram_bytes)} of the {gib(gpu.free_bytes)} free VRAM and "
            f"{gib(plan.predicted_ram_bytes)} of the {gib(m.memory.usable_bytes)} usable RAM.",
            profile=plan.profile, quantization=plan.quantization, details=details,
        )
    if plan.suggestions:
        alt = plan.suggestions[0]
        return Recommendation(True, f"The standard video does not fit ({plan.refusal()}). Make {alt.describe()}.",
                              profile=alt.profile, quantization=alt.quantization, details=details)
    return Recommendation(False, f"Nothing fits: {plan.refusal()}. The leanest setting needs "
                                 f"{gib(leanest['vram_bytes'])} VRAM and {gib(leanest['ram_bytes'])} RAM.", details=details)


def _leanest(planner: Any, height: int, width: int, frames: int) -> dict[str, Any]:
    """The smallest VRAM any profile and quantization needs for this video (independent of the machine)."""
    batch = 2 if PRESETS["standard"].cfg > 1.0 else 1
    best = None
    for q in ("qint8", "qint4"):
        for pred in planner.predict_all(height, width, frames, q, batch, 0, 0).values():
            if best is None or pred.vram_bytes < best.vram_bytes:
                best = pred
    return {"profile": best.profile, "quantization": best.quantization, "vram_bytes": best.vram_bytes, "ram_bytes": best.ram_bytes}


def quantized_cache_bytes() -> int | None:
    """Disk the default (qint8) quantized-weight cache takes: DiT + Step-LLM."""
    try:
        from stepvideo.memory import planner
    except ImportError:
        return None
    q = "qint8"
    return planner.DIT_BLOCKS * planner.dit_block_bytes(q) + planner.dit_nonblock_bytes() + planner.llm_bytes(q)


# ---- the report -----------------------------------------------------------------------------------


def diagnose(m: Machine) -> Report:
    checks = (
        check_python(m), check_gpu(m), check_cpu(m), check_torch(m), check_memory(m),
        check_disks(m, quantized_cache_bytes()), check_ffmpeg(m), check_qt(m), check_models(m),
        *toolchain_checks(m),
        *((check_fonts(m),) if m.fonts is not None else ()),
    )
    return Report(checks, recommend(m))


def run_doctor() -> Report:
    return diagnose(probe_machine())


def render_text(report: Report) -> str:
    width = max(len(c.name) for c in report.checks)
    lines = ["StepVideo Desktop doctor", ""]
    for c in report.checks:
        lines.append(f"  {c.status.upper():<4}  {c.name:<{width}}  {c.summary}")
        if c.fix:
            lines.append(f"        {'':<{width}}  → {c.fix}")
    lines += ["", "Recommendation", f"  {report.recommendation.summary}", "", f"Result: {report.verdict()}"]
    return "\n".join(lines)
