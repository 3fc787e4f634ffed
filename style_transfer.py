"""VGG19 style features: Gram matrices, compact style vectors, and neural style transfer.

The same VGG19 feature model serves two jobs:
* ``StyleModel`` turns images into compact style vectors for the search index;
* ``stylize`` paints a content photo in the style of a painting (Gatys et al.).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import utils

STYLE_LAYERS: tuple[str, ...] = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
CONTENT_LAYER = "block5_conv2"
VGG19_WEIGHTS_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
VGG19_WEIGHTS_URL = f"https://storage.googleapis.com/tensorflow/keras-applications/vgg19/{VGG19_WEIGHTS_FILE}"
# ImageNet channel means (BGR) that VGG19 was trained with.
VGG_MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)
RANDOM_INIT_SEED = 1234  # random weights are seeded so that their caches stay valid between runs

# Compact style vector: output dimensions given to each layer (sum 1,024) and the weight of each layer.
COMPACT_DIMS: tuple[int, ...] = (128, 192, 224, 240, 240)
LAYER_WEIGHTS: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0)
PROJECTION_SEED = 20240611


# ---------------------------------------------------------------------------------------------
# Feature model
# ---------------------------------------------------------------------------------------------


_POLICY_LOCK = threading.Lock()


def cpu_has_bf16() -> bool:
    """True when the CPU multiplies bfloat16 natively (AVX512-BF16 or AMX), where bf16 VGG19 runs faster."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def default_precision() -> str:
    """``LOOKALIKE_PRECISION`` if set, else bfloat16 where the CPU supports it natively, else float32."""
    chosen = os.environ.get("LOOKALIKE_PRECISION", "").strip().lower()
    if chosen in ("float32", "bfloat16"):
        return chosen
    return "bfloat16" if cpu_has_bf16() else "float32"


def vgg19_backbone(precision: str = "float32"):
    """VGG19 without its classifier, with weights chosen by ``LOOKALIKE_WEIGHTS``.

    ``precision="bfloat16"`` computes in bf16 (weights stay float32). Raises ``utils.WeightsUnavailable``
    with a user-facing message when ImageNet weights are missing.
    """
    import keras

    weights = utils.resolve_pretrained_weights("VGG19", VGG19_WEIGHTS_FILE, VGG19_WEIGHTS_URL)
    with _POLICY_LOCK:
        previous = keras.mixed_precision.global_policy()
        keras.mixed_precision.set_global_policy("mixed_bfloat16" if precision == "bfloat16" else "float32")
        try:
            if weights is None:
                keras.utils.set_random_seed(RANDOM_INIT_SEED)
            backbone = keras.applications.VGG19(include_top=False, weights=weights)
        finally:
            keras.mixed_precision.set_global_policy(previous)
    utils.count_load("vgg19")
    return backbone


def selected_layers_model(layer_names: Sequence[str], backbone=None):
    """A frozen Keras model that maps a preprocessed batch to the outputs of ``layer_names``."""
    import keras

    backbone = backbone or vgg19_backbone()
    backbone.trainable = False
    outputs = [backbone.get_layer(name).output for name in layer_names]
    return keras.Model(backbone.input, outputs, name="vgg19_selected_layers")


def preprocess(images: np.ndarray) -> np.ndarray:
    """RGB uint8/float in [0, 255] -> VGG19 input (BGR, mean-subtracted), as keras' ``vgg19.preprocess_input``."""
    return np.asarray(images, dtype=np.float32)[..., ::-1] - VGG_MEAN_BGR


def gram_matrix(features):
    """Gram matrices of a batch of feature maps (B, H, W, C) -> (B, C, C), divided by H·W."""
    import tensorflow as tf

    features = tf.convert_to_tensor(features)
    shape = tf.shape(features)
    flat = tf.reshape(features, (shape[0], shape[1] * shape[2], shape[3]))
    return tf.matmul(flat, flat, transpose_a=True) / tf.cast(shape[1] * shape[2], features.dtype)


def upper_triangle(grams: np.ndarray) -> np.ndarray:
    """Each symmetric (C, C) Gram matrix stored once: its upper triangle, off-diagonal scaled by √2.

    The √2 keeps dot products (and so cosine similarity) equal to those of the full matrices.
    """
    channels = grams.shape[-1]
    rows, cols = np.triu_indices(channels)
    scale = np.where(rows == cols, 1.0, np.sqrt(2.0)).astype(np.float32)
    return grams[..., rows, cols] * scale


# ---------------------------------------------------------------------------------------------
# Compact style vectors
# ---------------------------------------------------------------------------------------------


def projection_matrix(channels: int, out_dim: int, seed: int) -> np.ndarray:
    """A fixed, seeded Gaussian projection of a layer's upper-triangle Gram vector to ``out_dim``."""
    rng = np.random.default_rng([seed, channels, out_dim])
    size = channels * (channels + 1) // 2
    return (rng.standard_normal((size, out_dim), dtype=np.float32) / np.sqrt(out_dim)).astype(np.float32)


