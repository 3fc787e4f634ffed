"""Style Search explains itself and lets people browse, in a real browser: why each result matched, the
fine-to-coarse slider (no model call), "More like this" and the breadcrumb, adding and removing a reference,
several uploads, and a click on the map."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.e2e_steps import no_exception, screenshot, upload, wait_idle
from tests.e2e.test_style_search_browser import QUERY, SEARCH, open_style_search, search, search_tab

pytestmark = pytest.mark.e2e

CAPTION = re.compile(r"^#(\d+) · similarity (-?\d\.\d{3})$")
CALLS = re.compile(r"inference calls: (.*)$")


@pytest.fixture(scope="module")
def eight(copy_paintings) -> Path:
    return copy_paintings([4, 5, 6, 7, 20, 21, 22, 23], "eight-in-the-browser")


@pytest.fixture(scope="module")
def page(browser, browser_context_args, app_server, eight) -> Page:
    context: BrowserContext = browser.new_context(**browser_context_args)
    page = context.new_page()
    open_style_search(page, app_server, eight)
    yield page
    context.close()


def cards(page: Page):
    """The result cards: the innermost blocks that hold a "why it matched" breakdown."""
    blocks = search_tab(page).get_by_test_id("stVerticalBlock")
    return blocks.filter(has=page.locator(".why-it-matched")).filter(has_not=page.get_by_test_id("stVerticalBlock"))


def card_name(card) -> str:
    return card.get_by_test_id("stMarkdown").get_by_test_id("stCaptionContainer").first.inner_text().strip()


def results(page: Page) -> list[tuple[int, float, str]]:
    """(rank, similarity, painting) of every result card, in rank order."""
    found = []
    for card in cards(page).all():
        caption = CAPTION.match(card.get_by_test_id("stImage").inner_text().strip())
        found.append((int(caption.group(1)), float(caption.group(2)), card_name(card)))
    return sorted(found)


def names(page: Page) -> list[str]:
    return [name for _, _, name in results(page)]


def layer_cosines(page: Page, layer: str) -> dict[str, float]:
    """Each shown painting's cosine on one layer, read from its "why it matched" bars."""
    return {card_name(card): float(card.locator(f'.why-layer[data-layer="{layer}"]').get_attribute("data-cosine"))
            for card in cards(page).all()}


def references(page: Page) -> list[str]:
    texts = [t.strip() for t in search_tab(page).get_by_test_id("stImage").all_inner_texts()]
    return [t for t in texts if t.startswith(("Your reference image", "Reference: "))]


def inference_calls(page: Page) -> str:
    line = page.get_by_test_id("stSidebar").get_by_text(re.compile(r"inference calls:")).inner_text()
    return CALLS.search(line).group(1)


def set_emphasis(page: Page, key: str) -> None:
    slider = page.get_by_test_id("stSlider").filter(has_text="Match on").get_by_role("slider")
    slider.focus()
    slider.press(key)
    wait_idle(page)


def test_why_it_matched_and_the_emphasis_re_ranks_without_the_model(page: Page, eight: Path):
    upload(page, QUERY, str(eight / "s_cubism-06.jpg"))
    k = page.get_by_test_id("stSlider").filter(has_text="Number of results").get_by_role("slider")
    k.focus()
    k.press("End")  # all 8 paintings, so a re-ranking can only reorder them
    wait_idle(page)
    search(page)
    expect(cards(page)).to_have_count(8)  # the run has drawn the results: read them once it is over
    wait_idle(page)
    no_exception(page)
    balanced = results(page)
    assert [rank for rank, _, _ in balanced] == list(range(1, 9)) and balanced[0][1:] == (1.0, "s cubism-06")
    expect(page.locator(".why-it-matched")).to_have_count(8)
    expect(page.locator(".why-it-matched").first).to_contain_text("colour & fine texture")
    expect(page.locator(".why-it-matched").first).to_contain_text("motifs & composition")
    cosines = {"Home": layer_cosines(page, "block1_conv1"), "End": layer_cosines(page, "block5_conv1")}
    screenshot(page, "style-explain-balanced")

    calls = inference_calls(page)
    orders = {}
    for key, words in (("Home", "fine only"), ("End", "coarse only")):
        set_emphasis(page, key)
        no_exception(page)
        expect(page.get_by_test_id("stSlider").filter(has_text="Match on")).to_contain_text(words)
        orders[key] = names(page)
        assert sorted(orders[key]) == sorted(name for _, _, name in balanced)
        # Ranked by that layer alone: in the order of the cosines its bars showed.
        shown = [cosines[key][name] for name in orders[key]]
        assert all(a >= b - 1e-4 for a, b in zip(shown, shown[1:], strict=False)), list(zip(orders[key], shown,
                                                                                             strict=True))
        assert results(page)[0][1] == 1.0  # the painting itself: similarity 1 at any emphasis
        screenshot(page, f"style-explain-{words.replace(' ', '-')}")
    assert [name for _, _, name in balanced] not in (orders["Home"], orders["End"]) or orders["Home"] != orders["End"]
    for _ in range(4):
        set_emphasis(page, "ArrowLeft")  # from coarse only back to balanced
    expect(page.get_by_test_id("stSlider").filter(has_text="Match on")).to_contain_text("balanced")
    assert results(page) == balanced
    assert inference_calls(page) == calls, "the slider ran the model"


