"""Fashion Classifier in a real browser: upload a garment photo, read its class, probabilities and map."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from lookalike.classifier.storage import on_random_weights, read_metadata
from tests.apptest import trained_classifier
from tests.bad_images import bad_inputs
from tests.e2e.e2e_steps import INDEX_TIMEOUT_MS, no_exception, open_tool, screenshot, upload, wait_idle
from tests.paths import CLOTHING as CLOTHING_DATASET

pytestmark = pytest.mark.e2e

CLOTHING = CLOTHING_DATASET / "test"
CHOOSE = "Choose an image"
HEADLINE = re.compile(r"^(.+?)\s+·\s+(\d{1,3}\.\d)%$")
PERCENT = re.compile(r"(\d{1,3}\.\d)%")


def trained_classes() -> list[str]:
    return list(read_metadata(trained_classifier())["classes"])


def test_classifier_shows_class_probabilities_and_map(page: Page, app_server: str):
    classes = trained_classes()
    open_tool(page, app_server, "Fashion Classifier", "Fashion Classifier")
    photo = sorted((CLOTHING / "t-shirt").glob("*.jpg"))[0]
    upload(page, CHOOSE, str(photo))  # the page classifies on upload: there is no button to click
    main = page.get_by_test_id("stMain")
    headline = main.get_by_role("heading").filter(has_text=HEADLINE)
    expect(headline).to_have_count(1, timeout=INDEX_TIMEOUT_MS)
    wait_idle(page, timeout=INDEX_TIMEOUT_MS)  # the embedding map is built once per model, then cached
    no_exception(page)
    name, percent = HEADLINE.match(headline.inner_text().strip()).groups()
    assert name in classes and 0 < float(percent) <= 100, (name, percent)
    expect(main.get_by_text("Your image", exact=True)).to_be_visible()
    expect(main.get_by_text("What the model sees", exact=True)).to_be_visible()
    banner = page.get_by_test_id("stAlertContentWarning").filter(has_text="random weights")
    if on_random_weights(read_metadata(trained_classifier())):
        expect(banner.first).to_be_visible()
    else:  # the shipped models are real, even when the app runs with LOOKALIKE_WEIGHTS=random
        expect(banner).to_have_count(0)
        expect(main.get_by_text(trained_classifier().name).first).to_be_visible()

    charts = page.get_by_test_id("stPlotlyChart")
    expect(charts).to_have_count(2, timeout=INDEX_TIMEOUT_MS)  # the probabilities, and the embedding map
    bars = charts.first
    for class_name in classes:
        expect(bars).to_contain_text(class_name)
    shares = [float(p) for p in PERCENT.findall(bars.inner_text())]
    assert len(shares) == len(classes) and abs(sum(shares) - 100) < 0.1 * len(classes), shares
    assert max(shares) == float(percent), (shares, percent)
    expect(charts.nth(1)).to_contain_text("your image")
    screenshot(page, "fashion-classifier-results")

    # A broken upload: one message, no prediction left on screen; then a good photo works again.
    broken = next(item for item in bad_inputs() if item.name == "notes.png")
    upload(page, CHOOSE, {"name": broken.name, "mimeType": broken.mime, "buffer": broken.data})
    no_exception(page)
    expect(page.get_by_test_id("stAlertContentError")).to_have_count(1)
    expect(page.get_by_test_id("stAlertContentError")).to_contain_text("This upload can't be used")
    expect(main.get_by_role("heading").filter(has_text=HEADLINE)).to_have_count(0)
    upload(page, CHOOSE, str(sorted((CLOTHING / "shoes").glob("*.jpg"))[0]))
    no_exception(page)
    expect(page.get_by_test_id("stAlertContentError")).to_have_count(0)
    expect(main.get_by_role("heading").filter(has_text=HEADLINE)).to_have_count(1)
