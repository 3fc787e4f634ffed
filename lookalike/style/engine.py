"""Neural style transfer (Gatys et al.): the coarse-to-fine run over a pyramid of image sizes.

``transfer.stylize`` is the public entry point; this module plans the levels and runs the optimiser
(``optimisers``) on the feature stack (``transfer_model``) at each one.

Coarse to fine: a quarter of the steps run at half resolution, where a step costs a quarter as much; the
result is upsampled, the photo's fine detail lost by the downscale is added back, and the other steps
refine at full resolution. Measured at 256 px, 60 steps, random weights (loss at full resolution, float32;
CPU seconds): single-scale float32 0.0212 / 37 s; single-scale bfloat16 0.0217 / 21 s; this default
0.0229 / 17 s; half the steps at half size 0.0272 / 13 s. Coarse steps are cheap but weaker, so at an
equal step count the pyramid costs some loss; at an equal time it wins.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from lookalike.style.optimisers import Best, Progress, ProgressCallback, Run, optimise_adam, optimise_lbfgs
from lookalike.style.pixels import (
    MIN_SIDE,
    combine_luminance,
    luminance_image,
    match_color_histogram,
    resize,
    resize_long_side,
    to_uint8,
)
from lookalike.style.transfer_model import Losses, Target, TransferModel, Weights, make_target

__all__ = ["COLOR_METHODS", "DEFAULT_SCHEDULE", "INITS", "Losses", "Options", "Progress", "Result", "Target",
           "TransferModel", "Weights", "run"]

# Steps per pyramid level, as (downscale factor, share of the step budget), coarsest first: a quarter of
# the steps at half resolution (each a quarter of the cost), the rest at full resolution.
DEFAULT_SCHEDULE: tuple[tuple[int, float], ...] = ((2, 0.25), (1, 0.75))
COLOR_METHODS = ("luminance", "histogram")
INITS = ("content", "noise")


def split_steps(steps: int, schedule: Sequence[tuple[int, float]]) -> list[int]:
    """Share ``steps`` between pyramid levels; the finest level gets at least one step."""
    shares = np.array([share for _, share in schedule], dtype=np.float64)
    counts = np.floor(steps * shares / shares.sum()).astype(int)
    counts[-1] += steps - counts.sum()
    return [int(c) for c in counts]


def pyramid_shapes(shape: tuple[int, int], schedule: Sequence[tuple[int, float]]) -> list[tuple[int, int]]:
    """The working (height, width) of each level, aspect kept; the short side never drops below MIN_SIDE."""
    height, width = shape
    shapes = []
    for factor, _ in schedule:
        scale = min(1.0, max(1.0 / factor, MIN_SIDE / min(height, width)))
        shapes.append((max(1, round(height * scale)), max(1, round(width * scale))))
    return shapes


@dataclass
class Result:
    """A finished (or cancelled) run."""

    image: np.ndarray  # RGB uint8 (H, W, 3), long side = the requested size
    losses: Losses  # of the returned image at the finest level reached (before colour preservation)
    steps: int  # forward-and-backward passes done
    seconds: float
    cancelled: bool
    history: list[float]  # total loss after each step (across all levels)
    level_steps: list[int]  # steps planned per level


@dataclass(frozen=True)
class Options:
    """Everything that shapes one run besides the two images (see ``transfer.stylize``)."""

    size: int = 512
    steps: int = 100
    weights: Weights = Weights(1.0, 1.0, 1.0)
    preserve_colors: bool = False
    color_method: str = "luminance"
    optimizer: str = "adam"
    learning_rate: float = 8.0
    final_lr_ratio: float = 1.0
    refine_lr_ratio: float = 1.0  # learning rate at the finer pyramid levels, relative to the first
    schedule: tuple[tuple[int, float], ...] = DEFAULT_SCHEDULE
    add_detail: bool = True
    init: str = "content"  # or "noise": seeded uniform noise, as in the original paper
    seed: int = 0
    dtype: str | None = None


def prepare_inputs(content: np.ndarray, style: np.ndarray, options: Options) -> tuple[np.ndarray, np.ndarray]:
    """Resize both images to the output's long side and apply the colour-preservation pre-step."""
    content = resize_long_side(content, options.size)
    style = resize_long_side(style, options.size)
    if not options.preserve_colors:
        return content, style
    if options.color_method == "histogram":
        return content, match_color_histogram(style, content)
    return luminance_image(content), luminance_image(style, like=content)


def start_image(content: np.ndarray, options: Options) -> np.ndarray:
    """The first level's start: the content photo, or seeded noise around mid-grey (``init="noise"``)."""
    if options.init == "content":
        return content.copy()
    rng = np.random.default_rng(options.seed)
    return rng.uniform(64.0, 192.0, content.shape).astype(np.float32)


def upsample(image: np.ndarray, content: np.ndarray, add_detail: bool) -> np.ndarray:
    """Bring a coarse result to ``content``'s shape, adding back the content's lost fine detail."""
    up = resize(image, content.shape[:2])
    if add_detail:
        blurred = resize(resize(content, image.shape[:2]), content.shape[:2])
        up = np.clip(up + (content - blurred), 0, 255).astype(np.float32)
    return up


def run(
    model: TransferModel,
    content: np.ndarray,
    style: np.ndarray,
    options: Options,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> Result:
    """Optimise a stylised image over the pyramid in ``options.schedule``, coarsest level first."""
    original = np.asarray(content, dtype=np.float32)
    content, style = prepare_inputs(original, np.asarray(style, dtype=np.float32), options)
    schedule = options.schedule or ((1, 1.0),)
    counts = split_steps(options.steps, schedule)
    shapes = pyramid_shapes(content.shape[:2], schedule)
    state = Run(model, options.weights, options.steps, len(schedule), progress, cancel, options.dtype)
    image, best = None, None
    for level, (shape, steps) in enumerate(zip(shapes, counts, strict=True)):
        if steps <= 0 and level < len(schedule) - 1:
            continue
        level_content = resize(content, shape)
        start = start_image(level_content, options) if image is None else upsample(
            image, level_content, options.add_detail
        )
        target = make_target(model, level_content, resize_long_side(style, max(shape)), options.dtype)
        rate = options.learning_rate * (options.refine_lr_ratio if image is not None else 1.0)
        optimise = optimise_lbfgs if options.optimizer == "lbfgs" else _adam(rate, options.final_lr_ratio)
        best = optimise(state, start, target, max(steps, 1), level)
        image = best.image
        if state.cancelled:
            break
    final = resize(image, content.shape[:2])
    if options.preserve_colors and options.color_method == "luminance":
        final = combine_luminance(final, resize(original, content.shape[:2]))
    parts = best.parts
    return Result(
        image=to_uint8(final),
        losses=Losses(*map(float, parts), total=float(np.sum(parts))),
        steps=state.steps,
        seconds=time.perf_counter() - state.started,
        cancelled=state.cancelled,
        history=state.history,
        level_steps=counts,
    )


def _adam(learning_rate: float, final_ratio: float) -> Callable[..., Best]:
    def optimise(run_state: Run, start: np.ndarray, target: Target, steps: int, level: int) -> Best:
        return optimise_adam(run_state, start, target, steps, level, learning_rate, final_ratio)

    return optimise
