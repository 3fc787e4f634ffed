"""Every file of the bad-input corpus through every uploader (AppTest), and a collection that contains them.

Each file must give either a correct result or exactly one clear message, never an exception, and the page
must still work for the next upload.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from bad_images import CORPUS, BadInput, bad_inputs, write_corpus
from streamlit.testing.v1 import AppTest

import image_search
import utils

ROOT = Path(__file__).resolve().parents[1]
STYLE_PAGE = ROOT / "pages" / "style_search.py"
OTHER_FOLDER = "Another folder…"
SEARCH = "Search for Similar Images"
UNUSABLE = sorted(name for name, _, usable, _ in CORPUS.values() if not usable)


# ---------------------------------------------------------------------------------------------
# Style Search page in AppTest
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def six_paintings(tmp_path_factory, paintings: list[Path]) -> Path:
    """A small collection (3 cubist, 3 impressionist paintings), quick to index."""
    folder = tmp_path_factory.mktemp("six-paintings")
    for path in paintings[0:3] + paintings[16:19]:
        shutil.copy(path, folder / path.name)
    return folder


def style_app(folder: Path) -> AppTest:
    """The Style Search page, pointed at ``folder`` through "Another folder…", after its first run."""
    at = AppTest.from_file(str(STYLE_PAGE), default_timeout=120)
    at.session_state["collection_choice"] = OTHER_FOLDER
    at.session_state["custom_folder"] = str(folder)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def button(at: AppTest, label: str):
    matches = [b for b in at.button if b.label == label]
    assert len(matches) == 1, f"expected one '{label}' button, found {[b.label for b in at.button]}"
    return matches[0]


def upload_and_search(at: AppTest, name: str, data: bytes, mime: str) -> AppTest:
    at.file_uploader(key="style_query").set_value((name, data, mime))
    button(at, SEARCH).click()
    return at.run()


def result_captions(at: AppTest) -> list[str]:
    return [c for image in at.image for c in image.captions if c.startswith("#")]


def reference_shown(at: AppTest) -> bool:
    return any("Your reference image" in image.captions for image in at.image)


def assert_result_or_one_message(at: AppTest, item: BadInput) -> None:
    assert not at.exception, f"{item.name}: {[e.value for e in at.exception]}"
    errors = [e.value for e in at.error]
    if item.usable:
        assert errors == [], f"{item.name} is usable but gave {errors}"
        assert reference_shown(at), item.name
        assert len(result_captions(at)) == 6, result_captions(at)
        query = at.session_state["style_search"]["query_image"]
        assert query.dtype == np.uint8 and query.ndim == 3 and query.shape[2] == 3, query.shape
    else:
        assert len(errors) == 1, f"{item.name}: expected one message, got {errors}"
        assert "This upload can't be used" in errors[0], errors[0]
        assert "Traceback" not in errors[0]
        assert not reference_shown(at), f"{item.name}: results shown for an unusable upload"


@pytest.fixture(scope="module")
def open_style_page(six_paintings: Path) -> AppTest:
    """One Style Search session that receives every input in turn, as a person would upload them."""
    return style_app(six_paintings)


@pytest.mark.slow
@pytest.mark.parametrize("item", bad_inputs(), ids=lambda item: item.name)
def test_style_search_upload(item: BadInput, open_style_page: AppTest):
    at = open_style_page
    upload_and_search(at, item.name, item.data, item.mime)
    assert_result_or_one_message(at, item)
    if item.name == "rotated.jpg":  # stored landscape with EXIF orientation 6: upright it is portrait
        height, width = at.session_state["style_search"]["query_image"].shape[:2]
        assert height > width, (height, width)


def test_style_search_still_works_after_the_corpus(open_style_page: AppTest, six_paintings: Path,
                                                   paintings: list[Path]):
    """After all the bad files (or alone), a real painting gives normal results, with itself first."""
    at = open_style_page
    for item in [item for item in bad_inputs() if not item.usable]:  # again, so this test also stands alone
        upload_and_search(at, item.name, item.data, item.mime)
        assert_result_or_one_message(at, item)
    painting = six_paintings / paintings[17].name
    upload_and_search(at, painting.name, painting.read_bytes(), "image/jpeg")
    assert not at.exception
    assert [e.value for e in at.error] == []
    captions = result_captions(at)
    assert len(captions) == 6 and captions[0].startswith("#1 · similarity 1.00"), captions
    assert any(m.value == painting.stem.replace("_", " ") for m in at.caption), "top result caption missing"


def test_search_without_upload_asks_for_one(six_paintings: Path):
    at = style_app(six_paintings)
    button(at, SEARCH).click().run()
    assert not at.exception
    assert [w.value for w in at.warning if "Upload a reference image first" in w.value]
    assert len(at.error) == 0


# ---------------------------------------------------------------------------------------------
# A collection folder that contains the corpus
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def mixed_folder(tmp_path_factory, paintings: list[Path]) -> Path:
    """Three paintings plus the 13 corpus files."""
    folder = tmp_path_factory.mktemp("mixed-collection")
    for path in paintings[:3]:
        shutil.copy(path, folder / path.name)
    write_corpus(folder)
    return folder


def test_index_folder_skips_and_lists_bad_files(mixed_folder: Path, tmp_path: Path):
    from test_faults import GridEmbedder  # decoding is the model-independent part under test

    embedder = GridEmbedder()
    cache = image_search.EmbeddingCache(embedder.model_id, root=tmp_path / "embeddings")
    collection = image_search.index_folder(mixed_folder, embedder, cache=cache, batch_size=4)
    skipped = {path.name: reason for path, reason in collection.skipped}
    assert sorted(skipped) == UNUSABLE
    assert all(reason and "Traceback" not in reason for reason in skipped.values())
    usable = {name for name, _, ok, _ in CORPUS.values() if ok}
    assert {p.name for p in collection.paths} == usable | {p.name for p in sorted(mixed_folder.glob("s_*.jpg"))}
    assert collection.stats.skipped == len(UNUSABLE) and collection.stats.new == len(collection)
    assert np.isfinite(collection.vectors).all()
    np.testing.assert_allclose(np.linalg.norm(collection.vectors, axis=1), 1.0, rtol=1e-4)
    # The next run reuses every vector and lists the same bad files again.
    again = image_search.index_folder(mixed_folder, embedder, cache=cache)
    assert again.stats.new == 0 and again.stats.reused == len(collection)
    assert sorted(p.name for p, _ in again.skipped) == UNUSABLE


def test_style_search_page_lists_skipped_files(mixed_folder: Path):
    at = style_app(mixed_folder)
    expanders = [e for e in at.sidebar.expander if "files skipped" in e.label]
    assert len(expanders) == 1 and expanders[0].label.endswith(f"{len(UNUSABLE)} files skipped")
    listed = " ".join(c.value for c in expanders[0].caption)
    for name in UNUSABLE:
        assert f"**{name}**" in listed, name
    summary = [c.value for c in at.sidebar.caption if "images indexed" in c.value]
    assert summary and summary[0].startswith(f"{len(CORPUS) - len(UNUSABLE) + 3} images indexed"), summary


def test_load_image_gives_rgb_or_image_error_for_every_input():
    for item in bad_inputs():
        if item.usable:
            image = utils.load_image(item.data)
            assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, item.name
            assert max(image.shape[:2]) <= utils.DEFAULT_MAX_SIDE, item.name
        else:
            with pytest.raises(utils.ImageError):
                utils.load_image(item.data)
