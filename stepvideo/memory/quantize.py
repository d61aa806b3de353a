"""Weight quantization with optimum-quanto, and the on-disk cache of quantized weights.

What is quantized: the nn.Linear layers inside the DiT's transformer blocks and inside Step-LLM's
layers — 99% of both models' parameters. Never: the VAE, CLIP, norms, embeddings, the patch embed
(a conv), `proj_out`, `caption_projection`/`clip_projection` (conditioning inputs, 0.3% of the DiT)
and the modulation path: `adaln_single.*` (its `linear` makes the 6×6144 shift/scale/gate of every
block, so its error would reach every block) and the `scale_shift_table` parameters (not Linear).

The cache: quantize once per (model source, qtype) into `quantized_store.root()/<component>/
<source id>/<qtype>/` (the user cache folder; quantized_store lists, migrates and deletes copies) as safetensors files (the kernel-agnostic quanto layout: `weight._data`,
`weight._scale`, qint4 also `weight._data._data`/`weight._shift`) + `quantization_map.json` +
`index.json` + `manifest.json`, written to a temporary folder and renamed into place. The build
reads the bf16 source one tensor at a time and flushes its output every `shard_bytes`, so host RAM
stays near one output file. Later runs build the model on meta, swap the listed Linears for quanto
modules (still on meta) and assign the cached tensors: bf16 weights never reach host RAM.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..engine.weights import read_safetensors_header
from ..errors import InvalidRequest, WeightsMismatch, WeightsNotFound
from . import quantized_store

log = logging.getLogger(__name__)

QTYPES = quantized_store.QTYPES
FALLBACK_QTYPE = "qint8"
CACHE_FORMAT = 1
DEFAULT_SHARD_BYTES = 2 << 30


@dataclass(frozen=True)
class QuantPolicy:
    """Which nn.Linear modules get quantized: fnmatch patterns on module names."""

    include: tuple[str, ...]
    exclude: tuple[str, ...] = ()

    def selects(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in self.include) and not any(
            fnmatch.fnmatchcase(name, p) for p in self.exclude
        )


DIT_POLICY = QuantPolicy(include=("transformer_blocks.*",))
STEP_LLM_POLICY = QuantPolicy(include=("transformer.layers.*",))


def quantizable_linears(model: torch.nn.Module, policy: QuantPolicy) -> list[str]:
    """Names of the nn.Linear modules the policy selects (works on meta-built models)."""
    return [n for n, m in model.named_modules() if type(m) is torch.nn.Linear and policy.selects(n)]


def check_qtype(qtype: str) -> str:
    if qtype not in QTYPES:
        raise InvalidRequest(f"unknown quantization {qtype!r}; allowed: none, {', '.join(QTYPES)}")
    return qtype


# --- Kernel availability ----------------------------------------------------------------------------

_probe_results: dict[tuple[str, str], str | None] = {}


def kernel_problem(qtype: str, device_type: str, on_progress=None) -> str | None:
    """None when a quantized Linear of this qtype loads from the cache and runs on this device type,
    else why not. Exercises the real path once (kernel-agnostic weight → optimize → matmul), which is
    where quanto JIT-builds its C++ (qint4 unpack) or CUDA (fp8/int4, needs nvcc) extensions."""
    key = (qtype, device_type)
    if key not in _probe_results:
        problem = None
        if qtype != FALLBACK_QTYPE:  # built by a child under a time limit, so a hung build cannot hang us
            from .kernel_build import build_kernels

            problem = build_kernels(qtype, device_type, on_progress=on_progress)
        _probe_results[key] = problem or _probe(qtype, torch.device(device_type))
    return _probe_results[key]


def _probe(qtype: str, device: torch.device) -> str | None:
    from optimum.quanto import requantize

    try:
        holder = torch.nn.Module()
        holder.linear = torch.nn.Linear(256, 128, bias=False, dtype=torch.bfloat16)
        state = quantized_linear_state(holder.linear.weight.detach(), None, qtype)
        target = torch.nn.Module()
        with torch.device("meta"):
            target.linear = torch.nn.Linear(256, 128, bias=False, dtype=torch.bfloat16)
        requantize(target, {f"linear.{k}": v for k, v in state.items()},
                   {"linear": {"weights": qtype, "activations": "none"}}, device=device)
        target.linear(torch.ones(2, 256, dtype=torch.bfloat16, device=device))
        return None
    except Exception as exc:  # extension build failures surface as RuntimeError/OSError/ImportError
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def resolve_qtype(requested: str, device_type: str = "cpu", on_progress=None) -> str:
    """The qtype to use on this device: the requested one if its kernels work, else qint8 (one log
    line). qint8 needs no compiled kernel anywhere."""
    check_qtype(requested)
    if requested == FALLBACK_QTYPE:
        return requested
    problem = kernel_problem(requested, device_type, on_progress)
    if problem is None:
        return requested
    log.warning("%s kernels unavailable on %s (%s); falling back to %s", requested, device_type, problem,
                FALLBACK_QTYPE)
    return FALLBACK_QTYPE


# --- Quantizing tensors and modules -------------------------------------------------------------------


def quantized_linear_state(weight: torch.Tensor, bias: torch.Tensor | None, qtype: str) -> dict[str, torch.Tensor]:
    """The state dict of a frozen quanto QLinear for this weight, in the kernel-agnostic layout
    (what quanto's own serialization writes), computed without device-specific packing."""
    from optimum.quanto import quantize
    from optimum.quanto.tensor import SymmetricOptimizer, quantize_weight

    holder = torch.nn.Module()
    with torch.device("meta"):
        holder.linear = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, dtype=weight.dtype)
    holder.linear.weight = torch.nn.Parameter(weight, requires_grad=False)
    if bias is not None:
        holder.linear.bias = torch.nn.Parameter(bias, requires_grad=False)
    quantize(holder, weights=check_qtype(qtype))  # root is never replaced: quantize the child
    q = holder.linear
    with torch.no_grad():
        if isinstance(q.optimizer, SymmetricOptimizer):
            scale, shift = q.optimizer(q.weight, qtype=q.weight_qtype, axis=0), None
        else:
            scale, shift = q.optimizer(q.weight, qtype=q.weight_qtype, axis=0, group_size=q.weight_group_size)
        qweight = quantize_weight(q.weight, qtype=q.weight_qtype, axis=0, scale=scale, shift=shift,
                                  group_size=q.weight_group_size, optimized=False)
    q.weight = torch.nn.Parameter(qweight, requires_grad=False)
    return {k: v.contiguous() for k, v in q.state_dict().items()}


