"""A generator for the bad and odd inputs every uploader must survive. Nothing here is committed as binary."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class BadInput:
    name: str  # file name, with the extension a user would give it
    data: bytes
    usable: bool  # True: must give a result; False: must give one clear message
    mime: str = "application/octet-stream"


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _gradient(width: int, height: int) -> np.ndarray:
    x = np.linspace(0, 255, width, dtype=np.float32)
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    return np.stack([np.broadcast_to(x, (height, width)), np.broadcast_to(y, (height, width)),
                     np.full((height, width), 128.0)], axis=-1).astype(np.uint8)


def truncated_jpeg() -> bytes:
    return _encode(Image.fromarray(_gradient(300, 200)), "JPEG", quality=90)[:1500]


def bomb_png(side: int = 30_000) -> bytes:
    """A tiny PNG whose header declares side × side pixels (a decompression bomb)."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # 8-bit grayscale
    row = b"\x00" + b"\x00" * side
    data = zlib.compress(row * 64, 9)  # far fewer rows than declared: tiny file, huge claim
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def cmyk_jpeg() -> bytes:
    return _encode(Image.fromarray(_gradient(120, 90)).convert("CMYK"), "JPEG")


def png16() -> bytes:
    array = (np.linspace(0, 65535, 80 * 60, dtype=np.float64).reshape(60, 80)).astype(np.uint16)
    return _encode(Image.fromarray(array, "I;16"), "PNG")


def palette_png_transparent() -> bytes:
    image = Image.fromarray(_gradient(64, 64)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return _encode(image, "PNG", transparency=0)


def animated_gif() -> bytes:
    frames = [Image.fromarray(np.full((40, 40, 3), value, np.uint8)) for value in (30, 120, 220)]
    return _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def exif_rotated_jpeg() -> bytes:
    """A landscape JPEG (red top half) stored with EXIF orientation 6: upright it is portrait."""
    array = np.zeros((100, 200, 3), np.uint8)
    array[:50] = (255, 0, 0)
    array[50:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    return _encode(Image.fromarray(array), "JPEG", exif=exif.tobytes())


def grayscale_png() -> bytes:
    return _encode(Image.fromarray(_gradient(90, 70)[..., 0], "L"), "PNG")


CORPUS: dict[str, tuple[str, Callable[[], bytes], bool, str]] = {
    "truncated": ("truncated.jpg", truncated_jpeg, False, "image/jpeg"),
    "empty": ("empty.jpg", lambda: b"", False, "image/jpeg"),
    "text_as_png": ("notes.png", lambda: b"This is not an image, just text.\n" * 20, False, "image/png"),
    "bomb": ("bomb.png", bomb_png, False, "image/png"),
    "cmyk": ("cmyk.jpg", cmyk_jpeg, True, "image/jpeg"),
    "png16": ("deep.png", png16, True, "image/png"),
    "palette_alpha": ("palette.png", palette_png_transparent, True, "image/png"),
    "animated_gif": ("animated.gif", animated_gif, True, "image/gif"),
    "exif_rotated": ("rotated.jpg", exif_rotated_jpeg, True, "image/jpeg"),
    "one_pixel": ("dot.png", lambda: _encode(Image.new("RGB", (1, 1), (10, 200, 30)), "PNG"), True, "image/png"),
    "panorama": ("panorama.jpg", lambda: _encode(Image.fromarray(_gradient(10_000, 200)), "JPEG"), True,
                 "image/jpeg"),
    "grayscale": ("gray.png", grayscale_png, True, "image/png"),
    "webp": ("photo.webp", lambda: _encode(Image.fromarray(_gradient(120, 80)), "WEBP"), True, "image/webp"),
}


def bad_inputs() -> list[BadInput]:
    """Every input of the corpus, freshly generated."""
    return [BadInput(name, make(), usable, mime) for name, make, usable, mime in CORPUS.values()]


def write_corpus(folder: Path) -> dict[str, Path]:
    """Write the corpus into ``folder``; returns the path of each entry by its key."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for key, (name, make, _, _) in CORPUS.items():
        paths[key] = folder / name
        paths[key].write_bytes(make())
    return paths
