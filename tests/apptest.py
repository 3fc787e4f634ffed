"""Driving the pages in Streamlit's AppTest: open a page, upload, click, and read what it shows.

Shared by the cross-cutting tests (bad inputs, faults, security).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lookalike.classifier.storage import list_models
from lookalike.vae.checkpoints import model_dir, train_command
from tests.paths import STYLE_PAGE, VISUAL_PAGE

OTHER_FOLDER = "Another folder…"
SEARCH = "Search for Similar Images"


def style_app(folder: Path) -> AppTest:
    """The Style Search page, pointed at ``folder`` through "Another folder…", after its first run."""
    at = AppTest.from_file(str(STYLE_PAGE), default_timeout=300)
    at.session_state["collection_choice"] = OTHER_FOLDER
    at.session_state["custom_folder"] = str(folder)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def button(at: AppTest, label: str):
    matches = [b for b in at.button if b.label == label]
    assert len(matches) == 1, f"expected one '{label}' button, found {[b.label for b in at.button]}"
    return matches[0]


def upload_and_search(at: AppTest, name: str, data: bytes, mime: str) -> AppTest:
    at.file_uploader(key="style_query").set_value((name, data, mime))
    button(at, SEARCH).click()
    return at.run()


def result_captions(at: AppTest) -> list[str]:
    return [c for image in at.image for c in image.captions if c.startswith("#")]


def reference_shown(at: AppTest) -> bool:
    return any("Your reference image" in image.captions for image in at.image)


def query_image(at: AppTest):
    """The picture of the current query's first uploaded reference (what "Your reference image" shows)."""
    query = at.session_state["style_trail"].current
    return next(reference.thumbnail for reference in query.references if reference.thumbnail is not None)


def trained_vae_catalog() -> str:
    for dataset in ("fashion-mnist", "furniture"):
        if (model_dir(dataset) / "metadata.json").is_file():
            return dataset
    pytest.skip(f"no trained VAE in models/: `{train_command('furniture')}` creates one")


def visual_app(dataset: str) -> AppTest:
    at = AppTest.from_file(str(VISUAL_PAGE), default_timeout=300)
    at.session_state["catalog"] = dataset
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.file_uploader) == 1 or len(at.error), [e.value for e in at.error]
    return at


def labelled(widgets, label: str):
    """The one widget with this label (keys are the page's business; labels are what people see)."""
    matches = [w for w in widgets if w.label == label]
    assert len(matches) == 1, f"expected one '{label}', found {[w.label for w in widgets]}"
    return matches[0]


def visual_search(at: AppTest, dataset: str, name: str, data: bytes, mime: str) -> AppTest:
    labelled(at.file_uploader, "Upload a photo").set_value((name, data, mime))
    labelled(at.button, SEARCH).click()
    return at.run()


def visual_results(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if "\nsimilarity " in m.value]


def trained_classifier() -> Path:
    found = list_models()
    if not found:
        pytest.skip(f"no trained classifier in models/: `{'python classifier.py train --data fashion-mnist'}`")
    return found[0]

