"""Training: build (or continue) a model, fit it with early stopping and a time budget, optionally
fine-tune the top blocks, then evaluate on test and save ``models/<name>/``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lookalike.classifier.data import TrainingData, load_data, make_dataset
from lookalike.classifier.inference import load_classifier
from lookalike.classifier.model import (
    BACKBONE,
    FASHION,
    MODEL_FILE,
    ClassifierError,
    backbone_weights,
    build_model,
    unfreeze_top,
)
from lookalike.classifier.report import evaluate, format_report, write_evaluation
from lookalike.classifier.storage import read_metadata, save_model
from lookalike.core import settings
from lookalike.core.counters import count_load
from lookalike.core.progress import Progress
from lookalike.core.weights import weights_label


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
    models_dir: Path = field(default_factory=lambda: settings.MODELS_DIR)
    command: str = ""

    def scratch(self) -> bool:
        return self.data == FASHION if self.from_scratch is None else self.from_scratch


def _callbacks(
    total: int, progress: Progress | None, max_minutes: float | None, patience: int, batch_size: int
) -> list[Any]:
    """Per-batch progress, a time budget and early stopping; ``batch_size`` counts images when Keras doesn't."""
    import keras

    class Report(keras.callbacks.Callback):
        """Per-batch progress (images seen) and a time budget checked after each epoch."""

        def __init__(self) -> None:
            super().__init__()
            self.seen, self.started, self.epoch_started = 0, time.monotonic(), time.monotonic()

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.epoch_started = time.monotonic()

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            self.seen += int(self.params.get("batch_size") or 0) or batch_size
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
            callbacks=_callbacks(total, progress, config.max_minutes, config.patience, config.batch_size),
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
    count_load("classifier")
    model = keras.saving.load_model(folder / MODEL_FILE, compile=False)
    model.get_layer("efficientnetb0").trainable = trainable_backbone
    return model


def _metadata(data: TrainingData, config: TrainConfig, stats: dict[str, Any], scratch: bool) -> dict[str, Any]:
    weights = "scratch" if scratch else weights_label()
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
