"""Fashion classifier: an EfficientNetB0 backbone with a 32-d ``embedding`` layer and a softmax head.

Trains on Fashion-MNIST (from scratch, 32 px) or on photos in class folders (ImageNet weights from
``LOOKALIKE_WEIGHTS``, backbone frozen, optional fine-tuning of the top blocks). A saved model is a
folder ``models/<name>/`` with ``model.keras``, ``metadata.json`` and, after evaluation,
``evaluation.json`` and ``confusion_matrix.png``.

    python classifier.py train --data fashion-mnist --epochs 8
    python classifier.py train --data ../shared/data/clothing-dataset-small --fine-tune
    python classifier.py evaluate models/fashion-mnist-effb0
    python classifier.py predict models/fashion-mnist-effb0 photo.jpg
    python classifier.py download clothing-dataset-small

TensorFlow is imported inside the functions that need it, so ``--help`` and the page import stay fast.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

import utils

FASHION = "fashion-mnist"
BACKBONE = "EfficientNetB0"
WEIGHTS_FILE = "efficientnetb0_notop.h5"
WEIGHTS_URL = "https://storage.googleapis.com/keras-applications/efficientnetb0_notop.h5"
MODEL_FILE = "model.keras"
METADATA_FILE = "metadata.json"
EVALUATION_FILE = "evaluation.json"
CONFUSION_FILE = "confusion_matrix.png"
EMBEDDING_LAYER = "embedding"
EMBEDDING_DIM = 32
PHOTO_SIZE = 224
FASHION_SIZE = 32
MIN_SIZE = 32  # EfficientNetB0's smallest input
FASHION_VALIDATION = 5000  # images held out of the Fashion-MNIST train split for early stopping
FINE_TUNE_PREFIXES = ("block6", "block7", "top_")  # the blocks unfrozen by --fine-tune

Progress = Callable[[int, int], None]


class ClassifierError(RuntimeError):
    """A model or dataset cannot be used. The message is meant for people."""


# ---------------------------------------------------------------------------------------------
# Preprocessing: what the network sees
# ---------------------------------------------------------------------------------------------


def gray_to_input(gray: np.ndarray, size: int) -> np.ndarray:
    """A 28×28 (or any) grayscale uint8 image to the model's size×size×3 input (channels replicated)."""
    gray = np.asarray(gray, dtype=np.uint8).reshape(gray.shape[0], gray.shape[1])
    if gray.shape != (size, size):
        gray = np.asarray(Image.fromarray(gray).resize((size, size), Image.Resampling.BILINEAR))
    return np.repeat(gray[..., None], 3, axis=2)


