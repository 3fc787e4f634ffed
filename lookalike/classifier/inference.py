"""A trained classifier in use: probabilities and embeddings from one forward pass.

``Classifier`` is also an embedder for the shared embedding cache (``model_id``, ``prepare``, ``embed``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lookalike.classifier.model import (
    EMBEDDING_LAYER,
    MODEL_FILE,
    ClassifierError,
    prepare_image,
)
from lookalike.classifier.storage import read_metadata
from lookalike.core.cache import array_key, embed_with_cache
from lookalike.core.counters import count_inference, count_load
from lookalike.core.files import file_sha256
from lookalike.core.images import load_image
from lookalike.core.progress import Progress


class Classifier:
    """A trained model: probabilities and embeddings (32-d for EfficientNetB0, 1,280-d for Lite0), from one
    forward pass.

    It is also an embedder for :func:`lookalike.core.cache.embed_with_cache`: ``model_id`` includes a hash of
    the model file, ``prepare`` turns a photo into the network's input and ``embed`` returns embeddings.
    """

    def __init__(self, folder: str | Path):
        import keras

        self.folder = Path(folder)
        self.metadata = read_metadata(self.folder)
        path = self.folder / MODEL_FILE
        if not path.is_file():
            raise ClassifierError(f"{self.folder} has no {MODEL_FILE}.")
        count_load("classifier")
        model = keras.saving.load_model(path, compile=False)
        self.model = keras.Model(model.inputs, [model.get_layer(EMBEDDING_LAYER).output, model.outputs[0]])
        self.embedding_dim = int(self.model.outputs[0].shape[-1])
        self.classes: list[str] = list(self.metadata["classes"])
        self.input_size = int(self.metadata["input_size"])
        self.preprocessing = str(self.metadata.get("preprocessing", "photo"))
        self.flip_average = bool(self.metadata.get("flip_average", True))
        self.model_id = f"classifier:{self.folder.name}:{file_sha256(path)[:16]}"

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """A decoded RGB photo to the network's uint8 input."""
        return prepare_image(image, self.preprocessing, self.input_size)

    def run(self, inputs: Sequence[np.ndarray] | np.ndarray, batch_size: int = 128) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings (n, embedding_dim) and probabilities (n, classes) of prepared inputs.

        With ``flip_average`` (the default) each input and its mirror image go through the network in
        the same batch and their outputs are averaged: garments are left-right symmetric classes.
        """
        batch = np.asarray(inputs, dtype=np.float32)
        if len(batch) == 0:
            return np.zeros((0, self.embedding_dim), np.float32), np.zeros((0, len(self.classes)), np.float32)
        embeddings, probabilities = [], []
        for start in range(0, len(batch), batch_size):
            chunk = batch[start : start + batch_size]
            if self.flip_average:
                chunk = np.concatenate([chunk, chunk[:, :, ::-1]])
            count_inference("classifier")
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
        rgb = source if isinstance(source, np.ndarray) else load_image(source)
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
    """Embeddings of dataset inputs, through the shared on-disk embedding cache."""
    keys = [array_key(image) for image in inputs]
    return embed_with_cache(
        keys, lambda i: inputs[i], InputEmbedder(classifier), batch_size=256, progress=progress
    )


