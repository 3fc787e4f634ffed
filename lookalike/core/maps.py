"""2-D maps of a collection: a t-SNE cached on disk by content, sampling for large sets, and placing a query.

A query is placed among its nearest neighbours, so a map is never recomputed for a query.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lookalike.core.cache import array_key
from lookalike.core.files import save_npz_atomic
from lookalike.core.settings import get_settings
from lookalike.core.vectors import normalize, top_k

MAP_SAMPLE = 5000


def cached_map(vectors: np.ndarray, model_id: str, root: Path | None = None, seed: int = 0) -> np.ndarray:
    """A 2-D t-SNE of ``vectors`` (n, d), cached on disk by the vectors' content and the model id."""
    vectors = np.asarray(vectors, dtype=np.float32)
    key = hashlib.sha256(f"tsne-v1|{model_id}|{seed}|".encode() + array_key(vectors).encode()).hexdigest()[:24]
    path = (root or get_settings().cache_dir / "maps") / f"{key}.npz"
    try:
        with np.load(path, allow_pickle=False) as data:
            coords = data["coords"]
        if coords.shape == (len(vectors), 2) and np.isfinite(coords).all():
            return coords
    except Exception:
        pass
    coords = project_2d(vectors, seed)
    save_npz_atomic(path, coords=coords)
    return coords


def project_2d(vectors: np.ndarray, seed: int = 0) -> np.ndarray:
    """t-SNE to 2-D (PCA first to 50 dimensions); tiny sets fall back to PCA."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    n = len(vectors)
    if n < 5:
        padded = np.zeros((n, 2), np.float32)
        if n > 1:
            reduced = PCA(n_components=min(2, n), random_state=seed).fit_transform(normalize(vectors))
            padded[:, : reduced.shape[1]] = reduced
        return padded
    reduced = PCA(n_components=min(50, n - 1, vectors.shape[1]), random_state=seed).fit_transform(
        normalize(vectors)
    )
    perplexity = float(min(30.0, max(2.0, (n - 1) / 3)))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed, metric="cosine")
    return tsne.fit_transform(reduced).astype(np.float32)


def place_on_map(coords: np.ndarray, vectors: np.ndarray, query: np.ndarray, k: int = 5) -> tuple[float, float]:
    """Put a new point on an existing map: the similarity-weighted mean of its nearest neighbours."""
    indices, scores = top_k(vectors, query, k)
    weights = np.clip(scores, 1e-6, None) ** 4
    x, y = (coords[indices] * weights[:, None]).sum(axis=0) / weights.sum()
    return float(x), float(y)


def stratified_sample(labels: Sequence[str] | None, n: int, limit: int = MAP_SAMPLE, seed: int = 0) -> np.ndarray:
    """Indices of at most ``limit`` items, drawn in proportion from each label (all items if few)."""
    if n <= limit:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    if labels is None:
        return np.sort(rng.choice(n, limit, replace=False))
    labels_array = np.asarray(labels)
    chosen: list[np.ndarray] = []
    for label in np.unique(labels_array):
        members = np.flatnonzero(labels_array == label)
        share = max(1, round(limit * len(members) / n))
        chosen.append(rng.choice(members, min(share, len(members)), replace=False))
    return np.sort(np.concatenate(chosen))[:limit]


