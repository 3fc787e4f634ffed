"""Neural style transfer engine (Gatys et al.): losses, the VGG19 feature stack, optimisers, pyramid.

``style_transfer.stylize`` is the public entry point; this module holds the optimisation loop.

Design in brief
* Features come from the same VGG19 as the style embeddings (``style_transfer.vgg19_backbone``):
  content ``block5_conv2``, style ``block1_conv1`` … ``block5_conv1``. The convolutions are run as plain
  TensorFlow ops on the backbone's weights, in bfloat16 by default (AVX512-BF16 CPUs run it about twice
  as fast as float32); Gram matrices and losses are always float32.
* Losses are *relative*: each style layer's Gram error is divided by the mean square of its target Gram,
  the content error by the mean square of the target features. Weights therefore mean the same thing with
  ImageNet or random weights, and the default ``style_weight`` / ``content_weight`` ratio is 1.
* The default optimiser is Adam on pixels in [0, 255] with a learning rate of 8 grey levels, started from
  the content photo. One *step* is one forward and backward pass through VGG19. A projected L-BFGS is
  available too (``optimizer="lbfgs"``): it is ahead for the first ~20 steps, Adam after ~40 (measured
  with random weights; scipy's L-BFGS-B was too slow per iteration at these sizes to use).
* Coarse to fine: a quarter of the steps run at half resolution, where a step costs a quarter as much;
  the result is upsampled, the photo's fine detail lost by the downscale is added back, and the other
  steps refine at full resolution. Measured at 256 px, 60 steps, random weights (loss at full resolution,
  float32; CPU seconds): single-scale float32 0.0212 / 37 s; single-scale bfloat16 0.0217 / 21 s;
  this default 0.0229 / 17 s; half the steps at half size 0.0272 / 13 s. Coarse steps are cheap but
  weaker, so at an equal step count the pyramid costs some loss; at an equal time it wins.
* Each step is one TensorFlow call that releases the GIL; the compiled step function is shared by every
  thread, so concurrent runs need no lock. Progress callbacks see every step and can cancel.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

import style_transfer
import utils

# Steps per pyramid level, as (downscale factor, share of the step budget), coarsest first: a quarter of
# the steps at half resolution (each a quarter of the cost), the rest at full resolution.
DEFAULT_SCHEDULE: tuple[tuple[int, float], ...] = ((2, 0.25), (1, 0.75))
MIN_SIDE = 32  # below this VGG19's deepest layers see fewer than 2 × 2 positions
COLOR_METHODS = ("luminance", "histogram")
INITS = ("content", "noise")
# RGB -> YIQ (luminance + two chroma channels), as in Gatys et al., "Preserving Color in NST" (2016).
_RGB_TO_YIQ = np.array(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]], dtype=np.float64
)
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ)


class Cancelled(Exception):
    """Raised inside the optimiser to stop it; never escapes ``run``."""


@dataclass(frozen=True)
class Losses:
    """Weighted loss parts of one image (style and content are relative errors, see the module doc)."""

    style: float
    content: float
    tv: float
    total: float

    def as_dict(self) -> dict[str, float]:
        return {"style": self.style, "content": self.content, "tv": self.tv, "total": self.total}


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


@dataclass(frozen=True)
class Weights:
    style: float
    content: float
    tv: float

    def vector(self) -> np.ndarray:
        return np.array([self.style, self.content, self.tv], dtype=np.float32)


# ---------------------------------------------------------------------------------------------
# Feature stack and losses
# ---------------------------------------------------------------------------------------------


class TransferModel:
    """VGG19 up to ``block5_conv2`` as plain TF ops, with compiled loss-and-gradient steps.

    Thread-safe: the weights are constants and every call passes its own targets, so one instance can
    serve all threads (build it once, e.g. through ``st.cache_resource``).
    """

    def __init__(self, backbone=None, compute_dtype: str = "bfloat16"):
        import tensorflow as tf

        backbone = backbone if backbone is not None else style_transfer.vgg19_backbone()
        self.compute_dtype = compute_dtype
        self.convs = _conv_weights(backbone)
        self._cast = {
            "float32": [(n, tf.constant(k), tf.constant(b)) for n, k, b in self.convs],
            "bfloat16": [
                (n, tf.constant(k, tf.bfloat16), tf.constant(b, tf.bfloat16)) for n, k, b in self.convs
            ],
        }
        image = tf.TensorSpec((1, None, None, 3), tf.float32)
        grams = [tf.TensorSpec((None, None), tf.float32) for _ in style_transfer.STYLE_LAYERS]
        content = tf.TensorSpec((1, None, None, None), tf.float32)
        weights = tf.TensorSpec((3,), tf.float32)
        self._steps = {
            dtype: tf.function(
                lambda x, g, c, w, dtype=dtype: self._loss_and_grad(x, g, c, w, dtype),
                input_signature=[image, grams, content, weights],
                autograph=False,
            )
            for dtype in self._cast
        }
        self._targets = {
            dtype: tf.function(
                lambda x, dtype=dtype: self._target_graph(x, dtype), input_signature=[image], autograph=False
            )
            for dtype in self._cast
        }

    def _features(self, image, dtype: str):
        """Pixels (1, H, W, 3) RGB in [0, 255] -> [5 style maps, content map], float32."""
        import tensorflow as tf

        x = tf.cast(image[..., ::-1] - style_transfer.VGG_MEAN_BGR, dtype)
        wanted = (*style_transfer.STYLE_LAYERS, style_transfer.CONTENT_LAYER)
        outputs, block = [], "block1"
        for name, kernel, bias in self._cast[dtype]:
            if not name.startswith(block + "_"):
                x = tf.nn.max_pool2d(x, 2, 2, "VALID")
                block = name.split("_")[0]
            x = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, kernel, 1, "SAME"), bias))
            if name in wanted:
                outputs.append(tf.cast(x, tf.float32))
        return outputs

    def _target_graph(self, image, dtype: str):
        features = self._features(image, dtype)
        return [style_transfer.gram_matrix(f)[0] for f in features[:-1]], features[-1]

    def _loss_parts(self, image, style_grams, content_target, dtype: str):
        import tensorflow as tf

        features = self._features(image, dtype)
        style = tf.add_n(
            [
                tf.reduce_mean(tf.square(style_transfer.gram_matrix(f)[0] - g))
                / tf.maximum(tf.reduce_mean(tf.square(g)), 1e-20)
                for f, g in zip(features[:-1], style_grams, strict=True)
            ]
        ) / len(style_grams)
        content = tf.reduce_mean(tf.square(features[-1] - content_target)) / tf.maximum(
            tf.reduce_mean(tf.square(content_target)), 1e-20
        )
        pixels = image / 255.0
        tv = tf.reduce_mean(tf.square(pixels[:, 1:] - pixels[:, :-1])) + tf.reduce_mean(
            tf.square(pixels[:, :, 1:] - pixels[:, :, :-1])
        )
        return tf.stack([style, content, tv])

    def _loss_and_grad(self, image, style_grams, content_target, weights, dtype: str):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(image)
            parts = self._loss_parts(image, style_grams, content_target, dtype) * weights
            total = tf.reduce_sum(parts)
        return parts, tape.gradient(total, image)

    def targets(self, image: np.ndarray, dtype: str | None = None) -> tuple[list, object]:
        """Style Gram matrices and content features of one RGB image (H, W, 3) in [0, 255]."""
        utils.count_inference("vgg19")
        return self._targets[dtype or self.compute_dtype](_batch(image))

    def step(self, image: np.ndarray, target: Target, weights: Weights, dtype: str | None = None):
        """Weighted loss parts (3,) and the gradient of their sum w.r.t. the pixels, as numpy arrays."""
        utils.count_inference("vgg19")
        step = self._steps[dtype or self.compute_dtype]
        parts, grad = step(_batch(image), target.grams, target.content, weights.vector())
        return parts.numpy().astype(np.float64), grad.numpy()[0]

    def losses(self, image: np.ndarray, target: Target, weights: Weights, dtype: str | None = None) -> Losses:
        parts, _ = self.step(image, target, weights, dtype)
        return Losses(*map(float, parts), total=float(parts.sum()))


def _conv_weights(backbone) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, kernel, bias) of every VGG19 convolution up to the content layer."""
    convs = []
    for layer in backbone.layers:
        if "conv" in layer.name:
            kernel, bias = layer.get_weights()
            convs.append((layer.name, kernel.astype(np.float32), bias.astype(np.float32)))
            if layer.name == style_transfer.CONTENT_LAYER:
                return convs
    raise ValueError("The backbone has no layer named " + style_transfer.CONTENT_LAYER)


