"""The classifier network and what it takes as input. Keras is imported inside the builders, so importing this
is cheap. One head per backbone (:mod:`lookalike.classifier.backbones`):

- EfficientNetB0 (no top) → pooling → dropout → Dense(32) ``embedding`` → softmax: the design's network;
- EfficientNet-Lite0 → its pooled 1,280-d features (``embedding``) → dropout → Dense ``_fc`` → softmax: the
  head of the PyTorch checkpoint, so weights fine-tuned there load unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from lookalike.classifier.backbones import BUNDLED, EFFICIENTNET_B0, LITE0, Backbone
from lookalike.core import lite0
from lookalike.core.counters import count_load
from lookalike.core.images import square_image
from lookalike.core.weights import resolve_pretrained_weights
from lookalike.domain import to_fashion_mnist

FASHION = "fashion-mnist"
PHOTO = "photo"  # short side resized and centre-cropped: the EfficientNetB0 photo models
PHOTO_SQUASH = "photo-squash"  # the whole photo squashed to a square (bicubic): the Lite0 photo models
BACKBONE = "EfficientNetB0"
WEIGHTS_FILE = "efficientnetb0_notop.h5"
WEIGHTS_URL = "https://storage.googleapis.com/keras-applications/efficientnetb0_notop.h5"
MODEL_FILE = "model.keras"
METADATA_FILE = "metadata.json"
EVALUATION_FILE = "evaluation.json"
CONFUSION_FILE = "confusion_matrix.png"
EMBEDDING_LAYER = "embedding"
EMBEDDING_DIM = 32  # EfficientNetB0's; a Lite0 model embeds with its 1,280 pooled features
PHOTO_SIZE = 224
FASHION_SIZE = 32  # EfficientNetB0 from scratch (its minimum); the shipped Lite0 model reads 64 px
MIN_SIZE = 32  # the smallest input of either backbone (five stride-2 stages)


class ClassifierError(RuntimeError):
    """A model or dataset cannot be used. The message is meant for people."""


# ---------------------------------------------------------------------------------------------
# Preprocessing: what the network sees
# ---------------------------------------------------------------------------------------------


def gray_to_input(gray: np.ndarray, size: int) -> np.ndarray:
    """A 28×28 (or any) grayscale uint8 image to the model's size×size×3 input (channels replicated)."""
    gray = np.asarray(gray, dtype=np.uint8).reshape(gray.shape[0], gray.shape[1])
    if gray.shape != (size, size):
        gray = np.asarray(Image.fromarray(gray).resize((size, size), Image.Resampling.BILINEAR))
    return np.repeat(gray[..., None], 3, axis=2)

def prepare_image(rgb: np.ndarray, preprocessing: str, size: int) -> np.ndarray:
    """An RGB uint8 photo to the uint8 size×size×3 array the model takes (it rescales inside).

    A Fashion-MNIST model sees the photo as Fashion-MNIST would show it (``domain.to_fashion_mnist``).
    """
    if preprocessing == FASHION:
        return gray_to_input(to_fashion_mnist(rgb).image[..., 0], size)
    if preprocessing == PHOTO_SQUASH:
        return squash_image(rgb, size)
    return square_image(rgb, size)


def squash_image(rgb: np.ndarray, size: int) -> np.ndarray:
    """The whole photo resized to ``size``×``size`` (bicubic), its aspect ratio not kept: nothing is cropped."""
    return np.asarray(Image.fromarray(rgb).resize((size, size), Image.Resampling.BICUBIC))


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------


def backbone_weights(from_scratch: bool) -> str | None:
    """What to pass as EfficientNetB0 ``weights=``: None (random) or a local file path."""
    if from_scratch:
        return None
    return resolve_pretrained_weights(BACKBONE, WEIGHTS_FILE, WEIGHTS_URL)


