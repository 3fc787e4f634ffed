"""The ``exact`` backend: numpy brute force, in memory; the default up to ~100,000 vectors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lookalike.core.backends.base import (
    VectorIndex,
    as_ids,
    as_queries,
    as_vectors,
    finish_search,
    read_meta,
    write_meta,
)
from lookalike.core.files import save_npz_atomic


class ExactIndex(VectorIndex):
    """Brute force with numpy: exact results, no dependencies; the default up to ~100,000 vectors.

    Rows live in a buffer that grows by doubling, so adding is amortised O(added), never a full copy.
    """

    name = "exact"

    def __init__(self, dim: int, capacity: int = 0):
        super().__init__(dim)
        self._vectors = np.zeros((capacity, self.dim), np.float32)
        self._ids = np.zeros(capacity, np.int64)
        self._count = 0
        self._row: dict[int, int] = {}

    def __len__(self) -> int:
        return self._count

    def _reserve(self, extra: int) -> None:
        needed = self._count + extra
        if needed <= len(self._ids):
            return
        capacity = max(needed, 2 * len(self._ids), 1024)
        vectors = np.zeros((capacity, self.dim), np.float32)
        ids = np.zeros(capacity, np.int64)
        vectors[: self._count] = self._vectors[: self._count]
        ids[: self._count] = self._ids[: self._count]
        self._vectors, self._ids = vectors, ids

    def add(self, ids: Any, vectors: np.ndarray) -> None:
        ids = as_ids(ids)
        vectors = as_vectors(ids, vectors, self.dim)
        known = np.fromiter((self._row.get(int(i), -1) for i in ids), np.int64, count=len(ids))
        replace = known >= 0
        self._vectors[known[replace]] = vectors[replace]
        fresh_ids, fresh = ids[~replace], vectors[~replace]
        self._reserve(len(fresh_ids))
        start = self._count
        self._vectors[start : start + len(fresh_ids)] = fresh
        self._ids[start : start + len(fresh_ids)] = fresh_ids
        self._row.update(zip(fresh_ids.tolist(), range(start, start + len(fresh_ids)), strict=True))
        self._count += len(fresh_ids)

    def remove(self, ids: Any) -> int:
        rows = [self._row[i] for i in as_ids(ids).tolist() if i in self._row]
        if not rows:
            return 0
        keep = np.ones(self._count, bool)
        keep[rows] = False
        self._vectors = self._vectors[: self._count][keep]
        self._ids = self._ids[: self._count][keep]
        self._count = len(self._ids)
        self._row = {int(i): row for row, i in enumerate(self._ids)}
        return len(rows)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries, single = as_queries(queries, self.dim)
        k = min(int(k), self._count)
        if k <= 0:
            empty = np.zeros((len(queries), 0))
            return finish_search(empty, empty, single)
        scores = queries @ self._vectors[: self._count].T
        best = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        best_scores = np.take_along_axis(scores, best, axis=1)
        best_ids = self._ids[best]
        order = np.lexsort((best_ids, -best_scores), axis=1)  # by score, ties by id: stable
        return finish_search(np.take_along_axis(best_ids, order, 1), np.take_along_axis(best_scores, order, 1), single)

    def ids(self) -> np.ndarray:
        return self._ids[: self._count].copy()

    def vectors(self) -> np.ndarray:
        """The stored (normalised) vectors, in the order of ``ids()``."""
        return self._vectors[: self._count]

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        write_meta(folder, {"backend": self.name, "dim": self.dim, "count": len(self)})
        save_npz_atomic(folder / "exact.npz", ids=self.ids(), vectors=self.vectors())

    @classmethod
    def load(cls, folder: str | Path, **options: Any) -> ExactIndex:
        folder = Path(folder)
        meta = read_meta(folder)
        index = cls(meta["dim"])
        with np.load(folder / "exact.npz", allow_pickle=False) as data:
            index.add(data["ids"], data["vectors"])
        return index


# ---------------------------------------------------------------------------------------------
# faiss: HNSW or IVF, on one machine
