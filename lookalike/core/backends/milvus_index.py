"""The ``milvus`` backend: a Milvus server for collections beyond one machine, or Milvus Lite (a local
``.db`` file) in tests. pymilvus is an optional engine: it is imported only when a client connects.

On a server, collections get an HNSW index (M=16, efConstruction=128) searched with ef=max(64, k):
on 20,000 clustered style-sized vectors that gives recall@10 0.995 against exact search (bench/milvus_server.py).
Searches read at Milvus's "Session" consistency (this client's own writes are always visible); the
collection's default, "Strong", is kept for counting and listing ids, which ``sync_index`` does before any
search, so a search never misses what another process indexed before it. A Strong search waits for the
server's next time tick (200 ms by default), a Session search does not (~2 ms).

On a server, every collection records the model id of its vectors (in its description): opening it for
another model raises ``BackendError``, so two models' vectors are never mixed. (Milvus Lite drops
descriptions; its file sits in an index folder named after one folder and one model.)
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.core.backends.base import (
    BackendError,
    VectorIndex,
    as_ids,
    as_queries,
    as_vectors,
    finish_search,
    read_meta,
    write_meta,
)

SERVER_SCHEMES = ("http", "https", "tcp", "unix")
SERVER_INDEX_PARAMS = {"M": 16, "efConstruction": 128}  # HNSW on a server; Milvus Lite uses AUTOINDEX (brute force)
SERVER_EF = 64  # HNSW search breadth; raised to k when k is larger
SERVER_TIMEOUT_S = 10.0  # connecting to a server that does not answer fails after this
DESCRIPTION_TAG = "lookalike"


def check_uri(uri: str) -> str:
    """A server URI (``http://host:19530``) as given, or a Milvus Lite file as an absolute path.

    Anything else is refused: ``host:19530`` without a scheme would otherwise become a local file of that name.
    """
    if "://" in uri:
        scheme = uri.split("://", 1)[0].lower()
        if scheme not in SERVER_SCHEMES or not uri.split("://", 1)[1].strip("/"):
            raise BackendError(
                f"{uri!r} is not a Milvus URI: use http://HOST:PORT for a server (the default port is 19530)"
            )
        return uri
    if not uri.endswith(".db"):
        raise BackendError(
            f"{uri!r} is not a Milvus URI: use http://HOST:PORT for a server, or a path ending in .db for Milvus Lite"
        )
    return str(Path(uri).resolve())


def is_server(uri: str) -> bool:
    return "://" in uri


def _quiet_pymilvus() -> None:
    """pymilvus logs every failed call with its traceback before raising; ``BackendError`` says it in one line."""
    for name in ("pymilvus", "pymilvus.milvus_client"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _reason(error: Exception) -> str:
    message = str(getattr(error, "message", "") or error).strip()
    if getattr(error, "code", None) == 2 or "server unavailable" in message:
        return "the server does not answer (is it running, and is the URI right?)"
    return message.splitlines()[0] if message else type(error).__name__


class MilvusIndex(VectorIndex):
    """A Milvus collection through ``pymilvus.MilvusClient``: the same code for a server URI
    (``http://host:19530``) and for Milvus Lite (a local ``.db`` file, used in tests).

    The data live in Milvus; ``save`` only flushes and records how to reconnect (never the token).
    Milvus Lite searches by brute force (slow beyond ~100,000 vectors): it is the test stand-in.
    """

    name = "milvus"

    def __init__(
        self,
        dim: int,
        uri: str = "lookalike-milvus.db",
        collection: str = "lookalike",
        token: str = "",
        model_id: str = "",
        index_type: str | None = None,
        index_params: dict | None = None,
        search_params: dict | None = None,
        batch_size: int = 1000,
        consistency: str = "Session",
        timeout: float = SERVER_TIMEOUT_S,
    ):
        super().__init__(dim)
        uri = check_uri(uri)
        server = is_server(uri)
        index_type = index_type or ("HNSW" if server else "AUTOINDEX")
        if index_params is None:
            index_params = dict(SERVER_INDEX_PARAMS) if index_type == "HNSW" else {}
        if search_params is None:
            search_params = {"ef": SERVER_EF} if index_type == "HNSW" else {}
        self.options = {
            "uri": uri, "collection": collection, "model_id": model_id, "index_type": index_type,
            "index_params": index_params, "search_params": search_params, "batch_size": batch_size,
            "consistency": consistency,
        }
        self.client = self._connect(uri, token, timeout)
        self._ensure_collection()

    @staticmethod
    def _connect(uri: str, token: str, timeout: float):
        from pymilvus import MilvusClient

        _quiet_pymilvus()
        try:
            return MilvusClient(uri=uri, token=token, timeout=timeout) if token else MilvusClient(uri=uri, timeout=timeout)
        except Exception as error:  # pymilvus raises its own exceptions, and grpc's or OSError beneath them
            raise BackendError(f"cannot reach Milvus at {uri}: {_reason(error)}") from None

    @property
    def collection(self) -> str:
        return self.options["collection"]

    @property
    def model_id(self) -> str:
        return self.options["model_id"]

    @contextmanager
    def _calls(self, doing: str) -> Iterator[None]:
        """Turn any client failure into one ``BackendError`` line that names the server and the step."""
        try:
            yield
        except BackendError:
            raise
        except Exception as error:  # pymilvus.MilvusException, grpc.RpcError, OSError
            raise BackendError(f"Milvus at {self.options['uri']} failed while {doing}: {_reason(error)}") from None

    # -- the collection ----------------------------------------------------------------------

    def _ensure_collection(self) -> None:
        with self._calls(f"opening collection {self.collection!r}"):
            if self.client.has_collection(self.collection):
                self._check_existing(self.client.describe_collection(self.collection))
                self._ensure_loaded()
                len(self)  # one Strong read: later Session searches see all that other clients wrote before
                return
            self._create()

    def _create(self) -> None:
        from pymilvus import DataType

        description = json.dumps({DESCRIPTION_TAG: 1, "model_id": self.model_id, "dim": self.dim})
        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False, description=description)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
        params = self.client.prepare_index_params()
        params.add_index(
            field_name="vector", index_type=self.options["index_type"], metric_type="IP",
            params=self.options["index_params"],
        )
        self.client.create_collection(self.collection, schema=schema, index_params=params, consistency_level="Strong")

    def _check_existing(self, info: dict) -> None:
        """Refuse a collection of another dimension or another model: its vectors must never be mixed with ours."""
        dims = [int(field.get("params", {}).get("dim", 0)) for field in info.get("fields", []) if field.get("name") == "vector"]
        where = f"collection {self.collection!r} at {self.options['uri']}"
        if dims != [self.dim]:
            raise BackendError(f"{where} holds vectors of dimension {dims[0] if dims else '?'}, not {self.dim}")
        try:
            stored = json.loads(info.get("description") or "{}")
        except ValueError:
            stored = {}
        stored = stored if isinstance(stored, dict) and DESCRIPTION_TAG in stored else {}
        if not is_server(self.options["uri"]):
            return  # Milvus Lite keeps no description; its file lives in an index folder of one model anyway
        if self.model_id and stored.get("model_id") != self.model_id:
            owner = f"model {stored['model_id']!r}" if stored.get("model_id") else "another program"
            raise BackendError(
                f"{where} holds vectors of {owner}, not of {self.model_id!r}; they are never mixed: "
                "choose another collection name (--milvus-collection)"
            )

    def _ensure_loaded(self) -> None:
        """A server restarted since the collection was made keeps it released: load it before searching."""
        state = str(self.client.get_load_state(self.collection).get("state", ""))
        if not state.endswith("Loaded"):
            self.client.load_collection(self.collection)

    # -- the interface -----------------------------------------------------------------------

    def add(self, ids: Any, vectors: np.ndarray) -> None:
        ids = as_ids(ids)
        vectors = as_vectors(ids, vectors, self.dim)
        step = self.options["batch_size"]
        with self._calls(f"adding {len(ids)} vectors"):
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
        with self._calls(f"removing {len(ids)} vectors"):
            present = self.client.query(self.collection, ids=ids.tolist(), output_fields=["id"])
            if present:
                self.client.delete(self.collection, ids=[int(row["id"]) for row in present])
        return len(present)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries, single = as_queries(queries, self.dim)
        k = int(k)
        if k <= 0:
            empty = np.zeros((len(queries), 0))
            return finish_search(empty, empty, single)
        params = dict(self.options["search_params"])
        if "ef" in params:
            params["ef"] = max(int(params["ef"]), k)
        with self._calls("searching"):
            hits = self.client.search(
                self.collection, data=queries.tolist(), limit=k, output_fields=["id"],
                search_params={"metric_type": "IP", "params": params},
                consistency_level=self.options["consistency"],
            )
        ids = np.full((len(queries), k), -1, np.int64)
        scores = np.full((len(queries), k), -np.inf, np.float32)
        for row, found in enumerate(hits):
            for col, hit in enumerate(found[:k]):
                ids[row, col], scores[row, col] = int(hit["id"]), float(hit["distance"])
        return finish_search(ids, scores, single)

    def ids(self) -> np.ndarray:
        found: list[int] = []
        with self._calls("listing ids"):
            iterator = self.client.query_iterator(
                self.collection, batch_size=10_000, filter="", output_fields=["id"]
            )
            while batch := iterator.next():
                found += [int(row["id"]) for row in batch]
            iterator.close()
        return np.asarray(found, np.int64)

    def __len__(self) -> int:
        with self._calls("counting vectors"):
            rows = self.client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def save(self, folder: str | Path) -> None:
        with self._calls("flushing"):
            self.client.flush(self.collection)
        write_meta(Path(folder), {"backend": self.name, "dim": self.dim, "options": self.options})

    @classmethod
    def load(cls, folder: str | Path, **options: Any) -> MilvusIndex:
        meta = read_meta(folder)
        return cls(meta["dim"], **{**meta.get("options", {}), **options})

    def wait_until_indexed(self, timeout_s: float = 600.0) -> dict:
        """Flush, then wait until the server has built the HNSW index over every row and serves it.

        Until then, new rows sit in growing segments that Milvus 2.3 searches through a coarse interim IVF
        index (nlist 128, nprobe 16: recall@10 about 0.93 on clustered vectors, against 0.99 for HNSW).
        Returns the index's description; ``BackendError`` after ``timeout_s``.
        """
        with self._calls("building the index"):
            self.client.flush(self.collection)
            total = len(self)
            deadline = time.monotonic() + timeout_s
            while True:
                info = self.client.describe_index(self.collection, "vector")
                built = int(info.get("indexed_rows", 0)) >= total and not int(info.get("pending_index_rows", 0))
                if built and (not is_server(self.options["uri"]) or self._served_rows() >= total):
                    return info
                if time.monotonic() > deadline:
                    raise BackendError(f"the index of {self.collection!r} was not built within {timeout_s:.0f} s")
                time.sleep(0.5)

    def _served_rows(self) -> int:
        """Rows the query nodes serve from segments that carry the vector index (after the hand-off)."""
        segments = self.client._get_connection().get_query_segment_info(self.collection)  # no public call in 2.3
        return sum(int(segment.num_rows) for segment in segments if segment.index_name)

    def close(self) -> None:
        self.client.close()


def check_server(uri: str, token: str = "", timeout: float = SERVER_TIMEOUT_S) -> str:
    """Ask a Milvus server for its version: fails fast, with a ``BackendError``, before any long job starts."""
    uri = check_uri(uri)
    client = MilvusIndex._connect(uri, token, timeout)
    try:
        return str(client.get_server_version())
    except Exception as error:
        raise BackendError(f"cannot reach Milvus at {uri}: {_reason(error)}") from None
    finally:
        client.close()
