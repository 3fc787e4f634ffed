"""Collections: the images of a folder, indexed incrementally through the embedding cache.

    folder -> list (LOOKALIKE_ROOTS) -> hash (FileHashes memo) -> load_image -> embedder -> EmbeddingCache

Only files whose content the cache lacks are decoded and embedded; bad files are skipped and listed.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from lookalike.core import images
from lookalike.core.cache import Embedder, EmbeddingCache, array_key
from lookalike.core.files import check_folder, file_sha256, inside_roots, write_text_atomic
from lookalike.core.progress import Progress
from lookalike.core.settings import get_settings
from lookalike.core.vectors import normalize


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

    @cached_property
    def rows(self) -> dict[Path, int]:
        """Each path's row in ``paths`` and ``vectors``, built once: finds a stored vector by its file."""
        return {path: row for row, path in enumerate(self.paths)}


class FileHashes:
    """Content hashes of a folder's files, remembered by (size, mtime) so unchanged files aren't re-read."""

    def __init__(self, folder: Path, root: Path | None = None):
        name = hashlib.sha256(str(folder).encode()).hexdigest()[:16]
        self.path = (root or get_settings().cache_dir / "collections") / f"{name}.json"
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
        digest = file_sha256(path)
        self.entries[str(path)] = [stat.st_size, stat.st_mtime_ns, digest]
        return digest

    def save(self, keep: Iterable[Path]) -> int:
        """Write the memo, dropping files that are gone. Returns how many were dropped."""
        keep_names = {str(path) for path in keep}
        removed = len(set(self.entries) - keep_names)
        self.entries = {name: entry for name, entry in self.entries.items() if name in keep_names}
        write_text_atomic(self.path, json.dumps(self.entries))
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
    return (path for path in images.list_images(folder) if inside_roots(path))


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
    folder = check_folder(folder)
    cache = cache if cache is not None else EmbeddingCache(embedder.model_id)  # an empty cache is falsy
    len(cache)  # read the shards once, before worker threads look keys up
    hashes = FileHashes(folder)
    total = count_images(folder) if progress else 0

    def key_and_prepare(path: Path) -> PathResult:
        try:
            key = hashes.key(path)
            if cache.lookup([key]):
                return path, key, None
            return path, key, embedder.prepare(images.load_image(path))
        except (images.ImageError, OSError) as error:
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


