"""Visual Search in a real browser: generated and interpolated strips fill whole rows (no 7 + 1 wrap)."""

from __future__ import annotations

from collections import Counter

import pytest
from playwright.sync_api import Page, expect

from lookalike.vae.catalogs import FURNITURE_DIR
from lookalike.vae.checkpoints import WEIGHTS_FILE, model_dir
from tests.e2e.e2e_steps import INDEX_TIMEOUT_MS, no_exception, open_tool, screenshot, wait_idle

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not (FURNITURE_DIR / "Reallusion.sh3f").is_file()
                       or not (model_dir("furniture") / WEIGHTS_FILE).is_file(),
                       reason="needs sweethome3d-furniture and models/vae-furniture"),
]


def row_lengths(page: Page, after_heading: str) -> list[int]:
    """How many images sit on each line under the section ``after_heading``, top to bottom."""
    tops = page.evaluate(
        """(title) => {
            const heading = [...document.querySelectorAll("h3")].find((h) => h.innerText.trim() === title);
            const images = [...document.querySelectorAll('[data-testid="stImage"] img')]
                .filter((img) => heading.compareDocumentPosition(img) & Node.DOCUMENT_POSITION_FOLLOWING);
            const next = [...document.querySelectorAll("h3")].find(
                (h) => heading.compareDocumentPosition(h) & Node.DOCUMENT_POSITION_FOLLOWING);
            return images
                .filter((img) => !next || img.compareDocumentPosition(next) & Node.DOCUMENT_POSITION_FOLLOWING)
                .map((img) => Math.round(img.getBoundingClientRect().top));
        }""",
        after_heading,
    )
    counts = Counter(tops)
    return [counts[top] for top in sorted(counts)]


def test_generate_and_interpolate_fill_whole_rows(page: Page, app_server: str):
    open_tool(page, app_server, "Visual Search (VAE)", "Visual Search (VAE)")
    page.get_by_test_id("stMain").get_by_text("Sweet Home 3D furniture").click()
    wait_idle(page, timeout=INDEX_TIMEOUT_MS)
    page.get_by_role("button", name="Generate", exact=True).click()
    wait_idle(page)
    page.get_by_role("button", name="Interpolate", exact=True).click()
    wait_idle(page)
    no_exception(page)
    expect(page.get_by_test_id("stImage").locator("img")).to_have_count(16)  # 8 generated, 8 interpolated
    assert row_lengths(page, "Generate") == [8]
    assert row_lengths(page, "Interpolate between two items") == [8]
    screenshot(page, "visual-search-rows")
