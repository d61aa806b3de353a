"""Quantization: accuracy against bf16, what gets quantized, the on-disk cache, kernel fallback."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from memory_toy import ToyDiT, make_toy, toy_inputs
from optimum.quanto import QTensor, qtypes
from safetensors.torch import save_file

from stepvideo.errors import InvalidRequest, WeightsMismatch, WeightsNotFound
from stepvideo.memory import quantize as qz

# Relative L2 error of the toy DiT's output vs bf16 (measured: qint8 0.9%, qfloat8 3.5%, qint4 8%).
TOLERANCE = {"qint8": 0.02, "qfloat8": 0.06, "qint4": 0.15}


def rel_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


@pytest.mark.parametrize("qtype", ["qint8", "qfloat8", "qint4"])
def test_quantized_output_close_to_bf16(qtype):
    x, t = toy_inputs()
    ref = make_toy()(x, t)
    model = make_toy()
    qmap = qz.quantize_model(model, qtype, qz.DIT_POLICY)
    err = rel_error(model(x, t), ref)
    assert err < TOLERANCE[qtype], f"{qtype}: {err:.4f}"
    assert err > 0  # it really quantized something
    assert {v["weights"] for v in qmap.values()} == {qtypes[qtype].name}


def test_policy_leaves_modulation_norms_and_projections_alone():
    model = make_toy()
    qmap = qz.quantize_model(model, "qint8", qz.DIT_POLICY)
    assert "adaln_single.linear" not in qmap and "proj_out" not in qmap and "pos_embed" not in qmap
    assert len(qmap) == 4 * 4  # wqkv, wo, ff.0, ff.2 per block
    assert isinstance(model.transformer_blocks[0].wqkv.weight, QTensor)
    assert not isinstance(model.adaln_single.linear.weight, QTensor)
    assert model.transformer_blocks[0].norm1.weight.dtype == torch.bfloat16
    assert model.transformer_blocks[0].scale_shift_table.dtype == torch.bfloat16
    llm_names = [n for n in ("tok_embeddings.word_embeddings", "transformer.layers.0.attention.wqkv")
                 if qz.STEP_LLM_POLICY.selects(n)]
    assert llm_names == ["transformer.layers.0.attention.wqkv"]


def _write_bf16_shards(model: torch.nn.Module, folder) -> list:
    """The model's bf16 weights as two safetensors shards (like the hub's sharded files)."""
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    keys = sorted(state)
    half = len(keys) // 2
    files = [folder / "model-00001.safetensors", folder / "model-00002.safetensors"]
    save_file({k: state[k] for k in keys[:half]}, str(files[0]))
    save_file({k: state[k] for k in keys[half:]}, str(files[1]))
    return files


def _meta_toy() -> ToyDiT:
    with torch.device("meta"):
        return ToyDiT().to(torch.bfloat16)


def _tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.state_dict().items()}


@pytest.mark.parametrize("qtype", ["qint8", "qfloat8", pytest.param("qint4", marks=pytest.mark.slow)])
def test_cache_round_trip_is_bit_identical(tmp_path, qtype):
    if qtype == "qint4" and qz.kernel_problem("qint4", "cpu") is not None:
        pytest.skip("quanto's C++ extension cannot be built here (no compiler)")
    files = _write_bf16_shards(make_toy(), tmp_path)
    directory = qz.cache_dir("toy", "rev1", qtype, root=tmp_path / "cache")
    # A tiny shard budget forces several output files (flushes happen between modules only).
    qz.build_cache(_meta_toy(), files, qtype, directory, qz.DIT_POLICY, source_id="rev1", shard_bytes=200_000)
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["qtype"] == qtype and len(manifest["files"]) > 1
    assert not list(directory.parent.glob(".*"))  # temporary folder renamed away

    in_memory = make_toy()
    qz.quantize_model(in_memory, qtype, qz.DIT_POLICY)
    loaded = qz.load_cache(_meta_toy(), directory)
    again = qz.load_cache(_meta_toy(), directory)
    x, t = toy_inputs()
    assert torch.equal(loaded(x, t), in_memory(x, t))
    assert torch.equal(again(x, t), loaded(x, t))
    a, b = _tensors(in_memory), _tensors(loaded)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert isinstance(loaded.transformer_blocks[1].ff[0].weight, QTensor)


def test_load_or_build_builds_once(tmp_path, monkeypatch):
    files = _write_bf16_shards(make_toy(), tmp_path)
    calls = []
    real_build = qz.build_cache
    monkeypatch.setattr(qz, "build_cache", lambda *a, **k: calls.append(1) or real_build(*a, **k))
    m1, q1 = qz.load_or_build(_meta_toy(), files, "qint8", "toy", qz.DIT_POLICY, source_id="abc", root=tmp_path)
    m2, q2 = qz.load_or_build(_meta_toy(), files, "qint8", "toy", qz.DIT_POLICY, source_id="abc", root=tmp_path)
    assert calls == [1] and q1 == q2 == "qint8"
    x, t = toy_inputs()
    assert torch.equal(m1(x, t), m2(x, t))


def test_broken_caches_are_reported(tmp_path):
    files = _write_bf16_shards(make_toy(), tmp_path)
    with pytest.raises(WeightsNotFound):
        qz.load_cache(_meta_toy(), tmp_path / "nothing")
    directory = qz.build_cache(_meta_toy(), files, "qint8", tmp_path / "c", qz.DIT_POLICY)
    shard = directory / json.loads((directory / "manifest.json").read_text())["files"][0]
    shard.write_bytes(shard.read_bytes()[:-10])
    with pytest.raises(WeightsMismatch, match="truncated"):
        qz.load_cache(_meta_toy(), directory)
    with pytest.raises(WeightsMismatch, match="do not match"):
        qz.build_cache(ToyDiT(dim=256, blocks=5).to("meta"), files, "qint8", tmp_path / "d", qz.DIT_POLICY)
    with pytest.raises(InvalidRequest, match="allowed"):
        qz.cache_dir("toy", "x", "int3")


def test_missing_kernel_falls_back_to_qint8_with_one_log_line(monkeypatch, caplog):
    monkeypatch.setattr(qz, "_probe_results", {})
    monkeypatch.setattr(qz, "_probe", lambda q, d: "RuntimeError: Error building extension 'quanto_cpp'")
    with caplog.at_level(logging.WARNING, logger="stepvideo.memory.quantize"):
        assert qz.resolve_qtype("qint4", "cpu") == "qint8"
    assert len(caplog.records) == 1 and "falling back to qint8" in caplog.records[0].getMessage()
    assert qz.resolve_qtype("qint8", "cpu") == "qint8"  # never probed: no kernel needed


def test_qfloat8_probe_passes_on_cpu():
    assert qz.kernel_problem("qfloat8", "cpu") is None
