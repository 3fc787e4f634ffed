"""The Visual Search page's flow in AppTest: a new upload hides the old results; Generate and interpolation
strips fill whole rows; From and To reach every catalog item, tell duplicates apart and refuse From = To."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from lookalike.vae.catalogs import FURNITURE_DIR, load_furniture
from lookalike.vae.checkpoints import WEIGHTS_FILE, model_dir
from tests.paths import VISUAL_PAGE

needs_furniture = pytest.mark.skipif(
    not (FURNITURE_DIR / "Reallusion.sh3f").is_file() or not (model_dir("furniture") / WEIGHTS_FILE).is_file(),
    reason="needs sweethome3d-furniture and models/vae-furniture",
)
RESULT = re.compile(r"\*\*\d+\. ")


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(Image.fromarray(image).resize((160, 160)))).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def catalog():
    return load_furniture()


def open_furniture() -> AppTest:
    app = AppTest.from_file(str(VISUAL_PAGE), default_timeout=300)
    app.session_state["catalog"] = "furniture"
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def results(app: AppTest) -> list[str]:
    return [m.value for m in app.markdown if RESULT.match(m.value)]


@needs_furniture
def test_a_new_upload_clears_the_previous_results(catalog):
    app = open_furniture()
    app.file_uploader(key="upload").set_value(("first.png", _png(catalog.images[10]), "image/png"))
    app.button(key="search").click().run()
    assert len(results(app)) == 10
    app.file_uploader(key="upload").set_value(("second.png", _png(catalog.images[500]), "image/png")).run()
    assert not app.exception
    assert results(app) == []  # the first photo's items would pass for the second's
    assert not any("your upload" in c for image in app.image for c in image.captions)
    app.button(key="search").click().run()
    assert len(results(app)) == 10


def image_rows(app: AppTest, count: int) -> list[int]:
    """Images per row of the last strip of ``count`` images (a row: one block of columns, an image in each)."""
    rows = []
    for block in app.main.get("flex_container"):  # st.columns: a horizontal block of "column" blocks
        columns = [c for c in block.children.values() if c.type == "column"]
        if columns and len(columns) == len(block.children) and all(len(c.image) == 1 for c in columns):
            rows.append(len(columns))
    strips = [rows[i:j] for i in range(len(rows)) for j in range(i + 1, len(rows) + 1) if sum(rows[i:j]) == count]
    assert strips, f"no rows of images adding up to {count}: {rows}"
    return strips[-1]


@needs_furniture
def test_generated_and_interpolated_images_fill_whole_rows():
    app = open_furniture()
    app.button(key="generate_furniture").click().run()  # 8 by default
    assert image_rows(app, 8) == [8]
    app.slider(key="gen_count_furniture").set_value(12).run()
    app.button(key="generate_furniture").click().run()
    assert image_rows(app, 12) == [6, 6]
    app.number_input(key="interp_steps_furniture").set_value(10).run()
    app.button(key="interpolate_furniture").click().run()
    assert not app.exception
    assert image_rows(app, 10) == [5, 5]


@needs_furniture
def test_from_and_to_offer_every_item_with_duplicates_told_apart(catalog):
    app = open_furniture()
    options = list(app.selectbox(key="interp_a_furniture").options)
    assert len(options) == len(catalog) == len(set(options))  # every item, each name once
    assert {"Bed (Bedroom)", "Bed (Bedroom) #2"} <= set(options)
    assert list(app.selectbox(key="interp_b_furniture").options) == options
    app.selectbox(key="interp_a_furniture").set_value(options.index("Bed (Bedroom) #2")).run()
    assert app.selectbox(key="interp_a_furniture").value == options.index("Bed (Bedroom) #2")


@needs_furniture
def test_from_equal_to_gets_a_message():
    app = open_furniture()
    app.selectbox(key="interp_b_furniture").set_value(app.selectbox(key="interp_a_furniture").value).run()
    assert app.button(key="interpolate_furniture").disabled
    assert any("different" in c.value for c in app.caption)  # beside the button: why it is disabled


@pytest.mark.skipif(not (model_dir("fashion-mnist") / WEIGHTS_FILE).is_file(), reason="no Fashion-MNIST VAE")
def test_a_very_large_catalog_takes_any_item_by_number():
    app = AppTest.from_file(str(VISUAL_PAGE), default_timeout=300)
    app.session_state["catalog"] = "fashion-mnist"
    app.run()
    assert not app.exception
    first = app.number_input(key="interp_a_fashion-mnist")
    assert first.max == 59_999  # all 60,000 items, where a list would be too long to send and search
    first.set_value(59_999).run()
    assert any(c.value.endswith("· #59999") for c in app.caption)
    app.button(key="interpolate_fashion-mnist").click().run()
    assert not app.exception and sum(image_rows(app, 8)) == 8
