"""The two backbones a classifier can stand on: their names, their layer in the classifier, and the top blocks
that ``--fine-tune`` unfreezes.

- **EfficientNetB0** (``keras.applications``) is the design's backbone. Its ImageNet weights come through
  ``LOOKALIKE_WEIGHTS``; they need a download or a file in ``models/``.
- **EfficientNet-Lite0** (:mod:`lookalike.core.lite0`) ships with the project (``models/efficientnet-lite0/``),
  so a real ImageNet backbone is there offline. Its classifier head is named ``_fc`` like the PyTorch
  checkpoint's, so weights fine-tuned elsewhere load with :func:`lookalike.core.lite0.load_arrays`.
"""

from __future__ import annotations

from dataclasses import dataclass

AUTO = "auto"  # EfficientNetB0 when its ImageNet weights can be had (or from scratch), else the bundled Lite0
BUNDLED = "bundled"  # the ``weights`` value that asks for the bundled Lite0 ImageNet weights


@dataclass(frozen=True)
class Backbone:
    """A backbone's command-line key, the name kept in ``metadata.json``, and its layer in the classifier."""

    key: str
    name: str
    layer: str  # the nested backbone model's name inside the classifier
    fine_tune_prefixes: tuple[str, ...]  # layer-name prefixes of the top blocks (BatchNorm stays frozen)


EFFICIENTNET_B0 = Backbone("efficientnetb0", "EfficientNetB0", "efficientnetb0", ("block6", "block7", "top_"))
# Lite0's last two stages (blocks 11-15) and its 1x1 head convolution: the same share of the network as B0's.
LITE0 = Backbone("efficientnet-lite0", "EfficientNet-Lite0", "efficientnet_lite0",
                 (*(f"_blocks.{i}." for i in range(11, 16)), "_conv_head"))
BACKBONES = {backbone.key: backbone for backbone in (EFFICIENTNET_B0, LITE0)}
CHOICES = (AUTO, *BACKBONES)
NAMES = tuple(backbone.name for backbone in BACKBONES.values())


def by_name(name: str) -> Backbone:
    """The backbone that ``metadata.json`` (its ``backbone`` name) or the command line (its key) names."""
    for backbone in BACKBONES.values():
        if name in (backbone.name, backbone.key):
            return backbone
    raise KeyError(name)
