"""Style Search in a real browser: index a folder, search it, survive bad uploads, serve four users at once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

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
from tests.paths import CLOTHING, PAINTINGS

pytestmark = pytest.mark.e2e

SEARCH = "Search for Similar Images"
QUERY = "Upload a reference image"
CAPTION = re.compile(r"^#(\d+) · similarity (-?\d\.\d{3})$")


def open_style_search(page: Page, base_url: str, folder: Path = PAINTINGS) -> None:
    """Home -> Style Search -> "Another folder…" pointed at ``folder``; waits for the index."""
    open_tool(page, base_url, "Style Search", "Style Search")
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_text("Another folder…").click()
    box = sidebar.get_by_label("Folder to index")
    box.fill(str(folder))
    box.press("Enter")
    count = len(list(folder.glob("*.jpg")))
    expect(sidebar.get_by_text(re.compile(rf"^{count} images indexed"))).to_be_visible(timeout=INDEX_TIMEOUT_MS)
    wait_idle(page)
    expect(page.get_by_role("button", name=SEARCH)).to_be_visible()


def search_tab(page: Page):
    """The "Search by style" tab (the style-transfer tab beside it has images of its own)."""
    return page.get_by_test_id("stTabPanel").filter(has=page.get_by_role("button", name=SEARCH))


def result_captions(page: Page) -> list[str]:
    """The captions under the result thumbnails, in rank order."""
    texts = [t.strip() for t in search_tab(page).get_by_test_id("stImage").all_inner_texts()]
    found = [t for t in texts if CAPTION.match(t)]
    return sorted(found, key=lambda t: int(CAPTION.match(t).group(1)))


def result_card(page: Page, rank: int):
    """The bordered card of one result: its thumbnail, score, caption and button."""
    others = re.compile(rf"#(?!{rank} )\d+ · similarity")
    blocks = search_tab(page).get_by_test_id("stVerticalBlock")
    return blocks.filter(has_text=f"#{rank} · similarity").filter(has_not_text=others).last


def reference_src(page: Page) -> str | None:
    reference = search_tab(page).get_by_test_id("stImage").filter(has_text="Your reference image").locator("img")
    return reference.get_attribute("src") if reference.count() else None


def search(page: Page) -> None:
    page.get_by_role("button", name=SEARCH).click()
    wait_idle(page)


def check_results(page: Page, painting: Path, k: int = 6) -> list[float]:
    """What a person checks: k results plus the reference, ranks 1..k, scores falling, the painting itself first."""
    main = search_tab(page)
    expect(main.get_by_role("heading", name=f"{k} most similar in style")).to_be_visible()
    expect(main.get_by_test_id("stImage").locator("img")).to_have_count(k + 1)  # k results + the reference
    expect(main.get_by_text("Your reference image")).to_be_visible()
    captions = result_captions(page)
    assert [int(CAPTION.match(c).group(1)) for c in captions] == list(range(1, k + 1)), captions
    scores = [float(CAPTION.match(c).group(2)) for c in captions]
    assert scores == sorted(scores, reverse=True), scores
    assert all(-1.0 <= s <= 1.0 for s in scores), scores
    # The uploaded painting is in the collection: it must come first, with a similarity of 1.
    assert scores[0] >= 0.999, scores
    expect(result_card(page, 1)).to_contain_text(painting.stem.replace("_", " "))
    return scores


def check_style_map(page: Page) -> None:
    chart = page.get_by_test_id("stPlotlyChart")
    expect(chart).to_have_count(1)
    expect(chart).to_contain_text("Style map of 32 images")
    expect(chart).to_contain_text("your image")  # the query's star on the map


def random_weights_warning(page: Page):
    return page.get_by_test_id("stAlertContentWarning").filter(has_text="random weights").first


# ---------------------------------------------------------------------------------------------
# One person, one page
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def style_page(browser, browser_context_args, app_server) -> Page:
    """A Style Search page with the 32 paintings indexed, kept open for this module's tests."""
    context: BrowserContext = browser.new_context(**browser_context_args)
    page = context.new_page()
    open_style_search(page, app_server)
    yield page
    context.close()


