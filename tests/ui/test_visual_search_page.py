"""The Visual Search (VAE) page in AppTest: upload, ranked results, generate, interpolate, a missing model, the
clothing-photos catalog and its "Match by" control."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from lookalike.core import settings
from lookalike.core.backends import positional_index
from lookalike.core.counters import INFERENCE_CALLS
from lookalike.datasets import clothing_photos
from lookalike.domain import CLOTHING_PHOTOS
from lookalike.vae import features
from lookalike.vae.catalogs import FURNITURE_DIR, load_clothing_photos, load_furniture
from lookalike.vae.checkpoints import WEIGHTS_FILE, model_dir
from tests.embedders import GridBackbone
from tests.paths import CLOTHING_FULL, VISUAL_PAGE

needs_furniture = pytest.mark.skipif(not (FURNITURE_DIR / "Reallusion.sh3f").is_file(),
                                     reason="sweethome3d-furniture is not installed")


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


@needs_furniture
@pytest.mark.skipif(not (model_dir("furniture") / WEIGHTS_FILE).is_file(), reason="no furniture model")
def test_page_uploads_searches_and_shows_sorted_results() -> None:
    from streamlit.testing.v1 import AppTest

    catalog = load_furniture()
    query_index = 300
    enlarged = np.asarray(Image.fromarray(catalog.images[query_index]).resize((200, 200)))
    at = AppTest.from_file(str(VISUAL_PAGE), default_timeout=240)
    at.run()
    assert not at.exception
    at.radio(key="catalog").set_value("furniture").run()
    assert not at.exception
    at.file_uploader(key="upload").set_value(("item.png", _png(enlarged), "image/png"))
    at.slider(key="k").set_value(6)
    at.button(key="search").click().run()
    assert not at.exception and not at.error

    results = [m.value for m in at.markdown if re.match(r"\*\*\d+\. ", m.value)]
    assert len(results) == 6
    scores = [float(re.search(r"similarity (-?[\d.]+)", text).group(1)) for text in results]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] > 0.9
    assert catalog.captions[query_index] in results[0]  # the item itself comes first
    assert any(caption.value.startswith("by ") for caption in at.caption)  # creator and licence shown

    captions = [caption for image in at.image for caption in image.captions]
    assert any("reconstruction" in c for c in captions) and any("model input" in c for c in captions)

    shown = len(at.image)
    at.button(key="generate_furniture").click().run()  # decode 8 draws from the prior
    assert len(at.image) == shown + 8
    at.number_input(key="interp_steps_furniture").set_value(5)
    at.button(key="interpolate_furniture").click().run()  # a 5-step strip between two items
    assert not at.exception and len(at.image) == shown + 8 + 5

    calls = dict(INFERENCE_CALLS)
    at.run()  # a rerun keeps the results and runs no inference
    assert calls == INFERENCE_CALLS
    assert len([m for m in at.markdown if re.match(r"\*\*\d+\. ", m.value)]) == 6

    at.file_uploader(key="upload").set_value(("broken.png", b"not an image at all", "image/png"))
    at.button(key="search").click().run()
    assert not at.exception
    assert len(at.error) == 1 and "can't be used" in at.error[0].value


def test_page_names_the_training_command_when_a_model_is_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    monkeypatch.setattr(settings, "MODELS_DIR", tmp_path)
    st.cache_resource.clear()
    try:
        at = AppTest.from_file(str(VISUAL_PAGE), default_timeout=120)
        at.run()
        assert not at.exception
        assert len(at.error) == 1 and "python vae.py train --data fashion-mnist" in at.error[0].value
        assert not at.button  # nothing to click without a model
    finally:
        st.cache_resource.clear()


# ---------------------------------------------------------------------------------------------
# The clothing-photos catalog and "Match by"
# ---------------------------------------------------------------------------------------------

PHOTOS = CLOTHING_FULL
needs_photos = pytest.mark.skipif(
    not (PHOTOS / "train").is_dir() or not (model_dir(CLOTHING_PHOTOS) / WEIGHTS_FILE).is_file(),
    reason="clothing-dataset-full or the clothing-photos model is missing",
)


@pytest.fixture
def fresh_page_caches():
    """Cached resources (the backbone, the catalogs) are per process: start and end each test without them."""
    import streamlit as st

    st.cache_resource.clear()
    load_clothing_photos.cache_clear()
    yield
    st.cache_resource.clear()
    load_clothing_photos.cache_clear()


@pytest.fixture
def index_searches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The length of every query vector that went through the vector index interface."""
    calls: list[int] = []
    index_class = type(positional_index(np.eye(2, dtype=np.float32)))
    original = index_class.search

    def spy(self, query: np.ndarray, k: int):
        calls.append(int(np.shape(query)[-1]))
        return original(self, query, k)

    monkeypatch.setattr(index_class, "search", spy)
    return calls


