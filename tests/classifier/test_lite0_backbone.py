"""The classifier on the bundled EfficientNet-Lite0: choosing the backbone, training and continuing on it,
augmentation, and importing Lite0 weights trained elsewhere."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import classifier
from lookalike.classifier.backbones import LITE0
from lookalike.classifier.data import make_dataset
from lookalike.classifier.training import choose_start
from lookalike.core import lite0
from lookalike.core.images import load_image
from tests.paths import CLOTHING

CLASSES = sorted(p.name for p in (CLOTHING / "train").iterdir() if p.is_dir())
PHOTO = sorted((CLOTHING / "test" / "shoes").glob("*.jpg"))[0]


def test_auto_takes_efficientnetb0_and_falls_back_to_the_bundled_lite0(monkeypatch, tmp_path, capsys):
    assert choose_start("auto", scratch=True).backbone.key == "efficientnetb0"
    monkeypatch.setenv("LOOKALIKE_WEIGHTS", "random")
    assert choose_start("auto", scratch=False).backbone.key == "efficientnetb0"
    monkeypatch.setenv("LOOKALIKE_WEIGHTS", str(tmp_path / "missing.h5"))
    start = choose_start("auto", scratch=False)
    assert start.backbone is LITE0 and start.weights == "bundled" and "bundled" in start.record
    assert "training on the bundled EfficientNet-Lite0 instead" in capsys.readouterr().out
    with pytest.raises(classifier.WeightsUnavailable):
        choose_start("efficientnetb0", scratch=False)
    assert choose_start("efficientnet-lite0", scratch=True).record == "scratch"


def test_augmentations_keep_shape_and_range_and_change_the_images():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 48, 48, 3), dtype=np.uint8)
    labels = np.arange(6)
    for mode in ("photo", "shift", "flip"):
        x, y = next(iter(make_dataset(images, labels, 6, mode)))
        x = x.numpy()
        assert x.shape == images.shape and x.dtype == np.float32 and x.min() >= 0 and x.max() <= 255
        order = y.numpy()
        assert not np.allclose(x, images[order]), mode  # shuffled labels follow their images
    x, y = next(iter(make_dataset(images, labels, 6, "none")))
    np.testing.assert_array_equal(x.numpy(), images)
    np.testing.assert_array_equal(y.numpy(), labels)
    # A shift moves whole pixels and brings black in at one side.
    flat = np.full((8, 28, 28, 3), 200, np.uint8)
    shifted = next(iter(make_dataset(flat, np.zeros(8), 8, "shift")))[0].numpy()
    assert set(np.unique(shifted)) <= {0.0, 200.0} and (shifted == 0).any()
    with pytest.raises(classifier.ClassifierError, match="Unknown augmentation"):
        make_dataset(images, labels, 6, "mixup")


def lite0_arrays_with_head(classes: int, seed: int = 0) -> dict[str, np.ndarray]:
    arrays = dict(lite0.bundled_arrays()[0])
    rng = np.random.default_rng(seed)
    arrays["_fc.weight"] = rng.normal(0, 0.05, (classes, 1280)).astype(np.float32)
    arrays["_fc.bias"] = rng.normal(0, 0.1, classes).astype(np.float32)
    return arrays


def softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


@pytest.mark.slow
def test_import_weights_computes_what_the_arrays_describe(tmp_path: Path):
    arrays = lite0_arrays_with_head(len(CLASSES))
    np.savez(tmp_path / "trained.npz", **arrays)
    (tmp_path / "record.json").write_text(json.dumps({"trained_on": "ten test photos", "recipe": "none"}))
    argv = ["import-weights", str(tmp_path / "trained.npz"), "--data", str(CLOTHING), "--input-size", "64",
            "--record", str(tmp_path / "record.json"), "--name", "imported", "--models-dir", str(tmp_path)]
    assert classifier.main(argv) == 0
    model = classifier.load_classifier(tmp_path / "imported")
    meta = model.metadata
    assert model.classes == CLASSES and meta["backbone"] == "EfficientNet-Lite0"
    assert meta["preprocessing"] == "photo-squash" and meta["trained_on"] == "ten test photos"
    assert meta["imported_from"]["sha256"] == lite0.weights_sha256(tmp_path / "trained.npz")
    # The saved classifier gives the softmax of what the plain Keras Lite0 computes with the same arrays,
    # averaged over the photo and its mirror image.
    prepared = model.prepare(load_image(PHOTO))
    reference = lite0.build((64, 64, 3), classes=len(CLASSES))
    lite0.load_arrays(reference, arrays)
    batch = np.stack([prepared, prepared[:, ::-1]]).astype(np.float32)
    expected = softmax(np.asarray(reference.predict(batch, verbose=0))).mean(axis=0)
    np.testing.assert_allclose(model.predict_proba([prepared])[0], expected, atol=1e-5)
    assert model.run([prepared])[0].shape == (1, 1280)  # the embedding map uses the pooled features


def test_import_weights_refuses_what_does_not_fit_in_one_line(tmp_path: Path, capsys):
    np.savez(tmp_path / "five.npz", **lite0_arrays_with_head(5))
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    cases = [("five.npz", "layer '_fc' expects shapes"), ("junk.npz", "not a readable .npz"),
             ("absent.npz", "does not exist")]
    for name, message in cases:
        argv = ["import-weights", str(tmp_path / name), "--data", str(CLOTHING), "--input-size", "32",
                "--name", "x", "--models-dir", str(tmp_path / "models")]
        assert classifier.main(argv) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and "Traceback" not in err, err
    assert not (tmp_path / "models" / "x").exists()


@pytest.fixture(scope="module")
def tiny_lite0(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1 epoch with the backbone frozen and 1 fine-tuning the top blocks, on the 460-image subset at 64 px."""
    models = tmp_path_factory.mktemp("models")
    argv = ["train", "--data", str(CLOTHING), "--backbone", "efficientnet-lite0", "--epochs", "1", "--fine-tune",
            "--fine-tune-epochs", "1", "--fine-tune-learning-rate", "1e-3", "--input-size", "64",
            "--batch-size", "64", "--models-dir", str(models), "--name", "tiny-lite0"]
    assert classifier.main(argv) == 0
    return models / "tiny-lite0"


