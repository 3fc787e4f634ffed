"""The optimisers of style transfer, on pixels in [0, 255]: Adam (the default) and a projected L-BFGS.

One *step* is one forward and backward pass through VGG19. Adam uses a learning rate of 8 grey levels; the
L-BFGS is ahead for the first ~20 steps, Adam after ~40 (measured with random weights; scipy's L-BFGS-B was
too slow per iteration at these sizes to use). ``Run`` carries the budget, the progress callback and the
cancel event across pyramid levels; a cancelled run stops before its next step.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from lookalike.style.pixels import to_uint8
from lookalike.style.transfer_model import Losses, Target, TransferModel, Weights


class Cancelled(Exception):
    """Raised inside the optimiser to stop it; never escapes ``run``."""


@dataclass
class Progress:
    """What a progress callback sees after each step."""

    step: int  # steps done so far (1-based)
    total_steps: int
    level: int  # pyramid level, 0 = coarsest
    levels: int
    shape: tuple[int, int]  # (height, width) of the level being optimised
    losses: Losses  # weighted loss parts of the latest evaluation
    elapsed: float
    _image: np.ndarray = field(repr=False, default=None)

    @property
    def preview(self) -> np.ndarray:
        """The best image so far at the current level, RGB uint8."""
        return to_uint8(self._image)


ProgressCallback = Callable[[Progress], "bool | None"]


@dataclass
class Run:
    """State shared by the levels of one run: budget, best image, callbacks and cancellation."""

    model: TransferModel
    weights: Weights
    total_steps: int
    levels: int
    progress: ProgressCallback | None = None
    cancel: threading.Event | None = None
    dtype: str | None = None
    steps: int = 0
    history: list[float] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    cancelled: bool = False

    def check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            self.cancelled = True
            raise Cancelled

    def report(self, level: int, shape: tuple[int, int], parts: np.ndarray, best: np.ndarray) -> None:
        self.steps += 1
        self.history.append(float(parts.sum()))
        if self.progress is None:
            return
        losses = Losses(*map(float, parts), total=float(parts.sum()))
        info = Progress(
            self.steps, self.total_steps, level, self.levels, shape, losses,
            time.perf_counter() - self.started, best,
        )  # fmt: skip
        if self.progress(info) is False:
            self.cancelled = True
            raise Cancelled


class Best:
    """Lowest-loss point seen so far (L-BFGS line searches also try worse points)."""

    def __init__(self, image: np.ndarray):
        self.image, self.loss, self.parts = image, np.inf, np.full(3, np.nan)

    def offer(self, image: np.ndarray, parts: np.ndarray) -> None:
        if parts.sum() < self.loss:
            self.image, self.loss, self.parts = image, float(parts.sum()), parts


def optimise_lbfgs(
    run: Run, start: np.ndarray, target: Target, steps: int, level: int, first_step: float = 4.0, memory: int = 8
) -> Best:
    """Projected L-BFGS on pixels in [0, 255] for ``steps`` evaluations; returns the best image.

    Two-loop recursion over the last ``memory`` pairs, a unit step with at most one halving when the loss
    rises, and clipping to [0, 255]. The first step moves the largest-gradient pixel ``first_step`` grey
    levels. (scipy's L-BFGS-B spends about a second per iteration at 100,000 pixels, more than a VGG19
    step, so the loop is written out here; each iteration costs O(memory × pixels).)
    """
    best = Best(start)
    history: list[tuple[np.ndarray, np.ndarray, float]] = []
    x = start.astype(np.float32)
    first = run.steps

    def left() -> bool:
        return run.steps - first < steps

    try:
        loss, grad = _evaluate(run, x, target, level, best)
        direction = -grad * (first_step / max(float(np.abs(grad).max()), 1e-30))
        while left():
            candidate = np.clip(x + direction, 0, 255).astype(np.float32)
            new_loss, new_grad = _evaluate(run, candidate, target, level, best)
            if new_loss > loss and left():
                direction *= 0.5
                history.clear()  # the curvature model was wrong: start again from the gradient
                continue
            s, y = (candidate - x).ravel(), (new_grad - grad).ravel()
            if float(s @ y) > 1e-12 * float(y @ y):
                history.append((s, y, 1.0 / float(s @ y)))
                del history[:-memory]
            x, loss, grad = candidate, new_loss, new_grad
            direction = _two_loop(grad, history, first_step)
    except Cancelled:
        pass
    return best


def _two_loop(grad: np.ndarray, history: list, first_step: float) -> np.ndarray:
    """-H·grad from the L-BFGS history; a scaled gradient step when the history is empty."""
    if not history:
        return -grad * (first_step / max(float(np.abs(grad).max()), 1e-30))
    q = grad.ravel().astype(np.float64)
    alphas = []
    for s, y, rho in reversed(history):
        alpha = rho * float(s @ q)
        q -= alpha * y
        alphas.append(alpha)
    s, y, _ = history[-1]
    q *= float(s @ y) / float(y @ y)
    for (s, y, rho), alpha in zip(history, reversed(alphas), strict=True):
        q += (alpha - rho * float(y @ q)) * s
    return (-q).reshape(grad.shape).astype(np.float32)


def _evaluate(run: Run, image: np.ndarray, target: Target, level: int, best: Best) -> tuple[float, np.ndarray]:
    run.check_cancel()
    parts, grad = run.model.step(image, target, run.weights, run.dtype)
    best.offer(image, parts)
    run.report(level, image.shape[:2], parts, best.image)
    return float(parts.sum()), grad


def optimise_adam(
    run: Run, start: np.ndarray, target: Target, steps: int, level: int,
    learning_rate: float = 8.0, final_ratio: float = 1.0,
) -> Best:  # fmt: skip
    """Adam on pixels, clipped to [0, 255] after each step; returns the best image.

    ``learning_rate`` is in grey levels (0–255); it decays exponentially to ``final_ratio`` times itself
    over the ``steps`` (1.0: constant).
    """
    image = start.astype(np.float32).copy()
    best = Best(image)
    m, v = np.zeros_like(image), np.zeros_like(image)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    try:
        for t in range(1, steps + 1):
            run.check_cancel()
            parts, grad = run.model.step(image, target, run.weights, run.dtype)
            best.offer(image, parts)
            run.report(level, image.shape[:2], parts, best.image)
            m = beta1 * m + (1 - beta1) * grad
            v = beta2 * v + (1 - beta2) * grad * grad
            rate = learning_rate * final_ratio ** ((t - 1) / max(steps - 1, 1))
            step = rate * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps)
            image = np.clip(image - step, 0, 255).astype(np.float32)
    except Cancelled:
        pass
    return best

