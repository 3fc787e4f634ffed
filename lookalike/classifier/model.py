"""The classifier network: EfficientNetB0 (no top) → pooling → dropout → Dense(32) ``embedding`` → softmax,
and what it takes as input. Keras is imported inside the builders, so importing this is cheap."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from lookalike.core.counters import count_load
from lookalike.core.images import square_image
from lookalike.core.weights import resolve_pretrained_weights
from lookalike.domain import to_fashion_mnist

FASHION = "fashion-mnist"
BACKBONE = "EfficientNetB0"
WEIGHTS_FILE = "efficientnetb0_notop.h5"
WEIGHTS_URL = "https://storage.googleapis.com/keras-applications/efficientnetb0_notop.h5"
MODEL_FILE = "model.keras"
METADATA_FILE = "metadata.json"
EVALUATION_FILE = "evaluation.json"
CONFUSION_FILE = "confusion_matrix.png"
EMBEDDING_LAYER = "embedding"
EMBEDDING_DIM = 32
PHOTO_SIZE = 224
FASHION_SIZE = 32
MIN_SIZE = 32  # EfficientNetB0's smallest input
FINE_TUNE_PREFIXES = ("block6", "block7", "top_")  # the blocks unfrozen by --fine-tune


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
    return square_image(rgb, size)


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
) -> Any:
    """EfficientNetB0 (no top) → global average pooling → dropout → Dense(32) ``embedding`` → softmax.

    The backbone's own preprocessing (rescaling and normalisation) is part of the network, so inputs
    are raw 0-255 RGB values.
    """
    import keras

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


def unfreeze_top(model: Any) -> int:
    """Make the top blocks of the backbone trainable (BatchNorm stays frozen). Returns how many layers."""
    import keras

    backbone = model.get_layer("efficientnetb0")
    backbone.trainable = True
    count = 0
    for layer in backbone.layers:
        wanted = layer.name.startswith(FINE_TUNE_PREFIXES) and not isinstance(
            layer, keras.layers.BatchNormalization
        )
        layer.trainable = wanted
        count += wanted
    return count


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------
