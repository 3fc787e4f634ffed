"""A saved classifier is a folder ``models/<name>/``: ``model.keras``, ``metadata.json`` and, after
evaluation, ``evaluation.json`` and ``confusion_matrix.png``. This module writes, reads and lists them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lookalike.classifier.backbones import NAMES as BACKBONE_NAMES
from lookalike.classifier.model import METADATA_FILE, MODEL_FILE, ClassifierError
from lookalike.core import settings
from lookalike.core.files import atomic_path, write_text_atomic


def save_model(model: Any, folder: Path, metadata: dict[str, Any]) -> None:
    """Save the weights and architecture without optimizer state, then the metadata (both atomically)."""
    import keras

    clean = keras.Model.from_config(model.get_config())
    clean.set_weights(model.get_weights())
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / MODEL_FILE) as temporary:
        clean.save(temporary)
    write_metadata(folder, metadata)


def write_metadata(folder: Path, metadata: dict[str, Any]) -> None:
    write_text_atomic(folder / METADATA_FILE, json.dumps(metadata, indent=2) + "\n")


def read_metadata(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / METADATA_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ClassifierError(f"{folder} is not a classifier model folder (no {METADATA_FILE}).") from error
    except json.JSONDecodeError as error:
        raise ClassifierError(f"{path} is damaged ({error}).") from error


DEFAULT_MODEL = "clothing-photos-lite0"  # the shipped photo model: first in every list when it is there


def on_random_weights(metadata: dict[str, Any]) -> bool:
    """Whether a model was trained on a randomly initialised pretrained backbone (LOOKALIKE_WEIGHTS=random):
    its predictions are placeholders. Models trained from scratch, or on real ImageNet weights, are real."""
    return metadata.get("weights") == "random"


def list_models(models_dir: str | Path | None = None) -> list[Path]:
    """Model folders (with ``model.keras`` and classifier metadata): the shipped photo model, then newest first."""
    folders = []
    for folder in sorted(Path(models_dir or settings.MODELS_DIR).glob("*/")):
        if (folder / MODEL_FILE).is_file() and (folder / METADATA_FILE).is_file():
            try:
                if read_metadata(folder).get("backbone") in BACKBONE_NAMES:
                    folders.append(folder)
            except ClassifierError:
                continue
    newest = sorted(folders, key=lambda f: (f / MODEL_FILE).stat().st_mtime, reverse=True)
    return sorted(newest, key=lambda f: f.name != DEFAULT_MODEL)  # stable: the rest stay newest first


# ---------------------------------------------------------------------------------------------
# Inference
