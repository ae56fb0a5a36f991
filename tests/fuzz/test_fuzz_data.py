"""Corrupt data-set files for every loader of ``hcr.data`` (issue 17): IDX, pixel CSV, image
folders and word/line folders (``labels.tsv``). Each case is made here, and each must give one
clear :class:`~hcr.errors.HcrError` line naming the file and the problem: no raw traceback, no
hang (a time limit guards every case), nothing written beside the data. The CLI gives the same
line on stderr with exit code 2.
"""

from __future__ import annotations

import contextlib
import gzip
import signal
import struct
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pytest
from PIL import Image

from corpus import declared_png
from hcr.cli import main
from hcr.data.csv_source import CsvSource
from hcr.data.folder import FolderSource
from hcr.data.idx import read_idx_pair
from hcr.data.lines import LineFolder
from hcr.errors import HcrError

#: Seconds any one case may take (each reads a few KB; a hang or a huge allocation is a failure).
LIMIT_S = 20


@contextlib.contextmanager
def time_limit(seconds: int = LIMIT_S) -> Iterator[None]:
    """Fail with TimeoutError when the block runs longer than ``seconds`` (SIGALRM)."""

    def expired(*_: Any) -> None:
        raise TimeoutError(f"over the {seconds} s limit")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def listing(folder: Path) -> dict[str, int]:
    """Every file under ``folder`` with its size: what a failed load must leave unchanged."""
    return {p.relative_to(folder).as_posix(): p.stat().st_size for p in folder.rglob("*") if p.is_file()}


def assert_refused(load: Callable[[], object], folder: Path, names: str, problem: str) -> str:
    """``load()`` raises one HcrError line naming ``names`` (the file) and ``problem``, in time,
    writing nothing; returns the message."""
    before = listing(folder)
    with time_limit(), pytest.raises(HcrError) as err:
        load()
    message = str(err.value)
    assert len(message.splitlines()) == 1 and len(message) < 600, message
    assert names in message and problem in message, message
    assert "Traceback" not in message
    assert listing(folder) == before, "a failed load wrote files"
    return message


# --------------------------------------------------------------------------- IDX


def idx(values: np.ndarray | None = None, *, code: int = 0x08, shape: tuple[int, ...] | None = None, body: bytes | None = None) -> bytes:
    """IDX bytes: ``values``' own header and data, or a forged ``shape`` header with ``body``."""
    if values is not None:
        shape, body = values.shape, values.astype(np.uint8).tobytes()
    assert shape is not None and body is not None
    return bytes([0, 0, code, len(shape)]) + b"".join(struct.pack(">I", s) for s in shape) + body


IMAGES = np.zeros((4, 28, 28), np.uint8)
LABELS = np.arange(4, dtype=np.uint8)

#: name -> (images file bytes, labels file bytes, file that must be named, problem named)
IDX_CASES: dict[str, tuple[bytes, bytes, str, str]] = {
    "wrong-magic": (b"\x00\x01\x08\x03" + idx(IMAGES)[4:], idx(LABELS), "images", "bad magic"),
    "zip-magic": (b"PK\x03\x04" + idx(IMAGES)[4:], idx(LABELS), "images", "bad magic"),
    "unknown-type-code": (idx(IMAGES)[:2] + b"\x07" + idx(IMAGES)[3:], idx(LABELS), "images", "bad magic"),
    "empty-file": (b"", idx(LABELS), "images", "bad magic"),
    "truncated-header": (idx(IMAGES)[:9], idx(LABELS), "images", "truncated IDX header"),
    "zero-dims": (b"\x00\x00\x08\x00", idx(LABELS), "images", "truncated IDX header"),
    "truncated-data": (idx(IMAGES)[:-100], idx(LABELS), "images", "truncated or corrupt"),
    "trailing-data": (idx(IMAGES) + b"\x00" * 10, idx(LABELS), "images", "truncated or corrupt"),
    "huge-dims": (idx(shape=(2**32 - 1, 2**32 - 1, 2**32 - 1), body=b"\x00" * 64), idx(LABELS), "images", "over the"),
    "dims-overflowing-int64": (idx(shape=(2**31, 2**31, 4), body=b"\x00" * 64), idx(LABELS), "images", "over the"),
    "huge-labels-header": (idx(IMAGES), idx(shape=(2**32 - 1, 2**32 - 1), body=b"\x00"), "labels", "over the"),
    "count-mismatch": (idx(IMAGES), idx(LABELS[:3]), "has 4 images but", "3 labels"),
    "labels-as-images": (idx(LABELS), idx(LABELS), "images", "expected N x H x W"),
    "no-images": (idx(shape=(0, 28, 28), body=b""), idx(shape=(0,), body=b""), "images", "holds no images"),
    "float-pixels": (idx(shape=(4, 28, 28), body=b"\x00" * 4 * 784 * 4, code=0x0D), idx(LABELS), "images", "8-bit"),
    "float-labels": (idx(IMAGES), idx(shape=(4,), body=struct.pack(">4f", 1, 2, float("nan"), 3), code=0x0D), "labels", "integer labels"),
    "not-gzip.gz": (b"not gzip at all" * 10, idx(LABELS), "images", "gzip"),
    "truncated-gzip.gz": (gzip.compress(idx(IMAGES))[:40], idx(LABELS), "images", "gzip"),
    "gzip-bomb.gz": (gzip.compress(idx(IMAGES) + b"\x00" * (64 * 2**20)), idx(LABELS), "images", "truncated or corrupt"),
    "gzip-of-forged-header.gz": (gzip.compress(idx(shape=(2**30, 2**16, 2**16), body=b"\x00" * 64)), idx(LABELS), "images", "over the"),
}


