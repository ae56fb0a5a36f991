"""Hostile requests to the HTTP API (issue 17): malformed multipart bodies, oversized and
wrong-type uploads, empty files, missing and huge fields. Every case must get a 4xx answer
of the API's one error shape (``{"error": {"code", "message"}}``) with a clear message: never
a 500, a traceback or an echo of the hostile body.
"""

from __future__ import annotations

import io
import warnings
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

pytest.importorskip("fastapi")

from hcr.web.api import ApiConfig, create_app  # noqa: E402

with warnings.catch_warnings():  # newer Starlette prefers the httpx2 package; httpx still works
    warnings.filterwarnings("ignore", message=".*httpx2")
    from fastapi.testclient import TestClient

LIMIT = 200_000  # the test server's upload limit (bytes)
PNG = (Path(__file__).resolve().parents[2] / "samples" / "digit_3_paper.png").read_bytes()
B = "hcr-fuzz-boundary"
MULTIPART = f"multipart/form-data; boundary={B}"


def part(name: str, data: bytes, filename: str | None = "a.png", mime: str | None = "image/png") -> bytes:
    """One multipart part (a file when ``filename`` is given, else a plain field)."""
    head = f'--{B}\r\nContent-Disposition: form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "") + "\r\n"
    if mime is not None:
        head += f"Content-Type: {mime}\r\n"
    return head.encode("utf-8") + b"\r\n" + data + b"\r\n"


def field(name: str, value: bytes) -> bytes:
    return part(name, value, filename=None, mime=None)


END = f"--{B}--\r\n".encode()


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.txt", "not an image")
    return buf.getvalue()


Send = Callable[[TestClient], Any]


def _body(body: bytes, content_type: str = MULTIPART, path: str = "/v1/predict", **kw: Any) -> Send:
    return lambda c: c.post(path, content=body, headers={"content-type": content_type}, **kw)


