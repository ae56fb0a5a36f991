"""Shared fixtures: where the real data sets live, and a synthetic glyph."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The shared real-data folder ($HCR_DATA_DIR, else ../shared/data); skips when absent."""
    env = os.environ.get("HCR_DATA_DIR")
    path = Path(env).expanduser() if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"real data not found at {path}: set HCR_DATA_DIR")
    return path


def draw_glyph(size: int = 28, thickness: int | None = None) -> np.ndarray:
    """A thick anti-aliased "7" (ink bright on black), uint8, ``size`` x ``size``."""
    img = np.zeros((size, size), np.uint8)
    s = size / 28.0
    t = thickness if thickness is not None else max(2, int(round(2.5 * s)))
    pts = lambda x, y: (int(round(x * s)), int(round(y * s)))  # noqa: E731
    cv2.line(img, pts(7, 6), pts(21, 6), 255, t, lineType=cv2.LINE_AA)  # top bar
    cv2.line(img, pts(21, 6), pts(12, 23), 255, t, lineType=cv2.LINE_AA)  # diagonal stem
    cv2.line(img, pts(11, 14), pts(18, 14), 255, max(1, t - 1), lineType=cv2.LINE_AA)  # cross bar
    return img


@pytest.fixture
def glyph() -> np.ndarray:
    """A synthetic 28x28 uint8 character "7": ink bright (255, anti-aliased edges) on black."""
    return draw_glyph(28)


SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def handwritten(chars: str, height: int) -> list[np.ndarray]:
    """Real handwriting for tests that need it: the EMNIST characters and digits of
    samples/ (their ink, found by the shared preprocessing whatever the style), dark on
    white, ``height`` pixels tall. Machine-drawn text (cv2's Hershey fonts) is printed, and
    the reader leaves printed words out."""
    from hcr.preprocess import find_ink

    out = []
    for ch in chars:
        path = next(iter(sorted(SAMPLES.glob(f"digit_{ch}_*")) + sorted(SAMPLES.glob(f"char_{ch}_*"))))
        found = find_ink(path)
        ys, xs = np.nonzero(found.mask)
        ink = found.flattened()[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.float32)
        g = (255 - 235 * np.clip(ink / np.percentile(ink[ink > 0], 90), 0, 1)).astype(np.uint8)
        out.append(cv2.resize(g, (max(1, round(g.shape[1] * height / g.shape[0])), height), interpolation=cv2.INTER_AREA))
    return out


def handwritten_line(text: str, height: int = 60, gap: float = 0.3) -> np.ndarray:
    """``text`` (characters of samples/, spaces) in real handwriting on white paper, letters
    ``gap`` heights apart (a space: three times that)."""
    glyphs = iter(handwritten(text.replace(" ", ""), height))
    pieces, x = [], height // 2
    for ch in text:
        if ch == " ":
            x += int(2 * gap * height)
            continue
        g = next(glyphs)
        pieces.append((g, x))
        x += g.shape[1] + int(gap * height)
    img = np.full((2 * height, x + height // 2), 245, np.uint8)
    for g, gx in pieces:
        img[height // 2 : height // 2 + g.shape[0], gx : gx + g.shape[1]] = np.minimum(img[height // 2 : height // 2 + g.shape[0], gx : gx + g.shape[1]], g)
    return img
