"""The `srgan serve` page end to end in headless Chromium: upload through the file input, see the result.

Needs Debian's `chromium` and Playwright's Python package (`.ci/install-browser` installs both); skips
with the reason when either is missing. The screenshot lands in `test-artifacts/` for a human to look at.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("fastapi", reason='srgan serve needs its extra: pip install "srgan[serve]"')
pytest.importorskip("httpx", reason='the serve tests need httpx: pip install "srgan[test]"')
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright's Python package is missing (run .ci/install-browser)"
)

from test_serve_api import running_server

CHROMIUM = Path(os.environ.get("SRGAN_CHROMIUM", "/usr/bin/chromium"))
# Offline, quiet, container-friendly headless Chromium.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
SAMPLE = Path(__file__).resolve().parents[1] / "src" / "srgan" / "assets" / "samples" / "coffee.png"
SCALE = 3
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set SRGAN_CHROMIUM)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("serve-browser") / "server.log", "--model", "bicubic") as base_url:
        yield base_url


# Records, at every change of the page's state, whether the Download link can be seen and clicked.
WATCH_DOWNLOAD = """() => {
  window.downloadSeen = [];
  const link = document.getElementById("download-link");
  const note = () => window.downloadSeen.push([document.body.dataset.state, link.checkVisibility(), link.href]);
  new MutationObserver(note).observe(document.body, { attributes: true, attributeFilter: ["data-state"] });
}"""


def upscale_and_watch_download(page) -> list:
    """Press Upscale, wait for the result; the (state, Download visible, its href) seen on the way."""
    page.evaluate(WATCH_DOWNLOAD)
    page.click("#upscale-button")
    page.wait_for_selector("body[data-state='done']", timeout=TIMEOUT_MS)
    return page.evaluate("window.downloadSeen")


def test_page_upscales_an_uploaded_image(browser, server, tmp_path):
    source = tmp_path / "coffee-small.png"
    with Image.open(SAMPLE) as photo:
        photo.reduce(4).save(source)  # 150 x 100: quick to upscale, still a recognisable photo
    width, height = Image.open(source).size

    page = browser.new_page(viewport={"width": 1200, "height": 900}, accept_downloads=True)
    blocked = []
    # Everything the page loads must come from the server itself (or be the local preview of the upload).
    local = (server, f"blob:{server}")
    page.on("request", lambda request: None if request.url.startswith(local) else blocked.append(request.url))
    page.goto(server)
    page.wait_for_selector("#model-select:not([disabled])", timeout=TIMEOUT_MS)
    page.set_input_files("#file-input", str(source))
    assert page.is_visible("#viewer") and not page.is_visible("#download-link")  # nothing to download yet
    page.select_option("#scale-select", str(SCALE))
    seen = upscale_and_watch_download(page)

    natural_size = page.eval_on_selector("#result-image", "image => [image.naturalWidth, image.naturalHeight]")
    assert natural_size == [width * SCALE, height * SCALE]
    assert [state for state, _, _ in seen][-1] == "done" and len(seen) >= 3  # uploading, queued/running, done
    assert all(not visible for state, visible, _ in seen if state != "done"), seen
    assert page.is_visible("#download-link")
    with page.expect_download(timeout=TIMEOUT_MS) as download:
        page.click("#download-link")
    assert download.value.suggested_filename == f"coffee-small_bicubic_x{SCALE}.png"
    saved = tmp_path / "downloaded.png"
    download.value.save_as(saved)
    assert Image.open(saved).size == (width * SCALE, height * SCALE)
    assert "Done" in page.inner_text("#status-text")

    # A second run (another scale): the first result is not offered while the new one is being made.
    first_result = page.get_attribute("#download-link", "href")
    page.select_option("#scale-select", "2")
    seen = upscale_and_watch_download(page)
    assert all(not visible for state, visible, _ in seen if state != "done"), seen
    assert page.get_attribute("#download-link", "href") != first_result
    with page.expect_download(timeout=TIMEOUT_MS) as download:
        page.click("#download-link")
    assert download.value.suggested_filename == "coffee-small_bicubic_x2.png"
    assert blocked == []

    page.fill("#compare-slider", "35")  # move the divider off-centre so both halves show in the screenshot
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "serve-page.png"), full_page=True)
    page.close()
