"""What the web page and the HTTP API share: models loaded once, upload checks, display helpers.

:class:`ModelRegistry` holds the models a front end offers (the shipped pretrained ones by
default, model files by path, and model files uploaded to the page): character classifiers
and, where the front end reads words (the API's ``/v1/read``, the page), word/line (CTC)
models. Each model's file is read once (:meth:`hcr.predictor.Predictor.load`,
:meth:`hcr.reading.line.LineRecognizer`); the charset, case and threshold options of a
request make a light *variant* of that predictor which shares its network, cached (least
recently used first out) so that repeated option sets cost nothing. Everything is
guarded by one lock, so concurrent requests and Streamlit sessions can share a registry.
The network itself is only read during inference (``torch.inference_mode``, eval mode set
at load), so variants run concurrently without a lock.

Display helpers for the page: the preprocessing stages (:func:`stage_images`), the annotated
reading (:func:`annotated_reading_png`) and the summary of several uploads
(:func:`summary_row`, :func:`summary_csv`, :func:`summary_json`).
"""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..charset import AnswerFilter, describe_symbols
from ..errors import HcrError, InputError, UnknownNameError
from ..preprocess import Preprocessed
from ..reading import CrnnReader, Reader, ReadResult, load_recognizer, split_charset
from ..reading.char import Prediction, Predictor
from ..reading.line import LineRecognizer
from ..reading.page import PrintedModel

#: Largest image accepted by the page and the API (bytes); the library's own limit is larger.
DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024

#: Titles of the preprocessing stages (:attr:`hcr.preprocess.Preprocessed.stages`), in order.
STAGE_TITLES: dict[str, str] = {
    "grey": "decoded (grey)",
    "ink_bright": "ink made bright",
    "flattened": "background flattened",
    "mask": "ink mask",
    "crop": "cropped to the ink",
    "input": "model input (28x28)",
}


class UploadTooLarge(InputError):
    """An upload over the front end's size limit (HTTP 413)."""


def check_upload(data: bytes, name: str, max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES) -> None:
    """Refuse empty uploads and uploads over ``max_bytes`` with a message for people."""
    if not data:
        raise InputError(f"{name}: the file is empty")
    if len(data) > max_bytes:
        raise UploadTooLarge(f"{name}: the file is too large ({len(data) / 2**20:.1f} MB; the limit is {format_mb(max_bytes)})")


def format_mb(n: int) -> str:
    """A byte count in MB (2**20 bytes), three significant digits: ``10 MB``, ``0.5 MB``."""
    return f"{n / 2**20:.3g} MB"


@dataclass(frozen=True)
class ModelEntry:
    """A model a registry offers: its ``name``, the ``spec`` given to
    :meth:`~hcr.predictor.Predictor.load` (a pretrained name or a file path), a
    ``description`` and whether it is shipped with hcr (``source``: ``pretrained`` or ``file``)."""

    name: str
    spec: str
    description: str
    source: str


