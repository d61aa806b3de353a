"""Which folders a request's components come from. Turbo takes its transformer from the turbo repo and
everything else (text encoders, tokenizers, VAE) from the base repo (facts §1.2). Torch-free."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .api import GenerationRequest
from .errors import InvalidRequest, WeightsNotFound
from .presets import BASE_REPO, PRESETS


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


def resolve_roots(request: GenerationRequest) -> ModelRoots:
    """Never touches the network: everything must already be on disk (WeightsNotFound says what to run)."""
    from .hub import resolve_model_dir, resolve_model_roots

    if request.revision and Path(request.model).expanduser().is_dir():
        raise InvalidRequest(f"--revision applies to hub repo ids; {request.model} is a local folder")
    folders = resolve_model_roots(request.model, request.revision)
    transformer, transformer_id = folders.transformer, request.model
    turbo_repo = PRESETS[request.preset].transformer_repo
    if request.transformer_model:
        transformer_id = request.transformer_model
        transformer = resolve_model_dir(request.transformer_model)
    elif turbo_repo != BASE_REPO and folders.transformer == folders.components:
        # The preset wants the distilled transformer, and the model given is a full (base) model.
        transformer_id = turbo_repo
        try:
            transformer = resolve_model_dir(turbo_repo)
        except WeightsNotFound as exc:
            raise WeightsNotFound(f"--preset {request.preset} needs its own transformer: {exc}; "
                                  "or pass --transformer-model FOLDER") from None
    return ModelRoots(folders.components, transformer, request.model, transformer_id, request.revision)
