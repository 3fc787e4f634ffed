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
from lookalike.classifier.model import (
    FASHION,
    FASHION_SIZE,
    PHOTO,
    PHOTO_SIZE,
    ClassifierError,
    gray_to_input,
    prepare_image,
)
from lookalike.core.images import ImageError, load_image
from lookalike.core.settings import PROJECT_ROOT
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
    data: str, input_size: int | None = None, classes: Sequence[str] | None = None, limit: int | None = None,
    preprocessing: str = PHOTO,
) -> TrainingData:
    """Fashion-MNIST (``data == "fashion-mnist"``) or a class-folder dataset, ready for the network.

    ``preprocessing`` is how photos become square inputs (``photo``: centre crop, ``photo-squash``: squashed).
    """
    if data == FASHION:
        return load_fashion_data(input_size or FASHION_SIZE, classes, limit)
    return load_folder_data(Path(data), input_size or PHOTO_SIZE, classes, limit, preprocessing)


def load_fashion_data(input_size: int, classes: Sequence[str] | None = None, limit: int | None = None) -> TrainingData:
    """Fashion-MNIST with the last ``FASHION_VALIDATION`` shuffled train images held out for validation."""
    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    chosen = choose_fashion_classes(list(FASHION_CLASSES), classes)
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


def choose_fashion_classes(names: list[str], wanted: Sequence[str] | None) -> list[int]:
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
    root: Path, input_size: int, classes: Sequence[str] | None = None, limit: int | None = None,
    preprocessing: str = PHOTO,
) -> TrainingData:
    """Decode every image of a class-folder dataset to a square ``input_size`` input."""
    scanned = scan_class_folders(root, list(classes) if classes else None)
    result = TrainingData(root.name, scanned.classes, input_size, preprocessing, source=str(root.resolve()))
    for split, items in scanned.splits.items():
        items = _spread(items, split_limit(split, limit))
        images, labels = [], []
        for path, label in items:
            try:
                images.append(prepare_image(load_image(path), preprocessing, input_size))
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


AUGMENTATIONS = ("none", "flip", "shift", "photo")


def make_dataset(
    images: np.ndarray, labels: np.ndarray, batch_size: int, augment: str | bool, seed: int = 0
) -> Any:
    """A batched tf.data pipeline of float 0-255 images; with augmentation it also shuffles.

    ``augment``: ``"flip"`` (left-right), ``"shift"`` (Fashion-MNIST: moved up to 4 of 28 px on black, and
    flipped), ``"photo"`` (a random resized crop of 50-100% of the area at aspect 3/4-4/3, flipped, with
    brightness, contrast and saturation jitter), ``"none"`` or False. ``True`` means ``"flip"``.
    """
    import tensorflow as tf

    mode = "flip" if augment is True else "none" if augment is False else augment
    if mode not in AUGMENTATIONS:
        raise ClassifierError(f"Unknown augmentation {mode!r} (choose from {', '.join(AUGMENTATIONS)}).")
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    if mode != "none":
        dataset = dataset.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)

    def transform(x: Any, y: Any) -> tuple[Any, Any]:
        x = tf.cast(x, tf.float32)
        if mode == "flip":
            x = tf.image.random_flip_left_right(x, seed=seed)
        elif mode != "none":
            x = _random_boxes(x, photo=mode == "photo")
        if mode == "photo":
            x = _colour_jitter(x)
        return x, y

    return dataset.map(transform, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _random_boxes(x: Any, photo: bool) -> Any:
    """Each image resampled from a random box (flipped half the time) at its own size, in one batched op."""
    import tensorflow as tf

    n, size = tf.shape(x)[0], tf.shape(x)[1]
    uniform = lambda low, high: tf.random.uniform([n], low, high)  # noqa: E731
    if photo:
        area, log_ratio = uniform(0.5, 1.0), uniform(np.log(3 / 4), np.log(4 / 3))
        width = tf.minimum(tf.sqrt(area * tf.exp(log_ratio)), 1.0)
        height = tf.minimum(tf.sqrt(area / tf.exp(log_ratio)), 1.0)
        top, left = uniform(0.0, 1.0) * (1 - height), uniform(0.0, 1.0) * (1 - width)
    else:  # whole-pixel shifts of up to 4/28 of the side, with black coming in
        step = 1.0 / tf.cast(size - 1, tf.float32)
        reach = tf.round(tf.cast(size, tf.float32) * 4 / 28)
        top = tf.round(uniform(-1.0, 1.0) * reach) * step
        left = tf.round(uniform(-1.0, 1.0) * reach) * step
        height = width = tf.ones([n])
    flip = uniform(0.0, 1.0) < 0.5
    x1, x2 = tf.where(flip, left + width, left), tf.where(flip, left, left + width)
    boxes = tf.stack([top, x1, top + height, x2], axis=1)
    return tf.image.crop_and_resize(x, boxes, tf.range(n), tf.stack([size, size]), extrapolation_value=0.0)


def _colour_jitter(x: Any) -> Any:
    """Brightness ×0.75-1.25, contrast ×0.75-1.25 around the image mean, saturation ×0.7-1.3 around grey."""
    import tensorflow as tf

    n = tf.shape(x)[0]
    factor = lambda low, high: tf.random.uniform([n, 1, 1, 1], low, high)  # noqa: E731
    x = x * factor(0.75, 1.25)
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    x = (x - mean) * factor(0.75, 1.25) + mean
    grey = tf.reduce_mean(x, axis=3, keepdims=True)
    x = (x - grey) * factor(0.7, 1.3) + grey
    return tf.clip_by_value(x, 0.0, 255.0)


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
    preprocessing = str(metadata.get("preprocessing", PHOTO))
    if source == FASHION:
        return _fashion_split(split, size, classes, per_class)
    folder = Path(source) if data else dataset_folder(source)
    if not folder.is_dir():
        raise ClassifierError(f"The dataset {source} is not here; pass --data with its folder.")
    items = scan_class_folders(folder, classes).splits.get(split)
    if not items:
        raise ClassifierError(f"{source} has no {split} images of this model's classes.")
    chosen = _first_per_class([label for _, label in items], per_class)
    images, labels = [], []
    for index in chosen:
        path, label = items[index]
        try:
            images.append(prepare_image(load_image(path), preprocessing, size))
            labels.append(label)
        except ImageError as error:
            print(f"skipped: {error}", file=sys.stderr)
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def dataset_folder(source: str) -> Path:
    """A dataset folder from metadata: shipped models name theirs relative to the project root."""
    path = Path(source)
    return path if path.is_absolute() else PROJECT_ROOT / path


def _fashion_split(split: str, size: int, classes: list[str], per_class: int | None) -> tuple[np.ndarray, np.ndarray]:
    catalog = load_fashion_mnist("test" if split == "test" else "train")
    chosen = choose_fashion_classes(list(FASHION_CLASSES), classes)
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
