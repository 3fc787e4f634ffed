"""The classifier's data: Fashion-MNIST or photos in class folders, decoded to model inputs per split,
and a tf.data pipeline for training. Only the images a caller asks for are decoded."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.classifier.class_folders import scan_class_folders
from lookalike.classifier.model import FASHION, FASHION_SIZE, PHOTO_SIZE, ClassifierError, gray_to_input
from lookalike.core.images import ImageError, load_image, square_image
from lookalike.datasets.fashion_mnist import FASHION_CLASSES, load_fashion_mnist

FASHION_VALIDATION = 5000  # images held out of the Fashion-MNIST train split for early stopping


@dataclass
class TrainingData:
    """Model inputs (uint8, n×s×s×3) and integer labels per split, with where they came from."""

    dataset: str
    classes: list[str]
    input_size: int
    preprocessing: str
    splits: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    source: str = ""

    def sizes(self) -> dict[str, int]:
        return {split: len(labels) for split, (_, labels) in self.splits.items()}


def load_data(
    data: str, input_size: int | None = None, classes: Sequence[str] | None = None, limit: int | None = None
) -> TrainingData:
    """Fashion-MNIST (``data == "fashion-mnist"``) or a class-folder dataset, ready for the network."""
    if data == FASHION:
        return load_fashion_data(input_size or FASHION_SIZE, classes, limit)
    return load_folder_data(Path(data), input_size or PHOTO_SIZE, classes, limit)


def load_fashion_data(input_size: int, classes: Sequence[str] | None = None, limit: int | None = None) -> TrainingData:
    """Fashion-MNIST with the last ``FASHION_VALIDATION`` shuffled train images held out for validation."""
    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    chosen = _choose_fashion_classes(list(FASHION_CLASSES), classes)
    order = np.random.default_rng(0).permutation(len(train.labels))
    held_out, kept = order[-FASHION_VALIDATION:], order[:-FASHION_VALIDATION]
    raw = {
        "train": (train.images[kept], train.labels[kept]),
        "validation": (train.images[held_out], train.labels[held_out]),
        "test": (test.images, test.labels),
    }
    result = TrainingData(FASHION, [FASHION_CLASSES[i] for i in chosen], input_size, FASHION, source=FASHION)
    for split, (images, labels) in raw.items():
        images, labels = _select_classes(images, labels, chosen, split_limit(split, limit))
        result.splits[split] = (np.stack([gray_to_input(image, input_size) for image in images]), labels)
    return result


def split_limit(split: str, limit: int | None) -> int | None:
    """``--limit`` caps the train split; validation and test get a fifth of it (at least 1,000)."""
    if limit is None or split == "train":
        return limit
    return min(limit, max(1000, limit // 5))


def _choose_fashion_classes(names: list[str], wanted: Sequence[str] | None) -> list[int]:
    if not wanted:
        return list(range(len(names)))
    lower = {name.lower(): index for index, name in enumerate(names)}
    missing = [name for name in wanted if name.lower() not in lower]
    if missing:
        raise ClassifierError(f"Fashion-MNIST has no class {', '.join(missing)} (classes: {', '.join(names)}).")
    return [lower[name.lower()] for name in wanted]


def _select_classes(
    images: np.ndarray, labels: np.ndarray, chosen: list[int], limit: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Keep the chosen classes (relabelled 0..k-1) and at most ``limit`` images."""
    remap = {old: new for new, old in enumerate(chosen)}
    keep = np.flatnonzero(np.isin(labels, chosen))[:limit]
    return images[keep], np.array([remap[int(label)] for label in labels[keep]], dtype=np.int64)


def load_folder_data(
    root: Path, input_size: int, classes: Sequence[str] | None = None, limit: int | None = None
) -> TrainingData:
    """Decode every image of a class-folder dataset to a square ``input_size`` input."""
    scanned = scan_class_folders(root, list(classes) if classes else None)
    result = TrainingData(root.name, scanned.classes, input_size, "photo", source=str(root.resolve()))
    for split, items in scanned.splits.items():
        items = _spread(items, split_limit(split, limit))
        images, labels = [], []
        for path, label in items:
            try:
                images.append(square_image(load_image(path), input_size))
                labels.append(label)
            except ImageError as error:
                print(f"skipped: {error}", file=sys.stderr)
        result.splits[split] = (np.stack(images), np.asarray(labels, dtype=np.int64))
    return result


def _spread(items: list[tuple[Path, int]], limit: int | None) -> list[tuple[Path, int]]:
    """At most ``limit`` items, taken evenly across the list (so every class keeps some)."""
    if not limit or len(items) <= limit:
        return items
    picks = np.linspace(0, len(items) - 1, limit).round().astype(int)
    return [items[i] for i in picks]


def make_dataset(images: np.ndarray, labels: np.ndarray, batch_size: int, augment: bool, seed: int = 0) -> Any:
    """A batched tf.data pipeline; ``augment`` shuffles and flips left-right (labels don't change)."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    if augment:
        dataset = dataset.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)

    def to_float(x: Any, y: Any) -> tuple[Any, Any]:
        x = tf.cast(x, tf.float32)
        return (tf.image.random_flip_left_right(x, seed=seed) if augment else x), y

    return dataset.map(to_float, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


def sample_split(
    metadata: dict[str, Any], split: str = "test", per_class: int | None = None, data: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Model inputs and labels of a split of the model's own dataset (or ``data``), ``per_class`` at most.

    Only the chosen images are decoded, so previews of large photo datasets stay cheap.
    """
    source = data or metadata.get("dataset_path") or metadata["dataset"]
    size, classes = int(metadata["input_size"]), list(metadata["classes"])
    if source == FASHION:
        return _fashion_split(split, size, classes, per_class)
    if not Path(source).is_dir():
        raise ClassifierError(f"The dataset {source} is not here; pass --data with its folder.")
    items = scan_class_folders(source, classes).splits.get(split)
    if not items:
        raise ClassifierError(f"{source} has no {split} images of this model's classes.")
    chosen = _first_per_class([label for _, label in items], per_class)
    images, labels = [], []
    for index in chosen:
        path, label = items[index]
        try:
            images.append(square_image(load_image(path), size))
            labels.append(label)
        except ImageError as error:
            print(f"skipped: {error}", file=sys.stderr)
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def _fashion_split(split: str, size: int, classes: list[str], per_class: int | None) -> tuple[np.ndarray, np.ndarray]:
    catalog = load_fashion_mnist("test" if split == "test" else "train")
    chosen = _choose_fashion_classes(list(FASHION_CLASSES), classes)
    images, labels = _select_classes(catalog.images, catalog.labels, chosen, None)
    keep = _first_per_class(list(labels), per_class)
    return np.stack([gray_to_input(image, size) for image in images[keep]]), labels[keep]


def _first_per_class(labels: Sequence[int], per_class: int | None) -> np.ndarray:
    """Indices of the first ``per_class`` items of every label (all when ``per_class`` is None)."""
    if per_class is None:
        return np.arange(len(labels))
    counts: dict[int, int] = {}
    keep = []
    for index, label in enumerate(labels):
        if counts.get(int(label), 0) < per_class:
            counts[int(label)] = counts.get(int(label), 0) + 1
            keep.append(index)
    return np.asarray(keep, dtype=int)
