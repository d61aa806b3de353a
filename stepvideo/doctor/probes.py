"""What `stepvideo doctor` reads from the machine: plain facts, no judgement (that is doctor.py).

torch and Qt are probed in a child Python, so a broken CUDA library or a missing libEGL cannot take
the doctor down with it, and so the engine process never imports Qt (house rule). NVML is read in
process: it makes no CUDA context and fails cleanly without a driver.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stepvideo.doctor.toolchain import ToolchainFacts, probe_toolchain
from stepvideo.engine.compute_dtype import OVERRIDE_ENV, read_cpu_flags

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 120  # the first torch import on a cold disk can take a while


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str
    total_bytes: int
    free_bytes: int
    compute_capability: str | None = None


@dataclass(frozen=True)
class NvidiaFacts:
    driver: str | None  # e.g. "550.54.14"; None without a driver
    cuda_driver: str | None  # newest CUDA this driver runs, e.g. "12.4"
    gpus: tuple[GpuInfo, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class TorchFacts:
    version: str | None
    cuda: str | None = None  # torch.version.cuda: None for a CPU build
    cuda_available: bool = False
    device_count: int = 0
    arch_list: tuple[str, ...] = ()
    devices: tuple[GpuInfo, ...] = ()  # from torch itself, when NVML could not tell
    error: str | None = None


@dataclass(frozen=True)
class QtFacts:
    version: str | None
    error: str | None = None  # PySide6 / QtWidgets / QtSvg did not import
    multimedia_error: str | None = None  # QtMultimedia did not import (usually libpulse0 missing)


@dataclass(frozen=True)
class FfmpegFacts:
    path: str | None
    version: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class MemoryFacts:
    total_bytes: int
    available_bytes: int  # psutil's, for the whole host
    cgroup_limit_bytes: int | None  # None when no cgroup limit applies
    usable_bytes: int  # what this process can still get: available, capped by the cgroup


@dataclass(frozen=True)
class DiskFacts:
    label: str
    path: str
    free_bytes: int | None
    device: int | None = None  # st_dev: places on one file system share their free space
    error: str | None = None


@dataclass(frozen=True)
class ModelFacts:
    repo: str
    commit: str
    refs: tuple[str, ...] = ()
    state: str = "unknown"  # verified | complete | partial | corrupt | unknown
    size_bytes: int | None = None


@dataclass(frozen=True)
class FontFacts:
    cjk_families: tuple[str, ...] = ()  # font families fontconfig says cover Chinese (fc-list :lang=zh)
    error: str | None = None  # fc-list could not be asked


@dataclass(frozen=True)
class Machine:
    python: str
    system: str
    glibc: str | None
    nvidia: NvidiaFacts
    torch: TorchFacts
    qt: QtFacts
    ffmpeg: FfmpegFacts
    memory: MemoryFacts
    disks: tuple[DiskFacts, ...]
    models: tuple[ModelFacts, ...] | None  # None: the hub could not be asked
    models_error: str | None = None
    toolchain: ToolchainFacts | None = None  # nvcc, ninja, symlinks in the models folder (toolchain.py)
    cpu_flags: tuple[str, ...] = ()  # /proc/cpuinfo feature flags (native bf16 or not)
    cpu_dtype_override: str | None = None  # STEPVIDEO_CPU_DTYPE, if set
    fonts: FontFacts | None = None  # None: not looked at


# ---- child-process probes -------------------------------------------------------------------------

_TORCH_PROBE = r"""
import json, warnings
warnings.filterwarnings("ignore")
out = {}
try:
    import torch
    out["version"] = torch.__version__
    out["cuda"] = torch.version.cuda
    out["cuda_available"] = bool(torch.cuda.is_available())
    if out["cuda_available"]:
        out["device_count"] = torch.cuda.device_count()
        out["arch_list"] = list(torch.cuda.get_arch_list())
        devices = []
        for i in range(out["device_count"]):
            props = torch.cuda.get_device_properties(i)
            free, total = torch.cuda.mem_get_info(i)
            devices.append({"index": i, "name": props.name, "total_bytes": total, "free_bytes": free,
                            "compute_capability": f"{props.major}.{props.minor}"})
        out["devices"] = devices
