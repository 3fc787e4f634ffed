"""The interface every vector index backend implements, and the helpers they share.

Every backend stores L2-normalised float32 vectors under int64 ids and ranks by cosine similarity:

    index = make_index("faiss", dim=1024)
    index.add(ids, vectors)              # ids already present are replaced
    index.remove(ids)
    ids, scores = index.search(query, k) # best first; a batch of queries gives (q, k) arrays
    index.save(folder); index = load_index(folder)

Nothing is pickled: faiss indexes are written with ``faiss.write_index``, arrays as ``.npz``
(``allow_pickle=False``) and settings as JSON.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lookalike.core.files import write_text_atomic
from lookalike.core.vectors import normalize

META_FILE = "index.json"


class BackendError(Exception):
    """A backend cannot do its work: a server that does not answer, a wrong URI, a collection that holds
    another model's vectors. The message is written for the user; the local cache is never touched."""


def key_to_id(key: str) -> int:
    """A stable non-negative int64 id for a string key (content hash or path): 63 bits of its SHA-256."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") >> 1


def keys_to_ids(keys: list[str]) -> np.ndarray:
    return np.fromiter((key_to_id(key) for key in keys), dtype=np.int64, count=len(keys))


def as_ids(ids: Any) -> np.ndarray:
    return np.asarray(ids, dtype=np.int64).reshape(-1)


def as_queries(queries: np.ndarray, dim: int) -> tuple[np.ndarray, bool]:
    """Queries as a normalised (q, dim) batch, and whether a single query was given."""
    queries = np.asarray(queries, dtype=np.float32)
    single = queries.ndim == 1
    queries = queries.reshape(1, -1) if single else queries
    if queries.shape[1] != dim:
        raise ValueError(f"query has dimension {queries.shape[1]}, the index {dim}")
    return np.ascontiguousarray(normalize(queries)), single


def as_vectors(ids: np.ndarray, vectors: np.ndarray, dim: int) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32).reshape(len(ids), -1) if len(ids) else np.zeros((0, dim))
    if vectors.shape != (len(ids), dim):
        raise ValueError(f"expected {len(ids)} vectors of dimension {dim}, got {vectors.shape}")
    if len(np.unique(ids)) != len(ids):
        raise ValueError("ids must be unique within one add()")
    return np.ascontiguousarray(normalize(vectors))


def finish_search(ids: np.ndarray, scores: np.ndarray, single: bool) -> tuple[np.ndarray, np.ndarray]:
    """Drop the padding faiss leaves (id -1) when every row has it, and unwrap a single query."""
    ids, scores = np.asarray(ids, np.int64), np.asarray(scores, np.float32)
    keep = ~(ids == -1).all(axis=0)
    ids, scores = ids[:, keep], scores[:, keep]
    return (ids[0], scores[0]) if single else (ids, scores)


def write_meta(folder: Path, meta: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / META_FILE, json.dumps(meta, indent=1, sort_keys=True))


def read_meta(folder: str | Path) -> dict:
    """The settings saved with an index (backend name, dimension, options)."""
    return json.loads((Path(folder) / META_FILE).read_text(encoding="utf-8"))


class VectorIndex:
    """The interface every backend implements. Scores are cosine similarities, best first."""

    name: ClassVar[str] = ""

    def __init__(self, dim: int):
        self.dim = int(dim)

    def add(self, ids: Any, vectors: np.ndarray) -> None:
        """Add vectors under int64 ids; ids already in the index are replaced."""
        raise NotImplementedError

    def remove(self, ids: Any) -> int:
        """Remove ids (unknown ones are ignored). Returns how many were removed."""
        raise NotImplementedError

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Ids and cosine scores of the ``k`` nearest vectors: (k,) for one query, (q, k) for a batch."""
        raise NotImplementedError

    def ids(self) -> np.ndarray:
        """Every id in the index (int64, in no particular order)."""
        raise NotImplementedError

    def save(self, folder: str | Path) -> None:
        raise NotImplementedError

    @classmethod
    def load(cls, folder: str | Path, **options: Any) -> VectorIndex:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------
# exact: numpy, in memory
# ---------------------------------------------------------------------------------------------

