"""How often each model was built or loaded, and how many batches each ran, in this process.

Tests read these to prove that a model loads once and that a rerun runs no inference; the opt-in
diagnostics readout shows them.
"""

from __future__ import annotations

# Tests read these to prove that a model loads once and that a rerun runs no inference.
LOAD_COUNTS: dict[str, int] = {}
INFERENCE_CALLS: dict[str, int] = {}


def count_load(name: str) -> None:
    LOAD_COUNTS[name] = LOAD_COUNTS.get(name, 0) + 1


def count_inference(name: str) -> None:
    INFERENCE_CALLS[name] = INFERENCE_CALLS.get(name, 0) + 1
