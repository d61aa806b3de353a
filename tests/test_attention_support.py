"""GPUs without fused bf16 attention are refused up front; the SDPA backend order is one pure function."""

from __future__ import annotations

import pytest

from stepvideo.errors import UnsupportedGpu
from stepvideo.memory import planner
from stepvideo.memory.attention_support import (
    attention_backends,
    bf16_attention_problem,
    cudnn_attention_enabled,
    parse_capability,
)

GiB = 1 << 30


@pytest.mark.parametrize("capability", ["7.5", "7.0", (6, 1)])
def test_before_ampere_there_is_no_bf16_fused_attention(capability):
    problem = bf16_attention_problem(capability, "Tesla T4")
    assert problem is not None and problem.startswith("Tesla T4 (compute capability ") and "\n" not in problem


@pytest.mark.parametrize("capability", ["8.0", "8.6", "8.9", "9.0", (12, 0), None])
def test_ampere_and_newer_or_unknown_are_fine(capability):
    assert bf16_attention_problem(capability) is None


def test_parse_capability():
    assert parse_capability("8.9") == (8, 9) and parse_capability((9, 0)) == (9, 0) and parse_capability("10") == (10, 0)


def test_the_planner_refuses_an_old_gpu_in_one_line_whatever_its_memory():
    p = planner.plan(544, 992, 204, cfg=9.0, gpu_bytes=80 * GiB, ram_bytes=256 * GiB, capability="7.0")
    assert not p.fits and p.suggestions == () and "compute capability 7.0" in p.refusal() and "\n" not in p.refusal()
    with pytest.raises(UnsupportedGpu, match="flash or memory-efficient attention"):
        planner.require_fit(p)
    fine = planner.plan(544, 992, 204, cfg=9.0, gpu_bytes=80 * GiB, ram_bytes=256 * GiB, capability="8.0")
    assert fine.fits and fine.unsupported == ""


def test_backend_order_is_flash_first_unless_cudnn_is_enabled_on_hopper():
    assert attention_backends("8.9") == ("flash", "efficient")
    assert attention_backends("9.0") == ("flash", "efficient")  # not measured yet: flash stays the default
    assert attention_backends("9.0", cudnn_first=True) == ("cudnn", "flash", "efficient")
    assert attention_backends("8.9", cudnn_first=True) == ("flash", "efficient")  # cuDNN-first is for sm90+
    assert "math" not in attention_backends("12.0", cudnn_first=True)


def test_cudnn_setting():
    assert cudnn_attention_enabled({"STEPVIDEO_CUDNN_ATTENTION": "1"})
    assert not cudnn_attention_enabled({"STEPVIDEO_CUDNN_ATTENTION": "0"}) and not cudnn_attention_enabled({})
