"""The Streamlit page (hcr.web.app) through streamlit.testing's AppTest, and ``hcr app``.

AppTest runs the page's script in-process and can set widgets and upload files, but cannot
draw on the canvas (a custom component): tests/test_browser.py does that in Chromium.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from conftest import handwritten_line
from PIL import Image
from streamlit.testing.v1 import AppTest

from hcr.cli import build_parser
from hcr.errors import HcrError
from hcr.pretrained import pretrained_path
from hcr.web import APP_PATH, ENV_APP_MAX_UPLOAD_MB, ENV_APP_MODEL, run_app, streamlit_command

from helpers_train import single_thread  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("single_thread")

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
UPLOAD_MODEL = "Upload a model file..."  # the model chooser's entry (hcr.web.app.UPLOAD_MODEL; the page is not importable)


def line_png(text: str) -> bytes:
    img = handwritten_line(text)  # real handwriting (samples/): machine-drawn text is printed, and left out
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def page(monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.delenv(ENV_APP_MODEL, raising=False)
    monkeypatch.delenv(ENV_APP_MAX_UPLOAD_MB, raising=False)
    return AppTest.from_file(str(APP_PATH), default_timeout=120)


def texts(at: AppTest) -> dict[str, list[str]]:
    return {
        "markdown": [m.value for m in at.markdown],
        "info": [m.value for m in at.info],
        "warning": [m.value for m in at.warning],
        "error": [m.value for m in at.error],
        "success": [m.value for m in at.success],
        "code": [m.value for m in at.code],
        "subheader": [m.value for m in at.subheader],
    }


def upload(at: AppTest, *files: tuple[str, bytes]) -> AppTest:
    at.file_uploader(key="uploads").set_value([(name, data, "application/octet-stream") for name, data in files])
    return at.run()


def test_the_page_opens_with_its_controls(page: AppTest) -> None:
    at = page.run()
    assert not at.exception
    t = texts(at)
    assert any("The canvas is empty" in s for s in t["info"])  # friendly empty-canvas message
    assert any("Upload one or more images" in s for s in t["info"])
    assert at.selectbox(key="model").options == ["chars", "digits", "letters", UPLOAD_MODEL]
    assert at.selectbox(key="model").value == "chars"
    assert "digits" in at.selectbox(key="charset").options
    assert at.slider(key="threshold").value == 0.5
    assert at.radio(key="mode").options == ["Auto", "One character", "Text", "Form field"]
    assert at.button(key="clear")
    assert [t.label for t in at.tabs] == ["Draw", "Upload images"]


def test_uploads_show_answer_and_what_the_model_sees(page: AppTest) -> None:
    at = page.run()
    at.selectbox(key="model").set_value("digits").run()
    at = upload(at, ("digit_3_paper.png", (SAMPLES / "digit_3_paper.png").read_bytes()),
                ("digit_7_chalk.png", (SAMPLES / "digit_7_chalk.png").read_bytes()),
                ("blank_canvas.png", (SAMPLES / "blank_canvas.png").read_bytes()))
    assert not at.exception
    t = texts(at)
    assert t["subheader"] == ["digit_3_paper.png", "digit_7_chalk.png", "blank_canvas.png"]
    answers = [m for m in t["markdown"] if m.startswith("#### Answer:")]
    assert answers[0].startswith("#### Answer: `3`") and answers[1].startswith("#### Answer: `7`")
    assert sum("What the model sees" in m for m in t["markdown"]) == 3  # the blank one shows its stages too
    assert any("No character found in blank_canvas.png" in w for w in t["warning"])
    assert not t["error"]


def test_threshold_and_charset_controls(page: AppTest) -> None:
    at = page.run()
    at.slider(key="threshold").set_value(1.0).run()
    at = upload(at, ("digit_3_paper.png", (SAMPLES / "digit_3_paper.png").read_bytes()))
    assert any(w.startswith("Not sure:") for w in texts(at)["warning"])
    at.selectbox(key="charset").set_value("custom...").run()
    at.text_input(key="charset_custom").set_value("€").run()
    assert any("'€' is not a class of this model" in e for e in texts(at)["error"])
    at.text_input(key="charset_custom").set_value("ABC").run()
    answer = next(m for m in texts(at)["markdown"] if m.startswith("#### Answer:"))
    assert answer[len("#### Answer: `")] in "ABC"


def test_friendly_messages_for_non_images_and_large_files(page: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    at = page.run()
    at = upload(at, ("notes.txt", b"shopping list"), ("empty.png", b""))
    errors = texts(at)["error"]
    assert any("notes.txt: not an image file" in e for e in errors)
    assert any("empty.png" in e and "empty" in e for e in errors)
    monkeypatch.setenv(ENV_APP_MAX_UPLOAD_MB, "0.01")
    at = upload(at, ("digit_3_paper.png", (SAMPLES / "digit_3_paper.png").read_bytes()))
    assert any("digit_3_paper.png: the file is too large" in e and "0.01 MB" in e for e in texts(at)["error"])


def test_several_characters_are_read_as_text_with_boxes(page: AppTest) -> None:
    at = page.run()
    at.selectbox(key="model").set_value("digits").run()
    at = upload(at, ("date.png", line_png("2357")))
    t = texts(at)
    assert "#### Text read" in t["markdown"] and t["code"] == ["2357"]
    assert len(at.dataframe) == 1 and list(at.dataframe[0].value["character"]) == list("2357")
    at.radio(key="mode").set_value("One character").run()  # forced single-character view
    t = texts(at)
    assert "#### Text read" not in t["markdown"] and any(m.startswith("#### Answer:") for m in t["markdown"])


def test_an_uploaded_model_file_is_used(page: AppTest) -> None:
    at = page.run()
    at.selectbox(key="model").set_value(UPLOAD_MODEL).run()
    assert any("Choose a model file" in s for s in texts(at)["info"])
    at.file_uploader(key="model_file").set_value(("broken.pt", b"not a model", "application/octet-stream")).run()
    assert any("This model file cannot be used" in e for e in texts(at)["error"])
    at.file_uploader(key="model_file").set_value(("my-digits.pt", pretrained_path("digits").read_bytes(), "application/octet-stream")).run()
    assert any("my-digits.pt" in s for s in texts(at)["success"])
    at = upload(at, ("digit_9_scan.png", (SAMPLES / "digit_9_scan.png").read_bytes()))
    assert any(m.startswith("#### Answer: `9`") for m in texts(at)["markdown"])
    assert any(o.startswith("my-digits.pt [") for o in at.selectbox(key="model").options)


def test_hcr_app_model_option(page: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_APP_MODEL, "letters")
    at = page.run()
    assert at.selectbox(key="model").value == "letters"


def test_hcr_app_command_line() -> None:
    args = build_parser().parse_args(["app", "--port", "8600", "--headless", "-m", "digits"])
    assert (args.port, args.headless, args.model, args.host) == (8600, True, "digits", "127.0.0.1")
    cmd = streamlit_command("0.0.0.0", 8600, headless=True)
    assert cmd[1:5] == ["-m", "streamlit", "run", str(APP_PATH)]
    assert cmd[cmd.index("--server.port") + 1] == "8600" and cmd[cmd.index("--server.headless") + 1] == "true"
    assert cmd[cmd.index("--server.address") + 1] == "0.0.0.0"
    with pytest.raises(HcrError, match="no such model file"):  # checked before Streamlit starts
        run_app(model="/nonexistent/model.pt")
    with pytest.raises(HcrError, match="must be positive"):
        run_app(max_upload_mb=0)
