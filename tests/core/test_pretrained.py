"""Models from a weights file compute exactly what Keras's own ``weights="imagenet"`` models compute."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.core import pretrained, weights
from lookalike.core.images import load_image, square_image
from tests.paths import CLOTHING, PAINTINGS


def real_images(size: int) -> np.ndarray:
    paths = [sorted(PAINTINGS.glob("*.jpg"))[0], next(iter(sorted((CLOTHING / "test").rglob("*.jpg"))))]
    return np.stack([square_image(load_image(p), size) for p in paths]).astype(np.float32)


@pytest.mark.parametrize(("key", "kwargs"), [
    ("efficientnetb0", {"include_top": False, "input_shape": (96, 96, 3)}),
    ("vgg19", {"include_top": False}),
])
@pytest.mark.slow
def test_model_from_the_file_equals_keras_imagenet_model(imagenet, keras_imagenet, key, kwargs):
    imagenet.place(key, imagenet.models)
    ours = pretrained.keras_application(key, weights.resolve(key), **kwargs)
    reference = keras_imagenet(key, **kwargs)
    images = real_images(96 if key == "efficientnetb0" else 64)
    expected = np.asarray(reference(images, training=False))
    np.testing.assert_array_equal(np.asarray(ours(images, training=False)), expected)
    assert expected.std() > 0


@pytest.mark.slow
def test_plain_keras_file_loading_would_scale_efficientnet_inputs_wrongly(imagenet, keras_imagenet):
    """The quirk that the module corrects: Keras's weights=<path> leaves out the ImageNet rescaling."""
    import keras

    imagenet.place("efficientnetb0", imagenet.models)
    kwargs = {"include_top": False, "input_shape": (96, 96, 3)}
    images = real_images(96)

    def stem_std(model) -> float:
        return float(np.asarray(keras.Model(model.input, model.get_layer("stem_conv").output)(images)).std())

    ours = pretrained.keras_application("efficientnetb0", weights.resolve("efficientnetb0"), **kwargs)
    plain = keras.applications.EfficientNetB0(weights=str(imagenet.models / "efficientnetb0_notop.h5"), **kwargs)
    reference = keras_imagenet("efficientnetb0", **kwargs)
    assert stem_std(ours) == pytest.approx(stem_std(reference), rel=1e-6)
    assert stem_std(ours) / stem_std(plain) == pytest.approx(2.1, abs=0.1)  # 1 / sqrt(ImageNet std)
