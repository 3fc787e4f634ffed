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

pytestmark = pytest.mark.skipif(
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