def full_style_vector(grams: Sequence[np.ndarray], weights: Sequence[float] = LAYER_WEIGHTS) -> np.ndarray:
    """The exact style embedding: per layer, the unit-normalised upper triangle, weighted, concatenated."""
    parts = [w * _unit(upper_triangle(g)) for g, w in zip(grams, weights, strict=True)]
    return np.concatenate(parts, axis=-1)


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


@dataclass(frozen=True)
class StyleConfig:
    """Everything that changes the style vectors; its id keys the embedding cache."""

    layers: tuple[str, ...] = STYLE_LAYERS
    size: int = 224
    dims: tuple[int, ...] = COMPACT_DIMS
    layer_weights: tuple[float, ...] = LAYER_WEIGHTS
    seed: int = PROJECTION_SEED
    precision: str = field(default_factory=default_precision)  # "float32" or "bfloat16"

    def model_id(self, weights: str) -> str:
        return (
            f"vgg19-gram|layers={','.join(self.layers)}|size={self.size}|dims={self.dims}"
            f"|w={self.layer_weights}|seed={self.seed}|precision={self.precision}|weights={weights}"
        )


class StyleModel:
    """Images -> compact style vectors (float32, at most 1,024 values), in batches.

    Each image is resized to ``size`` pixels on the short side and centre-cropped to a square, so a batch
    is one tensor and every image is seen at the same scale (Gram statistics depend on scale).
    """

    def __init__(self, config: StyleConfig | None = None, backbone=None):
        import tensorflow as tf

        self.config = config or StyleConfig()
        self.features = selected_layers_model(
            self.config.layers, backbone if backbone is not None else vgg19_backbone(self.config.precision)
        )
        self.model_id = self.config.model_id(utils.weights_label())
        self.projections = [
            projection_matrix(self.features.outputs[i].shape[-1], dim, self.config.seed)
            for i, dim in enumerate(self.config.dims)
        ]
        self._grams = tf.function(self._grams_graph, reduce_retracing=True, jit_compile=False)

    @classmethod
    def load(cls, config: StyleConfig | None = None) -> StyleModel:
        return cls(config)

    def _grams_graph(self, batch):
        import tensorflow as tf

        # Features may be bf16; Gram sums run over up to 50,176 positions, so they are taken in float32.
        return [gram_matrix(tf.cast(features, tf.float32)) for features in self.features(batch, training=False)]

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """Resize and crop one RGB image to the working resolution (cheap; runs in decode threads)."""
        return utils.square_image(image, self.config.size)

    def grams(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Gram matrices per layer for a batch of prepared images."""
        utils.count_inference("vgg19")
        return [g.numpy() for g in self._grams(preprocess(np.stack(images)))]

    def embed_full(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """The exact (uncompressed) style vectors, about 306,000 floats each: for evaluation only."""
        return full_style_vector(self.grams(images), self.config.layer_weights)

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Compact style vectors (n, sum(dims)) for a batch of prepared images."""
        grams = self.grams(images)
        parts = [
            weight * _unit(_unit(upper_triangle(gram)) @ projection)
            for gram, projection, weight in zip(grams, self.projections, self.config.layer_weights, strict=True)
        ]
        return np.concatenate(parts, axis=-1).astype(np.float32)


def config_digest(config: StyleConfig) -> str:
    return hashlib.sha256(config.model_id("").encode()).hexdigest()[:12]


# ---------------------------------------------------------------------------------------------
# Neural style transfer
# ---------------------------------------------------------------------------------------------
# The optimisation loop lives in ``stylize_engine.py``; this section is its public face and the CLI:
#   python style_transfer.py CONTENT STYLE -o OUT.png [--size 512] [--steps N] [--strength S] [--preserve-colors]

import threading  # noqa: E402 - imports of this section, kept beside it
from collections.abc import Callable  # noqa: E402

DEFAULT_TRANSFER_SIZE = 512
DEFAULT_TRANSFER_STEPS = 60
DEFAULT_STRENGTH = 0.5
MAX_TRANSFER_SIZE = 2048
_TRANSFER_MODELS: dict[tuple[str, str], object] = {}
_TRANSFER_MODELS_LOCK = threading.Lock()


def transfer_model(compute_dtype: str | None = None):
    """The process-wide style-transfer feature stack (``stylize_engine.TransferModel``), built once.

    ``compute_dtype`` defaults to :func:`default_precision` (bfloat16 where the CPU has it natively).
    Safe to share between threads: each call passes its own targets and runs without a lock.
    """
    import stylize_engine

    compute_dtype = compute_dtype or default_precision()
    key = (utils.weights_label(), compute_dtype)
    with _TRANSFER_MODELS_LOCK:
        if key not in _TRANSFER_MODELS:
            _TRANSFER_MODELS[key] = stylize_engine.TransferModel(compute_dtype=compute_dtype)
        return _TRANSFER_MODELS[key]


def strength_factor(strength: float) -> float:
    """Style-weight multiplier for a 0–1 "style strength": 0 → 0 (the photo), 0.5 → 1, 1 → about 32.

    The scale is logarithmic above ~0.2, so equal slider moves give similar visual changes.
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"The style strength must be between 0 and 1, not {strength}.")
    return (1000.0**strength - 1.0) / (1000.0**0.5 - 1.0)


def as_rgb_image(source, name: str) -> np.ndarray:
    """An image path, bytes, file object or array -> RGB float32 (H, W, 3) in [0, 255].

    Raises ``utils.ImageError`` with a message for people when ``source`` is not a usable image.
    """
    if not isinstance(source, np.ndarray):
        return utils.load_image(source).astype(np.float32)
    array = source
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    if array.ndim != 3 or array.shape[-1] not in (3, 4) or min(array.shape[:2]) < 1:
        raise utils.ImageError(f"The {name} image must be an RGB array (H, W, 3), not shape {source.shape}.")
    if not np.issubdtype(array.dtype, np.number) or not np.all(np.isfinite(array)):
        raise utils.ImageError(f"The {name} image must hold finite numbers.")
    return np.clip(array[..., :3].astype(np.float32), 0, 255)


def stylize(
    content,
    style,
    *,
    size: int = DEFAULT_TRANSFER_SIZE,
    steps: int = DEFAULT_TRANSFER_STEPS,
    strength: float = DEFAULT_STRENGTH,
    style_weight: float = 1.0,
    content_weight: float = 1.0,
    tv_weight: float = 1.0,
    preserve_colors: bool = False,
    color_method: str = "luminance",
    optimizer: str = "adam",
    coarse_to_fine: bool = True,
    init: str = "content",
    seed: int = 0,
    progress: Callable[..., bool | None] | None = None,
    cancel: threading.Event | None = None,
    model=None,
):
    """Paint ``content`` in the style of ``style`` (Gatys et al.); returns a ``stylize_engine.Result``.

    * ``content``, ``style``: paths, bytes, file objects or RGB arrays.
    * ``size``: long side of the output in pixels; ``steps``: forward-and-backward passes in all.
    * ``strength`` (0–1) scales ``style_weight`` (see :func:`strength_factor`); 0 returns the photo.
    * ``preserve_colors``: keep the photo's colours, by ``color_method`` "luminance" (transfer on
      luminance only, then the photo's chroma) or "histogram" (recolour the painting first).
    * ``optimizer``: "adam" (default, learning rate 8 grey levels) or "lbfgs";
      ``coarse_to_fine``: do a quarter of the steps at half resolution first (see ``stylize_engine``).
    * ``progress(info)`` is called after every step with a ``stylize_engine.Progress`` (losses, preview);
      returning ``False`` cancels, as does setting the ``threading.Event`` ``cancel``. A cancelled run
      stops before its next step and returns the best image so far with ``result.cancelled`` set.
    * ``init``: start from the "content" photo (fast) or from seeded "noise" (as in the paper).
    * Deterministic for a given ``seed``.
    """
    import stylize_engine as engine

    _check_transfer_args(size, steps, color_method, optimizer, init)
    options = engine.Options(
        size=size,
        steps=steps,
        weights=engine.Weights(style_weight * strength_factor(strength), content_weight, tv_weight),
        preserve_colors=preserve_colors,
        color_method=color_method,
        optimizer=optimizer,
        schedule=engine.DEFAULT_SCHEDULE if coarse_to_fine else ((1, 1.0),),
        init=init,
        seed=seed,
    )
    content_image = as_rgb_image(content, "content")
    style_image = as_rgb_image(style, "style")
    return engine.run(model or transfer_model(), content_image, style_image, options, progress, cancel)


def _check_transfer_args(size: int, steps: int, color_method: str, optimizer: str, init: str) -> None:
    import stylize_engine as engine

    if not 32 <= size <= MAX_TRANSFER_SIZE:
        raise ValueError(f"The output size must be between 32 and {MAX_TRANSFER_SIZE} pixels, not {size}.")
    if steps < 1:
        raise ValueError(f"At least one step is needed, not {steps}.")
    if color_method not in engine.COLOR_METHODS:
        raise ValueError(f"The colour method must be one of {engine.COLOR_METHODS}, not {color_method!r}.")
    if optimizer not in ("lbfgs", "adam"):
        raise ValueError(f"The optimiser must be 'lbfgs' or 'adam', not {optimizer!r}.")
    if init not in engine.INITS:
        raise ValueError(f"The start image must be one of {engine.INITS}, not {init!r}.")


def save_png(image: np.ndarray, path) -> None:
    """Write an RGB uint8 array as PNG, atomically."""
    from PIL import Image

    with utils.atomic_path(path, suffix=".png") as temporary:
        Image.fromarray(image).save(temporary, format="PNG")


def png_bytes(image: np.ndarray) -> bytes:
    """An RGB uint8 array encoded as PNG bytes (for downloads)."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _parse_args(argv):
    import argparse

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
    import sys
    import time

    args = _parse_args(argv)
    started = time.perf_counter()
    try:
        content, style = as_rgb_image(args.content, "content"), as_rgb_image(args.style, "style")
        model = transfer_model()
        result = _run_with_bar(args, content, style, model)
    except (utils.ImageError, utils.WeightsUnavailable) as error:
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
    import sys

    sys.exit(main())
