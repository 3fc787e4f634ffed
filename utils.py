"""Shared foundations: settings, safe image decoding, atomic files and mirror-aware downloads.

Everything here is light: no TensorFlow import, so the home page and every ``--help`` stay fast.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

PROJECT_ROOT = Path(__file__).resolve().parent
MODELS_DIR = PROJECT_ROOT / "models"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")

# Pillow refuses (DecompressionBombError) anything above twice this; we refuse above it outright.
MAX_PIXELS = 120_000_000
# Images are shrunk to this many pixels on the long side while decoding (JPEG draft mode first).
DEFAULT_MAX_SIDE = 2048


# ---------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """Every environment-driven setting of the app, read in one place."""

    weights: str  # "imagenet", "random" or a path to a weights file
    mirror: str | None  # base URL or folder that replaces the public download hosts
    roots: tuple[Path, ...]  # folders that users may index; empty means anywhere
    cache_dir: Path  # where embeddings, maps and downloads are kept

    @property
    def random_weights(self) -> bool:
        return self.weights == "random"


def get_settings() -> Settings:
    """Read ``LOOKALIKE_*`` variables. Cheap, so callers read it when they need it."""
    weights = os.environ.get("LOOKALIKE_WEIGHTS", "imagenet").strip() or "imagenet"
    mirror = os.environ.get("LOOKALIKE_MIRROR", "").strip() or None
    roots = tuple(
        Path(p).expanduser().resolve()
        for p in os.environ.get("LOOKALIKE_ROOTS", "").split(os.pathsep)
        if p.strip()
    )
    cache_dir = Path(
        os.environ.get("LOOKALIKE_CACHE", "") or Path.home() / ".cache" / "lookalike"
    ).expanduser()
    return Settings(weights=weights, mirror=mirror, roots=roots, cache_dir=cache_dir)


def weights_label(settings: Settings | None = None) -> str:
    """A short, stable name for the weights in use, for cache keys and captions."""
    weights = (settings or get_settings()).weights
    if weights in ("imagenet", "random"):
        return weights
    path = Path(weights)
    digest = file_sha256(path)[:12] if path.is_file() else "missing"
    return f"file:{path.name}:{digest}"


class WeightsUnavailable(RuntimeError):
    """Pretrained weights could not be found or downloaded. The message says where to put them."""

    def __init__(self, model: str, filename: str, reason: str):
        self.model, self.filename, self.reason = model, filename, reason
        super().__init__(
            f"The {model} ImageNet weights could not be loaded ({reason}). "
            f"Download `{filename}` and put it in `{MODELS_DIR}/` or in `~/.keras/models/`, "
            f"or set LOOKALIKE_WEIGHTS to a weights file. "
            f"To try the app without them, set LOOKALIKE_WEIGHTS=random."
        )


def resolve_pretrained_weights(model: str, filename: str, url: str) -> str | None:
    """Turn the ``LOOKALIKE_WEIGHTS`` setting into what keras.applications takes as ``weights=``.

    ``random`` gives ``None``; a file path or a file dropped in ``models/`` gives that path;
    ``imagenet`` downloads once into the Keras cache and raises :class:`WeightsUnavailable` on failure.
    """
    weights = get_settings().weights
    if weights == "random":
        return None
    if weights != "imagenet":
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsUnavailable(model, filename, f"LOOKALIKE_WEIGHTS points at {path}, which does not exist")
        return str(path)
    for folder in (MODELS_DIR, Path.home() / ".keras" / "models"):
        if (folder / filename).is_file():
            return str(folder / filename)
    try:
        from keras.utils import get_file

        return get_file(filename, url, cache_subdir="models")
    except Exception as error:
        raise WeightsUnavailable(model, filename, f"download failed: {type(error).__name__}") from error


# ---------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------


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


class FolderError(ValueError):
    """A folder cannot be used as a collection. The message is meant for people."""


def check_folder(folder: str | Path, settings: Settings | None = None) -> Path:
    """Resolve a user-given folder, refusing missing folders and ones outside ``LOOKALIKE_ROOTS``.

    Symlinks are resolved first, so a link that escapes the allowed roots is refused too.
    """
    settings = settings or get_settings()
    path = Path(folder).expanduser()
    if not path.exists():
        raise FolderError(f"The folder {path} does not exist (was it moved or deleted?).")
    if not path.is_dir():
        raise FolderError(f"{path} is a file, not a folder.")
    resolved = path.resolve()
    if settings.roots and not any(resolved.is_relative_to(root) for root in settings.roots):
        allowed = ", ".join(str(root) for root in settings.roots)
        raise FolderError(f"{path} is outside the folders this app may index ({allowed}).")
    return resolved


def inside_roots(path: Path, settings: Settings | None = None) -> bool:
    """True when ``path`` (with links resolved) lies inside the allowed roots, or no roots are set."""
    settings = settings or get_settings()
    resolved = path.resolve()
    return not settings.roots or any(resolved.is_relative_to(root) for root in settings.roots)


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------


def file_sha256(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's content, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def bytes_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@contextmanager
def atomic_path(target: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target`` in one rename.

    On failure the temporary file is removed and ``target`` is left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=suffix if suffix is not None else target.suffix
    )
    os.close(handle)
    temporary_path = Path(temporary)
    try:
        yield temporary_path
        os.replace(temporary_path, target)
    finally:
        temporary_path.unlink(missing_ok=True)


def save_npz_atomic(target: str | Path, **arrays: np.ndarray) -> None:
    """Write an ``.npz`` so that readers see either the old file or the complete new one."""
    with atomic_path(target, suffix=".npz") as temporary:
        np.savez(temporary, **arrays)


def write_text_atomic(target: str | Path, text: str) -> None:
    with atomic_path(target) as temporary:
        temporary.write_text(text, encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# Downloads
# ---------------------------------------------------------------------------------------------


class DownloadError(RuntimeError):
    """A download failed. The message says what, from where, and what to do."""


def mirrored_url(url: str, mirror: str | None) -> str:
    """Replace scheme and host (and the public prefix) of ``url`` with the mirror, if one is set.

    ``mirror`` is a base URL or a folder; ``url`` is given as ``public_base|relative/path`` so that
    the same relative path works on the public host and on the mirror.
    """
    base, _, relative = url.partition("|")
    if not mirror:
        return base.rstrip("/") + "/" + relative if relative else base
    return mirror.rstrip("/") + "/" + relative


def download_file(
    url: str,
    destination: str | Path,
    sha256: str | None = None,
    mirror: str | None = None,
    timeout: float = 30.0,
) -> Path:
    """Fetch ``url`` (``public_base|relative/path``) to ``destination`` atomically, checking ``sha256``.

    ``LOOKALIKE_MIRROR`` (or ``mirror``) replaces the public base with a URL or a local folder.
    An existing file with the right checksum is kept as it is.
    """
    destination = Path(destination)
    if destination.is_file() and (sha256 is None or file_sha256(destination) == sha256):
        return destination
    source = mirrored_url(url, mirror if mirror is not None else get_settings().mirror)
    with atomic_path(destination) as temporary:
        _fetch(source, temporary, timeout)
        if sha256 is not None and (actual := file_sha256(temporary)) != sha256:
            raise DownloadError(f"{source} has checksum {actual[:12]}…, expected {sha256[:12]}…; not saved.")
    return destination


def _fetch(source: str, target: Path, timeout: float) -> None:
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(source, timeout=timeout) as response, open(target, "wb") as out:
                shutil.copyfileobj(response, out)
        except (urllib.error.URLError, OSError, TimeoutError) as error:
            raise DownloadError(
                f"Could not download {source} ({error}). Check the network, or set LOOKALIKE_MIRROR "
                "to a folder or URL that holds a copy."
            ) from error
        return
    local = Path(parsed.path if parsed.scheme == "file" else source)
    if not local.is_file():
        raise DownloadError(f"{local} does not exist in the mirror folder.")
    shutil.copyfile(local, target)


def progress_printer(label: str) -> Callable[[int, int], None]:
    """A progress callback ``(done, total)`` that draws a tqdm bar on the terminal."""
    from tqdm import tqdm

    bar: dict[str, tqdm] = {}

    def update(done: int, total: int) -> None:
        if "bar" not in bar:  # start from what was already done (cached), so the rate counts new work only
            bar["bar"] = tqdm(total=total, initial=done, desc=label, unit="img")
        bar["bar"].total = total
        bar["bar"].n = done
        bar["bar"].refresh()
        if done >= total:
            bar["bar"].close()

    return update


# ---------------------------------------------------------------------------------------------
# Instrumentation
# ---------------------------------------------------------------------------------------------

# How often each model was built or loaded, and how many batches each ran, in this process.
# Tests read these to prove that a model loads once and that a rerun runs no inference.
LOAD_COUNTS: dict[str, int] = {}
INFERENCE_CALLS: dict[str, int] = {}


def count_load(name: str) -> None:
    LOAD_COUNTS[name] = LOAD_COUNTS.get(name, 0) + 1


def count_inference(name: str) -> None:
    INFERENCE_CALLS[name] = INFERENCE_CALLS.get(name, 0) + 1
