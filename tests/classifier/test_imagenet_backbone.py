"""The photo classifier on ImageNet weights (a stand-in EfficientNetB0 file in the published layout).

Whether the file is in ``models/``, on a loopback mirror or named by LOOKALIKE_EFFICIENTNETB0_WEIGHTS, the
backbone computes exactly what Keras's own ``EfficientNetB0(weights="imagenet")`` computes, input scaling
included; a model trained on it saves, reloads and predicts the same way.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import classifier
from lookalike.classifier.inference import load_classifier
from lookalike.classifier.model import backbone_weights, build_model
from lookalike.core import weights
from lookalike.core.images import load_image, square_image
from tests.paths import CLOTHING, PAINTINGS

SIZE = 64


def photos(size: int = SIZE) -> np.ndarray:
    paths = [*sorted((CLOTHING / "test" / "hat").glob("*.jpg"))[:2], sorted(PAINTINGS.glob("*.jpg"))[0]]
    return np.stack([square_image(load_image(p), size) for p in paths]).astype(np.float32)


@pytest.mark.parametrize("where", ["models", *(pytest.param(w, marks=pytest.mark.slow) for w in ("mirror", "variable"))])
def test_backbone_equals_keras_imagenet_efficientnetb0(where, imagenet, keras_imagenet, monkeypatch, weights_server):
    if where == "models":
        imagenet.place("efficientnetb0", imagenet.models)
    elif where == "mirror":
        monkeypatch.setenv("LOOKALIKE_MIRROR", f"{weights_server}/good")
    else:
        monkeypatch.setenv("LOOKALIKE_EFFICIENTNETB0_WEIGHTS", str(imagenet.standins.path("efficientnetb0")))
    model = build_model(3, SIZE, backbone_weights(from_scratch=False))
    backbone = model.get_layer("efficientnetb0")
    written = imagenet.standins.values["efficientnetb0"]
    np.testing.assert_array_equal(backbone.get_layer("stem_conv").get_weights()[0], written["stem_conv"][0])
    np.testing.assert_array_equal(backbone.get_layer("top_conv").get_weights()[0], written["top_conv"][0])
    reference = keras_imagenet("efficientnetb0", include_top=False, input_shape=(SIZE, SIZE, 3))
    images = photos()
    expected = np.asarray(reference(images, training=False))
    np.testing.assert_array_equal(np.asarray(backbone(images, training=False)), expected)


@pytest.mark.slow
def test_train_and_predict_on_imagenet_weights(imagenet, keras_imagenet, tmp_path, capsys):
    imagenet.place("efficientnetb0", imagenet.models)
    argv = ["train", "--data", str(CLOTHING), "--classes", "hat", "shoes", "--pretrained", "--epochs", "1",
            "--backbone", "efficientnetb0", "--input-size", str(SIZE), "--batch-size", "32", "--limit", "40", "--models-dir", str(tmp_path),
            "--name", "photos"]
    assert classifier.main(argv) == 0
    folder = tmp_path / "photos"
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["weights"] == weights.resolve("efficientnetb0").label
    assert metadata["weights"].startswith("imagenet:")
    # The saved model keeps the Keras-identical backbone (input scaling included).
    features = load_classifier(folder).model.get_layer("efficientnetb0")
    reference = keras_imagenet("efficientnetb0", include_top=False, input_shape=(SIZE, SIZE, 3))
    images = photos()
    np.testing.assert_array_equal(np.asarray(features(images, training=False)),
                                  np.asarray(reference(images, training=False)))
    photo = sorted((CLOTHING / "test" / "shoes").glob("*.jpg"))[0]
    capsys.readouterr()
    assert classifier.main(["predict", str(folder), str(photo)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{photo}:" and {line.split()[-1] for line in lines[1:]} == {"hat", "shoes"}


def test_classifier_cli_names_a_wrong_file(imagenet, tmp_path, capsys):
    imagenet.place("efficientnetb0", imagenet.models, source=imagenet.standins.path("vgg19"))
    argv = ["train", "--data", str(CLOTHING), "--classes", "hat", "shoes", "--pretrained", "--epochs", "1",
            "--backbone", "efficientnetb0", "--input-size", "32", "--limit", "8", "--models-dir", str(tmp_path / "trained")]
    assert classifier.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: EfficientNetB0 weights:") and "looks like the VGG19 file" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "trained").exists()
