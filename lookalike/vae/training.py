"""Training the VAE on a catalog, and scoring retrieval: P@10 on Fashion-MNIST test queries against the
train catalog, or leave-one-out P@5 on the furniture."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.core.vectors import precision_at_k
from lookalike.datasets.fashion_mnist import load_fashion_mnist
from lookalike.vae.catalogs import load_catalog
from lookalike.vae.checkpoints import model_dir, save_checkpoint, train_command
from lookalike.vae.latents import encode
from lookalike.vae.model import DEFAULTS, VAEConfig, build_vae, to_unit


def query_sample(count: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A fixed, seeded sample of Fashion-MNIST test images and labels: the benchmark's queries."""
    test = load_fashion_mnist("test")
    index = np.random.default_rng(seed).choice(len(test), size=count, replace=False)
    return test.images[index], test.labels[index]


def retrieval_score(model: Any, dataset: str, queries: int = 1000) -> dict[str, float]:
    """P@10 on test queries vs the train catalog (Fashion-MNIST), or leave-one-out P@5 (furniture)."""
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


def training_images(dataset: str) -> np.ndarray:
    """What the VAE learns from: the catalog itself (Fashion-MNIST train split, all furniture icons)."""
    return to_unit(load_catalog(dataset).images)


def train(
    config: VAEConfig,
    images: np.ndarray,
    epochs: int,
    batch_size: int = 128,
    seed: int = 0,
    learning_rate: float = 1e-3,
    verbose: int = 2,
) -> TrainResult:
    """Fit a fresh VAE on float images in [0, 1]; the learning rate decays by cosine over the run."""
    import keras

    keras.utils.set_random_seed(seed)
    model = build_vae(config, seed=seed, learning_rate=learning_rate)
    steps = max(1, int(np.ceil(len(images) / batch_size))) * epochs
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps, alpha=0.05)
    model.compile(optimizer=keras.optimizers.Adam(schedule))
    started = time.perf_counter()
    history = model.fit(images, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=verbose)
    elapsed = time.perf_counter() - started
    losses = {name: [float(v) for v in values] for name, values in history.history.items()}
    return TrainResult(model=model, history=losses, seconds_per_epoch=elapsed / max(epochs, 1))


def train_and_save(
    dataset: str,
    epochs: int | None = None,
    latent: int | None = None,
    beta: float | None = None,
    root: Path | None = None,
    command: str | None = None,
) -> TrainResult:
    """Train on a catalog, measure retrieval, and write the checkpoint with its metadata."""
    config = VAEConfig.for_dataset(dataset, latent, beta)
    epochs = epochs or DEFAULTS[dataset]["epochs"]
    result = train(config, training_images(dataset), epochs, batch_size=DEFAULTS[dataset]["batch_size"])
    result.retrieval = retrieval_score(result.model, dataset)
    metadata = {
        "dataset": dataset,
        "latent_dim": config.latent_dim,
        "beta": config.beta,
        "epochs": epochs,
        "losses": {name: round(values[-1], 4) for name, values in result.history.items()},
        "loss_history": {name: [round(v, 4) for v in values] for name, values in result.history.items()},
        "retrieval_metric": next(iter(result.retrieval)),
        "retrieval_precision": round(next(iter(result.retrieval.values())), 4),
        "seconds_per_epoch": round(result.seconds_per_epoch, 2),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command or train_command(dataset),
    }
    save_checkpoint(result.model, model_dir(dataset, root), metadata)
    return result


