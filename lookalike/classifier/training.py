"""Training: build (or continue) a model, fit it with early stopping and a time budget, optionally
fine-tune the top blocks, then evaluate on test and save ``models/<name>/``.

Training is resumable: ``--init-from models/<name>`` continues from a saved model's weights (same backbone,
classes, input size and preprocessing), so a long run can be split into sittings with ``--max-minutes``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lookalike.classifier.backbones import AUTO, BACKBONES, BUNDLED, EFFICIENTNET_B0, LITE0, Backbone, by_name
from lookalike.classifier.data import TrainingData, load_data, make_dataset
from lookalike.classifier.inference import load_classifier
from lookalike.classifier.model import (
    FASHION,
    MODEL_FILE,
    PHOTO,
    PHOTO_SQUASH,
    ClassifierError,
    backbone_weights,
    build_model,
    unfreeze_top,
)
from lookalike.classifier.report import evaluate, format_report, write_evaluation
from lookalike.classifier.storage import read_metadata, save_model
from lookalike.core import lite0, settings
from lookalike.core.counters import count_load
from lookalike.core.progress import Progress
from lookalike.core.weights import WeightsUnavailable, weights_label

LITE0_FASHION_SIZE = 64  # Lite0 reads Fashion-MNIST upsampled to 64 px (at 32 px its last stages see 1×1)


@dataclass
class TrainConfig:
    """Everything that shapes a training run."""

    data: str = FASHION
    backbone: str = AUTO  # "auto", "efficientnetb0" or "efficientnet-lite0"
    epochs: int = 10
    batch_size: int = 256
    input_size: int | None = None
    classes: list[str] | None = None
    fine_tune: bool = False
    fine_tune_epochs: int = 3
    fine_tune_learning_rate: float | None = None  # default: a hundredth of the first phase's rate
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


@dataclass(frozen=True)
class Start:
    """Where a run starts: the backbone, the weights to build it with, and how the metadata names them."""

    backbone: Backbone
    weights: str | None
    record: str


def choose_start(requested: str, scratch: bool) -> Start:
    """The backbone and starting weights for ``--backbone`` (``auto``: EfficientNetB0, the design's backbone,
    unless pretrained weights are wanted and its ImageNet file can't be had; then the bundled Lite0)."""
    if scratch:
        backbone = EFFICIENTNET_B0 if requested == AUTO else BACKBONES[requested]
        return Start(backbone, None, "scratch")
    if requested in (AUTO, EFFICIENTNET_B0.key):
        try:
            return Start(EFFICIENTNET_B0, backbone_weights(False), weights_label())
        except WeightsUnavailable as error:
            if requested != AUTO:
                raise
            print(f"EfficientNetB0 ImageNet weights unavailable ({error.reason}); "
                  "training on the bundled EfficientNet-Lite0 instead.", flush=True)
    digest = lite0.bundled_metadata()["weights_sha256"]
    return Start(LITE0, BUNDLED, f"efficientnet-lite0 ImageNet (bundled, sha256 {digest[:12]})")


def input_defaults(data: str, backbone: Backbone, input_size: int | None) -> tuple[int | None, str]:
    """The input size (None: the dataset's default) and photo preprocessing that suit a backbone."""
    if backbone is LITE0:
        return input_size or (LITE0_FASHION_SIZE if data == FASHION else None), PHOTO_SQUASH
    return input_size, PHOTO


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


def compile_model(model: Any, learning_rate: float | Any) -> None:
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )


