"""Compact style vectors: VGG19 Gram matrices, each layer's upper triangle projected to a few hundred values.

``StyleModel`` is the style search's embedder (``model_id``, ``prepare``, batched ``embed``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from lookalike.core.counters import count_inference
from lookalike.core.images import square_image
from lookalike.core.vectors import normalize
from lookalike.core.weights import weights_label
from lookalike.style.vgg19 import (
    STYLE_LAYERS,
    default_precision,
    gram_matrix,
    preprocess,
    selected_layers_model,
    upper_triangle,
    vgg19_backbone,
)

# Output dimensions given to each layer (sum 1,024) and the weight of each layer.
COMPACT_DIMS: tuple[int, ...] = (128, 192, 224, 240, 240)
LAYER_WEIGHTS: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0)
PROJECTION_SEED = 20240611


def projection_matrix(channels: int, out_dim: int, seed: int) -> np.ndarray:
    """A fixed, seeded Gaussian projection of a layer's upper-triangle Gram vector to ``out_dim``."""
    rng = np.random.default_rng([seed, channels, out_dim])
    size = channels * (channels + 1) // 2
    return (rng.standard_normal((size, out_dim), dtype=np.float32) / np.sqrt(out_dim)).astype(np.float32)


def full_style_vector(grams: Sequence[np.ndarray], weights: Sequence[float] = LAYER_WEIGHTS) -> np.ndarray:
    """The exact style embedding: per layer, the unit-normalised upper triangle, weighted, concatenated."""
    parts = [w * normalize(upper_triangle(g)) for g, w in zip(grams, weights, strict=True)]
    return np.concatenate(parts, axis=-1)


@dataclass(frozen=True)
class StyleConfig:
    """Everything that changes the style vectors; its id keys the embedding cache."""

    layers: tuple[str, ...] = STYLE_LAYERS
    size: int = 224
    dims: tuple[int, ...] = COMPACT_DIMS
    layer_weights: tuple[float, ...] = LAYER_WEIGHTS
    seed: int = PROJECTION_SEED
    precision: str = field(default_factory=default_precision)  # "float32" or "bfloat16"

    def model_id(self, weights: str) -> str:
        return (
            f"vgg19-gram|layers={','.join(self.layers)}|size={self.size}|dims={self.dims}"
            f"|w={self.layer_weights}|seed={self.seed}|precision={self.precision}|weights={weights}"
        )


class StyleModel:
    """Images -> compact style vectors (float32, at most 1,024 values), in batches.

    Each image is resized to ``size`` pixels on the short side and centre-cropped to a square, so a batch
    is one tensor and every image is seen at the same scale (Gram statistics depend on scale).
    """

    def __init__(self, config: StyleConfig | None = None, backbone=None):
        import tensorflow as tf

        self.config = config or StyleConfig()
        self.features = selected_layers_model(
            self.config.layers, backbone if backbone is not None else vgg19_backbone(self.config.precision)
        )
        self.model_id = self.config.model_id(weights_label())
        self.projections = [
            projection_matrix(self.features.outputs[i].shape[-1], dim, self.config.seed)
            for i, dim in enumerate(self.config.dims)
        ]
        self._grams = tf.function(self._grams_graph, reduce_retracing=True, jit_compile=False)

    @classmethod
    def load(cls, config: StyleConfig | None = None) -> StyleModel:
        return cls(config)

    def _grams_graph(self, batch):
        import tensorflow as tf

        # Features may be bf16; Gram sums run over up to 50,176 positions, so they are taken in float32.
        return [gram_matrix(tf.cast(features, tf.float32)) for features in self.features(batch, training=False)]

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """Resize and crop one RGB image to the working resolution (cheap; runs in decode threads)."""
        return square_image(image, self.config.size)

    def grams(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Gram matrices per layer for a batch of prepared images."""
        count_inference("vgg19")
        return [g.numpy() for g in self._grams(preprocess(np.stack(images)))]

    def embed_full(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """The exact (uncompressed) style vectors, about 306,000 floats each: for evaluation only."""
        return full_style_vector(self.grams(images), self.config.layer_weights)

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Compact style vectors (n, sum(dims)) for a batch of prepared images."""
        grams = self.grams(images)
        parts = [
            weight * normalize(normalize(upper_triangle(gram)) @ projection)
            for gram, projection, weight in zip(grams, self.projections, self.config.layer_weights, strict=True)
        ]
        return np.concatenate(parts, axis=-1).astype(np.float32)
