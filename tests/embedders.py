"""A cheap, deterministic stand-in for the models: the cache, the index and decoding are the same for any embedder."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image


class GridEmbedder:
    """The mean colour of a ``side`` × ``side`` grid, flattened. Counts the images it embeds and can be told
    to fail after ``fail_after`` images (with ``error``), like a crash or a Ctrl-C part-way through."""

    def __init__(self, model_id: str = "test-grid-v1", fail_after: int | None = None,
                 error: type[BaseException] = RuntimeError, side: int = 4):
        self.model_id = model_id
        self.fail_after = fail_after
        self.error = error
        self.side = side
        self.embedded = 0  # images embedded so far

    def prepare(self, image: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(image).resize((self.side, self.side), Image.Resampling.BOX), np.float32)

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        if self.fail_after is not None and self.embedded + len(images) > self.fail_after:
            raise self.error(f"interrupted after {self.embedded} images")
        self.embedded += len(images)
        return np.stack([image.reshape(-1) / 255.0 + 0.01 for image in images]).astype(np.float32)


class GridBackbone:
    """A stand-in pooled backbone (``lookalike.vae.features.PooledBackbone``): the mean colour of a 4×4 grid of
    a 32×32 input, 48 numbers. Counts the images it sees."""

    name = "grid of mean colours"
    model_id = "test-grid-backbone-v1"
    input_size = 32
    dims = 48

    def __init__(self) -> None:
        self.seen = 0

    def features(self, images: np.ndarray) -> np.ndarray:
        assert images.shape[1:] == (32, 32, 3) and images.dtype == np.uint8
        self.seen += len(images)
        return images.reshape(len(images), 4, 8, 4, 8, 3).mean(axis=(2, 4)).reshape(len(images), -1) / 255 + 0.01