def fit(
    model: Any, data: TrainingData, config: TrainConfig, progress: Progress | None = None,
    backbone: Backbone = EFFICIENTNET_B0,
) -> dict[str, Any]:
    """Train (phase 1, then optional fine-tuning of the top blocks) with early stopping on validation accuracy.

    Training images are augmented: Fashion-MNIST by small shifts and flips, photos by random resized crops,
    flips and colour jitter.
    """
    import keras

    train_x, train_y = data.splits["train"]
    validation = data.splits.get("validation") or data.splits.get("test")
    if validation is None:
        raise ClassifierError("The dataset needs a validation or test split for early stopping.")
    augment = "shift" if data.preprocessing == FASHION else "photo"
    train_ds = make_dataset(train_x, train_y, config.batch_size, augment=augment)
    val_ds = make_dataset(*validation, config.batch_size, augment="none")
    steps = -(-len(train_y) // config.batch_size)
    scratch = config.scratch()
    rate = config.learning_rate or (2e-3 if scratch else 1e-3)
    schedule = keras.optimizers.schedules.CosineDecay(rate, decay_steps=max(1, steps * config.epochs), alpha=0.02)
    compile_model(model, schedule if scratch else rate)
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
        layers = unfreeze_top(model, backbone)
        fine_rate = config.fine_tune_learning_rate or rate / 100
        print(f"fine-tuning {layers} layers of the top blocks at learning rate {fine_rate:g}", flush=True)
        compile_model(model, fine_rate)
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


def default_name(data: TrainingData, config: TrainConfig, backbone: Backbone = EFFICIENTNET_B0) -> str:
    base = "fashion-mnist" if data.dataset == FASHION else data.dataset
    subset = "-" + "-".join(name.lower().replace("/", "") for name in data.classes) if config.classes else ""
    short = "lite0" if backbone is LITE0 else "effb0"
    return f"{base}{subset}-{short}-{data.input_size}"


def train(config: TrainConfig, progress: Progress | None = None) -> Path:
    """Load the data, build and train the model, evaluate on test and save ``models/<name>/``."""
    scratch = config.scratch()
    if config.init_from:
        meta = read_metadata(Path(config.init_from))
        start = Start(_backbone_of(meta, config.backbone), None, str(meta.get("weights")))
        input_size, preprocessing = config.input_size or int(meta["input_size"]), str(meta["preprocessing"])
    else:
        start = choose_start(config.backbone, scratch)
        input_size, preprocessing = input_defaults(config.data, start.backbone, config.input_size)
    data = load_data(config.data, input_size, config.classes, config.limit, preprocessing)
    print(f"data: {data.dataset}, classes {len(data.classes)}, splits {data.sizes()}; "
          f"backbone {start.backbone.name}, {data.input_size} px", flush=True)
    if config.init_from:
        model = initial_model(Path(config.init_from), data, trainable_backbone=scratch)
    else:
        model = build_model(len(data.classes), data.input_size, start.weights, trainable_backbone=scratch,
                            backbone=start.backbone)
    stats = fit(model, data, config, progress, start.backbone)
    folder = Path(config.models_dir) / (config.name or default_name(data, config, start.backbone))
    save_model(model, folder, _metadata(data, config, stats, start))
    if "test" in data.splits:
        classifier = load_classifier(folder)
        report = evaluate(classifier, *data.splits["test"])
        write_evaluation(folder, report)
        print(format_report(report), flush=True)
    print(f"saved {folder}", flush=True)
    return folder


def _backbone_of(meta: dict[str, Any], requested: str) -> Backbone:
    """The backbone of a model to continue from; ``--backbone``, if given, must agree."""
    backbone = by_name(str(meta.get("backbone", EFFICIENTNET_B0.name)))
    if requested not in (AUTO, backbone.key):
        raise ClassifierError(f"That model was trained on {backbone.name}; --backbone {requested} can't continue it.")
    return backbone


def initial_model(folder: Path, data: TrainingData, trainable_backbone: bool) -> Any:
    """A saved model to continue training from; it must have the same classes, input size and preprocessing."""
    import keras

    meta = read_metadata(folder)
    if meta["classes"] != data.classes or int(meta["input_size"]) != data.input_size:
        raise ClassifierError(f"{folder.name} was trained on other classes or another input size.")
    count_load("classifier")
    model = keras.saving.load_model(folder / MODEL_FILE, compile=False)
    model.get_layer(by_name(str(meta.get("backbone", EFFICIENTNET_B0.name))).layer).trainable = trainable_backbone
    return model


def _metadata(data: TrainingData, config: TrainConfig, stats: dict[str, Any], start: Start) -> dict[str, Any]:
    return {
        "backbone": start.backbone.name,
        "classes": data.classes,
        "input_size": data.input_size,
        "preprocessing": data.preprocessing,
        "dataset": data.dataset,
        "dataset_path": data.source,
        "split_sizes": data.sizes(),
        "weights": start.record,
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
