"""Reading many images (hcr.batch, hcr read/predict --out): pickling the models, inputs,
one row per image in every format, bad files as error rows, workers, resume after a kill,
and Ray Data on a local 2-CPU instance (skipped with a reason when Ray is not installed)."""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from conftest import SAMPLES, handwritten_line

from hcr import batch
from hcr.batch import ImageRef, ModelSpec
from hcr.cli import main
from hcr.errors import HcrError
from hcr.predictor import Predictor
from hcr.reader import CrnnReader, Reader

LINE = Path(__file__).resolve().parents[1] / "docs" / "images" / "line.jpg"
#: Lines of real handwriting (the characters of samples/) and what the reader reads in them.
TEXTS = ["2357", "A 29", "RAh 34", "37 52"]


def _strip(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows without the timing column (the only one that differs between runs)."""
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """samples/ (characters, blank images, a scribble), a few lines of real handwriting in a
    sub-folder, a corrupt PNG, an empty file and a text file that is not an image."""
    root = tmp_path_factory.mktemp("images")
    for f in sorted(SAMPLES.iterdir()):
        if f.suffix in (".png", ".jpg"):
            shutil.copy(f, root / f.name)
    (root / "lines").mkdir()
    for i, text in enumerate(TEXTS):
        cv2.imwrite(str(root / "lines" / f"line{i}.png"), handwritten_line(text, 40))
    (root / "lines" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 20)
    (root / "empty.jpg").write_bytes(b"")
    return root


@pytest.fixture(scope="module")
def refs(images: Path) -> list[ImageRef]:
    return batch.list_images([str(images)]) + [ImageRef("missing.png", str(images / "missing.png"))]


@pytest.fixture(scope="module")
def reader() -> Reader:
    return Reader.load()


# --------------------------------------------------------------------------- pickling


def _read_in_child(model: Any, path: str) -> dict[str, Any]:
    """Runs in a spawned process: the unpickled model's answer for ``path``."""
    if isinstance(model, Predictor):
        return model.predict(path).to_dict()
    d = model.read(path).to_dict()
    d.pop("seconds")
    return d


def test_models_pickle_and_answer_the_same(reader: Reader) -> None:
    """Predictor, Reader (with its printed model) and CrnnReader: a pickle round trip
    reloads the onnxruntime sessions (not pickled) and answers identically."""
    predictor = Predictor.load("chars", charset="letters")
    copy = pickle.loads(pickle.dumps(predictor))
    assert copy.backend.session is not predictor.backend.session and copy.charset == "letters"
    for f in sorted(SAMPLES.glob("char_*")):
        assert copy.predict(str(f)).to_dict() == predictor.predict(str(f)).to_dict()
    crnn = CrnnReader.load()
    for model in (reader, crnn):
        copy = pickle.loads(pickle.dumps(model))
        assert copy.printed is not None and copy.printed.predictor.backend.session is not model.printed.predictor.backend.session
        for img in (LINE, handwritten_line("A 29", 40)):
            a, b = model.read(img).to_dict(), copy.read(img).to_dict()
            a.pop("seconds"), b.pop("seconds")
            assert a == b and a["text"]


def test_torch_and_torchscript_backends_pickle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hcr.export import export_model
    from hcr.runtime.torch import TorchBackend, TorchScriptBackend

    monkeypatch.setenv("HCR_RUNTIME", "pytorch")
    torch_predictor = Predictor.load("digits")
    assert isinstance(torch_predictor.backend, TorchBackend)
    ts = export_model("digits", "torchscript", tmp_path / "digits.ts", check=False).path
    ts_predictor = Predictor.load(ts)
    assert isinstance(ts_predictor.backend, TorchScriptBackend)
    data = pickle.dumps(ts_predictor)
    ts.unlink()  # the bytes travel in the pickle: the file need not exist where it is unpickled
    for p in (torch_predictor, ts_predictor):
        copy = pickle.loads(data if p is ts_predictor else pickle.dumps(p))
        for f in sorted(SAMPLES.glob("digit_*")):
            assert copy.predict(str(f)).to_dict() == p.predict(str(f)).to_dict()


def test_pickled_models_work_in_spawned_processes(reader: Reader) -> None:
    predictor = Predictor.load()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        got_p = pool.apply(_read_in_child, (predictor, str(SAMPLES / "char_R_blue-pen-scan.jpg")))
        got_r = pool.apply(_read_in_child, (reader, str(LINE)))
    assert got_p == predictor.predict(str(SAMPLES / "char_R_blue-pen-scan.jpg")).to_dict()
    want = reader.read(str(LINE)).to_dict()
    want.pop("seconds")
    assert got_r == want and got_r["text"] == "Anna 2024"


# --------------------------------------------------------------------------- inputs


def test_inputs_folders_globs_manifests(images: Path, tmp_path: Path) -> None:
    found = batch.list_images([str(images)])
    assert [r.file for r in found] == sorted(r.file for r in found) and len(found) == len({r.file for r in found})
    assert str(images / "lines" / "line0.png") in {r.file for r in found}  # recursive
    assert not any(r.file.endswith(".txt") for r in found)
    pattern = str(images / "**" / "line*.png")
    assert [Path(r.file).name for r in batch.list_images([pattern])] == ["line0.png", "line1.png", "line2.png", "line3.png"]
    # the same image named twice (folder and file) is read once
    assert len(batch.list_images([str(images), str(images / "blank_canvas.png")])) == len(found)

    # manifests: paths relative to the manifest's folder; `file` keeps the entry as written
    (images / "list.txt").write_text("# scans\nlines/line0.png\n\nchar_A_paper-photo.jpg\n")
    txt = batch.read_manifest(images / "list.txt")
    assert txt == [ImageRef("lines/line0.png", str(images / "lines/line0.png")), ImageRef("char_A_paper-photo.jpg", str(images / "char_A_paper-photo.jpg"))]
    (images / "m.csv").write_text("id,path\n1,lines/line1.png\n2,/abs/x.png\n")
    assert batch.read_manifest(images / "m.csv") == [ImageRef("lines/line1.png", str(images / "lines/line1.png")), ImageRef("/abs/x.png", "/abs/x.png")]
    (images / "m.jsonl").write_text('{"file": "lines/line2.png"}\n')
    assert batch.read_manifest(images / "m.jsonl")[0].source == str(images / "lines/line2.png")
    with pytest.raises(HcrError, match=r"no column 'name' \(columns: id, path\)"):
        batch.read_manifest(images / "m.csv", column="name")
    with pytest.raises(HcrError, match="looks like a model file"):
        batch.list_images(["model.onnx"])
    with pytest.raises(HcrError, match="no image files found"):
        batch.list_images([str(tmp_path)])
    with pytest.raises(HcrError, match="unknown kind .xlsx"):
        (tmp_path / "m.xlsx").write_text("x")
        batch.read_manifest(tmp_path / "m.xlsx")


def test_parquet_manifest_and_file_uris(images: Path, tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    uri = (images / "lines" / "line0.png").as_uri()
    pq.write_table(pa.table({"file": ["lines/line1.png", uri, "file:///no/such.png"]}), images / "m.parquet")
    got = batch.read_manifest(images / "m.parquet")
    assert [r.file for r in got] == ["lines/line1.png", uri, "file:///no/such.png"]
    out = tmp_path / "o.jsonl"
    batch.run(got, out, progress=False)
    rows = batch.read_rows(out)
    assert rows[1]["text"] == TEXTS[0] and rows[1]["error"] is None  # read through pyarrow's filesystem
    assert rows[2]["error"] == "file:///no/such.png: file not found"
    listed = batch.list_images([(images / "lines").as_uri()])  # a URI folder is listed
    assert [Path(r.file).name for r in listed] == ["corrupt.png", "line0.png", "line1.png", "line2.png", "line3.png"]


# --------------------------------------------------------------------------- rows and outputs


@pytest.fixture(scope="module")
def one_process(refs: list[ImageRef], tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    out = tmp_path_factory.mktemp("one") / "rows.jsonl"
    summary = batch.run(refs, out, ModelSpec(), progress=False)
    assert summary.written == len(refs) and summary.failed == 3 and summary.skipped == 0
    return batch.read_rows(out)


def test_one_row_per_image_and_bad_files_are_error_rows(one_process: list[dict[str, Any]], refs: list[ImageRef]) -> None:
    assert [r["file"] for r in one_process] == [r.file for r in refs]
    assert list(one_process[0]) == list(batch.READ_COLUMNS)
    by_name = {Path(r["file"]).name: r for r in one_process}
    assert by_name["line0.png"]["text"] == "2357" and 0.5 < by_name["line0.png"]["confidence"] <= 1
    assert by_name["line0.png"]["characters"] == 4 and by_name["line0.png"]["blank"] is False
    assert by_name["blank_canvas.png"]["blank"] is True and by_name["blank_canvas.png"]["text"] == ""
    errors = {n: r["error"] for n, r in by_name.items() if r["error"]}
    assert set(errors) == {"corrupt.png", "empty.jpg", "missing.png"}
    assert errors["missing.png"].endswith("missing.png: file not found")
    assert errors["empty.jpg"].endswith("empty.jpg: file is empty")
    assert "corrupt.png" in errors["corrupt.png"] and "\n" not in errors["corrupt.png"]
    assert all(r["text"] is None and r["confidence"] is None for r in one_process if r["error"])


def test_an_unexpected_failure_is_one_error_row(refs: list[ImageRef], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = Reader.read

    def flaky(self: Reader, image: Any, **kw: Any) -> Any:
        if str(kw.get("name") or image).endswith("line1.png"):  # the rows send each page's pixels, named
            raise RuntimeError("segmentation blew up\nsecond line")
        return original(self, image, **kw)

    monkeypatch.setattr(Reader, "read", flaky)
    rows = batch.read_rows(batch.run(refs[:22], tmp_path / "o.jsonl", progress=False).out)
    bad = [r for r in rows if r["error"] and "RuntimeError" in r["error"]]
    assert len(rows) == 22 and len(bad) == 1 and bad[0]["error"].endswith("line1.png: unexpected RuntimeError: segmentation blew up")


def test_two_workers_give_the_same_rows(one_process: list[dict[str, Any]], refs: list[ImageRef], tmp_path: Path, reader: Reader) -> None:
    summary = batch.run(refs, tmp_path / "w.jsonl", ModelSpec(), workers=2, progress=False, chunk_size=3)
    assert summary.written == len(refs)
    assert _strip(batch.read_rows(tmp_path / "w.jsonl")) == _strip(one_process)
    # a loaded model is pickled to the workers instead of loaded there by name
    batch.run(refs, tmp_path / "w2.jsonl", reader, workers=2, progress=False, chunk_size=5)
    assert _strip(batch.read_rows(tmp_path / "w2.jsonl")) == _strip(one_process)


class _DiesOnUnpickle:
    """A "model" whose unpickling kills the worker process (as the OOM killer would)."""

    def __reduce__(self) -> Any:
        return (os._exit, (3,))


def test_a_dead_worker_stops_the_run_with_one_clear_error(refs: list[ImageRef], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch, "task_of", lambda model: "read")
    with pytest.raises(HcrError, match="a worker process died .*rerun with --resume"):
        list(batch.iter_rows(refs, _DiesOnUnpickle(), workers=2))  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_formats_hold_the_same_rows(fmt: str, one_process: list[dict[str, Any]], refs: list[ImageRef], tmp_path: Path) -> None:
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    out = tmp_path / f"rows.{fmt}"
    batch.run(refs[:12] + refs[-4:], out, progress=False)
    rows = batch.read_rows(out)
    want = _strip(one_process[:12] + one_process[-4:])
    if fmt == "csv":  # text columns: None is empty, the rest as Python writes them
        want = [{k: "" if v is None else str(v) for k, v in r.items()} for r in want]
    assert _strip(rows) == want
    assert not list(tmp_path.glob(".*"))  # no journal or temporary file left behind


def test_multiline_text_and_details_in_csv(tmp_path: Path, reader: Reader) -> None:
    a, b = handwritten_line("2357", 40), handwritten_line("A 29", 40)
    page = np.full((a.shape[0] + b.shape[0], max(a.shape[1], b.shape[1])), 245, np.uint8)
    page[: a.shape[0], : a.shape[1]] = a
    page[a.shape[0] :, : b.shape[1]] = b
    cv2.imwrite(str(tmp_path / "page.png"), page)
    out = tmp_path / "o.csv"
    batch.run([str(tmp_path / "page.png")], out, progress=False, details=True)
    row = batch.read_rows(out)[0]
    assert row["text"] == reader.read(page).text == "2357\nA 29"  # a quoted field across lines
    details = json.loads(row["details"])
    assert details["file"] == str(tmp_path / "page.png") and len(details["lines"]) == 2 and details["characters"][0]["box"]


def test_predict_rows(tmp_path: Path) -> None:
    out = tmp_path / "p.jsonl"
    files = [str(SAMPLES / "char_A_paper-photo.jpg"), str(SAMPLES / "blank_canvas.png"), str(tmp_path / "nope.png")]
    summary = batch.run(files, out, ModelSpec("predict", charset="upper"), progress=False, top_k=2)
    a, blank, missing = batch.read_rows(out)
    assert summary.failed == 1 and summary.blank == 1 and list(a) == list(batch.PREDICT_COLUMNS)
    assert a["label"] == "A" and a["confidence"] > 0.9 and json.loads(a["top_k"])[0] == ["A", a["confidence"]] and len(json.loads(a["top_k"])) == 2
    assert blank["blank"] is True and blank["label"] is None
    assert missing["error"].endswith("nope.png: file not found") and missing["label"] is None


def test_existing_output_is_refused_unless_resume_or_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    out.write_text('{"file": "x"}\n')
    with pytest.raises(HcrError, match="exists: pass --resume .* or --overwrite"):
        batch.open_output(out, batch.READ_COLUMNS)
    with batch.open_output(out, batch.READ_COLUMNS, overwrite=True) as w:
        assert w.done == set()
    assert out.read_text() == ""
    out.write_text(json.dumps(dict.fromkeys(batch.PREDICT_COLUMNS, 1)) + "\n")
    with pytest.raises(HcrError, match="columns .* are not this job's"):
        batch.open_output(out, batch.READ_COLUMNS, resume=True)


# --------------------------------------------------------------------------- resume


def test_resume_after_a_torn_last_line(one_process: list[dict[str, Any]], refs: list[ImageRef], tmp_path: Path) -> None:
    """A killed run leaves finished rows and half a line: resume cuts the half line off,
    skips the finished images and appends the rest (no duplicates, none missing)."""
    out = tmp_path / "o.jsonl"
    batch.run(refs[:9], out, progress=False)
    with open(out, "ab") as f:
        f.write(b'{"file": "' + refs[9].file.encode() + b'", "page": 0, "te')  # torn mid-row
    summary = batch.run(refs, out, progress=False, resume=True)
    assert summary.skipped == 9 and summary.written == len(refs) - 9
    rows = batch.read_rows(out)
    assert _strip(rows) == _strip(one_process)


def test_resume_csv_after_a_torn_quoted_record(tmp_path: Path, refs: list[ImageRef], one_process: list[dict[str, Any]]) -> None:
    out = tmp_path / "o.csv"
    batch.run(refs[:5], out, progress=False)
    with open(out, "ab") as f:
        f.write(refs[5].file.encode() + b',0,"first line\nsecond')  # torn inside a quoted multi-line text
    summary = batch.run(refs, out, progress=False, resume=True)
    assert summary.skipped == 5
    rows = batch.read_rows(out)
    assert [r["file"] for r in rows] == [r["file"] for r in one_process]


def test_resume_parquet_from_its_journal(tmp_path: Path, refs: list[ImageRef], one_process: list[dict[str, Any]]) -> None:
    """Parquet is written at the end: a killed run leaves its rows in the journal, which
    resume counts as done and the next finished run writes out."""
    pytest.importorskip("pyarrow")
    out = tmp_path / "o.parquet"
    batch.run(refs[:4], out, progress=False)  # a finished run
    writer = batch.open_output(out, batch.READ_COLUMNS, resume=True)  # a second run, killed after 3 more rows
    rows = next(batch.iter_rows(refs[4:7], ModelSpec(), chunk_size=3))
    writer.write(rows)
    writer.journal.close()  # (the process dies here: the Parquet file is not rewritten)
    assert batch.journal_path(out).exists() and len(batch.read_rows(out)) == 4
    with open(batch.journal_path(out), "ab") as f:
        f.write(b'{"file": "torn')
    summary = batch.run(refs, out, progress=False, resume=True)
    assert summary.skipped == 7 and summary.written == len(refs) - 7
    assert _strip(batch.read_rows(out)) == _strip(one_process) and not batch.journal_path(out).exists()


def test_resume_after_killing_the_command(images: Path, tmp_path: Path) -> None:
    """``hcr read DIR --out FILE`` killed with SIGKILL while writing, then ``--resume``:
    every image exactly once."""
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(80):
        shutil.copy(images / "lines" / f"line{i % 4}.png", folder / f"img{i:02d}.png")
    out = tmp_path / "o.jsonl"
    cmd = [sys.executable, "-c", "import sys; from hcr.cli import main; sys.exit(main(sys.argv[1:]))", "read", str(folder), "--out", str(out), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and (not out.exists() or out.read_bytes().count(b"\n") < 8):
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    written = out.read_bytes().count(b"\n")
    assert 8 <= written < 80, "the run finished before it could be killed"
    with open(out, "ab") as f:
        f.write(b'{"file": "' + str(folder / "img79.png").encode())  # and a torn line, as a kill mid-write leaves
    assert main(["read", str(folder), "--out", str(out), "--resume", "--no-progress"]) == 0
    rows = batch.read_rows(out)
    assert sorted(r["file"] for r in rows) == sorted(str(f) for f in folder.iterdir())
    assert [r["text"] for r in rows] == TEXTS * 20


# --------------------------------------------------------------------------- the commands


def test_cli_batch_options(images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "p.csv"
    code = main(["predict", str(images / "lines"), str(images / "char_A_paper-photo.jpg"), "--out", str(out), "--no-progress", "--top-k", "2"])
    err = capsys.readouterr().err
    assert code == 1 and "6 images: 5 read, 0 blank, 1 failed" in err  # the corrupt PNG: exit 1, as without --out
    rows = batch.read_rows(out)
    assert [Path(r["file"]).name for r in rows] == ["corrupt.png", "line0.png", "line1.png", "line2.png", "line3.png", "char_A_paper-photo.jpg"]
    assert rows[-1]["label"] == "A" and rows[0]["error"]
    # a manifest, JSON Lines on stdout
    (tmp_path / "list.txt").write_text(f"{images / 'lines' / 'line1.png'}\n")
    assert main(["read", "--manifest", str(tmp_path / "list.txt"), "--out", "-", "--no-progress"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["text"] == TEXTS[1]
    # mistakes are one line and exit 2
    for argv, message in [
        (["read", str(images), "--workers", "2"], "--workers needs --out FILE"),
        (["read", str(images), "--out", str(out)], "exists: pass --resume"),
        (["read", str(images), "--out", str(tmp_path / "o.txt")], "cannot tell the output format"),
        (["read", str(images), "--out", str(tmp_path / "o.jsonl"), "--json"], "--json: not with --out"),
        (["read", "--out", str(tmp_path / "o.jsonl")], "give image files or folders, or --manifest FILE"),
        (["read", str(images), "--out", "-", "--resume"], "--resume needs an output file"),
    ]:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_parquet_without_pyarrow_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow raises ImportError
    with pytest.raises(HcrError, match=r"pip install 'hcr-toolkit\[distributed\]'"):
        batch.open_output(tmp_path / "o.parquet", batch.READ_COLUMNS)
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(HcrError, match=r"--ray needs Ray Data: pip install 'hcr-toolkit\[distributed\]'"):
        batch.run_ray([str(LINE)], tmp_path / "o.jsonl")


# --------------------------------------------------------------------------- Ray


@pytest.fixture(scope="module")
def ray_local() -> Any:
    """A local Ray instance limited to 2 CPUs, without the dashboard, shared by the Ray tests."""
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'hcr-toolkit[distributed]'")
    pytest.importorskip("ray.data", reason="Ray Data is not installed: pip install 'hcr-toolkit[distributed]'")
    import logging

    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_single_file_output_matches_one_process(ray_local: Any, refs: list[ImageRef], one_process: list[dict[str, Any]], tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    summary = batch.run_ray(refs, out, ModelSpec(), workers=2, progress=False, chunk_size=4)
    assert summary.written == len(refs) and summary.failed == 3
    assert _strip(batch.read_rows(out)) == _strip(one_process)  # in input order
    assert ray_local.is_initialized()  # an instance it did not start is left running
    # resume: nothing left to do
    assert batch.run_ray(refs, out, ModelSpec(), workers=2, progress=False, resume=True).skipped == len(refs)


def test_ray_shards_and_resume(ray_local: Any, refs: list[ImageRef], one_process: list[dict[str, Any]], tmp_path: Path) -> None:
    out = tmp_path / "shards"
    first = batch.run_ray(refs[:10], f"{out}/", ModelSpec(), workers=2, progress=False)
    assert first.written == 10 and list(out.glob("*.parquet"))
    second = batch.run_ray(refs, f"{out}/", ModelSpec(), workers=2, progress=False, resume=True)
    assert second.skipped == 10 and second.written == len(refs) - 10 and second.failed == 3
    rows = sorted(_strip(batch.read_rows(out)), key=lambda r: r["file"])
    assert rows == sorted(_strip(one_process), key=lambda r: r["file"])
    with pytest.raises(HcrError, match=r"holds \d+ parquet shards: pass --resume"):
        batch.run_ray(refs, f"{out}/", ModelSpec(), workers=2, progress=False)


def test_cli_ray_with_a_pickled_predictor(ray_local: Any, images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "p.parquet"
    assert main(["predict", str(images / "lines"), "--ray", "--workers", "2", "--out", str(out), "--no-progress", "--charset", "digits"]) == 1
    rows = batch.read_rows(out)
    assert [Path(r["file"]).name for r in rows] == ["corrupt.png", "line0.png", "line1.png", "line2.png", "line3.png"]
    assert "5 images: 4 read, 0 blank, 1 failed" in capsys.readouterr().err
    # a loaded model travels to the actors by pickle
    out2 = tmp_path / "p2.jsonl"
    batch.run_ray([str(SAMPLES / "digit_2_photo.jpg")], out2, Predictor.load("digits"), workers=1, progress=False)
    assert batch.read_rows(out2)[0]["label"] == "2"
