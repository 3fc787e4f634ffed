"""Steps a person takes in the browser, shared by the page tests."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# Generous: the CI machine has 2 cores and may be busy; model work on random weights takes seconds.
STEP_TIMEOUT_MS = 120_000
# Indexing a folder embeds every image once: about 15 s for 32 paintings on 2 idle cores, far more on busy ones.
INDEX_TIMEOUT_MS = 360_000


def wait_idle(page: Page, timeout: float | None = None) -> None:
    """Wait until the script run triggered by the last action has finished."""
    # The state attribute can lag a click by a moment; give the run a chance to start first.
    page.wait_for_timeout(300)
    idle = page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]')
    expect(idle).to_be_attached(timeout=timeout)


def open_tool(page: Page, base_url: str, link: str, heading: str) -> None:
    """Open the home page, then the tool from the navigation in the sidebar."""
    page.set_default_timeout(STEP_TIMEOUT_MS)  # clicks wait for enabled buttons as long as expect() waits
    page.goto(base_url)
    expect(page.get_by_role("heading", name="Lookalike")).to_be_visible()
    page.get_by_role("link", name=link).click()
    expect(page.get_by_role("heading", name=heading)).to_be_visible()


def uploader(page: Page, label: str):
    """The file uploader with this label (a page may hold several)."""
    return page.get_by_test_id("stFileUploader").filter(has=page.get_by_test_id("stWidgetLabel").get_by_text(label))


def clear_uploads(page: Page, label: str) -> None:
    """Remove every file the uploader ``label`` holds, one chip at a time."""
    chips = uploader(page, label).get_by_test_id("stFileChipDeleteBtn")
    while chips.count():
        before = chips.count()
        chips.first.click()
        expect(chips).to_have_count(before - 1)
        wait_idle(page)


def upload(page: Page, label: str, files, replace: bool = True) -> None:
    """Give the uploader ``label`` a file or a list of files (paths, or dicts with name, mimeType and buffer);
    wait until sent. An uploader that takes several files adds to what it holds, so unless ``replace`` is False
    its earlier files are removed first, as a person choosing a new image would.

    A click while the upload is still running is lost, so wait for each file's chip, the end of the
    upload spinner and the end of the script run that the upload starts.
    """
    box = uploader(page, label)
    field = box.locator('input[type="file"]')
    if replace and field.get_attribute("multiple") is not None:
        clear_uploads(page, label)
    field.set_input_files(files)
    for item in files if isinstance(files, list) else [files]:
        name = item["name"] if isinstance(item, dict) else Path(item).name
        expect(box.locator(f'[data-testid="stFileChipName"][title="{name}"]')).to_have_count(1)
    expect(page.get_by_test_id("stFileChipIconSpinner")).to_have_count(0)
    wait_idle(page)


def no_exception(page: Page) -> None:
    expect(page.get_by_test_id("stException")).to_have_count(0)


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
