"""The embedding step on Ray Data: ``python image_search.py index FOLDER --engine ray``.

The driver lists and hashes the folder (with the same memo as the plain path), sends only the files the
cache lacks through ``Dataset.map_batches`` (each actor builds the model once, decodes in threads and
embeds a batch), and writes the results as ordinary ``EmbeddingCache`` shards as they stream back. The
collection is then assembled by ``folders.index_folder``, which finds every vector cached.

Runs on a local Ray instance by default, or on a cluster with ``address="ray://head:10001"`` (the
project must be importable there, and the cluster's workers must be able to read the image paths).
Ray is an optional extra: it is imported only here, and only when called.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from lookalike.core import images
from lookalike.core.cache import Embedder, EmbeddingCache
from lookalike.core.files import check_folder, inside_roots
from lookalike.core.progress import Progress
from lookalike.search import folders

EmbedderFactory = Callable[[], Embedder]


class _EmbedBatch:
    """A Ray Data actor: builds the embedder once, then turns batches of paths into vectors."""

    def __init__(self, factory: EmbedderFactory, threads: int = 2):
        self.embedder = factory()
        self.threads = threads
        self.dim = int(np.asarray(self.embedder.embed([self.embedder.prepare(np.zeros((8, 8, 3), np.uint8))])).shape[1])

    def _prepare(self, path: str) -> np.ndarray | str:
        try:
            return self.embedder.prepare(images.load_image(path))
        except (images.ImageError, OSError) as error:
            return str(error)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with ThreadPoolExecutor(self.threads) as pool:
            prepared = list(pool.map(self._prepare, batch["path"].tolist()))
        ok = np.array([not isinstance(item, str) for item in prepared], bool)
        vectors = np.zeros((len(prepared), self.dim), np.float32)
        if ok.any():
            vectors[ok] = self.embedder.embed([item for item in prepared if not isinstance(item, str)])
        errors = np.array([item if isinstance(item, str) else "" for item in prepared], dtype=object)
        return {"key": batch["key"], "path": batch["path"], "vector": vectors, "ok": ok, "error": errors}


def connect(address: str | None = None, num_cpus: int | None = None, object_store_mb: int = 512) -> None:
    """Start (or join) Ray: a local instance when ``address`` is None, else the cluster at ``address``."""
    import ray

    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, log_to_driver=False)
        return
    paths = [entry for entry in sys.path if entry and os.path.isdir(entry)]
    for attempt in range(3):  # a busy machine can miss Ray's fixed 30 s start-up deadline
        try:
            ray.init(
                num_cpus=num_cpus or os.cpu_count(),
                object_store_memory=object_store_mb * 1024 * 1024,
                include_dashboard=False,
                log_to_driver=False,
                runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(paths)}},
            )
            return
        except Exception as error:
            ray.shutdown()
            if attempt == 2 or "timed out during startup" not in str(error):
                raise


def missing_files(folder: Path, cache: EmbeddingCache) -> Iterator[tuple[str, str]]:
    """(path, content key) of the images below ``folder`` that the cache lacks, hashing through the memo."""
    hashes = folders.FileHashes(folder)
    seen: list[Path] = []
    for path in images.list_images(folder):
        if not inside_roots(path):
            continue
        seen.append(path)
        try:
            key = hashes.key(path)
        except OSError:
            continue
        if not cache.lookup([key]):
            yield str(path), key
    hashes.save(seen)


def embed_missing(
    folder: Path,
    factory: EmbedderFactory,
    cache: EmbeddingCache,
    batch_size: int = 16,
    actors: int = 1,
    checkpoint_every: int = 128,
    progress: Progress | None = None,
) -> int:
    """Embed the files the cache lacks with Ray Data, storing shards as results arrive. Returns how many."""
    import ray.data

    todo = [{"path": path, "key": key} for path, key in missing_files(folder, cache)]
    if not todo:
        return 0
    dataset = ray.data.from_items(todo, override_num_blocks=max(1, min(len(todo) // batch_size, 64)))
    embedded = dataset.map_batches(
        _EmbedBatch,
        fn_constructor_args=(factory,),
        batch_size=batch_size,
        compute=ray.data.ActorPoolStrategy(size=actors),
        batch_format="numpy",
    )
    done = stored = 0
    for batch in embedded.iter_batches(batch_size=checkpoint_every, batch_format="numpy"):
        ok = batch["ok"].astype(bool)
        if ok.any():
            cache.store(batch["key"][ok].tolist(), np.asarray(batch["vector"][ok], np.float32))
        stored += int(ok.sum())
        done += len(ok)
        if progress:
            progress(done, len(todo))
    return stored


class _ModelIdOnly:
    """Stands in for the embedder once every vector is cached: only the model id is needed."""

    def __init__(self, model_id: str):
        self.model_id = model_id

    def prepare(self, image: np.ndarray) -> np.ndarray:
        raise RuntimeError("every decodable image should already be embedded by Ray")

    def embed(self, images):
        raise RuntimeError("every decodable image should already be embedded by Ray")


def index_folder_ray(
    folder: str | Path,
    factory: EmbedderFactory,
    model_id: str,
    address: str | None = None,
    cache: EmbeddingCache | None = None,
    batch_size: int = 16,
    actors: int = 1,
    progress: Progress | None = None,
) -> folders.Collection:
    """``folders.index_folder`` with the embedding step run as Ray Data ``map_batches``.

    ``factory()`` builds the embedder inside each Ray actor (it must be picklable, e.g. a
    ``functools.partial``); ``model_id`` must equal that embedder's id, so the same cache is written.
    """
    folder = check_folder(folder)
    cache = cache if cache is not None else EmbeddingCache(model_id)
    connect(address)
    started = time.perf_counter()
    new = embed_missing(folder, factory, cache, batch_size=batch_size, actors=actors, progress=progress)
    collection = folders.index_folder(folder, _ModelIdOnly(model_id), cache=cache)
    collection.stats.new, collection.stats.reused = new, max(collection.stats.reused - new, 0)
    collection.stats.seconds = time.perf_counter() - started
    return collection
