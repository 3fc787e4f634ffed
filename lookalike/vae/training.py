"""Training the VAE on a catalog, and scoring retrieval: P@10 on Fashion-MNIST test queries against the
train catalog, P@10 by class on the validation photos against the train photos, or leave-one-out P@5 on the
furniture.

A run can be resumable and staged: after every epoch the weights, the optimizer's state (whose step count
drives the learning-rate schedule) and the loss history are saved in the cache, and the same command carries
on from there, so a long run can be done in short sittings or survive an interruption.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.core.files import atomic_path, write_text_atomic
from lookalike.core.settings import get_settings
from lookalike.core.vectors import precision_at_k
from lookalike.datasets.fashion_mnist import load_fashion_mnist
from lookalike.domain import CLOTHING_PHOTOS
from lookalike.vae.catalogs import load_catalog
from lookalike.vae.checkpoints import config_json, model_dir, save_checkpoint, train_command
from lookalike.vae.evaluation import photo_scores
from lookalike.vae.latents import encode
from lookalike.vae.model import DEFAULTS, VAEConfig, build_vae, to_unit

STATE_WEIGHTS, STATE_FILE = "state.weights.h5", "state.json"


def query_sample(count: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A fixed, seeded sample of Fashion-MNIST test images and labels: the benchmark's queries."""
    test = load_fashion_mnist("test")
    index = np.random.default_rng(seed).choice(len(test), size=count, replace=False)
    return test.images[index], test.labels[index]


def retrieval_score(model: Any, dataset: str, queries: int = 1000) -> dict[str, float]:
    """P@10 on test queries vs the train catalog (Fashion-MNIST), P@10 by class on the validation photos
    (clothing photos), or leave-one-out P@5 (furniture)."""
    if dataset == CLOTHING_PHOTOS:
        return {"p@10_by_class": photo_scores("VAE", lambda images: encode(model, images)).balanced}
    catalog = load_catalog(dataset)
    vectors = encode(model, catalog.images)
    if dataset == "fashion-mnist":
        images, labels = query_sample(queries)
        return {"p@10": precision_at_k(vectors, catalog.labels, encode(model, images), labels, 10)}
    return {"loo_p@5": precision_at_k(vectors, catalog.labels, vectors, catalog.labels, 5, leave_one_out=True)}


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


@dataclass
class TrainResult:
    model: Any
    history: dict[str, list[float]]
    seconds_per_epoch: float
    retrieval: dict[str, float] = field(default_factory=dict)
    epochs_done: int = 0
    epochs: int = 0
    stages: list[dict[str, Any]] = field(default_factory=list)  # (from_epoch, to_epoch, seconds) of each sitting

    @property
    def finished(self) -> bool:
        return self.epochs_done >= self.epochs


def training_images(dataset: str) -> np.ndarray:
    """What the VAE learns from: the catalog itself (Fashion-MNIST train split, all furniture icons, the train
    photos; the validation photos stay unseen, as queries)."""
    return to_unit(load_catalog(dataset).images)


def state_folder(config: VAEConfig, epochs: int, batch_size: int, seed: int, learning_rate: float) -> Path:
    """Where a staged run keeps its progress: one folder per exact training setup, in the cache."""
    setup = json.dumps([config_json(config), epochs, batch_size, seed, learning_rate], sort_keys=True)
    return get_settings().cache_dir / "training" / f"vae-{config.dataset}-{hashlib.sha256(setup.encode()).hexdigest()[:12]}"


def _read_state(folder: Path) -> dict[str, Any] | None:
    try:
        state = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if (folder / STATE_WEIGHTS).is_file() and isinstance(state.get("epoch"), int) else None


