"""The Style Search page in Streamlit's AppTest: upload, search, ranked results, map, and a free rerun."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

import utils
from tests.paths import PAINTINGS, STYLE_PAGE

PAGE = str(STYLE_PAGE)


def open_page_on(folder) -> AppTest:
    app = AppTest.from_file(PAGE, default_timeout=600)
    app.session_state["collection_choice"] = "Another folder…"
    app.session_state["custom_folder"] = str(folder)
    return app.run()


def search(app: AppTest, path, k: int) -> AppTest:
    app.file_uploader(key="style_query").set_value((path.name, path.read_bytes(), "image/jpeg")).run()
    app.slider[0].set_value(k).run()
    return next(b for b in app.button if b.label == "Search for Similar Images").click().run()


def result_captions(app: AppTest) -> list[str]:
    return [c.value for c in app.caption if c.value.startswith("s ")]


@pytest.mark.slow  # indexes 32 paintings with VGG19 and draws the t-SNE map
def test_upload_and_search_shows_k_ranked_results_and_a_map():
    app = open_page_on(PAINTINGS)
    assert not app.exception and not app.error
    assert any("32 images indexed" in c.value for c in app.sidebar.caption)
    query = PAINTINGS / "s_impressionist-07.jpg"
    app = search(app, query, k=4)
    assert not app.exception
    captions = result_captions(app)
    assert len(captions) == 4 and captions[0] == "s impressionist-07"
    assert any("random weights" in w.value for w in app.warning)
    assert app.get("plotly_chart")

    calls = dict(utils.INFERENCE_CALLS)
    app.run()  # a rerun (any widget interaction) must not run the model again
    assert calls == utils.INFERENCE_CALLS
    assert result_captions(app) == captions


def test_search_without_upload_asks_for_an_image():
    app = open_page_on(PAINTINGS)
    app = next(b for b in app.button if b.label == "Search for Similar Images").click().run()
    assert not app.exception
    assert any("Upload a reference image first" in w.value for w in app.warning)


def test_missing_folder_gives_a_message(tmp_path):
    app = open_page_on(tmp_path / "not-there")
    assert not app.exception
    assert any("does not exist" in e.value for e in app.error)
