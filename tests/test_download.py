"""Verified downloads against a real HTTP server on 127.0.0.1 (no internet needed)."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import os
import socket
import threading
import zipfile
from functools import partial
from pathlib import Path
from typing import Iterator

import pytest

from hcr.data import download as dl
from hcr.data.download import (
    RemoteFile,
    download_file,
    ensure_files,
    extract_members,
    file_md5,
    offline_message,
    verify_file,
)
from hcr.errors import DataError

PAYLOAD = bytes(range(256)) * 300  # 76,800 bytes: several reads, small enough to be fast


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


class _TruncatingHandler(http.server.BaseHTTPRequestHandler):
    """Promises more bytes than it sends, then closes the connection."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD) + 1000))
        self.end_headers()
        self.wfile.write(PAYLOAD)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


def _serve(handler: type) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "served"
    root.mkdir()
    yield from ((url, root) for url in _serve(partial(_QuietHandler, directory=str(root))))


@pytest.fixture
def truncating() -> Iterator[str]:
    yield from _serve(_TruncatingHandler)


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_verified_and_atomic(served: tuple[str, Path], tmp_path: Path) -> None:
    url, root = served
    (root / "data.bin").write_bytes(PAYLOAD)
    rf = RemoteFile("data.bin", (f"{url}/data.bin",), md5=md5(PAYLOAD), size=len(PAYLOAD))
    dest = tmp_path / "cache" / "src"
    path = download_file(rf, dest, progress=False)
    assert path == dest / "data.bin"
    assert path.read_bytes() == PAYLOAD
    assert not list(dest.glob("*.part")) and not list(dest.glob(".*.part"))
    verify_file(path, rf)  # and again, from the verification cache


def test_second_mirror_used_when_first_is_missing(served: tuple[str, Path], tmp_path: Path) -> None:
    url, root = served
    (root / "data.bin").write_bytes(PAYLOAD)
    rf = RemoteFile("data.bin", (f"{url}/nope/data.bin", f"{url}/data.bin"), md5=md5(PAYLOAD))
    assert download_file(rf, tmp_path / "d", progress=False).read_bytes() == PAYLOAD


def test_checksum_mismatch_removes_partial(served: tuple[str, Path], tmp_path: Path) -> None:
    url, root = served
    (root / "data.bin").write_bytes(PAYLOAD)
    rf = RemoteFile("data.bin", (f"{url}/data.bin",), md5="0" * 32)
    dest = tmp_path / "d"
    with pytest.raises(DataError, match="removed") as info:
        download_file(rf, dest, progress=False)
    assert "checksum mismatch" in str(info.value) and md5(PAYLOAD) in str(info.value)
    assert _leftovers(dest) == []


def test_truncated_download(truncating: str, tmp_path: Path) -> None:
    rf = RemoteFile("data.bin", (f"{truncating}/data.bin",))
    dest = tmp_path / "d"
    with pytest.raises(DataError, match="truncated") as info:
        download_file(rf, dest, progress=False, timeout=5)
    assert f"got {len(PAYLOAD)} of {len(PAYLOAD) + 1000} bytes" in str(info.value)
    assert "removed" in str(info.value)
    assert _leftovers(dest) == []


def test_expected_size_spots_short_file_without_content_length(served: tuple[str, Path], tmp_path: Path) -> None:
    url, root = served
    (root / "data.bin").write_bytes(PAYLOAD)
    rf = RemoteFile("data.bin", (f"{url}/data.bin",), size=len(PAYLOAD) + 5)
    with pytest.raises(DataError, match="truncated"):
        download_file(rf, tmp_path / "d", progress=False)
    assert _leftovers(tmp_path / "d") == []


def test_offline_error_says_what_to_place_where(closed_port: int, tmp_path: Path) -> None:
    urls = (f"http://127.0.0.1:{closed_port}/train.gz", f"http://127.0.0.1:{closed_port}/mirror/train.gz")
    rf = RemoteFile("train.gz", urls, md5="0" * 32)
    dest = tmp_path / "data" / "mnist"
    with pytest.raises(DataError) as info:
        download_file(rf, dest, progress=False, timeout=5)
    msg = str(info.value)
    assert "train.gz" in msg and str(dest) in msg and urls[0] in msg and urls[1] in msg
    assert "--data-dir" in msg and "HCR_DATA_DIR" in msg
    assert _leftovers(dest) == []


def test_ensure_files_without_download_lists_every_missing_file(tmp_path: Path) -> None:
    files = [RemoteFile(f"f{i}.gz", (f"https://example.org/f{i}.gz",)) for i in range(3)]
    (tmp_path / "f1.gz").write_bytes(b"present")
    with pytest.raises(DataError) as info:
        ensure_files(files, tmp_path, download=False)
    msg = str(info.value)
    assert "f0.gz" in msg and "f2.gz" in msg and "https://example.org/f2.gz" in msg and str(tmp_path) in msg
    assert "f1.gz from" not in msg  # the present one is not asked for


