"""Documents of several pages (issue 17): PDFs (rendered with pypdfium2) and multi-page TIFFs
are read page by page (:func:`hcr.preprocess.iter_pages`) by ``hcr read``, ``hcr predict``,
the batch rows and the Python API, each result with its 1-based ``page``; animated GIFs and
single images keep their one-image behaviour.

The pages hold real handwriting (digits of samples/, :func:`conftest.handwritten_line`) that
the shipped ``chars`` model reads; the PDFs are written by Pillow, or by hand where Pillow
cannot (no pages, encrypted).
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import handwritten_line
from hcr import preprocess
from hcr.batch import ModelSpec, files_in, read_rows, run as run_batch
from hcr.errors import HcrError, InputError
from hcr.predictor import Predictor
from hcr.preprocess import iter_pages, load_image
from hcr.reader import Reader

from helpers_train import hcr_cache, single_thread  # noqa: F401  (fixtures)
from test_cli import _json_lines, run

pytestmark = pytest.mark.usefixtures("single_thread", "hcr_cache")

pytest.importorskip("pypdfium2")  # the test extra installs it (pip install 'hcr-toolkit[pdf]')

#: What each page holds, as the ``chars`` model reads it.
TEXTS = ["2357", "9 73", "53"]


@pytest.fixture(scope="module")
def pages() -> list[np.ndarray]:
    return [handwritten_line(t) for t in TEXTS]


def _save_all(images: list[np.ndarray], fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    first, *rest = [Image.fromarray(a) for a in images]
    first.save(buf, fmt, save_all=True, append_images=rest, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory, pages: list[np.ndarray]) -> Path:
    """doc.pdf (at 100 dpi: rendered at 200 dpi, twice the size) and doc.tif, three pages each."""
    d = tmp_path_factory.mktemp("docs")
    (d / "doc.pdf").write_bytes(_save_all(pages, "PDF", resolution=100.0))
    (d / "doc.tif").write_bytes(_save_all(pages, "TIFF", compression="tiff_deflate"))
    return d


def minimal_pdf(*objects: bytes, trailer: bytes = b"") -> bytes:
    """A PDF of ``objects`` (object 1 the catalogue) with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (i, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1) + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R %s>>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, trailer, xref)
    return bytes(out)


#: No pages; and one empty page, encrypted (a standard security handler with a user password).
NO_PAGES = minimal_pdf(b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>")
ENCRYPTED = minimal_pdf(
    b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] >>",
    b"<< /Filter /Standard /V 1 /R 2 /O <" + b"11" * 32 + b"> /U <" + b"22" * 32 + b"> /P -4 >>",
    trailer=b"/Encrypt 4 0 R /ID [<" + b"33" * 16 + b"> <" + b"33" * 16 + b">] ",
)


# --------------------------------------------------------------------------- iter_pages


def test_every_page_of_a_multipage_tiff(docs: Path, pages: list[np.ndarray]) -> None:
    got = list(iter_pages(docs / "doc.tif"))
    assert [n for n, _ in got] == [1, 2, 3]
    for (_, grey), page in zip(got, pages):
        np.testing.assert_array_equal(grey, page)  # lossless: each page exactly
    # the same from bytes and from an open PIL image; a single-image caller keeps the first page
    assert [n for n, _ in iter_pages((docs / "doc.tif").read_bytes())] == [1, 2, 3]
    assert [n for n, _ in iter_pages(Image.open(docs / "doc.tif"))] == [1, 2, 3]
    np.testing.assert_array_equal(load_image(docs / "doc.tif"), pages[0])


def test_pdf_pages_render_at_200_dpi(docs: Path, pages: list[np.ndarray]) -> None:
    got = list(iter_pages(docs / "doc.pdf"))
    assert [n for n, _ in got] == [1, 2, 3]
    for (_, grey), page in zip(got, pages):  # a page of 100-dpi pixels, rendered at 200 dpi
        assert abs(grey.shape[0] - 2 * page.shape[0]) <= 2 and abs(grey.shape[1] - 2 * page.shape[1]) <= 2
        assert grey.dtype == np.uint8 and grey.min() < 60 and np.median(grey) > 200  # dark ink on light paper
    with pytest.raises(InputError, match="a PDF document.*iter_pages"):
        load_image(docs / "doc.pdf")


