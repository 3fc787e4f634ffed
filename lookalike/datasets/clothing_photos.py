"""clothing-dataset-full: real photos of clothes in class folders, read at run time, never copied.

The folder is ``LOOKALIKE_CLOTHING_PHOTOS`` if set, else ``../shared/data/clothing-dataset-full`` beside the
project, laid out as ``train|validation|test/<class>/*.jpg`` (train 3,068, validation 341, test 80 photos in
10 classes). The Visual Search catalog is the train split and its queries are the validation split.

Decoding 3,000 JPEGs takes seconds, so a split is decoded once into arrays of one fixed preparation (the
caller's ``prepare``, named by ``preparation``) and kept on disk as one ``.npz``. The cache key covers
every file's name, size and modification time and the preparation's name, so a changed folder or a changed
preparation is read again, and an unchanged one loads in well under a second.
"""

from __future__ import annotations

import hashlib
import os
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lookalike.core.files import save_npz_atomic
from lookalike.core.images import ImageError, list_images, load_image
from lookalike.core.progress import Progress
from lookalike.core.settings import PROJECT_ROOT, get_settings
from lookalike.datasets.catalog import CatalogError

ENV = "LOOKALIKE_CLOTHING_PHOTOS"
DEFAULT_DIR = PROJECT_ROOT.parent / "shared" / "data" / "clothing-dataset-full"
SOURCE = (
    "clothing-dataset by Alexey Grigorev (CC0 1.0): photos of clothes on everyday backgrounds in 10 classes. "
    "The 'full' release's train split is the catalog and its validation split the benchmark queries. "
    f"Read at run time from {ENV}, by default ../shared/data/clothing-dataset-full beside the project."
)


@dataclass
class PhotoSplit:
    """One split, prepared: uint8 images (N, H, W, 3), labels, class names and the files they came from."""

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    paths: list[Path]
    folder: Path
    skipped: list[str] = field(default_factory=list)


def photos_dir() -> Path:
    """The dataset folder: ``LOOKALIKE_CLOTHING_PHOTOS`` if set, else ``../shared/data/clothing-dataset-full``."""
    configured = os.environ.get(ENV, "").strip()
    return Path(configured).expanduser() if configured else DEFAULT_DIR


def missing_message(folder: Path, reason: str) -> str:
    return (
        f"The clothing photos need clothing-dataset-full in {folder} ({reason}). Put its train/ and "
        f"validation/ class folders there, or set {ENV} to the folder that holds them."
    )


def split_files(folder: Path, split: str) -> tuple[tuple[str, ...], list[tuple[Path, int]]]:
    """The class names (the train split's sub-folders, sorted) and the (photo, label) pairs of ``split``."""
    if not folder.is_dir():
        raise CatalogError(missing_message(folder, "the folder does not exist"))
    train = folder / "train"
    classes = tuple(sorted(p.name for p in train.iterdir() if p.is_dir() and not p.name.startswith("."))) \
        if train.is_dir() else ()
    if not classes:
        raise CatalogError(missing_message(folder, "no class folders in train/"))
    items = [(path, label) for label, name in enumerate(classes) if (folder / split / name).is_dir()
             for path in list_images(folder / split / name)]
    if not items:
        raise CatalogError(missing_message(folder, f"no photos in {split}/"))
    return classes, items


def _cache_file(folder: Path, split: str, preparation: str, items: list[tuple[Path, int]]) -> Path:
    digest = hashlib.sha256(f"{preparation}|{split}".encode())
    for path, label in items:
        stat = path.stat()
        digest.update(f"{path.relative_to(folder)}|{label}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return get_settings().cache_dir / "datasets" / f"clothing-photos-{split}-{digest.hexdigest()[:20]}.npz"


def _read_cache(path: Path, folder: Path, classes: tuple[str, ...]) -> PhotoSplit | None:
    """The cached split, or None when it is absent, unreadable or stale (then it is simply built again)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            split = PhotoSplit(
                images=data["images"], labels=data["labels"].astype(np.int64),
                classes=tuple(str(name) for name in data["classes"]),
                paths=[folder / str(relative) for relative in data["paths"]], folder=folder,
                skipped=[str(problem) for problem in data["skipped"]],
            )
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    whole = split.images.ndim == 4 and len(split.images) == len(split.labels) == len(split.paths)
    return split if whole and split.classes == classes else None


def load_split(
    split: str,
    prepare: Callable[[np.ndarray], np.ndarray],
    preparation: str,
    max_side: int,
    folder: str | Path | None = None,
    progress: Progress | None = None,
) -> PhotoSplit:
    """One split, each photo decoded (long side shrunk to about ``max_side``) and passed through ``prepare``.

    ``preparation`` names what ``prepare`` does (it is part of the cache key). Unreadable photos are skipped
    with a warning and listed in ``skipped``. Raises :class:`CatalogError` saying where the photos belong.
    """
    folder = Path(folder) if folder is not None else photos_dir()
    classes, items = split_files(folder, split)
    cache_file = _cache_file(folder, split, preparation, items)
    cached = _read_cache(cache_file, folder, classes)
    if cached is not None:
        return cached
    images, labels, paths, skipped = [], [], [], []
    for done, (path, label) in enumerate(items, start=1):
        try:
            images.append(prepare(load_image(path, max_side=max_side)))
        except ImageError as error:
            warnings.warn(f"{path.name} skipped: {error}", stacklevel=2)
            skipped.append(f"{path.relative_to(folder)}: {error}")
        else:
            labels.append(label)
            paths.append(path)
        if progress:
            progress(done, len(items))
    if not images:
        raise CatalogError(missing_message(folder, f"none of the photos in {split}/ could be read"))
    photos = PhotoSplit(np.stack(images), np.asarray(labels, dtype=np.int64), classes, paths, folder, skipped)
    save_npz_atomic(
        cache_file, images=photos.images, labels=photos.labels, classes=np.asarray(classes),
        paths=np.asarray([str(path.relative_to(folder)) for path in paths]), skipped=np.asarray(skipped, dtype=str),
    )
    return photos
