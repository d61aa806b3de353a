"""A model downloaded by the model manager generates a video (tiny model, CPU): the turbo repo plus
the base components it fetches, found by repo id through the cache, offline."""

from __future__ import annotations

import pytest

from stepvideo import hub
from stepvideo.api import GenerationRequest
from tests.fixtures import local_hub as hub_fixtures

stepvideo_hub = hub_fixtures.stepvideo_hub  # a pytest fixture, bound by name so pytest finds it


@pytest.mark.parametrize("preset", ["standard", "turbo"])
def test_downloaded_model_generates_a_video(stepvideo_hub, sandbox, tmp_path, monkeypatch, preset):
    from stepvideo.engine.pipeline import generate

    monkeypatch.setenv("STEPVIDEO_MODELS_DIR", str(tmp_path / "models"))
    if preset == "turbo":
        hub.download("turbo")  # fetches the base repo's encoders, tokenizers and VAE too, not its DiT
    else:
        hub.download("base", "v1.0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # generation needs no network
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    out = sandbox / "videos" / f"{preset}.mp4"
    request = GenerationRequest(
        prompt="a paper boat on a pond", model=hub.BASE_REPO, preset=preset,
        revision="v1.0" if preset == "standard" else None,
        height=32, width=32, frames=17, steps=2, output=str(out),
    )
    result = generate(request)
    assert out.is_file() and out.stat().st_size > 0 and result.frames == 17
