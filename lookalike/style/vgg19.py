"""VGG19 as a feature extractor: the layers, the weights, the precision, the backbone and Gram matrices.

Both style tools share it: ``vectors.StyleModel`` (style search) and ``transfer_model.TransferModel``
(style transfer). Keras is imported inside the functions that build models, so importing this is cheap.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lookalike.core import weights
from lookalike.core.counters import count_load
from lookalike.core.pretrained import keras_application

STYLE_LAYERS: tuple[str, ...] = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
CONTENT_LAYER = "block5_conv2"
WEIGHTS_KEY = "vgg19"  # its published file, in lookalike.core.weights
# ImageNet channel means (BGR) that VGG19 was trained with.
VGG_MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)
RANDOM_INIT_SEED = 1234  # random weights are seeded so that their caches stay valid between runs


_POLICY_LOCK = threading.Lock()


def cpu_has_bf16() -> bool:
    """True when the CPU multiplies bfloat16 natively (AVX512-BF16 or AMX), where bf16 VGG19 runs faster."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def default_precision() -> str:
    """``LOOKALIKE_PRECISION`` if set, else bfloat16 where the CPU supports it natively, else float32."""
    chosen = os.environ.get("LOOKALIKE_PRECISION", "").strip().lower()
    if chosen in ("float32", "bfloat16"):
        return chosen
    return "bfloat16" if cpu_has_bf16() else "float32"


def vgg19_backbone(precision: str = "float32", resolved: weights.Resolved | None = None):
    """VGG19 without its classifier, with the weights the settings choose (``resolved``, if given).

    ``precision="bfloat16"`` computes in bf16 (weights stay float32). Raises ``WeightsUnavailable``
    with one user-facing message when the weights are missing, damaged or the wrong file.
    """
    import keras

    resolved = resolved or weights.resolve(WEIGHTS_KEY)
    with _POLICY_LOCK:
        previous = keras.mixed_precision.global_policy()
        keras.mixed_precision.set_global_policy("mixed_bfloat16" if precision == "bfloat16" else "float32")
        try:
            if resolved.path is None:
                keras.utils.set_random_seed(RANDOM_INIT_SEED)
            backbone = keras_application(WEIGHTS_KEY, resolved, include_top=False)
        finally:
            keras.mixed_precision.set_global_policy(previous)
    count_load("vgg19")
    return backbone


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