except Exception as exc:
    out["error"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
"""

_QT_PROBE = r"""
import importlib, json
out = {}
try:
    out["version"] = importlib.import_module("PySide6").__version__
    for name in ("PySide6.QtWidgets", "PySide6.QtSvg"):  # QtWidgets loads libEGL/libGL/fontconfig
        importlib.import_module(name)
except Exception as exc:
    out["error"] = f"{type(exc).__name__}: {exc}"
else:
    try:
        importlib.import_module("PySide6.QtMultimedia")
    except Exception as exc:
        out["multimedia_error"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
"""


def run_probe(script: str, timeout: float = PROBE_TIMEOUT_S) -> dict[str, Any]:
    """Run `script` in a child Python and return the JSON object it prints last, or {"error": …}."""
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    try:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"the probe did not finish within {timeout:.0f} s"}
    except OSError as exc:
        return {"error": f"could not start {sys.executable}: {exc}"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        how = f"signal {-done.returncode}" if done.returncode < 0 else f"exit code {done.returncode}"
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        return {"error": f"the probe crashed ({how}): {tail[0]}"}
    try:
        return json.loads(lines[-1])
    except json.JSONDecodeError:
        return {"error": f"the probe printed something unexpected: {lines[-1][:200]}"}


def _gpu(d: dict[str, Any]) -> GpuInfo:
    return GpuInfo(int(d["index"]), str(d["name"]), int(d["total_bytes"]), int(d["free_bytes"]),
                   d.get("compute_capability"))


def probe_torch() -> TorchFacts:
    out = run_probe(_TORCH_PROBE)
    return TorchFacts(
        version=out.get("version"), cuda=out.get("cuda"), cuda_available=bool(out.get("cuda_available")),
        device_count=int(out.get("device_count", 0)), arch_list=tuple(out.get("arch_list", ())),
        devices=tuple(_gpu(d) for d in out.get("devices", ())), error=out.get("error"),
    )


def probe_qt() -> QtFacts:
    out = run_probe(_QT_PROBE)
    return QtFacts(version=out.get("version"), error=out.get("error"), multimedia_error=out.get("multimedia_error"))


# ---- in-process probes ----------------------------------------------------------------------------


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def probe_nvidia() -> NvidiaFacts:
    try:
        import pynvml
    except ImportError:
        return NvidiaFacts(None, None, error="nvidia-ml-py is not installed")
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound / DriverNotLoaded: no usable driver
        return NvidiaFacts(None, None, error=f"NVML: {exc}")
    try:
        driver = _text(pynvml.nvmlSystemGetDriverVersion())
        cuda = pynvml.nvmlSystemGetCudaDriverVersion()  # e.g. 12040
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
            try:
                major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
                capability = f"{major}.{minor}"
            except Exception:
                capability = None
            gpus.append(GpuInfo(i, _text(pynvml.nvmlDeviceGetName(handle)), int(mem.total), int(mem.free), capability))
        return NvidiaFacts(driver, f"{cuda // 1000}.{cuda % 1000 // 10}", tuple(gpus))
    except Exception as exc:
        return NvidiaFacts(None, None, error=f"NVML: {exc}")
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


def probe_ffmpeg() -> FfmpegFacts:
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as exc:  # ImportError, or RuntimeError when no binary is found
        return FfmpegFacts(None, error=f"{type(exc).__name__}: {exc}")
    try:
        done = subprocess.run([exe, "-hide_banner", "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return FfmpegFacts(exe, error=f"{exe} does not run: {exc}")
    first = (done.stdout.strip().splitlines() or [""])[0]
    if done.returncode != 0 or not first.startswith("ffmpeg version"):
        return FfmpegFacts(exe, error=f"{exe} -version failed (exit code {done.returncode})")
    return FfmpegFacts(exe, version=first.split()[2])


def cgroup_limit_bytes(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """The memory limit of this process's cgroup (v2 memory.max or v1 limit_in_bytes); None if unlimited."""
    for path in (root / "memory.max", root / "memory" / "memory.limit_in_bytes"):
        try:
            raw = path.read_text().strip()
        except OSError:
            continue
        if raw == "max" or not raw.isdigit() or int(raw) >= 1 << 60:  # v1 writes a huge number for "none"
            return None
        return int(raw)
    return None


def probe_memory() -> MemoryFacts:
    import psutil

    vm = psutil.virtual_memory()
    limit = cgroup_limit_bytes()
    try:
        from stepvideo.memory.planner import detect_ram_bytes  # counts the cgroup's own usage too
        usable = int(detect_ram_bytes())
    except ImportError:
        usable = int(vm.available) if limit is None else min(int(vm.available), limit)
    return MemoryFacts(int(vm.total), int(vm.available), limit, usable)


def _existing_ancestor(path: Path) -> Path:
    probe = Path(path).expanduser().absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe


def free_bytes_at(path: Path) -> int:
    """Free bytes on the file system that holds `path`, or would hold it once created."""
    return int(shutil.disk_usage(_existing_ancestor(path)).free)


def probe_disks() -> tuple[DiskFacts, ...]:
    from stepvideo import paths

    places: list[tuple[str, Any]] = []
    try:
        from stepvideo.hub import cache_root

        places.append(("model cache", cache_root))
    except ImportError:
        places.append(("model cache", lambda: Path(os.environ.get("HF_HUB_CACHE") or Path.home() / ".cache/huggingface/hub")))
    places += [("quantized weights", paths.quantized_cache_dir), ("videos", paths.videos_dir)]
    disks = []
    for label, where in places:
        try:
            path = Path(where())
            disks.append(DiskFacts(label, str(path), free_bytes_at(path), os.stat(_existing_ancestor(path)).st_dev))
        except Exception as exc:  # a bad STEPVIDEO_*_DIR, an unmounted drive
            disks.append(DiskFacts(label, "", None, error=f"{type(exc).__name__}: {exc}"))
    return tuple(disks)


def probe_models() -> tuple[tuple[ModelFacts, ...] | None, str | None]:
    """Installed model versions from stepvideo.hub, offline. A complete version counts as verified
    when every one of its blobs has a current good hash record (written by download or Verify)."""
    try:
        from stepvideo import hub

        listed = hub.list_installed(online=False)
    except (ImportError, AttributeError) as exc:
        return None, f"stepvideo.hub cannot list installed models ({exc})"
    except Exception as exc:  # a damaged cache must not stop the report
        return None, f"{type(exc).__name__}: {exc}"
    models = []
    for v in listed:
        state = v.status
        if state == "complete" and _all_blobs_verified(v.repo_id, Path(v.path)):
            state = "verified"
        models.append(ModelFacts(v.repo_id, v.commit, tuple(v.refs), state, v.size_on_disk))
    return tuple(models), None


def _all_blobs_verified(repo_id: str, snapshot: Path) -> bool:
    from stepvideo.hub import cache_root
    from stepvideo.hub.cache import RepoCache, snapshot_blob
    from stepvideo.hub.verified import is_verified_ok

    repo = RepoCache(cache_root(), repo_id)
    records = repo.read_verified()
    files = [p for p in snapshot.rglob("*") if p.is_file()]
    for file in files:
        blob = snapshot_blob(file)
        if blob is None or is_verified_ok(repo, blob.name, records) is not True:
            return False
    return bool(files)


def probe_fonts() -> FontFacts:
    """Chinese-capable fonts via fontconfig's fc-list (what Qt uses on Linux), without importing Qt."""
    exe = shutil.which("fc-list")
    if exe is None:
        return FontFacts(error="fc-list (fontconfig) is not installed")
    try:
        done = subprocess.run([exe, ":lang=zh", "family"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return FontFacts(error=f"fc-list failed: {exc}")
    if done.returncode != 0:
        return FontFacts(error=f"fc-list failed: {done.stderr.strip()[:200]}")
    families = sorted({line.split(",")[0].strip() for line in done.stdout.splitlines() if line.strip()})
    return FontFacts(cjk_families=tuple(families))


def probe_machine() -> Machine:
    """Everything the doctor looks at. Takes a few seconds (the torch import dominates)."""
    libc, libc_version = platform.libc_ver()
    models, models_error = probe_models()
    return Machine(
        python=platform.python_version(),
        system=f"{platform.system()} {platform.machine()}",
        glibc=libc_version if libc == "glibc" else None,
        nvidia=probe_nvidia(),
        torch=probe_torch(),
        qt=probe_qt(),
        ffmpeg=probe_ffmpeg(),
        memory=probe_memory(),
        disks=probe_disks(),
        models=models,
        models_error=models_error,
        toolchain=_probe_toolchain(),
        cpu_flags=tuple(sorted(read_cpu_flags())),
        cpu_dtype_override=os.environ.get(OVERRIDE_ENV),
        fonts=probe_fonts(),
    )


def _probe_toolchain() -> ToolchainFacts | None:
    try:
        from stepvideo.hub import cache_root

        return probe_toolchain(cache_root())
    except Exception:  # a bad STEPVIDEO_MODELS_DIR is the disk check's to report
        return None
