"""The embedding step on Ray Data: ``python image_search.py index FOLDER --engine ray``.

The driver lists and hashes the folder (with the same memo as the plain path), sends only the files the
cache lacks through ``Dataset.map_batches`` (each actor builds the model once, decodes in threads and
embeds a batch), and writes the results as ordinary ``EmbeddingCache`` shards as they stream back. The
collection is then assembled by ``folders.index_folder``, which finds every vector cached.

Runs on a local Ray instance by default, or on a cluster with ``address="ray://head:10001"`` (Ray Client)
or ``address="head:6379"`` (the GCS address, from a node of the cluster). The ``lookalike`` package is
shipped to the cluster with the job (``py_modules``), with the ``LOOKALIKE_*`` settings; the workers must
have the dependencies installed and be able to read the image paths. A cluster with token authentication
gets its token from ``token_file`` or Ray's own ``RAY_AUTH_TOKEN`` / ``RAY_AUTH_TOKEN_PATH``.

Joining fails with one ``ClusterError`` line: at once when nothing listens at the address, and within
Ray's own connection deadline (about 20 s for a GCS address, 30 s for ``ray://``) when the head refuses
the driver, e.g. for a wrong or missing token. Ray is an optional extra: it is imported only here.
"""

from __future__ import annotations

import os
import socket
import sys
import time
import warnings
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
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # lookalike/, shipped to a cluster with the job
REACH_TIMEOUT_S = 5.0
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class ClusterError(RuntimeError):
    """Ray cannot be joined or fails part-way; the message is for the user (vectors already cached are kept)."""