def test_more_like_this_then_back(page: Page):
    before = results(page)
    third = before[2][2]
    calls = inference_calls(page)
    card = cards(page).filter(has_text=re.compile(r"#3 · similarity"))
    card.get_by_role("button", name="More like this").click()
    expect(search_tab(page).get_by_text(f"Reference: {third}", exact=True)).to_be_visible()
    wait_idle(page)
    no_exception(page)
    assert references(page) == [f"Reference: {third}"]
    assert results(page)[0][1:] == (1.0, third)
    expect(search_tab(page).get_by_text(third, exact=True).first).to_be_visible()
    screenshot(page, "style-explain-more-like-this")
    page.get_by_role("button", name="Back").click()
    expect(search_tab(page).get_by_text("Your reference image", exact=True)).to_be_visible()
    wait_idle(page)
    assert references(page) == ["Your reference image"]
    assert results(page) == before
    assert inference_calls(page) == calls


def test_add_a_second_reference_then_remove_it(page: Page):
    before = results(page)
    second = before[1][2]
    card = cards(page).filter(has_text=re.compile(r"#2 · similarity"))
    card.get_by_role("button", name="Add to query").click()
    expect(search_tab(page).get_by_text(f"Reference: {second}", exact=True)).to_be_visible()
    wait_idle(page)
    assert references(page) == ["Your reference image", f"Reference: {second}"]
    expect(search_tab(page).get_by_text("The query is the mean style of these 2 images.")).to_be_visible()
    expect(page.get_by_test_id("stPlotlyChart")).to_contain_text(second)  # a second star on the map
    screenshot(page, "style-explain-two-references")
    added = search_tab(page).get_by_test_id("stVerticalBlock").filter(has_text=f"Reference: {second}").filter(
        has_not=page.get_by_test_id("stVerticalBlock"))
    added.get_by_role("button", name="Remove").click()
    expect(search_tab(page).get_by_text(f"Reference: {second}", exact=True)).to_have_count(0)
    wait_idle(page)
    assert references(page) == ["Your reference image"]
    assert results(page) == before
    column = search_tab(page).get_by_test_id("stColumn").filter(has_text="Your reference image")
    expect(column.get_by_role("button", name="Remove")).to_have_count(0)


def test_several_uploads_make_one_query(page: Page, eight: Path):
    files = [str(eight / "s_cubism-05.jpg"), str(eight / "s_impressionist-05.jpg")]
    upload(page, QUERY, files)
    page.get_by_role("button", name=SEARCH).click()
    expect(search_tab(page).get_by_text("Your reference image 2", exact=True)).to_be_visible()
    wait_idle(page)
    no_exception(page)
    assert references(page) == ["Your reference image 1", "Your reference image 2"]
    expect(page.get_by_test_id("stAlertContentError")).to_have_count(0)


def point_on_map(page: Page, number: int) -> tuple[float, float, str]:
    """Where point ``number`` of the collection trace is on screen, and its hover text."""
    chart = page.get_by_test_id("stPlotlyChart")
    chart.scroll_into_view_if_needed()
    return tuple(chart.locator(".js-plotly-plot").evaluate(
        """(gd, number) => {
            const layout = gd._fullLayout, trace = gd._fullData[0], box = gd.getBoundingClientRect();
            return [box.left + layout._size.l + layout.xaxis.d2p(trace.x[number]),
                    box.top + layout._size.t + layout.yaxis.d2p(trace.y[number]), trace.text[number]];
        }""", number))


def test_click_a_painting_on_the_map_to_search_from_it(page: Page):
    chart = page.get_by_test_id("stPlotlyChart")
    expect(chart.locator("image")).to_have_count(8)  # the thumbnails, under the stars and rings
    expect(chart).to_contain_text("top 8")
    calls = inference_calls(page)
    clicked = []
    for number in (3, 6):
        x, y, name = point_on_map(page, number)
        clicked.append(name)
        page.mouse.move(x, y)
        page.mouse.click(x, y)
        expect(search_tab(page).get_by_text(f"Reference: {name}", exact=True)).to_be_visible()
        wait_idle(page)
        no_exception(page)
        assert results(page)[0][1:] == (1.0, name)
        expect(page.get_by_test_id("stPlotlyChart")).to_contain_text(name)  # its star
    assert inference_calls(page) == calls
    screenshot(page, "style-explain-map-click")
    first = clicked[0]
    page.get_by_role("button", name="Back").click()
    expect(search_tab(page).get_by_text(f"Reference: {first}", exact=True)).to_be_visible()
    wait_idle(page)
    assert references(page) == [f"Reference: {first}"]
