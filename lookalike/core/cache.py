"""The on-disk embedding cache: vectors keyed by content hash and model id, for every tool.

    image -> embedder.prepare -> embedder.embed(batch) -> EmbeddingCache (content hash + model id)

The cache knows nothing about a model except its ``model_id``.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from lookalike.core.files import save_npz_atomic
from lookalike.core.progress import Progress
from lookalike.core.settings import get_settings


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
        self.folder = (root or get_settings().cache_dir / "embeddings") / model_key(model_id)
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
        save_npz_atomic(
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
