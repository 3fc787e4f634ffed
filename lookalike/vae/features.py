"""Pretrained features as a second way to match: any backbone that pools an image into one vector plugs in.

A ``PooledBackbone`` needs a stable ``model_id`` (it keys the cache), a square ``input_size`` and
``features(images)``: uint8 RGB (N, size, size, 3) → float32 (N, D). ``FeatureEmbedder`` makes it an
``Embedder`` for the shared embedding cache: each photo is brought to the backbone's input the way the
catalog's photos are brought to the VAE's (padded square with its border colour), at the backbone's size,
from the original file, so nothing is lost to the catalog's 96 px.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from lookalike.core import lite0
from lookalike.core.cache import EmbeddingCache, array_key, embed_with_cache
from lookalike.core.files import file_sha256
from lookalike.core.images import load_image
from lookalike.core.progress import Progress
from lookalike.datasets.catalog import Catalog
from lookalike.domain import to_clothing_photo


class PooledBackbone(Protocol):
    """A pretrained network reduced to one vector per image."""

    name: str  # for people, e.g. "EfficientNet-Lite0 (ImageNet)"
    model_id: str  # stable across runs, changes with the weights: part of every cache key
    input_size: int  # square input side, in pixels

    def features(self, images: np.ndarray) -> np.ndarray: ...


class BackboneUnavailable(RuntimeError):
    """A bundled backbone cannot be loaded here (files missing or damaged). The message says why."""


class Lite0Backbone:
    """The bundled ImageNet EfficientNet-Lite0 (``lookalike.core.lite0``), frozen, ending at its 1,280-d
    global-average-pooled features, at its native 224×224.

    Creating it only checks the bundled weights against their recorded hash (a tenth of a second), so a page
    can offer the option at once; the network is built on the first ``features`` call.
    """

    name = "EfficientNet-Lite0 (ImageNet)"
    input_size = 224

    def __init__(self) -> None:
        try:
            _, digest = lite0.bundled_arrays()
        except lite0.BundledModelBroken as error:
            raise BackboneUnavailable(str(error)) from error
        self.model_id = f"efficientnet-lite0-imagenet-{digest[:16]}"
        self._model: Any = None

    def features(self, images: np.ndarray) -> np.ndarray:
        if self._model is None:
            self._model, _ = lite0.bundled_backbone((self.input_size, self.input_size, 3))
        return np.asarray(self._model.predict_on_batch(np.asarray(images, dtype=np.float32)), dtype=np.float32)


# Factories of the backbones this installation bundles, in order of preference. Each returns a loaded
# ``PooledBackbone`` or raises ``BackboneUnavailable``; ``bundled_backbone`` takes the first that loads.
BACKBONES: list[Callable[[], PooledBackbone]] = [Lite0Backbone]


def bundled_backbone() -> PooledBackbone | None:
    """The first bundled backbone that loads, or None: then matching by pretrained features is not offered."""
    for factory in BACKBONES:
        try:
            return factory()
        except BackboneUnavailable:
            continue
    return None


class FeatureEmbedder:
    """A ``PooledBackbone`` as an embedder for ``embed_with_cache``: RGB photo → pooled features."""

    def __init__(self, backbone: PooledBackbone):
        self.backbone = backbone
        self.model_id = f"pooled-{backbone.model_id}-border-padded-{backbone.input_size}px"

    def prepare(self, image: np.ndarray) -> np.ndarray:
        rgb = np.asarray(image, dtype=np.uint8)
        if rgb.ndim == 2 or rgb.shape[-1] == 1:  # grey catalog items (Fashion-MNIST) as RGB
            rgb = np.repeat(rgb.reshape(*rgb.shape[:2], 1), 3, axis=2)
        return to_clothing_photo(rgb, self.backbone.input_size).image

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        return np.asarray(self.backbone.features(np.stack(images)), dtype=np.float32)

    def embed_photo(self, rgb: np.ndarray) -> np.ndarray:
        """One query photo's vector (not cached: uploads are seen once)."""
        return self.embed([self.prepare(rgb)])[0]


def catalog_features(
    embedder: FeatureEmbedder, catalog: Catalog, progress: Progress | None = None, batch_size: int = 32
) -> np.ndarray:
    """Pooled features of every catalog item, embedded once and kept in the shared cache.

    Photo catalogs are embedded from their original files (keyed by content hash); other catalogs from their
    arrays (keyed by ``array_key``).
    """
    if catalog.paths is not None:
        paths = catalog.paths
        keys = [file_sha256(path) for path in paths]
        side = 2 * embedder.backbone.input_size

        def load(index: int) -> np.ndarray:
            return load_image(paths[index], max_side=side)
    else:
        keys = [array_key(image) for image in catalog.images]

        def load(index: int) -> np.ndarray:
            return catalog.images[index]

    cache = EmbeddingCache(embedder.model_id)
    vectors = embed_with_cache(keys, load, embedder, cache=cache, batch_size=batch_size, progress=progress,
                               checkpoint_every=512)
    cache.compact()
    return vectors
