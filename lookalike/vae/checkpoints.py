"""A trained VAE on disk: ``models/vae-<dataset>/`` holds ``vae.weights.h5`` and ``metadata.json``
(the configuration included), so the network can be rebuilt before its weights are loaded."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.core import settings
from lookalike.core.files import file_sha256, write_text_atomic
from lookalike.vae.model import VAEConfig, build_vae, layer_classes

WEIGHTS_FILE = "vae.weights.h5"
METADATA_FILE = "metadata.json"


@dataclass
class Checkpoint:
    """A trained VAE and what is known about it."""

    model: Any
    config: VAEConfig
    metadata: dict[str, Any]
    weights_path: Path
    model_id: str  # stable id for caches: "vae-<dataset>-<hash of the weights file>"


def model_dir(dataset: str, root: Path | None = None) -> Path:
    return (root or settings.MODELS_DIR) / f"vae-{dataset}"


def train_command(dataset: str) -> str:
    return f"python vae.py train --data {dataset}"


class ModelMissing(FileNotFoundError):
    """No trained model for a catalog. The message names the command that creates one."""

    def __init__(self, dataset: str, folder: Path):
        self.dataset, self.folder = dataset, folder
        super().__init__(f"No trained VAE for {dataset} in {folder}. Create it with `{train_command(dataset)}`.")


def save_checkpoint(model: Any, folder: Path, metadata: dict[str, Any]) -> Path:
    """Write ``vae.weights.h5`` and ``metadata.json`` (config included) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    weights_path = folder / WEIGHTS_FILE
    temporary = folder / f".tmp-{WEIGHTS_FILE}"
    bare = layer_classes()["VAE"](model.config)  # no optimizer: the file holds the network's weights only
    bare(np.zeros((1, *model.config.image_shape), dtype="float32"))
    bare.set_weights(model.get_weights())
    bare.save_weights(temporary)
    temporary.replace(weights_path)
    full = {"config": config_json(model.config), **metadata}
    write_text_atomic(folder / METADATA_FILE, json.dumps(full, indent=2) + "\n")
    return weights_path


def config_json(config: VAEConfig) -> dict[str, Any]:
    data = asdict(config)
    data["image_shape"] = list(config.image_shape)
    data["filters"] = list(config.filters)
    data["decoder_filters"] = list(config.decoder_filters)
    return data


def load_checkpoint(dataset: str, root: Path | None = None) -> Checkpoint:
    """Rebuild the network from ``metadata.json`` and load its weights; :class:`ModelMissing` if absent."""
    return load_checkpoint_from(model_dir(dataset, root), dataset)


def load_checkpoint_from(folder: Path, dataset: str) -> Checkpoint:
    """Load the checkpoint saved in ``folder`` (``dataset`` names the command that would create it)."""
    weights_path, metadata_path = folder / WEIGHTS_FILE, folder / METADATA_FILE
    if not (weights_path.is_file() and metadata_path.is_file()):
        raise ModelMissing(dataset, folder)
    metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
    raw = metadata["config"]
    config = VAEConfig(
        **{**raw, "image_shape": tuple(raw["image_shape"]), "filters": tuple(raw["filters"]),
           "decoder_filters": tuple(raw.get("decoder_filters", ()))}
    )
    digest = file_sha256(weights_path)[:16]  # read before loading, so the id matches these weights
    model = build_vae(config, compiled=False)
    model.load_weights(weights_path)
    return Checkpoint(
        model=model, config=config, metadata=metadata, weights_path=weights_path,
        model_id=f"vae-{config.dataset}-{digest}",
    )