def test_pdf_resolution_is_capped_by_the_pixel_limit(docs: Path, pages: list[np.ndarray], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preprocess, "MAX_PIXELS", 50_000)
    for _, grey in iter_pages(docs / "doc.pdf"):
        assert grey.size <= 50_000 and grey.size > 0.9 * 50_000  # as large as the limit allows
    monkeypatch.undo()
    for (_, grey), page in zip(iter_pages(docs / "doc.pdf", dpi=50), pages):  # and a lower resolution asked for
        assert abs(grey.shape[0] - page.shape[0] / 2) <= 2 and abs(grey.shape[1] - page.shape[1] / 2) <= 2


def test_animations_and_single_images_are_one_page(tmp_path: Path, pages: list[np.ndarray]) -> None:
    gif = tmp_path / "anim.gif"
    gif.write_bytes(_save_all(pages, "GIF", duration=100, loop=0))
    assert Image.open(gif).n_frames == 3
    ((n, grey),) = list(iter_pages(gif))  # an animation's frames are no pages: the first, as before
    assert n == 0 and grey.shape == pages[0].shape
    one = tmp_path / "one.tif"
    Image.fromarray(pages[1]).save(one)
    ((n, grey),) = list(iter_pages(one))
    assert n == 0
    np.testing.assert_array_equal(grey, pages[1])
    ((n, grey),) = list(iter_pages(pages[2]))
    assert n == 0
    np.testing.assert_array_equal(grey, pages[2])


