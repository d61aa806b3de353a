"""Which folders a request's components come from. Turbo takes its transformer from the turbo repo and
everything else (text encoders, tokenizers, VAE) from the base repo (facts §1.2). Torch-free."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stepvideo.api import GenerationRequest
from stepvideo.errors import InvalidRequest, WeightsNotFound
from stepvideo.presets import BASE_REPO, PRESETS


@dataclass(frozen=True)
class ModelRoots:
    base: Path  # text encoders, tokenizers, VAE
    transformer: Path
    base_id: str
    transformer_id: str
    revision: str | None

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.base_id, "revision": self.revision, "commit": commit_of(self.base),
            "transformer_id": self.transformer_id, "transformer_commit": commit_of(self.transformer),
            "path": str(self.base), "transformer_path": str(self.transformer),
        }


def commit_of(root: Path) -> str | None:
    """A hub-cache snapshot folder is named after its commit; a plain folder has none."""
    return root.name if root.parent.name == "snapshots" else None


def _components_root(model: str, revision: str | None) -> Path:
    """The folder holding the text encoders, tokenizers and VAE for `model` (for a transformer-only
    model such as turbo: the base repo it was downloaded with)."""
    from stepvideo.hub import resolve_model_dir, resolve_model_roots

    root = resolve_model_dir(model, revision)
    return root if (root / "step_llm").is_dir() else resolve_model_roots(model, revision).components


def resolve_roots(request: GenerationRequest) -> ModelRoots:
    """Never touches the network: everything must already be on disk (WeightsNotFound says what to run)."""
    from stepvideo.hub import resolve_model_dir

    if request.revision and Path(request.model).expanduser().is_dir():
        raise InvalidRequest(f"--revision applies to hub repo ids; {request.model} is a local folder")
    model_root = resolve_model_dir(request.model, request.revision)
    model_is_full = (model_root / "step_llm").is_dir()
    preset_repo = PRESETS[request.preset].transformer_repo
    if request.transformer_model:
        transformer_id = request.transformer_model
        transformer = resolve_model_dir(request.transformer_model)
    elif preset_repo != BASE_REPO and model_is_full:
        # The preset wants its distilled transformer; the model given supplies everything else.
        transformer_id = preset_repo
        try:
            transformer = resolve_model_dir(preset_repo)
        except WeightsNotFound as exc:
            raise WeightsNotFound(f"--preset {request.preset} needs its own transformer: {exc}; "
                                  "or pass --transformer-model FOLDER") from None
    else:
        transformer_id, transformer = request.model, model_root
    base = model_root if model_is_full else _components_root(request.model, request.revision)
    return ModelRoots(base, transformer, request.model, transformer_id, request.revision)
