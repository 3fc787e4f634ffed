"""The "Apply a style to your photo" tab (``lookalike.ui.transfer_tab``) in Streamlit's AppTest."""

from __future__ import annotations

import re

import numpy as np
import pytest

from lookalike.core.counters import INFERENCE_CALLS
from lookalike.core.images import load_image, png_bytes
from lookalike.search import samples
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


# ---------------------------------------------------------------------------------------------
# A finished transfer with a Met painting, shared by the tests below (one transfer for all of them)
# ---------------------------------------------------------------------------------------------


def _met_collection() -> list[tuple[str, str]]:
    """Three Met paintings with their museum captions (title — artist, date), as the page passes them."""
    captions = samples.museum_captions()
    paths = sorted(samples.museum_folder().glob("*.jpg"))[:3]
    return [(captions[path.name], str(path)) for path in paths]


@pytest.fixture(scope="module")
def met_transfer(model, photo):
    """The section after one quick transfer (256 px, 10 steps) of a preset Met painting onto a photo."""
    choices = _met_collection()
    app = _app(choices, choices[1][1]).run()
    app.file_uploader(key="style_transfer_photo").set_value(("my photo.png", _png(photo[::4, ::4]), "image/png"))
    app.select_slider(key="style_transfer_size").set_value(256)
    app.slider(key="style_transfer_steps").set_value(10)
    app.run()
    app.button(key="style_transfer_apply").click().run()
    assert not app.exception and not app.error
    return app, choices[1][0]


@pytest.mark.slow  # runs a style transfer
def test_paintings_go_by_title_and_artist_in_picker_caption_and_download(met_transfer):
    app, title = met_transfer
    assert " — " in title and not title.endswith(".jpg")
    captions = [img.caption for image in app.get("image") for img in image.proto.imgs]
    assert title in captions  # under the chosen painting, not "436535.jpg"
    assert f"my photo in the style of {title}" in captions  # the result
    file_name = app.session_state["style_transfer_result"]["file_name"]
    assert file_name.startswith("my-photo-in-the-style-of-") and file_name.endswith(".png")
    assert re.fullmatch(r"[a-z0-9-]+\.png", file_name) and len(file_name) <= 104
    assert title.split(" — ")[0].lower().split()[0] in file_name
    assert [b.label for b in app.get("download_button")] == ["Download PNG"]
    # The collection picker names them the same way.
    app.radio(key="style_transfer_source").set_value("The collection").run()
    picker = app.selectbox(key="style_transfer_choice")
    assert list(picker.options) == [caption for caption, _ in _met_collection()]


@pytest.mark.slow  # runs a style transfer (shared); last, since it changes the photo
def test_a_new_photo_clears_the_previous_result(met_transfer, photo):
    app, _ = met_transfer
    assert app.session_state["style_transfer_result"]
    app.file_uploader(key="style_transfer_photo").set_value(("other.png", _png(photo[::3, ::3]), "image/png"))
    app.run()
    assert not app.exception
    captions = [img.caption for image in app.get("image") for img in image.proto.imgs]
    assert not any("in the style of" in caption for caption in captions)
    assert not app.get("download_button")


def _apply_reason(app) -> str:
    """The caption beside the "Apply style" button (its container holds both)."""
    for block in app.get("flex_container"):
        if any(b.label == "Apply style" for b in block.button):
            return " ".join(c.value for c in block.caption)
    raise AssertionError("no Apply style button")


def test_a_disabled_apply_button_says_why(model, photo):
    app = _app(_collection()).run()
    assert app.button(key="style_transfer_apply").disabled
    assert "Upload your photo" in _apply_reason(app)
    app.radio(key="style_transfer_source").set_value("Upload a painting").run()
    assert "painting" in _apply_reason(app) and "photo" in _apply_reason(app)
    app.file_uploader(key="style_transfer_photo").set_value(("photo.png", _png(photo[::4, ::4]), "image/png")).run()
    assert app.button(key="style_transfer_apply").disabled
    reason = _apply_reason(app)
    assert "painting" in reason and "photo" not in reason
    app.radio(key="style_transfer_source").set_value("The collection").run()
    assert not app.button(key="style_transfer_apply").disabled and _apply_reason(app) == ""
