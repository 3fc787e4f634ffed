"""Which network style search runs on: ``LOOKALIKE_STYLE_MODEL`` / ``--model`` = auto, vgg19 or lite0.

``auto`` keeps the design's VGG19 whenever its ImageNet weights load, and otherwise falls back to the bundled
EfficientNet-Lite0, which needs no download, saying so in one line instead of failing.
"""

from __future__ import annotations

from dataclasses import replace

from lookalike.core import settings
from lookalike.core.weights import WeightsUnavailable
from lookalike.style.backbones import DISPLAY_NAMES, LITE0, VGG19
from lookalike.style.vectors import StyleConfig, StyleModel

AUTO = "auto"
STYLE_MODEL_CHOICES: tuple[str, ...] = (AUTO, VGG19, LITE0)


class UnknownStyleModel(ValueError):
    """LOOKALIKE_STYLE_MODEL or --model names no known network."""


def requested_style_model(requested: str | None = None) -> str:
    """The asked-for choice: the argument, else ``LOOKALIKE_STYLE_MODEL``, else auto."""
    choice = (requested or settings.get_settings().style_model).strip().lower()
    if choice not in STYLE_MODEL_CHOICES:
        raise UnknownStyleModel(
            f"Unknown style model {choice!r}: set LOOKALIKE_STYLE_MODEL (or --model) to one of "
            f"{', '.join(STYLE_MODEL_CHOICES)}."
        )
    return choice


def load_style_model(requested: str | None = None, size: int | None = None) -> StyleModel:
    """The style model for this choice, with a one-line ``note`` naming the network in use.

    ``auto`` tries VGG19 (random weights count: they are what LOOKALIKE_WEIGHTS=random asks for) and falls back
    to Lite0 when the ImageNet weights are missing, damaged or can't be downloaded.
    """
    choice = requested_style_model(requested)
    if choice == LITE0:
        return StyleModel.load(_config(LITE0, size), note=f"Style vectors from the {DISPLAY_NAMES[LITE0]}.")
    if choice == VGG19:
        return StyleModel.load(_config(VGG19, size), note=None)
    try:
        return StyleModel.load(_config(VGG19, size), note=None)
    except WeightsUnavailable as error:
        note = (f"VGG19's ImageNet weights are not available, so style search uses the {DISPLAY_NAMES[LITE0]}. "
                f"{error.reason} {error.fix}")
        return StyleModel.load(_config(LITE0, size), note=note)


def _config(backbone: str, size: int | None) -> StyleConfig:
    config = StyleConfig.for_backbone(backbone)
    return replace(config, size=size) if size is not None else config
