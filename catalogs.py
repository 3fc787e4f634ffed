"""Product catalogs for the VAE search: Fashion-MNIST and the Sweet Home 3D furniture icons.

Both are read at run time from system packages (Debian ``fashion-mnist`` data files and
``sweethome3d-furniture``); nothing is copied into the repository. Fashion-MNIST falls back to
``keras.datasets`` (a download) when the Debian files are absent.
"""

from __future__ import annotations

import gzip
import io
import re
import struct
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

DATASETS = ("fashion-mnist", "furniture")
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FURNITURE_DIR = Path("/usr/share/sweethome3d/furniture")
FURNITURE_SIZE = 64
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
FASHION_SOURCE = (
    "Fashion-MNIST (Zalando Research, MIT licence): 70,000 greyscale 28×28 product images in 10 classes; "
    "github.com/zalandoresearch/fashion-mnist. Read from the Debian files in "
    f"{FASHION_MNIST_DIR} or downloaded by keras.datasets."
)


class CatalogError(RuntimeError):
    """A catalog cannot be loaded. The message is meant for people and says what to install."""


@dataclass
class Catalog:
    """Images in the model's domain (uint8, N×H×W×C) with one label and caption per item."""

    name: str
    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    captions: list[str]
    creators: list[str] | None = None
    licences: list[str] | None = None
    sources: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)

    def category(self, index: int) -> str:
        return self.class_names[int(self.labels[index])]


# ---------------------------------------------------------------------------------------------
# Fashion-MNIST
# ---------------------------------------------------------------------------------------------


def read_idx(path: str | Path) -> np.ndarray:
    """Read one (optionally gzipped) IDX file, the MNIST container format, into a uint8 array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    if len(data) < 4:
        raise CatalogError(f"{path} is too short to be an IDX file.")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise CatalogError(f"{path} is not an unsigned-byte IDX file.")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise CatalogError(f"{path} holds {body.size} bytes, expected {int(np.prod(shape))}.")
    return body.reshape(shape)


@lru_cache(maxsize=2)
def load_fashion_mnist(split: str = "train") -> Catalog:
    """The Fashion-MNIST ``train`` (the catalog) or ``test`` (the queries) split, 28×28×1 uint8."""
    prefix = {"train": "train", "test": "t10k"}[split]
    images_path = FASHION_MNIST_DIR / f"{prefix}-images-idx3-ubyte.gz"
    labels_path = FASHION_MNIST_DIR / f"{prefix}-labels-idx1-ubyte.gz"
    if images_path.is_file() and labels_path.is_file():
        images, labels = read_idx(images_path), read_idx(labels_path)
    else:
        images, labels = _fashion_mnist_from_keras(split)
    captions = [FASHION_CLASSES[label] for label in labels]
    return Catalog(
        name="fashion-mnist",
        images=images[..., None],
        labels=labels.astype(np.int64),
        class_names=FASHION_CLASSES,
        captions=captions,
        sources=[FASHION_SOURCE],
    )


def _fashion_mnist_from_keras(split: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        from keras.datasets import fashion_mnist

        (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
    except Exception as error:  # any failure means "not available"
        raise CatalogError(
            f"Fashion-MNIST is not in {FASHION_MNIST_DIR} and the download failed ({error}). "
            "Install it with `sudo apt-get install fashion-mnist` or connect to the internet."
        ) from error
    return (x_train, y_train) if split == "train" else (x_test, y_test)


# ---------------------------------------------------------------------------------------------
# Sweet Home 3D furniture
# ---------------------------------------------------------------------------------------------


@dataclass
class FurnitureItem:
    """One catalog entry of a ``.sh3f`` package."""

    name: str
    category: str
    creator: str
    licence: str
    icon: np.ndarray  # FURNITURE_SIZE × FURNITURE_SIZE × 3 uint8, composited on white
    package: str


def parse_properties(text: str) -> dict[str, str]:
    """Parse Java ``.properties`` text: ``key=value``, ``key: value``, continuations and ``\\uXXXX``."""
    result: dict[str, str] = {}
    logical = ""
    for raw in text.splitlines():
        line = raw.lstrip()
        if not logical and (not line or line[0] in "#!"):
            continue
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2 == 1:
            logical += line[:-1]
            continue
        logical += line
        key, value = _split_property(logical)
        result[key] = _unescape(value)
        logical = ""
    if logical:
        key, value = _split_property(logical)
        result[key] = _unescape(value)
    return result


def _split_property(line: str) -> tuple[str, str]:
    match = re.match(r"((?:\\.|[^=:\s\\])*)\s*[=:\s]?\s*(.*)", line, re.DOTALL)
    assert match is not None  # the pattern matches any string
    return _unescape(match.group(1)), match.group(2)


def _unescape(value: str) -> str:
    def replace(match: re.Match[str]) -> str:
        escaped = match.group(1)
        if escaped.startswith("u"):
            return chr(int(escaped[1:], 16))
        return {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}.get(escaped, escaped)

    return re.sub(r"\\(u[0-9a-fA-F]{4}|.)", replace, value)


def composite_icon(data: bytes, size: int = FURNITURE_SIZE) -> np.ndarray:
    """Decode an icon, composite it on white, fit it into a ``size`` square and return RGB uint8."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    rgb = np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    return fit_on_white(crop_to_object(rgb, np.array([255.0, 255.0, 255.0])), size)


