"""The web page in a real browser: Playwright drives Debian's Chromium against ``hcr app``.

Draws a "7" on the canvas with the mouse, checks the answer appears, uploads a sample image
through the file uploader, checks its answer, and saves screenshots as test artefacts
(``tests/artifacts/``, git-ignored, and ``$HCR_TEST_ARTIFACTS`` when set). At 1280 px and
at 1024 px wide windows with the sidebar open, the whole canvas must be visible: inside its
element container, its pane and the main area, and cut by no clipping ancestor (the canvas
component renders in the page, not in an iframe, in this Streamlit). With
``HCR_UPDATE_DOCS_SCREENSHOT=1`` the drawing screenshot also replaces
``docs/images/web-app.png``. Skipped only when ``/usr/bin/chromium`` is absent (``.ci/run``
installs it); Playwright's own browser download is never used.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


#: The canvas's box, what of it no clipping ancestor cuts off (walking up through shadow roots:
#: the component renders in a shadow DOM), its element container's and its pane's boxes,
#: the main area's, the sidebar's and the viewport's; each as [left, top, right, bottom].
_GEOMETRY_JS = """(canvas) => {
  const box = (e) => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  const up = (e) => e.parentElement || (e.getRootNode() instanceof ShadowRoot ? e.getRootNode().host : null);
  const out = {canvas: box(canvas), visible: box(canvas), container: null, pane: null,
               main: box(document.querySelector('[data-testid=stMain]')),
               sidebar: box(document.querySelector('[data-testid=stSidebar]')),
               viewport: [0, 0, window.innerWidth, window.innerHeight]};
  for (let e = up(canvas); e && e !== document.documentElement; e = up(e)) {
    const s = getComputedStyle(e);
    if (s.overflowX !== 'visible' || s.overflowY !== 'visible') {
      const b = box(e), v = out.visible;
      out.visible = [Math.max(v[0], b[0]), Math.max(v[1], b[1]), Math.min(v[2], b[2]), Math.min(v[3], b[3])];
    }
    if (!out.container && e.getAttribute('data-testid') === 'stElementContainer') out.container = box(e);
    if (!out.pane && e.classList.contains('st-key-canvas-pane')) out.pane = box(e);
  }
  return out;
}"""


def _inside(inner: list[float], outer: list[float], slack: float = 0.5) -> bool:
    return inner[0] >= outer[0] - slack and inner[1] >= outer[1] - slack and inner[2] <= outer[2] + slack and inner[3] <= outer[3] + slack


def _check_canvas_fits(page: Any) -> dict[str, list[float]]:
    """The whole canvas is on screen, right of the open sidebar, and nothing clips it."""
    geo = page.locator("canvas.upper-canvas").first.evaluate(_GEOMETRY_JS)
    canvas = geo["canvas"]
    assert canvas[2] - canvas[0] >= 279, geo  # CANVAS_SIDE (280) wide
    assert geo["sidebar"][2] - geo["sidebar"][0] > 100 and geo["sidebar"][2] <= canvas[0], geo  # the sidebar is open, beside it
    for name in ("container", "pane", "main", "viewport"):
        assert geo[name] is not None and _inside(canvas, geo[name]), (name, geo)
    assert all(abs(a - b) <= 0.5 for a, b in zip(geo["visible"], canvas)), geo  # no clipping ancestor cuts it
    return geo


def _draw_seven(page: Any) -> None:
    """Draw a "7" with the mouse (a top bar, then the diagonal down to the left, one stroke)
    and wait for its answer."""
    from playwright.sync_api import expect

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


@contextlib.contextmanager
def _app_page(url: str, width: int, height: int) -> Iterator[Any]:
    """The app in Debian's Chromium at a ``width`` x ``height`` window, once it has loaded
    (its empty canvas showing); timeouts are generous: the machine may be busy and the
    first run loads the models."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=120_000)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(120_000)
            page.goto(url)
            expect(page.get_by_text("The canvas is empty")).to_be_visible()
            yield page
        finally:
            browser.close()


def test_draw_and_upload_in_chromium(app_url: str) -> None:
    from playwright.sync_api import expect

    dirs = _artefact_dirs()
    with _app_page(app_url, 1280, 960) as page:
        _check_canvas_fits(page)
        _draw_seven(page)
        geo = _check_canvas_fits(page)
        answer = page.locator("h4", has_text="Answer:").first.bounding_box()
        assert answer is not None and answer["x"] >= geo["canvas"][2], (answer, geo)  # at 1280 px: beside the canvas
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
    for d in dirs:
        (d / "web-app-draw.png").write_bytes(drawing_png)
        (d / "web-app-upload.png").write_bytes(upload_png)
    if os.environ.get("HCR_UPDATE_DOCS_SCREENSHOT"):
        target = ROOT / "docs" / "images" / "web-app.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(dirs[0] / "web-app-draw.png", target)


def test_the_canvas_fits_a_1024_px_window_with_the_sidebar_open(app_url: str) -> None:
    from playwright.sync_api import expect

    dirs = _artefact_dirs()
    with _app_page(app_url, 1024, 800) as page:
        expect(page.get_by_test_id("stSidebar")).to_be_visible()
        _check_canvas_fits(page)
        _draw_seven(page)  # the strokes land on the canvas, all of it visible
        geo = _check_canvas_fits(page)
        answer = page.locator("h4", has_text="Answer:").first.bounding_box()
        assert answer is not None and answer["y"] >= geo["canvas"][3], (answer, geo)  # no room beside it: below
        page.locator("h4", has_text="Answer:").first.scroll_into_view_if_needed()  # (the main area scrolls, not the page)
        page.wait_for_timeout(1000)
        png = page.screenshot()
    for d in dirs:
        (d / "web-app-draw-1024.png").write_bytes(png)
