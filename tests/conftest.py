"""Test-wide isolation: no test touches the user's real folders, the network, or a real hub."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

# Must happen before anything imports huggingface_hub or Qt (both read the environment at import).
_SANDBOX = Path(tempfile.mkdtemp(prefix="stepvideo-tests-"))
for _name in ("home", "config", "data", "cache", "state", "runtime"):
    (_SANDBOX / _name).mkdir()
os.environ["HOME"] = str(_SANDBOX / "home")
os.environ["XDG_CONFIG_HOME"] = str(_SANDBOX / "config")
os.environ["XDG_DATA_HOME"] = str(_SANDBOX / "data")
os.environ["XDG_CACHE_HOME"] = str(_SANDBOX / "cache")
os.environ["XDG_STATE_HOME"] = str(_SANDBOX / "state")
os.environ["XDG_RUNTIME_DIR"] = str(_SANDBOX / "runtime")
os.chmod(_SANDBOX / "runtime", 0o700)
os.environ["HF_HOME"] = str(_SANDBOX / "cache" / "huggingface")
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_ENDPOINT"] = "http://127.0.0.1:9"  # nothing listens there: no test reaches the internet
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
for _var in ("STEPVIDEO_CONFIG_DIR", "STEPVIDEO_DATA_DIR", "STEPVIDEO_LOG_DIR", "STEPVIDEO_VIDEOS_DIR", "STEPVIDEO_CACHE_DIR",
             "HF_HUB_OFFLINE"):
    os.environ.pop(_var, None)
os.environ.pop("DBUS_SESSION_BUS_ADDRESS", None)  # no test notifies the real desktop (they start their own bus)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pytest  # noqa: E402


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:  # torch missing in a UI-only environment
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """Per-test app folders under tmp_path (config, data, logs, videos, cache)."""
    for name in ("config", "data", "log", "videos", "cache"):
        (tmp_path / name).mkdir()
        monkeypatch.setenv(f"STEPVIDEO_{name.upper()}_DIR", str(tmp_path / name))
    return tmp_path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A tiny random Step-Video-T2V repo in the hub layout, made once per test session (read-only!)."""
    from stepvideo.testing.tiny_model import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny-model") / "stepvideo-t2v")


@pytest.fixture(scope="session")
def tiny_turbo_model(tmp_path_factory):
    """A tiny turbo repo: a transformer only, like stepfun-ai/stepvideo-t2v-turbo."""
    from stepvideo.testing.tiny_model import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny-turbo") / "stepvideo-t2v-turbo", turbo=True)



@pytest.fixture(scope="session")
def tiny_ti2v_model(tmp_path_factory):
    """A tiny random Step-Video-TI2V repo (image-to-video) in the hub layout (read-only!)."""
    from stepvideo.testing.tiny_model import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny-ti2v") / "stepvideo-ti2v", ti2v=True)
