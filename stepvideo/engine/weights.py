"""Weights on disk → modules built on the meta device, with a strict key/shape report.

Every loader here builds the module under `torch.device("meta")`, then assigns the tensors read
from safetensors (or from a `weights_only=True` torch checkpoint), so no second copy is ever made.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import struct
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import torch
from safetensors import safe_open

from stepvideo.errors import WeightsMismatch, WeightsNotFound

log = logging.getLogger(__name__)

SAFETENSORS_DTYPE_BYTES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
    "F8_E4M3": 1, "F8_E5M2": 1,
}


def read_safetensors_header(path: Path) -> dict[str, dict]:
    """The header of a safetensors file, checked against the file's size (catches truncation)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFound(f"missing weight file: {path}")
    size = path.stat().st_size
    try:
        with open(path, "rb") as f:
            (header_len,) = struct.unpack("<Q", f.read(8))
            if header_len > size - 8:
                raise ValueError("header longer than file")
            header = json.loads(f.read(header_len))
    except (struct.error, ValueError, UnicodeDecodeError) as exc:
        raise WeightsMismatch(f"{path} is not a readable safetensors file ({exc}); re-download it") from None
    header.pop("__metadata__", None)
    end = max((info["data_offsets"][1] for info in header.values()), default=0)
    if 8 + header_len + end != size:
        raise WeightsMismatch(
            f"{path} is truncated or padded: {size} bytes on disk, {8 + header_len + end} expected; re-download it"
        )
    return header


def safetensors_metadata(path: Path) -> dict[str, str]:
    """The free-form string metadata stored in a safetensors header (empty when there is none)."""
    with safe_open(str(path), framework="pt", device="cpu") as f:
        return dict(f.metadata() or {})


def shard_map(folder: Path, index_name: str) -> dict[str, Path]:
    """key → shard path, from a `*.safetensors.index.json`, checking every shard exists."""
    folder = Path(folder)
    index = folder / index_name
    if not index.is_file():
        raise WeightsNotFound(f"missing weight index: {index}")
    weight_map = json.loads(index.read_text())["weight_map"]
    shards = {name: folder / name for name in set(weight_map.values())}
    for shard in shards.values():
        if not shard.is_file():
            raise WeightsNotFound(f"missing weight shard: {shard}")
    return {key: shards[name] for key, name in weight_map.items()}


def expected_tensors(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def compare_keys(expected: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]], where: str) -> None:
    """Raise WeightsMismatch naming the first differing keys, or return quietly."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = sorted(k for k in set(expected) & set(found) if tuple(expected[k]) != tuple(found[k]))
    if not (missing or unexpected or wrong):
        return
    parts = []
    if missing:
        parts.append(f"missing {', '.join(missing[:3])}" + (f" (+{len(missing) - 3} more)" if len(missing) > 3 else ""))
    if unexpected:
        parts.append(f"unexpected {', '.join(unexpected[:3])}" + (f" (+{len(unexpected) - 3} more)" if len(unexpected) > 3 else ""))
    if wrong:
        k = wrong[0]
        parts.append(f"shape of {k} is {list(found[k])}, expected {list(expected[k])}" + (f" (+{len(wrong) - 1} more)" if len(wrong) > 1 else ""))
    raise WeightsMismatch(f"{where} does not match the model: " + "; ".join(parts))


def file_tensor_shapes(files: Iterable[Path], ignore: tuple[str, ...] = ()) -> dict[str, tuple[int, ...]]:
    """key → shape over safetensors files, from their headers only (no tensor data is read)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for path in files:
        for key, info in read_safetensors_header(path).items():
            if not _ignored(key, ignore):
                shapes[key] = tuple(info["shape"])
    return shapes


def _ignored(key: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(key, p) for p in patterns)


def iter_safetensors(files: Iterable[Path], ignore: tuple[str, ...] = ()) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield (key, tensor) shard by shard; tensors are memory-mapped until touched."""
    for path in files:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            for key in f.keys():
                if not _ignored(key, ignore):
                    yield key, f.get_tensor(key)


def assign_tensors(
    module: torch.nn.Module,
    tensors: Iterable[tuple[str, torch.Tensor]],
    dtype: torch.dtype | None = None,
    device: torch.device | str = "cpu",
    transform: Callable[[str, torch.Tensor], torch.Tensor] | None = None,
    require_complete: bool = True,
) -> torch.nn.Module:
    """Put each tensor into the (meta) module in place of its parameter or buffer.

    `require_complete=False` allows parts to stay on meta (blocks that a streamer will bring in).
    """
    for key, tensor in tensors:
        if transform is not None:
            tensor = transform(key, tensor)
        if dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(dtype)
        tensor = tensor.to(device)
        owner_name, _, leaf = key.rpartition(".")
        owner = module.get_submodule(owner_name) if owner_name else module
        if leaf in owner._parameters:
            owner._parameters[leaf] = torch.nn.Parameter(tensor, requires_grad=False)
        else:
            owner._buffers[leaf] = tensor
    still_meta = [n for n, t in module.state_dict().items() if t.is_meta] if require_complete else []
    if still_meta:
        raise WeightsMismatch(f"weights left unloaded: {', '.join(still_meta[:3])}")
    return module


def load_sharded(
    module: torch.nn.Module,
    folder: Path,
    index_name: str,
    dtype: torch.dtype | None = None,
    device: torch.device | str = "cpu",
) -> torch.nn.Module:
    """Load a sharded safetensors model (index + shards) into a module built on meta."""
    keys = shard_map(folder, index_name)
    files = sorted(set(keys.values()))
    compare_keys(expected_tensors(module), file_tensor_shapes(files, ()), str(folder))
    return assign_tensors(module, iter_safetensors(files), dtype=dtype, device=device)


def load_single(
    module: torch.nn.Module,
    path: Path,
    dtype: torch.dtype | None = None,
    device: torch.device | str = "cpu",
    ignore: tuple[str, ...] = (),
) -> torch.nn.Module:
    """Load one safetensors file into a module built on meta."""
    compare_keys(expected_tensors(module), file_tensor_shapes([Path(path)], ignore), str(path))
    return assign_tensors(module, iter_safetensors([Path(path)], ignore), dtype=dtype, device=device)


def load_torch_checkpoint(
    module: torch.nn.Module,
    path: Path,
    dtype: torch.dtype | None = None,
    device: torch.device | str = "cpu",
    ignore: tuple[str, ...] = (),
    normalize_keys: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None,
) -> torch.nn.Module:
    """Load a `pytorch_model.bin` with `weights_only=True` (never unpickles code) into a meta module.

    `normalize_keys` maps the file's key layout onto the module's (e.g. dropping a `bert.` prefix)
    before the strict key/shape check.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFound(f"missing weight file: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # zip errors, truncated files, forbidden globals
        raise WeightsMismatch(f"{path} cannot be read safely ({type(exc).__name__}); re-download it") from None
    state = {k: v for k, v in state.items() if not _ignored(k, ignore)}
    if normalize_keys is not None:
        state = normalize_keys(state)
    compare_keys(expected_tensors(module), {k: tuple(v.shape) for k, v in state.items()}, str(path))
    return assign_tensors(module, state.items(), dtype=dtype, device=device)
