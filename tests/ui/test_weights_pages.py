"""Weights faults on the pages: one message naming the file and the fix, no traceback, a "Try again" that
works, no download retried on every rerun, and pages that don't need the model keep working."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from lookalike.core import weights
from lookalike.core.weights import PUBLISHED
from tests.apptest import OTHER_FOLDER
from tests.paths import CLASSIFIER_PAGE, ROOT, STYLE_PAGE, VISUAL_PAGE
from tests.standin_weights import leftovers, mirror_requests, truncate, zero_block

VGG19_FILE = PUBLISHED["vgg19"].filename


@pytest.fixture(autouse=True)
def vgg19_required(monkeypatch):
    """Style search on VGG19 only (LOOKALIKE_STYLE_MODEL=vgg19): a weights fault is then the page's one error.
    ``auto`` falls back to the bundled Lite0 instead (tested below)."""
    monkeypatch.setenv("LOOKALIKE_STYLE_MODEL", "vgg19")


def style_page() -> AppTest:
    app = AppTest.from_file(str(STYLE_PAGE), default_timeout=300)
    app.session_state["collection_choice"] = OTHER_FOLDER
    return app.run()


def one_error(app: AppTest) -> str:
    assert not app.exception, [e.value for e in app.exception]
    errors = [e.value for e in app.error]
    assert len(errors) == 1, errors
    assert "Traceback" not in errors[0]
    return errors[0]


def retry_button(app: AppTest):
    return next(b for b in app.button if b.label == "Try again")


def test_truncated_file_names_the_file_hashes_and_fix(imagenet):
    bad = truncate(imagenet.standins.path("vgg19"), imagenet.models / VGG19_FILE)
    text = one_error(style_page())
    assert str(bad) in text and f"expected {PUBLISHED['vgg19'].md5}" in text and weights.digests(bad).md5 in text
    assert "python utils.py weights" in text


def test_zeroed_block_is_refused_on_the_page(imagenet):
    zero_block(imagenet.standins.path("vgg19"), imagenet.models / VGG19_FILE)
    assert "is not Keras's published" in one_error(style_page())


def test_wrong_models_file_is_named_on_the_page(imagenet):
    imagenet.place("vgg19", imagenet.models, source=imagenet.standins.path("efficientnetb0"))
    assert "looks like the EfficientNetB0 file" in one_error(style_page())


def test_http_404_on_the_page(imagenet, monkeypatch, weights_server):
    monkeypatch.setenv("LOOKALIKE_MIRROR", f"{weights_server}/missing")
    assert "HTTP 404" in one_error(style_page())


def test_a_server_that_never_answers_gives_a_message_within_the_timeout(imagenet, monkeypatch, stalled_server):
    monkeypatch.setenv("LOOKALIKE_MIRROR", stalled_server)
    monkeypatch.setenv("LOOKALIKE_DOWNLOAD_TIMEOUT", "1")
    assert "read timeout" in one_error(style_page())
    assert leftovers(imagenet.keras_cache) == []


@pytest.mark.slow
def test_cut_download_is_not_retried_on_rerun_and_try_again_recovers(imagenet, monkeypatch, weights_server):
    monkeypatch.setenv("LOOKALIKE_MIRROR", f"{weights_server}/cut")
    before = mirror_requests("cut")
    app = style_page()
    assert "was cut off" in one_error(app)
    assert leftovers(imagenet.keras_cache) == []
    app.run()  # a rerun (any widget change) shows the same message without downloading again
    assert "was cut off" in one_error(app) and mirror_requests("cut") == before + 1
    monkeypatch.setenv("LOOKALIKE_MIRROR", f"{weights_server}/good")  # the network is back
    retry_button(app).click().run()
    assert not app.exception and not app.error
    assert (imagenet.keras_cache / VGG19_FILE).is_file()


@pytest.mark.slow
def test_auto_falls_back_to_lite0_naming_the_file_and_the_fix_and_retries(imagenet, monkeypatch):
    monkeypatch.setenv("LOOKALIKE_STYLE_MODEL", "auto")
    target = imagenet.models / VGG19_FILE
    bad = truncate(imagenet.standins.path("vgg19"), target)
    app = style_page()
    assert not app.exception and not app.error
    notes = [i.value for i in app.info if "EfficientNet-Lite0" in i.value]
    assert len(notes) == 1 and str(bad) in notes[0] and "Fix:" in notes[0]
    assert any("EfficientNet-Lite0" in c.value for c in app.caption)
    imagenet.place("vgg19", imagenet.models)  # the file is repaired
    retry_button(app).click().run()
    assert not app.exception and not app.error
    assert not [i.value for i in app.info if "EfficientNet-Lite0" in i.value]
    assert any("VGG19 Gram-matrix" in c.value for c in app.caption)


@pytest.mark.slow
def test_pages_that_do_not_need_vgg19_keep_working(imagenet, monkeypatch, tiny_model):
    from lookalike.core import settings

    truncate(imagenet.standins.path("vgg19"), imagenet.models / VGG19_FILE)
    home = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not home.exception
    blockers = "\n".join(e.value for e in home.error)  # damaged VGG19 weights block the tools that need them
    assert VGG19_FILE in blockers and "is not Keras's published" in blockers
    monkeypatch.setattr(settings, "MODELS_DIR", tiny_model.parent)
    classifier_page = AppTest.from_file(str(CLASSIFIER_PAGE), default_timeout=300).run()
    assert not classifier_page.exception and not classifier_page.error
    visual_page = AppTest.from_file(str(VISUAL_PAGE), default_timeout=300).run()
    assert not visual_page.exception
    assert not [e.value for e in visual_page.error if "weights" in e.value.lower()]
