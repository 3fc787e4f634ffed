"""Style Search in a real browser, what a person sees: the query star on top of the map's thumbnails, and
"Use this style" opening the transfer tab with that painting selected."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.e2e_steps import ARTIFACTS, no_exception, screenshot, upload, wait_idle
from tests.e2e.test_style_search_browser import QUERY, SEARCH, open_style_search, result_card

pytestmark = pytest.mark.e2e

STAR_RGB = (230, 57, 70)  # lookalike.ui.maps.STAR's colour, #e63946
TRANSFER_TAB = "Apply a style to your photo"


@pytest.fixture(scope="module")
def searched(browser, browser_context_args, app_server, copy_paintings) -> tuple[Page, Path]:
    """Style Search on six paintings, after a search with one of them (its star lands on its own thumbnail)."""
    folder = copy_paintings([0, 1, 2, 16, 17, 18], name="choices")
    context: BrowserContext = browser.new_context(**browser_context_args)
    page = context.new_page()
    open_style_search(page, app_server, folder)
    painting = sorted(folder.glob("*.jpg"))[1]
    upload(page, QUERY, str(painting))
    page.get_by_role("button", name=SEARCH).click()
    wait_idle(page)
    no_exception(page)
    yield page, painting
    context.close()


PAINTED_AFTER_EVERY_IMAGE = """(star) => {
    const svg = star.ownerSVGElement;
    const images = [...svg.querySelectorAll("image")];
    return images.length > 0 && images.every(
        (image) => image.compareDocumentPosition(star) & Node.DOCUMENT_POSITION_FOLLOWING);
}"""


def test_the_query_star_is_drawn_above_the_thumbnails(searched):
    page, _ = searched
    chart = page.get_by_test_id("stPlotlyChart")
    expect(chart.locator("image")).to_have_count(6)  # the thumbnails are drawn
    chart.scroll_into_view_if_needed()
    page.mouse.move(0, 0)  # no hover label over the star
    star = chart.locator('path.point[style*="fill: rgb({}, {}, {})"]'.format(*STAR_RGB))
    expect(star).to_have_count(1)
    # SVG paints in document order: the star comes after every thumbnail in the same drawing.
    assert star.evaluate(PAINTED_AFTER_EVERY_IMAGE)
    box = star.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    shot = page.screenshot(clip={"x": x - 2, "y": y - 2, "width": 5, "height": 5})
    pixels = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB"), dtype=int).reshape(-1, 3)
    chart.screenshot(path=str(ARTIFACTS / "style-map-star.png"))
    # What a person sees in the middle of the star is the star's colour.
    assert np.abs(pixels - np.array(STAR_RGB)).max(axis=1).min() <= 12, pixels.tolist()


def test_use_this_style_opens_the_transfer_tab_with_the_painting(searched):
    page, painting = searched
    result_card(page, 1).get_by_role("button", name="Use this style").click()
    wait_idle(page)
    no_exception(page)
    expect(page.get_by_role("tab", name=TRANSFER_TAB)).to_have_attribute("aria-selected", "true")
    panel = page.get_by_role("tabpanel")
    expect(panel.get_by_role("radio", name="The chosen search result")).to_be_checked()
    expect(panel.get_by_test_id("stImage").filter(has_text=painting.stem.replace("_", " "))).to_be_visible()
    screenshot(page, "style-transfer-preset")
