"""Style Search in a real browser, what a person sees: the query star on top of the map's thumbnails,
"Use this style" opening the transfer tab with that painting selected, and a style-transfer result at its own size."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.e2e_steps import ARTIFACTS, no_exception, screenshot, upload, wait_idle
from tests.e2e.test_style_search_browser import QUERY, SEARCH, open_style_search, result_card
from tests.paths import CLOTHING

pytestmark = pytest.mark.e2e

STAR_RGB = (230, 57, 70)  # lookalike.ui.maps.STAR's colour, #e63946
TRANSFER_TAB = "Apply a style to your photo"


@pytest.fixture(scope="module")
def folder(copy_paintings) -> Path:
    return copy_paintings([0, 1, 2, 16, 17, 18], name="choices")


@pytest.fixture(scope="module")
def searched(browser, browser_context_args, app_server, folder: Path) -> tuple[Page, Path]:
    """Style Search on six paintings, after a search with one of them."""
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


@pytest.mark.slow  # runs a (short) style transfer
def test_the_transfer_result_keeps_its_own_size_with_the_download_beside_it(page: Page, app_server, folder: Path):
    open_style_search(page, app_server, folder)
    page.get_by_role("tab", name=TRANSFER_TAB).click()
    wait_idle(page)
    panel = page.get_by_role("tabpanel")
    upload(page, "Your photo", str(sorted((CLOTHING / "test" / "hat").glob("*.jpg"))[0]))
    panel.get_by_text("Options", exact=True).click()
    for name in ("Size (long side, px)", "Steps"):  # the smallest: 256 px, 10 steps
        slider = panel.get_by_test_id("stSlider").filter(has_text=name).get_by_role("slider")
        slider.focus()
        slider.press("Home")
        wait_idle(page)
    panel.get_by_role("button", name="Apply style").click()
    expect(panel.get_by_text(re.compile(r"Done in \d+ s"))).to_be_visible()
    wait_idle(page)
    no_exception(page)
    result = panel.get_by_test_id("stImage").filter(has_text="in the style of").locator("img")
    expect(result).to_have_count(1)
    natural, shown = result.evaluate("(img) => [img.naturalWidth, img.getBoundingClientRect().width]")
    assert natural == 256 or natural < 256 and result.evaluate("(img) => img.naturalHeight") == 256, natural
    assert abs(shown - natural) <= 1, (natural, shown)  # not stretched to the page's width
    download = panel.get_by_role("button", name="Download PNG")
    image_box, button_box = result.bounding_box(), download.bounding_box()
    assert button_box["x"] >= image_box["x"] + image_box["width"]  # beside the image, not under it
    assert button_box["y"] < image_box["y"] + image_box["height"]
    screenshot(page, "style-transfer-result")
