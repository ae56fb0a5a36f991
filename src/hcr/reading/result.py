"""What reading returns (:class:`ReadResult`: lines, words, characters with boxes and
confidences) and what both reading engines share (:class:`PageReading`: field mode, files,
documents of several pages, the printed-or-handwritten model)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..errors import HcrError, InputError
from .page import Page, PageLine, PrintedModel
from ..preprocess import ImageInput, iter_pages
from ..segment import Glyph, Layout, Line


@dataclass
class ReadChar:
    """One character read: ``char`` (a letter, digit or punctuation mark; after a lexicon
    correction possibly two letters or more), its ``box`` ``(x, y, w, h)`` in the image,
    ``confidence`` (the probability of ``char``), the ``top_k`` answers (after charset and
    context; empty for a mark), the ``line`` and ``word`` it belongs to (0-based), whether
    it is ``uncertain`` (below the predictor's threshold), whether it is a punctuation
    ``mark`` recognised by shape (confidence 1 by convention) and whether it is
    ``printed`` (kept only with ``keep_printed``)."""

    char: str
    confidence: float
    box: tuple[int, int, int, int]
    top_k: list[tuple[str, float]] = field(default_factory=list)
    line: int = 0
    word: int = 0
    uncertain: bool = False
    mark: bool = False
    printed: bool = False
    input: np.ndarray | None = field(default=None, repr=False)  # the exact model input

    def to_dict(self) -> dict[str, Any]:
        return {
            "char": self.char,
            "confidence": round(float(self.confidence), 6),
            "box": [int(v) for v in self.box],
            "top_k": [[s, round(float(p), 6)] for s, p in self.top_k],
            "line": self.line,
            "word": self.word,
            "uncertain": self.uncertain,
            "mark": self.mark,
            "printed": self.printed,
        }


@dataclass
class ReadWord:
    """One word of a line: its ``text``, ``box`` and whether it is ``printed``."""

    text: str
    box: tuple[int, int, int, int]
    printed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "box": [int(v) for v in self.box], "printed": self.printed}


def union_box(boxes: Sequence[tuple[int, int, int, int]]) -> tuple[int, int, int, int]:
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[0] + b[2] for b in boxes), max(b[1] + b[3] for b in boxes)
    return (x0, y0, x1 - x0, y1 - y0)


@dataclass
class ReadLine:
    """One line of text: ``text`` (words separated by single spaces), its ``box``, its
    characters left to right and its words (each marked printed or handwritten)."""

    text: str
    box: tuple[int, int, int, int]
    characters: list[ReadChar]
    words: list[ReadWord] = field(default_factory=list)

    @property
    def printed(self) -> bool:
        """Every word of the line is printed."""
        return bool(self.words) and all(w.printed for w in self.words)

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "box": [int(v) for v in self.box], "printed": self.printed, "words": [w.to_dict() for w in self.words]}


@dataclass
class ReadResult:
    """What :meth:`Reader.read` found in one image. ``text`` holds the lines joined by
    newlines (empty for an image without writing); ``error`` is set (and the rest empty)
    when the image could not be read (:meth:`Reader.read_files`). A ``field`` reading holds
    at most one line: the field's value. ``printed_only``: writing was found, all of it
    printed (and left out unless ``keep_printed``). ``page``: the page of a document (a
    PDF, a multi-page TIFF) this result reads, from 1 (:meth:`Reader.read_pages`); None
    for a single image (and then left out of :meth:`to_dict`)."""

    text: str
    lines: list[ReadLine]
    file: str | None = None
    size: tuple[int, int] | None = None  # (width, height) of the image
    seconds: float = 0.0
    error: str | None = None
    image: np.ndarray | None = field(default=None, repr=False)  # the decoded grey image
    layout: Layout | None = field(default=None, repr=False)
    field: bool = False
    printed_only: bool = False
    page: int | None = None

    @property
    def characters(self) -> list[ReadChar]:
        return [c for ln in self.lines for c in ln.characters]

    @property
    def uncertain(self) -> int:
        return sum(c.uncertain for c in self.characters)

    @property
    def blank(self) -> bool:
        """Nothing handwritten (or kept) was read."""
        return not self.text.strip()

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            **({"page": self.page} if self.page is not None else {}),
            "text": self.text,
            "blank": self.blank if self.error is None else None,
            "field": self.field,
            "printed_only": self.printed_only,
            "characters": [c.to_dict() for c in self.characters],
            "lines": [ln.to_dict() for ln in self.lines],
            "size": list(self.size) if self.size else None,
            "seconds": round(self.seconds, 4),
            "error": self.error,
        }


def printed_model(name: str | None, device: str) -> PrintedModel | None:
    """The printed-or-handwritten model ``name`` (a shipped name or a file), or None."""
    return None if name is None else PrintedModel.load(name, device=device)


@dataclass
class _ToRead:
    """A line to read: its layout line and, left to right, each glyph with whether a space
    comes before it and whether it is printed."""

    line: Line
    items: list[tuple[Glyph, bool, bool]]


class PageReading:
    """What both engines share: the printed classifier, field mode (:mod:`hcr.reading.page`) and
    reading files. ``printed``: the printed-or-handwritten model (None: every character
    counts as handwritten); ``keep_printed``: read printed words too (marked printed)
    instead of leaving them out."""

    printed: PrintedModel | None = None
    keep_printed: bool = False

    def read(self, image: ImageInput, *, name: str | None = None, field: bool = False) -> "ReadResult":
        raise NotImplementedError

    def read_field(self, image: ImageInput, *, name: str | None = None) -> "ReadResult":
        """The value of a field crop (a name, a date, an amount, a code): the handwritten
        line that fills it, without its printed label, neighbouring rows or box lines.
        ``text`` is empty and ``blank`` true when the field holds no handwriting."""
        return self.read(image, name=name, field=True)

    def read_file(self, file: str | os.PathLike[str], *, field: bool = False) -> "ReadResult":
        """Read one file; an unreadable one gives a result with ``error`` set."""
        try:
            return self.read(file, field=field)
        except HcrError as e:
            return ReadResult("", [], file=str(file), error=str(e), field=field)

    def read_files(self, files: Sequence[str | os.PathLike[str]], *, field: bool = False) -> list["ReadResult"]:
        """Read many files; an unreadable one gives a result with ``error`` set."""
        return [self.read_file(f, field=field) for f in files]

    def read_pages(self, source: ImageInput, *, name: str | None = None, field: bool = False) -> list["ReadResult"]:
        """Read every page of a document (a PDF, a multi-page TIFF:
        :func:`hcr.preprocess.iter_pages`), one result per page with ``page`` set (from 1);
        a single image gives one result, ``page`` None, as :meth:`read`. What cannot be read
        (the file, or a page of it) gives a result with ``error`` set, after the pages read
        before it. A PDF without pypdfium2 installed raises :class:`HcrError` (it is the
        installation, not the file, that cannot read it)."""
        file = name or (str(source) if isinstance(source, (str, os.PathLike)) else None)
        out: list[ReadResult] = []
        try:
            for page, grey in iter_pages(source, name=name):
                result = self.read(grey, name=f"{file} page {page}" if page and file else file, field=field)
                result.file, result.page = file, page or None
                out.append(result)
        except InputError as e:
            out.append(ReadResult("", [], file=file, error=str(e), field=field))
        return out

    def _to_read(self, page: Page) -> list[_ToRead]:
        """The lines to read and their glyphs: the field's line (its handwriting) in field
        mode, else every line: its handwriting, or all of it with ``keep_printed`` (a space
        wherever printed and handwritten meet)."""
        def handwriting(pl: PageLine) -> _ToRead:
            return _ToRead(pl.line, [(g, s, False) for g, s in zip(pl.hand, pl.hand_spaces)])

        if page.field is not None:
            return [handwriting(page.lines[page.field])]
        out = []
        for pl in page.lines:
            if not self.keep_printed:
                if pl.hand:
                    out.append(handwriting(pl))
                continue
            hand_space = iter(pl.hand_spaces)
            items = []
            for i, (g, printed) in enumerate(zip(pl.line.glyphs, pl.printed)):
                space = next(hand_space) if not printed else pl.line.spaces[i]
                if i and printed != pl.printed[i - 1]:
                    space = True
                items.append((g, space, printed))
            out.append(_ToRead(pl.line, items))
        return out
