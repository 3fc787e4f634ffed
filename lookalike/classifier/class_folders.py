"""Photo datasets in class folders (``train|validation|test/<class>/*.jpg``): scan and download.

Fashion-MNIST lives in :mod:`lookalike.datasets.fashion_mnist`. Light: no TensorFlow.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lookalike.core.downloads import download_file
from lookalike.core.images import list_images
from lookalike.core.settings import PROJECT_ROOT

SPLITS = ("train", "validation", "test")


class DatasetError(ValueError):
    """A dataset is missing or malformed. The message is meant for people."""


# ---------------------------------------------------------------------------------------------
# Photos in class folders (train|validation|test/<class>/*.jpg)
# ---------------------------------------------------------------------------------------------


@dataclass
class FolderDataset:
    """Image paths and labels of a class-folder dataset, split by split."""

    root: Path
    classes: list[str]
    splits: dict[str, list[tuple[Path, int]]] = field(default_factory=dict)

    def sizes(self) -> dict[str, int]:
        return {split: len(items) for split, items in self.splits.items()}


def scan_class_folders(root: str | Path, classes: list[str] | None = None) -> FolderDataset:
    """Find ``root/<split>/<class>/*`` images. ``classes`` picks a subset (case-insensitive names).

    The class list is taken from the train split (sorted) unless ``classes`` is given.
    """
    root = Path(root)
    if not (root / "train").is_dir():
        raise DatasetError(f"{root} has no train/ folder; expected train|validation|test/<class>/ images.")
    found = sorted(p.name for p in (root / "train").iterdir() if p.is_dir() and not p.name.startswith("."))
    chosen = _pick_classes(found, classes, root)
    dataset = FolderDataset(root=root, classes=chosen)
    for split in SPLITS:
        items = [
            (path, index)
            for index, name in enumerate(chosen)
            if (root / split / name).is_dir()
            for path in list_images(root / split / name)
        ]
        if items:
            dataset.splits[split] = items
    if not dataset.splits.get("train"):
        raise DatasetError(f"{root}/train holds no images of the chosen classes.")
    return dataset


def _pick_classes(found: list[str], wanted: list[str] | None, root: Path) -> list[str]:
    if not wanted:
        if not found:
            raise DatasetError(f"{root}/train has no class folders.")
        return found
    by_lower = {name.lower(): name for name in found}
    missing = [name for name in wanted if name.lower() not in by_lower]
    if missing:
        raise DatasetError(f"{root}/train has no class folder {', '.join(missing)} (found: {', '.join(found)}).")
    return [by_lower[name.lower()] for name in wanted]


# ---------------------------------------------------------------------------------------------
# clothing-dataset-small download
# ---------------------------------------------------------------------------------------------

CLOTHING_BASE = "https://raw.githubusercontent.com/alexeygrigorev/clothing-dataset-small/master"
MANIFEST = PROJECT_ROOT / "manifests" / "clothing-dataset-small.csv"


@dataclass(frozen=True)
class ManifestEntry:
    path: str  # relative, e.g. "train/dress/xxx.jpg"
    sha256: str
    size: int

    @property
    def class_name(self) -> str:
        return self.path.split("/")[1]


def read_manifest(path: Path = MANIFEST) -> list[ManifestEntry]:
    """The files to fetch (relative path, SHA-256, size), from the CSV shipped with the project."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    entries = [ManifestEntry(row["path"], row["sha256"], int(row["bytes"])) for row in rows]
    for entry in entries:
        parts = entry.path.split("/")
        if len(parts) != 3 or parts[0] not in SPLITS or ".." in parts or entry.path.startswith("/"):
            raise DatasetError(f"{path.name} lists an unexpected path: {entry.path!r}.")
    return entries


def download_clothing_dataset(
    destination: Path,
    classes: list[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    manifest: Path = MANIFEST,
) -> list[Path]:
    """Fetch the manifest's images (checksummed) into ``destination``; ``LOOKALIKE_MIRROR`` is honoured.

    Files already present with the right checksum are kept. ``classes`` picks a subset.
    """
    entries = read_manifest(manifest)
    if classes:
        known = {entry.class_name for entry in entries}
        wanted = {name.lower() for name in classes}
        missing = wanted - known
        if missing:
            raise DatasetError(f"clothing-dataset-small has no class {', '.join(sorted(missing))}.")
        entries = [entry for entry in entries if entry.class_name in wanted]
    paths = []
    for done, entry in enumerate(entries, start=1):
        paths.append(download_file(f"{CLOTHING_BASE}|{entry.path}", destination / entry.path, entry.sha256))
        if progress:
            progress(done, len(entries))
    return paths
