"""Test helpers that ship with the engine: `make_tiny_model` (a random-weight model in the exact hub
layout, also the CLI verb `make-tiny-model`) and the tiny tokenizers it writes."""