def test_page_cap(docs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for doc in ("doc.tif", "doc.pdf"):
        with pytest.raises(InputError, match=r"doc\...f: 3 pages; at most 2 are read"):
            next(iter_pages(docs / doc, max_pages=2))  # before any page is decoded
    monkeypatch.setattr(preprocess, "MAX_PAGES", 2)
    with pytest.raises(InputError, match="3 pages; at most 2"):
        list(iter_pages(docs / "doc.tif"))


@pytest.mark.parametrize("data, message", [
    (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< garbage", "corrupt or unreadable PDF"),
    (ENCRYPTED, "encrypted"),
    (NO_PAGES, "no pages"),
])
def test_bad_pdfs_are_one_line_errors(data: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        list(iter_pages(data, name="bad.pdf"))
    assert str(info.value).startswith("bad.pdf: ") and "\n" not in str(info.value)


def test_without_pypdfium2_a_pdf_names_the_extra(docs: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "pypdfium2", None)  # import fails
    with pytest.raises(HcrError, match=r"pip install 'hcr-toolkit\[pdf\]'"):
        list(iter_pages(docs / "doc.pdf"))
    for command in ("read", "predict"):
        code, out, err = run(capsys, command, docs / "doc.pdf")
        assert code == 2 and out == "", command
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "pip install 'hcr-toolkit[pdf]'" in lines[0] and "Traceback" not in err


# --------------------------------------------------------------------------- API


def test_reader_and_predictor_read_every_page(docs: Path) -> None:
    reader = Reader.load()
    for doc in ("doc.pdf", "doc.tif"):
        results = reader.read_pages(docs / doc)
        assert [r.page for r in results] == [1, 2, 3] and [r.text for r in results] == TEXTS
        assert all(r.file == str(docs / doc) and r.error is None for r in results)
        assert [r.to_dict()["page"] for r in results] == [1, 2, 3]
    single = reader.read_pages(handwritten_line("25"))
    assert len(single) == 1 and single[0].page is None and "page" not in single[0].to_dict()
    bad = reader.read_pages(ENCRYPTED, name="locked.pdf")
    assert len(bad) == 1 and bad[0].error is not None and "encrypted" in bad[0].error

    preds = Predictor.load("digits").predict_files([docs / "doc.tif", docs / "doc.pdf"], pages=True)
    assert [(Path(str(p.file)).name, p.page) for p in preds] == [("doc.tif", n) for n in (1, 2, 3)] + [("doc.pdf", n) for n in (1, 2, 3)]
    old = Predictor.load("digits").predict_files([docs / "doc.tif", docs / "doc.pdf"])  # per file, as before
    assert [p.page for p in old] == [None, None] and old[1].error is not None and "PDF" in old[1].error


# --------------------------------------------------------------------------- command line


def test_cli_read_prints_each_page(docs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "read", docs / "doc.pdf", docs / "doc.tif", "--json")
    assert code == 0, err
    rows = _json_lines(out)
    assert [(Path(r["file"]).name, r["page"], r["text"]) for r in rows] == [
        (name, n, text) for name in ("doc.pdf", "doc.tif") for n, text in zip((1, 2, 3), TEXTS)]
    assert "6 images: 6 with text" in err
    code, out, _ = run(capsys, "read", docs / "doc.tif")
    assert code == 0 and out.splitlines() == [f"{docs / 'doc.tif'} page {n}: {t}" for n, t in zip((1, 2, 3), TEXTS)]


def test_cli_predict_answers_each_page(docs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one = tmp_path / "one.png"
    Image.fromarray(handwritten_line("7")).save(one)
    code, out, err = run(capsys, "predict", "--model", "digits", docs / "doc.tif", one, "--json", "--save-input", tmp_path / "inputs")
    assert code == 0, err
    rows = _json_lines(out)
    assert [r.get("page") for r in rows] == [1, 2, 3, None]  # a single image has no page
    assert rows[3]["label"] == "7" and "page" not in rows[3]
    assert len(list((tmp_path / "inputs").glob("*_doc_p*.png"))) == 3


def test_cli_bad_pdf_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name, data in (("corrupt.pdf", b"%PDF-1.7\n" + bytes(range(256))), ("locked.pdf", ENCRYPTED), ("empty.pdf", NO_PAGES)):
        bad = tmp_path / name
        bad.write_bytes(data)
        code, out, err = run(capsys, "read", bad)
        assert code == 2 and "Traceback" not in err  # an error row, as a corrupt image; nothing read: exit 2
        assert out.splitlines() == [out.strip()] and out.startswith(f"{bad}: ERROR {bad}: ")


def test_cli_page_cap(docs: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(preprocess, "MAX_PAGES", 2)
    code, out, _ = run(capsys, "read", docs / "doc.tif")
    assert code == 2 and "3 pages; at most 2 are read" in out and len(out.strip().splitlines()) == 1


def test_batch_rows_per_page(docs: Path, tmp_path: Path, pages: list[np.ndarray]) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("doc.pdf", "doc.tif"):
        (folder / name).write_bytes((docs / name).read_bytes())
    Image.fromarray(pages[2]).save(folder / "single.png")
    out = tmp_path / "rows.jsonl"
    summary = run_batch([str(folder)], out, ModelSpec("read"), progress=False)  # the folder's PDF is found too
    rows = read_rows(out)
    assert [(Path(r["file"]).name, r["page"], r["text"]) for r in rows] == [
        *[("doc.pdf", n, t) for n, t in zip((1, 2, 3), TEXTS)], *[("doc.tif", n, t) for n, t in zip((1, 2, 3), TEXTS)], ("single.png", 0, TEXTS[2])]
    assert summary.written == 7 and summary.failed == 0 and files_in(rows) == 3
    again = run_batch([str(folder)], out, ModelSpec("read"), progress=False, resume=True)  # every file is done
    assert again.written == 0 and again.skipped == 3 and len(read_rows(out)) == 7

    predicted = tmp_path / "labels.jsonl"
    run_batch([str(folder / "doc.tif")], predicted, ModelSpec("predict", "digits"), progress=False, details=True)
    rows = read_rows(predicted)
    assert [r["page"] for r in rows] == [1, 2, 3] and [json.loads(r["details"])["page"] for r in rows] == [1, 2, 3]