def _state_saver(folder: Path, state: dict[str, Any], started: float) -> Any:
    """A callback that saves the weights, the optimizer's state and the history after every epoch, atomically."""
    import keras

    class SaveState(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            for name, value in (logs or {}).items():
                state["history"].setdefault(name, []).append(float(value))
            state["epoch"] = epoch + 1
            state["stages"][-1].update(to_epoch=epoch + 1, seconds=round(time.perf_counter() - started, 1))
            with atomic_path(folder / STATE_WEIGHTS, suffix=".weights.h5") as temporary:
                self.model.save_weights(temporary)  # a compiled model: the optimizer's moments are saved too
            write_text_atomic(folder / STATE_FILE, json.dumps(state) + "\n")

    return SaveState()


def train(
    config: VAEConfig,
    images: np.ndarray,
    epochs: int,
    batch_size: int = 128,
    seed: int = 0,
    learning_rate: float = 1e-3,
    verbose: int = 2,
    state_dir: Path | None = None,
    stage_epochs: int | None = None,
) -> TrainResult:
    """Fit a VAE on float images in [0, 1]; the learning rate decays by cosine over all ``epochs``.

    With ``state_dir`` the run resumes from the state saved there (same setup) and saves after every epoch;
    ``stage_epochs`` stops this call after that many more epochs.
    """
    import keras

    keras.utils.set_random_seed(seed)
    model = build_vae(config, seed=seed, learning_rate=learning_rate)
    steps = max(1, int(np.ceil(len(images) / batch_size))) * epochs
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps, alpha=0.05)
    model.compile(optimizer=keras.optimizers.Adam(schedule))
    state: dict[str, Any] = {"epoch": 0, "history": {}, "stages": []}
    saved = _read_state(state_dir) if state_dir is not None else None
    if saved is not None:
        model.optimizer.build(model.trainable_variables)
        model.load_weights(state_dir / STATE_WEIGHTS)
        state = saved
        keras.utils.set_random_seed(seed + state["epoch"])  # fresh shuffles and augmentations after a resume
    start = min(state["epoch"], epochs)
    stop = epochs if stage_epochs is None else min(epochs, start + stage_epochs)
    state["stages"].append({"from_epoch": start, "to_epoch": start, "seconds": 0.0})
    started = time.perf_counter()
    callbacks = [_state_saver(state_dir, state, started)] if state_dir is not None else []
    history = model.fit(images, initial_epoch=start, epochs=stop, batch_size=batch_size, shuffle=True,
                        verbose=verbose, callbacks=callbacks)
    elapsed = time.perf_counter() - started
    if state_dir is None:
        state["history"] = {name: [float(v) for v in values] for name, values in history.history.items()}
        state["stages"][-1].update(to_epoch=stop, seconds=round(elapsed, 1))
    return TrainResult(
        model=model, history=state["history"], seconds_per_epoch=elapsed / max(stop - start, 1),
        epochs_done=stop, epochs=epochs, stages=[s for s in state["stages"] if s["to_epoch"] > s["from_epoch"]],
    )


def train_and_save(
    dataset: str,
    epochs: int | None = None,
    latent: int | None = None,
    beta: float | None = None,
    root: Path | None = None,
    command: str | None = None,
    stage_epochs: int | None = None,
) -> TrainResult:
    """Train on a catalog (carrying on from a saved run of the same setup), measure retrieval, and write the
    checkpoint with its metadata. With ``stage_epochs`` an unfinished run stops early and writes no model yet."""
    config = VAEConfig.for_dataset(dataset, latent, beta)
    epochs = epochs or DEFAULTS[dataset]["epochs"]
    batch_size = DEFAULTS[dataset]["batch_size"]
    state_dir = state_folder(config, epochs, batch_size, seed=0, learning_rate=1e-3)
    result = train(config, training_images(dataset), epochs, batch_size=batch_size, state_dir=state_dir,
                   stage_epochs=stage_epochs)
    if not result.finished:
        return result
    result.retrieval = retrieval_score(result.model, dataset)
    seconds = sum(stage["seconds"] for stage in result.stages)
    metadata = {
        "dataset": dataset,
        "source": load_catalog(dataset).sources,
        "latent_dim": config.latent_dim,
        "beta": config.beta,
        "epochs": epochs,
        "losses": {name: round(values[-1], 4) for name, values in result.history.items()},
        "loss_history": {name: [round(v, 4) for v in values] for name, values in result.history.items()},
        "retrieval_metric": next(iter(result.retrieval)),
        "retrieval_precision": round(next(iter(result.retrieval.values())), 4),
        "seconds_per_epoch": round(seconds / max(epochs, 1), 2),
        "training_stages": result.stages,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command or train_command(dataset),
    }
    save_checkpoint(result.model, model_dir(dataset, root), metadata)
    shutil.rmtree(state_dir, ignore_errors=True)  # complete: the next train command starts afresh
    return result


