"""Choosing the style network: the bundled Lite0 gives real style matches, auto falls back to it, caches stay apart."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import image_search
from lookalike.core.cache import EmbeddingCache
from lookalike.core.vectors import retrieval_metrics
from lookalike.core.weights import PUBLISHED
from lookalike.search.folders import index_folder
from lookalike.search.labels import labels_from_names
from lookalike.style import choice
from tests.paths import PAINTINGS, ROOT
from tests.standin_weights import truncate


@pytest.fixture(scope="module")
def lite0_model():
    return choice.load_style_model("lite0")


def test_bundled_lite0_finds_real_style_matches(lite0_model, tmp_path):
    """Quality floor: leave-one-out P@5 on the 32 labelled paintings (chance is 15/31 = 0.48)."""
    collection = index_folder(PAINTINGS, lite0_model)
    metrics = retrieval_metrics(collection.vectors, labels_from_names(collection.paths))
    assert metrics["P@5"] >= 0.80, metrics
    assert collection.vectors.shape[1] * collection.vectors.dtype.itemsize <= 4096  # stored vector ≤ 4 KB
    assert "lite0-gram" in collection.model_id and "sha256:" in collection.model_id


def test_each_network_keeps_its_own_cache(lite0_model, style_model, copy_paintings, cache_root):
    folder = copy_paintings(slice(0, 4), name="two-models")

    def index(model):  # one fresh cache folder for both networks (other tests index these paintings too)
        return index_folder(folder, model, cache=EmbeddingCache(model.model_id, root=cache_root))

    with_lite0 = index(lite0_model)
    with_vgg19 = index(style_model)
    assert with_lite0.model_id != with_vgg19.model_id
    assert with_vgg19.stats.new == 4 and with_vgg19.stats.reused == 0  # nothing taken from the Lite0 entries
    assert not np.allclose(with_lite0.vectors, with_vgg19.vectors)
    assert index(lite0_model).stats.reused == 4


def test_auto_keeps_vgg19_when_its_weights_load(monkeypatch):
    monkeypatch.setenv("LOOKALIKE_STYLE_MODEL", "auto")
    model = choice.load_style_model()  # the tests run VGG19 on random weights, which load
    assert model.backbone_name == "vgg19" and model.note is None


def test_auto_falls_back_to_lite0_with_one_line_saying_why(imagenet):
    bad = truncate(imagenet.standins.path("vgg19"), imagenet.models / PUBLISHED["vgg19"].filename)
    model = choice.load_style_model("auto")
    assert model.backbone_name == "lite0"
    assert "EfficientNet-Lite0" in model.note and str(bad) in model.note and "Fix:" in model.note


def test_unknown_choice_is_refused_with_the_options(monkeypatch, capsys):
    monkeypatch.setenv("LOOKALIKE_STYLE_MODEL", "resnet")
    with pytest.raises(choice.UnknownStyleModel, match="auto, vgg19, lite0"):
        choice.requested_style_model()
    assert image_search.main(["evaluate", str(PAINTINGS)]) == 1
    assert "Unknown style model 'resnet'" in capsys.readouterr().err


def test_command_line_evaluates_with_the_chosen_model(capsys):
    assert image_search.main(["evaluate", str(PAINTINGS), "--model", "lite0"]) == 0
    p5 = float(next(line for line in capsys.readouterr().out.splitlines() if "P@5" in line).split(":")[1])
    assert p5 >= 0.80


@pytest.mark.slow
def test_page_names_the_bundled_model_and_shows_no_random_weights_banner(monkeypatch):
    monkeypatch.setenv("LOOKALIKE_STYLE_MODEL", "lite0")
    app = AppTest.from_file(str(ROOT / "pages" / "style_search.py"), default_timeout=600)
    app.session_state["collection_choice"] = "Another folder…"
    app.session_state["custom_folder"] = str(PAINTINGS)
    app.run()
    assert not app.exception and not app.error
    assert any("EfficientNet-Lite0" in c.value for c in app.caption)
    # The page's one banner names only the style transfer, which still runs VGG19; the search is real.
    banners = [w.value for w in app.warning if "random weights" in w.value]
    assert len(banners) == 1 and "style transfer" in banners[0] and "style search" not in banners[0]
    query = PAINTINGS / "s_cubism-03.jpg"
    app.file_uploader(key="style_query").set_value((query.name, query.read_bytes(), "image/jpeg")).run()
    app = next(b for b in app.button if b.label == "Search for Similar Images").click().run()
    assert not app.exception
    assert app.get("plotly_chart")
