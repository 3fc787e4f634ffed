"""The "Apply a style to your photo" tab (``lookalike.ui.transfer_tab``) in Streamlit's AppTest."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.core.counters import INFERENCE_CALLS
from lookalike.core.images import load_image, png_bytes
from lookalike.style.transfer import transfer_model
from tests.paths import CLOTHING, PAINTINGS


@pytest.fixture(scope="module")
def model():
    """The process-wide transfer model, built before the tab needs it (random weights)."""
    return transfer_model()


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return load_image(sorted(CLOTHING.glob("test/*/*.jpg"))[0])


def _section_app(choices: list, preset: str | None) -> None:
    from pathlib import Path

    from lookalike.ui import transfer_tab

    transfer_tab.render_style_transfer_section(
        [(caption, Path(path)) for caption, path in choices], Path(preset) if preset else None
    )


def _app(choices: list, preset: str | None = None):
    from streamlit.testing.v1 import AppTest

    return AppTest.from_function(_section_app, args=(choices, preset), default_timeout=300)


def _png(image: np.ndarray) -> bytes:
    return png_bytes(np.ascontiguousarray(image))


def _collection() -> list[tuple[str, str]]:
    return [(path.stem, str(path)) for path in sorted(PAINTINGS.glob("*.jpg"))[:3]]


def test_section_warns_about_random_weights_and_waits_for_a_photo(model):
    app = _app(_collection()).run()
    assert not app.exception
    assert any("random weights" in warning.value for warning in app.warning)
    apply = next(button for button in app.button if button.label == "Apply style")
    assert apply.disabled
    assert not app.error


def test_section_runs_once_per_click_and_keeps_the_result(model, photo):
    app = _app(_collection()).run()
    app.file_uploader(key="style_transfer_photo").set_value(("photo.png", _png(photo[::4, ::4]), "image/png"))
    app.select_slider(key="style_transfer_size").set_value(256)
    app.slider(key="style_transfer_steps").set_value(10)
    app.run()
    calls = dict(INFERENCE_CALLS)
    app.button(key="style_transfer_apply").click().run()
    assert not app.exception and not app.error
    ran = INFERENCE_CALLS.get("vgg19", 0) - calls.get("vgg19", 0)
    assert ran >= 10  # targets plus ten steps
    captions = [img.caption for image in app.get("image") for img in image.proto.imgs]
    assert any("in the style of" in caption for caption in captions)
    # A rerun (any other interaction) shows the kept result and runs no model.
    before = INFERENCE_CALLS.get("vgg19", 0)
    app.checkbox(key="style_transfer_preserve").check().run()
    assert INFERENCE_CALLS.get("vgg19", 0) == before
    assert max(app.session_state["style_transfer_result"]["image"].shape[:2]) == 256


def test_section_bad_upload_gives_one_error(model):
    app = _app(_collection()).run()
    app.file_uploader(key="style_transfer_photo").set_value(("photo.jpg", b"not a jpeg", "image/jpeg"))
    app.run()
    assert not app.exception
    assert len(app.error) == 1 and "photo.jpg" in app.error[0].value
    assert next(button for button in app.button if button.label == "Apply style").disabled


def test_section_uses_a_preset_search_result(model):
    preset = _collection()[1][1]
    app = _app(_collection(), preset).run()
    assert not app.exception
    source = app.radio(key="style_transfer_source")
    assert source.value == "The chosen search result"
