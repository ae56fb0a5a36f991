"""Printed or handwritten: character pictures as the reader cuts them, for the classifier
that lets ``hcr read`` drop a form's printed labels (:mod:`hcr.reading.page`).

Each sample is one glyph crop (:func:`hcr.segment.glyph_crop`) of a line found by the
reader's own path (:func:`hcr.preprocess.find_ink`, :func:`hcr.segment.segment`), so the
classifier sees exactly what it is asked about when reading: single letters, letters that
touch, punctuation, pieces of cut-off rows. Class ``printed``: lines typeset as a printer
sets them (:func:`hcr.typeset.typeset` with ``hand=False``) in the ordinary fonts of
:mod:`hcr.data.fonts` (regular, bold and italic; form labels, words, names, numbers, dates).
Class ``handwritten``: real handwriting only, half DHSD street names, half lines composed
from EMNIST ByClass glyphs (some letter-spaced like block capitals). Both classes are
captured alike (:func:`hcr.typeset.capture`: scans and photos, pen and print colours, blur,
noise, JPEG) at the same spread of sizes (capitals 7 to 34 px tall), so neither size nor
sharpness tells the classes apart: only the shapes do.

Splits: ``train`` from the training writers, glyphs and font packages; ``val`` and
``test`` (other seeds) from held-out ones (DHSD's held-out writers, EMNIST dev-val glyphs,
font packages held out by :func:`hcr.data.lines.fonts_of_split`), so both measure writers
and typefaces training never saw. Needs ``HCR_DATA_DIR`` (DHSD, EMNIST) and the fonts
(:func:`hcr.data.fonts.fetch_fonts`); the crops are cached in the user cache.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import DataError
from ..labels import LabelMap
from .base import DataSource, Samples

CLASSES = ("handwritten", "printed")
#: Lines per class drawn for each split (about 7 glyphs a line).
LINES = {"train": 3000, "val": 300, "test": 400}
_SPLIT_INDEX = {"train": 0, "val": 1, "test": 2}  # a seed part: each split draws other lines
_LABELS = ("NOM", "PRENOM", "NAME", "DATE", "CLASSE", "SIGNATURE", "ADDRESS", "CITY", "TEL", "CODE", "AGE", "TOTAL")


class PrintedSource(DataSource):
    """Glyph crops labelled ``handwritten`` or ``printed`` (see the module docstring)."""

    name = "printed"
    splits = ("train", "val", "test")
    default_val_split = "val"
    citation = (
        "printed: @fontsource fonts (their licences in hcr.data.fonts); handwritten: DHSD (N. Riaz, S. Saifullah, S. Agne, "
        "A. Dengel, S. Ahmed, DFKI, CC BY 4.0), EMNIST (G. Cohen, S. Afshar, J. Tapson, A. van Schaik, 2017)"
    )

    def __init__(self, data_dir: str | Path | None = None, *, seed: int = 0, scale: float = 1.0) -> None:
        self.data_dir, self.seed, self.scale = data_dir, seed, scale

    def label_map(self) -> LabelMap:
        return LabelMap(CLASSES)

    def load(self, split: str) -> Samples:
        from ..cache import cache_file, cached_arrays

        self.check_split(split)
        n = max(1, int(round(LINES[split] * self.scale)))
        path = cache_file("printed", f"{split}|{n}|{self.seed}", code=_code_files())
        z = cached_arrays(path, lambda: _make(split, n, self.seed, self.data_dir))
        images, offset = [], 0
        for h, w in z["shapes"]:
            images.append(z["pixels"][offset : offset + h * w].reshape(h, w))
            offset += int(h) * int(w)
        ids = json.loads(bytes(z["ids"]).decode())
        return Samples(images, z["targets"], self.label_map(), f"{self.name}:{split}", ids)


def _code_files() -> tuple[str, ...]:
    from .. import compose, frames, preprocess, segment
    from .lines import FontLines

    return (__file__, str(compose.__file__), str(frames.__file__), str(preprocess.__file__), str(segment.__file__), *FontLines.code_files())


def _crops(image: Any) -> list[np.ndarray]:
    """The glyph crops the reader would look at in ``image``."""
    from ..preprocess import PreprocessSpec, find_ink
    from ..segment import glyph_crop, segment

    found = find_ink(image, PreprocessSpec(speck_fraction=0.0))
    if found.mask is None:
        return []
    layout = segment(found.mask)
    flat = found.flattened()
    return [glyph_crop(g, flat, found.mask) for ln in layout.lines for g in ln.glyphs]


def _cap(rng: np.random.Generator) -> float:
    """The capital height a line is captured at (pixels), drawn alike for both classes."""
    return float(rng.uniform(7, 34))


def _label_text(rng: np.random.Generator, alphabet: str) -> str:
    """A form label (``NOM :``, ``Date``), or any text of :func:`hcr.texts.sample_text`."""
    from ..texts import sample_text

    if rng.random() < 0.35:
        word = _LABELS[int(rng.integers(len(_LABELS)))]
        word = word.title() if rng.random() < 0.3 else word
        return word + [" :", ":", ""][int(rng.integers(3))]
    return sample_text(rng, alphabet)


def _printed_lines(split: str, n: int, seed: int) -> Iterator[np.ndarray]:
    from ..texts import ALPHABET
    from ..typeset import capture, font_charset, typeset
    from .lines import fonts_of_split

    fonts = fonts_of_split("printed", "train" if split == "train" else "val", seed)
    for i in range(n):
        rng = np.random.default_rng([seed, 10 + _SPLIT_INDEX[split], i])
        font = fonts[int(rng.integers(len(fonts)))]
        text = _label_text(rng, font_charset(str(font.path), ALPHABET))
        spacing = str(rng.choice(["natural", "tight", "spaced"], p=[0.8, 0.1, 0.1]))
        yield capture(typeset(text, font.path, rng, cap=_cap(rng), spacing=spacing, form="none", hand=False), rng)


def _on_paper(ink: np.ndarray, body: float, rng: np.random.Generator) -> np.ndarray:
    """Ink-bright handwriting whose capitals are ``body`` pixels tall, scaled to a drawn
    capital height and captured as printed lines are (:func:`hcr.typeset.capture`)."""
    import cv2

    from ..typeset import Typeset, capture

    f = _cap(rng) / max(body, 1.0)
    small = cv2.resize(ink.astype(np.float32), (max(1, round(ink.shape[1] * f)), max(1, round(ink.shape[0] * f))), interpolation=cv2.INTER_AREA)
    small = np.pad(np.clip(small, 0, 1), max(4, int(0.8 * small.shape[0])))
    return capture(Typeset(small, np.zeros_like(small), ""), rng)


def _handwritten_lines(split: str, n: int, seed: int, data_dir: str | Path | None) -> Iterator[np.ndarray]:
    from ..compose import KINDS, GlyphPool, compose, make_text
    from ..preprocess import find_ink
    from . import get_line_source, get_source
    from .lines import _held_out_split

    dhsd = get_line_source("dhsd", data_dir, seed=seed).load("train" if split == "train" else "val")
    emnist = get_source("emnist-byclass", data_dir)
    glyphs = emnist.load(emnist.default_train_split if split == "train" else _held_out_split(emnist))
    pool = GlyphPool.from_samples(glyphs.images, glyphs.targets, glyphs.label_map.symbols)
    for i in range(n):
        rng = np.random.default_rng([seed, 20 + _SPLIT_INDEX[split], i])
        if i % 2 == 0:
            found = find_ink(dhsd.load_image(int(rng.integers(len(dhsd)))))
            if found.mask is None:
                continue
            ink = np.where(found.mask, found.signal / max(float(np.percentile(found.signal[found.mask], 90)), 1.0), 0.0)
            rows = np.flatnonzero(found.mask.any(axis=1))
            yield _on_paper(ink, 0.6 * (rows[-1] - rows[0] + 1), rng)  # a word's capitals: about 60% of its ink height
        else:
            text = make_text(KINDS[int(rng.integers(len(KINDS)))], rng)
            if rng.random() < 0.5:
                text = text.upper()
            gaps = (8, 24) if rng.random() < 0.4 else None  # letter-spaced block capitals, a comb field
            line = compose(text, pool, rng, vary=True, letter_gap=gaps)
            yield _on_paper(line.astype(np.float32) / 255.0, 20.0, rng)  # EMNIST's capitals: about 20 of 28 px


def _make(split: str, n: int, seed: int, data_dir: str | Path | None) -> dict[str, np.ndarray]:
    from tqdm.auto import tqdm

    crops: list[np.ndarray] = []
    targets: list[int] = []
    ids: list[str] = []
    # printed lines are shorter (labels): half as many again keeps the classes near balance
    for label, lines in ((0, _handwritten_lines(split, n, seed, data_dir)), (1, _printed_lines(split, n * 3 // 2, seed))):
        for i, image in enumerate(tqdm(lines, desc=f"{CLASSES[label]} lines ({split})", unit="line", leave=False, mininterval=0.5)):
            for k, c in enumerate(_crops(image)):
                crops.append(c)
                targets.append(label)
                ids.append(f"{CLASSES[label]}-{i}-{k}")
    if not crops:
        raise DataError(f"printed:{split}: no glyphs were found in the generated lines")
    return {
        "pixels": np.concatenate([c.reshape(-1) for c in crops]), "shapes": np.asarray([c.shape for c in crops], np.int64),
        "targets": np.asarray(targets, np.int64), "ids": np.frombuffer(json.dumps(ids).encode(), np.uint8),
    }
