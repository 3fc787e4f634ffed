"""Front door of the style tools: VGG19 style vectors (``StyleModel``) and neural style transfer (``stylize``).

    python style_transfer.py CONTENT STYLE -o OUT.png [--size 512] [--steps 60] [--strength 0.5] [--preserve-colors]

The code lives in ``lookalike.style``; this module is its command line and re-exports its public API.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import numpy as np

from lookalike.core.images import ImageError, png_bytes
from lookalike.core.weights import WeightsUnavailable
from lookalike.style.transfer import (
    DEFAULT_STRENGTH,
    DEFAULT_TRANSFER_SIZE,
    DEFAULT_TRANSFER_STEPS,
    MAX_TRANSFER_SIZE,
    as_rgb_image,
    save_png,
    strength_factor,
    stylize,
    transfer_model,
)
from lookalike.style.vectors import (
    COMPACT_DIMS,
    LAYER_WEIGHTS,
    PROJECTION_SEED,
    StyleConfig,
    StyleModel,
    full_style_vector,
    projection_matrix,
)
from lookalike.style.vgg19 import (
    CONTENT_LAYER,
    STYLE_LAYERS,
    VGG_MEAN_BGR,
    WEIGHTS_KEY,
    default_precision,
    gram_matrix,
    preprocess,
    selected_layers_model,
    upper_triangle,
    vgg19_backbone,
)

__all__ = [
    "COMPACT_DIMS", "CONTENT_LAYER", "DEFAULT_STRENGTH", "DEFAULT_TRANSFER_SIZE", "DEFAULT_TRANSFER_STEPS",
    "LAYER_WEIGHTS", "MAX_TRANSFER_SIZE", "PROJECTION_SEED", "STYLE_LAYERS", "VGG_MEAN_BGR",
    "WEIGHTS_KEY", "StyleConfig", "StyleModel", "as_rgb_image", "default_precision",
    "full_style_vector", "gram_matrix", "main", "png_bytes", "preprocess", "projection_matrix", "save_png",
    "selected_layers_model", "strength_factor", "stylize", "transfer_model", "upper_triangle", "vgg19_backbone",
]


def _parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="style_transfer.py",
        description="Paint a photo in the style of a painting (neural style transfer, Gatys et al.).",
    )
    parser.add_argument("content", help="the photo to repaint")
    parser.add_argument("style", help="the painting whose style to apply")
    parser.add_argument("-o", "--output", required=True, help="where to write the result (PNG)")
    parser.add_argument("--size", type=int, default=DEFAULT_TRANSFER_SIZE, help="long side in pixels (512)")
    parser.add_argument("--steps", type=int, default=DEFAULT_TRANSFER_STEPS, help="optimisation steps (60)")
    parser.add_argument("--strength", type=float, default=DEFAULT_STRENGTH, help="style strength 0–1 (0.5)")
    parser.add_argument("--preserve-colors", action="store_true", help="keep the photo's colours")
    parser.add_argument("--color-method", choices=("luminance", "histogram"), default="luminance")
    parser.add_argument("--optimizer", choices=("adam", "lbfgs"), default="adam")
    parser.add_argument("--single-scale", action="store_true", help="no coarse-to-fine pyramid")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not 0.0 <= args.strength <= 1.0:
        parser.error("--strength must be between 0 and 1")
    if not 32 <= args.size <= MAX_TRANSFER_SIZE:
        parser.error(f"--size must be between 32 and {MAX_TRANSFER_SIZE}")
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: stylise CONTENT with STYLE into OUTPUT, with a progress bar."""
    args = _parse_args(argv)
    started = time.perf_counter()
    try:
        content, style = as_rgb_image(args.content, "content"), as_rgb_image(args.style, "style")
        model = transfer_model()
        result = _run_with_bar(args, content, style, model)
    except (ImageError, WeightsUnavailable) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Interrupted; nothing written.", file=sys.stderr)
        return 130
    try:
        save_png(result.image, args.output)
    except OSError as error:
        print(f"error: cannot write {args.output} ({error.strerror or error}).", file=sys.stderr)
        return 1
    losses = result.losses
    height, width = result.image.shape[:2]
    print(
        f"Wrote {args.output} ({width}×{height}) in {time.perf_counter() - started:.1f} s "
        f"({result.seconds:.1f} s optimising, {result.steps} steps). "
        f"Final losses: style {losses.style:.4g}, content {losses.content:.4g}, "
        f"total variation {losses.tv:.4g}, total {losses.total:.4g}."
    )
    return 0


def _run_with_bar(args, content: np.ndarray, style: np.ndarray, model):
    """``stylize`` with the CLI's options and a tqdm bar that shows the level size and the loss."""
    from tqdm import tqdm

    with tqdm(total=args.steps, desc="Stylising", unit="step") as bar:

        def progress(info) -> None:
            bar.update(info.step - bar.n)
            bar.set_postfix(size=f"{info.shape[1]}×{info.shape[0]}", loss=f"{info.losses.total:.4g}")

        return stylize(
            content, style, size=args.size, steps=args.steps, strength=args.strength,
            preserve_colors=args.preserve_colors, color_method=args.color_method, optimizer=args.optimizer,
            coarse_to_fine=not args.single_scale, seed=args.seed, progress=progress, model=model,
        )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