class ModelRegistry:
    """The models a front end offers, each loaded once and shared (thread-safe).

    ``models``: pretrained names and/or model file paths (a file is offered under its file
    name stem); None offers every shipped pretrained model of ``tasks`` (default: the
    character classifiers; add ``"sequence"`` for the word/line models, which only
    :meth:`reader` serves). The first is the default.
    ``max_variants`` bounds the cache of option variants (charset, case, threshold).
    """

    def __init__(self, models: Sequence[str | os.PathLike[str]] | None = None, *, max_variants: int = 64, tasks: Sequence[str] = ("classify",)) -> None:
        from ..pretrained import list_pretrained

        self._lock = threading.RLock()
        self._entries: dict[str, ModelEntry] = {}
        self._base: dict[str, Predictor | LineRecognizer] = {}
        self._variants: OrderedDict[tuple[str, str | None, bool, float], Predictor] = OrderedDict()
        self._printed: PrintedModel | None = None
        self.max_variants = max_variants
        if models is None:
            models = [m.name for t in tasks for m in list_pretrained(task=t)]
        if not models:
            raise HcrError("no models to serve")
        for spec in models:
            self.add(spec)

    # ----------------------------------------------------------------- the models offered

    def add(self, spec: str | os.PathLike[str], *, name: str | None = None, description: str | None = None) -> str:
        """Offer a pretrained model (by name) or a model file (by path; loaded on first use)."""
        from ..pretrained import get_pretrained, is_pretrained_name

        if is_pretrained_name(spec):
            entry = ModelEntry(name or str(spec), str(spec), description or get_pretrained(str(spec)).description, "pretrained")
        else:
            path = Path(spec)
            if not path.is_file():
                from ..pretrained import list_pretrained

                names = ", ".join(m.name for m in list_pretrained(task="classify"))
                raise HcrError(f"{spec}: no such model file, and not a pretrained model name ({names})")
            entry = ModelEntry(name or path.stem, str(path), description or f"model file {path.name}", "file")
        with self._lock:
            old = self._entries.get(entry.name)
            if old is not None and old != entry:
                raise HcrError(f"two models named {entry.name!r} ({old.spec} and {entry.spec}); rename one of the files")
            self._entries[entry.name] = entry
        return entry.name

    def add_upload(self, data: bytes, filename: str, directory: str | os.PathLike[str] | None = None) -> str:
        """Offer a model file uploaded to the page: saved (once per content) under its original
        suffix, so :meth:`Predictor.load` can tell its format, then loaded to check it. Returns
        its name; raises :class:`~hcr.errors.HcrError` (and forgets it) when it cannot be loaded."""
        digest = hashlib.sha256(data).hexdigest()[:12]
        name = f"{filename} [{digest}]"
        with self._lock:
            if name in self._base:
                return name
        folder = Path(directory or Path(tempfile.gettempdir()) / "hcr-uploaded-models")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{digest}{Path(filename).suffix.lower()}"
        if not path.exists():
            tmp = path.with_name(path.name + ".part")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        self.add(path, name=name, description=f"uploaded model file {filename}")
        try:
            self.base(name)
        except HcrError:
            self.remove(name)
            raise
        return name

    def remove(self, name: str) -> None:
        with self._lock:
            self._entries.pop(name, None)
            self._base.pop(name, None)
            for key in [k for k in self._variants if k[0] == name]:
                del self._variants[key]

    @property
    def default(self) -> str:
        with self._lock:
            return next(iter(self._entries))

    def names(self) -> list[str]:
        with self._lock:
            return list(self._entries)

    def entry(self, name: str | None) -> ModelEntry:
        with self._lock:
            key = self.default if name is None else name
            if key not in self._entries:
                raise UnknownNameError("model", key, list(self._entries))
            return self._entries[key]

    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._base)

    # ----------------------------------------------------------------- predictors

    def loaded_model(self, name: str | None = None) -> Predictor | LineRecognizer:
        """The model ``name`` (default: the first), loaded on first use: a character
        classifier's :class:`Predictor` or a word/line model's :class:`LineRecognizer`."""
        entry = self.entry(name)
        with self._lock:
            if entry.name not in self._base:
                self._base[entry.name] = load_recognizer(entry.spec)
            return self._base[entry.name]

    def task(self, name: str | None = None) -> str:
        """``classify`` (one character) or ``sequence`` (words and lines: :meth:`reader` only)."""
        return "sequence" if isinstance(self.loaded_model(name), LineRecognizer) else "classify"

    def base(self, name: str | None = None) -> Predictor:
        """The character classifier ``name`` (default: the first) with no charset, loaded on
        first use; a word/line model is an :class:`~hcr.errors.HcrError` naming the way to use it."""
        model = self.loaded_model(name)
        if isinstance(model, LineRecognizer):
            raise HcrError(f"{self.entry(name).name} reads words and lines (a CTC model), not single characters: read with it instead (/v1/read, hcr read --engine crnn)")
        return model

    def preload(self) -> None:
        """Load every model now (a server does this before taking requests)."""
        for name in self.names():
            self.loaded_model(name)

    def predictor(self, name: str | None = None, *, charset: str | None = None, ignore_case: bool = False, threshold: float = 0.5) -> Predictor:
        """Model ``name`` answering with ``charset`` / ``ignore_case`` and marking answers below
        ``threshold`` uncertain. Shares the loaded network; a bad charset raises
        :class:`~hcr.errors.HcrError` naming the problem."""
        base = self.base(name)
        charset = charset or None
        key = (self.entry(name).name, charset, bool(ignore_case), round(float(threshold), 4))
        with self._lock:
            hit = self._variants.get(key)
            if hit is not None:
                self._variants.move_to_end(key)
                return hit
        variant = copy.copy(base)  # shares the network and its preprocessing spec
        variant.answer_filter = AnswerFilter(base.label_map, charset, ignore_case=ignore_case)
        variant.threshold = key[3]
        with self._lock:
            self._variants[key] = variant
            while len(self._variants) > self.max_variants:
                self._variants.popitem(last=False)
        return variant

    def printed_model(self) -> PrintedModel:
        """The shipped printed-or-handwritten model (:mod:`hcr.reading.page`), loaded on first use
        and shared by every reader."""
        with self._lock:
            if self._printed is None:
                self._printed = PrintedModel.load()
            return self._printed

    def reader(self, name: str | None = None, *, charset: str | None = None, ignore_case: bool = False, threshold: float = 0.5, context: bool = True, keep_printed: bool = False) -> Reader | CrnnReader:
        """A :class:`~hcr.reader.Reader` on model ``name`` (a :class:`~hcr.reader.CrnnReader`
        for a word/line model, which reads whole lines and ignores ``context``); ``charset``
        applies to every character, punctuation included (:func:`hcr.reader.split_charset`).
        Printed words are told apart with the shipped printed model and left out unless
        ``keep_printed``."""
        model = self.loaded_model(name)
        printed = self.printed_model()
        if isinstance(model, LineRecognizer):
            return CrnnReader(model.with_decoding(charset=charset, ignore_case=ignore_case) if charset else model, threshold=threshold, printed=printed, keep_printed=keep_printed)
        model_charset, marks = split_charset(charset or None)
        return Reader(self.predictor(name, charset=model_charset, ignore_case=ignore_case, threshold=threshold), punctuation=marks, context=context, printed=printed, keep_printed=keep_printed)

    def describe(self) -> list[dict[str, Any]]:
        """The models offered, for ``GET /v1/models`` and the page: name, description,
        source, task, classes (loads each model)."""
        out = []
        default = self.default
        for name in self.names():
            entry, model = self.entry(name), self.loaded_model(name)
            symbols = model.codec.alphabet if isinstance(model, LineRecognizer) else model.label_map.symbols
            out.append({
                "name": name,
                "description": entry.description,
                "source": entry.source,
                "default": name == default,
                "task": self.task(name),
                "num_classes": len(symbols),
                "classes": list(symbols),
                "classes_summary": describe_symbols(symbols, 40),
            })
        return out


