"""The standing fuzz corpus (tests/fuzz/corpus.py) through every entry point that decodes
images: the Python API, the CLI and the HTTP API. Every case gets a clear one-line error
(InputError; exit code 2 with one line per file on the CLI; a 4xx JSON answer on the API)
or a normal answer, in bounded time, never a traceback."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import VALID, array_cases, image_cases, refused

from hcr.cli import main
from hcr.errors import InputError
from hcr.preprocess import MAX_FILE_BYTES, load_image


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return image_cases(tmp_path_factory.mktemp("fuzz"))


def test_every_image_case_decodes_or_fails_with_one_line(corpus: dict[str, Path]) -> None:
    for name, path in corpus.items():
        t0 = time.perf_counter()
        try:
            grey = load_image(path)
        except InputError as e:
            msg = str(e)
            assert name not in VALID, f"{name}: a valid image was refused: {msg}"
            assert "\n" not in msg and path.name in msg, f"{name}: {msg!r}"
        else:
            assert not refused(name), f"{name}: decoded, though it cannot be an image"
            assert grey.ndim == 2 and grey.dtype == np.uint8, name
        assert time.perf_counter() - t0 < 5, f"{name} took too long"


def test_declared_sizes_are_refused_before_decoding(corpus: dict[str, Path]) -> None:
    for name, why in [("bomb-100000x100000.png", "too large"), ("strip-1x40000000.png", "elongated"), ("strip-40000000x1.png", "elongated"), ("one-by-3000.png", "elongated")]:
        with pytest.raises(InputError, match=why):
            load_image(corpus[name])


def test_an_endless_stream_is_cut_off_not_read_into_memory() -> None:
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero on this system")
    t0 = time.perf_counter()
    with pytest.raises(InputError, match=f"more than {MAX_FILE_BYTES:,} bytes"):
        load_image("/dev/zero")
    assert time.perf_counter() - t0 < 10


def test_an_unreadable_file_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "locked.png"
    path.write_bytes(b"\x89PNG")
    real_open = open

    def refuse(file: object, *args: object, **kwargs: object) -> object:
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr("builtins.open", refuse)
    with pytest.raises(InputError, match="locked.png: permission denied"):
        load_image(path)


def test_every_array_case_is_refused_with_one_line() -> None:
    for name, arr in array_cases().items():
        with pytest.raises(InputError) as info:
            load_image(arr)  # type: ignore[arg-type]
        assert "\n" not in str(info.value), name


@pytest.mark.parametrize("command", [["predict"], ["read"], ["read", "--field"]])
def test_the_cli_answers_every_case_without_a_traceback(corpus: dict[str, Path], command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(p) for p in corpus.values()]
    code = main([*command, *files])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert code in (0, 1, 2)
    text = out + err
    for name in filter(refused, corpus):
        assert name in text, f"{name}: no line names it"


def test_the_api_answers_every_case_with_json(corpus: dict[str, Path]) -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from hcr.web.api import create_app

    client = TestClient(create_app(), raise_server_exceptions=False)
    for name, path in corpus.items():
        r = client.post("/v1/predict", files={"file": (name, path.read_bytes(), "application/octet-stream")})
        assert r.headers["content-type"].startswith("application/json"), name
        if name in VALID:
            assert r.status_code == 200, (name, r.text)
        elif refused(name):
            assert 400 <= r.status_code < 500, (name, r.status_code, r.text)
            assert "detail" in r.json() or "error" in r.json(), name
        else:
            assert r.status_code == 200 or 400 <= r.status_code < 500, (name, r.status_code, r.text)
