"""The Fashion Classifier page in AppTest: every class probability for an upload, one error for a bad one,
and what to do without a model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lookalike.core import settings
from lookalike.core.counters import INFERENCE_CALLS
from tests.paths import CLASSIFIER_PAGE, CLOTHING, SHIPPED_FASHION_MODEL, SHIPPED_PHOTO_MODEL

CLASSES = sorted(p.name for p in (CLOTHING / "train").iterdir() if p.is_dir())
PHOTO = CLOTHING / "test" / "pants" / sorted(p.name for p in (CLOTHING / "test" / "pants").iterdir())[0]


def open_page(models_dir: Path, monkeypatch) -> AppTest:
    monkeypatch.setattr(settings, "MODELS_DIR", models_dir)
    return AppTest.from_file(str(CLASSIFIER_PAGE), default_timeout=300).run()


def upload(app: AppTest, name: str, data: bytes) -> AppTest:
    return app.file_uploader(key="classifier_upload").set_value((name, data, "image/jpeg")).run()


def chart_labels(app: AppTest, key: str = "probabilities") -> list[str]:
    for chart in app.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        if any(trace.get("type") == "bar" for trace in spec["data"]):
            return list(spec["data"][0]["y"])
    return []


def test_page_upload_shows_a_probability_for_every_class(tiny_model: Path, monkeypatch):
    app = open_page(tiny_model.parent, monkeypatch)
    assert not app.exception and not app.error
    assert app.file_uploader(key="classifier_upload").label == "Choose an image"
    app = upload(app, PHOTO.name, PHOTO.read_bytes())
    assert not app.exception and not app.error
    assert sorted(chart_labels(app)) == CLASSES
    assert any("random weights" in w.value for w in app.warning)
    assert any(h.value.split("  ·  ")[0] in CLASSES for h in app.subheader)
    assert {"Embedding map", "Confusion matrix", "Dataset preview"} <= {h.value for h in app.subheader}
    calls = dict(INFERENCE_CALLS)
    app.run()  # a rerun runs no inference
    assert calls == INFERENCE_CALLS and sorted(chart_labels(app)) == CLASSES


def test_page_bad_upload_shows_one_error(tiny_model: Path, monkeypatch):
    app = upload(open_page(tiny_model.parent, monkeypatch), "broken.jpg", b"\xff\xd8\xff not really a jpeg")
    assert not app.exception
    assert len(app.error) == 1 and "can't be used" in app.error[0].value
    assert chart_labels(app) == []


def test_page_without_models_says_how_to_make_one(tmp_path: Path, monkeypatch):
    app = open_page(tmp_path, monkeypatch)
    assert not app.exception
    assert any("python classifier.py train" in i.value for i in app.info)
    assert any(b.label == "Train a small model" for b in app.button)



def headline(app: AppTest) -> str:
    return next(h.value for h in app.subheader if "  ·  " in h.value)


def banners(app: AppTest) -> list[str]:
    return [w.value for w in app.warning if "random weights" in w.value]


@pytest.mark.slow
def test_page_classifies_a_photo_with_the_shipped_photo_model_by_default():
    """Tests run with LOOKALIKE_WEIGHTS=random, yet the shipped models are real: no random-weights banner."""
    app = AppTest.from_file(str(CLASSIFIER_PAGE), default_timeout=300).run()
    assert not app.exception and not app.error
    assert any(f"**{SHIPPED_PHOTO_MODEL.name}**" in c.value for c in app.caption)
    shoes = sorted((CLOTHING / "test" / "shoes").glob("*.jpg"))[0]
    app = upload(app, shoes.name, shoes.read_bytes())
    assert not app.exception and not app.error and banners(app) == []
    assert sorted(chart_labels(app)) == CLASSES
    assert headline(app).startswith("shoes  ·  ")
    trousers = PHOTO  # a pants photo
    app = upload(app, trousers.name, trousers.read_bytes())
    assert headline(app).startswith("pants  ·  ") and banners(app) == []


@pytest.mark.slow
def test_page_names_the_fashion_mnist_model_when_it_is_chosen():
    app = AppTest.from_file(str(CLASSIFIER_PAGE), default_timeout=300).run()
    choice = app.selectbox(key="classifier_model")
    option = next(o for o in choice.options if o.startswith(SHIPPED_FASHION_MODEL.name + " "))
    app = choice.select(option).run()
    assert not app.exception and not app.error and banners(app) == []
    assert any(f"**{SHIPPED_FASHION_MODEL.name}**" in c.value and "Fashion-MNIST" in c.value for c in app.caption)
