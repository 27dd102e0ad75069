"""`emopillars demo` in a real headless browser: Debian's Chromium driven by Playwright's Python API.

The page is locked to what it was started with (`locked_demo`): a path typed into its lists is not taken;
`open_demo` (--allow-paths) takes it. The browser comes from the system package (`apt-get install chromium`,
done by scripts/install.sh); Playwright's own browser download is never used. A missing browser fails the
test, it does not skip. Screenshots of both tabs land in test-artifacts/ (ignored by git).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Demo

pytestmark = pytest.mark.slow  # starts demo servers
CHROMIUM = Path(os.environ.get("EMOPILLARS_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TIMEOUT_MS = 120_000  # a page event runs the model and Integrated Gradients on a busy 2-core CPU


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} not found: install Debian's chromium (scripts/install.sh runs apt-get install chromium)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


def check_classify(page, url: str) -> None:
    """Type a sentence, press the button, read the labels and attributions back; an empty text is a message."""
    from playwright.sync_api import expect

    page.goto(url)
    page.locator("#text textarea").fill("the old man fed zorblax the ducks")
    page.get_by_role("button", name="Classify").click()
    expect(page.locator("#predicted-labels textarea")).to_have_value("surprise", timeout=TIMEOUT_MS)
    expect(page.locator("#attributions")).to_contain_text("zorblax", timeout=TIMEOUT_MS)
    expect(page.get_by_text("word attributions for surprise")).to_be_visible()
    page.screenshot(path=str(SHOTS / "demo-classify.png"), full_page=True)
    page.locator("#text textarea").fill("   ")
    page.get_by_role("button", name="Classify").click()
    expect(page.locator("#classify-message")).to_contain_text("type a sentence to classify", timeout=TIMEOUT_MS)


def check_corpus(page, url: str, runs: tuple[Path, Path], not_a_run: Path) -> None:
    """Switch to the corpus tab, filter by mode and expressiveness, read the cards; a typed path is not taken,
    the other offered run is."""
    from playwright.sync_api import expect

    first_run, second_run = runs
    page.goto(url)
    page.get_by_role("tab", name="Corpus").click()
    count = page.locator("#corpus-count")
    expect(count).to_contain_text("5 of 5 examples match", timeout=TIMEOUT_MS)
    expect(page.locator("#fidelity")).to_contain_text("target_recognition.macro")
    page.locator("#mode-filter").get_by_label("contextual", exact=True).check()
    expect(count).to_contain_text("3 of 5 examples match", timeout=TIMEOUT_MS)
    page.locator("#expressiveness-filter").get_by_label("subtle", exact=True).check()
    expect(count).to_contain_text("1 of 5 examples match", timeout=TIMEOUT_MS)
    cards = page.locator("#examples")
    expect(cards).to_contain_text("Who left this letter at my door?")
    expect(cards).to_contain_text("Wondering who came by.")  # the explication
    expect(cards).to_contain_text("The storm took the boat")  # the context
    expect(cards).not_to_contain_text("I keep seeing the boat go under.")
    page.screenshot(path=str(SHOTS / "demo-corpus.png"), full_page=True)
    run = page.locator("#run-folder input")  # a path typed into the run list is not taken: it reverts
    run.fill(str(not_a_run))
    run.press("Enter")
    count.click()
    expect(run).to_have_value(str(first_run))
    run.click()
    page.get_by_role("option", name=str(second_run)).click()  # the other run its owner offered
    page.get_by_role("button", name="Load").click()
    expect(count).to_contain_text("2 of 2 examples match", timeout=TIMEOUT_MS)


def test_classify_and_browse_in_a_browser(
    browser, locked_demo: Demo, run_dir: Path, second_run: Path, tmp_path: Path
) -> None:
    SHOTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    check_classify(page, locked_demo.url)
    check_corpus(page, locked_demo.url, (run_dir, second_run), tmp_path)
    assert (SHOTS / "demo-classify.png").stat().st_size > 10_000
    assert (SHOTS / "demo-corpus.png").stat().st_size > 10_000


def test_with_allow_paths_a_typed_folder_is_loaded(browser, open_demo: Demo, tmp_path: Path) -> None:
    """--allow-paths: the model list takes a typed path, and a folder that is not a model is a message."""
    from playwright.sync_api import expect

    page = browser.new_page()
    page.goto(open_demo.url)
    model = page.locator("#model input")
    model.fill(str(tmp_path))
    model.press("Enter")
    page.locator("#text textarea").fill("hello there")
    page.get_by_role("button", name="Classify").click()
    expect(page.locator("#classify-message")).to_contain_text("model folder not found", timeout=TIMEOUT_MS)
    assert "Traceback" not in page.content()
