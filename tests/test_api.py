"""The HTTP API (hcr.web.api) through FastAPI's TestClient, and the shared model registry.

The sample images are read with the shipped models (samples/README.md names what each holds);
the line for /v1/read is written with OpenCV's handwriting-like Hershey script font.
"""

from __future__ import annotations

import io
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np
import pytest

from conftest import handwritten_line
from PIL import Image

from hcr import __version__
from hcr.cli import build_parser
from hcr.errors import HcrError, UnknownNameError
from hcr.web.api import ApiConfig, create_app
from hcr.web.service import ModelRegistry, UploadTooLarge, check_upload

from helpers_train import single_thread  # noqa: F401  (fixture)

with warnings.catch_warnings():  # newer Starlette prefers the httpx2 package; httpx still works
    warnings.filterwarnings("ignore", message=".*httpx2")
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.usefixtures("single_thread")

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
DIGITS = sorted(SAMPLES.glob("digit_*"))


def png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def line_image(text: str = "2357") -> bytes:
    """Real handwriting (the characters of samples/) on white paper, as PNG bytes."""
    return png(handwritten_line(text))


def upload(path: Path, mime: str = "image/png") -> dict[str, Any]:
    return {"file": (path.name, path.read_bytes(), mime)}


def assert_error(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return dict(body["error"])


@pytest.fixture(scope="module")
def registry() -> ModelRegistry:
    return ModelRegistry()


@pytest.fixture(scope="module")
def client(registry: ModelRegistry) -> Iterator[TestClient]:
    with TestClient(create_app(ApiConfig(max_upload_bytes=200_000), registry=registry)) as c:
        yield c


# --------------------------------------------------------------------------- service


def test_registry_loads_each_model_once_and_shares_it(registry: ModelRegistry) -> None:
    assert registry.names()[0] == registry.default == "chars"
    base = registry.base("digits")
    a = registry.predictor("digits", charset="0123", threshold=0.7)
    b = registry.predictor("digits", charset="0123", threshold=0.7)
    c = registry.predictor("digits", ignore_case=True)
    assert a is b and a is not c
    assert a.model is base.model and c.model is base.model  # one network
    assert a.charset == "0123" and a.threshold == 0.7 and base.charset is None and base.threshold == 0.5
    with pytest.raises(UnknownNameError, match="choose one of: chars, digits, letters"):
        registry.predictor("nope")
    with pytest.raises(HcrError, match="not (a class|classes) of this model"):
        registry.predictor("digits", charset="AB")


def test_registry_variant_cache_is_bounded() -> None:
    reg = ModelRegistry(["digits"], max_variants=3)
    for t in (0.1, 0.2, 0.3, 0.4, 0.5):
        reg.predictor(threshold=t)
    assert len(reg._variants) == 3


def test_registry_offers_model_files_and_refuses_bad_ones(tmp_path: Path) -> None:
    from hcr.pretrained import pretrained_path

    reg = ModelRegistry(["digits", pretrained_path("letters")])
    assert reg.names() == ["digits", "letters"] and reg.entry("letters").source == "file"
    with pytest.raises(HcrError, match="no such model file"):
        reg.add(tmp_path / "missing.pt")
    with pytest.raises(HcrError, match="model file"):
        reg.add_upload(b"not a model", "mine.pt", directory=tmp_path)
    assert reg.names() == ["digits", "letters"]  # a bad upload is forgotten
    name = reg.add_upload(pretrained_path("digits").read_bytes(), "mine.pt", directory=tmp_path)
    assert reg.predictor(name).predict(SAMPLES / "digit_3_paper.png").label == "3"


def test_check_upload() -> None:
    check_upload(b"x" * 10, "a.png", max_bytes=10)
    with pytest.raises(UploadTooLarge, match="too large"):
        check_upload(b"x" * 11, "a.png", max_bytes=10)
    with pytest.raises(HcrError, match="empty"):
        check_upload(b"", "a.png")


# --------------------------------------------------------------------------- endpoints


def test_health_models_and_openapi(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok", "version": __version__, "models": ["chars", "digits", "letters"], "pid": os.getpid()}
    models = client.get("/v1/models").json()
    assert models["default"] == "chars"
    by_name = {m["name"]: m for m in models["models"]}
    assert by_name["digits"]["classes"] == list("0123456789") and by_name["digits"]["num_classes"] == 10
    assert by_name["chars"]["num_classes"] == 62 and by_name["chars"]["default"] and by_name["letters"]["description"]
    schema = client.get("/openapi.json").json()
    assert {"/v1/predict", "/v1/read", "/v1/models", "/health"} <= set(schema["paths"])
    body = schema["paths"]["/v1/predict"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in body and "image/png" in body
    params = {p["name"] for p in schema["paths"]["/v1/predict"]["post"]["parameters"]}
    assert {"model", "top_k", "charset", "ignore_case", "threshold"} <= params
    assert "swagger" in client.get("/docs").text.lower()


def test_ready_only_once_the_models_are_loaded() -> None:
    """GET /ready (the readiness probe, docs/deploy.md) answers 503 while a model is still to
    be loaded and 200 once all are; GET /health (liveness) answers 200 throughout."""
    reg = ModelRegistry(["digits", "letters"])
    with TestClient(create_app(ApiConfig(preload=False), registry=reg)) as c:
        r = c.get("/ready")
        assert r.status_code == 503 and r.json()["status"] == "loading" and r.json()["loading"] == ["digits", "letters"]
        assert c.get("/health").status_code == 200
        assert c.post("/v1/predict", params={"model": "digits"}, files=upload(SAMPLES / "digit_3_paper.png")).status_code == 200
        assert c.get("/ready").json()["loading"] == ["letters"] and c.get("/ready").status_code == 503
        reg.preload()
        r = c.get("/ready")
        assert r.status_code == 200 and r.json() == {"status": "ready", "models": ["digits", "letters"], "loading": [], "pid": os.getpid()}
    with TestClient(create_app(ApiConfig(models=["digits"]))) as c:  # the default: models loaded before the app answers
        assert c.get("/ready").status_code == 200
        assert "/ready" in c.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize("path", DIGITS, ids=[p.name for p in DIGITS])
def test_predict_reads_the_sample_digits(client: TestClient, path: Path) -> None:
    r = client.post("/v1/predict", params={"model": "digits", "top_k": 3}, files=upload(path, "image/jpeg" if path.suffix == ".jpg" else "image/png"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["label"] == path.stem.split("_")[1]
    assert body["model"] == "digits" and body["file"] == path.name
    assert len(body["top_k"]) == 3 and body["top_k"][0] == [body["label"], body["confidence"]]
    assert not body["blank"] and len(body["box"]) == 4 and body["seconds"] >= 0


def test_raw_body_and_multipart_agree(client: TestClient) -> None:
    path = SAMPLES / "digit_9_scan.png"
    a = client.post("/v1/predict", files=upload(path)).json()
    b = client.post("/v1/predict", content=path.read_bytes(), headers={"content-type": "image/png"}).json()
    c = client.post("/v1/predict", content=path.read_bytes(), headers={"content-type": "application/octet-stream"}).json()
    assert a["model"] == "chars" and a["file"] == path.name and b["file"] is None
    for k in ("label", "confidence", "top_k", "box"):
        assert a[k] == b[k] == c[k]


def test_options_as_query_or_form_fields(client: TestClient) -> None:
    path = SAMPLES / "char_7_jpeg-photo.jpg"
    r = client.post("/v1/predict", files=upload(path, "image/jpeg"), data={"model": "digits", "top_k": "2", "threshold": "1"}).json()
    assert r["model"] == "digits" and len(r["top_k"]) == 2 and r["label"] == "7" and r["uncertain"]
    r = client.post("/v1/predict", params={"charset": "digits", "top_k": 20}, files=upload(path, "image/jpeg")).json()
    assert r["model"] == "chars" and len(r["top_k"]) == 10 and all(s.isdigit() for s, _ in r["top_k"])
    r = client.post("/v1/predict", params={"model": "letters", "charset": "ABC"}, files=upload(SAMPLES / "char_A_paper-photo.jpg", "image/jpeg")).json()
    assert r["label"] == "A" and {s for s, _ in r["top_k"]} == {"A", "B", "C"}


def test_blank_canvas_answers_no_label(client: TestClient) -> None:
    r = client.post("/v1/predict", files=upload(SAMPLES / "blank_canvas.png"))
    assert r.status_code == 200
    body = r.json()
    assert body["label"] is None and body["blank"] and body["top_k"] == [] and body["box"] is None


def test_not_an_image_is_400(client: TestClient) -> None:
    err = assert_error(client.post("/v1/predict", files={"file": ("notes.png", b"hello, not an image", "image/png")}), 400, "invalid_image")
    assert "notes.png: not an image file" in err["message"]
    truncated = (SAMPLES / "digit_3_paper.png").read_bytes()[:400]
    assert_error(client.post("/v1/read", content=truncated, headers={"content-type": "image/png"}), 400, "invalid_image")
    assert_error(client.post("/v1/predict", content=b"", headers={"content-type": "image/png"}), 400, "empty_upload")
    two = [("file", (p.name, p.read_bytes(), "image/png")) for p in DIGITS[:2]]
    assert_error(client.post("/v1/predict", files=two), 400, "bad_request")


def test_oversized_uploads_are_413(client: TestClient) -> None:
    big = b"\x89PNG" + b"\0" * 300_000
    assert_error(client.post("/v1/predict", content=big, headers={"content-type": "image/png"}), 413, "too_large")
    assert_error(client.post("/v1/predict", files={"file": ("big.png", big, "image/png")}), 413, "too_large")
    # no Content-Length (chunked): counted while it streams in
    chunks = (b"\0" * 50_000 for _ in range(6))
    assert_error(client.post("/v1/read", content=chunks, headers={"content-type": "image/png"}), 413, "too_large")
    # over the upload limit but within the framing allowance: refused by the upload check
    err = assert_error(client.post("/v1/predict", files={"file": ("a.png", b"\0" * 210_000, "image/png")}), 413, "too_large")
    assert "a.png" in err["message"]


def test_wrong_content_type_is_415(client: TestClient) -> None:
    image = (SAMPLES / "digit_3_paper.png").read_bytes()
    assert_error(client.post("/v1/predict", content=b"hello", headers={"content-type": "text/plain"}), 415, "unsupported_media_type")
    assert_error(client.post("/v1/predict", json={"image": "..."}), 415, "unsupported_media_type")
    assert_error(client.post("/v1/predict", content=image), 415, "unsupported_media_type")  # no content type
    assert_error(client.post("/v1/read", files={"file": ("a.txt", image, "text/plain")}), 415, "unsupported_media_type")


@pytest.mark.parametrize("params,code", [
    ({"top_k": 0}, "invalid_parameter"),
    ({"top_k": 101}, "invalid_parameter"),
    ({"top_k": "three"}, "invalid_parameter"),
    ({"threshold": 1.5}, "invalid_parameter"),
    ({"ignore_case": "perhaps"}, "invalid_parameter"),
    ({"topk": 3}, "invalid_parameter"),  # a typo is not silently ignored
    ({"model": "nope"}, "unknown_model"),
    ({"model": "digits", "charset": "ABC"}, "invalid_option"),
])
def test_bad_parameters_are_422(client: TestClient, params: dict[str, Any], code: str) -> None:
    err = assert_error(client.post("/v1/predict", params=params, files=upload(SAMPLES / "digit_3_paper.png")), 422, code)
    if code == "invalid_parameter":
        assert err["details"]


def test_bad_form_field_and_missing_file_are_422(client: TestClient) -> None:
    r = client.post("/v1/predict", files=upload(SAMPLES / "digit_3_paper.png"), data={"top_k": "x"})
    assert "top_k" in assert_error(r, 422, "invalid_parameter")["message"]
    assert_error(client.post("/v1/predict", files={"image": ("a.png", b"x", "image/png")}), 422, "missing_file")


def test_unknown_routes_and_methods_are_json(client: TestClient) -> None:
    assert_error(client.get("/v2/predict"), 404, "not_found")
    assert_error(client.get("/v1/predict"), 405, "method_not_allowed")


def test_read_returns_text_boxes_and_confidences(client: TestClient) -> None:
    r = client.post("/v1/read", params={"model": "digits"}, files={"file": ("line.png", line_image("2357"), "image/png")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["text"] == "2357" and body["model"] == "digits" and body["file"] == "line.png"
    assert [c["char"] for c in body["characters"]] == list("2357") and not body["blank"]
    xs = [c["box"][0] for c in body["characters"]]
    assert xs == sorted(xs) and all(len(c["box"]) == 4 and 0 < c["confidence"] <= 1 for c in body["characters"])
    assert body["lines"][0]["text"] == "2357" and body["size"] == list(cv2.imdecode(np.frombuffer(line_image("2357"), np.uint8), 0).shape[::-1])
    assert body["lines"][0]["words"] == [{"text": "2357", "box": body["lines"][0]["box"], "printed": False}]
    empty = client.post("/v1/read", files=upload(SAMPLES / "blank_canvas.png")).json()
    assert empty["text"] == "" and empty["characters"] == [] and empty["blank"]


def test_read_a_form_field_with_its_printed_label(client: TestClient) -> None:
    from PIL import ImageDraw, ImageFont

    line = handwritten_line("2357", 40)
    img = np.full((line.shape[0] + 20, line.shape[1] + 140), 245, np.uint8)
    img[10 : 10 + line.shape[0], 140:] = line
    page = Image.fromarray(img)
    ImageDraw.Draw(page).text((6, 52), "DATE :", font=ImageFont.load_default(size=16), fill=20)
    data = png(np.asarray(page))
    field = client.post("/v1/read", params={"field": "true"}, files={"file": ("f.png", data, "image/png")}).json()
    assert field["text"] == "2357" and field["field"] and not field["blank"] and not field["printed_only"]
    kept = client.post("/v1/read", params={"keep_printed": "true"}, files={"file": ("f.png", data, "image/png")}).json()
    words = kept["lines"][0]["words"]
    assert words[0]["printed"] and not words[-1]["printed"] and words[-1]["text"] == "2357"


def test_a_server_reads_words_with_the_word_model(tmp_path: Path) -> None:
    from hcr.reader import CrnnReader

    with TestClient(create_app(ApiConfig(preload=False))) as c:  # the default offer: every shipped model
        assert c.get("/health").json()["models"] == ["chars", "digits", "letters", "words"]
        by_name = {m["name"]: m for m in c.get("/v1/models").json()["models"]}
        assert by_name["chars"]["task"] == "classify" and by_name["words"]["task"] == "sequence"
        assert {"ä", "ß", "a", "Z", "7", " "} <= set(by_name["words"]["classes"])
        image = line_image("2357")
        r = c.post("/v1/read", params={"model": "words"}, files={"file": ("word.png", image, "image/png")})
        assert r.status_code == 200, r.text
        body = r.json()
        reference = CrnnReader.load("words").read(image)  # the same engine, in this process
        assert body["model"] == "words" and body["text"] == reference.text and body["text"].strip()
        assert [c["box"] for c in body["characters"]] == [list(ch.box) for ch in reference.characters]
        digits = c.post("/v1/read", params={"model": "words", "charset": "digits"}, files={"file": ("word.png", image, "image/png")}).json()
        assert set(digits["text"]) <= set("0123456789 ")
        err = assert_error(c.post("/v1/predict", params={"model": "words"}, files={"file": ("word.png", image, "image/png")}), 422, "invalid_option")
        assert "reads words and lines" in err["message"] and "/v1/read" in err["message"]
    assert ModelRegistry().names() == ["chars", "digits", "letters"]  # the page: character models only


def test_concurrent_requests_agree_with_sequential_ones(client: TestClient) -> None:
    files = [p for p in sorted(SAMPLES.iterdir()) if p.suffix in (".png", ".jpg")]

    def ask(path: Path) -> tuple[Any, ...]:
        r = client.post("/v1/predict", params={"top_k": 3}, content=path.read_bytes(), headers={"content-type": "application/octet-stream"})
        assert r.status_code == 200, r.text
        b = r.json()
        return b["label"], b["confidence"], tuple(map(tuple, b["top_k"]))

    sequential = {p: ask(p) for p in files}
    jobs = files * 4
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(ask, jobs))
    for path, (label, conf, top) in zip(jobs, answers):  # concurrent requests share batched forward passes,
        want_label, want_conf, want_top = sequential[path]  # which may differ in the last float digits
        assert label == want_label and [s for s, _ in top] == [s for s, _ in want_top], path.name
        assert conf == pytest.approx(want_conf, abs=1e-4) and [p for _, p in top] == pytest.approx([p for _, p in want_top], abs=1e-4)


def test_batched_forward_passes_answer_each_request(registry: ModelRegistry) -> None:
    from hcr.web.api import _forward

    digits, only_03 = registry.predictor("digits"), registry.predictor("digits", charset="03")
    pres = [digits.preprocess(p) for p in DIGITS]
    items = [(digits, pres[0], 5), (only_03, pres[1], 2), (digits, pres[2], 1), (only_03, pres[3], 2), (digits, pres[4], 5)]
    for (predictor, pre, k), got in zip(items, _forward(items)):
        want = predictor.predict_inputs([pre], k)[0]
        assert got.label == want.label and [s for s, _ in got.top_k] == [s for s, _ in want.top_k]
        assert got.confidence == pytest.approx(want.confidence, abs=1e-5)


def test_unbatched_server_gives_the_same_answers(client: TestClient, registry: ModelRegistry) -> None:
    with TestClient(create_app(ApiConfig(batch=False), registry=registry)) as plain:
        for path in DIGITS:
            a = plain.post("/v1/predict", files=upload(path)).json()
            b = client.post("/v1/predict", files=upload(path)).json()
            assert a["label"] == b["label"] and a["confidence"] == pytest.approx(b["confidence"], abs=1e-4)


def test_time_limit_gives_504(registry: ModelRegistry) -> None:
    with TestClient(create_app(ApiConfig(timeout_s=1e-6), registry=registry)) as c:
        err = assert_error(c.post("/v1/predict", files=upload(SAMPLES / "digit_9_scan.png")), 504, "timeout")
        assert "time limit" in err["message"]
        assert c.get("/health").status_code == 200  # the server keeps answering


def test_too_many_waiting_requests_give_503(registry: ModelRegistry) -> None:
    gate = threading.Event()
    app = create_app(ApiConfig(max_pending=1, workers=1), registry=registry)
    with TestClient(app) as c:
        app.state.runner.pool.submit(gate.wait)  # occupy the one worker ...
        app.state.runner.pending = 1  # ... as an admitted request would
        try:
            assert_error(c.post("/v1/predict", files=upload(SAMPLES / "digit_3_paper.png")), 503, "busy")
        finally:
            gate.set()
            app.state.runner.pending = 0


@pytest.mark.slow
def test_serve_processes_share_the_port_and_stop_together(tmp_path: Path) -> None:
    import json
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "hcr.cli", "serve", "--port", str(port), "--processes", "2", "-m", "digits",
                             "--log-level", "warning"], stdout=log, stderr=subprocess.STDOUT)
    pids: set[int] = set()
    try:
        deadline = time.monotonic() + 150
        while len(pids) < 2 and time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    pids.add(json.loads(r.read())["pid"])
            except OSError:
                time.sleep(0.3)
        assert len(pids) == 2, (tmp_path / "serve.log").read_text()[-2000:]
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/predict", data=(SAMPLES / "digit_3_paper.png").read_bytes(),
                                         headers={"Content-Type": "image/png"})
        with urllib.request.urlopen(request, timeout=30) as r:
            assert json.loads(r.read())["label"] == "3"
    finally:
        proc.terminate()  # SIGTERM: the parent stops its processes
        proc.wait(timeout=60)
        log.close()
    time.sleep(0.5)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_serve_command_line() -> None:
    args = build_parser().parse_args(["serve", "--port", "9001", "-m", "digits", "-m", "letters", "--timeout", "2", "--max-upload-mb", "1"])
    assert (args.port, args.model, args.timeout, args.max_upload_mb, args.host) == (9001, ["digits", "letters"], 2.0, 1.0, "127.0.0.1")
    defaults = build_parser().parse_args(["serve"])
    assert defaults.model is None and not defaults.no_batch  # every pretrained model, batched
    assert (defaults.processes, defaults.op_threads, defaults.workers) == (1, 1, 4)
