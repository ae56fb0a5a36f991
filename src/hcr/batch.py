"""Reading many images: one row per image, in several processes or on a Ray cluster.

``hcr read``/``hcr predict`` with ``--out`` (and ``--workers``, ``--resume``, ``--ray``) are
thin shells over this module; ``docs/scale.md`` says when to use which. The pieces:

* **Inputs** (:func:`list_images`): image files, folders (searched recursively), glob
  patterns (``"scans/**/*.png"``, quoted so the shell leaves them alone), URIs of object
  storage or other filesystems pyarrow knows (``s3://bucket/scans/``, ``gs://...``,
  ``file:///...``), and a manifest (:func:`read_manifest`): a text file with one path per
  line, or a CSV/TSV, Parquet or JSON Lines table with a ``file`` or ``path`` column. A
  manifest's relative paths are relative to the manifest's folder; each row's ``file`` is
  the entry as written, so results join back to the manifest.
* **The model** (:class:`ModelSpec`, or a loaded :class:`~hcr.predictor.Predictor`,
  :class:`~hcr.reader.Reader` or :class:`~hcr.reader.CrnnReader`: they pickle) is loaded
  once per worker process or Ray actor, with one onnxruntime/OpenCV/PyTorch thread per
  worker's share of the cores.
* **Rows** (:data:`READ_COLUMNS`, :data:`PREDICT_COLUMNS`): the same flat columns in every
  format. A file that cannot be read (missing, empty, corrupt, not an image, too large) is
  one row with ``error`` set and the other answers empty; it never stops the run.
* **Outputs** (:func:`open_output`): JSON Lines, CSV or Parquet (from the suffix, or
  ``fmt``). Rows are written as they come, in input order, each batch of rows with one
  write call to an unbuffered file, so a killed run leaves every finished row and at most
  one torn last line. With ``resume``, the images already in the output are skipped and
  the new rows appended; a torn last line (or CSV record) is cut off first. Parquet cannot
  be appended to: rows go to a journal beside it (``.NAME.rows.jsonl``) and the Parquet
  file is written (atomically, old rows first) when the run ends, or by the next
  ``resume`` after a killed run. Without ``resume`` or ``overwrite`` an existing output is
  refused, so a rerun never wipes hours of results by accident.
* **Ray** (:func:`run_ray`): the same rows from a Ray Data pipeline (``from_arrow`` of the
  image list, ``map_batches`` with a fixed pool of actors that each load the model once),
  streamed back into one output file, or written by the cluster as Parquet/JSON
  Lines/CSV shards into a folder (local or ``s3://...``). A local Ray instance is started
  when no address is given.

Parquet and Ray need the ``distributed`` extra (``pip install 'hcr-toolkit[distributed]'``:
``ray[data]`` and ``pyarrow``); without it, they fail with one line naming the extra.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import logging
import os
import sys
import time
import warnings
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Union
from urllib.parse import unquote, urlsplit

from .errors import HcrError, InputError

if TYPE_CHECKING:  # pragma: no cover
    from .reading import CrnnReader, Reader
    from .reading.char import Predictor

__all__ = [
    "FORMATS", "PREDICT_COLUMNS", "READ_COLUMNS", "TASKS", "BatchSummary", "ImageRef", "ModelSpec", "RowMaker", "RowWriter",
    "columns_for", "format_of", "iter_rows", "list_images", "open_output", "read_manifest", "run", "run_ray",
]

#: What a job does: ``read`` (text of lines, fields, pages) or ``predict`` (one character).
TASKS = ("read", "predict")
#: Output formats, told from the output's suffix (:func:`format_of`).
FORMATS = ("jsonl", "csv", "parquet")
_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
#: Columns of ``read`` rows and their types (``string``, ``int``, ``float``, ``bool``).
#: ``confidence``: the mean confidence of the characters read (None when none was);
#: ``uncertain``: how many were below the threshold; ``page``: the page of a document (a
#: PDF, a multi-page TIFF: one row per page, from 1; :func:`hcr.preprocess.iter_pages`), 0
#: for a single image; ``seconds``: time spent reading the image.
READ_COLUMNS: dict[str, str] = {
    "file": "string", "page": "int", "text": "string", "confidence": "float", "blank": "bool", "uncertain": "int",
    "characters": "int", "printed_only": "bool", "seconds": "float", "error": "string",
}
#: Columns of ``predict`` rows: ``label`` (None for a blank image), ``confidence``,
#: ``top_k`` (JSON text ``[["A", 0.98], ...]``), ``blank``, ``uncertain``, ``error``.
PREDICT_COLUMNS: dict[str, str] = {
    "file": "string", "page": "int", "label": "string", "confidence": "float", "top_k": "string", "blank": "bool",
    "uncertain": "bool", "error": "string",
}
#: With ``details``, one more column: the full result as JSON text (boxes, alternatives).
DETAILS_COLUMN = "details"
#: Images per work unit sent to a worker (and per batch written): small enough for a smooth
#: progress bar, large enough that process hand-offs cost nothing.
CHUNK = {"read": 8, "predict": 128}
#: The extra that brings Ray Data and pyarrow.
EXTRA = "distributed"

Row = dict[str, Any]
Model = Union["ModelSpec", "Predictor", "Reader", "CrnnReader"]


def _need_pyarrow(what: str) -> Any:
    try:
        import pyarrow  # type: ignore[import-untyped]
    except ImportError:
        raise HcrError(f"{what} needs pyarrow: pip install 'hcr-toolkit[{EXTRA}]' (or pyarrow)") from None
    return pyarrow


def _need_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError:
        raise HcrError(f"--ray needs Ray Data: pip install 'hcr-toolkit[{EXTRA}]' (ray[data] and pyarrow)") from None
    return ray


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:300]


# --------------------------------------------------------------------------- inputs


class ImageRef(NamedTuple):
    """One image to read: ``file`` (the row's key, as listed) and ``source`` (what is
    opened: a local path or a URI)."""

    file: str
    source: str


_MODEL_SUFFIXES = (".pt", ".onnx", ".keras", ".h5", ".tflite")
_GLOB_CHARS = set("*?[")


def is_uri(s: str) -> bool:
    """``s`` names a file through a filesystem URI (``s3://``, ``gs://``, ``file://``, ...)."""
    scheme = s.split("://", 1)[0] if "://" in s else ""
    return len(scheme) > 1 and scheme.replace("+", "").replace("-", "").isalnum()


#: Files of documents found in folders besides images (:func:`list_images`).
DOCUMENT_SUFFIXES = (".pdf",)


def _image_suffix(name: str) -> bool:
    """``name`` is an image's (or a document's) file name."""
    from .data.folder import IMAGE_SUFFIXES

    return Path(name).suffix.lower() in (*IMAGE_SUFFIXES, *DOCUMENT_SUFFIXES)


def list_images(inputs: Sequence[str | os.PathLike[str]], *, manifest: str | os.PathLike[str] | None = None, column: str | None = None,
                unique: bool = True) -> list[ImageRef]:
    """The images named by ``inputs`` and ``manifest``, in order, each once (``unique``;
    a file named twice keeps its first place).

    Folders are searched recursively for image files and PDFs (sorted); a pattern with ``*``, ``?``
    or ``[`` that is not itself a file is expanded (``**`` spans folders); a URI folder
    (``s3://bucket/prefix/``) is listed through pyarrow; any other name is kept as it is,
    so a missing file becomes an error row, not a failed run. Raises :class:`HcrError` for
    a model file passed as an image and when nothing is left."""
    refs: list[ImageRef] = []
    for item in map(str, inputs):
        if Path(item).suffix.lower() in _MODEL_SUFFIXES:  # the model used to be predict's first argument
            raise HcrError(f"{item} looks like a model file, not an image: pass it as --model {item}")
    for item in map(str, inputs):
        p = Path(item)
        if is_uri(item):
            refs.extend(_list_uri(item))
        elif p.is_dir():
            refs.extend(ImageRef(str(f), str(f)) for f in sorted(f for f in p.rglob("*") if f.is_file() and _image_suffix(f.name)))
        elif not p.exists() and _GLOB_CHARS & set(item):
            refs.extend(ImageRef(f, f) for f in sorted(glob.glob(item, recursive=True)) if Path(f).is_file())
        else:
            refs.append(ImageRef(item, item))
    if manifest is not None:
        refs.extend(read_manifest(manifest, column))
    if not refs:
        raise HcrError("no image files found in: " + ", ".join([*map(str, inputs), *([str(manifest)] if manifest else [])]))
    if not unique:
        return refs
    seen: set[str] = set()
    return [r for r in refs if not (r.file in seen or seen.add(r.file))]  # type: ignore[func-returns-value]


def read_manifest(path: str | os.PathLike[str], column: str | None = None) -> list[ImageRef]:
    """The images listed in a manifest: ``.txt``/``.lst`` (one path per line; blank lines
    and ``#`` comments skipped), ``.csv``/``.tsv``, ``.parquet`` or ``.jsonl`` (the
    ``column`` named, else ``file``, else ``path``). Relative paths are relative to the
    manifest's folder."""
    p = Path(path)
    if not p.is_file():
        raise HcrError(f"manifest {p}: file not found")
    suffix = p.suffix.lower()
    try:
        if suffix in (".txt", ".lst", ".list"):
            entries = [ln.strip() for ln in p.read_text(encoding="utf-8-sig").splitlines()]
            entries = [e for e in entries if e and not e.startswith("#")]
        elif suffix in (".csv", ".tsv"):
            with open(p, newline="", encoding="utf-8-sig") as f:
                reader = csv.DictReader(f, delimiter="\t" if suffix == ".tsv" else ",")
                col = _manifest_column(p, list(reader.fieldnames or []), column)
                entries = [(row.get(col) or "").strip() for row in reader]
        elif suffix in (".parquet", ".pq"):
            _need_pyarrow(f"manifest {p}")
            import pyarrow.parquet as pq  # type: ignore[import-untyped]

            schema = pq.read_schema(p)
            col = _manifest_column(p, list(schema.names), column)
            entries = [str(v) if v is not None else "" for v in pq.read_table(p, columns=[col]).column(col).to_pylist()]
        elif suffix in (".jsonl", ".ndjson"):
            rows = [json.loads(ln) for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()]
            col = _manifest_column(p, list(rows[0]) if rows else [], column)
            entries = [str(r.get(col) or "") for r in rows]
        else:
            raise HcrError(f"manifest {p}: unknown kind {suffix or '(no suffix)'}; use .txt (one path per line), .csv, .tsv, .parquet or .jsonl with a file or path column")
    except (OSError, UnicodeDecodeError, ValueError, csv.Error) as e:
        raise HcrError(f"manifest {p}: cannot read it ({_first_line(e)})") from None
    except Exception as e:  # pyarrow's errors on a damaged Parquet file
        if isinstance(e, HcrError):
            raise
        raise HcrError(f"manifest {p}: cannot read it ({_first_line(e)})") from None
    base = p.parent
    return [ImageRef(e, e if is_uri(e) or os.path.isabs(e) else str(base / e)) for e in entries if e]


def _manifest_column(path: Path, names: list[str], column: str | None) -> str:
    for c in ([column] if column else ["file", "path"]):
        if c in names:
            return c
    want = repr(column) if column else "'file' or 'path'"
    raise HcrError(f"manifest {path}: no column {want} (columns: {', '.join(names) or 'none'}); name it with --column")


def _list_uri(uri: str) -> list[ImageRef]:
    """The images under a URI folder (recursively), or the URI itself."""
    pa = _need_pyarrow(f"reading {uri}")
    fs_mod = pa.fs
    try:
        fs, path = fs_mod.FileSystem.from_uri(uri)
        info = fs.get_file_info(path)
        if info.type != fs_mod.FileType.Directory:
            return [ImageRef(uri, uri)]
        infos = fs.get_file_info(fs_mod.FileSelector(path, recursive=True))
    except Exception as e:  # noqa: BLE001
        raise HcrError(f"{uri}: cannot list it ({_first_line(e)})") from None
    scheme = uri.split("://", 1)[0]
    found = sorted(i.path for i in infos if i.type == fs_mod.FileType.File and _image_suffix(i.path))
    return [ImageRef(f"{scheme}://{f}", f"{scheme}://{f}") for f in found]


@lru_cache(maxsize=16)
def _filesystem(scheme: str, netloc: str) -> Any:
    import pyarrow.fs  # type: ignore[import-untyped]

    return pyarrow.fs.FileSystem.from_uri(f"{scheme}://{netloc}/")[0]


def read_uri(uri: str) -> bytes:
    """The bytes of the file at ``uri`` (through pyarrow's filesystems: S3, GCS, Azure,
    HDFS, local ``file://``); an :class:`InputError` naming it when it cannot be read."""
    from .preprocess import MAX_FILE_BYTES

    _need_pyarrow(f"reading {uri}")
    parts = urlsplit(uri)
    bucketed = parts.scheme in ("s3", "gs", "gcs", "abfs", "abfss", "az")
    path = parts.netloc + unquote(parts.path) if bucketed else unquote(parts.path)
    try:
        fs = _filesystem(parts.scheme, parts.netloc)
        with fs.open_input_file(path) as f:
            size = f.size()
            if size > MAX_FILE_BYTES:
                raise InputError(f"{uri}: file too large ({size:,} bytes; limit {MAX_FILE_BYTES:,})")
            return bytes(f.read())
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(f"{uri}: file not found") from None
    except Exception as e:  # noqa: BLE001
        raise InputError(f"{uri}: cannot read it ({_first_line(e)})") from None


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class ModelSpec:
    """How each worker loads its model: the options of ``hcr read`` (``task="read"``) or
    ``hcr predict`` (``task="predict"``). ``model``: a shipped name or a model file (None:
    the default of the task and engine); ``engine``: ``segment`` or ``crnn`` (read);
    ``lexicon``: a file of allowed words (read); ``beam``: beam width (crnn)."""

    task: str = "read"
    model: str | None = None
    engine: str = "segment"
    charset: str | None = None
    ignore_case: bool = False
    threshold: float = 0.5
    device: str = "cpu"
    lexicon: str | None = None
    beam: int | None = None
    context: bool = True
    keep_printed: bool = False

    def __post_init__(self) -> None:
        from .reading import ENGINES

        if self.task not in TASKS:
            raise HcrError(f"task {self.task!r}: choose one of {', '.join(TASKS)}")
        if self.engine not in ENGINES:
            raise HcrError(f"engine {self.engine!r}: choose one of {', '.join(ENGINES)}")
        if self.beam and (self.task != "read" or self.engine != "crnn"):
            raise HcrError("--beam applies to --engine crnn")

    def load(self, threads: int | None = None) -> Predictor | Reader | CrnnReader:
        """The loaded model, as ``hcr read``/``hcr predict`` load it; ``threads``:
        onnxruntime's threads per model (None: its default)."""
        from .reading.page import PRINTED_MODEL, PrintedModel
        from .reading.char import Predictor

        if self.task == "predict":
            return Predictor.load(self.model, threshold=self.threshold, device=self.device, charset=self.charset, ignore_case=self.ignore_case, threads=threads)
        printed = PrintedModel(Predictor.load(PRINTED_MODEL, device=self.device, threads=threads))
        if self.engine == "crnn":
            from .reading import CrnnReader
            from .reading.line import LineRecognizer

            recognizer = LineRecognizer.load(self.model, charset=self.charset, ignore_case=self.ignore_case, device=self.device,
                                             lexicon=self.lexicon, beam_width=self.beam, threads=threads)
            return CrnnReader(recognizer, threshold=self.threshold, printed=printed, keep_printed=self.keep_printed, context=self.context)
        from .reading import Reader, split_charset

        model_charset, marks = split_charset(self.charset)  # as Reader.load: marks are the reader's, the rest the classifier's
        predictor = Predictor.load(self.model, threshold=self.threshold, device=self.device, charset=model_charset, ignore_case=self.ignore_case, threads=threads)
        return Reader(predictor, punctuation=marks, lexicon=self.lexicon, context=self.context, printed=printed, keep_printed=self.keep_printed)


def task_of(model: Model) -> str:
    """``read`` or ``predict``: what ``model`` (a :class:`ModelSpec` or a loaded model) does."""
    if isinstance(model, ModelSpec):
        return model.task
    from .reading.char import Predictor

    if isinstance(model, Predictor):
        return "predict"
    if hasattr(model, "read_file"):
        return "read"
    raise HcrError(f"cannot run {type(model).__name__} over images: give a ModelSpec, a Predictor, a Reader or a CrnnReader")


def model_name(model: Model) -> str:
    """A short name of the model for summaries."""
    if isinstance(model, ModelSpec):
        return model.model or ("words" if model.task == "read" and model.engine == "crnn" else "chars")
    meta = getattr(model, "meta", None) or getattr(getattr(model, "predictor", None), "meta", None) or getattr(getattr(model, "recognizer", None), "meta", {})
    return str(meta.get("pretrained") or meta.get("source") or meta.get("model") or type(model).__name__)


def columns_for(task: str, details: bool = False) -> dict[str, str]:
    """The output columns (name -> type) of a ``task``'s rows."""
    cols = dict(READ_COLUMNS if task == "read" else PREDICT_COLUMNS)
    if details:
        cols[DETAILS_COLUMN] = "string"
    return cols


def limit_threads(threads: int | None) -> None:
    """One process's share of the cores for OpenCV and PyTorch (when loaded)."""
    if not threads:
        return
    import cv2

    cv2.setNumThreads(threads)
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(threads)


class RowMaker:
    """A loaded model and the row options: turns a list of :class:`ImageRef` into rows.
    ``field``: each image is a form field (read); ``top_k``: answers kept (predict);
    ``details``: add the full result as JSON text."""

    def __init__(self, model: Predictor | Reader | CrnnReader, *, field: bool = False, top_k: int = 3, details: bool = False) -> None:
        self.model = model
        self.task = task_of(model)
        self.field, self.top_k, self.details = field, top_k, details
        self.columns = columns_for(self.task, details)

    def _input(self, ref: ImageRef) -> tuple[Any, str | None]:
        """What to give the model for ``ref``, and the name to report it by."""
        if is_uri(ref.source):
            return read_uri(ref.source), ref.source
        return ref.source, None

    def _error(self, ref: ImageRef, message: str, page: int = 0) -> Row:
        row: Row = dict.fromkeys(self.columns)
        row.update(file=ref.file, page=page, error=message)
        return row

    def _add_details(self, row: Row, result: Any, file: str) -> None:
        """With ``details``: the whole result (its ``to_dict``) as JSON in one column."""
        if self.details:
            d = result.to_dict()
            d["file"] = file
            row[DETAILS_COLUMN] = json.dumps(d, ensure_ascii=False)

    def __call__(self, refs: Sequence[ImageRef]) -> list[Row]:
        return self._read(refs) if self.task == "read" else self._predict(refs)

    def _pages(self, ref: ImageRef) -> Iterator[tuple[int, Any, str]]:
        """Each page of ``ref`` (:func:`hcr.preprocess.iter_pages`): its number (0: a
        single image), its grey image and the name to report it by."""
        from .preprocess import iter_pages

        image, name = self._input(ref)
        label = name or ref.source
        for page, grey in iter_pages(image, name=name):
            yield page, grey, f"{label} page {page}" if page else label

    def _read(self, refs: Sequence[ImageRef]) -> list[Row]:
        rows: list[Row] = []
        for ref in refs:
            t0 = time.perf_counter()
            done = 0  # the last page of a document read
            try:
                for page, grey, name in self._pages(ref):
                    r = self.model.read(grey, name=name, field=self.field)  # type: ignore[union-attr]
                    chars = [c for c in r.characters if not c.mark]
                    row: Row = {
                        "file": ref.file, "page": page, "text": r.text,
                        "confidence": round(sum(c.confidence for c in chars) / len(chars), 6) if chars else None,
                        "blank": r.blank, "uncertain": r.uncertain, "characters": len(r.characters), "printed_only": r.printed_only,
                        "seconds": round(time.perf_counter() - t0, 4), "error": None,
                    }
                    r.file, r.page = ref.file, page or None
                    self._add_details(row, r, ref.file)
                    rows.append(row)
                    t0, done = time.perf_counter(), page
            except HcrError as e:
                rows.append(self._error(ref, str(e), _failed_page(done)))
            except Exception as e:  # noqa: BLE001  a bug on one strange image must not end a run of millions
                rows.append(self._error(ref, f"{ref.source}: unexpected {type(e).__name__}: {_first_line(e)}", _failed_page(done)))
        return rows

    def _predict(self, refs: Sequence[ImageRef]) -> list[Row]:
        from .reading.char import Predictor

        predictor = self.model
        assert isinstance(predictor, Predictor)
        pre: list[Any] = []
        rows: list[tuple[ImageRef, int, Row | None]] = []  # None: answered from ``pre``, in order
        for ref in refs:
            done = 0  # the last page of a document preprocessed
            try:
                for page, grey, name in self._pages(ref):
                    pre.append(predictor.preprocess(grey, name=name))
                    rows.append((ref, page, None))
                    done = page
            except HcrError as e:
                rows.append((ref, _failed_page(done), self._error(ref, str(e), _failed_page(done))))
            except Exception as e:  # noqa: BLE001
                rows.append((ref, _failed_page(done), self._error(ref, f"{ref.source}: unexpected {type(e).__name__}: {_first_line(e)}", _failed_page(done))))
        preds = iter(predictor.predict_inputs(pre, self.top_k))
        out: list[Row] = []
        for ref, page, row in rows:
            if row is None:
                p = next(preds)
                p.file, p.page = ref.file, page or None
                row = {
                    "file": ref.file, "page": page, "label": p.label, "confidence": round(float(p.confidence), 6),
                    "top_k": json.dumps([[s, round(float(c), 6)] for s, c in p.top_k], ensure_ascii=False),
                    "blank": p.blank, "uncertain": p.uncertain, "error": None,
                }
                self._add_details(row, p, ref.file)
            out.append(row)
        return out


def _failed_page(done: int) -> int:
    """The ``page`` of an error row: the page after ``done``, the last page of its document
    read (0, the file, when none was): :func:`files_in` counts each file once."""
    return done + 1 if done else 0


def _load(model: Model, threads: int | None) -> Predictor | Reader | CrnnReader:
    limit_threads(threads)
    loaded = model.load(threads) if isinstance(model, ModelSpec) else model
    limit_threads(threads)  # again: loading may have imported torch
    return loaded


# --------------------------------------------------------------------------- running


_WORKER: RowMaker | None = None


def _init_worker(model: Model, options: dict[str, Any], threads: int | None) -> None:
    """A worker process: load the model once (a pickled one loads its session on unpickle)."""
    global _WORKER
    _WORKER = RowMaker(_load(model, threads), **options)


def _work(refs: list[ImageRef]) -> list[Row]:
    assert _WORKER is not None, "worker not initialised"
    return _WORKER(refs)


def _chunks(refs: Sequence[ImageRef], size: int) -> Iterator[list[ImageRef]]:
    for i in range(0, len(refs), size):
        yield list(refs[i : i + size])


def worker_threads(workers: int) -> int:
    """Threads per worker process: its share of this machine's cores (at least 1)."""
    return max(1, (os.cpu_count() or 1) // max(workers, 1))


def iter_rows(refs: Sequence[ImageRef], model: Model, *, workers: int = 1, field: bool = False, top_k: int = 3, details: bool = False,
              chunk_size: int | None = None) -> Iterator[list[Row]]:
    """Rows for ``refs``, a list per chunk, in input order. ``workers`` > 1 runs that many
    processes (spawned: safe with threads and CUDA, and the same on every OS), each loading
    the model once; a loaded model is pickled to them. A worker that dies (out of memory,
    a crash in a native library) stops the run with an :class:`HcrError`; rows already
    yielded stay valid."""
    if workers < 1:
        raise HcrError(f"--workers {workers}: give 1 or more")
    task = task_of(model)
    size = chunk_size or CHUNK[task]
    options: dict[str, Any] = {"field": field, "top_k": top_k, "details": details}
    if workers == 1:
        maker = RowMaker(_load(model, None), **options)
        for chunk in _chunks(refs, size):
            yield maker(chunk)
        return
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    pending: deque[Future[list[Row]]] = deque()
    todo = _chunks(refs, size)
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(model, options, worker_threads(workers))) as pool:
        try:
            for chunk in todo:  # keep a few chunks per worker in flight; yield in order
                pending.append(pool.submit(_work, chunk))
                if len(pending) >= 3 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        except BrokenProcessPool:
            raise HcrError("a worker process died (out of memory, or killed); the rows written so far are kept: rerun with --resume") from None
        finally:
            for f in pending:
                f.cancel()


@dataclass
class BatchSummary:
    """What a run did: images listed (``total``), ``skipped`` (already in the output),
    rows ``written`` by this run, of which ``failed`` (error rows) and ``blank``."""

    total: int
    skipped: int = 0
    written: int = 0
    failed: int = 0
    blank: int = 0
    seconds: float = 0.0
    out: str = ""
    task: str = "read"
    model: str = ""

    @property
    def images_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0

    def count(self, rows: Sequence[Row]) -> None:
        self.written += len(rows)
        self.failed += sum(r.get("error") is not None for r in rows)
        self.blank += sum(bool(r.get("blank")) for r in rows)

    def describe(self) -> str:
        if not self.written and self.skipped:
            return f"nothing to do: all {self.total} images are already in {self.out}"
        done = self.written - self.failed - self.blank
        what = "with text" if self.task == "read" else "read"
        s = (f"{self.written} images: {done} {what}, {self.blank} blank, {self.failed} failed "
             f"({self.images_per_second:.1f} images/s; model {self.model})")
        if self.skipped:
            s += f"; {self.skipped} already in {self.out}, skipped"
        return s + (f"; rows in {self.out}" if self.out and self.out != "-" else "")


def files_in(rows: Sequence[Row]) -> int:
    """How many files ``rows`` finish: each file has exactly one row of page 0 (an image,
    or an error) or 1 (the first page of a document)."""
    return sum(int(r.get("page") or 0) <= 1 for r in rows)


def _progress(total: int, initial: int, enabled: bool, desc: str) -> Any:
    from tqdm.auto import tqdm  # type: ignore[import-untyped]

    return tqdm(total=total, initial=initial, disable=not enabled, unit="img", desc=desc, file=sys.stderr, dynamic_ncols=True, smoothing=0.1)


def run(inputs: Sequence[ImageRef] | Sequence[str], out: str | os.PathLike[str], model: Model | None = None, *, fmt: str | None = None,
        workers: int = 1, resume: bool = False, overwrite: bool = False, progress: bool = True, field: bool = False, top_k: int = 3,
        details: bool = False, chunk_size: int | None = None) -> BatchSummary:
    """Read (or predict) every image of ``inputs`` (:class:`ImageRef` s, or names for
    :func:`list_images`) with ``model`` (default: ``ModelSpec()``, ``hcr read``'s
    defaults) in ``workers`` processes, writing one row per image to ``out`` (``-``:
    JSON Lines on stdout); see the module docstring for formats, ``resume`` and errors."""
    model = ModelSpec() if model is None else model
    task = task_of(model)
    refs = _as_refs(inputs)
    with open_output(out, columns_for(task, details), fmt=fmt, resume=resume, overwrite=overwrite) as writer:
        todo = [r for r in refs if r.file not in writer.done]
        summary = BatchSummary(len(refs), len(refs) - len(todo), out=str(out), task=task, model=model_name(model))
        t0 = time.perf_counter()
        with _progress(len(refs), summary.skipped, progress, f"hcr {task}") as bar:
            for rows in iter_rows(todo, model, workers=workers, field=field, top_k=top_k, details=details, chunk_size=chunk_size):
                writer.write(rows)
                summary.count(rows)
                bar.update(files_in(rows))
        summary.seconds = time.perf_counter() - t0
    return summary


def _as_refs(inputs: Sequence[ImageRef] | Sequence[str]) -> list[ImageRef]:
    if all(isinstance(i, ImageRef) for i in inputs):
        return list(inputs)  # type: ignore[arg-type]
    return list_images([str(i) for i in inputs])


# --------------------------------------------------------------------------- outputs


def format_of(out: str | os.PathLike[str], fmt: str | None = None) -> str:
    """The output format: ``fmt`` when given, else from the suffix (``.jsonl``, ``.csv``,
    ``.parquet``); ``-`` (stdout) is JSON Lines."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise HcrError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
        return fmt
    if str(out) == "-":
        return "jsonl"
    name = str(out).rstrip("/")
    found = _SUFFIXES.get(os.path.splitext(name)[1].lower())
    if found is None:
        raise HcrError(f"{out}: cannot tell the output format from the name; end it with .jsonl, .csv or .parquet, or pass --format")
    return found


class RowWriter:
    """Appends rows to an output; ``done`` holds the files already in it (``resume``).
    A context manager: leaving it (normally or by an exception) finishes the file."""

    done: set[str]

    def __init__(self) -> None:
        self.done = set()

    def write(self, rows: Sequence[Row]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> RowWriter:  # noqa: PYI034  (typing_extensions.Self is not a dependency)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_columns(path: Path, found: Sequence[str], columns: dict[str, str]) -> None:
    if list(found) != list(columns):
        raise HcrError(f"{path}: its columns ({', '.join(found)}) are not this job's ({', '.join(columns)}): resume with the same command, or write to a new file")


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


class _FileWriter(RowWriter):
    """Rows appended to a local file: each batch is one write call on an unbuffered file."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._f: Any = None

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "ab", buffering=0)  # noqa: SIM115  (closed in close())

    def _append(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = self._f.write(view)
            view = view[n:]

    def close(self) -> None:
        if self._f is not None:
            try:
                os.fsync(self._f.fileno())
            except OSError:
                pass
            self._f.close()
            self._f = None


class JsonlWriter(_FileWriter):
    """JSON Lines: one object per line. On resume, a torn last line is cut off."""

    def __init__(self, path: Path, columns: dict[str, str], resume: bool) -> None:
        super().__init__(path)
        self.columns = columns
        if resume and path.exists():
            self.done = _jsonl_keys(path, columns)
        self._open()

    def write(self, rows: Sequence[Row]) -> None:
        if rows:
            self._append("".join(json.dumps({k: _plain(r.get(k)) for k in self.columns}, ensure_ascii=False) + "\n" for r in rows).encode("utf-8"))


def _jsonl_keys(path: Path, columns: dict[str, str] | None, *, repair: bool = True) -> set[str]:
    """The ``file`` of each row of a JSON Lines output; a torn last line (no newline, or
    not JSON) is cut off (``repair``), any other bad line is an error."""
    keys: set[str] = set()
    good = 0  # offset after the last good line
    with open(path, "rb") as f:
        lines = list(f)
    for i, line in enumerate(lines):
        last = i == len(lines) - 1
        try:
            if not line.endswith(b"\n"):
                raise ValueError("torn line")
            row = json.loads(line)
            if not isinstance(row, dict) or "file" not in row:
                raise ValueError("not a row")
        except ValueError:
            if last:
                break
            raise HcrError(f"{path}: line {i + 1} is not a row of hcr's output (damaged?); remove it, or write to a new file") from None
        if columns is not None and i == 0:
            _check_columns(path, list(row), columns)
        keys.add(str(row["file"]))
        good += len(line)
    if repair and good < path.stat().st_size:
        with open(path, "r+b") as f:
            f.truncate(good)
    return keys


class CsvWriter(_FileWriter):
    """CSV with a header row (texts with newlines are quoted). On resume, a torn last
    record (unbalanced quotes, no final newline, too few fields) is cut off."""

    def __init__(self, path: Path, columns: dict[str, str], resume: bool) -> None:
        super().__init__(path)
        self.columns = columns
        header = resume and path.exists() and path.stat().st_size > 0
        if header:
            self.done = _csv_keys(path, columns)
        self._open()
        if not header or (path.stat().st_size == 0):
            self._append(self._encode([dict(zip(columns, columns))]))

    def _encode(self, rows: Sequence[Row]) -> bytes:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        for r in rows:
            w.writerow(["" if r.get(k) is None else _plain(r.get(k)) for k in self.columns])
        return buf.getvalue().encode("utf-8")

    def write(self, rows: Sequence[Row]) -> None:
        if rows:
            self._append(self._encode(rows))


def _csv_records(path: Path) -> Iterator[tuple[int, bytes]]:
    """(start offset, bytes) of each CSV record (a record ends at a newline outside quotes);
    the last one may be torn."""
    start, buf, quotes = 0, b"", 0
    with open(path, "rb") as f:
        for line in f:
            buf += line
            quotes += line.count(b'"')
            if quotes % 2 == 0 and line.endswith(b"\n"):
                yield start, buf
                start += len(buf)
                buf, quotes = b"", 0
    if buf:
        yield start, buf


def _csv_keys(path: Path, columns: dict[str, str], *, repair: bool = True) -> set[str]:
    keys: set[str] = set()
    records = list(_csv_records(path))
    cut: int | None = None
    header: list[str] | None = None
    for i, (start, raw) in enumerate(records):
        last = i == len(records) - 1
        try:
            if not raw.endswith(b"\n") or raw.count(b'"') % 2:
                raise ValueError("torn record")
            fields = next(csv.reader(io.StringIO(raw.decode("utf-8")), strict=True))
        except (ValueError, csv.Error, StopIteration):
            if last:
                cut = start
                break
            raise HcrError(f"{path}: record {i + 1} is not a row of hcr's output (damaged?); remove it, or write to a new file") from None
        if header is None:
            header = fields
            _check_columns(path, header, columns)
            continue
        if len(fields) != len(header):
            if last:
                cut = start
                break
            raise HcrError(f"{path}: record {i + 1} has {len(fields)} fields, not {len(header)}; remove it, or write to a new file")
        keys.add(fields[0])
    if repair and cut is not None:
        with open(path, "r+b") as f:
            f.truncate(cut)
    return keys


def _arrow_schema(columns: dict[str, str]) -> Any:
    import pyarrow as pa  # type: ignore[import-untyped]

    types = {"string": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}
    return pa.schema([(name, types[t]) for name, t in columns.items()])


class ParquetWriter(RowWriter):
    """Parquet, which cannot be appended to: rows go to a JSON Lines journal beside the
    output (``.NAME.rows.jsonl``), and :meth:`close` writes the Parquet file (the rows of
    the file being resumed first, then the journal's), atomically, and removes the
    journal. A killed run leaves the journal: ``resume`` takes its rows as done and the
    next finished run writes them out."""

    ROW_GROUP = 65536

    def __init__(self, path: Path, columns: dict[str, str], resume: bool) -> None:
        super().__init__()
        _need_pyarrow(f"{path}: Parquet output")
        self.path, self.columns = path, columns
        self.journal_path = journal_path(path)
        self.previous: set[str] = set()
        if resume and path.exists():
            self.previous = _parquet_keys(path, columns)
        self.done = set(self.previous)
        if resume and self.journal_path.exists():
            self.done |= _jsonl_keys(self.journal_path, columns)
        elif self.journal_path.exists():
            self.journal_path.unlink()
        self.journal = JsonlWriter(self.journal_path, columns, resume=True)

    def write(self, rows: Sequence[Row]) -> None:
        self.journal.write(rows)

    def close(self) -> None:
        import pyarrow as pa  # type: ignore[import-untyped]
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        from .modelfile import commit, remove_path, temp_sibling

        self.journal.close()
        schema = _arrow_schema(self.columns)
        tmp = temp_sibling(self.path)
        try:
            with pq.ParquetWriter(tmp, schema) as w:
                if self.previous:  # resumed: the finished file's rows first
                    for batch in pq.ParquetFile(self.path).iter_batches(self.ROW_GROUP):
                        w.write_table(pa.Table.from_batches([batch]).cast(schema))
                for rows in _read_jsonl_chunks(self.journal_path, self.ROW_GROUP):
                    rows = [r for r in rows if str(r["file"]) not in self.previous]  # killed between commit and unlink
                    if rows:
                        w.write_table(pa.Table.from_pylist(rows, schema=schema))
            commit(tmp, self.path)
        except BaseException:
            remove_path(tmp)
            raise
        self.journal_path.unlink(missing_ok=True)


def journal_path(path: Path) -> Path:
    """Where a Parquet output keeps its rows while a run is going on."""
    return path.with_name(f".{path.name}.rows.jsonl")


def _read_jsonl_chunks(path: Path, size: int) -> Iterator[list[Row]]:
    rows: list[Row] = []
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
                if len(rows) >= size:
                    yield rows
                    rows = []
    if rows:
        yield rows


def _parquet_keys(path: Path, columns: dict[str, str] | None) -> set[str]:
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    try:
        names = pq.read_schema(path).names
        if columns is not None:
            _check_columns(path, names, columns)
        return {str(v) for v in pq.read_table(path, columns=["file"]).column("file").to_pylist()}
    except HcrError:
        raise
    except Exception as e:  # noqa: BLE001
        raise HcrError(f"{path}: not a readable Parquet file ({_first_line(e)}); move it away, or write to a new file") from None


class _StdoutWriter(RowWriter):
    def __init__(self, columns: dict[str, str]) -> None:
        super().__init__()
        self.columns = columns

    def write(self, rows: Sequence[Row]) -> None:
        for r in rows:
            sys.stdout.write(json.dumps({k: _plain(r.get(k)) for k in self.columns}, ensure_ascii=False) + "\n")
        sys.stdout.flush()


def open_output(out: str | os.PathLike[str], columns: dict[str, str], *, fmt: str | None = None, resume: bool = False, overwrite: bool = False) -> RowWriter:
    """A :class:`RowWriter` for ``out`` (``-``: JSON Lines on stdout). An existing output is
    continued with ``resume`` (its files are in ``writer.done``), replaced with
    ``overwrite``, and otherwise refused."""
    kind = format_of(out, fmt)
    if str(out) == "-":
        if resume:
            raise HcrError("--resume needs an output file (--out FILE), not stdout")
        return _StdoutWriter(columns)
    if is_uri(str(out)):
        raise HcrError(f"{out}: one output file is written on this machine; write shards to object storage with --ray and an --out folder")
    path = Path(out)
    if path.is_dir():
        raise HcrError(f"{path} is a folder: give an output file (.jsonl, .csv, .parquet); folders of shards are written with --ray")
    exists = path.exists() or (kind == "parquet" and journal_path(path).exists())
    if exists and not resume:
        if not overwrite:
            raise HcrError(f"{path} exists: pass --resume to skip the images already in it, or --overwrite to replace it")
        path.unlink(missing_ok=True)
        journal_path(path).unlink(missing_ok=True)
    if kind == "jsonl":
        return JsonlWriter(path, columns, resume)
    if kind == "csv":
        return CsvWriter(path, columns, resume)
    return ParquetWriter(path, columns, resume)


def read_rows(path: str | os.PathLike[str], fmt: str | None = None) -> list[Row]:
    """Every row of an output file or a folder of shards, typed as written (CSV gives
    strings); for tests and small outputs."""
    p = Path(path)
    if p.is_dir():
        return [r for f in sorted(p.iterdir()) if f.is_file() and not f.name.startswith(".") for r in read_rows(f, _shard_format(f, fmt))]
    kind = format_of(p, fmt)
    if kind == "jsonl":
        return [json.loads(ln) for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if kind == "csv":
        with open(p, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    _need_pyarrow(f"{p}: Parquet")
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    return list(pq.read_table(p).to_pylist())


# --------------------------------------------------------------------------- Ray


_RAY_SUFFIXES = {"parquet": ".parquet", "jsonl": ".json", "csv": ".csv"}


def _shard_format(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        return fmt
    suffix = path.suffix.lower()
    return {".json": "jsonl", ".jsonl": "jsonl", ".csv": "csv"}.get(suffix, "parquet")


class RayRows:
    """The Ray Data map: an actor that loads the model once and turns batches of
    ``file``/``source`` columns into row tables (typed by :func:`columns_for`)."""

    def __init__(self, model: Model, options: dict[str, Any], threads: int | None = 1) -> None:
        self.maker = RowMaker(_load(model, threads), **options)
        self.schema = _arrow_schema(self.maker.columns)

    def __call__(self, batch: dict[str, Any]) -> Any:
        import pyarrow as pa  # type: ignore[import-untyped]

        refs = [ImageRef(str(f), str(s)) for f, s in zip(batch["file"], batch["source"])]
        return pa.Table.from_pylist(self.maker(refs), schema=self.schema)


def is_shard_folder(out: str | os.PathLike[str]) -> bool:
    """``out`` names a folder of shards (ends with ``/``, is a folder, or a URI without a
    file suffix) rather than one output file."""
    s = str(out)
    if s == "-":
        return False
    if s.endswith("/") or Path(s).is_dir():
        return True
    return is_uri(s) and os.path.splitext(s)[1].lower() not in _SUFFIXES


def _list_shards(out: str, fmt: str) -> tuple[Any, list[str]]:
    """The filesystem of a folder of shards (local or a URI) and its shard files, sorted
    (none when the folder does not exist)."""
    import pyarrow.fs as pafs  # type: ignore[import-untyped]

    try:
        fs, base = pafs.FileSystem.from_uri(out) if is_uri(out) else (pafs.LocalFileSystem(), str(Path(out).resolve()))
        if fs.get_file_info(base).type != pafs.FileType.Directory:
            return fs, []
        infos = fs.get_file_info(pafs.FileSelector(base, recursive=False))
    except Exception as e:  # noqa: BLE001
        raise HcrError(f"{out}: cannot list the shards ({_first_line(e)})") from None
    names = [i.path for i in infos if i.type == pafs.FileType.File and i.path.endswith(_RAY_SUFFIXES[fmt])
             and not i.path.rsplit("/", 1)[-1].startswith((".", "_"))]
    return fs, sorted(names)


def _shard_table(fs: Any, path: str, fmt: str, columns: Sequence[str]) -> list[Row]:
    """``columns`` of every row of one shard; an unreadable shard (a killed run's) is an
    error naming it."""
    try:
        with fs.open_input_file(path) as f:
            data = f.read()
        if fmt == "parquet":
            import pyarrow.parquet as pq  # type: ignore[import-untyped]

            return list(pq.read_table(io.BytesIO(data), columns=list(columns)).to_pylist())
        if fmt == "jsonl":
            rows = [json.loads(ln) for ln in data.decode("utf-8").splitlines() if ln.strip()]
        else:
            rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
            for r in rows:  # CSV holds text: the summary counts these two
                r["error"] = r.get("error") or None
                r["blank"] = r.get("blank") == "True"
        return [{c: r.get(c) for c in columns} for r in rows]
    except Exception as e:  # noqa: BLE001
        raise HcrError(f"{path}: an unreadable shard (from a killed run?) ({_first_line(e)}); delete it and rerun with --resume") from None


def _shard_keys(out: str, fmt: str) -> set[str]:
    """The files already in a folder of shards."""
    fs, files = _list_shards(out, fmt)
    return {str(r["file"]) for f in files for r in _shard_table(fs, f, fmt, ["file"])}


def _ray_init(ray: Any, address: str | None, num_cpus: int | None) -> bool:
    """Connect to ``address`` or start a local instance (``num_cpus``); True when this call
    started it (and should stop it)."""
    if ray.is_initialized():
        return False
    kw: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.ERROR, "log_to_driver": False}
    if address:
        ray.init(address=address, **kw)
    else:
        ray.init(num_cpus=num_cpus or os.cpu_count() or 1, **kw)
    return True


def run_ray(inputs: Sequence[ImageRef] | Sequence[str], out: str | os.PathLike[str], model: Model | None = None, *, address: str | None = None,
            workers: int | None = None, fmt: str | None = None, resume: bool = False, overwrite: bool = False, progress: bool = True,
            field: bool = False, top_k: int = 3, details: bool = False, chunk_size: int | None = None) -> BatchSummary:
    """:func:`run` on Ray Data: ``workers`` actors (default: the cluster's CPUs), each
    loading the model once, on the cluster at ``address`` (``auto``, ``ray://host:10001``)
    or on a local instance with ``workers`` CPUs (default: this machine's). ``out`` is one
    file (rows streamed back here, in input order; ``resume`` as in :func:`run`) or a
    folder of shards written by the workers (ends with ``/``, or a URI such as
    ``s3://bucket/out/``; ``fmt`` picks Parquet, the default, JSON Lines or CSV shards;
    ``resume`` skips the files in the shards already there)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ray\.")  # about Ray's own settings, not ours
        return _run_ray(inputs, out, model, address=address, workers=workers, fmt=fmt, resume=resume, overwrite=overwrite,
                        progress=progress, field=field, top_k=top_k, details=details, chunk_size=chunk_size)


def _run_ray(inputs: Sequence[ImageRef] | Sequence[str], out: str | os.PathLike[str], model: Model | None = None, *, address: str | None = None,
             workers: int | None = None, fmt: str | None = None, resume: bool = False, overwrite: bool = False, progress: bool = True,
             field: bool = False, top_k: int = 3, details: bool = False, chunk_size: int | None = None) -> BatchSummary:
    ray = _need_ray()
    import pyarrow as pa  # type: ignore[import-untyped]

    model = ModelSpec() if model is None else model
    task = task_of(model)
    columns = columns_for(task, details)
    refs = _as_refs(inputs)
    shards = is_shard_folder(out)
    kind = format_of(out, fmt) if not shards else (fmt or "parquet")
    if shards and kind not in FORMATS:
        raise HcrError(f"--format {kind!r}: choose one of {', '.join(FORMATS)}")
    writer: RowWriter | None = None
    if shards:
        fs, existing = _list_shards(str(out), kind)
        if existing and not resume:
            if not overwrite:
                raise HcrError(f"{out} holds {len(existing)} {kind} shards: pass --resume to skip the images already in them, or --overwrite to delete them")
            for f in existing:  # only the shards: other files in the folder stay
                fs.delete_file(f)
        done = _shard_keys(str(out), kind) if resume else set()
    else:
        writer = open_output(out, columns, fmt=kind, resume=resume, overwrite=overwrite)
        done = writer.done
    todo = [r for r in refs if r.file not in done]
    summary = BatchSummary(len(refs), len(refs) - len(todo), out=str(out), task=task, model=model_name(model))
    started = False
    t0 = time.perf_counter()
    try:
        if not todo:
            return summary
        started = _ray_init(ray, address, workers)
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # its plan and progress lines: the summary and tqdm say it
        n = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = not shards
        ctx.enable_progress_bars = progress and shards
        size = chunk_size or CHUNK[task]
        block = max(1, min(4 * size, -(-len(todo) // (4 * n))))  # small blocks (at most 4 chunks) keep every actor busy to the end
        tables = [pa.table({"file": [r.file for r in todo[i : i + block]], "source": [r.source for r in todo[i : i + block]]})
                  for i in range(0, len(todo), block)]
        ds = ray.data.from_arrow(tables).map_batches(
            RayRows, batch_size=size, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=n), num_cpus=1,
            fn_constructor_kwargs={"model": model, "options": {"field": field, "top_k": top_k, "details": details}, "threads": 1})
        if shards:
            target = str(out) if is_uri(str(out)) else str(Path(out).resolve())
            _, before = _list_shards(target, kind)
            # writing is I/O: its tasks take no CPU from the actors (which hold them all)
            {"parquet": ds.write_parquet, "jsonl": ds.write_json, "csv": ds.write_csv}[kind](target, ray_remote_args={"num_cpus": 0})
            fs, after = _list_shards(target, kind)
            summary.count([r for f in after if f not in set(before) for r in _shard_table(fs, f, kind, ["file", "blank", "error"])])
        else:
            assert writer is not None
            with _progress(len(refs), summary.skipped, progress, f"hcr {task} (ray)") as bar:
                for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
                    rows = batch.to_pylist()
                    writer.write(rows)
                    summary.count(rows)
                    bar.update(files_in(rows))
    except HcrError:
        raise
    except Exception as e:  # Ray wraps worker failures in its own exception types
        if type(e).__name__ in ("RayTaskError", "RayActorError", "ActorDiedError", "ObjectLostError", "OutOfMemoryError", "RaySystemError"):
            raise HcrError(f"the Ray job failed ({type(e).__name__}: {_first_line(e)}); finished rows are kept: rerun with --resume") from None
        raise
    finally:
        if writer is not None:
            writer.close()
        if started:
            ray.shutdown()
        summary.seconds = time.perf_counter() - t0
    return summary

