"""What a query is matched by: the VAE's latent (the default, and the tool's purpose) or pretrained features.

Both give one vector per catalog item, kept in the shared embedding cache under their own model id, and one
vector per query; the page and the command line rank both through the same vector index interface
(``lookalike.core.backends.positional_index``). Each mode carries its measured P@10 by class, read from the
VAE's ``metadata.json`` where ``vae.py evaluate --data clothing-photos --baselines --record`` wrote it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lookalike.core.progress import Progress
from lookalike.datasets.catalog import Catalog
from lookalike.vae.checkpoints import Checkpoint
from lookalike.vae.features import FeatureEmbedder, catalog_features
from lookalike.vae.latents import catalog_latents, encode

VAE, FEATURES = "vae", "features"
MATCH_MODES = (VAE, FEATURES)


@dataclass(frozen=True)
class MatchMode:
    key: str  # VAE or FEATURES
    title: str  # for people
    model_id: str  # keys the cache and the index
    p_at_10: float | None  # measured P@10 by class on the clothing photos, where known

    @property
    def label(self) -> str:
        measured = f" · P@10 {self.p_at_10:.2f}" if self.p_at_10 is not None else ""
        return f"{self.title}{measured}"


def recorded(checkpoint: Checkpoint, key: str, model_id: str | None = None) -> float | None:
    """The P@10 by class recorded for ``key`` in the model's metadata (for features: only for that model id)."""
    entry: dict[str, Any] = checkpoint.metadata.get("comparison", {}).get(key, {})
    if model_id is not None and entry.get("model_id") != model_id:
        return None
    value = entry.get("p@10_by_class")
    return float(value) if isinstance(value, int | float) else None


def vae_mode(checkpoint: Checkpoint) -> MatchMode:
    latent = checkpoint.config.latent_dim
    p_at_10 = recorded(checkpoint, VAE)
    if p_at_10 is None and checkpoint.metadata.get("retrieval_metric") == "p@10_by_class":
        p_at_10 = float(checkpoint.metadata["retrieval_precision"])  # measured when the model was trained
    return MatchMode(VAE, f"VAE latent ({latent}-d)", checkpoint.model_id, p_at_10)


def features_mode(checkpoint: Checkpoint, embedder: FeatureEmbedder) -> MatchMode:
    return MatchMode(FEATURES, f"Pretrained features: {embedder.backbone.name}", embedder.model_id,
                     recorded(checkpoint, FEATURES, embedder.model_id))


def catalog_vectors(
    mode: str, checkpoint: Checkpoint, catalog: Catalog, embedder: FeatureEmbedder | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """Every catalog item's vector for ``mode``, from the cache or computed once."""
    if mode == VAE:
        return catalog_latents(checkpoint, catalog, progress=progress)
    if embedder is None:
        raise ValueError("Matching by pretrained features needs a backbone.")
    return catalog_features(embedder, catalog, progress=progress)


def query_vector(
    mode: str, checkpoint: Checkpoint, photo: np.ndarray, prepared: np.ndarray, embedder: FeatureEmbedder | None = None
) -> np.ndarray:
    """The query's vector for ``mode``: the VAE encodes the domain image, a backbone the original photo."""
    if mode == VAE:
        return encode(checkpoint.model, prepared[None])[0]
    if embedder is None:
        raise ValueError("Matching by pretrained features needs a backbone.")
    return embedder.embed_photo(photo)
