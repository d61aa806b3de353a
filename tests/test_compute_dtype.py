"""The CPU compute dtype: fp32 unless the CPU runs bf16 natively; GPUs keep bf16; an override for tests."""

from __future__ import annotations

import pytest

from stepvideo.engine import compute_dtype
from stepvideo.engine.compute_dtype import choose_cpu_dtype, compute_dtype_for, read_cpu_flags
from stepvideo.errors import InvalidRequest

EPYC_FLAGS = ("fpu", "sse4_2", "avx", "avx2", "fma")  # an AMD EPYC without AVX-512
SAPPHIRE_RAPIDS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def test_without_native_bf16_the_cpu_computes_in_fp32():
    choice = choose_cpu_dtype(EPYC_FLAGS)
    assert choice.name == "float32" and "no native bf16" in choice.reason


@pytest.mark.parametrize("flags", [("avx512f", "avx512_bf16"), ("amx_bf16",), SAPPHIRE_RAPIDS])
def test_with_avx512_bf16_or_amx_the_cpu_computes_in_bf16(flags):
    assert choose_cpu_dtype(flags).name == "bfloat16"


def test_avx512_without_its_bf16_extension_is_not_enough():
    assert choose_cpu_dtype(("avx512f", "avx512bw", "avx512vl")).name == "float32"


@pytest.mark.parametrize("flags, override, want", [
    (EPYC_FLAGS, "bf16", "bfloat16"), (SAPPHIRE_RAPIDS, "fp32", "float32"), (SAPPHIRE_RAPIDS, " BF16 ", "bfloat16"),
])
def test_the_override_forces_either_branch(flags, override, want):
    choice = choose_cpu_dtype(flags, override)
    assert choice.name == want and "STEPVIDEO_CPU_DTYPE" in choice.reason


def test_a_bad_override_names_what_is_allowed():
    with pytest.raises(InvalidRequest, match=r"STEPVIDEO_CPU_DTYPE='fp16' is not allowed; allowed: bf16, fp32"):
        choose_cpu_dtype(EPYC_FLAGS, "fp16")


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: X\nflags\t\t: fpu avx2 avx512_bf16\n\nprocessor\t: 1\n")
    assert read_cpu_flags(info) == {"fpu", "avx2", "avx512_bf16"}
    assert read_cpu_flags(tmp_path / "missing") == frozenset()  # unreadable: fp32, always safe


def test_gpus_keep_bf16_whatever_the_cpu(monkeypatch):
    monkeypatch.setattr(compute_dtype, "read_cpu_flags", lambda: frozenset(EPYC_FLAGS))
    monkeypatch.delenv("STEPVIDEO_CPU_DTYPE", raising=False)
    assert compute_dtype_for("cuda").name == "bfloat16"
    assert compute_dtype_for("cpu").name == "float32"
    monkeypatch.setenv("STEPVIDEO_CPU_DTYPE", "bf16")
    assert compute_dtype_for("cpu").name == "bfloat16"