def layer_weights(folder: Path) -> dict[str, list[np.ndarray]]:
    import keras

    model = keras.saving.load_model(folder / classifier.MODEL_FILE, compile=False)
    inner = model.get_layer(LITE0.layer)
    found = {layer.name: layer.get_weights() for layer in inner.layers if layer.get_weights()}
    return {**found, "_fc": model.get_layer("_fc").get_weights()}


@pytest.mark.slow
def test_lite0_training_freezes_then_fine_tunes_only_the_top_blocks(tiny_lite0: Path):
    meta = classifier.read_metadata(tiny_lite0)
    assert meta["backbone"] == "EfficientNet-Lite0" and meta["preprocessing"] == "photo-squash"
    assert meta["weights"].startswith("efficientnet-lite0 ImageNet (bundled")
    assert meta["fine_tuned"] and meta["epochs_run"] == 2 and 0 <= meta["test_accuracy"] <= 1
    bundled = lite0.bundled_arrays()[0]
    trained = layer_weights(tiny_lite0)
    # The stem and blocks 0-10 are the ImageNet weights still; the top blocks' convolutions have moved;
    # every BatchNorm kept its ImageNet statistics.
    np.testing.assert_array_equal(trained["_conv_stem"][0], bundled["_conv_stem.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(trained["_blocks.10._project_conv"][0],
                                  bundled["_blocks.10._project_conv.weight"].transpose(2, 3, 1, 0))
    assert not np.allclose(trained["_blocks.15._project_conv"][0],
                           bundled["_blocks.15._project_conv.weight"].transpose(2, 3, 1, 0))
    assert not np.allclose(trained["_conv_head"][0], bundled["_conv_head.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(trained["_blocks.15._bn2"][2], bundled["_blocks.15._bn2.running_mean"])


@pytest.mark.slow
def test_lite0_training_continues_from_a_saved_model(tiny_lite0: Path, capsys):
    models = tiny_lite0.parent
    argv = ["train", "--data", str(CLOTHING), "--init-from", str(tiny_lite0), "--epochs", "1",
            "--batch-size", "64", "--models-dir", str(models), "--name", "continued"]
    assert classifier.main(argv) == 0
    meta = classifier.read_metadata(models / "continued")
    assert meta["backbone"] == "EfficientNet-Lite0" and meta["input_size"] == 64
    assert meta["initialised_from"]["name"] == "tiny-lite0" and meta["epochs_run"] == 1
    before, after = layer_weights(tiny_lite0), layer_weights(models / "continued")
    np.testing.assert_array_equal(before["_blocks.15._project_conv"][0], after["_blocks.15._project_conv"][0])
    assert not np.allclose(before["_fc"][0], after["_fc"][0])  # only the head trains in a frozen phase
    wrong = [*argv[:-1], "other", "--backbone", "efficientnetb0"]
    assert classifier.main(wrong) == 1
    assert "trained on EfficientNet-Lite0" in capsys.readouterr().err