def crop_to_object(image: np.ndarray, background: np.ndarray, tolerance: float = 24.0) -> np.ndarray:
    """Crop an RGB image to the box of pixels that differ from the ``background`` colour."""
    distance = np.linalg.norm(image.astype(np.float32) - background, axis=2)
    box = _bounding_box(distance > tolerance)
    if box is None:
        return image
    top, bottom, left, right = box
    return image[top:bottom, left:right]


def fit_on_white(image: np.ndarray, size: int, margin: int = 2) -> np.ndarray:
    """Scale an RGB image to fit a ``size`` square less ``margin`` (aspect kept), centred on white."""
    picture = Image.fromarray(image)
    inner = size - 2 * margin
    scale = inner / max(picture.width, picture.height)
    picture = picture.resize(
        (max(1, round(picture.width * scale)), max(1, round(picture.height * scale))), Image.Resampling.LANCZOS
    )
    canvas = Image.new("RGB", (size, size), (255, 255, 255))
    canvas.paste(picture, ((size - picture.width) // 2, (size - picture.height) // 2))
    return np.asarray(canvas)


def read_sh3f(path: str | Path, size: int = FURNITURE_SIZE) -> list[FurnitureItem]:
    """Read every item of one Sweet Home 3D furniture package (a zip with icons and properties).

    Raises :class:`CatalogError` with a clear message when the file is not a readable package.
    Items whose icon is missing or undecodable are skipped.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            properties = parse_properties(
                archive.read("PluginFurnitureCatalog.properties").decode("latin-1")
            )
            return _items(archive, properties, path.name, size)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, zlib.error) as error:
        raise CatalogError(f"{path.name} is damaged or not a Sweet Home 3D package ({error}).") from error
    except KeyError as error:
        raise CatalogError(f"{path.name} has no PluginFurnitureCatalog.properties ({error}).") from error


def _items(archive: zipfile.ZipFile, properties: dict[str, str], package: str, size: int) -> list[FurnitureItem]:
    licence = properties.get("license", "").split("  ")[0].strip() or "see package"
    indices = sorted(int(key.split("#")[1]) for key in properties if re.fullmatch(r"id#\d+", key))
    items = []
    for index in indices:
        icon_path = properties.get(f"icon#{index}", "").lstrip("/")
        try:
            icon = composite_icon(archive.read(icon_path), size)
        except (KeyError, OSError, ValueError, zipfile.BadZipFile) as error:
            warnings.warn(f"{package}: item {index} skipped, icon {icon_path!r} unreadable ({error}).", stacklevel=2)
            continue
        items.append(
            FurnitureItem(
                name=properties.get(f"name#{index}", f"item {index}").strip(),
                category=properties.get(f"category#{index}", "Miscellaneous").strip(),
                creator=properties.get(f"creator#{index}", "unknown").strip(),
                licence=properties.get(f"license#{index}", licence).strip(),
                icon=icon,
                package=package,
            )
        )
    return items


def package_description(path: Path) -> str:
    """A one-line source note for a package: its catalog name, licence and provider."""
    try:
        with zipfile.ZipFile(path) as archive:
            text = archive.read("PluginFurnitureCatalog.properties").decode("latin-1")
    except (zipfile.BadZipFile, KeyError, OSError):
        return f"{path.name}: unreadable"
    properties = parse_properties(text)
    name = properties.get("name", path.stem)
    licence = " ".join(properties.get("license", "unknown licence").split())
    provider = properties.get("provider", "")
    return f"{name} ({path.name}): {licence}" + (f"; provider {provider}" if provider else "")


@lru_cache(maxsize=2)
def load_furniture(folder: str | Path = FURNITURE_DIR, size: int = FURNITURE_SIZE) -> Catalog:
    """All items of every ``.sh3f`` package in ``folder``; damaged packages are reported and skipped."""
    folder = Path(folder)
    packages = sorted(folder.glob("*.sh3f")) if folder.is_dir() else []
    if not packages:
        raise CatalogError(
            f"No Sweet Home 3D furniture packages in {folder}. "
            "Install them with `sudo apt-get install sweethome3d-furniture`."
        )
    items: list[FurnitureItem] = []
    sources, skipped = [], []
    for package in packages:
        try:
            items.extend(read_sh3f(package, size))
            sources.append(package_description(package))
        except CatalogError as error:
            warnings.warn(str(error), stacklevel=2)
            skipped.append(str(error))
    if not items:
        raise CatalogError(f"No readable furniture in {folder}: " + "; ".join(skipped))
    categories = tuple(sorted({item.category for item in items}))
    return Catalog(
        name="furniture",
        images=np.stack([item.icon for item in items]),
        labels=np.array([categories.index(item.category) for item in items], dtype=np.int64),
        class_names=categories,
        captions=[item.name for item in items],
        creators=[item.creator for item in items],
        licences=[item.licence for item in items],
        sources=sources,
        skipped=skipped,
    )


def load_catalog(dataset: str) -> Catalog:
    """The search catalog of ``dataset``: Fashion-MNIST's train split, or all the furniture."""
    if dataset == "fashion-mnist":
        return load_fashion_mnist("train")
    if dataset == "furniture":
        return load_furniture()
    raise CatalogError(f"Unknown catalog {dataset!r}; choose one of {', '.join(DATASETS)}.")


# ---------------------------------------------------------------------------------------------
# Bringing an uploaded photo into a catalog's domain
# ---------------------------------------------------------------------------------------------


@dataclass
class Preprocessed:
    """A query in the catalog's domain, with the intermediate images and what each step did."""

    image: np.ndarray  # uint8, the catalog's shape (28×28×1 or 64×64×3)
    steps: list[tuple[str, np.ndarray]] = field(default_factory=list)


def _border(image: np.ndarray, width: int = 2) -> np.ndarray:
    """The pixels of a frame ``width`` wide around the image, as (N, channels)."""
    channels = image.reshape(*image.shape[:2], -1)
    frame = np.concatenate(
        [
            channels[:width].reshape(-1, channels.shape[2]),
            channels[-width:].reshape(-1, channels.shape[2]),
            channels[:, :width].reshape(-1, channels.shape[2]),
            channels[:, -width:].reshape(-1, channels.shape[2]),
        ]
    )
    return frame.astype(np.float32)


def _bounding_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0 or cols.size == 0:
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _pad_square(image: np.ndarray, fill: int) -> np.ndarray:
    height, width = image.shape[:2]
    side = max(height, width)
    canvas = np.full((side, side, *image.shape[2:]), fill, dtype=np.uint8)
    top, left = (side - height) // 2, (side - width) // 2
    canvas[top : top + height, left : left + width] = image
    return canvas


def to_fashion_mnist(rgb: np.ndarray) -> Preprocessed:
    """Grey, light-on-dark, background removed, object cropped and centred in 28×28.

    Mirrors how Fashion-MNIST was made: trim, resize the long side to 28, centre, negate.
    """
    steps: list[tuple[str, np.ndarray]] = []
    grey = np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.float32)
    steps.append(("greyscale", grey.astype(np.uint8)))
    if float(np.median(_border(grey))) > 127:
        grey = 255.0 - grey
        steps.append(("inverted (catalog items are light on black)", grey.astype(np.uint8)))
    background = float(np.percentile(_border(grey), 90))  # most of an uneven backdrop goes to black
    grey = np.clip((grey - background) / max(255.0 - background, 1.0) * 255.0, 0, 255)
    box = _bounding_box(grey > 40)
    if box is not None:
        top, bottom, left, right = box
        grey = grey[top:bottom, left:right]
    square = _pad_square(grey.astype(np.uint8), 0)
    small = np.asarray(Image.fromarray(square).resize((28, 28), Image.Resampling.LANCZOS))
    steps.append(("background removed, cropped, centred, 28×28", small))
    return Preprocessed(image=small[..., None], steps=steps)


def to_furniture(rgb: np.ndarray, size: int = FURNITURE_SIZE, tolerance: float = 40.0) -> Preprocessed:
    """Replace a plain background with white, crop to the object and centre it on a white square."""
    steps: list[tuple[str, np.ndarray]] = []
    image = np.asarray(rgb, dtype=np.uint8)
    border = _border(image)
    colour = np.median(border, axis=0)
    distance = np.linalg.norm(image.astype(np.float32) - colour, axis=2)
    foreground = distance > tolerance
    plain = float(np.median(np.linalg.norm(border - colour, axis=1))) < tolerance / 2
    if plain and 0.01 < foreground.mean() < 0.98:
        if np.min(colour) < 235:
            image = np.where(foreground[..., None], image, np.uint8(255))
            steps.append(("background replaced by white", image))
        image = crop_to_object(image, np.array([255.0, 255.0, 255.0]))
    else:
        steps.append(("no plain background found: kept the whole picture", image))
    fitted = fit_on_white(np.asarray(image), size)
    steps.append((f"cropped and centred on white, {size}×{size}", fitted))
    return Preprocessed(image=fitted, steps=steps)


def to_catalog_domain(rgb: np.ndarray, dataset: str) -> Preprocessed:
    """Bring an RGB uint8 photo into the domain of ``dataset``'s catalog images."""
    if dataset == "fashion-mnist":
        return to_fashion_mnist(rgb)
    if dataset == "furniture":
        return to_furniture(rgb)
    raise CatalogError(f"Unknown catalog {dataset!r}; choose one of {', '.join(DATASETS)}.")
