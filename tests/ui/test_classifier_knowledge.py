"""The Fashion Classifier page says what its model knows: one banner only when the model really runs on random
weights, one line on what it was trained on and which classes it lacks, and "unsure" on a low top probability."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lookalike.classifier.storage import list_models, read_metadata
from lookalike.core import settings
from tests.paths import CLASSIFIER_PAGE, CLOTHING

PHOTO = sorted((CLOTHING / "test" / "hat").glob("*.jpg"))[0]


def shipped_model() -> Path:
    found = list_models(settings.MODELS_DIR)
    if not found:
        pytest.skip("no classifier in models/")
    return found[0]


def open_with(models_dir: Path, monkeypatch, model: str | None = None) -> AppTest:
    monkeypatch.setattr(settings, "MODELS_DIR", models_dir)
    app = AppTest.from_file(str(CLASSIFIER_PAGE), default_timeout=300)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    app.file_uploader(key="classifier_upload").set_value((PHOTO.name, PHOTO.read_bytes(), "image/jpeg")).run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def banners(app: AppTest) -> list[str]:
    return [w.value for w in app.warning if "random weights" in w.value]


def test_a_model_on_a_random_backbone_gets_one_banner(tiny_model: Path, monkeypatch):
    assert read_metadata(tiny_model)["weights"] == "random"  # trained under LOOKALIKE_WEIGHTS=random
    app = open_with(tiny_model.parent, monkeypatch)
    assert len(banners(app)) == 1, banners(app)


@pytest.mark.slow  # loads the shipped model and draws its embedding map
def test_a_shipped_model_gets_no_random_weights_banner(monkeypatch):
    folder = shipped_model()
    assert read_metadata(folder)["weights"] != "random"
    app = open_with(folder.parent, monkeypatch)
    assert banners(app) == []  # the shipped models don't run on random weights, whatever LOOKALIKE_WEIGHTS says
