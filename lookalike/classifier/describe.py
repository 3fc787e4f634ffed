"""What a saved classifier knows, read from its ``metadata.json``: for the page's banner and its one-line summary."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Metadata = Mapping[str, Any]


def runs_on_random_weights(meta: Metadata) -> bool:
    """True for a model trained on a frozen, randomly initialised backbone (``LOOKALIKE_WEIGHTS=random`` when it
    was trained): its predictions are placeholders. A model trained from scratch (``"scratch"``) learnt all its
    weights, and one trained on real pretrained weights keeps them, whatever ``LOOKALIKE_WEIGHTS`` says now."""
    return meta.get("weights") == "random"
