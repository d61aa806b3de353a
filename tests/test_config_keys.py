"""The config.json key rules shared by all model configs (stepvideo/models/config_keys.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from stepvideo.errors import ConfigError
from stepvideo.models.clip import CLIPConfig
from stepvideo.models.config_keys import config_values, require_number, require_positive_ints, type_ok
from stepvideo.models.dit import DiTConfig
from stepvideo.models.step_llm import StepLLMConfig
from stepvideo.models.vae import VAEConfig

HUB = Path(__file__).parent / "data" / "hub_configs"


@dataclass(frozen=True)
class Sample:
    width: int = 4
    sizes: tuple[int, ...] = (1, 2)
    eps: float = 1e-5


IGNORED = {"_name": str, "seed": (int, type(None)), "flag": bool}


def test_fields_are_taken_ignored_keys_dropped_and_lists_become_tuples():
    got = config_values("sample", {"width": 8, "sizes": [3, 4], "_name": "x", "seed": None, "flag": True}, Sample, IGNORED)
    assert got == {"width": 8, "sizes": (3, 4)}
    assert Sample(**got) == Sample(width=8, sizes=(3, 4))


def test_unknown_keys_are_rejected_in_one_line_naming_what_is_allowed():
    with pytest.raises(ConfigError) as info:
        config_values("sample", {"width": 8, "zeta": 1, "alpha": 2}, Sample, IGNORED)
    message = str(info.value)
    assert message == (
        "sample config: unknown keys 'alpha', 'zeta'; allowed: _name, eps, flag, seed, sizes, width"
    )
    with pytest.raises(ConfigError, match=r"unknown key 'zeta';"):
        config_values("sample", {"zeta": 1}, Sample)


@pytest.mark.parametrize(
    "key, value",
    [("_name", 3), ("seed", True), ("seed", 1.5), ("flag", 1)],  # bool is not an int, nor 1 a bool
)
def test_ignored_keys_must_have_their_declared_type(key, value):
    with pytest.raises(ConfigError, match=f"{key}=.* has the wrong type; expected") as info:
        config_values("sample", {key: value}, Sample, IGNORED)
    assert "\n" not in str(info.value)


def test_a_non_object_is_rejected():
    with pytest.raises(ConfigError, match="sample config must be a JSON object, got list"):
        config_values("sample", [1, 2], Sample)


def test_type_ok_keeps_bool_and_int_apart():
    assert type_ok(True, bool) and not type_ok(True, int) and not type_ok(True, (int, float))
    assert type_ok(3, (int, float)) and not type_ok(3, bool) and type_ok(None, (int, type(None)))


def test_value_checks_name_the_field_and_the_rule():
    with pytest.raises(ConfigError, match=r"^sample config: width must be a positive integer, got True$"):
        require_positive_ints("sample", Sample(width=True), ("width",))
    require_positive_ints("sample", Sample(), ("width",))
    with pytest.raises(ConfigError, match=r"eps must be a positive number, got 0"):
        require_number("sample", Sample(eps=0), "eps", 0)
    with pytest.raises(ConfigError, match=r"eps must be a number in \[0, 1\), got 1"):
        require_number("sample", Sample(eps=1), "eps", 0, 1, low_inclusive=True)
    require_number("sample", Sample(eps=0), "eps", 0, 1, low_inclusive=True)


@pytest.mark.parametrize(
    "cls, path, label",
    [
        (DiTConfig, "transformer/config.json", "transformer"),
        (StepLLMConfig, "step_llm/config.json", "step_llm"),
        (CLIPConfig, "hunyuan_clip/clip_text_encoder/config.json", "hunyuan_clip"),
        (VAEConfig, None, "vae"),
    ],
)
def test_every_model_config_uses_the_shared_rule(cls, path, label):
    published = json.loads((HUB / path).read_text()) if path else {}
    assert cls.from_dict(published) == cls()  # the published file (VAE: none ships) gives the defaults
    with pytest.raises(ConfigError) as info:
        cls.from_dict({**published, "not_a_key": 1})
    message = str(info.value)
    assert message.startswith(f"{label} config: unknown key 'not_a_key'; allowed: ") and "\n" not in message
    with pytest.raises(ConfigError, match=f"^{label} config must be a JSON object"):
        cls.from_dict("nope")
