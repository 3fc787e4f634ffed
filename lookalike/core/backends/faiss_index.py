"""The ``faiss`` backend: HNSW or IVF on one machine, from 100,000 to ~100,000,000 vectors.

faiss is an optional engine (requirements-scale.txt): it is imported only when an index is built or loaded.
"""

from __future__ import annotations

import math
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
from lookalike.core.files import atomic_path, save_npz_atomic

HNSW_LIMIT = 500_000  # HNSW up to this size; above it, IVF with 8-bit codes (faster to build, 4x smaller)


def _faiss():
    import faiss

    return faiss


def choose_faiss_kind(n: int) -> str:
    """HNSW (no training, high recall) up to 500,000 vectors; IVF with 8-bit codes above.

    HNSW inserts at roughly 1,000 vectors/s of dimension 1,024 on two cores, so a million would take
    ~15 minutes and 4.3 GB; IVF-SQ8 builds a million in a few minutes and stores 1 KB a vector.
    """
    return "hnsw" if n <= HNSW_LIMIT else "ivf"


def choose_nlist(n: int) -> int:
    """IVF lists: about 2·√n, a power of two, at least 64 and at most n/39 (faiss wants ≥39 points a list).

    Training costs nlist² · 40 · dim, so lists are kept few enough to train in minutes on two cores.
    """
    nlist = 2 ** round(math.log2(max(64.0, 2 * math.sqrt(max(n, 1)))))
    return max(1, min(nlist, max(n // 39, 1)))


class FaissIndex(VectorIndex):
    """faiss-cpu with inner product on normalised vectors (= cosine), persisted with ``faiss.write_index``.

    * ``kind="hnsw"`` (``IndexHNSWFlat``): no training; adding inserts into the graph. Removal marks
      the internal row in a tombstone set that searches skip (``IDSelector``); ``compact()`` drops them.
    * ``kind="ivf"`` (``IndexIVFScalarQuantizer`` with 8-bit codes, or ``encoding="flat"``): trained
      once on the first batch added, then adding only assigns new vectors to lists; ids and removal are
      native (``add_with_ids``, ``remove_ids``).

    The kind is chosen from ``expected_size`` (or the first batch's size) by ``choose_faiss_kind``.
    Adding never rebuilds or retrains: the same faiss object keeps growing.
    """

    name = "faiss"

    def __init__(
        self,
        dim: int,
        kind: str | None = None,
        expected_size: int | None = None,
        M: int = 32,
        ef_construction: int = 64,
        ef_search: int = 96,
        nlist: int | None = None,
        nprobe: int = 32,
        encoding: str = "sq8",
        threads: int | None = None,
    ):
        super().__init__(dim)
        if kind not in (None, "hnsw", "ivf"):
            raise ValueError(f"unknown faiss kind {kind!r}: use 'hnsw' or 'ivf'")
        if encoding not in ("sq8", "flat"):
            raise ValueError(f"unknown IVF encoding {encoding!r}: use 'sq8' or 'flat'")
        self.options = {
            "kind": kind, "expected_size": expected_size, "M": M, "ef_construction": ef_construction,
            "ef_search": ef_search, "nlist": nlist, "nprobe": nprobe, "encoding": encoding,
        }
        if threads:
            _faiss().omp_set_num_threads(threads)
        self.index = None  # created by the first add, when the size is known
        self._labels = np.zeros(0, np.int64)  # hnsw: internal row -> id
        self._alive = np.zeros(0, bool)  # hnsw: tombstones are False
        self._row: dict[int, int] = {}  # hnsw: id -> live internal row
        self._selector = None

    @property
    def kind(self) -> str | None:
        return self.options["kind"]

    def __len__(self) -> int:
        if self.index is None:
            return 0
        return len(self._row) if self.kind == "hnsw" else int(self.index.ntotal)

    # -- building ---------------------------------------------------------------------------

    def _create(self, first: np.ndarray) -> None:
        faiss = _faiss()
        n = int(self.options["expected_size"] or len(first))
        kind = self.options["kind"] or choose_faiss_kind(n)
        if kind == "ivf" and len(first) < 2:
            kind = "hnsw"  # nothing to train on
        self.options["kind"] = kind
        if kind == "hnsw":
            index = faiss.IndexHNSWFlat(self.dim, self.options["M"], faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.options["ef_construction"]
            index.hnsw.efSearch = self.options["ef_search"]
        else:
            nlist = min(int(self.options["nlist"] or choose_nlist(n)), max(len(first) // 39, 1))
            self.options["nlist"] = nlist
            quantizer = faiss.IndexFlatIP(self.dim)
            if self.options["encoding"] == "flat":
                index = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
            else:
                index = faiss.IndexIVFScalarQuantizer(
                    quantizer, self.dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
                )
            sample = first[np.sort(np.random.default_rng(0).permutation(len(first))[: 40 * nlist])]
            index.cp.niter = 10  # k-means iterations (faiss's default is 25): minutes saved, recall unchanged
            index.train(sample)
            index.nprobe = min(self.options["nprobe"], nlist)
        self.index = index

    def add(self, ids: Any, vectors: np.ndarray) -> None:
        ids = as_ids(ids)
        vectors = as_vectors(ids, vectors, self.dim)
        if not len(ids):
            return
        if self.index is None:
            self._create(vectors)
        if self.kind == "ivf":
            self.index.remove_ids(_faiss().IDSelectorBatch(ids))
            self.index.add_with_ids(vectors, ids)
            return
        self._tombstone([self._row[i] for i in ids.tolist() if i in self._row])
        start = int(self.index.ntotal)
        self.index.add(vectors)
        self._labels = np.concatenate([self._labels, ids])
        self._alive = np.concatenate([self._alive, np.ones(len(ids), bool)])
        self._row.update(zip(ids.tolist(), range(start, start + len(ids)), strict=True))

    def _tombstone(self, rows: list[int]) -> None:
        if rows:
            self._alive[rows] = False
            self._selector = None

    def remove(self, ids: Any) -> int:
        ids = as_ids(ids)
        if self.index is None or not len(ids):
            return 0
        if self.kind == "ivf":
            return int(self.index.remove_ids(_faiss().IDSelectorBatch(ids)))
        rows = [self._row.pop(i) for i in ids.tolist() if i in self._row]
        self._tombstone(rows)
        return len(rows)

    def compact(self) -> None:
        """HNSW: rebuild without the removed rows (only when asked: adding and removing never rebuild)."""
        if self.kind != "hnsw" or self.index is None or self._alive.all():
            return
        live = np.flatnonzero(self._alive)
        vectors = self.index.reconstruct_n(0, int(self.index.ntotal))[live]
        ids = self._labels[live]
        self.index, self._selector, self._row = None, None, {}
        self._labels, self._alive = np.zeros(0, np.int64), np.zeros(0, bool)
        self.add(ids, vectors)

    # -- searching --------------------------------------------------------------------------

    def _search_params(self, k: int):
        faiss = _faiss()
        if self.kind == "ivf":
            return None
        ef = max(self.options["ef_search"], k)
        if self._alive.all():
            return faiss.SearchParametersHNSW(efSearch=ef)
        if self._selector is None:
            dead = np.flatnonzero(~self._alive).astype(np.int64)
            self._selector = (dead, faiss.IDSelectorNot(faiss.IDSelectorBatch(dead)))
        return faiss.SearchParametersHNSW(efSearch=ef, sel=self._selector[1])

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries, single = as_queries(queries, self.dim)
        k = min(int(k), len(self))
        if k <= 0 or self.index is None:
            empty = np.zeros((len(queries), 0))
            return finish_search(empty, empty, single)
        params = self._search_params(k)
        scores, found = self.index.search(queries, k, params=params) if params else self.index.search(queries, k)
        if self.kind == "hnsw":
            found = np.where(found >= 0, self._labels[np.maximum(found, 0)], -1)
        return finish_search(found, scores, single)

    def set_search(self, ef_search: int | None = None, nprobe: int | None = None) -> None:
        """Trade speed for recall: HNSW ``efSearch`` or IVF ``nprobe``."""
        if ef_search:
            self.options["ef_search"] = int(ef_search)
        if nprobe:
            self.options["nprobe"] = int(nprobe)
            if self.kind == "ivf" and self.index is not None:
                self.index.nprobe = min(int(nprobe), self.index.nlist)

    def ids(self) -> np.ndarray:
        if self.index is None:
            return np.zeros(0, np.int64)
        if self.kind == "hnsw":
            return self._labels[self._alive].copy()
        invlists = self.index.invlists
        parts = [
            _faiss().rev_swig_ptr(invlists.get_ids(i), invlists.list_size(i)).copy()
            for i in range(self.index.nlist)
            if invlists.list_size(i)
        ]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

    # -- persistence ------------------------------------------------------------------------

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if self.index is not None:
            with atomic_path(folder / "index.faiss") as temporary:
                _faiss().write_index(self.index, str(temporary))
        if self.kind == "hnsw":
            save_npz_atomic(folder / "rows.npz", labels=self._labels, alive=self._alive)
        meta = {"backend": self.name, "dim": self.dim, "count": len(self), "options": self.options}
        write_meta(folder, meta)

    @classmethod
    def load(cls, folder: str | Path, **options: Any) -> FaissIndex:
        folder = Path(folder)
        meta = read_meta(folder)
        index = cls(meta["dim"], **{**meta.get("options", {}), **options})
        if (folder / "index.faiss").exists():
            index.index = _faiss().read_index(str(folder / "index.faiss"))
        if index.kind == "hnsw" and index.index is not None:
            with np.load(folder / "rows.npz", allow_pickle=False) as data:
                index._labels, index._alive = data["labels"].astype(np.int64), data["alive"].astype(bool)
            live = np.flatnonzero(index._alive)
            index._row = dict(zip(index._labels[live].tolist(), live.tolist(), strict=True))
        elif index.kind == "ivf" and index.index is not None:
            index.index.nprobe = min(index.options["nprobe"], index.index.nlist)
        return index

