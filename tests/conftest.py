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
