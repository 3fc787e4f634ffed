"""Visual Search (VAE) in a real browser: upload a photo, get the closest catalog items, see the latent map."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.apptest import trained_vae_catalog
from tests.bad_images import bad_inputs
from tests.e2e.e2e_steps import (
    INDEX_TIMEOUT_MS,
    no_exception,
    open_tool,
    screenshot,
    upload,
    uploader,
    wait_idle,
)
from tests.paths import CLOTHING as CLOTHING_DATASET

pytestmark = pytest.mark.e2e

CLOTHING = CLOTHING_DATASET / "test"
SEARCH = "Search for Similar Images"
RESULT = re.compile(r"^(\d+)\. (.+)\s+similarity (-?\d\.\d{3})$", re.S)
CATALOG_LABELS = {
    "fashion-mnist": "Fashion-MNIST clothes",
    "furniture": "Sweet Home 3D furniture",
}


def trained_catalog() -> str:
    """A catalog whose VAE is trained (the page needs one); Fashion-MNIST first, since the photos are clothes."""
    return trained_vae_catalog()


def results(page: Page) -> list[tuple[int, str, float]]:
    found = []
    for text in page.get_by_test_id("stMain").get_by_test_id("stMarkdown").all_inner_texts():
        match = RESULT.match(text.strip())
        if match:
            found.append((int(match.group(1)), match.group(2).strip(), float(match.group(3))))
    return found


def test_visual_search_returns_ranked_catalog_items(page: Page, app_server: str):
    dataset = trained_catalog()
    open_tool(page, app_server, "Visual Search (VAE)", "Visual Search (VAE)")
    page.get_by_test_id("stMain").get_by_text(CATALOG_LABELS[dataset]).click()
    wait_idle(page)
    expect(uploader(page, "Upload a photo")).to_be_visible(timeout=INDEX_TIMEOUT_MS)  # catalog encoded
    wait_idle(page)
    photo = sorted((CLOTHING / "shoes").glob("*.jpg"))[0]
    upload(page, "Upload a photo", str(photo))
    page.get_by_role("button", name=SEARCH).click()
    wait_idle(page)
    no_exception(page)
    main = page.get_by_test_id("stMain")
    expect(main.get_by_role("heading", name="Most similar catalog items")).to_be_visible()
    expect(main.get_by_role("heading", name="What the model sees")).to_be_visible()
    expect(main.get_by_text("your upload", exact=True)).to_be_visible()
    expect(main.get_by_text("its reconstruction (decoded z_mean)")).to_be_visible()
    found = results(page)
    assert [rank for rank, _, _ in found] == list(range(1, 11)), found  # k = 10 by default
    scores = [score for _, _, score in found]
    assert scores == sorted(scores, reverse=True) and all(-1 <= s <= 1 for s in scores), scores
    assert all(name for _, name, _ in found)
    # 10 result thumbnails, plus the query panels above them.
    assert main.get_by_test_id("stImage").locator("img").count() >= 10 + 2

    page.get_by_text("Show the latent map").click()
    wait_idle(page, timeout=INDEX_TIMEOUT_MS)  # t-SNE of the catalog, once per model (then cached on disk)
    chart = page.get_by_test_id("stPlotlyChart")
    expect(chart).to_have_count(1)
    expect(chart).to_contain_text("your query")
    no_exception(page)
    screenshot(page, "visual-search-results")

    # A broken upload afterwards: one message, no traceback; then a good photo works again.
    truncated = next(item for item in bad_inputs() if item.name == "truncated.jpg")
    upload(page, "Upload a photo", {"name": truncated.name, "mimeType": truncated.mime, "buffer": truncated.data})
    page.get_by_role("button", name=SEARCH).click()
    wait_idle(page)
    no_exception(page)
    errors = page.get_by_test_id("stAlertContentError")
    expect(errors).to_have_count(1)
    expect(errors).to_contain_text("This upload can't be used")
    upload(page, "Upload a photo", str(sorted((CLOTHING / "dress").glob("*.jpg"))[0]))
    page.get_by_role("button", name=SEARCH).click()
    wait_idle(page)
    no_exception(page)
    expect(page.get_by_test_id("stAlertContentError")).to_have_count(0)
    assert len(results(page)) == 10
