"""Regenerate the bundled sample images (run from the repository root).

1. ``digit_*``: real handwritten digits from the *test* split of the embedded data set
   (scikit-learn's copy of the UCI "Optical Recognition of Handwritten Digits", E. Alpaydin
   and C. Kaynak, 1998), rendered by hand-written code below: ink on paper, chalk on a board,
   a transparent canvas drawing, an unevenly lit JPEG photo, a large off-centre scan, and an
   empty canvas.
2. ``char_*``: real handwritten characters from the EMNIST ByClass development subset's
   held-out split (dev-val, never used for training), one seeded random pick per listed
   class (not chosen by what a model answers), rendered by :mod:`hcr.render` as users
   submit them; plus images with no character (``none_*``). Needs the data
   (``HCR_DATA_DIR`` pointing at a folder with ``emnist/``); skipped otherwise.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from hcr.data import get_source
from hcr.data.digits import DigitsSource
from hcr.errors import DataError
from hcr.render import render, render_negative

OUT = Path(__file__).resolve().parent


def glyph(label: str, size: int) -> np.ndarray:
    """Ink intensity 0..1 of the first test-split digit with this label, upscaled."""
    s = DigitsSource().load("test")
    i = int(np.flatnonzero(s.targets == s.label_map.index(label))[0])
    g = cv2.resize(s.images[i].astype(np.float32) / 255.0, (size, size), interpolation=cv2.INTER_CUBIC)
    return np.clip(g, 0, 1)


def on_canvas(g: np.ndarray, shape: tuple[int, int], at: tuple[int, int]) -> np.ndarray:
    c = np.zeros(shape, np.float32)
    y, x = at
    c[y : y + g.shape[0], x : x + g.shape[1]] = g
    return c


def main() -> None:
    rng = np.random.default_rng(0)
    # 1. dark ink on white paper with a little noise
    ink = on_canvas(glyph("3", 120), (160, 160), (20, 20))
    paper = 235 - 200 * ink + rng.normal(0, 4, ink.shape)
    Image.fromarray(np.clip(paper, 0, 255).astype(np.uint8)).save(OUT / "digit_3_paper.png")
    # 2. chalk on a dark board
    ink = on_canvas(glyph("7", 100), (140, 140), (20, 20))
    Image.fromarray(np.clip(30 + 210 * ink, 0, 255).astype(np.uint8)).save(OUT / "digit_7_chalk.png")
    # 3. canvas drawing: black strokes on transparent pixels
    ink = on_canvas(glyph("5", 200), (280, 280), (40, 40))
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[..., 3] = np.clip(ink * 255, 0, 255).astype(np.uint8)
    Image.fromarray(rgba, "RGBA").save(OUT / "digit_5_canvas.png")
    # 4. a photo: blue ink, light falling off across the page, JPEG compression
    ink = on_canvas(glyph("2", 150), (240, 320), (40, 100))
    yy, xx = np.mgrid[0:240, 0:320]
    light = 200 - 0.25 * xx - 0.1 * yy
    rgb = np.stack([light - 150 * ink, light - 140 * ink, light - 60 * ink], axis=2) + rng.normal(0, 3, (240, 320, 3))
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(OUT / "digit_2_photo.jpg", quality=70)
    # 5. a large scan with the digit off-centre
    ink = on_canvas(glyph("9", 300), (600, 800), (60, 420))
    Image.fromarray(np.clip(250 - 230 * ink, 0, 255).astype(np.uint8)).save(OUT / "digit_9_scan.png")
    # 6. an empty canvas: must read as "no character"
    Image.fromarray(np.zeros((200, 200, 4), np.uint8), "RGBA").save(OUT / "blank_canvas.png")
    emnist_samples()


#: (class, style) of the EMNIST samples: letters and digits outside the look-alike groups
#: (O/o/0, I/l/1, S/s/5, Z/z/2), whose case is visible from the shape alone.
CHARS = [("A", "paper-photo"), ("g", "canvas-png"), ("R", "blue-pen-scan"), ("7", "jpeg-photo"),
         ("k", "chalkboard"), ("E", "small-in-large"), ("4", "canvas-png"), ("h", "paper-photo")]
NONE = [("scribble", "scribble"), ("photo_no_writing", "blank-paper-photo")]


def _save(img: Image.Image, stem: str) -> None:
    if img.mode == "RGBA":
        img.save(OUT / f"{stem}.png", optimize=True)
    else:
        img.convert("RGB").save(OUT / f"{stem}.jpg", quality=85)


def emnist_samples() -> None:
    try:
        val = get_source("emnist-byclass").load("dev-val")
    except DataError as e:
        print(f"EMNIST samples skipped: {e}")
        return
    rng = np.random.default_rng(2026)
    for symbol, style in CHARS:
        i = int(rng.choice(np.flatnonzero(val.targets == val.label_map.index(symbol))))
        _save(render(val.images[i], style, rng), f"char_{symbol}_{style}")
    for name, kind in NONE:
        _save(render_negative(kind, rng), f"none_{name}")


if __name__ == "__main__":
    main()
