"""Ranking a collection against a query vector: in memory, or through a saved backend index."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lookalike.core import backends
from lookalike.core.cache import Embedder
from lookalike.core.settings import get_settings
from lookalike.core.vectors import top_k
from lookalike.search.folders import Collection


@dataclass
class SearchResult:
    path: Path
    score: float
    rank: int


def search_by_style(
    image: np.ndarray, collection: Collection, embedder: Embedder, k: int = 5
) -> list[SearchResult]:
    """Embed one query image and rank the collection by cosine similarity of style vectors."""
    query = embedder.embed([embedder.prepare(image)])[0]
    return rank(collection, query, k)


def rank(
    collection: Collection, query: np.ndarray, k: int, index: backends.VectorIndex | None = None
) -> list[SearchResult]:
    """The ``k`` best matches, through ``index`` (a ``backends.positional_index`` of the collection) if given."""
    if index is None:
        indices, scores = top_k(collection.vectors, query, k, normalized=True)
    else:
        indices, scores = index.search(query, k)
    return [
        SearchResult(path=collection.paths[i], score=float(s), rank=r + 1)
        for r, (i, s) in enumerate(zip(indices, scores, strict=True))
    ]


def index_location(collection: Collection, backend: str) -> Path:
    """Where a collection's backend index is saved: next to its cache, one folder per folder, model and backend."""
    name = hashlib.sha256(f"{collection.folder}|{collection.model_id}".encode()).hexdigest()[:16]
    return get_settings().cache_dir / "indexes" / f"{name}-{backend}"


def sync_index(
    collection: Collection, /, backend: str = "exact", location: Path | None = None, **options
) -> backends.VectorIndex:
    """Open the collection's saved ``backend`` index (or make one), add new vectors, drop gone ones, save.

    Ids are derived from content keys, so only changed images are added or removed: nothing is rebuilt.
    ``options`` go to the backend (for milvus: ``uri``, ``collection``, ...; unset ones keep the saved ones).
    """
    location = location or index_location(collection, backend)
    ids, first = np.unique(backends.keys_to_ids(collection.keys), return_index=True)
    dim = collection.vectors.shape[1]
    saved = (location / backends.META_FILE).exists() and backends.read_meta(location)["dim"] == dim
    if backend == "milvus":
        options = {key: value for key, value in options.items() if value}  # unset CLI options keep the saved ones
        if not saved:
            options.setdefault("uri", str(location / "milvus.db"))
            options.setdefault("collection", "lookalike_" + location.name.replace("-", "_"))
        options["model_id"] = collection.model_id  # a collection of another model is refused, never mixed
    if saved:
        index = backends.load_index(location, **options)
    else:
        if backend == "faiss":
            options.setdefault("expected_size", len(ids))
        location.mkdir(parents=True, exist_ok=True)
        index = backends.make_index(backend, dim, **options)
    present = index.ids()
    new = ~np.isin(ids, present)
    index.remove(np.setdiff1d(present, ids))
    index.add(ids[new], collection.vectors[first[new]])
    index.save(location)
    return index


def rank_with_index(
    collection: Collection, index: backends.VectorIndex, query: np.ndarray, k: int
) -> list[SearchResult]:
    """``rank`` through a backend index (files with identical content share one entry)."""
    ids, scores = index.search(query, k)
    where = dict(zip(backends.keys_to_ids(collection.keys).tolist(), range(len(collection)), strict=False))
    found = [(where[i], s) for i, s in zip(ids.tolist(), scores.tolist(), strict=True) if i in where]
    return [SearchResult(path=collection.paths[i], score=float(s), rank=r + 1) for r, (i, s) in enumerate(found)]

