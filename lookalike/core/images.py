"""Safe image decoding and the few resizes every model shares.

``load_image`` turns any common image (path, bytes or file object) into an upright RGB ``uint8`` array, or
raises :class:`ImageError` with a message meant for people. Light: no TensorFlow.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")

# Pillow refuses (DecompressionBombError) anything above twice this; we refuse above it outright.
MAX_PIXELS = 120_000_000
# Images are shrunk to this many pixels on the long side while decoding (JPEG draft mode first).
DEFAULT_MAX_SIDE = 2048


class ImageError(ValueError):
    """An input could not be turned into an image. The message is meant for people."""


def load_image(source: str | Path | bytes | io.IOBase, max_side: int | None = DEFAULT_MAX_SIDE) -> np.ndarray:
    """Decode any common image into an upright RGB ``uint8`` array of shape (H, W, 3).

    Handles EXIF rotation, alpha (composited on white), palette, grayscale, CMYK and 16-bit modes,
    animations (first frame), truncated or non-image bytes and decompression bombs. Large images are
    shrunk while decoding so that the long side is at most ``max_side``.
    """
    name = _describe(source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with _open(source) as image:
                _check_size(image, name)
                image.seek(0)  # first frame of an animation
                if max_side:
                    image.draft("RGB", (max_side, max_side))  # cheap JPEG downscale while decoding
                image.load()
                image = ImageOps.exif_transpose(image)
                rgb = _to_rgb(image)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageError(f"{name} is too large to open safely ({error}).") from error
    except UnidentifiedImageError as error:
        raise ImageError(f"{name} is not an image we can read (JPEG, PNG, WebP, GIF or BMP).") from error
    except FileNotFoundError as error:
        raise ImageError(f"{name} does not exist.") from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ImageError(f"{name} is damaged or incomplete and cannot be decoded ({error}).") from error
    if max_side and max(rgb.size) > max_side:
        rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return np.asarray(rgb, dtype=np.uint8)


def _describe(source: object) -> str:
    if isinstance(source, (str, Path)):
        return f"'{Path(source).name}'"
    return "The file"


@contextmanager
def _open(source: str | Path | bytes | io.IOBase) -> Iterator[Image.Image]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise ImageError("The file is empty (0 bytes).")
        source = io.BytesIO(bytes(source))
    elif isinstance(source, (str, Path)):
        path = Path(source)
        if path.is_dir():
            raise ImageError(f"'{path.name}' is a folder, not an image.")
        if path.is_file() and path.stat().st_size == 0:
            raise ImageError(f"'{path.name}' is empty (0 bytes).")
    with Image.open(source) as image:
        yield image


def _check_size(image: Image.Image, name: str) -> None:
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageError(f"{name} has no pixels.")
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"{name} declares {width:,} × {height:,} pixels, more than the "
            f"{MAX_PIXELS // 1_000_000} megapixel limit; it may be a decompression bomb."
        )


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert every Pillow mode we meet into 8-bit RGB, compositing transparency on white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if array.max(initial=0) > 255 else 255.0
        image = Image.fromarray(np.clip(array / peak * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    elif image.mode == "F":
        array = np.nan_to_num(np.asarray(image, dtype=np.float64))
        low, high = array.min(initial=0), array.max(initial=1)
        scaled = (array - low) / max(high - low, 1e-12) * 255.0
        image = Image.fromarray(scaled.astype(np.uint8), "L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def resize_short_side(image: np.ndarray, size: int) -> np.ndarray:
    """Resize so the short side is ``size`` pixels, keeping the aspect ratio."""
    height, width = image.shape[:2]
    scale = size / min(height, width)
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(image).resize(new_size, Image.Resampling.BILINEAR))


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    """Crop the central ``size`` × ``size`` square (after :func:`resize_short_side`)."""
    height, width = image.shape[:2]
    top, left = max(0, (height - size) // 2), max(0, (width - size) // 2)
    return image[top : top + size, left : left + size]


def square_image(image: np.ndarray, size: int) -> np.ndarray:
    """Resize the short side to ``size`` and centre-crop to a square: the models' input."""
    return center_crop(resize_short_side(image, size), size)


def make_thumbnail(image: np.ndarray, size: int = 256) -> np.ndarray:
    """A small copy for display, long side at most ``size``."""
    thumb = Image.fromarray(image)
    thumb.thumbnail((size, size), Image.Resampling.LANCZOS)
    return np.asarray(thumb)


def list_images(folder: str | Path) -> Iterator[Path]:
    """Yield image files below ``folder`` recursively, sorted, one at a time (hidden files skipped)."""
    folder = Path(folder)
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for filename in sorted(filenames):
            if filename.lower().endswith(IMAGE_SUFFIXES) and not filename.startswith("."):
                yield Path(dirpath) / filename


def png_bytes(image: np.ndarray) -> bytes:
    """An RGB uint8 array encoded as PNG bytes (for downloads)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()
