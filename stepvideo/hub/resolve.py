"""Model name → folder on disk, for the pipeline. Never touches the network (works with
HF_HUB_OFFLINE=1 or no network at all); a model that is not there raises WeightsNotFound naming it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from stepvideo.engine import layout
from stepvideo.errors import WeightsNotFound
from stepvideo.hub.cache import REPO_ID_RE, RepoCache, cache_root
from stepvideo.presets import BASE_REPO, TI2V_REPO, TURBO_REPO

ALIASES = {"base": BASE_REPO, "turbo": TURBO_REPO, "ti2v": TI2V_REPO}

COMPONENT_FILES = (*layout.ENCODER_FILES, *layout.VAE_FILES)


@dataclass(frozen=True)
class ModelFolders:
    """Where each part of a model comes from. For the base model both are the same folder; for
    turbo the transformer comes from the turbo repo and the text encoders, tokenizers and VAE
    from the base repo (the turbo repo ships only a distilled transformer)."""

    transformer: Path  # holds transformer/ (and scheduler/, model_index.json when published)
    components: Path  # holds step_llm/, hunyuan_clip/, vae/


def canonical_model(model: str) -> str:
    return ALIASES.get(model, model)


def looks_like_path(model: str) -> bool:
    """A folder, not a repo id (those are `name` or `owner/name`)."""
    return model.startswith(("/", "./", "../", "~", ".")) or model.count("/") > 1 or "\\" in model


def resolve_model_dir(model: str, revision: str | None = None, cache_dir: str | os.PathLike | None = None) -> Path:
    """A local folder → itself; a repo id (or alias base/turbo) → its snapshot folder in the cache.

    `revision` is a branch, tag or commit (default main). Raises WeightsNotFound, naming the model
    and what to run, when it is not downloaded, or naming the first missing file of a download
    that did not finish.
    """
    if not isinstance(model, str) or not model.strip():
        raise WeightsNotFound("no model given; name a repo id (stepfun-ai/stepvideo-t2v) or a model folder")
    local = Path(model).expanduser()
    if local.is_dir():
        return local.resolve()
    if looks_like_path(model) or not REPO_ID_RE.match(canonical_model(model)):
        raise WeightsNotFound(f"model folder {model} does not exist")
    repo_id = canonical_model(model)
    repo = RepoCache(cache_root(cache_dir), repo_id)
    commit = repo.resolve_local(revision)
    rev_text = revision or "main"
    if commit is None:
        raise WeightsNotFound(
            f"model {repo_id} (revision {rev_text}) is not downloaded in {repo.root}; "
            f"run: stepvideo models download {repo_id}" + (f" --revision {revision}" if revision else "")
        )
    snapshot = repo.snapshot(commit)
    manifest = repo.read_manifest(commit) or {}
    missing = [p for p in manifest.get("files", []) if not (snapshot / p).is_file()]
    if missing:
        raise WeightsNotFound(
            f"model {repo_id} (revision {rev_text}) is incomplete: {missing[0]} is missing"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            + f"; run: stepvideo models download {repo_id}" + (f" --revision {revision}" if revision else "")
        )
    return snapshot


def _components_source(model: str, revision: str | None, cache_dir) -> tuple[str, str | None]:
    """(repo, revision) the text encoders and VAE come from for a transformer-only model."""
    repo_id = canonical_model(model)
    if REPO_ID_RE.match(repo_id) and not Path(model).expanduser().is_dir():
        repo = RepoCache(cache_root(cache_dir), repo_id)
        commit = repo.resolve_local(revision)
        source = (repo.read_manifest(commit) or {}).get("components_from") if commit else None
        if isinstance(source, dict) and source.get("repo") and source.get("commit"):
            return source["repo"], source["commit"]
    return BASE_REPO, None


def _require(root: Path, files: tuple[str, ...], what: str) -> None:
    for rel in files:
        if not (root / rel).is_file():
            raise WeightsNotFound(f"{what} is missing {rel} (looked in {root})")


def resolve_model_roots(
    model: str, revision: str | None = None, cache_dir: str | os.PathLike | None = None
) -> ModelFolders:
    """Folders for the transformer and for the other components (encoders, tokenizers, VAE).

    A folder (or snapshot) that holds step_llm/ serves both; otherwise (turbo) the components come
    from the base repo that was downloaded with it (recorded at download time), else the cached
    base repo's main. Every file the engine needs is checked, so a gap is named before loading.
    """
    root = resolve_model_dir(model, revision, cache_dir)
    _require(root, layout.TRANSFORMER_FILES, f"model {model}")
    if (root / "step_llm").is_dir():
        components = root
    else:
        source_repo, source_rev = _components_source(model, revision, cache_dir)
        try:
            components = resolve_model_dir(source_repo, source_rev, cache_dir)
        except WeightsNotFound as exc:
            raise WeightsNotFound(
                f"model {model} has only a transformer; its text encoders and VAE come from {source_repo}: {exc}"
            ) from None
    _require(components, COMPONENT_FILES, f"model {model}'s components")
    return ModelFolders(transformer=root, components=components)
