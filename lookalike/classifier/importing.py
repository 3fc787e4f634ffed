"""Turn EfficientNet-Lite0 weights fine-tuned elsewhere into a saved classifier, ``models/<name>/``.

The weights come as an ``.npz`` of arrays keyed like the PyTorch checkpoint (``_conv_stem.weight``, …,
``_fc.weight``), which is what ``tools/train_lite0_photos.py`` and ``tools/train_lite0_fashion_mnist.py`` write.
The classes come from the dataset (sorted class folders, or Fashion-MNIST's ten), in the order the training
used, and the head must have exactly that many outputs. A JSON record of the training run, if given, is kept
in ``metadata.json`` under ``training`` so that the model says where it came from and how to rebuild it.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lookalike.classifier.backbones import LITE0
from lookalike.classifier.class_folders import scan_class_folders
from lookalike.classifier.data import FASHION_VALIDATION, choose_fashion_classes
from lookalike.classifier.model import (
    FASHION,
    PHOTO_SIZE,
    PHOTO_SQUASH,
    ClassifierError,
    build_lite0_model,
    load_lite0_arrays,
)
from lookalike.classifier.storage import save_model
from lookalike.core import lite0
from lookalike.core.files import file_sha256
from lookalike.core.settings import PROJECT_ROOT
from lookalike.datasets.fashion_mnist import FASHION_CLASSES

FASHION_LITE0_SIZE = 64


def read_arrays(path: Path) -> dict[str, Any]:
    """The checkpoint-keyed arrays of an ``.npz`` file, or one clear error."""
    try:
        return lite0.read_npz(path)
    except FileNotFoundError as error:
        raise ClassifierError(f"{path} does not exist.") from error
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise ClassifierError(f"{path} is not a readable .npz weights file ({error}).") from error


def read_record(path: Path | None) -> dict[str, Any]:
    """The training run's JSON record (recipe, commands, scores measured where it was trained)."""
    if path is None:
        return {}
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ClassifierError(f"The training record {path} is missing or not JSON ({error}).") from error
    if not isinstance(record, dict):
        raise ClassifierError(f"The training record {path} must hold a JSON object.")
    return record


def dataset_classes(data: str, classes: Sequence[str] | None) -> tuple[str, list[str], str, dict[str, int]]:
    """Name, classes (in training order), source and split sizes of the dataset the weights were trained on."""
    if data == FASHION:
        chosen = [FASHION_CLASSES[i] for i in choose_fashion_classes(list(FASHION_CLASSES), classes)]
        sizes = {} if classes else {"train": 60000 - FASHION_VALIDATION, "validation": FASHION_VALIDATION,
                                    "test": 10000}
        return FASHION, chosen, FASHION, sizes
    scanned = scan_class_folders(data, list(classes) if classes else None)
    # Relative to the project, so that a shipped model finds its dataset on every machine with the same layout.
    source = os.path.relpath(scanned.root.resolve(), PROJECT_ROOT)
    return scanned.root.name, scanned.classes, source, scanned.sizes()


def import_weights(
    weights: Path,
    data: str,
    folder: Path,
    classes: Sequence[str] | None = None,
    input_size: int | None = None,
    record: Path | None = None,
    command: str = "",
) -> Path:
    """Build a Lite0 classifier, load ``weights`` into it (every shape checked) and save ``folder``."""
    arrays = read_arrays(Path(weights))
    dataset, names, source, sizes = dataset_classes(data, classes)
    size = input_size or (FASHION_LITE0_SIZE if data == FASHION else PHOTO_SIZE)
    model = build_lite0_model(len(names), size)
    load_lite0_arrays(model, arrays)
    training = read_record(record)
    metadata = {
        "backbone": LITE0.name,
        "classes": names,
        "input_size": size,
        "preprocessing": FASHION if data == FASHION else PHOTO_SQUASH,
        "dataset": dataset,
        "dataset_path": source,
        "split_sizes": training.get("split_sizes", sizes),
        "weights": "efficientnet-lite0 ImageNet (bundled), fine-tuned in PyTorch and imported",
        "fine_tuned": True,
        "trained_on": training.get("trained_on", ""),
        "imported_from": {"file": Path(weights).name, "sha256": file_sha256(weights)},
        "training": training,
        "validation_accuracy": None,
        "test_accuracy": None,
        "flip_average": True,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
    }
    save_model(model, Path(folder), metadata)
    return Path(folder)