@pytest.mark.parametrize("case", list(IDX_CASES))
def test_idx(case: str, tmp_path: Path) -> None:
    images, labels, named, problem = IDX_CASES[case]
    suffix = ".gz" if case.endswith(".gz") else ""
    img = tmp_path / f"images-idx3-ubyte{suffix}"
    lab = tmp_path / "labels-idx1-ubyte"
    img.write_bytes(images)
    lab.write_bytes(labels)
    named = {"images": img.name, "labels": lab.name}.get(named, named)
    assert_refused(lambda: read_idx_pair(img, lab), tmp_path, named, problem)


# --------------------------------------------------------------------------- pixel CSV

ROW = "3," + ",".join(["0"] * 16)  # a label and a 4 x 4 image

#: name -> (file bytes, problem named)
CSV_CASES: dict[str, tuple[bytes, str]] = {
    "empty": (b"", "no data rows"),
    "blank-lines": (b"\n\n  \n", "no data rows"),
    "header-only": (b"label,p0,p1,p2,p3\n", "read as a header"),
    "tab-separated": (ROW.replace(",", "\t").encode() + b"\n", "separated by tabs"),
    "semicolon-separated": (ROW.replace(",", ";").encode() + b"\n", "separated by semicolons"),
    "ragged-rows": (f"{ROW}\n{ROW},0\n".encode(), "line 2: expected 17 comma-separated values, found 18"),
    "short-row": (f"{ROW}\n3,0,0\n".encode(), "line 2: expected 17"),
    "non-numeric-pixel": (f"{ROW}\n{ROW[:-1]}x\n".encode(), "line 2, column 17: 'x' is not a number"),
    "fractional-pixel": (f"{ROW[:-1]}0.5\n".encode(), "'0.5' is not an integer"),
    "nan-pixel": (f"{ROW[:-1]}nan\n".encode(), "'nan' is not an integer"),
    "pixel-over-255": (f"{ROW[:-1]}256\n".encode(), "pixel value 256 is outside 0..255"),
    "negative-label": (("-1" + ROW[1:] + "\n").encode(), "label -1 is below"),
    "wrong-column-count": (("3," + ",".join(["0"] * 15) + "\n").encode(), "15 pixel values is not a square image"),
    "label-only": (b"3\n4\n", "0 pixel values is not a square image"),
    "binary-junk": (bytes(range(256)) * 8, "not a UTF-8 text CSV"),
    "nul-bytes": (f"{ROW}\n3,\x00,{','.join(['0'] * 15)}\n".encode(), "line 2, column 2"),
    "huge-field": (("3," + "1" * 2**20 + "," + ",".join(["0"] * 15) + "\n").encode(), "out of range"),
    "huge-integer": (("3," + "9" * 30 + "," + ",".join(["0"] * 15) + "\n").encode(), "out of range"),
    "truncated-gzip.csv.gz": (gzip.compress((ROW + "\n").encode() * 200)[:60], "cannot read"),
    "not-gzip.csv.gz": (b"3,0,0,0,0\n", "cannot read"),
}