def build_model(
    num_classes: int,
    input_size: int,
    weights: str | None = None,
    trainable_backbone: bool = False,
    dropout: float = 0.2,
    backbone: Backbone = EFFICIENTNET_B0,
) -> Any:
    """EfficientNetB0 (no top) → global average pooling → dropout → Dense(32) ``embedding`` → softmax.

    The backbone's own preprocessing (rescaling and normalisation) is part of the network, so inputs
    are raw 0-255 RGB values. ``backbone=LITE0`` builds :func:`build_lite0_model` instead.
    """
    import keras

    if backbone is LITE0:
        return build_lite0_model(num_classes, input_size, weights, trainable_backbone, dropout)
    if input_size < MIN_SIZE:
        raise ClassifierError(f"EfficientNetB0 needs inputs of at least {MIN_SIZE} px, not {input_size}.")
    count_load("classifier")
    backbone = keras.applications.EfficientNetB0(
        include_top=False, weights=weights, input_shape=(input_size, input_size, 3)
    )
    backbone.trainable = trainable_backbone
    inputs = keras.Input((input_size, input_size, 3), name="image")
    # A frozen backbone keeps BatchNorm in inference mode, also later while its top blocks are fine-tuned.
    features = backbone(inputs, training=None if trainable_backbone else False)
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(features)
    dropped = keras.layers.Dropout(dropout, name="dropout")(pooled)
    embedding = keras.layers.Dense(EMBEDDING_DIM, activation="relu", name=EMBEDDING_LAYER)(dropped)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probabilities")(embedding)
    return keras.Model(inputs, outputs, name="fashion_classifier")


def build_lite0_model(
    num_classes: int, input_size: int, weights: str | None = None, trainable_backbone: bool = False,
    dropout: float = 0.2,
) -> Any:
    """EfficientNet-Lite0 (``weights=BUNDLED``: the bundled ImageNet weights) → pooled features ``embedding``
    → dropout → Dense ``_fc`` → softmax. Takes 0-255 RGB (Lite0 computes ``(x - 127) / 128`` inside)."""
    import keras

    if input_size < MIN_SIZE:
        raise ClassifierError(f"EfficientNet-Lite0 needs inputs of at least {MIN_SIZE} px, not {input_size}.")
    count_load("classifier")
    backbone = lite0.build((input_size, input_size, 3), classes=None, name=LITE0.layer)
    if weights == BUNDLED:
        lite0.load_arrays(backbone, lite0.bundled_arrays()[0], require_head=False)
    backbone.trainable = trainable_backbone
    inputs = keras.Input((input_size, input_size, 3), name="image")
    features = backbone(inputs, training=None if trainable_backbone else False)
    embedding = keras.layers.Identity(name=EMBEDDING_LAYER)(features)
    logits = keras.layers.Dense(num_classes, name="_fc")(keras.layers.Dropout(dropout, name="dropout")(embedding))
    outputs = keras.layers.Activation("softmax", name="probabilities")(logits)
    return keras.Model(inputs, outputs, name="fashion_classifier")


def load_lite0_arrays(model: Any, arrays: dict[str, np.ndarray]) -> None:
    """Copy a whole Lite0 classifier's checkpoint-keyed arrays (backbone and ``_fc`` head) into ``model``."""
    try:
        lite0.load_arrays(model.get_layer(LITE0.layer), arrays, require_head=False)
        lite0.load_arrays(model, arrays)  # the outer model's only weighted layer is the head, ``_fc``
    except ValueError as error:
        raise ClassifierError(f"These weights don't fit the model: {error}") from error


def unfreeze_top(model: Any, backbone: Backbone = EFFICIENTNET_B0) -> int:
    """Make the top blocks of the backbone trainable (BatchNorm stays frozen). Returns how many layers."""
    import keras

    inner = model.get_layer(backbone.layer)
    inner.trainable = True
    count = 0
    for layer in inner.layers:
        wanted = layer.name.startswith(backbone.fine_tune_prefixes) and not isinstance(
            layer, keras.layers.BatchNormalization
        )
        layer.trainable = wanted
        count += wanted
    return count


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------
