"""Style search and style transfer on ImageNet weights (stand-in files in the published layout).

The file is found in ``models/``, fetched from a loopback mirror, or named by LOOKALIKE_VGG19_WEIGHTS; in
each case the loaded kernels are the file's and the features equal Keras's own ``VGG19(weights="imagenet")``.
Replacing the weights file re-embeds every image; keeping it re-embeds none.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import image_search
import style_transfer
from lookalike.core import weights
from lookalike.core.images import load_image, square_image
from lookalike.search.folders import index_folder
from lookalike.style.vectors import StyleConfig, StyleModel
from lookalike.style.vgg19 import STYLE_LAYERS, preprocess
from tests.paths import CLOTHING, PAINTINGS

SIZE = 64  # px: small, the equality holds at any size
SMALL = StyleConfig(size=SIZE, precision="float32")


def painting_batch(count: int = 3) -> np.ndarray:
    paths = sorted(PAINTINGS.glob("*.jpg"))[:: 32 // count][:count]
    return np.stack([square_image(load_image(p), SIZE) for p in paths])


def use_weights(where: str, imagenet, monkeypatch, weights_server) -> None:
    if where == "models":
        imagenet.place("vgg19", imagenet.models)
    elif where == "mirror":
        monkeypatch.setenv("LOOKALIKE_MIRROR", f"{weights_server}/good")
    else:
        monkeypatch.setenv("LOOKALIKE_WEIGHTS", "random")  # the per-model variable wins
        monkeypatch.setenv("LOOKALIKE_VGG19_WEIGHTS", str(imagenet.standins.path("vgg19")))


@pytest.mark.parametrize("where", ["models", *(pytest.param(w, marks=pytest.mark.slow) for w in ("mirror", "variable"))])
def test_style_features_equal_keras_imagenet_vgg19(where, imagenet, keras_imagenet, monkeypatch, weights_server):
    import keras

    use_weights(where, imagenet, monkeypatch, weights_server)
    model = StyleModel(SMALL)
    resolved = weights.resolve("vgg19")
    assert resolved.label in model.model_id and resolved.sha256 == weights.digests(imagenet.standins.path("vgg19")).sha256
    written = imagenet.standins.values["vgg19"]
    for name in STYLE_LAYERS:
        kernel, bias = model.features.get_layer(name).get_weights()
        np.testing.assert_array_equal(kernel, written[name][0])
        np.testing.assert_array_equal(bias, written[name][1])
    reference = keras_imagenet("vgg19", include_top=False)
    reference = keras.Model(reference.input, [reference.get_layer(n).output for n in STYLE_LAYERS])
    batch = preprocess(painting_batch())
    for ours, theirs in zip(model.features(batch, training=False), reference(batch, training=False), strict=True):
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))


@pytest.mark.slow
def test_style_search_end_to_end_on_imagenet_weights(imagenet, copy_paintings, monkeypatch, capsys):
    imagenet.place("vgg19", imagenet.models)
    monkeypatch.setenv("LOOKALIKE_PRECISION", "float32")
    folder = copy_paintings(slice(0, 32, 8), name="imagenet-search")
    assert image_search.main(["index", str(folder)]) == 0
    assert "4 new" in capsys.readouterr().out
    query = next(iter(sorted(folder.glob("*.jpg"))))
    assert image_search.main(["search", str(query), "--folder", str(folder), "-k", "2"]) == 0
    ranked = [line.split() for line in capsys.readouterr().out.splitlines() if line.strip()[:1].isdigit()]
    assert [row[0] for row in ranked] == ["1", "2"]
    assert ranked[0][2].endswith(query.name) and float(ranked[0][1]) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.slow
def test_style_transfer_end_to_end_on_imagenet_weights(imagenet, tmp_path, monkeypatch):
    imagenet.place("vgg19", imagenet.models)
    model = style_transfer.transfer_model("float32")
    written = imagenet.standins.values["vgg19"]
    assert [name for name, _, _ in model.convs][-1] == "block5_conv2"
    for name, kernel, bias in model.convs:
        np.testing.assert_array_equal(kernel, written[name][0])
        np.testing.assert_array_equal(bias, written[name][1])
    photo = next(iter(sorted((CLOTHING / "test").rglob("*.jpg"))))
    painting = sorted(PAINTINGS.glob("*.jpg"))[0]
    output = tmp_path / "out.png"
    code = style_transfer.main([str(photo), str(painting), "-o", str(output), "--size", "64", "--steps", "3"])
    assert code == 0 and load_image(output).shape[2] == 3


@pytest.mark.slow
def test_replacing_the_weights_file_re_embeds_everything_and_keeping_it_nothing(
    imagenet, copy_paintings, monkeypatch, tmp_path, other_vgg19, cache_root
):
    mine = tmp_path / "mine.h5"
    shutil.copyfile(imagenet.standins.path("vgg19"), mine)
    monkeypatch.setenv("LOOKALIKE_VGG19_WEIGHTS", str(mine))
    monkeypatch.setenv("LOOKALIKE_CACHE", str(cache_root))
    folder = copy_paintings(slice(0, 32, 4), name="replaced-weights")

    def index() -> tuple[int, int, np.ndarray]:
        collection = index_folder(folder, StyleModel(SMALL))
        return collection.stats.new, collection.stats.reused, collection.vectors

    new, reused, first = index()
    assert (new, reused) == (8, 0)
    new, reused, again = index()
    assert (new, reused) == (0, 8)  # same file: every vector reused
    np.testing.assert_array_equal(again, first)
    shutil.copyfile(other_vgg19, mine)  # the file changes under the same name
    new, reused, replaced = index()
    assert (new, reused) == (8, 0)  # every image embedded again with the new weights
    assert np.abs(replaced - first).max() > 1e-3
