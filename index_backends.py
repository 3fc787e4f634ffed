"""Vector index backends behind one small interface: exact (numpy), faiss, and milvus.

Every backend stores L2-normalised float32 vectors under int64 ids and ranks by cosine similarity:

    index = make_index("faiss", dim=1024)
    index.add(ids, vectors)              # ids already present are replaced
    index.remove(ids)
    ids, scores = index.search(query, k) # best first; a batch of queries gives (q, k) arrays
    index.save(folder); index = load_index(folder)

Optional engines (faiss, pymilvus) are imported inside the class that needs them, so that a program
which only uses ``exact`` never imports them. Nothing is pickled: faiss indexes are written with
``faiss.write_index``, arrays as ``.npz`` (``allow_pickle=False``) and settings as JSON.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

import utils

META_FILE = "index.json"
EXACT_LIMIT = 100_000  # above this, exact search costs more than ~10 ms a query: use faiss
FAISS_LIMIT = 100_000_000  # above this, one machine's memory is not enough: use milvus
HNSW_LIMIT = 500_000  # faiss: HNSW up to this size; above it, IVF with 8-bit codes (faster to build, 4x smaller)


def normalize(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise rows as float32 (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def key_to_id(key: str) -> int:
    """A stable non-negative int64 id for a string key (content hash or path): 63 bits of its SHA-256."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") >> 1


def keys_to_ids(keys: list[str]) -> np.ndarray:
    return np.fromiter((key_to_id(key) for key in keys), dtype=np.int64, count=len(keys))


def _as_ids(ids: Any) -> np.ndarray:
    return np.asarray(ids, dtype=np.int64).reshape(-1)


def _as_queries(queries: np.ndarray, dim: int) -> tuple[np.ndarray, bool]:
    """Queries as a normalised (q, dim) batch, and whether a single query was given."""
    queries = np.asarray(queries, dtype=np.float32)
    single = queries.ndim == 1
    queries = queries.reshape(1, -1) if single else queries
    if queries.shape[1] != dim:
        raise ValueError(f"query has dimension {queries.shape[1]}, the index {dim}")
    return np.ascontiguousarray(normalize(queries)), single


def _as_vectors(ids: np.ndarray, vectors: np.ndarray, dim: int) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32).reshape(len(ids), -1) if len(ids) else np.zeros((0, dim))
    if vectors.shape != (len(ids), dim):
        raise ValueError(f"expected {len(ids)} vectors of dimension {dim}, got {vectors.shape}")
    if len(np.unique(ids)) != len(ids):
        raise ValueError("ids must be unique within one add()")
    return np.ascontiguousarray(normalize(vectors))


def _finish(ids: np.ndarray, scores: np.ndarray, single: bool) -> tuple[np.ndarray, np.ndarray]:
    """Drop the padding faiss leaves (id -1) when every row has it, and unwrap a single query."""
    ids, scores = np.asarray(ids, np.int64), np.asarray(scores, np.float32)
    keep = ~(ids == -1).all(axis=0)
    ids, scores = ids[:, keep], scores[:, keep]
    return (ids[0], scores[0]) if single else (ids, scores)