def test_search_shows_ranked_paintings_and_style_map(style_page: Page):
    page = style_page
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_text("files skipped")).to_have_count(0)  # 32 good paintings: nothing skipped
    expect(page.get_by_test_id("stPlotlyChart")).to_have_count(1)  # the map is there before any search
    painting = PAINTINGS / "s_cubism-03.jpg"
    upload(page, QUERY, str(painting))
    search(page)
    no_exception(page)
    check_results(page, painting)
    check_style_map(page)
    expect(random_weights_warning(page)).to_be_visible()
    screenshot(page, "style-search-results")

    # Fewer results on request: the slider changes the grid without a new upload.
    slider = page.get_by_test_id("stSlider").filter(has_text="Number of results").get_by_role("slider")
    slider.focus()
    for _ in range(3):
        slider.press("ArrowLeft")
    wait_idle(page)
    check_results(page, painting, k=3)


def test_every_bad_input_gives_a_result_or_one_message(style_page: Page):
    """The 13 odd and broken files, one after another in the same page; the page survives each."""
    page = style_page
    for item in bad_inputs():
        before = reference_src(page)
        upload(page, QUERY, {"name": item.name, "mimeType": item.mime, "buffer": item.data})
        search(page)
        no_exception(page)
        errors = page.get_by_test_id("stAlertContentError")
        if item.usable:
            expect(errors, f"{item.name} should be usable").to_have_count(0)
            expect(page.get_by_text("Your reference image")).to_be_visible()
            assert reference_src(page) not in (None, before), f"{item.name}: the results were not refreshed"
            assert len(result_captions(page)) >= 1, item.name
        else:
            expect(errors, f"{item.name} should give one message").to_have_count(1)
            expect(errors).to_contain_text("This upload can't be used")
            # No stale results under the message: they would look like results for the bad file.
            expect(page.get_by_text("Your reference image")).to_have_count(0)
            if item.name == "bomb.png":
                screenshot(page, "style-search-bad-input")
    # Above the upload limit of .streamlit/config.toml: the browser refuses the file with a message.
    too_big = {"name": "huge.png", "mimeType": "image/png", "buffer": b"\x89PNG" + bytes(26 * 1024 * 1024)}
    uploader(page, QUERY).locator('input[type="file"]').set_input_files(too_big)
    expect(uploader(page, QUERY)).to_contain_text(re.compile(r"must be 25(\.0)?\s?MB or smaller"))
    wait_idle(page)
    no_exception(page)
    screenshot(page, "style-search-too-big")
    # Still usable: a real painting afterwards gives normal results.
    painting = PAINTINGS / "s_impressionist-07.jpg"
    upload(page, QUERY, str(painting))
    search(page)
    no_exception(page)
    expect(page.get_by_test_id("stAlertContentError")).to_have_count(0)
    assert result_captions(page), "no results after the bad inputs"
    expect(result_card(page, 1)).to_contain_text("s impressionist-07")


# ---------------------------------------------------------------------------------------------
# Four people at once
# ---------------------------------------------------------------------------------------------


def vgg19_loads(page: Page) -> int:
    """VGG19 loads so far in the server process, from the diagnostics line (LOOKALIKE_DIAGNOSTICS=1)."""
    readout = page.get_by_test_id("stSidebar").get_by_text(re.compile(r"model loads:"))
    return int(re.search(r"vgg19=(\d+)", readout.inner_text()).group(1))


def check_one_model_per_process(pages: list[Page], loads: int) -> None:
    """The server's diagnostics line: every session sees one process, and no VGG19 loads beyond ``loads`` (the
    style model, once; an earlier test's style transfer loads its own)."""
    pids = set()
    for page in pages:  # the line is drawn after each run, so it already counts the searches
        readout = page.get_by_test_id("stSidebar").get_by_text(re.compile(r"model loads:"))
        expect(readout).to_contain_text(re.compile(rf"model loads: (.*, )?vgg19={loads}(,|\s|$)"))
        pids.add(re.search(r"pid (\d+)", readout.inner_text()).group(1))
    assert len(pids) == 1, pids