@pytest.mark.parametrize("case", list(CSV_CASES))
def test_csv(case: str, tmp_path: Path) -> None:
    data, problem = CSV_CASES[case]
    path = tmp_path / (case if case.endswith(".gz") else f"{case}.csv")
    path.write_bytes(data)
    assert_refused(lambda: CsvSource(path).load("all"), tmp_path, path.name, problem)


# --------------------------------------------------------------------------- image folders


def _png(folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((16, 16), 255, np.uint8)).save(folder / name)


def _folder_case(case: str, root: Path) -> tuple[Path, str, str]:
    """Build the case under ``root``; returns (the source's root, the name and the problem expected)."""
    data = root / "letters"
    if case == "missing":
        return data, "letters", "does not exist"
    if case == "a-file":
        data.write_bytes(b"x")
        return data, "letters", "is not a folder"
    data.mkdir()
    if case == "empty":
        return data, "letters", "no class folders with images"
    if case == "images-at-top-level":
        _png(data, "a.png")
        return data, "letters", "no class folders with images"
    if case == "lines-layout-with-labels-tsv":
        _png(data / "images", "a.png")
        (data / "labels.tsv").write_text("file\ttext\nimages/a.png\thello\n")
        return data, "letters", "the data set lines:"
    if case == "malformed-labels-tsv-only":
        (data / "labels.tsv").write_bytes(b"\xff\xfe\x00garbage")
        return data, "letters", "no class folders with images"
    if case == "only-non-images":
        (data / "A").mkdir()
        (data / "A" / "notes.txt").write_text("hello")
        return data, "letters", "no class folders with images"
    broken = {
        "text-as-png": b"this is not an image\n",
        "empty-png": b"",
        "truncated-png": (Path(__file__).parents[2] / "samples" / "digit_3_paper.png").read_bytes()[:100],
        "html-as-png": b"<!DOCTYPE html><html><body>x</body></html>",
        "svg-as-png": b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>',
        "decompression-bomb-png": declared_png(100_000, 100_000),
    }[case]
    for cls in ("A", "B"):
        (data / cls).mkdir()
        (data / cls / f"{case}.png").write_bytes(broken)
    return data, f"{case}.png", "no readable images in"


FOLDER_CASES = ["missing", "a-file", "empty", "images-at-top-level", "lines-layout-with-labels-tsv", "malformed-labels-tsv-only",
                "only-non-images", "text-as-png", "empty-png", "truncated-png", "html-as-png", "svg-as-png", "decompression-bomb-png"]


@pytest.mark.parametrize("case", FOLDER_CASES)
def test_folder(case: str, tmp_path: Path) -> None:
    data, named, problem = _folder_case(case, tmp_path)
    assert_refused(lambda: FolderSource(data).load("all"), tmp_path, named, problem)


# --------------------------------------------------------------------------- word/line folders (labels.tsv)

#: name -> (labels.tsv bytes or None for none, problem named); the folder holds images/a.png and images/b.png
LINES_CASES: dict[str, tuple[bytes | None, str]] = {
    "no-labels-tsv": (None, "no labels.tsv"),
    "empty-labels-tsv": (b"", "no lines listed"),
    "header-only": (b"file\ttext\n", "no lines listed"),
    "missing-text-column": (b"file\twriter\nimages/a.png\tw1\n", "needs a header row with 'file' and 'text' columns"),
    "comma-separated": (b"file,text\nimages/a.png,hello\n", "separated by tabs"),
    "no-header": (b"images/a.png\thello\nimages/b.png\tworld\n", "needs a header row"),
    "missing-text-in-row": (b"file\ttext\nimages/a.png\thello\nimages/b.png\n", "line 3: empty file name or text"),
    "empty-text": (b"file\ttext\nimages/a.png\t   \n", "line 2: empty file name or text"),
    "unknown-files": (b"file\ttext\nimages/a.png\thello\nimages/nope.png\tworld\n", "1 listed image(s) not found, e.g. images/nope.png"),
    "path-outside-folder": (b"file\ttext\n../secret.png\thello\n", "is not a path inside"),
    "absolute-path": (b"file\ttext\n/etc/hostname\thello\n", "is not a path inside"),
    "latin-1-encoding": ("file\ttext\nimages/a.png\tStra\u00dfe\n".encode("latin-1"), "not UTF-8 text"),
    "binary-junk": (bytes(range(256)) * 8, "not UTF-8 text"),
    "huge-field": (b"file\ttext\nimages/a.png\t" + b"x" * 200_000 + b"\n", "cannot be read"),
}


