"""The shipped classifiers measure up on real test data, and say truthfully where they came from."""

from __future__ import annotations

import json
import shlex

import numpy as np
import pytest

import classifier
from lookalike.classifier.storage import list_models, on_random_weights
from tests.paths import CLOTHING, CLOTHING_FULL, ROOT, SHIPPED_FASHION_MODEL, SHIPPED_PHOTO_MODEL

ORIGINAL_FIVE = ["dress", "hat", "longsleeve", "shoes", "t-shirt"]  # the original app's photo classes


@pytest.fixture(scope="module")
def photo_model() -> classifier.Classifier:
    return classifier.load_classifier(SHIPPED_PHOTO_MODEL)


def test_photo_model_gets_at_least_085_on_the_80_test_photos(photo_model: classifier.Classifier):
    images, labels = classifier.sample_split(photo_model.metadata, "test", data=str(CLOTHING))
    assert images.shape == (80, 224, 224, 3) and np.bincount(labels).tolist() == [8] * 10
    report = classifier.evaluate(photo_model, images, labels, [ORIGINAL_FIVE])
    assert report["accuracy"] >= 0.85, classifier.format_report(report)
    five = report["subsets"][0]
    assert five["count"] == 40 and five["accuracy"] >= 0.85
    # What the model folder says about itself is what it scores now.
    evaluation = json.loads((SHIPPED_PHOTO_MODEL / classifier.EVALUATION_FILE).read_text())
    assert evaluation["confusion_matrix"] == report["confusion_matrix"]
    assert photo_model.metadata["test_accuracy"] == round(report["accuracy"], 4)
    assert evaluation["subsets"][0]["accuracy"] == pytest.approx(five["accuracy"])


@pytest.mark.slow
def test_photo_model_reaches_090_on_the_341_validation_photos(photo_model: classifier.Classifier):
    images, labels = classifier.sample_split(photo_model.metadata, "validation", data=str(CLOTHING_FULL))
    assert len(labels) == 341
    accuracy = classifier.evaluate(photo_model, images, labels)["accuracy"]
    assert accuracy >= 0.90
    assert photo_model.metadata["validation_accuracy"] == round(accuracy, 4)


@pytest.mark.slow
def test_fashion_mnist_model_gets_at_least_093_on_its_10000_test_images():
    model = classifier.load_classifier(SHIPPED_FASHION_MODEL)
    images, labels = classifier.sample_split(model.metadata, "test")
    assert images.shape == (10000, 64, 64, 3)
    report = classifier.evaluate(model, images, labels)
    assert report["accuracy"] >= 0.93
    assert model.metadata["test_accuracy"] == round(report["accuracy"], 4)


@pytest.mark.parametrize("folder", [SHIPPED_PHOTO_MODEL, SHIPPED_FASHION_MODEL], ids=lambda f: f.name)
def test_shipped_models_record_their_source_and_rebuild(folder):
    meta = classifier.read_metadata(folder)
    assert meta["backbone"] == "EfficientNet-Lite0" and not on_random_weights(meta)
    assert (folder / classifier.MODEL_FILE).stat().st_size < 16_000_000  # float32, about 14 MB
    assert (folder / classifier.CONFUSION_FILE).read_bytes()[:4] == b"\x89PNG"
    training = meta["training"]
    assert training["trained_on"] == meta["trained_on"] and training["recipe"]
    assert training["init"]["file"] == "models/efficientnet-lite0/weights.npz"
    # Each rebuild step names a script or front door that exists, and the import step is the recorded command.
    for step in training["rebuild"]:
        script = shlex.split(step, comments=True)[1]
        assert (ROOT / script).is_file(), step
    assert meta["command"] in training["rebuild"]
    assert len(meta["imported_from"]["sha256"]) == 64


def test_photo_model_knows_the_clothing_classes_and_sees_whole_photos(photo_model: classifier.Classifier):
    assert photo_model.classes == sorted(p.name for p in (CLOTHING_FULL / "train").iterdir() if p.is_dir())
    meta = photo_model.metadata
    assert meta["preprocessing"] == "photo-squash" and meta["input_size"] == 224
    assert meta["split_sizes"] == {"train": 3068, "validation": 341, "test": 80}
    # A tall photo is squashed, not cropped: its top and bottom rows survive.
    tall = np.zeros((400, 200, 3), np.uint8)
    tall[:20], tall[-20:] = 255, 128
    prepared = photo_model.prepare(tall)
    assert prepared.shape == (224, 224, 3) and prepared[0].min() > 200 and abs(int(prepared[-1].mean()) - 128) < 3


def test_the_photo_model_is_the_default():
    assert list_models()[0] == SHIPPED_PHOTO_MODEL
