"""A failed weights load is remembered for the process: later runs show the message at once instead of trying
(and downloading) again, until someone clicks "Try again"."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from lookalike.style import choice
from lookalike.ui import transfer_tab
from tests.paths import CLOTHING, PAINTINGS, STYLE_PAGE

WEIGHTS_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"


@pytest.fixture
def offline_imagenet(monkeypatch, tmp_path):
    """ImageNet weights asked for, none on disk, and every download refused at once (a closed loopback port)."""
    monkeypatch.setenv("LOOKALIKE_WEIGHTS", "imagenet")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / ".keras"))
    monkeypatch.setenv("LOOKALIKE_MIRROR", "")
    import keras.utils

    original = keras.utils.get_file
    monkeypatch.setattr(keras.utils, "get_file", lambda name, url, **kw: original(name, "http://127.0.0.1:9/" + name, **kw))
    st.cache_resource.clear()  # models loaded by earlier tests (random weights) must not answer, nor old failures
    yield
    st.cache_resource.clear()


def counted(monkeypatch, owner, name: str) -> list[int]:
    """Replace ``owner.name`` by a wrapper that records each call, then calls the real function."""
    calls: list[int] = []
    real = getattr(owner, name)

    def wrapper(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)
    return calls


def _section(choices: list) -> None:
    """The transfer section alone (AppTest runs this function's source as a script, so it imports here)."""
    from pathlib import Path

    from lookalike.ui.transfer_tab import render_style_transfer_section

    render_style_transfer_section([(name, Path(path)) for name, path in choices])


def labels(app: AppTest) -> list[str]:
    return [b.label for b in app.button]


def test_style_page_remembers_a_failed_load_until_try_again(offline_imagenet, monkeypatch):
    monkeypatch.setenv("LOOKALIKE_STYLE_MODEL", "vgg19")
    loads = counted(monkeypatch, choice, "load_style_model")
    app = AppTest.from_file(str(STYLE_PAGE), default_timeout=120)
    app.session_state["collection_choice"] = "Another folder…"
    app.session_state["custom_folder"] = str(PAINTINGS)
    app.run()
    assert not app.exception and len(loads) == 1
    assert len(app.error) == 1 and WEIGHTS_FILE in app.error[0].value
    assert "Try again" in labels(app)
    app.run()
    app.run()
    assert len(loads) == 1  # no new attempt (and no new download) on later runs
    assert len(app.error) == 1 and WEIGHTS_FILE in app.error[0].value
    next(b for b in app.button if b.label == "Try again").click().run()
    assert len(loads) == 2 and len(app.error) == 1  # tried again; still offline


def test_transfer_tab_remembers_a_failed_load_until_try_again(offline_imagenet, monkeypatch):
    loads = counted(monkeypatch, transfer_tab, "transfer_model")
    paintings = [(path.stem, str(path)) for path in sorted(PAINTINGS.glob("*.jpg"))[:2]]
    app = AppTest.from_function(_section, args=(paintings,), default_timeout=120)
    app.run()
    photo = sorted((CLOTHING / "test" / "hat").glob("*.jpg"))[0]
    app.file_uploader(key="style_transfer_photo").set_value((photo.name, photo.read_bytes(), "image/jpeg")).run()
    app.button(key="style_transfer_apply").click().run()
    assert not app.exception and len(loads) == 1
    assert len(app.error) == 1 and WEIGHTS_FILE in app.error[0].value and "Try again" in labels(app)
    app.checkbox(key="style_transfer_preserve").check().run()  # any other click
    assert len(loads) == 1 and len(app.error) == 1
    assert app.button(key="style_transfer_apply").disabled  # with the reason beside it
    next(b for b in app.button if b.label == "Try again").click().run()
    assert not app.error and not app.button(key="style_transfer_apply").disabled
    app.button(key="style_transfer_apply").click().run()
    assert len(loads) == 2 and len(app.error) == 1


def test_a_missing_file_path_is_not_a_download(tmp_path: Path, monkeypatch):
    """LOOKALIKE_WEIGHTS pointing at a missing file fails without any network, and is remembered the same way."""
    monkeypatch.setenv("LOOKALIKE_WEIGHTS", str(tmp_path / "nowhere.h5"))
    monkeypatch.setenv("LOOKALIKE_STYLE_MODEL", "vgg19")
    st.cache_resource.clear()
    loads = counted(monkeypatch, choice, "load_style_model")
    try:
        app = AppTest.from_file(str(STYLE_PAGE), default_timeout=120)
        app.session_state["collection_choice"] = "Another folder…"
        app.run()
        app.run()
    finally:
        st.cache_resource.clear()
    assert not app.exception and len(loads) == 1
    assert len(app.error) == 1 and "nowhere.h5" in app.error[0].value
