"""VGG19 style features: Gram matrices, compact style vectors, and neural style transfer.

The same VGG19 feature model serves two jobs:
* ``StyleModel`` turns images into compact style vectors for the search index;
* ``stylize`` paints a content photo in the style of a painting (Gatys et al.).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

import utils

STYLE_LAYERS: tuple[str, ...] = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
CONTENT_LAYER = "block5_conv2"
VGG19_WEIGHTS_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
VGG19_WEIGHTS_URL = f"https://storage.googleapis.com/tensorflow/keras-applications/vgg19/{VGG19_WEIGHTS_FILE}"
# ImageNet channel means (BGR) that VGG19 was trained with.
VGG_MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)
RANDOM_INIT_SEED = 1234  # random weights are seeded so that their caches stay valid between runs

# Compact style vector: output dimensions given to each layer (sum 1,024) and the weight of each layer.
COMPACT_DIMS: tuple[int, ...] = (128, 192, 224, 240, 240)
LAYER_WEIGHTS: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0)
PROJECTION_SEED = 20240611


# ---------------------------------------------------------------------------------------------
# Feature model
# ---------------------------------------------------------------------------------------------


def vgg19_backbone():
    """VGG19 without its classifier, with weights chosen by ``LOOKALIKE_WEIGHTS``.

    Raises ``utils.WeightsUnavailable`` with a user-facing message when ImageNet weights are missing.
    """
    import keras

    weights = utils.resolve_pretrained_weights("VGG19", VGG19_WEIGHTS_FILE, VGG19_WEIGHTS_URL)
    if weights is None:
        keras.utils.set_random_seed(RANDOM_INIT_SEED)
    utils.count_load("vgg19")
    return keras.applications.VGG19(include_top=False, weights=weights)


def selected_layers_model(layer_names: Sequence[str], backbone=None):
    """A frozen Keras model that maps a preprocessed batch to the outputs of ``layer_names``."""
    import keras

    backbone = backbone or vgg19_backbone()
    backbone.trainable = False
    outputs = [backbone.get_layer(name).output for name in layer_names]
    return keras.Model(backbone.input, outputs, name="vgg19_selected_layers")


def preprocess(images: np.ndarray) -> np.ndarray:
    """RGB uint8/float in [0, 255] -> VGG19 input (BGR, mean-subtracted), as keras' ``vgg19.preprocess_input``."""
    return np.asarray(images, dtype=np.float32)[..., ::-1] - VGG_MEAN_BGR


def gram_matrix(features):
    """Gram matrices of a batch of feature maps (B, H, W, C) -> (B, C, C), divided by H·W."""
    import tensorflow as tf

    features = tf.convert_to_tensor(features)
    shape = tf.shape(features)
    flat = tf.reshape(features, (shape[0], shape[1] * shape[2], shape[3]))
    return tf.matmul(flat, flat, transpose_a=True) / tf.cast(shape[1] * shape[2], features.dtype)


def upper_triangle(grams: np.ndarray) -> np.ndarray:
    """Each symmetric (C, C) Gram matrix stored once: its upper triangle, off-diagonal scaled by √2.

    The √2 keeps dot products (and so cosine similarity) equal to those of the full matrices.
    """
    channels = grams.shape[-1]
    rows, cols = np.triu_indices(channels)
    scale = np.where(rows == cols, 1.0, np.sqrt(2.0)).astype(np.float32)
    return grams[..., rows, cols] * scale


# ---------------------------------------------------------------------------------------------
# Compact style vectors
# ---------------------------------------------------------------------------------------------


def projection_matrix(channels: int, out_dim: int, seed: int) -> np.ndarray:
    """A fixed, seeded Gaussian projection of a layer's upper-triangle Gram vector to ``out_dim``."""
    rng = np.random.default_rng([seed, channels, out_dim])
    size = channels * (channels + 1) // 2
    return (rng.standard_normal((size, out_dim), dtype=np.float32) / np.sqrt(out_dim)).astype(np.float32)


def full_style_vector(grams: Sequence[np.ndarray], weights: Sequence[float] = LAYER_WEIGHTS) -> np.ndarray:
    """The exact style embedding: per layer, the unit-normalised upper triangle, weighted, concatenated."""
    parts = [w * _unit(upper_triangle(g)) for g, w in zip(grams, weights, strict=True)]
    return np.concatenate(parts, axis=-1)


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


@dataclass(frozen=True)
class StyleConfig:
    """Everything that changes the style vectors; its id keys the embedding cache."""

    layers: tuple[str, ...] = STYLE_LAYERS
    size: int = 224
    dims: tuple[int, ...] = COMPACT_DIMS
    layer_weights: tuple[float, ...] = LAYER_WEIGHTS
    seed: int = PROJECTION_SEED

    def model_id(self, weights: str) -> str:
        return (
            f"vgg19-gram|layers={','.join(self.layers)}|size={self.size}|dims={self.dims}"
            f"|w={self.layer_weights}|seed={self.seed}|weights={weights}"
        )


class StyleModel:
    """Images -> compact style vectors (float32, at most 1,024 values), in batches.

    Each image is resized to ``size`` pixels on the short side and centre-cropped to a square, so a batch
    is one tensor and every image is seen at the same scale (Gram statistics depend on scale).
    """

    def __init__(self, config: StyleConfig | None = None, backbone=None):
        import tensorflow as tf

        self.config = config or StyleConfig()
        self.features = selected_layers_model(self.config.layers, backbone)
        self.model_id = self.config.model_id(utils.weights_label())
        self.projections = [
            projection_matrix(self.features.outputs[i].shape[-1], dim, self.config.seed)
            for i, dim in enumerate(self.config.dims)
        ]
        self._grams = tf.function(self._grams_graph, reduce_retracing=True, jit_compile=False)

    @classmethod
    def load(cls, config: StyleConfig | None = None) -> StyleModel:
        return cls(config)

    def _grams_graph(self, batch):
        return [gram_matrix(features) for features in self.features(batch, training=False)]

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """Resize and crop one RGB image to the working resolution (cheap; runs in decode threads)."""
        return utils.square_image(image, self.config.size)

    def grams(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Gram matrices per layer for a batch of prepared images."""
        utils.count_inference("vgg19")
        return [g.numpy() for g in self._grams(preprocess(np.stack(images)))]

    def embed_full(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """The exact (uncompressed) style vectors, about 306,000 floats each: for evaluation only."""
        return full_style_vector(self.grams(images), self.config.layer_weights)

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Compact style vectors (n, sum(dims)) for a batch of prepared images."""
        grams = self.grams(images)
        parts = [
            weight * _unit(_unit(upper_triangle(gram)) @ projection)
            for gram, projection, weight in zip(grams, self.projections, self.config.layer_weights, strict=True)
        ]
        return np.concatenate(parts, axis=-1).astype(np.float32)


def config_digest(config: StyleConfig) -> str:
    return hashlib.sha256(config.model_id("").encode()).hexdigest()[:12]
