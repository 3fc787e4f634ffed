"""Neural style transfer's public face: ``stylize`` checks its inputs and runs ``engine.run`` on the
process-wide VGG19 feature stack (``transfer_model``)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
from PIL import Image

from lookalike.core import weights
from lookalike.core.files import atomic_path
from lookalike.core.images import ImageError, load_image
from lookalike.style import engine
from lookalike.style.transfer_model import TransferModel
from lookalike.style.vgg19 import WEIGHTS_KEY, default_precision

DEFAULT_TRANSFER_SIZE = 512
DEFAULT_TRANSFER_STEPS = 60
DEFAULT_STRENGTH = 0.5
MAX_TRANSFER_SIZE = 2048
_TRANSFER_MODELS: dict[tuple[str, str], TransferModel] = {}
_TRANSFER_MODELS_LOCK = threading.Lock()


def transfer_model(compute_dtype: str | None = None) -> TransferModel:
    """The process-wide style-transfer feature stack (``TransferModel``), built once.

    ``compute_dtype`` defaults to :func:`default_precision` (bfloat16 where the CPU has it natively).
    Safe to share between threads: each call passes its own targets and runs without a lock.
    """
    compute_dtype = compute_dtype or default_precision()
    key = (weights.label(WEIGHTS_KEY), compute_dtype)
    with _TRANSFER_MODELS_LOCK:
        if key not in _TRANSFER_MODELS:
            _TRANSFER_MODELS[key] = TransferModel(compute_dtype=compute_dtype)
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

    Raises ``ImageError`` with a message for people when ``source`` is not a usable image.
    """
    if not isinstance(source, np.ndarray):
        return load_image(source).astype(np.float32)
    array = source
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    if array.ndim != 3 or array.shape[-1] not in (3, 4) or min(array.shape[:2]) < 1:
        raise ImageError(f"The {name} image must be an RGB array (H, W, 3), not shape {source.shape}.")
    if not np.issubdtype(array.dtype, np.number) or not np.all(np.isfinite(array)):
        raise ImageError(f"The {name} image must hold finite numbers.")
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
    """Paint ``content`` in the style of ``style`` (Gatys et al.); returns an ``engine.Result``.

    * ``content``, ``style``: paths, bytes, file objects or RGB arrays.
    * ``size``: long side of the output in pixels; ``steps``: forward-and-backward passes in all.
    * ``strength`` (0–1) scales ``style_weight`` (see :func:`strength_factor`); 0 returns the photo.
    * ``preserve_colors``: keep the photo's colours, by ``color_method`` "luminance" (transfer on
      luminance only, then the photo's chroma) or "histogram" (recolour the painting first).
    * ``optimizer``: "adam" (default, learning rate 8 grey levels) or "lbfgs";
      ``coarse_to_fine``: do a quarter of the steps at half resolution first (see ``engine``).
    * ``progress(info)`` is called after every step with an ``engine.Progress`` (losses, preview);
      returning ``False`` cancels, as does setting the ``threading.Event`` ``cancel``. A cancelled run
      stops before its next step and returns the best image so far with ``result.cancelled`` set.
    * ``init``: start from the "content" photo (fast) or from seeded "noise" (as in the paper).
    * Deterministic for a given ``seed``.
    """
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
    with atomic_path(path, suffix=".png") as temporary:
        Image.fromarray(image).save(temporary, format="PNG")