def _write_meta(folder: Path, meta: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    utils.write_text_atomic(folder / META_FILE, json.dumps(meta, indent=1, sort_keys=True))


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
        ids = _as_ids(ids)
        vectors = _as_vectors(ids, vectors, self.dim)
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
        rows = [self._row[i] for i in _as_ids(ids).tolist() if i in self._row]
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
        queries, single = _as_queries(queries, self.dim)
        k = min(int(k), self._count)
        if k <= 0:
            empty = np.zeros((len(queries), 0))
            return _finish(empty, empty, single)
        scores = queries @ self._vectors[: self._count].T
        best = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        best_scores = np.take_along_axis(scores, best, axis=1)
        best_ids = self._ids[best]
        order = np.lexsort((best_ids, -best_scores), axis=1)  # by score, ties by id: stable
        return _finish(np.take_along_axis(best_ids, order, 1), np.take_along_axis(best_scores, order, 1), single)

    def ids(self) -> np.ndarray:
        return self._ids[: self._count].copy()

    def vectors(self) -> np.ndarray:
        """The stored (normalised) vectors, in the order of ``ids()``."""
        return self._vectors[: self._count]

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        _write_meta(folder, {"backend": self.name, "dim": self.dim, "count": len(self)})
        utils.save_npz_atomic(folder / "exact.npz", ids=self.ids(), vectors=self.vectors())

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
# ---------------------------------------------------------------------------------------------


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
        ids = _as_ids(ids)
        vectors = _as_vectors(ids, vectors, self.dim)
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
        ids = _as_ids(ids)
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
        queries, single = _as_queries(queries, self.dim)
        k = min(int(k), len(self))
        if k <= 0 or self.index is None:
            empty = np.zeros((len(queries), 0))
            return _finish(empty, empty, single)
        params = self._search_params(k)
        scores, found = self.index.search(queries, k, params=params) if params else self.index.search(queries, k)
        if self.kind == "hnsw":
            found = np.where(found >= 0, self._labels[np.maximum(found, 0)], -1)
        return _finish(found, scores, single)

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
            with utils.atomic_path(folder / "index.faiss") as temporary:
                _faiss().write_index(self.index, str(temporary))
        if self.kind == "hnsw":
            utils.save_npz_atomic(folder / "rows.npz", labels=self._labels, alive=self._alive)
        meta = {"backend": self.name, "dim": self.dim, "count": len(self), "options": self.options}
        _write_meta(folder, meta)

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


# ---------------------------------------------------------------------------------------------
# milvus: a Milvus cluster, or Milvus Lite (a local file) in tests
# ---------------------------------------------------------------------------------------------


class MilvusIndex(VectorIndex):
    """A Milvus collection through ``pymilvus.MilvusClient``: the same code for a server URI
    (``http://host:19530``) and for Milvus Lite (a local ``.db`` file, used in tests).

    The data live in Milvus; ``save`` only flushes and records how to reconnect. Milvus Lite searches
    by brute force (slow beyond ~100,000 vectors): it is the test stand-in, never the large-scale default.
    """

    name = "milvus"

    def __init__(
        self,
        dim: int,
        uri: str = "lookalike-milvus.db",
        collection: str = "lookalike",
        token: str = "",
        index_type: str = "AUTOINDEX",
        index_params: dict | None = None,
        search_params: dict | None = None,
        batch_size: int = 1000,
    ):
        super().__init__(dim)
        if "://" not in uri:
            uri = str(Path(uri).resolve())
        self.options = {
            "uri": uri, "collection": collection, "index_type": index_type,
            "index_params": index_params or {}, "search_params": search_params or {}, "batch_size": batch_size,
        }
        self.client = self._connect(uri, token)
        self._ensure_collection()

    @staticmethod
    def _connect(uri: str, token: str):
        from pymilvus import MilvusClient

        return MilvusClient(uri=uri, token=token) if token else MilvusClient(uri=uri)

    @property
    def collection(self) -> str:
        return self.options["collection"]

    def _ensure_collection(self) -> None:
        from pymilvus import DataType

        if self.client.has_collection(self.collection):
            return
        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
        params = self.client.prepare_index_params()
        params.add_index(
            field_name="vector", index_type=self.options["index_type"], metric_type="IP",
            params=self.options["index_params"],
        )
        self.client.create_collection(
            self.collection, schema=schema, index_params=params, consistency_level="Strong"
        )

    def add(self, ids: Any, vectors: np.ndarray) -> None:
        ids = _as_ids(ids)
        vectors = _as_vectors(ids, vectors, self.dim)
        step = self.options["batch_size"]
        for start in range(0, len(ids), step):
            rows = [
                {"id": int(i), "vector": v.tolist()}
                for i, v in zip(ids[start : start + step], vectors[start : start + step], strict=True)
            ]
            self.client.upsert(self.collection, rows)

    def remove(self, ids: Any) -> int:
        ids = _as_ids(ids)
        if not len(ids):
            return 0
        present = self.client.query(self.collection, ids=ids.tolist(), output_fields=["id"])
        if present:
            self.client.delete(self.collection, ids=[int(row["id"]) for row in present])
        return len(present)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries, single = _as_queries(queries, self.dim)
        k = min(int(k), len(self))
        if k <= 0:
            empty = np.zeros((len(queries), 0))
            return _finish(empty, empty, single)
        hits = self.client.search(
            self.collection, data=queries.tolist(), limit=k, output_fields=["id"],
            search_params={"metric_type": "IP", "params": self.options["search_params"]},
        )
        ids = np.full((len(queries), k), -1, np.int64)
        scores = np.full((len(queries), k), -np.inf, np.float32)
        for row, found in enumerate(hits):
            for col, hit in enumerate(found[:k]):
                ids[row, col], scores[row, col] = int(hit["id"]), float(hit["distance"])
        return _finish(ids, scores, single)

    def ids(self) -> np.ndarray:
        iterator = self.client.query_iterator(self.collection, batch_size=10_000, filter="", output_fields=["id"])
        found: list[int] = []
        while batch := iterator.next():
            found += [int(row["id"]) for row in batch]
        iterator.close()
        return np.asarray(found, np.int64)

    def __len__(self) -> int:
        rows = self.client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def save(self, folder: str | Path) -> None:
        self.client.flush(self.collection)
        _write_meta(Path(folder), {"backend": self.name, "dim": self.dim, "options": self.options})

    @classmethod
    def load(cls, folder: str | Path, **options: Any) -> MilvusIndex:
        meta = read_meta(folder)
        return cls(meta["dim"], **{**meta.get("options", {}), **options})

    def close(self) -> None:
        self.client.close()


# ---------------------------------------------------------------------------------------------
# Choosing and making
# ---------------------------------------------------------------------------------------------

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
