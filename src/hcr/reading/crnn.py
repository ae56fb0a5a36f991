"""The CRNN engine: whole lines read by a word/line model (:class:`CrnnReader`)."""

from __future__ import annotations

import itertools
import math
import os
import time
from typing import Any, Sequence

import numpy as np

from ..lexicon import Lexicon
from .page import PRINTED_MODEL, Page, PrintedModel, analyse
from ..preprocess import ImageInput, load_image
from ..segment import Glyph
from .result import PageReading, ReadChar, ReadLine, ReadResult, ReadWord, printed_model, union_box


class CrnnReader(PageReading):
    """Reads with a word/line model (:class:`hcr.reading.line.LineRecognizer`, any model
    file format) behind the same interface as :class:`Reader`: the page analysis
    (:func:`hcr.reading.page.analyse`: ink, frames and form lines removed, lines, printed labels,
    the field's line) says what to read; each line's handwriting (with ``keep_printed``,
    also each run of printed words, read on its own) is cut out with everything else
    blanked, goes through :func:`hcr.preprocess.preprocess_line` and the CRNN, and the
    characters' boxes come from the columns CTC aligns them to. A space the network reads
    stays where the line's own spacing sees one (:meth:`_agree_spaces`); ``context``: a
    span of mostly letters is read as letters, of mostly digits as digits
    (:meth:`hcr.reading.line.LineRecognizer.decode_in_context`)."""

    def __init__(self, recognizer: Any, *, threshold: float = 0.5, printed: PrintedModel | None = None, keep_printed: bool = False, context: bool = True) -> None:
        self.recognizer = recognizer
        self.threshold = threshold
        self.context = context
        self.printed, self.keep_printed = printed, keep_printed

    @classmethod
    def load(cls, model: str | os.PathLike[str] | None = None, *, charset: str | None = None, ignore_case: bool = False, threshold: float = 0.5, device: str = "cpu", lexicon: Lexicon | str | os.PathLike[str] | Sequence[str] | None = None, beam_width: int | None = None, printed: str | None = PRINTED_MODEL, keep_printed: bool = False, context: bool = True) -> "CrnnReader":
        from .line import LineRecognizer

        recognizer = LineRecognizer.load(model, charset=charset, ignore_case=ignore_case, device=device, lexicon=lexicon, beam_width=beam_width)
        return cls(recognizer, threshold=threshold, printed=printed_model(printed, device), keep_printed=keep_printed, context=context)

    def _spans(self, page: Page) -> list[list[tuple[np.ndarray, int, int, bool, list[tuple[Glyph, bool, bool]]]]]:
        """Per line to read, its spans left to right: (ink-bright crop, x, y, printed, the
        span's glyphs with their spaces)."""
        mask = page.found.mask
        if mask is None:
            return []
        flat = page.flat
        margin = max(2, int(round(page.layout.char_height * 0.3)))
        out = []
        for line in self._to_read(page):
            spans = []
            for printed, group in itertools.groupby(line.items, key=lambda it: it[2]):
                items = list(group)
                m = np.zeros_like(mask)
                for g, _, _ in items:
                    m[g.y : g.y1, g.x : g.x1] |= g.mask
                ys, xs = np.nonzero(m)
                y0, y1 = max(int(ys.min()) - margin, 0), min(int(ys.max()) + margin + 1, m.shape[0])
                x0, x1 = max(int(xs.min()) - margin, 0), min(int(xs.max()) + margin + 1, m.shape[1])
                spans.append((np.where(m, flat, 0)[y0:y1, x0:x1].astype(np.uint8), x0, y0, printed, items))
            out.append(spans)
        return out

    @staticmethod
    def _agree_spaces(words: list[list[ReadChar]], items: Sequence[tuple[Glyph, bool, bool]]) -> list[list[ReadChar]]:
        """The CRNN's words, joined where the layout sees no space: a space the network
        reads between two words stays only where a gap that the line's own spacing
        (:func:`hcr.segment.line_spaces`) takes for a space lies between the two characters
        around it, so evenly spaced letters (a comb field, block capitals) stay one word."""
        out = [words[0]] if words else []
        for word in words[1:]:
            left, right = out[-1][-1].box, word[0].box  # CTC boxes are approximate: from centre to centre
            x0, x1 = left[0] + left[2] / 2.0, right[0] + right[2] / 2.0
            if any(s and a.x1 <= x1 and b.x >= x0 for (a, _, _), (b, s, _) in zip(items, items[1:])):
                out.append(word)
            else:
                out[-1] = out[-1] + word
        return out

    def read(self, image: ImageInput, *, name: str | None = None, field: bool = False) -> ReadResult:
        """Read the text in one image (``field``: only a field crop's value, see
        :meth:`read_field`); raises :class:`~hcr.errors.InputError` for an unreadable one."""
        t0 = time.perf_counter()
        file = name or (str(image) if isinstance(image, (str, os.PathLike)) else None)
        grey = load_image(image, name=name)
        page = analyse(grey, self.recognizer.spec.ink_spec(), self.printed, field=field)
        result = ReadResult("", [], file=file, size=(grey.shape[1], grey.shape[0]), image=grey, layout=page.layout, field=field, printed_only=page.printed_only)
        lines = self._spans(page)
        flat_spans = [sp for spans in lines for sp in spans]
        inputs = [self.recognizer.preprocess(sp[0]) for sp in flat_spans]
        decoded = iter(zip(inputs, self.recognizer.recognize_inputs(inputs, context=self.context)))
        spec, stride = self.recognizer.spec, self.recognizer.stride
        for spans in lines:
            chars: list[ReadChar] = []
            words: list[ReadWord] = []
            for (_, ox, oy, printed, items), (pre, dec) in zip(spans, decoded):
                if pre.blank or not dec.text.strip() or pre.box is None:
                    continue
                bx, by, bw, bh = pre.box
                f = (pre.image.shape[1] - 2 * spec.pad) / max(bw, 1)
                found: list[list[ReadChar]] = [[]]
                for c in dec.chars:
                    if c.char == " ":
                        found.append([])
                        continue
                    a = ox + bx + int(math.floor((c.columns[0] * stride - spec.pad) / f))
                    b = ox + bx + int(math.ceil(((c.columns[1] + 1) * stride - spec.pad) / f))
                    a, b = max(a, ox + bx), min(max(b, a + 1), ox + bx + bw)
                    found[-1].append(ReadChar(c.char, c.confidence, (a, oy + by, max(b - a, 1), bh), [], len(result.lines), 0,
                                              uncertain=c.confidence < self.threshold, printed=printed))
                for word in self._agree_spaces([w for w in found if w], items):
                    for rc in word:
                        rc.word = len(words)
                    words.append(ReadWord("".join(rc.char for rc in word), union_box([rc.box for rc in word]), printed))
                    chars.extend(word)
            if chars:
                result.lines.append(ReadLine(" ".join(w.text for w in words), union_box([c.box for c in chars]), chars, words))
        result.text = "\n".join(ln.text for ln in result.lines)
        result.seconds = time.perf_counter() - t0
        return result