def quantize_model(model: torch.nn.Module, qtype: str, policy: QuantPolicy) -> dict[str, dict[str, str]]:
    """Quantize a materialised model in place (quantize + freeze) and return its quantization map."""
    from optimum.quanto import freeze, quantization_map, quantize

    names = quantizable_linears(model, policy)
    if names:
        quantize(model, weights=check_qtype(qtype), include=names)
        freeze(model)
    return quantization_map(model)


# --- The cache ------------------------------------------------------------------------------------------


def source_fingerprint(files: Iterable[Path]) -> str:
    """A short id for a set of weight files (name, size, mtime): a hub revision when known is better."""
    h = hashlib.sha256()
    for f in sorted(Path(p) for p in files):
        st = f.stat()
        h.update(f"{f.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def cache_dir(component: str, source_id: str, qtype: str, root: Path | None = None) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in source_id)
    return (root or quantized_store.root()) / component / safe / check_qtype(qtype)


def is_cached(directory: Path) -> bool:
    return (Path(directory) / "manifest.json").is_file()


def build_cache(
    model: torch.nn.Module,
    files: list[Path],
    qtype: str,
    directory: Path,
    policy: QuantPolicy,
    source_id: str = "",
    shard_bytes: int = DEFAULT_SHARD_BYTES,
) -> Path:
    """Quantize the bf16 safetensors `files` of `model` (built on meta, used only for its module
    types) into `directory`. Reads one tensor at a time; holds at most one output file in RAM."""
    check_qtype(qtype)
    directory = Path(directory)
    linears = set(quantizable_linears(model, policy))
    key_file = _key_files(files)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(s) for k, (_, s) in key_file.items()}
    if set(expected) != set(found):
        missing = sorted(set(expected) - set(found))[:3]
        extra = sorted(set(found) - set(expected))[:3]
        raise WeightsMismatch(f"weights do not match the model (missing {missing}, unexpected {extra})")
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    started = time.monotonic()
    try:
        weight_map: dict[str, str] = {}
        out: dict[str, torch.Tensor] = {}
        out_bytes = 0
        n_files = 0
        handles = _Handles()

        def flush() -> None:
            nonlocal out, out_bytes, n_files
            if not out:
                return
            n_files += 1
            name = f"quantized-{n_files:05d}.safetensors"
            save_file(out, str(tmp / name), metadata={"format": "pt"})
            weight_map.update(dict.fromkeys(out, name))
            out, out_bytes = {}, 0

        for key, (path, _shape) in key_file.items():
            owner, _, leaf = key.rpartition(".")
            if owner in linears and leaf == "bias":
                continue  # written together with its weight
            if owner in linears and leaf == "weight":
                bias_key = f"{owner}.bias"
                weight = handles.get(path, key)
                bias = handles.get(key_file[bias_key][0], bias_key) if bias_key in key_file else None
                part = {f"{owner}.{k}": v for k, v in quantized_linear_state(weight, bias, qtype).items()}
                del weight, bias
            else:
                part = {key: handles.get(path, key)}
            out.update(part)
            out_bytes += sum(t.numel() * t.element_size() for t in part.values())
            if out_bytes >= shard_bytes:
                flush()  # only between modules: a quantized module's tensors share one file
        flush()
        handles.close()
        from optimum.quanto import qtypes

        qmap = {name: {"weights": qtypes[qtype].name, "activations": "none"} for name in sorted(linears)}
        (tmp / "quantization_map.json").write_text(json.dumps(qmap, indent=1))
        (tmp / "index.json").write_text(json.dumps({"weight_map": weight_map}, indent=1))
        manifest = {
            "format": CACHE_FORMAT, "qtype": qtype, "source_id": source_id,
            # so `models clean` can tell when the weights it came from are gone
            "source_folder": str(Path(files[0]).absolute().parent) if files else None,
            "quanto": _quanto_version(), "torch": torch.__version__,
            "files": sorted(set(weight_map.values())), "seconds": round(time.monotonic() - started, 2),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("quantized %d Linear modules to %s in %.1fs → %s", len(linears), qtype,
             time.monotonic() - started, directory)
    return directory


def read_cache(directory: Path) -> tuple[dict, dict[str, dict[str, str]], dict[str, Path]]:
    """(manifest, quantization map, key → file) of a cache folder, checked for completeness."""
    directory = Path(directory)
    if not is_cached(directory):
        raise WeightsNotFound(f"no quantized-weight cache at {directory}")
    manifest = json.loads((directory / "manifest.json").read_text())
    if manifest.get("format") != CACHE_FORMAT:
        raise WeightsMismatch(f"{directory} was written by another version of the app; delete it to rebuild")
    qmap = json.loads((directory / "quantization_map.json").read_text())
    weight_map = json.loads((directory / "index.json").read_text())["weight_map"]
    files = {name: directory / name for name in set(weight_map.values())}
    for f in files.values():
        read_safetensors_header(f)  # raises on missing or truncated files
    return manifest, qmap, {k: files[v] for k, v in weight_map.items()}


def prepare_quantized_modules(model: torch.nn.Module, qmap: dict[str, dict[str, str]]) -> None:
    """Swap the listed nn.Linear modules for quanto QLinear modules, staying on meta."""
    from optimum.quanto.quantize import _quantize_submodule

    for name, cfg in qmap.items():
        module = model.get_submodule(name)
        if type(module) is not torch.nn.Linear:
            raise WeightsMismatch(f"quantized cache names {name!r}, which is not a Linear layer of this model")
        _quantize_submodule(model, name, module, weights=cfg["weights"], activations=None)


def load_cache(model: torch.nn.Module, directory: Path, device: torch.device | str = "cpu",
               dtype: torch.dtype | None = None) -> torch.nn.Module:
    """Materialise a meta-built model from a quantized cache onto `device`, file by file; float
    tensors (norms, scales) are cast to the compute dtype `dtype` when given."""
    from .offload import upcast

    _manifest, qmap, key_file = read_cache(directory)
    prepare_quantized_modules(model, qmap)
    unexpected: list[str] = []
    for path in sorted(set(key_file.values())):
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            # On CPU, safetensors returns views of the memory-mapped file at unaligned offsets;
            # quanto's int8 CPU kernel (torch._weight_int8pack_mm) segfaults on those: own a copy.
            state = {k: _owned(upcast(f.get_tensor(k), dtype)) for k in f.keys()}
        result = model.load_state_dict(state, strict=False, assign=True)
        unexpected.extend(result.unexpected_keys)
        del state
    still_meta = [n for n, t in _all_tensors(model) if t.is_meta]
    if unexpected or still_meta:
        raise WeightsMismatch(f"quantized cache {directory} does not match the model "
                              f"(unexpected {unexpected[:3]}, unloaded {still_meta[:3]}); delete it to rebuild")
    return model


def load_or_build(
    model: torch.nn.Module, files: list[Path], qtype: str, component: str, policy: QuantPolicy,
    source_id: str | None = None, device: torch.device | str = "cpu", root: Path | None = None,
) -> tuple[torch.nn.Module, str]:
    """The usual entry point: resolve the qtype for the device (falls back to qint8), build the
    cache on first use, then load from it. Returns (model, qtype actually used)."""
    qtype = resolve_qtype(qtype, torch.device(device).type)
    directory = cache_dir(component, source_id or source_fingerprint(files), qtype, root)
    if not is_cached(directory):
        build_cache(model, files, qtype, directory, policy, source_id=source_id or "")
    return load_cache(model, directory, device), qtype


def _owned(t: torch.Tensor) -> torch.Tensor:
    return t.clone() if t.device.type == "cpu" else t


def _all_tensors(model: torch.nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    yield from model.named_parameters()
    yield from model.named_buffers()


def _key_files(files: Iterable[Path]) -> dict[str, tuple[Path, list[int]]]:
    out: dict[str, tuple[Path, list[int]]] = {}
    for path in files:
        for key, info in read_safetensors_header(Path(path)).items():
            out[key] = (Path(path), info["shape"])
    return out


class _Handles:
    """Open safetensors files once each; tensors are read on demand."""

    def __init__(self) -> None:
        self._open: dict[Path, object] = {}

    def get(self, path: Path, key: str) -> torch.Tensor:
        if path not in self._open:
            self._open[path] = safe_open(str(path), framework="pt", device="cpu").__enter__()
        return self._open[path].get_tensor(key)

    def close(self) -> None:
        for handle in self._open.values():
            handle.__exit__(None, None, None)
        self._open.clear()


def _quanto_version() -> str:
    try:
        from importlib.metadata import version

        return version("optimum-quanto")
    except Exception:
        return "unknown"
