"""The web page in a real browser: Playwright drives Debian's Chromium against ``hcr app``.

Draws a "7" on the canvas with the mouse, checks the answer appears, uploads a sample image
through the file uploader, checks its answer, and saves screenshots as test artefacts
(``tests/artifacts/``, git-ignored, and ``$HCR_TEST_ARTIFACTS`` when set). With
``HCR_UPDATE_DOCS_SCREENSHOT=1`` the drawing screenshot also replaces
``docs/images/web-app.png``. Skipped only when ``/usr/bin/chromium`` is absent (``.ci/run``
installs it); Playwright's own browser download is never used.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
SAMPLE = ROOT / "samples" / "digit_3_paper.png"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed (apt-get install chromium; .ci/run does)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _artefact_dirs() -> list[Path]:
    dirs = [ROOT / "tests" / "artifacts"]
    if os.environ.get("HCR_TEST_ARTIFACTS"):
        dirs.append(Path(os.environ["HCR_TEST_ARTIFACTS"]))
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    return dirs


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``hcr app`` (headless, the digits model selected) on a free loopback port."""
    port = _free_port()
    log = tmp_path_factory.mktemp("app") / "streamlit.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1", HOME=str(log.parent))  # no ~/.streamlit of the user's
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "hcr.cli", "app", "--headless", "--port", str(port), "--model", "digits"],
                                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"hcr app did not start (exit code {proc.poll()}):\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_draw_and_upload_in_chromium(app_url: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    dirs = _artefact_dirs()
    expect.set_options(timeout=120_000)  # generous: the machine may be busy (the first run loads the models)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 960})
            page.set_default_timeout(120_000)
            page.goto(app_url)
            expect(page.get_by_text("The canvas is empty")).to_be_visible()

            # draw a "7": a top bar, then the diagonal down to the left, one stroke
            canvas = page.locator("canvas.upper-canvas").first
            expect(canvas).to_be_visible()
            box = canvas.bounding_box()
            assert box is not None
            x0, y0, side = box["x"], box["y"], box["width"]
            path = [(0.28, 0.22), (0.72, 0.22), (0.60, 0.45), (0.46, 0.80)]
            page.mouse.move(x0 + path[0][0] * side, y0 + path[0][1] * side)
            page.mouse.down()
            for fx, fy in path[1:]:
                page.mouse.move(x0 + fx * side, y0 + fy * side, steps=12)
            page.mouse.up()
            answer = page.locator("h4", has_text="Answer:").first
            expect(answer).to_be_visible()
            assert "Answer: 7" in answer.inner_text(), answer.inner_text()
            expect(page.get_by_text("What the model sees")).to_be_visible()
            expect(page.get_by_text("model input (28x28)")).to_be_visible()
            page.wait_for_timeout(1500)  # let the chart and stage images finish drawing
            drawing_png = page.screenshot(full_page=True)

            # upload a sample through the file uploader
            page.get_by_role("tab", name="Upload images").click()
            page.locator("input[type=file]").first.set_input_files(str(SAMPLE))
            expect(page.get_by_role("heading", name=SAMPLE.name)).to_be_visible()
            uploaded = page.locator("h4", has_text="Answer: 3")
            expect(uploaded).to_be_visible()
            page.wait_for_timeout(1500)
            upload_png = page.screenshot(full_page=True)
        finally:
            browser.close()
    for d in dirs:
        (d / "web-app-draw.png").write_bytes(drawing_png)
        (d / "web-app-upload.png").write_bytes(upload_png)
    if os.environ.get("HCR_UPDATE_DOCS_SCREENSHOT"):
        target = ROOT / "docs" / "images" / "web-app.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(dirs[0] / "web-app-draw.png", target)
