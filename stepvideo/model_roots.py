"""Which folders a request's components come from. Turbo takes its transformer from the turbo repo and
everything else (text encoders, tokenizers, VAE) from the base repo (facts §1.2). Torch-free."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .api import GenerationRequest
from .presets import BASE_REPO, PRESETS, TURBO_REPO


@dataclass(frozen=True)
class ModelRoots:
    base: Path
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


def locate(model: str, revision: str | None) -> Path:
    path = Path(model).expanduser()
    if path.is_dir():
        return path.resolve()
    from .hub import resolve_model_dir

    return resolve_model_dir(model, revision)


def resolve_roots(request: GenerationRequest) -> ModelRoots:
    base_id = request.model
    transformer_id = request.transformer_model
    if base_id == TURBO_REPO:  # the turbo repo has no encoders or VAE of its own
        base_id, transformer_id = BASE_REPO, transformer_id or TURBO_REPO
    if transformer_id is None:
        preset_repo = PRESETS[request.preset].transformer_repo
        transformer_id = base_id if preset_repo == BASE_REPO else preset_repo
    base = locate(base_id, request.revision)
    transformer = base if transformer_id == base_id else locate(transformer_id, None)
    return ModelRoots(base, transformer, base_id, transformer_id, request.revision)