@pytest.mark.parametrize("case", list(LINES_CASES))
def test_lines(case: str, tmp_path: Path) -> None:
    tsv, problem = LINES_CASES[case]
    data = tmp_path / "words"
    for name in ("a.png", "b.png"):
        _png(data / "images", name)
    if tsv is not None:
        (data / "labels.tsv").write_bytes(tsv)
    named = "words" if tsv is None else "labels.tsv"
    assert_refused(lambda: LineFolder(data).load("all"), tmp_path, named, problem)


def test_a_broken_line_image_is_named_when_decoded(tmp_path: Path) -> None:
    """Line images are read when used: a broken one is one error naming it."""
    from hcr.data.lines import decode_line

    data = tmp_path / "words"
    (data / "images").mkdir(parents=True)
    (data / "images" / "a.png").write_bytes(b"not a png")
    (data / "labels.tsv").write_text("file\ttext\nimages/a.png\thello\n")
    lines = LineFolder(data).load("all")
    assert_refused(lambda: decode_line(lines.image(0), lines.ids[0]), tmp_path, "a.png", "not an image")


# --------------------------------------------------------------------------- the command line


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``hcr argv`` in time: exit code 2 and one error line on stderr, which is returned."""
    with time_limit():
        code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (argv, out, err)
    assert "Traceback" not in out + err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("hcr: error: "), err
    return err


@pytest.mark.parametrize("case", ["empty", "tab-separated", "ragged-rows", "non-numeric-pixel", "wrong-column-count", "binary-junk", "huge-field"])
def test_cli_train_on_a_bad_csv(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, problem = CSV_CASES[case]
    path = tmp_path / f"{case}.csv"
    path.write_bytes(data)
    run = tmp_path / "run"
    err = _cli(["train", "--data", f"csv:{path}", "--out", str(run), "--epochs", "1", "--no-progress"], capsys)
    assert path.name in err and problem in err
    assert not run.exists() or not any(run.rglob("*")), "a failed run wrote files"


@pytest.mark.parametrize("case", ["empty", "images-at-top-level", "lines-layout-with-labels-tsv", "text-as-png", "decompression-bomb-png"])
def test_cli_train_on_a_bad_folder(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, named, problem = _folder_case(case, tmp_path)
    run = tmp_path / "run"
    err = _cli(["train", "--data", f"folder:{data}", "--out", str(run), "--epochs", "1", "--no-progress"], capsys)
    assert named in err and problem in err
    assert not run.exists() or not any(run.rglob("*")), "a failed run wrote files"


@pytest.mark.parametrize("case", ["empty-labels-tsv", "missing-text-column", "unknown-files", "latin-1-encoding", "path-outside-folder"])
def test_cli_data_info_on_a_bad_line_folder(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tsv, problem = LINES_CASES[case]
    assert tsv is not None
    data = tmp_path / "words"
    _png(data / "images", "a.png")
    (data / "labels.tsv").write_bytes(tsv)
    err = _cli(["data", "info", f"lines:{data}"], capsys)
    assert "labels.tsv" in err and problem in err


@pytest.mark.parametrize("case", ["wrong-magic", "huge-dims", "count-mismatch", "gzip-bomb.gz"])
def test_cli_train_on_bad_idx_files(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """EMNIST files of a split hcr does not checksum (a development subset placed by hand)."""
    images, labels, named, problem = IDX_CASES[case]
    folder = tmp_path / "emnist"
    folder.mkdir()
    (folder / "emnist-digits-mapping.txt").write_text("\n".join(f"{i} {48 + i}" for i in range(10)) + "\n")
    (folder / "emnist-digits-dev-train-images-idx3-ubyte.gz").write_bytes(images if case.endswith(".gz") else gzip.compress(images))
    (folder / "emnist-digits-dev-train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labels))
    run = tmp_path / "run"
    err = _cli(["train", "--data", "emnist-digits", "--train-split", "dev-train", "--val-split", "dev-train", "--data-dir", str(tmp_path),
                "--out", str(run), "--epochs", "1", "--no-progress"], capsys)
    assert "emnist-digits-dev-train" in err and problem in err
    assert not run.exists() or not any(run.rglob("*")), "a failed run wrote files"
