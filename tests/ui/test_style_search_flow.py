"""The Style Search page's flow between its parts, in AppTest: a result chosen as the style opens the transfer
tab with that painting, a new upload hides the old results, and "Style from" stays usable."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.apptest import OTHER_FOLDER, reference_shown, upload_and_search
from tests.paths import STYLE_PAGE

TRANSFER_TAB = "Apply a style to your photo"


@pytest.fixture(scope="module")
def folder(copy_paintings) -> Path:
    """Four paintings: enough for results, quick to index."""
    return copy_paintings([0, 1, 16, 17], name="flow")


def open_page(folder: Path) -> AppTest:
    app = AppTest.from_file(str(STYLE_PAGE), default_timeout=300)
    app.session_state["collection_choice"] = OTHER_FOLDER
    app.session_state["custom_folder"] = str(folder)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def search_with(app: AppTest, painting: Path) -> AppTest:
    upload_and_search(app, painting.name, painting.read_bytes(), "image/jpeg")
    assert not app.exception, [e.value for e in app.exception]
    return app


def open_tab(app: AppTest) -> str:
    """The label of the tab the page asks the browser to show."""
    containers = app.main.get("tab_container")
    assert len(containers) == 1
    labels = [tab.label for tab in containers[0].children.values()]
    return labels[containers[0].proto.tab_container.default_tab_index]


def result_name(app: AppTest, rank: int) -> str:
    """The name under result ``rank``'s thumbnail, read from its card."""
    cards = [block for block in app.main.get("flex_container") if block.proto.flex_container.border]
    for card in cards:
        if any(c.startswith(f"#{rank} ·") for image in card.image for c in image.captions):
            return card.caption[0].value
    raise AssertionError(f"no result #{rank}")


def test_use_this_style_selects_the_painting_and_opens_the_transfer_tab(folder: Path):
    app = search_with(open_page(folder), sorted(folder.glob("*.jpg"))[0])
    assert open_tab(app) == "Search by style"
    app.button(key="use_style_2").click().run()  # rank 2: not the query itself
    assert not app.exception
    assert app.radio(key="style_transfer_source").value == "The chosen search result"
    assert open_tab(app) == TRANSFER_TAB
    assert Path(app.session_state["style_transfer_style"]).stem.replace("_", " ") == result_name(app, 2)


def test_a_new_upload_clears_the_previous_results(folder: Path):
    first, second = sorted(folder.glob("*.jpg"))[:2]
    app = search_with(open_page(folder), first)
    assert reference_shown(app) and result_name(app, 1)
    app.file_uploader(key="style_query").set_value((second.name, second.read_bytes(), "image/jpeg")).run()
    assert not app.exception
    assert not reference_shown(app)  # "Your reference image" would stand over the first image's results
    assert not [c for image in app.image for c in image.captions if c.startswith("#")]
    upload_and_search(app, second.name, second.read_bytes(), "image/jpeg")
    assert reference_shown(app) and result_name(app, 1) == second.stem.replace("_", " ")


def test_style_from_is_usable_again_after_another_folder_and_back(folder: Path):
    app = open_page(folder)
    assert app.radio(key="style_transfer_source").value == "The collection"
    app.text_input(key="custom_folder").set_value("").run()  # "Another folder…" with no folder yet
    assert app.radio(key="style_transfer_source").options == ["Upload a painting"]
    app.text_input(key="custom_folder").set_value(str(folder)).run()  # back to a collection
    assert not app.exception
    assert app.radio(key="style_transfer_source").value == "The collection"
    assert app.selectbox(key="style_transfer_choice").value is not None


def test_an_explicit_choice_of_style_source_is_kept(folder: Path):
    app = open_page(folder)
    app.radio(key="style_transfer_source").set_value("Upload a painting").run()
    app.text_input(key="custom_folder").set_value("").run()
    app.text_input(key="custom_folder").set_value(str(folder)).run()
    assert app.radio(key="style_transfer_source").value == "Upload a painting"


def test_one_random_weights_banner_for_the_whole_page(folder: Path):
    app = search_with(open_page(folder), sorted(folder.glob("*.jpg"))[0])  # VGG19 on random weights
    banners = [w.value for w in app.warning if "random weights" in w.value]
    assert len(banners) == 1, banners
    assert "style search" in banners[0] and "style transfer" in banners[0]
