"""The home page: what each tool does, and what is ready or missing with the command that fixes it."""

from __future__ import annotations

import re

from streamlit.testing.v1 import AppTest

from tests.paths import APP, STYLE_PAGE


def home_text(app: AppTest) -> str:
    return "\n".join([m.value for m in app.markdown] + [e.value for e in app.error])


def code_spans_are_whole(text: str) -> bool:
    """Inline code as Markdown will show it: an even number of backticks, and no span that starts or ends with a
    space (the mark of a nested backtick: "put `a.h5` in `models/`" inside another pair of backticks)."""
    spans = re.findall(r"`([^`]*)`", text)
    return text.count("`") % 2 == 0 and all(span == span.strip() and span for span in spans)


def test_home_page_lists_the_tools_and_their_readiness():
    app = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not app.exception
    headings = [h.value for h in app.subheader]
    assert any("Style Search" in h for h in headings)
    assert any("Fashion Classifier" in h for h in headings)
    assert any("Visual Search" in h for h in headings)
    text = home_text(app)
    assert "random weights" in text and "unset LOOKALIKE_WEIGHTS" in text
    assert "Style collection" in text


def test_missing_imagenet_weights_show_where_to_put_the_file(imagenet):
    app = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not app.exception
    text = home_text(app)
    blockers = "\n".join(e.value for e in app.error)  # VGG19 stops the style transfer: a blocker, with the fix
    assert "`vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5` is in neither" in blockers
    assert "python utils.py weights" in blockers
    assert "efficientnetb0_notop.h5` not downloaded yet" in text and "python utils.py weights" in text


def test_missing_weights_are_a_blocker_for_the_tools_that_need_them(monkeypatch, tmp_path):
    monkeypatch.setenv("LOOKALIKE_WEIGHTS", "imagenet")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("LOOKALIKE_STYLE_MODEL", "auto")
    app = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not app.exception
    vgg19_lines = [line for line in home_text(app).splitlines() if "VGG19" in line]
    assert vgg19_lines and not any("fetched on first use" in line for line in vgg19_lines)
    blockers = [e.value for e in app.error]
    assert len(blockers) == 1, blockers
    assert "VGG19" in blockers[0] and "Style transfer cannot run" in blockers[0]
    assert "`vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`" in blockers[0] and "`models/`" in blockers[0]
    assert "Style Search" not in blockers[0]  # it falls back to the bundled EfficientNet-Lite0
    monkeypatch.setenv("LOOKALIKE_STYLE_MODEL", "vgg19")
    app = AppTest.from_file(str(APP), default_timeout=60).run()
    assert "Style Search and style transfer cannot run" in app.error[0].value


def test_home_page_markdown_has_no_nested_backticks(monkeypatch, tmp_path):
    for weights in ("random", "imagenet", str(tmp_path / "missing.h5")):
        monkeypatch.setenv("LOOKALIKE_WEIGHTS", weights)
        monkeypatch.setenv("HOME", str(tmp_path))
        app = AppTest.from_file(str(APP), default_timeout=60).run()
        assert not app.exception
        for text in home_text(app).splitlines():
            assert code_spans_are_whole(text), text


def open_style_page_offline(monkeypatch, style_model: str) -> AppTest:
    """The Style Search page with ImageNet weights asked for, none on disk, and no network (the ``imagenet``
    fixture: private models/ and Keras cache folders, the mirror a closed loopback port)."""
    monkeypatch.setenv("LOOKALIKE_STYLE_MODEL", style_model)
    app = AppTest.from_file(str(STYLE_PAGE), default_timeout=120)
    app.session_state["collection_choice"] = "Another folder…"
    app.run()
    assert not app.exception
    return app


def test_style_page_without_vgg19_weights_shows_one_clear_message(imagenet, monkeypatch):
    app = open_style_page_offline(monkeypatch, "vgg19")
    errors = [e.value for e in app.error]
    assert len(errors) == 1 and "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5" in errors[0]
    assert str(imagenet.models) in errors[0] and "refused the connection" in errors[0]


def test_style_page_on_auto_falls_back_to_the_bundled_model(imagenet, monkeypatch):
    app = open_style_page_offline(monkeypatch, "auto")
    assert not app.error
    notes = [i.value for i in app.info if "EfficientNet-Lite0" in i.value]
    assert len(notes) == 1 and "VGG19's ImageNet weights are not available" in notes[0]
    assert not any(w.value.startswith("Running on **random weights**") for w in app.warning)
