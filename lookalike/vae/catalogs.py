"""The VAE's search catalogs: Fashion-MNIST, the Sweet Home 3D furniture icons and real clothing photos.

All are read at run time: Fashion-MNIST and the furniture from system packages (Debian
``dataset-fashion-mnist`` and ``sweethome3d-furniture``), the photos from clothing-dataset-full (see
``lookalike.datasets.clothing_photos``); nothing is copied into the repository.
"""

from __future__ import annotations

import io
import re
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from lookalike.datasets import clothing_photos
from lookalike.datasets.catalog import Catalog, CatalogError
from lookalike.datasets.fashion_mnist import load_fashion_mnist
from lookalike.domain import (
    CLOTHING_PHOTOS,
    DOMAINS,
    FURNITURE_SIZE,
    PHOTO_SIZE,
    WHITE,
    crop_to_object,
    fit_on_white,
    to_clothing_photo,
)

DATASETS = DOMAINS
FURNITURE_DIR = Path("/usr/share/sweethome3d/furniture")


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
    return fit_on_white(crop_to_object(rgb, WHITE), size)

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


@lru_cache(maxsize=2)
def load_clothing_photos(split: str = "train") -> Catalog:
    """clothing-dataset-full's ``train`` (the catalog) or ``validation`` (the queries) split, in the VAE's
    domain (``to_clothing_photo``: padded square with the border colour, 96×96 RGB)."""
    photos = clothing_photos.load_split(
        split, lambda rgb: to_clothing_photo(rgb).image, f"border-padded-{PHOTO_SIZE}px-lanczos-v1",
        max_side=4 * PHOTO_SIZE,
    )
    return Catalog(
        name=CLOTHING_PHOTOS,
        images=photos.images,
        labels=photos.labels,
        class_names=photos.classes,
        captions=[f"{photos.classes[label]} · {path.stem[:8]}" for label, path in zip(photos.labels, photos.paths,
                                                                                     strict=True)],
        sources=[clothing_photos.SOURCE],
        skipped=photos.skipped,
        paths=photos.paths,
    )


def load_catalog(dataset: str) -> Catalog:
    """The search catalog of ``dataset``: Fashion-MNIST's train split, all the furniture, or the train photos."""
    if dataset == "fashion-mnist":
        return load_fashion_mnist("train")
    if dataset == "furniture":
        return load_furniture()
    if dataset == CLOTHING_PHOTOS:
        return load_clothing_photos("train")
    raise CatalogError(f"Unknown catalog {dataset!r}; choose one of {', '.join(DATASETS)}.")

