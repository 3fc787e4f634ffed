"""The fashion classifier: training writes a usable model, predictions, evaluation, loaders, downloads."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

import classifier
import utils
from lookalike.classifier.class_folders import download_clothing_dataset, read_manifest
from lookalike.datasets.fashion_mnist import FASHION_MNIST_DIR, load_fashion_mnist
from tests.paths import CLOTHING

CLASSES = sorted(p.name for p in (CLOTHING / "train").iterdir() if p.is_dir())
PHOTO = CLOTHING / "test" / "pants" / sorted(p.name for p in (CLOTHING / "test" / "pants").iterdir())[0]


def test_one_epoch_train_writes_a_loadable_model_with_complete_metadata(tiny_model: Path):
    assert (tiny_model / classifier.MODEL_FILE).stat().st_size > 1_000_000
    meta = json.loads((tiny_model / classifier.METADATA_FILE).read_text())
    assert meta["classes"] == CLASSES
    assert meta["input_size"] == 32 and meta["backbone"] == "EfficientNetB0"
    assert meta["dataset"] == "clothing-dataset-small" and Path(meta["dataset_path"]) == CLOTHING.resolve()
    assert meta["split_sizes"] == {"train": 300, "validation": 80, "test": 80}
    assert 0.0 <= meta["test_accuracy"] <= 1.0
    assert meta["epochs_run"] == 1 and meta["train_images_per_second"] > 0
    assert datetime.fromisoformat(meta["date"]).tzinfo is not None
    assert meta["command"].startswith("python classifier.py train --data ")
    model = classifier.load_classifier(tiny_model)
    assert model.classes == CLASSES and model.model_id.startswith("classifier:tiny:")
    embeddings, probabilities = model.run(np.zeros((2, 32, 32, 3), np.uint8))
    assert embeddings.shape == (2, classifier.EMBEDDING_DIM) and probabilities.shape == (2, len(CLASSES))


def test_predictions_sum_to_one_and_follow_the_class_order(tiny_model: Path):
    model = classifier.load_classifier(tiny_model)
    inputs, labels = classifier.sample_split(model.metadata, "test", per_class=2)
    assert list(labels) == [i for i in range(len(CLASSES)) for _ in range(2)]
    probabilities = model.predict_proba(inputs)
    assert probabilities.shape == (20, len(CLASSES))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    prediction = model.predict_image(PHOTO)
    ranked = prediction.ranked()
    assert [p for _, p in ranked] == sorted((p for _, p in ranked), reverse=True)
    assert dict(ranked) == pytest.approx(dict(zip(CLASSES, prediction.probabilities.tolist(), strict=True)))
    assert prediction.label == ranked[0][0] == CLASSES[int(np.argmax(prediction.probabilities))]


def test_class_subset_keeps_the_requested_order():
    data = classifier.load_folder_data(CLOTHING, 32, ["Shoes", "dress", "hat"], limit=None)
    assert data.classes == ["shoes", "dress", "hat"]
    images, labels = data.splits["test"]
    assert images.shape == (24, 32, 32, 3) and np.bincount(labels).tolist() == [8, 8, 8]
    with pytest.raises(Exception, match="no class folder socks"):
        classifier.load_folder_data(CLOTHING, 32, ["socks"])


def test_evaluate_prints_and_writes_the_confusion_matrix(tiny_model: Path, capsys):
    (tiny_model / classifier.CONFUSION_FILE).unlink()
    assert classifier.main(["evaluate", str(tiny_model)]) == 0
    out = capsys.readouterr().out
    assert "test accuracy:" in out and "confusion matrix" in out
    for name in CLASSES:
        assert any(line.startswith(name + " ") for line in out.splitlines())
    assert (tiny_model / classifier.CONFUSION_FILE).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads((tiny_model / classifier.EVALUATION_FILE).read_text())
    matrix = np.array(report["confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum(axis=1).tolist() == [8] * 10
    assert report["accuracy"] == pytest.approx(np.trace(matrix) / 80)
    assert json.loads((tiny_model / classifier.METADATA_FILE).read_text())["test_accuracy"] == round(
        report["accuracy"], 4
    )


def test_report_metrics_against_hand_counts():
    report = classifier.report_from(["a", "b"], np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]))
    assert report["confusion_matrix"] == [[1, 1], [0, 2]] and report["accuracy"] == 0.75
    assert report["per_class"][0]["precision"] == 1.0 and report["per_class"][0]["recall"] == 0.5
    assert report["per_class"][1]["precision"] == pytest.approx(2 / 3) and report["per_class"][1]["recall"] == 1.0


def test_predict_cli_prints_classes_sorted_by_probability(tiny_model: Path, capsys):
    assert classifier.main(["predict", str(tiny_model), str(PHOTO)]) == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert sorted(parts[1] for parts in lines) == CLASSES
    values = [float(parts[0].rstrip("%")) for parts in lines]
    assert values == sorted(values, reverse=True) and sum(values) == pytest.approx(100, abs=0.1)


def test_bad_images_give_a_clear_message(tiny_model: Path, tmp_path: Path, capsys):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a picture")
    assert classifier.main(["predict", str(tiny_model), str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: 'notes.jpg' is not an image") and "Traceback" not in err
    with pytest.raises(utils.ImageError, match="empty"):
        classifier.load_classifier(tiny_model).predict_image(b"")


def test_fashion_mnist_loader_parses_the_idx_files():
    if not (FASHION_MNIST_DIR / "train-labels-idx1-ubyte.gz").is_file():
        pytest.skip("Debian's fashion-mnist files are not installed")
    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    assert train.images.shape == (60000, 28, 28, 1) and test.images.shape == (10000, 28, 28, 1)
    assert np.bincount(train.labels).tolist() == [6000] * 10
    assert np.bincount(test.labels).tolist() == [1000] * 10
    assert train.images.dtype == np.uint8 and train.images.max() == 255
    data = classifier.load_fashion_data(32, ["Trouser", "Bag"], limit=40)
    images, labels = data.splits["test"]
    assert data.classes == ["Trouser", "Bag"] and images.shape == (40, 32, 32, 3)
    np.testing.assert_array_equal(labels, np.where(test.labels[np.isin(test.labels, [1, 8])][:40] == 1, 0, 1))
    assert data.sizes()["validation"] == 40


def test_download_uses_the_manifest_and_the_mirror(tmp_path: Path, monkeypatch):
    entries = read_manifest()
    assert len(entries) == 460 and {e.class_name for e in entries} == set(CLASSES)
    monkeypatch.setenv("LOOKALIKE_MIRROR", str(CLOTHING))
    paths = download_clothing_dataset(tmp_path / "clothes", ["hat"])
    assert len(paths) == 46 and all(p.parent.name == "hat" for p in paths)
    assert utils.file_sha256(paths[0]) == next(e.sha256 for e in entries if e.path.endswith(paths[0].name))


