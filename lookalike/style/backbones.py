"""The networks style vectors can be read from: VGG19 (the design's) and the bundled EfficientNet-Lite0.

Each gives a frozen Keras model that maps a preprocessed batch to the chosen layers' feature maps, the matching
preprocessing, and a weights tag for cache keys.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from lookalike.core import lite0, weights
from lookalike.style.vgg19 import WEIGHTS_KEY, selected_layers_model, vgg19_backbone
from lookalike.style.vgg19 import preprocess as vgg19_preprocess

VGG19 = "vgg19"
LITE0 = "lite0"
DISPLAY_NAMES = {VGG19: "VGG19", LITE0: "EfficientNet-Lite0 (bundled)"}

# Lite0 stage outputs chosen by leave-one-out P@5 on the 32 labelled paintings (README, "Style models"):
# 56, 28 and 14 px maps for colour and texture, then two 7 px maps for motifs.
LITE0_STYLE_LAYERS: tuple[str, ...] = ("block2", "block4", "block10", "block12", "block13")


@dataclass(frozen=True)
class StyleBackbone:
    name: str
    features: object  # a Keras model: preprocessed batch -> list of (B, H, W, C) maps
    preprocess: Callable[[np.ndarray], np.ndarray]
    weights_tag: str


def lite0_preprocess(images: np.ndarray) -> np.ndarray:
    """Lite0 takes 0-255 RGB; its own first layer rescales."""
    return np.asarray(images, dtype=np.float32)


def load_backbone(name: str, layers: Sequence[str], precision: str, size: int, backbone=None) -> StyleBackbone:
    """Build the named backbone cut at ``layers``. Raises WeightsUnavailable / BundledModelBroken with a message."""
    if name == LITE0:
        features, digest = lite0.bundled_backbone((size, size, 3), outputs=layers)
        return StyleBackbone(LITE0, features, lite0_preprocess, f"sha256:{digest[:16]}")
    if name != VGG19:
        raise ValueError(f"unknown style backbone {name!r}; choose {VGG19} or {LITE0}")
    resolved = weights.resolve(WEIGHTS_KEY)  # before the backbone, so the tag names the file it loads
    features = selected_layers_model(layers, backbone if backbone is not None else vgg19_backbone(precision, resolved))
    return StyleBackbone(VGG19, features, vgg19_preprocess, resolved.label)