#: name -> (the request, the status expected, a phrase the message must hold)
CASES: dict[str, tuple[Send, int, str]] = {
    # malformed multipart bodies
    "no-boundary": (_body(part("file", PNG) + END, "multipart/form-data"), 400, "Missing boundary"),
    "wrong-boundary": (_body(part("file", PNG) + END, "multipart/form-data; boundary=other"), 400, "malformed multipart upload"),
    "binary-garbage": (_body(b"\x00\xff" * 500), 400, "malformed multipart upload"),
    "bad-part-header": (_body(f"--{B}\r\nthis is no header\r\n\r\n".encode() + PNG + b"\r\n" + END), 400, "malformed multipart upload"),
    "no-content-disposition": (_body(f"--{B}\r\nContent-Type: image/png\r\n\r\n".encode() + PNG + b"\r\n" + END), 400, "Content-Disposition"),
    "truncated-body": (_body((part("file", PNG) + END)[:300]), 422, "no (complete) file part"),
    "no-closing-boundary": (_body(part("file", PNG)), 422, "no (complete) file part"),
    "empty-body": (_body(b""), 422, "no (complete) file part"),
    "filename-of-100k": (_body(part("file", PNG, filename="a" * 100_000 + ".png") + END), 400, "malformed multipart upload"),
    "two-files": (_body(part("file", PNG) + part("file", PNG) + END), 400, "one image per request"),
    # wrong content types
    "text-body": (_body(b"hello", "text/plain"), 415, "unsupported content type 'text/plain'"),
    "json-body": (_body(b'{"image": "..."}', "application/json"), 415, "unsupported content type 'application/json'"),
    "urlencoded-body": (_body(b"file=abc", "application/x-www-form-urlencoded"), 415, "multipart/form-data"),
    "no-content-type": (lambda c: c.post("/v1/predict", content=PNG), 415, "unsupported content type '(none)'"),
    # wrong-type uploads
    "text-upload": (_body(part("file", b"hello", "a.txt", "text/plain") + END), 415, "content type 'text/plain'"),
    "html-upload": (_body(part("file", b"<html><script>alert(1)</script></html>", "a.html", "text/html") + END), 415, "content type 'text/html'"),
    "text-named-png": (_body(part("file", b"this is not an image\n" * 10) + END), 400, "a.png: not an image file"),
    "html-named-png": (_body(part("file", b"<!DOCTYPE html><html><img src=x onerror=alert(1)></html>") + END), 400, "a.png: not an image file"),
    "svg-upload": (_body(part("file", b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>', "a.svg", "image/svg+xml") + END), 400, "a.svg: not an image file"),
    "zip-named-png": (_body(part("file", _zip()) + END), 400, "a.png: not an image file"),
    "zip-as-raw-body": (_body(_zip(), "image/png", "/v1/read"), 400, "not an image file"),
    "truncated-png": (_body(part("file", PNG[:200]) + END), 400, "a.png"),
    # empty files
    "empty-file": (_body(part("file", b"") + END), 400, "a.png: the file is empty"),
    "empty-raw-body": (_body(b"", "image/png"), 400, "the file is empty"),
    # oversized uploads
    "oversized-raw-body": (_body(b"\x89PNG" + b"\0" * (LIMIT + 70_000), "image/png"), 413, "larger than the limit"),
    "oversized-multipart": (_body(part("file", b"\x89PNG" + b"\0" * (LIMIT + 70_000)) + END), 413, "larger than the limit"),
    "oversized-within-framing": (_body(part("file", b"\0" * (LIMIT + 10_000), "big.png") + END), 413, "big.png: the file is too large"),
    "oversized-chunked": (lambda c: c.post("/v1/read", content=(b"\0" * 50_000 for _ in range(6)), headers={"content-type": "image/png"}), 413, "larger than the limit"),
    "oversized-field": (_body(part("file", PNG) + field("model", b"x" * (LIMIT + 70_000)) + END), 413, "larger than the limit"),
    # missing and huge fields
    "missing-file-part": (_body(field("model", b"digits") + END), 422, "no (complete) file part"),
    "file-sent-as-field": (_body(field("file", PNG[:100]) + END), 422, "no (complete) file part"),
    "file-under-other-name": (_body(part("image", PNG) + END), 422, "field 'file'"),
    "huge-model-field": (_body(part("file", PNG) + field("model", b"x" * 150_000) + END), 422, "model: String should have at most 200 characters"),
    "huge-charset-query": (lambda c: c.post("/v1/predict", params={"charset": "x" * 5000}, content=PNG, headers={"content-type": "image/png"}), 422, "charset"),
    "unknown-field": (_body(part("file", PNG) + field("nope", b"1") + END), 422, "nope: Extra inputs are not permitted"),
    "too-many-fields": (_body(part("file", PNG) + b"".join(field(f"f{i}", b"1") for i in range(40)) + END), 400, "Too many fields"),
    "non-utf8-field": (_body(part("file", PNG) + field("model", b"\xff\xfe") + END), 422, "unknown model"),
    "nul-in-model": (lambda c: c.post("/v1/predict", params={"model": "a\x00b"}, content=PNG, headers={"content-type": "image/png"}), 422, "unknown model"),
    "bad-top-k-field": (_body(part("file", PNG) + field("top_k", b"9" * 5000) + END), 422, "top_k"),
}


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = create_app(ApiConfig(models=["digits"], max_upload_bytes=LIMIT))
    with TestClient(app, raise_server_exceptions=False) as c:  # a bug answers 500 here instead of raising
        yield c


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_request(case: str, client: TestClient) -> None:
    send, status, phrase = CASES[case]
    r = send(client)
    assert r.status_code == status, (case, r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) <= {"code", "message", "details"}
    message = body["error"]["message"]
    assert phrase in message, (case, message)
    assert len(message) < 400 and "\n" not in message, message  # one clear line, not an echo of the input
    assert "Traceback" not in r.text and "File \"" not in r.text
    assert len(r.content) < 20_000, "the answer echoes the hostile input"


def test_the_server_still_answers_after_the_corpus(client: TestClient) -> None:
    for send, _, _ in CASES.values():
        send(client)
    r = client.post("/v1/predict", content=PNG, headers={"content-type": "image/png"})
    assert r.status_code == 200 and r.json()["label"] == "3"
