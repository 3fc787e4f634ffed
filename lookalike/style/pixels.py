"""Pixel work around style transfer: output sizes, resizing float images, and colour preservation (YIQ
luminance transfer, RGB histogram matching)."""

from __future__ import annotations

import numpy as np
from PIL import Image

MIN_SIDE = 32  # below this VGG19's deepest layers see fewer than 2 × 2 positions
# RGB -> YIQ (luminance + two chroma channels), as in Gatys et al., "Preserving Color in NST" (2016).
_RGB_TO_YIQ = np.array(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]], dtype=np.float64
)
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ)


def output_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """(height, width) with the long side ``size`` and the aspect ratio kept (short side >= MIN_SIDE)."""
    scale = size / max(height, width)
    return max(MIN_SIDE, round(height * scale)), max(MIN_SIDE, round(width * scale))


def resize(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a float or uint8 RGB image to (height, width), as float32 in [0, 255]."""
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

