"""`emopillars demo` in a real headless browser: Debian's Chromium driven by Playwright's Python API.

The browser comes from the system package (`apt-get install chromium`, done by scripts/install.sh);
Playwright's own browser download is never used. A missing browser fails the test, it does not skip.
Screenshots of both tabs land in test-artifacts/ (ignored by git).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("EMOPILLARS_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TIMEOUT_MS = 120_000  # a page event runs the model and Integrated Gradients on a busy 2-core CPU


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_demo(*args: str) -> tuple[subprocess.Popen, str]:
    """`emopillars demo ARGS` on a free port; returns the process and its URL once it answers."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "emopillars.cli", "demo", *args, "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"demo exited with {proc.returncode}:\n{proc.stdout.read()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return proc, url
        except OSError:
            time.sleep(1)
    proc.kill()
    raise AssertionError(f"demo did not answer on {url} within 180 s")


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


@pytest.fixture(scope="module")
def demo_url(planted_model: Path, run_dir: Path) -> Iterator[str]:
    proc, url = start_demo("--model", str(planted_model), "--data", str(run_dir))
    yield url
    proc.terminate()
    proc.wait(timeout=30)


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


def check_corpus(page, url: str, not_a_run: Path) -> None:
    """Switch to the corpus tab, filter by mode and expressiveness, read the cards; a bad folder is a message."""
    from playwright.sync_api import expect

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
    page.locator("#run-folder textarea").fill(str(not_a_run))
    page.get_by_role("button", name="Load").click()
    expect(count).to_contain_text("not a synth output folder", timeout=TIMEOUT_MS)


def test_classify_and_browse_in_a_browser(browser, demo_url: str, tmp_path: Path) -> None:
    SHOTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    check_classify(page, demo_url)
    check_corpus(page, demo_url, tmp_path)
    assert (SHOTS / "demo-classify.png").stat().st_size > 10_000
    assert (SHOTS / "demo-corpus.png").stat().st_size > 10_000


def test_a_folder_that_is_not_a_model_is_a_message_on_the_page(browser, tmp_path: Path, run_dir: Path) -> None:
    proc, url = start_demo("--model", str(tmp_path), "--data", str(run_dir))
    try:
        page = browser.new_page()
        page.goto(url)
        page.locator("#text textarea").fill("hello there")
        page.get_by_role("button", name="Classify").click()
        from playwright.sync_api import expect

        expect(page.locator("#classify-message")).to_contain_text("model folder not found", timeout=TIMEOUT_MS)
        assert "Traceback" not in page.content()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
