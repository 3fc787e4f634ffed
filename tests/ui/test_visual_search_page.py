"""The Visual Search (VAE) page in AppTest: upload, ranked results, generate, interpolate, a missing model."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike.core import settings
from lookalike.core.counters import INFERENCE_CALLS
from lookalike.vae.catalogs import FURNITURE_DIR, load_furniture
from lookalike.vae.checkpoints import WEIGHTS_FILE, model_dir
from tests.paths import VISUAL_PAGE

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
