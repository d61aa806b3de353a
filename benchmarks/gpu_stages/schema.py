"""The JSON keys each stage writes, on the GPU and in --cpu-smoke alike (a figure the CPU cannot
measure is null, never absent). The orchestrator reports any key a stage left out, and the CI smoke
test fails on it, so the GPU script cannot drift from what its readers expect."""

from __future__ import annotations

from typing import Any

STAGES = ("environment", "dit_block", "streamer", "vae_decode", "gpu_tests")

TOP_KEYS: dict[str, tuple[str, ...]] = {
    "environment": ("python", "torch", "cuda", "cudnn", "packages", "importable", "cpu_capability",
                    "cuda_available", "device_name", "compute_capability", "total_memory_bytes", "bf16_supported",
                    "driver", "host_cache_release", "sdpa"),
    "dit_block": ("dim", "video_tokens", "text_tokens", "dtype", "cases"),
    "streamer": ("blocks", "dim", "dtype", "attention_backends", "balanced_card_bytes", "runs", "host_cache_release"),
    "vae_decode": ("latent", "dtype", "cases"),
    "gpu_tests": ("command", "returncode", "counts", "tests", "output_tail"),
}

# Stages that write a list of records: the list's key and every record's keys.
RECORD_KEYS: dict[str, tuple[str, tuple[str, ...]]] = {
    "dit_block": ("cases", (
        "case", "batch", "ff_chunk_tokens", "cudnn_first", "error", "block_seconds", "block_tflops",
        "self_attention_seconds", "self_attention_tflops", "flop_share_self_attention", "peak_activation_bytes",
        "alloc_retries")),
    "streamer": ("runs", (
        "profile", "size", "quantization", "resident_blocks", "offload", "cfg_batch", "ff_chunk_tokens", "error",
        "tokens", "batch_per_forward", "forwards_per_step", "warm_seconds", "seconds_per_step",
        "seconds_per_block_per_row", "ratio_to_bf16", "peak_allocated_bytes", "peak_reserved_bytes",
        "alloc_retries", "nvml_used_start_bytes", "nvml_used_peak_bytes", "nvml_problem", "vm_hwm_bytes",
        "host_store_bytes", "block_bytes", "h2d_bytes_per_step", "block_loads", "peak_materialised_blocks",
        "page_cache_evicted_bytes", "predicted")),
    "vae_decode": ("cases", (
        "case", "tile", "overlap", "error", "seconds", "peak_allocated_bytes", "peak_reserved_bytes",
        "alloc_retries", "estimate_bytes", "peak_over_estimate", "largest_conv3d_input_elements",
        "conv3d_over_2_31", "conv3d_spot_checks", "conv3d_spot_check_max_error", "output_finite")),
}


def blank(stage: str, **known: Any) -> dict[str, Any]:
    """A record with every key of `stage`'s records, null unless given (a failed or skipped run)."""
    _, keys = RECORD_KEYS[stage]
    return {**dict.fromkeys(keys), **known}


def missing_keys(stage: str, result: dict[str, Any]) -> list[str]:
    """Keys the stage should have written and did not (`list[i].key` for records)."""
    missing = [k for k in TOP_KEYS.get(stage, ()) if k not in result]
    if stage in RECORD_KEYS:
        list_key, keys = RECORD_KEYS[stage]
        for i, record in enumerate(result.get(list_key) or []):
            missing += [f"{list_key}[{i}].{k}" for k in keys if k not in record]
    return missing
