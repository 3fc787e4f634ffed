"""The segments of a style vector, one per style layer of its model, fine to coarse, in plain words.

Segments follow ``StyleConfig.layers`` and ``StyleConfig.dims``, so they fit whichever network made the vectors:
VGG19 (``block1_conv1`` … ``block5_conv1``), the bundled EfficientNet-Lite0 (``block2`` … ``block13``) or a
configuration of other layers. Early layers see small neighbourhoods (colour, fine texture, brushwork), late
layers large ones (motifs, composition).
"""

from __future__ import annotations

import itertools

from lookalike.core.segments import Segment
from lookalike.style.vectors import StyleConfig

# Plain words for depth, fine to coarse.
DEPTH_LABELS: tuple[str, ...] = (
    "colour & fine texture",
    "texture & brushwork",
    "patterns",
    "shapes & motifs",
    "motifs & composition",
)

# The default style layers of each network, by what their receptive fields hold.
LAYER_LABELS: dict[str, str] = {
    # VGG19: 224, 112, 56, 28 and 14 px maps at a 224 px input
    "block1_conv1": DEPTH_LABELS[0],
    "block2_conv1": DEPTH_LABELS[1],
    "block3_conv1": DEPTH_LABELS[2],
    "block4_conv1": DEPTH_LABELS[3],
    "block5_conv1": DEPTH_LABELS[4],
    # EfficientNet-Lite0: 56, 28, 14, 7 and 7 px maps
    "block2": DEPTH_LABELS[0],
    "block4": DEPTH_LABELS[1],
    "block10": DEPTH_LABELS[2],
    "block12": DEPTH_LABELS[3],
    "block13": DEPTH_LABELS[4],
}


def layer_label(layer: str, position: int, count: int) -> str:
    """A layer's plain-word label: its own for known layers, else by its place in the list, with its name."""
    if layer in LAYER_LABELS:
        return LAYER_LABELS[layer]
    depth = 0 if count < 2 else round(position * (len(DEPTH_LABELS) - 1) / (count - 1))
    return f"{DEPTH_LABELS[depth]} ({layer})"


def style_segments(config: StyleConfig) -> tuple[Segment, ...]:
    """One segment per style layer of ``config``, fine to coarse, sized by ``config.dims``."""
    if len(config.layers) != len(config.dims):
        raise ValueError(f"{len(config.layers)} style layers but {len(config.dims)} projection sizes")
    edges = [0, *itertools.accumulate(config.dims)]
    return tuple(
        Segment(layer, layer_label(layer, i, len(config.layers)), edges[i], edges[i + 1])
        for i, layer in enumerate(config.layers)
    )
