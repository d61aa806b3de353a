"""The stages of benchmarks/gpu_acceptance.py, one module each (`run(ctx)`), plus what they share
(`common`) and the JSON keys they promise (`schema`)."""