def _batch(image: np.ndarray):
    import tensorflow as tf

    return tf.convert_to_tensor(np.asarray(image, dtype=np.float32)[None])


@dataclass
class Target:
    """What one pyramid level is optimised towards."""

    grams: list
    content: object
    shape: tuple[int, int]


def make_target(model: TransferModel, content: np.ndarray, style: np.ndarray, dtype: str | None = None) -> Target:
    """Targets for an output of ``content``'s shape; the style is resized to the same long side."""
    grams, _ = model.targets(style, dtype)
    _, features = model.targets(content, dtype)
    return Target(grams=grams, content=features, shape=content.shape[:2])


# ---------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------


def output_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """(height, width) with the long side ``size`` and the aspect ratio kept (short side >= MIN_SIDE)."""
    scale = size / max(height, width)
    return max(MIN_SIDE, round(height * scale)), max(MIN_SIDE, round(width * scale))


def resize(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a float or uint8 RGB image to (height, width), as float32 in [0, 255]."""
    from PIL import Image

    if tuple(image.shape[:2]) == tuple(shape):
        return np.asarray(image, dtype=np.float32)
    channels = [
        np.asarray(
            Image.fromarray(np.asarray(image[..., c], dtype=np.float32), mode="F").resize(
                (shape[1], shape[0]), Image.Resampling.BICUBIC
            )
        )
        for c in range(3)
    ]
    return np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.float32)


def resize_long_side(image: np.ndarray, size: int) -> np.ndarray:
    return resize(image, output_shape(*image.shape[:2], size))


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def to_yiq(image: np.ndarray) -> np.ndarray:
    return np.asarray(image, dtype=np.float64) @ _RGB_TO_YIQ.T


def from_yiq(image: np.ndarray) -> np.ndarray:
    return image @ _YIQ_TO_RGB.T


def luminance_image(image: np.ndarray, like: np.ndarray | None = None) -> np.ndarray:
    """Grey RGB image of the luminance; with ``like``, its mean and spread matched to ``like``'s."""
    y = to_yiq(image)[..., 0]
    if like is not None:
        ref = to_yiq(like)[..., 0]
        y = (y - y.mean()) / max(y.std(), 1e-6) * ref.std() + ref.mean()
    return np.repeat(np.clip(y, 0, 255)[..., None], 3, axis=-1).astype(np.float32)


def combine_luminance(stylized: np.ndarray, content: np.ndarray) -> np.ndarray:
    """The stylised image's luminance with the content photo's chroma (I and Q channels)."""
    yiq = to_yiq(content)
    yiq[..., 0] = to_yiq(stylized)[..., 0]
    return np.clip(from_yiq(yiq), 0, 255).astype(np.float32)


def match_color_histogram(style: np.ndarray, content: np.ndarray) -> np.ndarray:
    """Linearly recolour ``style`` so its RGB mean and covariance equal ``content``'s."""
    s = np.asarray(style, dtype=np.float64).reshape(-1, 3)
    c = np.asarray(content, dtype=np.float64).reshape(-1, 3)
    transform = _sqrtm(np.cov(c.T) + 1e-3 * np.eye(3)) @ np.linalg.inv(_sqrtm(np.cov(s.T) + 1e-3 * np.eye(3)))
    out = (s - s.mean(0)) @ transform.T + c.mean(0)
    return np.clip(out, 0, 255).reshape(style.shape).astype(np.float32)


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.maximum(values, 0))) @ vectors.T


# ---------------------------------------------------------------------------------------------
# Optimisation
# ---------------------------------------------------------------------------------------------


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
    """Everything that shapes one run besides the two images (see ``style_transfer.stylize``)."""

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