def _photo_page() -> AppTest:
    at = AppTest.from_file(str(VISUAL_PAGE), default_timeout=600)
    at.session_state["catalog"] = CLOTHING_PHOTOS
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _results(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if re.match(r"\*\*\d+\. ", m.value)]


@needs_photos
@pytest.mark.slow  # the first run reads all 3,068 catalog photos into the session's cache
def test_photo_catalog_matches_by_latent_or_by_features_through_one_index(
    monkeypatch: pytest.MonkeyPatch, fresh_page_caches: None, index_searches: list[int]
) -> None:
    monkeypatch.setattr(features, "BACKBONES", [GridBackbone])
    at = _photo_page()
    match = at.radio(key=f"match_{CLOTHING_PHOTOS}")
    assert match.value == "vae"  # the latent is the default
    labels = match.options  # as shown: each with its measured P@10 where there is one
    assert len(labels) == 2 and re.fullmatch(r"VAE latent \(64-d\) · P@10 0\.\d\d", labels[0])
    assert labels[1] == "Pretrained features: grid of mean colours"  # never measured: no figure

    photo = sorted((PHOTOS / "validation" / "pants").glob("*.jpg"))[0]
    at.file_uploader(key="upload").set_value((photo.name, photo.read_bytes(), "image/jpeg"))
    at.button(key="search").click().run()
    assert not at.exception and not at.error
    assert len(_results(at)) == 10 and index_searches == [64]
    assert any("Matched by VAE latent" in caption.value for caption in at.caption)
    captions = [caption for image in at.image for caption in image.captions]
    assert any("padded to a square" in c for c in captions) and any("reconstruction" in c for c in captions)

    at.radio(key=f"match_{CLOTHING_PHOTOS}").set_value("features").run()  # from the current tree: no click
    assert any("matched by VAE latent" in info.value for info in at.info)  # old results are labelled as such
    at.button(key="search").click().run()
    assert not at.exception and not at.error
    assert len(_results(at)) == 10 and index_searches == [64, GridBackbone.dims]
    assert any("Matched by Pretrained features: grid of mean colours" in c.value for c in at.caption)
    assert not at.info

    shown = len(at.image)
    at.button(key=f"generate_{CLOTHING_PHOTOS}").click().run()  # the photo VAE generates and interpolates too
    assert len(at.image) == shown + 8  # one image per column, in full rows
    at.number_input(key=f"interp_steps_{CLOTHING_PHOTOS}").set_value(4)
    at.button(key=f"interpolate_{CLOTHING_PHOTOS}").click().run()
    assert not at.exception and len(at.image) == shown + 8 + 4


@needs_photos
@pytest.mark.slow  # reads the catalog photos
def test_without_a_bundled_backbone_the_page_matches_by_latent_only(
    monkeypatch: pytest.MonkeyPatch, fresh_page_caches: None
) -> None:
    monkeypatch.setattr(features, "BACKBONES", [])
    at = _photo_page()
    assert not [radio for radio in at.radio if radio.key == f"match_{CLOTHING_PHOTOS}"]
    assert any(caption.value.startswith("Matching by VAE latent") for caption in at.caption)


def test_a_missing_photo_folder_gives_one_clear_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fresh_page_caches: None
) -> None:
    monkeypatch.setenv(clothing_photos.ENV, str(tmp_path / "nowhere"))
    at = _photo_page()
    assert len(at.error) == 1
    assert clothing_photos.ENV in at.error[0].value and str(tmp_path / "nowhere") in at.error[0].value
    assert not at.button  # nothing to click without a catalog