# --------------------------------------------------------------------------- display helpers


def stage_images(pre: Preprocessed, side: int = 112) -> list[tuple[str, np.ndarray]]:
    """The preprocessing stages of ``pre`` (made with ``stages=True``) as ``(title, uint8
    image)`` in processing order, each fitted into ``side`` x ``side`` pixels for display (the
    28x28 model input enlarged with square pixels; :func:`hcr.annotate.thumbs.fit_thumb`)."""
    from ..annotate.thumbs import fit_thumb

    return [(title, fit_thumb(pre.stages[key], side)[0]) for key, title in STAGE_TITLES.items() if key in pre.stages]


def annotated_reading_png(result: ReadResult) -> bytes:
    """The image read with its character boxes and answers (labels placed so none overlap)
    and a box around each line drawn on it (:func:`hcr.annotate.annotate_reading`), as PNG
    bytes."""
    from ..annotate import reading_png

    return reading_png(result)


# --------------------------------------------------------------------------- summary of several images

#: The columns of :func:`summary_row` (the page's summary table, its CSV and JSON downloads).
SUMMARY_COLUMNS = ("file", "mode", "text", "confidence", "characters", "uncertain", "blank", "error")


def summary_row(file: str, mode: str, answer: Prediction | ReadResult | None = None, *, error: str | None = None) -> dict[str, Any]:
    """One image's row of the summary table (:data:`SUMMARY_COLUMNS`): its ``file`` name,
    the ``mode`` it was read in (``character``, ``text`` or ``field``; for an image that
    could not be read, the mode asked for), the ``text`` read (a character's label), the
    ``confidence`` (a character's; for text the least confident character's, the one most
    likely wrong; None when nothing was read), the number of ``characters`` read, how many
    of them are ``uncertain`` (below the threshold), whether it is ``blank`` (no character
    or no handwriting) and the ``error`` message (None, or set with everything else empty
    and ``blank`` None)."""
    row: dict[str, Any] = {"file": file, "mode": mode, "text": "", "confidence": None, "characters": 0, "uncertain": 0, "blank": None, "error": None}
    if error is not None or answer is None:
        row["error"] = error or "not read"
        return row
    if isinstance(answer, Prediction):
        if answer.error is not None:
            row["error"] = answer.error
            return row
        read = not answer.blank and answer.label is not None
        row.update(text=answer.label if read else "", confidence=round(float(answer.confidence), 4) if read else None,
                   characters=int(read), uncertain=int(read and answer.uncertain), blank=not read)
        return row
    if answer.error is not None:
        row["error"] = answer.error
        return row
    chars = answer.characters
    row.update(text=answer.text, confidence=round(min(float(c.confidence) for c in chars), 4) if chars else None,
               characters=len(chars), uncertain=answer.uncertain, blank=answer.blank)
    return row


def summary_csv(rows: Sequence[dict[str, Any]]) -> str:
    """The rows of :func:`summary_row` as CSV (a header of :data:`SUMMARY_COLUMNS`; None
    empty, booleans ``true``/``false``; a text of several lines quoted)."""
    def cell(v: Any) -> Any:
        return "" if v is None else ("true" if v else "false") if isinstance(v, bool) else v

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(SUMMARY_COLUMNS)
    for row in rows:
        writer.writerow([cell(row.get(k)) for k in SUMMARY_COLUMNS])
    return buf.getvalue()


def summary_json(rows: Sequence[dict[str, Any]]) -> str:
    """The rows of :func:`summary_row` as a JSON array of objects (UTF-8 text, indented)."""
    return json.dumps([{k: row.get(k) for k in SUMMARY_COLUMNS} for row in rows], indent=2, ensure_ascii=False) + "\n"


__all__ = [
    "DEFAULT_MAX_UPLOAD_BYTES",
    "STAGE_TITLES",
    "SUMMARY_COLUMNS",
    "ModelEntry",
    "ModelRegistry",
    "UploadTooLarge",
    "annotated_reading_png",
    "check_upload",
    "format_mb",
    "stage_images",
    "summary_csv",
    "summary_json",
    "summary_row",
]
