"""Vector index backends behind one small interface (``base.VectorIndex``): exact, faiss and milvus.

``choose_backend(n)`` picks one by collection size; ``make_index`` and ``load_index`` create and open them.
Optional engines (faiss, pymilvus) are imported inside the backend that needs them, so a program that
only uses ``exact`` never imports them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lookalike.core.backends.base import (
    META_FILE,
    BackendError,
    VectorIndex,
    key_to_id,
    keys_to_ids,
    read_meta,
)
from lookalike.core.backends.exact import ExactIndex
from lookalike.core.backends.faiss_index import HNSW_LIMIT, FaissIndex, choose_faiss_kind, choose_nlist
from lookalike.core.backends.milvus_index import MilvusIndex

EXACT_LIMIT = 100_000  # above this, exact search costs more than ~10 ms a query: use faiss
FAISS_LIMIT = 100_000_000  # above this, one machine's memory is not enough: use milvus

__all__ = [
    "BACKENDS", "EXACT_LIMIT", "FAISS_LIMIT", "HNSW_LIMIT", "META_FILE", "BackendError", "ExactIndex", "FaissIndex",
    "MilvusIndex", "VectorIndex", "choose_backend", "choose_faiss_kind", "choose_nlist", "key_to_id", "keys_to_ids",
    "load_index", "make_index", "positional_index", "read_meta",
]

BACKENDS: dict[str, type[VectorIndex]] = {"exact": ExactIndex, "faiss": FaissIndex, "milvus": MilvusIndex}


def choose_backend(n: int) -> str:
    """The backend for ``n`` vectors: exact up to ~100k, faiss up to ~100M on one machine, milvus beyond."""
    if n <= EXACT_LIMIT:
        return "exact"
    return "faiss" if n <= FAISS_LIMIT else "milvus"


def make_index(name: str, dim: int, **options: Any) -> VectorIndex:
    """A new, empty index of backend ``name`` ("exact", "faiss", "milvus"; "auto" uses ``expected_size``)."""
    if name == "auto":
        name = choose_backend(int(options.get("expected_size") or 0))
        if name != "faiss":
            options.pop("expected_size", None)
    if name not in BACKENDS:
        raise ValueError(f"unknown index backend {name!r}: choose one of {', '.join(BACKENDS)}")
    return BACKENDS[name](dim, **options)


def load_index(folder: str | Path, **options: Any) -> VectorIndex:
    """Open an index saved with ``save(folder)``, whatever its backend."""
    backend = read_meta(folder)["backend"]
    if backend not in BACKENDS:
        raise ValueError(f"{folder} holds an index of unknown backend {backend!r}")
    return BACKENDS[backend].load(folder, **options)


def positional_index(vectors: np.ndarray) -> VectorIndex:
    """An in-memory index of ``vectors`` whose ids are their row numbers; the backend is chosen by size."""
    index = make_index("auto", vectors.shape[1], expected_size=len(vectors))
    index.add(np.arange(len(vectors)), vectors)
    return index
