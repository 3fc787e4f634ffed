"""Photos into a dataset's domain: Fashion-MNIST (the classifier and the VAE share one pipeline) and furniture."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.classifier.model import prepare_image
from lookalike.domain import to_catalog_domain, to_fashion_mnist, to_furniture


def test_fashion_preprocessing_inverts_light_backgrounds_and_centres() -> None:
    photo = np.full((120, 80, 3), 240, np.uint8)
    photo[20:60, 10:40] = (200, 30, 30)  # a dark red object, off-centre, on a light background
    result = to_fashion_mnist(photo)
    image = result.image[..., 0]
    assert result.image.shape == (28, 28, 1)
    assert image[0, 0] < 20 and image[:, 0].max() < 20  # the background became black
    assert image[14, 14] > 120  # the object is light and centred
    assert any("inverted" in label for label, _ in result.steps)


def test_furniture_preprocessing_whitens_a_plain_background() -> None:
    photo = np.zeros((100, 100, 3), np.uint8)
    photo[:] = (40, 120, 40)
    photo[30:70, 30:70] = (150, 60, 20)
    result = to_furniture(photo)
    assert result.image.shape == (64, 64, 3)
    assert (result.image[0, 0] == 255).all()
    assert any("white" in label for label, _ in result.steps)


def test_unknown_domain_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="Unknown catalog 'shoes'"):
        to_catalog_domain(np.zeros((8, 8, 3), np.uint8), "shoes")


def test_photo_preprocessing_matches_fashion_mnist_polarity():
    photo = np.full((200, 300, 3), 245, np.uint8)  # a dark garment off-centre on a white background
    photo[40:180, 30:120] = (60, 40, 120)
    gray = to_fashion_mnist(photo).image[..., 0]
    assert gray.shape == (28, 28)
    assert gray[:, :3].max() < 30 and gray[:, -3:].max() < 30  # background is black
    assert gray[10:18, 10:18].mean() > 150  # the garment is light and centred
    assert prepare_image(photo, "fashion-mnist", 32).shape == (32, 32, 3)
