"""Compact style vectors: Gram matrices of a backbone's layers (VGG19 or the bundled EfficientNet-Lite0), each
layer's upper triangle projected to a few hundred values.

``StyleModel`` is the style search's embedder (``model_id``, ``prepare``, batched ``embed``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from lookalike.core.counters import count_inference
from lookalike.core.images import square_image
from lookalike.core.vectors import normalize
from lookalike.style.backbones import LITE0, LITE0_STYLE_LAYERS, VGG19, load_backbone
from lookalike.style.vgg19 import STYLE_LAYERS, default_precision, gram_matrix, upper_triangle

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
    backbone: str = VGG19

    @classmethod
    def for_backbone(cls, backbone: str) -> StyleConfig:
        """The measured default layers of each backbone; Lite0 runs in float32 (its depthwise layers gain
        nothing from bf16 on CPUs)."""
        if backbone == LITE0:
            return cls(layers=LITE0_STYLE_LAYERS, precision="float32", backbone=LITE0)
        return cls(backbone=backbone)

    def model_id(self, weights: str) -> str:
        return (
            f"{self.backbone}-gram|layers={','.join(self.layers)}|size={self.size}|dims={self.dims}"
            f"|w={self.layer_weights}|seed={self.seed}|precision={self.precision}|weights={weights}"
        )


class StyleModel:
    """Images -> compact style vectors (float32, at most 1,024 values), in batches.

    Each image is resized to ``size`` pixels on the short side and centre-cropped to a square, so a batch
    is one tensor and every image is seen at the same scale (Gram statistics depend on scale).
    """

    def __init__(self, config: StyleConfig | None = None, backbone=None, note: str | None = None):
        import tensorflow as tf

        self.config = config or StyleConfig()
        loaded = load_backbone(self.config.backbone, self.config.layers, self.config.precision, self.config.size,
                               backbone)
        self.features, self.preprocess = loaded.features, loaded.preprocess
        self.model_id = self.config.model_id(loaded.weights_tag)
        self.note = note  # one line for people: which model runs, and why when it was chosen for them
        self.projections = [
            projection_matrix(self.features.outputs[i].shape[-1], dim, self.config.seed)
            for i, dim in enumerate(self.config.dims)
        ]
        self._grams = tf.function(self._grams_graph, reduce_retracing=True, jit_compile=False)

    @classmethod
    def load(cls, config: StyleConfig | None = None, note: str | None = None) -> StyleModel:
        return cls(config, note=note)

    @property
    def backbone_name(self) -> str:
        return self.config.backbone

    def _grams_graph(self, batch):
        import tensorflow as tf

        # Features may be bf16; Gram sums run over up to 50,176 positions, so they are taken in float32.
        return [gram_matrix(tf.cast(features, tf.float32)) for features in self.features(batch, training=False)]

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """Resize and crop one RGB image to the working resolution (cheap; runs in decode threads)."""
        return square_image(image, self.config.size)

    def grams(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Gram matrices per layer for a batch of prepared images."""
        count_inference(self.config.backbone)
        return [g.numpy() for g in self._grams(self.preprocess(np.stack(images)))]

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
