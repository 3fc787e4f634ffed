"""The ``milvus`` backend: a Milvus cluster for collections beyond one machine, or Milvus Lite (a local
file) in tests. pymilvus is an optional engine: it is imported only when a client connects."""

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
        ids = as_ids(ids)
        vectors = as_vectors(ids, vectors, self.dim)
        step = self.options["batch_size"]
        for start in range(0, len(ids), step):
            rows = [
                {"id": int(i), "vector": v.tolist()}
                for i, v in zip(ids[start : start + step], vectors[start : start + step], strict=True)
            ]
            self.client.upsert(self.collection, rows)

    def remove(self, ids: Any) -> int:
        ids = as_ids(ids)
        if not len(ids):
            return 0
        present = self.client.query(self.collection, ids=ids.tolist(), output_fields=["id"])
        if present:
            self.client.delete(self.collection, ids=[int(row["id"]) for row in present])
        return len(present)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries, single = as_queries(queries, self.dim)
        k = min(int(k), len(self))
        if k <= 0:
            empty = np.zeros((len(queries), 0))
            return finish_search(empty, empty, single)
        hits = self.client.search(
            self.collection, data=queries.tolist(), limit=k, output_fields=["id"],
            search_params={"metric_type": "IP", "params": self.options["search_params"]},
        )
        ids = np.full((len(queries), k), -1, np.int64)
        scores = np.full((len(queries), k), -np.inf, np.float32)
        for row, found in enumerate(hits):
            for col, hit in enumerate(found[:k]):
                ids[row, col], scores[row, col] = int(hit["id"]), float(hit["distance"])
        return finish_search(ids, scores, single)

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
        write_meta(Path(folder), {"backend": self.name, "dim": self.dim, "options": self.options})

    @classmethod
    def load(cls, folder: str | Path, **options: Any) -> MilvusIndex:
        meta = read_meta(folder)
        return cls(meta["dim"], **{**meta.get("options", {}), **options})

    def close(self) -> None:
        self.client.close()

