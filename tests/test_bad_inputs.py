"""Every file of the bad-input corpus through every uploader (AppTest), and a collection that contains them.

Each file must give either a correct result or exactly one clear message, never an exception, and the page
must still work for the next upload.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from lookalike.core import settings
from lookalike.core.cache import EmbeddingCache
from lookalike.core.images import DEFAULT_MAX_SIDE, ImageError, load_image
from lookalike.search.folders import index_folder
from lookalike.vae.checkpoints import train_command
from tests.apptest import (
    SEARCH,
    button,
    labelled,
    query_image,
    reference_shown,
    result_captions,
    style_app,
    trained_classifier,
    trained_vae_catalog,
    upload_and_search,
    visual_app,
    visual_results,
    visual_search,
)
from tests.bad_images import CORPUS, BadInput, bad_inputs, write_corpus
from tests.embedders import GridEmbedder
from tests.paths import CLASSIFIER_PAGE, CLOTHING

SHARED_CLOTHING = CLOTHING / "test"
PHOTO = sorted((SHARED_CLOTHING / "hat").glob("*.jpg"))[0]  # a real photo, read in place
UNUSABLE = sorted(name for name, _, usable, _ in CORPUS.values() if not usable)


# ---------------------------------------------------------------------------------------------
# Style Search page in AppTest
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def six_paintings(copy_paintings) -> Path:
    """A small collection (3 cubist, 3 impressionist paintings), quick to index."""
    return copy_paintings([0, 1, 2, 16, 17, 18], "six-paintings")


def assert_result_or_one_message(at: AppTest, item: BadInput) -> None:
    assert not at.exception, f"{item.name}: {[e.value for e in at.exception]}"
    errors = [e.value for e in at.error]
    if item.usable:
        assert errors == [], f"{item.name} is usable but gave {errors}"
        assert reference_shown(at), item.name
        assert len(result_captions(at)) == 6, result_captions(at)
        query = query_image(at)
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
        height, width = query_image(at).shape[:2]
        assert height > width, (height, width)


@pytest.mark.slow  # the whole corpus through the page again
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


@pytest.mark.slow
def test_search_without_upload_asks_for_one(six_paintings: Path):
    at = style_app(six_paintings)
    button(at, SEARCH).click().run()
    assert not at.exception
    assert [w.value for w in at.warning if "Upload a reference image first" in w.value]
    assert len(at.error) == 0


# ---------------------------------------------------------------------------------------------
# The "Apply a style to your photo" tab of the same page: its two uploaders
# ---------------------------------------------------------------------------------------------

TRANSFER_UPLOADERS = {"style_transfer_photo": None, "style_transfer_style_upload": "Upload a painting"}


@pytest.fixture(scope="module")
def open_transfer_tab(six_paintings: Path) -> AppTest:
    return style_app(six_paintings)


@pytest.mark.slow
@pytest.mark.parametrize("uploader", list(TRANSFER_UPLOADERS))
@pytest.mark.parametrize("item", bad_inputs(), ids=lambda item: item.name)
def test_style_transfer_upload(item: BadInput, uploader: str, open_transfer_tab: AppTest):
    at = open_transfer_tab
    source = TRANSFER_UPLOADERS[uploader]
    at.radio(key="style_transfer_source").set_value(source or "The collection").run()
    if uploader != "style_transfer_photo":  # a good photo, so that only the painting is in question
        at.file_uploader(key="style_transfer_photo").set_value(("photo.jpg", PHOTO.read_bytes(), "image/jpeg"))
    at.file_uploader(key=uploader).set_value((item.name, item.data, item.mime)).run()
    assert not at.exception, f"{item.name}: {[e.value for e in at.exception]}"
    errors = [e.value for e in at.error]
    apply = at.button(key="style_transfer_apply")
    if item.usable:
        assert errors == [] and not apply.disabled, errors
    else:
        assert len(errors) == 1 and item.name in errors[0], errors
        assert apply.disabled, "Apply style must wait for usable images"


# ---------------------------------------------------------------------------------------------
# A collection folder that contains the corpus
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def mixed_folder(copy_paintings) -> Path:
    """Three paintings plus the 13 corpus files."""
    folder = copy_paintings(slice(3), "mixed-collection")
    write_corpus(folder)
    return folder


def test_index_folder_skips_and_lists_bad_files(mixed_folder: Path, tmp_path: Path):
    embedder = GridEmbedder()  # decoding is the model-independent part under test
    cache = EmbeddingCache(embedder.model_id, root=tmp_path / "embeddings")
    collection = index_folder(mixed_folder, embedder, cache=cache, batch_size=4)
    skipped = {path.name: reason for path, reason in collection.skipped}
    assert sorted(skipped) == UNUSABLE
    assert all(reason and "Traceback" not in reason for reason in skipped.values())
    usable = {name for name, _, ok, _ in CORPUS.values() if ok}
    assert {p.name for p in collection.paths} == usable | {p.name for p in sorted(mixed_folder.glob("s_*.jpg"))}
    assert collection.stats.skipped == len(UNUSABLE) and collection.stats.new == len(collection)
    assert np.isfinite(collection.vectors).all()
    np.testing.assert_allclose(np.linalg.norm(collection.vectors, axis=1), 1.0, rtol=1e-4)
    # The next run reuses every vector and lists the same bad files again.
    again = index_folder(mixed_folder, embedder, cache=cache)
    assert again.stats.new == 0 and again.stats.reused == len(collection)
    assert sorted(p.name for p, _ in again.skipped) == UNUSABLE


def test_style_search_page_lists_skipped_files(mixed_folder: Path):
    at = style_app(mixed_folder)
    # An expander with an icon is a "Status" block to AppTest, so look for the label among all blocks.
    expanders = [e for e in at.sidebar if "files skipped" in (getattr(e, "label", None) or "")]
    assert len(expanders) == 1 and expanders[0].label.endswith(f"{len(UNUSABLE)} files skipped")
    listed = " ".join(c.value for c in expanders[0].caption)
    for name in UNUSABLE:
        assert f"**{name}**" in listed, name
    summary = [c.value for c in at.sidebar.caption if "images indexed" in c.value]
    assert summary and summary[0].startswith(f"{len(CORPUS) - len(UNUSABLE) + 3} images indexed"), summary


def test_load_image_gives_rgb_or_image_error_for_every_input():
    for item in bad_inputs():
        if item.usable:
            image = load_image(item.data)
            assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, item.name
            assert max(image.shape[:2]) <= DEFAULT_MAX_SIDE, item.name
        else:
            with pytest.raises(ImageError):
                load_image(item.data)


# ---------------------------------------------------------------------------------------------
# Visual Search (VAE) page in AppTest
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def open_visual_page() -> tuple[AppTest, str]:
    dataset = trained_vae_catalog()
    at = visual_app(dataset)
    assert len(at.file_uploader) == 1, [e.value for e in at.error]
    return at, dataset


@pytest.mark.slow
@pytest.mark.parametrize("item", bad_inputs(), ids=lambda item: item.name)
def test_visual_search_upload(item: BadInput, open_visual_page: tuple[AppTest, str]):
    at, dataset = open_visual_page
    visual_search(at, dataset, item.name, item.data, item.mime)
    assert not at.exception, f"{item.name}: {[e.value for e in at.exception]}"
    errors = [e.value for e in at.error]
    if item.usable:
        assert errors == [], f"{item.name} is usable but gave {errors}"
        assert len(visual_results(at)) == 10, visual_results(at)
        assert any("its reconstruction" in c for image in at.image for c in image.captions)
    else:
        assert len(errors) == 1 and "This upload can't be used" in errors[0], errors


@pytest.mark.slow  # the whole corpus through the page again
def test_visual_search_still_works_after_the_corpus(open_visual_page: tuple[AppTest, str]):
    at, dataset = open_visual_page
    for item in bad_inputs():
        visual_search(at, dataset, item.name, item.data, item.mime)
    photo = sorted((SHARED_CLOTHING / "t-shirt").glob("*.jpg"))[0]
    visual_search(at, dataset, photo.name, photo.read_bytes(), "image/jpeg")
    assert not at.exception and len(at.error) == 0
    assert len(visual_results(at)) == 10


@pytest.mark.slow
def test_visual_search_drops_old_results_after_an_unusable_upload(open_visual_page: tuple[AppTest, str]):
    at, dataset = open_visual_page
    photo = sorted((SHARED_CLOTHING / "pants").glob("*.jpg"))[0]
    visual_search(at, dataset, photo.name, photo.read_bytes(), "image/jpeg")
    assert len(visual_results(at)) == 10
    bad = bad_inputs()[0]
    visual_search(at, dataset, bad.name, bad.data, bad.mime)
    assert len(at.error) == 1 and not at.exception
    assert visual_results(at) == [], "results of the previous photo are shown under the error"


def test_visual_search_without_a_model_says_how_to_train(tmp_path: Path, monkeypatch):
    import streamlit as st

    monkeypatch.setattr(settings, "MODELS_DIR", tmp_path)  # no trained model anywhere
    st.cache_resource.clear()
    try:
        for dataset in ("fashion-mnist", "furniture"):
            at = visual_app(dataset)
            errors = [e.value for e in at.error]
            assert len(errors) == 1 and train_command(dataset) in errors[0], errors
            assert len(at.file_uploader) == 0
    finally:
        st.cache_resource.clear()


# ---------------------------------------------------------------------------------------------
# Fashion Classifier page in AppTest
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def open_classifier_page() -> AppTest:
    trained_classifier()
    at = AppTest.from_file(str(CLASSIFIER_PAGE), default_timeout=300)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def classifier_types(at: AppTest) -> list[str]:
    return list(labelled(at.file_uploader, "Choose an image").proto.type)


def classify(at: AppTest, name: str, data: bytes, mime: str) -> AppTest:
    return labelled(at.file_uploader, "Choose an image").set_value((name, data, mime)).run()


def check_prediction(at: AppTest) -> None:
    """A class name with its probability above the chart, and probabilities that sum to one."""
    _, prediction, thumbnail = at.session_state["classifier_prediction"]
    ranked = prediction.ranked()
    probabilities = [p for _, p in ranked]
    assert abs(sum(probabilities) - 1.0) < 1e-3 and probabilities == sorted(probabilities, reverse=True)
    name, probability = ranked[0]
    assert [s.value for s in at.subheader if "·" in s.value] == [f"{name}  ·  {probability:.1%}"]
    assert thumbnail.ndim == 3 and thumbnail.shape[2] == 3


@pytest.mark.slow
@pytest.mark.parametrize("item", bad_inputs(), ids=lambda item: item.name)
def test_classifier_upload(item: BadInput, open_classifier_page: AppTest):
    assert Path(item.name).suffix in classifier_types(open_classifier_page)
    at = classify(open_classifier_page, item.name, item.data, item.mime)
    assert not at.exception, f"{item.name}: {[e.value for e in at.exception]}"
    errors = [e.value for e in at.error]
    if item.usable:
        assert errors == [], f"{item.name} is usable but gave {errors}"
        check_prediction(at)
    else:
        assert len(errors) == 1 and "This upload can't be used" in errors[0], errors
        assert not [s.value for s in at.subheader if "·" in s.value], "a prediction is shown for an unusable file"


@pytest.mark.slow  # the whole corpus through the page again
def test_classifier_still_works_after_the_corpus(open_classifier_page: AppTest):
    at = open_classifier_page
    for item in bad_inputs():
        if Path(item.name).suffix in classifier_types(at):
            classify(at, item.name, item.data, item.mime)
    photo = sorted((SHARED_CLOTHING / "dress").glob("*.jpg"))[0]
    classify(at, photo.name, photo.read_bytes(), "image/jpeg")
    assert not at.exception and len(at.error) == 0
    check_prediction(at)