def test_four_users_search_at_the_same_time(browser, browser_context_args, app_server):
    """Four sessions send their searches together; each gets its own painting first, nothing mixed up."""
    paintings = [PAINTINGS / name for name in
                 ("s_cubism-05.jpg", "s_impressionist-02.jpg", "s_cubism-14.jpg", "s_impressionist-11.jpg")]
    contexts = [browser.new_context(**browser_context_args) for _ in paintings]
    pages = [context.new_page() for context in contexts]
    try:
        loads = 0
        for page, painting in zip(pages, paintings, strict=True):
            open_style_search(page, app_server)
            upload(page, QUERY, str(painting))
            loads = loads or vgg19_loads(page)  # after the first page: the style model is loaded, once
        for page in pages:  # all four clicks go out before any result is awaited
            page.get_by_role("button", name=SEARCH).click()
        for number, (page, painting) in enumerate(zip(pages, paintings, strict=True), start=1):
            wait_idle(page)
            no_exception(page)
            check_results(page, painting)
            screenshot(page, f"style-search-user-{number}")
        check_one_model_per_process(pages, loads)
    except Exception:  # not pytest's own outcomes (xfail), which are no failures
        for number, page in enumerate(pages, start=1):
            screenshot(page, f"failed-style-search-user-{number}")
        raise
    finally:
        for context in contexts:
            context.close()


# ---------------------------------------------------------------------------------------------
# A long style transfer next to a search
# ---------------------------------------------------------------------------------------------

PHOTO = CLOTHING / "test" / "hat"


def test_long_style_transfer_does_not_block_another_users_search(browser, browser_context_args, app_server):
    """User A paints a photo (300 steps, minutes of work); meanwhile user B searches and gets results."""
    transfer_context = browser.new_context(**browser_context_args)
    search_context = browser.new_context(**browser_context_args)
    painter, searcher = transfer_context.new_page(), search_context.new_page()
    try:
        painting = PAINTINGS / "s_impressionist-09.jpg"
        open_style_search(searcher, app_server)
        upload(searcher, QUERY, str(painting))

        open_style_search(painter, app_server)
        painter.get_by_role("tab", name="Apply a style to your photo").click()
        painter.get_by_text("The collection", exact=True).click()  # the style: a painting of the collection
        wait_idle(painter)
        expect(painter.get_by_test_id("stSelectbox").filter(has_text="Painting")).to_be_visible()
        upload(painter, "Your photo", str(sorted(PHOTO.glob("*.jpg"))[0]))
        painter.get_by_text("Options", exact=True).click()
        steps = painter.get_by_test_id("stSlider").filter(has_text="Steps").get_by_role("slider")
        steps.focus()
        steps.press("End")
        expect(painter.get_by_test_id("stSlider").filter(has_text="Steps")).to_contain_text("300")
        wait_idle(painter)
        painter.get_by_role("button", name="Apply style").click()
        running = painter.get_by_text(re.compile(r"Step \d+ of 300"))
        expect(running).to_be_visible()

        searcher.get_by_role("button", name=SEARCH).click()
        wait_idle(searcher)
        no_exception(searcher)
        check_results(searcher, painting)
        # The transfer is still going: the search did not wait for it.
        expect(running).to_be_visible()
        expect(painter.get_by_text(re.compile(r"Done in \d+ s"))).to_have_count(0)
        expect(painter.locator('[data-testid="stApp"][data-test-script-state="running"]')).to_be_attached()
        screenshot(painter, "style-transfer-running")
        screenshot(searcher, "style-search-during-transfer")
    except Exception:  # not pytest's own outcomes (xfail), which are no failures
        screenshot(painter, "failed-style-transfer-painter")
        screenshot(searcher, "failed-style-transfer-searcher")
        raise
    finally:
        transfer_context.close()  # leaving the page stops the transfer at its next step
        search_context.close()