class _EmbedBatch:
    """A Ray actor: builds the embedder once, then turns batches of paths into vectors (and names its model)."""

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
        model = np.array([self.embedder.model_id] * len(prepared), dtype=object)
        return {"key": batch["key"], "path": batch["path"], "vector": vectors, "ok": ok, "error": errors,
                "model_id": model}

    def embed_batch(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``__call__`` under a name that a Ray actor handle can call."""
        return self(batch)


def split_address(address: str) -> tuple[bool, str, int]:
    """(is Ray Client, host, port) of ``ray://host:port`` or ``host:port``; a ``ClusterError`` if malformed."""
    client = address.startswith("ray://")
    rest = address[len("ray://"):] if client else address
    host, _, port = rest.rpartition(":")
    if not host or not port.isdigit() or "/" in rest:
        raise ClusterError(f"{address!r} is not a Ray address: use ray://HEAD:10001 or HEAD:6379")
    return client, host.strip("[]"), int(port)


def _check_reachable(address: str, host: str, port: int) -> None:
    try:
        socket.create_connection((host, port), timeout=REACH_TIMEOUT_S).close()
    except OSError as error:
        reason = error.strerror or type(error).__name__.replace("Error", " error").lower()
        raise ClusterError(f"no Ray head answers at {address} ({reason})") from None


def _prepare_environment(client: bool, host: str, token_file: str | None) -> None:
    """Ray reads these when it is first imported and first authenticates, so they are set before both."""
    if token_file:
        path = Path(token_file).expanduser()
        if not path.is_file():
            raise ClusterError(f"the Ray token file {token_file} does not exist")
        os.environ["RAY_AUTH_TOKEN_PATH"] = str(path.resolve())
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH"):
        os.environ.setdefault("RAY_AUTH_MODE", "token")
    if not client and host in LOOPBACK:
        # Ray rewrites a loopback GCS address into the machine's interface address, where a head started
        # on loopback does not listen; this switch keeps a one-machine cluster on 127.0.0.1.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0].split(". ")[0] if text else type(error).__name__


def join_cluster(address: str, token_file: str | None = None) -> None:
    """Join the Ray cluster at ``address``, shipping the ``lookalike`` package and its settings to the job."""
    client, host, port = split_address(address)
    _check_reachable(address, host, port)
    _prepare_environment(client, host, token_file)
    import ray

    settings = {name: value for name, value in os.environ.items() if name.startswith("LOOKALIKE_")}
    try:
        with warnings.catch_warnings():  # Ray Client warns, then raises: the error below says it once
            warnings.simplefilter("ignore", UserWarning)
            ray.init(
                address=address, log_to_driver=False,
                runtime_env={"py_modules": [str(PACKAGE_DIR)], "env_vars": settings},
            )
    except Exception as error:  # ConnectionError, TimeoutError, ray.exceptions.AuthenticationError, ...
        ray.shutdown()
        if os.environ.get("RAY_AUTH_MODE") == "token":
            hint = "; check the cluster's token (--ray-token-file or RAY_AUTH_TOKEN)"
        else:
            hint = "; if the cluster uses token authentication, give its token (--ray-token-file or RAY_AUTH_TOKEN)"
        raise ClusterError(f"could not join the Ray cluster at {address}: {_first_line(error)}{hint}") from None


def connect(
    address: str | None = None, num_cpus: int | None = None, object_store_mb: int = 512, token_file: str | None = None
) -> None:
    """Start (or join) Ray: a local instance when ``address`` is None, else the cluster at ``address``."""
    if address:
        if "ray" not in sys.modules or not sys.modules["ray"].is_initialized():
            join_cluster(address, token_file)
        return
    import ray

    if ray.is_initialized():
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


def _through_ray_data(
    todo: list[dict[str, str]], factory: EmbedderFactory, batch_size: int, actors: int, checkpoint_every: int
) -> Iterator[dict[str, np.ndarray]]:
    """The files through ``Dataset.map_batches`` on an actor pool (a local instance, or a driver on a node)."""
    import ray.data

    dataset = ray.data.from_items(todo, override_num_blocks=max(1, min(len(todo) // batch_size, 64)))
    embedded = dataset.map_batches(
        _EmbedBatch,
        fn_constructor_args=(factory,),
        batch_size=batch_size,
        compute=ray.data.ActorPoolStrategy(size=actors),
        batch_format="numpy",
    )
    yield from embedded.iter_batches(batch_size=checkpoint_every, batch_format="numpy")


def _through_actor_pool(
    todo: list[dict[str, str]], factory: EmbedderFactory, batch_size: int, actors: int
) -> Iterator[dict[str, np.ndarray]]:
    """The same actors in a ``ray.util.ActorPool``: Ray Client (``ray://``) cannot drive Ray Data
    (ray-project/ray#48682), but it runs actors. Results come back in order, one batch in flight per actor."""
    import ray
    from ray.util import ActorPool

    embedder = ray.remote(_EmbedBatch)
    pool = ActorPool([embedder.remote(factory) for _ in range(max(1, actors))])
    batches = [
        {name: np.array([item[name] for item in todo[start : start + batch_size]], dtype=object)
         for name in ("path", "key")}
        for start in range(0, len(todo), batch_size)
    ]
    yield from pool.map(lambda actor, batch: actor.embed_batch.remote(batch), batches)


def embed_missing(
    folder: Path,
    factory: EmbedderFactory,
    cache: EmbeddingCache,
    batch_size: int = 16,
    actors: int = 1,
    checkpoint_every: int = 128,
    progress: Progress | None = None,
) -> int:
    """Embed the files the cache lacks on Ray, storing shards as results arrive. Returns how many.

    Each batch says which model embedded it: vectors of another model (a cluster with other weights or
    settings) are refused before they reach the cache. A cluster failing part-way raises ``ClusterError``;
    the vectors received until then are cached, so running again continues.
    """
    import ray.exceptions
    from ray.util.client import ray as ray_client

    todo = [{"path": path, "key": key} for path, key in missing_files(folder, cache)]
    if not todo:
        return 0
    if ray_client.is_connected():
        batches = _through_actor_pool(todo, factory, batch_size, actors)
    else:
        batches = _through_ray_data(todo, factory, batch_size, actors, checkpoint_every)
    keys: list[str] = []
    vectors: list[np.ndarray] = []
    done = stored = 0

    def checkpoint() -> None:
        nonlocal stored
        if keys:
            cache.store(list(keys), np.stack(vectors).astype(np.float32))
            stored += len(keys)
            keys.clear()
            vectors.clear()

    try:
        try:
            for batch in batches:
                models = set(batch["model_id"].tolist())
                if models != {cache.model_id}:
                    raise ClusterError(
                        f"the Ray workers embed with {', '.join(sorted(models))}, not {cache.model_id}: "
                        "their LOOKALIKE_WEIGHTS or model settings differ from this machine's"
                    )
                ok = batch["ok"].astype(bool)
                keys.extend(batch["key"][ok].tolist())
                vectors.extend(np.asarray(batch["vector"][ok], np.float32))
                if len(keys) >= checkpoint_every:
                    checkpoint()
                done += len(ok)
                if progress:
                    progress(done, len(todo))
        finally:
            checkpoint()  # whatever arrived and was checked is kept, whatever happens next
    except (ray.exceptions.RayError, ConnectionError) as error:
        raise ClusterError(
            f"the Ray cluster failed after {stored} new vectors (they are cached; run again to continue): "
            f"{_first_line(error)}"
        ) from None
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
    token_file: str | None = None,
) -> folders.Collection:
    """``folders.index_folder`` with the embedding step run as Ray Data ``map_batches``.

    ``factory()`` builds the embedder inside each Ray actor (it must be picklable, e.g. a
    ``functools.partial``); ``model_id`` must equal that embedder's id, so the same cache is written.
    """
    folder = check_folder(folder)
    cache = cache if cache is not None else EmbeddingCache(model_id)
    connect(address, token_file=token_file)
    started = time.perf_counter()
    new = embed_missing(folder, factory, cache, batch_size=batch_size, actors=actors, progress=progress)
    collection = folders.index_folder(folder, _ModelIdOnly(model_id), cache=cache)
    collection.stats.new, collection.stats.reused = new, max(collection.stats.reused - new, 0)
    collection.stats.seconds = time.perf_counter() - started
    return collection
