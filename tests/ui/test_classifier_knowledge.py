"""The Fashion Classifier page says what its model knows: one banner only when the model really runs on random
weights, one line on what it was trained on and which kinds of clothing it lacks, and "unsure" on a low top
probability."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lookalike.classifier.storage import list_models, read_metadata
from lookalike.core import settings
from tests.paths import CLASSIFIER_PAGE, CLOTHING

PHOTO = sorted((CLOTHING / "test" / "hat").glob("*.jpg"))[0]
# What each training set lacks among the kinds of clothing people photograph.
GAPS = {"fashion-mnist": "no hat, shorts or skirt", "clothing-dataset-full": "no bag", "clothing-dataset-small": "no bag"}


def open_with(models_dir: Path) -> AppTest:
    """The page on the newest model of ``models_dir``, after uploading a photo of a hat."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(settings, "MODELS_DIR", models_dir)
        app = AppTest.from_file(str(CLASSIFIER_PAGE), default_timeout=300)
        app.run()
        assert not app.exception, [e.value for e in app.exception]
        app.file_uploader(key="classifier_upload").set_value((PHOTO.name, PHOTO.read_bytes(), "image/jpeg")).run()
    assert not app.exception, [e.value for e in app.exception]
    return app


@pytest.fixture(scope="module")
def shipped() -> tuple[Path, AppTest]:
    found = list_models(settings.MODELS_DIR)
    if not found:
        pytest.skip("no classifier in models/")
    return found[0], open_with(settings.MODELS_DIR)


@pytest.fixture(scope="module")
def tiny(tiny_model: Path) -> tuple[Path, AppTest]:
    return tiny_model, open_with(tiny_model.parent)


def banners(app: AppTest) -> list[str]:
    return [w.value for w in app.warning if "random weights" in w.value]


def knowledge(app: AppTest) -> str:
    lines = [c.value for c in app.caption if c.value.startswith("Trained on ")]
    assert len(lines) == 1, [c.value for c in app.caption]
    return lines[0]


def top_probability(app: AppTest) -> float:
    headline = next(h.value for h in app.subheader if "  ·  " in h.value)
    return float(headline.split("  ·  ")[1].rstrip("%")) / 100


def unsure(app: AppTest) -> list[str]:
    return [m.value for m in app.info if "unsure" in m.value]


def test_a_model_on_a_random_backbone_gets_one_banner(tiny):
    folder, app = tiny
    assert read_metadata(folder)["weights"] == "random"  # trained under LOOKALIKE_WEIGHTS=random
    assert len(banners(app)) == 1, banners(app)


@pytest.mark.slow  # loads the shipped model and draws its embedding map
def test_a_shipped_model_gets_no_random_weights_banner(shipped):
    folder, app = shipped
    assert read_metadata(folder)["weights"] != "random"
    assert banners(app) == []  # the shipped models don't run on random weights, whatever LOOKALIKE_WEIGHTS says


@pytest.mark.slow
def test_the_prediction_says_what_the_shipped_model_was_trained_on_and_lacks(shipped):
    folder, app = shipped
    meta = read_metadata(folder)
    line = knowledge(app)
    assert GAPS[meta["dataset"]] in line
    assert f"{len(meta['classes'])} classes" in line
    # Every shipped model says it the same way: switch to the Fashion-MNIST one, if shipped, and ask again.
    choice = app.selectbox(key="classifier_model")
    fashion = [option for option in choice.options if "fashion-mnist," in option and option != choice.value]
    if fashion:
        choice.select(fashion[0]).run()
        assert not app.exception
        line = knowledge(app)
        assert "Fashion-MNIST: 28-px grey" in line and GAPS["fashion-mnist"] in line


def test_a_low_top_probability_is_called_unsure(tiny):
    folder, app = tiny
    assert "no bag" in knowledge(app)  # the ten clothing-dataset classes have no bag
    # One epoch on a random backbone: about as good as a guess among ten classes.
    assert top_probability(app) < 0.5
    assert len(unsure(app)) == 1 and f"{top_probability(app):.1%}" in unsure(app)[0]
