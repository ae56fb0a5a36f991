"""Printed or handwritten: lines of form labels and handwriting, each character tagged, for
the tagger that lets ``hcr read`` drop a form's printed labels (:mod:`hcr.page`).

A line holds one to four *segments* side by side on one baseline, the way form rows look:
``NOM : Frenot``, a value alone, a printed caption alone, ``NOM : X   CLASSE : Y``. Its text
is the line's characters with each one replaced by its kind, ``P`` (printed) or ``H``
(handwritten), spaces kept: ``PPP P HHHHHH``. A word/line network trained on them with CTC
(``configs/printed.yaml``) tags the characters of any line; the context of the whole line
(a tight, even, baseline-true label beside freer, larger or comb-spaced writing) is what
tells block capitals written with care from print, which one character alone cannot.

- **printed** segments: form labels (``NOM :``, ``Date``...) and texts of
  :func:`hcr.texts.sample_text`, typeset as a printer sets them (:func:`hcr.typeset.typeset`
  with ``hand=False``) in the ordinary fonts of :mod:`hcr.data.fonts`;
- **handwritten** segments: real handwriting, lines composed from EMNIST ByClass glyphs
  (spaced as people write, or letter-spaced like block capitals in a comb field) and DHSD
  street names, and now and then a handwriting font (:func:`hcr.typeset.typeset`).

The label is usually smaller than the writing (0.4 to 1.1 times its height); the whole line
is captured once (:func:`hcr.typeset.capture`: scans and photos, pens, blur, JPEG), so
both kinds share the same paper, light and sharpness. Splits: ``train`` from the training
writers, glyphs and font packages, ``val`` from held-out ones. Lines are drawn when first
preprocessed (:class:`TaggedLine`); needs ``HCR_DATA_DIR`` (DHSD, EMNIST) and the fonts.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UnknownNameError

__all__ = ["PRINTED", "HANDWRITTEN", "TaggedLine", "TaggedLines"]

PRINTED, HANDWRITTEN = "P", "H"
_LABELS = ("NOM", "PRENOM", "NAME", "DATE", "DATE DE NAISSANCE", "CLASSE", "SIGNATURE", "ADDRESS", "CITY", "TEL", "CODE", "AGE", "TOTAL", "Surname", "First name")


def _tags(text: str, kind: str) -> str:
    return "".join(c if c == " " else kind for c in text)


@lru_cache(maxsize=4)
def _sources(split: str, seed: int, data_dir: str | None) -> tuple[Any, Any, list[Any], list[Any]]:
    """DHSD words, an EMNIST glyph pool and the printed and handwriting fonts of ``split``
    (loaded once per process)."""
    from ..compose import GlyphPool
    from . import get_source
    from .lines import _held_out_split, fonts_of_split, get_line_source

    dhsd = get_line_source("dhsd", data_dir, seed=seed).load("train" if split == "train" else "val")
    emnist = get_source("emnist-byclass", data_dir)
    glyphs = emnist.load(emnist.default_train_split if split == "train" else _held_out_split(emnist))
    pool = GlyphPool.from_samples(glyphs.images, glyphs.targets, glyphs.label_map.symbols)
    return dhsd, pool, fonts_of_split("printed", split, seed), fonts_of_split("handwriting", split, seed)


def _segment_plan(kind: str, rng: np.random.Generator, split: str, seed: int, data_dir: str | None) -> dict[str, Any]:
    """What one segment writes and how (drawn before anything is rendered)."""
    from ..texts import ALPHABET, sample_text
    from ..typeset import font_charset

    dhsd, pool, printed_fonts, hand_fonts = _sources(split, seed, data_dir)
    if kind == PRINTED:
        font = printed_fonts[int(rng.integers(len(printed_fonts)))]
        if rng.random() < 0.5:
            text = _LABELS[int(rng.integers(len(_LABELS)))]
            text = (text.upper() if rng.random() < 0.7 else text) + [" :", ":", ""][int(rng.integers(3))]
        else:
            text = sample_text(rng, font_charset(str(font.path), ALPHABET), max_chars=20)
        return {"how": "print", "font": str(font.path), "text": text}
    r = rng.random()
    if r < 0.55:
        symbols = pool.symbols
        text = "".join(c for c in sample_text(rng, ALPHABET, max_chars=16) if c in symbols + " ").strip() or "A"
        if rng.random() < 0.5:
            text = text.upper() if set(text.upper()) <= set(symbols + " ") else text
        return {"how": "emnist", "text": text, "spaced": bool(rng.random() < 0.4)}
    if r < 0.8:
        i = int(rng.integers(len(dhsd)))
        return {"how": "dhsd", "index": i, "text": dhsd.texts[i]}
    font = hand_fonts[int(rng.integers(len(hand_fonts)))]
    return {"how": "hand-font", "font": str(font.path), "text": sample_text(rng, font_charset(str(font.path), ALPHABET), max_chars=16)}


def _plan(rng: np.random.Generator, split: str, seed: int, data_dir: str | None) -> list[dict[str, Any]]:
    r = rng.random()
    kinds = ([PRINTED, HANDWRITTEN] if r < 0.45 else [HANDWRITTEN] if r < 0.6 else [PRINTED] if r < 0.75
             else [HANDWRITTEN, PRINTED] if r < 0.87 else [PRINTED, HANDWRITTEN, PRINTED, HANDWRITTEN])
    return [{"kind": k, **_segment_plan(k, rng, split, seed, data_dir)} for k in kinds]


def _ink_of(seg: dict[str, Any], cap: float, rng: np.random.Generator, split: str, seed: int, data_dir: str | None) -> np.ndarray:
    """A segment as ink-bright float coverage with capitals about ``cap`` pixels tall."""
    import cv2

    from ..compose import compose
    from ..preprocess import find_ink
    from ..typeset import typeset

    dhsd, pool, _, _ = _sources(split, seed, data_dir)
    if seg["how"] in ("print", "hand-font"):
        spacing = "natural" if seg["how"] == "print" else str(rng.choice(["natural", "spaced"], p=[0.7, 0.3]))
        ink = typeset(seg["text"], seg["font"], rng, cap=cap, spacing=spacing, form="none", hand=seg["how"] == "hand-font").ink
        body = cap
    elif seg["how"] == "emnist":
        gaps = (8, 24) if seg["spaced"] else None  # 0.4-1.2 of a 20 px body, at the glyphs' own scale
        ink = compose(seg["text"], pool, rng, vary=True, letter_gap=gaps).astype(np.float32) / 255.0
        body = 20.0
    else:
        found = find_ink(dhsd.load_image(seg["index"]))
        if found.mask is None:
            return np.zeros((int(cap), int(cap)), np.float32)
        ink = np.where(found.mask, np.clip(found.signal / max(float(np.percentile(found.signal[found.mask], 90)), 1.0), 0, 1), 0.0).astype(np.float32)
        rows = np.flatnonzero(found.mask.any(axis=1))
        cols = np.flatnonzero(found.mask.any(axis=0))
        ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        body = 0.6 * ink.shape[0]
    f = cap / max(body, 1.0)
    if seg["how"] in ("emnist", "dhsd"):
        ink = cv2.resize(ink, (max(1, round(ink.shape[1] * f)), max(1, round(ink.shape[0] * f))), interpolation=cv2.INTER_AREA)
    rows = np.flatnonzero(ink.max(axis=1) > 0.2)
    cols = np.flatnonzero(ink.max(axis=0) > 0.2)
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] if rows.size else ink


@dataclass(frozen=True)
class TaggedLine:
    """One line of :class:`TaggedLines`, drawn on demand from its seed."""

    split: str
    seed: int
    index: int
    data_dir: str | None

    def rng(self) -> np.random.Generator:
        return np.random.default_rng([self.seed, 30 + ("train", "val").index(self.split), self.index])

    def plan(self, rng: np.random.Generator) -> list[dict[str, Any]]:
        return _plan(rng, self.split, self.seed, self.data_dir)

    def text(self) -> str:
        return " ".join(_tags(s["text"], s["kind"]) for s in self.plan(self.rng()))

    def render(self) -> np.ndarray:
        from ..typeset import Typeset, capture

        rng = self.rng()
        plan = self.plan(rng)
        hand_cap = float(rng.uniform(12, 34))
        inks = []
        for seg in plan:
            cap = hand_cap if seg["kind"] == HANDWRITTEN else hand_cap * float(rng.uniform(0.4, 1.1))
            inks.append((_ink_of(seg, cap, rng, self.split, self.seed, self.data_dir), cap))
        height = int(max(i.shape[0] for i, _ in inks) + 2 * hand_cap)
        gaps = [int(hand_cap * rng.uniform(0.6, 3.0)) for _ in inks]
        width = int(sum(i.shape[1] for i, _ in inks) + sum(gaps) + 2 * hand_cap)
        canvas = np.zeros((height, width), np.float32)
        x, base = int(hand_cap), int(height - hand_cap)
        for (ink, cap), gap in zip(inks, gaps):
            y = max(0, min(height - ink.shape[0], base - ink.shape[0] + int(rng.uniform(-0.15, 0.15) * cap)))
            region = canvas[y : y + ink.shape[0], x : x + ink.shape[1]]
            np.maximum(region, ink[: region.shape[0], : region.shape[1]], out=region)
            x += ink.shape[1] + gap
        return capture(Typeset(canvas, np.zeros_like(canvas), ""), rng)


class TaggedLines:
    """The line data set ``printed`` (see the module docstring)."""

    def __init__(self, data_dir: str | Path | None = None, *, count: int = 20000, val_count: int = 1000, seed: int = 0) -> None:
        self.data_dir = str(data_dir) if data_dir is not None else None
        self.count, self.val_count, self.seed = count, val_count, seed
        self.name = "printed"
        self.citation = (
            "printed: @fontsource fonts (licences in hcr.data.fonts); handwritten: DHSD (N. Riaz, S. Saifullah, S. Agne, "
            "A. Dengel, S. Ahmed, DFKI, CC BY 4.0), EMNIST (G. Cohen, S. Afshar, J. Tapson, A. van Schaik, 2017)"
        )

    def recipe_key(self, split: str) -> str:
        return f"{self.name}|{split}|{self.count}|{self.val_count}|{self.seed}|{self.data_dir}"

    @staticmethod
    def code_files() -> tuple[str, ...]:
        from .. import compose
        from .lines import FontLines

        return (__file__, str(compose.__file__), *FontLines.code_files())

    def load(self, split: str = "train") -> Any:
        from .lines import LineSamples

        if split not in ("train", "val"):
            raise UnknownNameError("split", split, ["train", "val"])
        n = self.count if split == "train" else self.val_count
        items = [TaggedLine(split, self.seed, i, self.data_dir) for i in range(n)]
        return LineSamples(list(items), [t.text() for t in items], f"{self.name} ({split})", citation=self.citation, ids=[f"{split}-{i}" for i in range(n)])