def photo_to_fashion_mnist(rgb: np.ndarray, work_size: int = 80) -> np.ndarray:
    """A colour photo in Fashion-MNIST's domain: 28×28 grey, the garment light on black, cropped and centred.

    Fashion-MNIST negated product photos shot on white. Here the garment is cut out of any background
    with GrabCut (the object is assumed to lie inside the frame), negated, contrast-stretched inside the
    mask, placed on black, cropped to its bounding box, padded square and resized so its long side is 28.
    """
    small = Image.fromarray(np.asarray(rgb, dtype=np.uint8))
    small.thumbnail((work_size, work_size), Image.Resampling.BILINEAR)
    pixels = np.asarray(small)
    mask = foreground_mask(pixels)
    negated = 255.0 - np.asarray(small.convert("L"), dtype=np.float32)
    low, high = np.percentile(negated[mask], [2, 98])
    garment = np.clip(40.0 + (negated - low) / max(high - low, 1.0) * 215.0, 0, 255)
    gray = np.where(mask, garment, 0.0).astype(np.uint8)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    gray = gray[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    side = max(gray.shape)
    canvas = np.zeros((side, side), np.uint8)
    top, left = (side - gray.shape[0]) // 2, (side - gray.shape[1]) // 2
    canvas[top : top + gray.shape[0], left : left + gray.shape[1]] = gray
    return np.asarray(Image.fromarray(canvas).resize((28, 28), Image.Resampling.LANCZOS))


def foreground_mask(pixels: np.ndarray, iterations: int = 3) -> np.ndarray:
    """Boolean mask of the main object (GrabCut from a rectangle 4% inside the border); all True if none."""
    import cv2

    height, width = pixels.shape[:2]
    if min(height, width) < 8:
        return np.ones((height, width), bool)
    margin_x, margin_y = max(1, width // 25), max(1, height // 25)
    labels = np.zeros((height, width), np.uint8)
    models = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    rect = (margin_x, margin_y, width - 2 * margin_x, height - 2 * margin_y)
    bgr = np.ascontiguousarray(pixels[..., ::-1])
    cv2.setRNGSeed(0)  # GrabCut's k-means initialisation is random; the same photo must give the same mask
    try:
        cv2.grabCut(bgr, labels, rect, *models, iterations, cv2.GC_INIT_WITH_RECT)
    except cv2.error:
        return np.ones((height, width), bool)
    mask = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    return mask if mask.mean() >= 0.03 else np.ones((height, width), bool)


def prepare_image(rgb: np.ndarray, preprocessing: str, size: int) -> np.ndarray:
    """An RGB uint8 photo to the uint8 size×size×3 array the model takes (it rescales inside)."""
    if preprocessing == FASHION:
        return gray_to_input(photo_to_fashion_mnist(rgb), size)
    return utils.square_image(rgb, size)


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------


def backbone_weights(from_scratch: bool) -> str | None:
    """What to pass as EfficientNetB0 ``weights=``: None (random) or a local file path."""
    if from_scratch:
        return None
    return utils.resolve_pretrained_weights(BACKBONE, WEIGHTS_FILE, WEIGHTS_URL)


def build_model(
    num_classes: int,
    input_size: int,
    weights: str | None = None,
    trainable_backbone: bool = False,
    dropout: float = 0.2,
) -> Any:
    """EfficientNetB0 (no top) → global average pooling → dropout → Dense(32) ``embedding`` → softmax.

    The backbone's own preprocessing (rescaling and normalisation) is part of the network, so inputs
    are raw 0-255 RGB values.
    """
    import keras

    if input_size < MIN_SIZE:
        raise ClassifierError(f"EfficientNetB0 needs inputs of at least {MIN_SIZE} px, not {input_size}.")
    utils.count_load("classifier")
    backbone = keras.applications.EfficientNetB0(
        include_top=False, weights=weights, input_shape=(input_size, input_size, 3)
    )
    backbone.trainable = trainable_backbone
    inputs = keras.Input((input_size, input_size, 3), name="image")
    # A frozen backbone keeps BatchNorm in inference mode, also later while its top blocks are fine-tuned.
    features = backbone(inputs, training=None if trainable_backbone else False)
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(features)
    dropped = keras.layers.Dropout(dropout, name="dropout")(pooled)
    embedding = keras.layers.Dense(EMBEDDING_DIM, activation="relu", name=EMBEDDING_LAYER)(dropped)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probabilities")(embedding)
    return keras.Model(inputs, outputs, name="fashion_classifier")


def unfreeze_top(model: Any) -> int:
    """Make the top blocks of the backbone trainable (BatchNorm stays frozen). Returns how many layers."""
    import keras

    backbone = model.get_layer("efficientnetb0")
    backbone.trainable = True
    count = 0
    for layer in backbone.layers:
        wanted = layer.name.startswith(FINE_TUNE_PREFIXES) and not isinstance(
            layer, keras.layers.BatchNormalization
        )
        layer.trainable = wanted
        count += wanted
    return count


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


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
    from catalogs import FASHION_CLASSES, load_fashion_mnist

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
    from datasets import scan_class_folders

    scanned = scan_class_folders(root, list(classes) if classes else None)
    result = TrainingData(root.name, scanned.classes, input_size, "photo", source=str(root.resolve()))
    for split, items in scanned.splits.items():
        items = _spread(items, split_limit(split, limit))
        images, labels = [], []
        for path, label in items:
            try:
                images.append(utils.square_image(utils.load_image(path), input_size))
                labels.append(label)
            except utils.ImageError as error:
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


@dataclass
class TrainConfig:
    """Everything that shapes a training run."""

    data: str = FASHION
    epochs: int = 10
    batch_size: int = 256
    input_size: int | None = None
    classes: list[str] | None = None
    fine_tune: bool = False
    fine_tune_epochs: int = 3
    from_scratch: bool | None = None  # default: True for Fashion-MNIST, False for photos
    learning_rate: float | None = None
    patience: int = 3
    limit: int | None = None
    max_minutes: float | None = None
    init_from: Path | None = None  # continue from this model's weights (same classes and input size)
    name: str | None = None
    models_dir: Path = utils.MODELS_DIR
    command: str = ""

    def scratch(self) -> bool:
        return self.data == FASHION if self.from_scratch is None else self.from_scratch


def _callbacks(total: int, progress: Progress | None, max_minutes: float | None, patience: int) -> list[Any]:
    import keras

    class Report(keras.callbacks.Callback):
        """Per-batch progress (images seen) and a time budget checked after each epoch."""

        def __init__(self) -> None:
            super().__init__()
            self.seen, self.started, self.epoch_started = 0, time.monotonic(), time.monotonic()

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.epoch_started = time.monotonic()

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            self.seen += int(self.params.get("batch_size") or 0) or BATCH_HINT[0]
            if progress:
                progress(min(self.seen, total), total)

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            line = ", ".join(f"{key} {value:.4f}" for key, value in logs.items() if key != "learning_rate")
            print(f"epoch {epoch + 1}: {line} ({time.monotonic() - self.epoch_started:.0f} s)", flush=True)
            if max_minutes and time.monotonic() - self.started > max_minutes * 60:
                print(f"time budget of {max_minutes:g} min reached; stopping.", flush=True)
                self.model.stop_training = True

    stop = keras.callbacks.EarlyStopping(
        monitor="val_accuracy", patience=patience, restore_best_weights=True, mode="max"
    )
    return [Report(), stop]


BATCH_HINT = [256]  # images per batch, for progress accounting when keras doesn't report it


def _compile(model: Any, learning_rate: float | Any) -> None:
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )


def fit(
    model: Any, data: TrainingData, config: TrainConfig, progress: Progress | None = None
) -> dict[str, Any]:
    """Train (phase 1, then optional fine-tuning) with early stopping on validation accuracy."""
    import keras

    BATCH_HINT[0] = config.batch_size
    train_x, train_y = data.splits["train"]
    validation = data.splits.get("validation") or data.splits.get("test")
    if validation is None:
        raise ClassifierError("The dataset needs a validation or test split for early stopping.")
    train_ds = make_dataset(train_x, train_y, config.batch_size, augment=True)
    val_ds = make_dataset(*validation, config.batch_size, augment=False)
    steps = -(-len(train_y) // config.batch_size)
    scratch = config.scratch()
    rate = config.learning_rate or (2e-3 if scratch else 1e-3)
    schedule = keras.optimizers.schedules.CosineDecay(rate, decay_steps=max(1, steps * config.epochs), alpha=0.02)
    _compile(model, schedule if scratch else rate)
    epochs_total = config.epochs + (config.fine_tune_epochs if config.fine_tune else 0)
    total = epochs_total * len(train_y)

    def fit(epochs: int) -> dict[str, list[float]]:
        """One training phase with early stopping; returns its Keras history."""
        return model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=epochs,
            verbose=0,
            shuffle=False,  # the dataset shuffles itself
            callbacks=_callbacks(total, progress, config.max_minutes, config.patience),
        ).history

    started = time.monotonic()
    history = fit(config.epochs)
    epochs_run = len(history["loss"])
    if config.fine_tune:
        layers = unfreeze_top(model)
        print(f"fine-tuning {layers} layers of the top blocks at a low learning rate", flush=True)
        _compile(model, rate / 100)
        epochs_run += len(fit(config.fine_tune_epochs)["loss"])
    seen = epochs_run * len(train_y)
    seconds = time.monotonic() - started
    if progress:
        progress(total, total)
    return {
        "epochs_run": epochs_run,
        "train_seconds": round(seconds, 1),
        "train_images_per_second": round(seen / max(seconds, 1e-9), 1),
        "validation_accuracy": round(float(max(history.get("val_accuracy", [0.0]))), 4),
    }


def default_name(data: TrainingData, config: TrainConfig) -> str:
    base = "fashion-mnist" if data.dataset == FASHION else data.dataset
    subset = "-" + "-".join(name.lower().replace("/", "") for name in data.classes) if config.classes else ""
    return f"{base}{subset}-effb0-{data.input_size}"


def train(config: TrainConfig, progress: Progress | None = None) -> Path:
    """Load the data, build and train the model, evaluate on test and save ``models/<name>/``."""
    data = load_data(config.data, config.input_size, config.classes, config.limit)
    print(f"data: {data.dataset}, classes {len(data.classes)}, splits {data.sizes()}", flush=True)
    scratch = config.scratch()
    if config.init_from:
        model = initial_model(Path(config.init_from), data, trainable_backbone=scratch)
    else:
        model = build_model(len(data.classes), data.input_size, backbone_weights(scratch), trainable_backbone=scratch)
    stats = fit(model, data, config, progress)
    folder = Path(config.models_dir) / (config.name or default_name(data, config))
    save_model(model, folder, _metadata(data, config, stats, scratch))
    if "test" in data.splits:
        classifier = load_classifier(folder)
        report = evaluate(classifier, *data.splits["test"])
        write_evaluation(folder, report)
        print(format_report(report), flush=True)
    print(f"saved {folder}", flush=True)
    return folder


def initial_model(folder: Path, data: TrainingData, trainable_backbone: bool) -> Any:
    """A saved model to continue training from; it must have the same classes and input size."""
    import keras

    meta = read_metadata(folder)
    if meta["classes"] != data.classes or int(meta["input_size"]) != data.input_size:
        raise ClassifierError(f"{folder.name} was trained on other classes or another input size.")
    utils.count_load("classifier")
    model = keras.saving.load_model(folder / MODEL_FILE, compile=False)
    model.get_layer("efficientnetb0").trainable = trainable_backbone
    return model


def _metadata(data: TrainingData, config: TrainConfig, stats: dict[str, Any], scratch: bool) -> dict[str, Any]:
    weights = "scratch" if scratch else utils.weights_label()
    return {
        "backbone": BACKBONE,
        "classes": data.classes,
        "input_size": data.input_size,
        "preprocessing": data.preprocessing,
        "dataset": data.dataset,
        "dataset_path": data.source,
        "split_sizes": data.sizes(),
        "weights": weights,
        "fine_tuned": config.fine_tune,
        "batch_size": config.batch_size,
        "epochs": config.epochs,
        "initialised_from": _init_record(config.init_from),
        **stats,
        "test_accuracy": None,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": config.command,
    }


def _init_record(folder: Path | None) -> dict[str, Any] | None:
    """Name, metadata summary and training time of the model a run continued from."""
    if not folder:
        return None
    meta = read_metadata(folder)
    keys = ("command", "epochs_run", "train_seconds", "validation_accuracy", "test_accuracy", "date")
    return {"name": Path(folder).name, **{key: meta.get(key) for key in keys}}


def save_model(model: Any, folder: Path, metadata: dict[str, Any]) -> None:
    """Save the weights and architecture without optimizer state, then the metadata (both atomically)."""
    import keras

    clean = keras.Model.from_config(model.get_config())
    clean.set_weights(model.get_weights())
    folder.mkdir(parents=True, exist_ok=True)
    with utils.atomic_path(folder / MODEL_FILE) as temporary:
        clean.save(temporary)
    write_metadata(folder, metadata)


def write_metadata(folder: Path, metadata: dict[str, Any]) -> None:
    utils.write_text_atomic(folder / METADATA_FILE, json.dumps(metadata, indent=2) + "\n")


def read_metadata(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / METADATA_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ClassifierError(f"{folder} is not a classifier model folder (no {METADATA_FILE}).") from error
    except json.JSONDecodeError as error:
        raise ClassifierError(f"{path} is damaged ({error}).") from error


def list_models(models_dir: str | Path = utils.MODELS_DIR) -> list[Path]:
    """Model folders (with ``model.keras`` and classifier metadata), newest first."""
    folders = []
    for folder in sorted(Path(models_dir).glob("*/")):
        if (folder / MODEL_FILE).is_file() and (folder / METADATA_FILE).is_file():
            try:
                if read_metadata(folder).get("backbone") == BACKBONE:
                    folders.append(folder)
            except ClassifierError:
                continue
    return sorted(folders, key=lambda f: (f / MODEL_FILE).stat().st_mtime, reverse=True)


# ---------------------------------------------------------------------------------------------
# Inference
# ---------------------------------------------------------------------------------------------


class Classifier:
    """A trained model: probabilities and 32-d embeddings, from one forward pass.

    It is also an embedder for :func:`image_search.embed_with_cache`: ``model_id`` includes a hash of
    the model file, ``prepare`` turns a photo into the network's input and ``embed`` returns embeddings.
    """

    def __init__(self, folder: str | Path):
        import keras

        self.folder = Path(folder)
        self.metadata = read_metadata(self.folder)
        path = self.folder / MODEL_FILE
        if not path.is_file():
            raise ClassifierError(f"{self.folder} has no {MODEL_FILE}.")
        utils.count_load("classifier")
        model = keras.saving.load_model(path, compile=False)
        self.model = keras.Model(model.inputs, [model.get_layer(EMBEDDING_LAYER).output, model.outputs[0]])
        self.classes: list[str] = list(self.metadata["classes"])
        self.input_size = int(self.metadata["input_size"])
        self.preprocessing = str(self.metadata.get("preprocessing", "photo"))
        self.flip_average = bool(self.metadata.get("flip_average", True))
        self.model_id = f"classifier:{self.folder.name}:{utils.file_sha256(path)[:16]}"

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """A decoded RGB photo to the network's uint8 input."""
        return prepare_image(image, self.preprocessing, self.input_size)

    def run(self, inputs: Sequence[np.ndarray] | np.ndarray, batch_size: int = 128) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings (n, 32) and probabilities (n, classes) of prepared inputs.

        With ``flip_average`` (the default) each input and its mirror image go through the network in
        the same batch and their outputs are averaged: garments are left-right symmetric classes.
        """
        batch = np.asarray(inputs, dtype=np.float32)
        if len(batch) == 0:
            return np.zeros((0, EMBEDDING_DIM), np.float32), np.zeros((0, len(self.classes)), np.float32)
        embeddings, probabilities = [], []
        for start in range(0, len(batch), batch_size):
            chunk = batch[start : start + batch_size]
            if self.flip_average:
                chunk = np.concatenate([chunk, chunk[:, :, ::-1]])
            utils.count_inference("classifier")
            emb, prob = (np.asarray(out, np.float32) for out in self.model.predict_on_batch(chunk))
            if self.flip_average:
                half = len(chunk) // 2
                emb, prob = (emb[:half] + emb[half:]) / 2, (prob[:half] + prob[half:]) / 2
            embeddings.append(emb)
            probabilities.append(prob)
        return np.concatenate(embeddings), np.concatenate(probabilities)

    def embed(self, inputs: Sequence[np.ndarray]) -> np.ndarray:
        return self.run(inputs)[0]

    def predict_proba(self, inputs: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        return self.run(inputs)[1]

    def predict_image(self, source: str | Path | bytes | np.ndarray) -> Prediction:
        """Decode (if needed), prepare and classify one image."""
        rgb = source if isinstance(source, np.ndarray) else utils.load_image(source)
        prepared = self.prepare(rgb)
        embedding, probabilities = self.run([prepared])
        return Prediction(self.classes, probabilities[0], embedding[0], prepared)


@dataclass
class Prediction:
    """One image's class probabilities (in the model's class order) and embedding."""

    classes: list[str]
    probabilities: np.ndarray
    embedding: np.ndarray
    prepared: np.ndarray

    def ranked(self) -> list[tuple[str, float]]:
        order = np.argsort(-self.probabilities, kind="stable")
        return [(self.classes[i], float(self.probabilities[i])) for i in order]

    @property
    def label(self) -> str:
        return self.classes[int(np.argmax(self.probabilities))]


def load_classifier(folder: str | Path) -> Classifier:
    try:
        return Classifier(folder)
    except (OSError, ValueError, KeyError) as error:
        raise ClassifierError(f"Could not load the model in {folder}: {error}") from error


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, n: int) -> np.ndarray:
    """Rows are true classes, columns predicted ones."""
    matrix = np.zeros((n, n), dtype=np.int64)
    np.add.at(matrix, (np.asarray(truth, int), np.asarray(predicted, int)), 1)
    return matrix


def evaluate(classifier: Classifier, images: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Accuracy, per-class precision/recall/F1 and the confusion matrix on prepared inputs."""
    probabilities = classifier.predict_proba(images)
    report = report_from(classifier.classes, labels, probabilities.argmax(axis=1))
    return {**report, "flip_average": classifier.flip_average}


def report_from(classes: list[str], truth: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    matrix = confusion_matrix(truth, predicted, len(classes))
    hits = np.diag(matrix).astype(float)
    precision = hits / np.maximum(matrix.sum(axis=0), 1)
    recall = hits / np.maximum(matrix.sum(axis=1), 1)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return {
        "accuracy": float(hits.sum() / max(matrix.sum(), 1)),
        "classes": list(classes),
        "per_class": [
            {"class": c, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for c, p, r, f, s in zip(classes, precision, recall, f1, matrix.sum(axis=1), strict=True)
        ],
        "confusion_matrix": matrix.tolist(),
        "count": int(matrix.sum()),
    }


def format_report(report: dict[str, Any]) -> str:
    """Accuracy, the per-class table and the confusion matrix as plain text."""
    width = max(len(c) for c in report["classes"]) + 2
    lines = [f"test accuracy: {report['accuracy']:.4f} on {report['count']} images", ""]
    lines.append(f"{'class':<{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}")
    for row in report["per_class"]:
        lines.append(
            f"{row['class']:<{width}}{row['precision']:>10.3f}{row['recall']:>10.3f}"
            f"{row['f1']:>10.3f}{row['support']:>10d}"
        )
    lines += ["", "confusion matrix (rows: true, columns: predicted)"]
    short = [c[:6] for c in report["classes"]]
    lines.append(" " * width + "".join(f"{s:>7}" for s in short))
    for name, row in zip(report["classes"], report["confusion_matrix"], strict=True):
        lines.append(f"{name:<{width}}" + "".join(f"{v:>7d}" for v in row))
    return "\n".join(lines)


def plot_confusion(report: dict[str, Any], path: Path) -> Path:
    """Save the confusion matrix as a PNG (atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(report["confusion_matrix"])
    classes = report["classes"]
    size = 2.5 + 0.55 * len(classes)
    figure, axes = plt.subplots(figsize=(size, size * 0.85))
    axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    axes.set_yticks(range(len(classes)), classes)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(f"accuracy {report['accuracy']:.3f} on {report['count']} test images")
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, col), value in np.ndenumerate(matrix):
        color = "white" if value > threshold else "black"
        axes.text(col, row, str(value), ha="center", va="center", fontsize=8, color=color)
    figure.tight_layout()
    with utils.atomic_path(path, suffix=".png") as temporary:
        figure.savefig(temporary, format="png", dpi=100)
    plt.close(figure)
    return path


def write_evaluation(folder: Path, report: dict[str, Any]) -> None:
    """Save ``evaluation.json`` and the confusion-matrix PNG, and the test accuracy in the metadata."""
    utils.write_text_atomic(folder / EVALUATION_FILE, json.dumps(report, indent=2) + "\n")
    plot_confusion(report, folder / CONFUSION_FILE)
    metadata = read_metadata(folder)
    metadata["test_accuracy"] = round(report["accuracy"], 4)
    metadata["flip_average"] = bool(report.get("flip_average", True))
    write_metadata(folder, metadata)


def read_evaluation(folder: str | Path) -> dict[str, Any] | None:
    try:
        return json.loads((Path(folder) / EVALUATION_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


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
    from datasets import scan_class_folders

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
            images.append(utils.square_image(utils.load_image(path), size))
            labels.append(label)
        except utils.ImageError as error:
            print(f"skipped: {error}", file=sys.stderr)
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def _fashion_split(split: str, size: int, classes: list[str], per_class: int | None) -> tuple[np.ndarray, np.ndarray]:
    from catalogs import FASHION_CLASSES, load_fashion_mnist

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


class InputEmbedder:
    """Embeds inputs that are already in the model's domain (dataset images), for the embedding cache."""

    def __init__(self, classifier: Classifier):
        self.classifier = classifier
        self.model_id = classifier.model_id + ":inputs"

    def prepare(self, image: np.ndarray) -> np.ndarray:
        return image

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        return self.classifier.embed(images)


def dataset_embeddings(
    classifier: Classifier, inputs: np.ndarray, progress: Progress | None = None
) -> np.ndarray:
    """32-d embeddings of dataset inputs, through the shared on-disk embedding cache."""
    import image_search

    keys = [image_search.array_key(image) for image in inputs]
    return image_search.embed_with_cache(
        keys, lambda i: inputs[i], InputEmbedder(classifier), batch_size=256, progress=progress
    )


# The clothing-dataset-small classes that Fashion-MNIST also has, and the answers counted as right.
# hat, shorts and skirt have no Fashion-MNIST counterpart and are left out.
CLOTHING_TO_FASHION = {
    "t-shirt": ("T-shirt/top",),
    "longsleeve": ("Pullover",),
    "shirt": ("Shirt",),
    "outwear": ("Coat",),
    "dress": ("Dress",),
    "pants": ("Trouser",),
    "shoes": ("Sneaker", "Ankle boot", "Sandal"),
}


def evaluate_photos(
    model: Classifier, root: str | Path, split: str = "test", mapping: dict[str, tuple[str, ...]] | None = None
) -> dict[str, Any]:
    """Accuracy of a Fashion-MNIST model on real photos of the shared classes (``root/split/<class>/``)."""
    mapping = mapping or CLOTHING_TO_FASHION
    folder = Path(root) / split
    per_class: dict[str, dict[str, Any]] = {}
    for name, accepted in mapping.items():
        paths = list(utils.list_images(folder / name)) if (folder / name).is_dir() else []
        if not paths:
            continue
        inputs = np.stack([model.prepare(utils.load_image(path)) for path in paths])
        predicted = [model.classes[i] for i in model.predict_proba(inputs).argmax(axis=1)]
        hits = sum(label in accepted for label in predicted)
        counts = {label: predicted.count(label) for label in sorted(set(predicted), key=predicted.count, reverse=True)}
        per_class[name] = {"accepted": list(accepted), "count": len(paths), "correct": hits, "predicted": counts}
    total = sum(row["count"] for row in per_class.values())
    correct = sum(row["correct"] for row in per_class.values())
    return {"accuracy": correct / max(total, 1), "count": total, "per_class": per_class, "folder": str(folder)}


def format_photo_report(report: dict[str, Any]) -> str:
    lines = [f"real photos ({report['folder']}): accuracy {report['accuracy']:.3f} on {report['count']} images"]
    for name, row in report["per_class"].items():
        top = ", ".join(f"{label} {n}" for label, n in list(row["predicted"].items())[:3])
        lines.append(f"  {name:<11} -> {'/'.join(row['accepted']):<32} {row['correct']}/{row['count']}  ({top})")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def _cmd_train(args: argparse.Namespace) -> int:
    config = TrainConfig(
        data=args.data,
        epochs=args.epochs,
        batch_size=args.batch_size,
        input_size=args.input_size,
        classes=args.classes,
        fine_tune=args.fine_tune,
        fine_tune_epochs=args.fine_tune_epochs,
        from_scratch=args.from_scratch,
        learning_rate=args.learning_rate,
        patience=args.patience,
        limit=args.limit,
        max_minutes=args.max_minutes,
        init_from=Path(args.init_from) if args.init_from else None,
        name=args.name,
        models_dir=Path(args.models_dir),
        command=" ".join(shlex.quote(a) for a in ["python", "classifier.py", *args.argv]),
    )
    train(config, utils.progress_printer("training"))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    classifier = load_classifier(args.model)
    report = evaluate(classifier, *sample_split(classifier.metadata, "test", data=args.data))
    write_evaluation(classifier.folder, report)
    print(format_report(report))
    print(f"\nconfusion matrix saved to {classifier.folder / CONFUSION_FILE}")
    if args.photos:
        print("\n" + format_photo_report(evaluate_photos(classifier, args.photos)))
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    classifier = load_classifier(args.model)
    for image in args.images:
        prediction = classifier.predict_image(image)
        print(f"{image}:")
        for name, probability in prediction.ranked():
            print(f"  {probability:7.2%}  {name}")
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    from datasets import download_clothing_dataset

    paths = download_clothing_dataset(Path(args.dest), args.classes, progress=utils.progress_printer("download"))
    print(f"{len(paths)} images in {args.dest}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="EfficientNetB0 fashion classifier: train, evaluate, predict.")
    commands = parser.add_subparsers(dest="command", required=True)

    train_p = commands.add_parser("train", help="train a model and save it to models/<name>/")
    train_p.add_argument("--data", default=FASHION, help="'fashion-mnist' or a train|validation|test/<class>/ folder")
    train_p.add_argument("--epochs", type=int, default=10)
    train_p.add_argument("--fine-tune", action="store_true", help="then fine-tune the top blocks at a low rate")
    train_p.add_argument("--fine-tune-epochs", type=int, default=3)
    train_p.add_argument("--classes", nargs="+", help="a subset of class names")
    train_p.add_argument("--input-size", type=int, help=f"pixels (default {FASHION_SIZE} for Fashion-MNIST, "
                         f"{PHOTO_SIZE} for photos; at least {MIN_SIZE})")
    train_p.add_argument("--batch-size", type=int, default=256)
    train_p.add_argument("--learning-rate", type=float)
    train_p.add_argument("--patience", type=int, default=3, help="early-stopping patience in epochs")
    scratch = train_p.add_mutually_exclusive_group()
    scratch.add_argument("--from-scratch", dest="from_scratch", action="store_true", default=None,
                         help="random init, whole network trained (default for Fashion-MNIST)")
    scratch.add_argument("--pretrained", dest="from_scratch", action="store_false",
                         help="LOOKALIKE_WEIGHTS backbone, frozen (default for photos)")
    train_p.add_argument("--limit", type=int, help="at most this many training images (validation and test: "
                         "a fifth of it, at least 1,000), for quick runs")
    train_p.add_argument("--max-minutes", type=float, help="stop after the epoch that passes this time")
    train_p.add_argument("--init-from", help="continue training from this model folder's weights")
    train_p.add_argument("--name", help="model folder name (default from the dataset and input size)")
    train_p.add_argument("--models-dir", default=str(utils.MODELS_DIR))
    train_p.set_defaults(func=_cmd_train)

    eval_p = commands.add_parser("evaluate", help="accuracy, per-class table and confusion matrix on test")
    eval_p.add_argument("model", help="a models/<name>/ folder")
    eval_p.add_argument("--data", help="the dataset, if not where the model was trained")
    eval_p.add_argument("--photos", help="also score a Fashion-MNIST model on real photos in this class-folder "
                        "dataset (e.g. clothing-dataset-small), through CLOTHING_TO_FASHION")
    eval_p.set_defaults(func=_cmd_evaluate)

    predict_p = commands.add_parser("predict", help="class probabilities of images, highest first")
    predict_p.add_argument("model")
    predict_p.add_argument("images", nargs="+")
    predict_p.set_defaults(func=_cmd_predict)

    download_p = commands.add_parser("download", help="fetch clothing-dataset-small (honours LOOKALIKE_MIRROR)")
    download_p.add_argument("dataset", choices=["clothing-dataset-small"])
    download_p.add_argument("--dest", default="data/clothing-dataset-small")
    download_p.add_argument("--classes", nargs="+")
    download_p.set_defaults(func=_cmd_download)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from datasets import DatasetError

    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return args.func(args)
    except (ClassifierError, DatasetError, utils.ImageError, utils.WeightsUnavailable, utils.DownloadError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