def test_ensure_files_downloads_missing_and_keeps_present(served: tuple[str, Path], tmp_path: Path) -> None:
    url, root = served
    (root / "a.bin").write_bytes(PAYLOAD)
    dest = tmp_path / "d"
    dest.mkdir()
    (dest / "b.bin").write_bytes(b"mine")
    files = [RemoteFile("a.bin", (f"{url}/a.bin",), md5=md5(PAYLOAD)), RemoteFile("b.bin", (f"{url}/b.bin",), md5=md5(b"mine"))]
    assert ensure_files(files, dest, progress=False) == [dest / "a.bin", dest / "b.bin"]
    assert (dest / "a.bin").read_bytes() == PAYLOAD


def test_ensure_files_never_deletes_a_bad_user_file(tmp_path: Path) -> None:
    (tmp_path / "x.bin").write_bytes(b"wrong")
    rf = RemoteFile("x.bin", ("https://example.org/x.bin",), md5=md5(b"right"))
    with pytest.raises(DataError, match="delete it") as info:
        ensure_files([rf], tmp_path, download=False)
    assert "checksum mismatch" in str(info.value)
    assert (tmp_path / "x.bin").read_bytes() == b"wrong"


def test_hand_placed_gz_accepted_by_content_md5(tmp_path: Path) -> None:
    content = b"same content " * 1000
    published = gzip.compress(content, compresslevel=9, mtime=0)
    mine = gzip.compress(content, compresslevel=1, mtime=12345)
    assert published != mine
    rf = RemoteFile("x.gz", ("https://example.org/x.gz",), md5=md5(published), content_md5=md5(content))
    (tmp_path / "x.gz").write_bytes(mine)
    verify_file(tmp_path / "x.gz", rf)
    assert file_md5(tmp_path / "x.gz", gunzip=True) == md5(content)
    (tmp_path / "x.gz").write_bytes(gzip.compress(b"other content"))
    with pytest.raises(DataError, match="checksum mismatch for .*x.gz: expected md5"):
        verify_file(tmp_path / "x.gz", rf)


def test_verification_is_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(PAYLOAD)
    rf = RemoteFile("big.bin", (), md5=md5(PAYLOAD))
    calls = []
    real = dl.file_md5
    monkeypatch.setattr(dl, "file_md5", lambda p, gunzip=False: calls.append(p) or real(p, gunzip))
    verify_file(path, rf)
    verify_file(path, rf)
    ensure_files([rf], tmp_path, download=False)
    assert len(calls) == 1
    assert (tmp_path / dl.VERIFIED_CACHE).is_file()
    os.utime(path, ns=(0, 10**9))  # a changed file is hashed again
    verify_file(path, rf)
    assert len(calls) == 2
    with pytest.raises(DataError):  # a different expected checksum does not reuse the cache
        verify_file(path, RemoteFile("big.bin", (), md5="1" * 32))


def test_no_checksum_passes(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"x")
    verify_file(tmp_path / "a", RemoteFile("a", ()))


def test_offline_message_mentions_reason() -> None:
    msg = offline_message([RemoteFile("a.gz", ("u1", "u2"))], Path("/d/emnist"), "no network")
    assert "no network" in msg and "u1 or u2" in msg and "/d/emnist" in msg and "'emnist'" in msg


def test_extract_members(tmp_path: Path) -> None:
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("gzip/one.gz", b"first")
        z.writestr("gzip/two.gz", b"second")
    out = extract_members(archive, {"gzip/one.gz": "one.gz", "gzip/two.gz": "renamed.gz"}, tmp_path / "out")
    assert [p.read_bytes() for p in out] == [b"first", b"second"]
    assert _leftovers(tmp_path / "out") == ["one.gz", "renamed.gz"]
    with pytest.raises(DataError, match="gzip/three.gz"):
        extract_members(archive, {"gzip/three.gz": "three.gz"}, tmp_path / "out2")
    assert _leftovers(tmp_path / "out2") == []
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="zip"):
        extract_members(tmp_path / "bad.zip", {"x": "x"}, tmp_path / "out3")


def test_read_only_folder_is_not_written_but_still_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "f.bin").write_bytes(PAYLOAD)
    rf = RemoteFile("f.bin", (), md5=md5(PAYLOAD))
    monkeypatch.setattr(dl, "_fallback_dir", lambda: tmp_path / "user-cache")
    calls = []
    real = dl.file_md5
    monkeypatch.setattr(dl, "file_md5", lambda p, gunzip=False: calls.append(p) or real(p, gunzip))
    shared.chmod(0o555)
    try:
        verify_file(shared / "f.bin", rf)
        verify_file(shared / "f.bin", rf)
        assert _leftovers(shared) == ["f.bin"]
    finally:
        shared.chmod(0o755)
    assert len(calls) == 1 and len(list((tmp_path / "user-cache").glob("*.json"))) == 1
