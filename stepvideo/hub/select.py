"""Which files of a repo a download takes. Pure functions over repo paths (fnmatch, `*` spans `/`)."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from typing import TypeVar

from stepvideo.hub.safety import path_problem

# What the engine reads: configs, tokenizers, safetensors weights and the CLIP text encoder, which is
# published only as a (weights_only-loadable) pytorch_model.bin. README, images and docs are skipped.
DEFAULT_PATTERNS = (
    "*.json",
    "*.safetensors",
    "*.model",  # SentencePiece (step_llm/step1_chat_tokenizer.model)
    "*tokenizer*/*",
    "*vocab*.txt",
    "*merges.txt",
    "hunyuan_clip/clip_text_encoder/pytorch_model.bin",
)
# The closed-source attention op for step_llm: native code, so never fetched without an opt-in.
LIB_PATTERNS = ("lib/*.so", "lib/*.so.*")
# The older z=16 VAE that this DiT does not use (1 GB).
SKIPPED = ("vae/vae.safetensors",)
# What a transformer-only repo (turbo) takes from the base repo.
COMPONENT_PREFIXES = ("step_llm/", "hunyuan_clip/", "vae/", "lib/")

T = TypeVar("T")


def wanted(path: str, include_lib: bool = False) -> bool:
    # `*` spans `/` here, so "*tokenizer*/*" would match "tokenizer/../../x": a path that is not plain
    # is never wanted (RemoteFile already refuses such a listing with a one-line error; this is the
    # second lock on the same door).
    if path_problem(path):
        return False
    if any(fnmatch.fnmatchcase(path, p) for p in SKIPPED):
        return False
    patterns = DEFAULT_PATTERNS + (LIB_PATTERNS if include_lib else ())
    return any(fnmatch.fnmatchcase(path, p) for p in patterns)


def select(files: Iterable[T], include_lib: bool = False, components_only: bool = False) -> list[T]:
    """Files (anything with a `.path`) a download takes; `components_only` keeps the parts a
    transformer-only model borrows from the base repo (encoders, tokenizers, VAE, lib)."""
    out = []
    for f in files:
        path = f.path  # type: ignore[attr-defined]
        if not wanted(path, include_lib):
            continue
        if components_only and not path.startswith(COMPONENT_PREFIXES):
            continue
        out.append(f)
    return out


def is_transformer_only(paths: Iterable[str]) -> bool:
    """A repo with a transformer/ and no text encoder of its own (the turbo repo)."""
    paths = list(paths)
    return any(p.startswith("transformer/") for p in paths) and not any(p.startswith("step_llm/") for p in paths)
