"""Thumbnails for display: an image fitted into a square, a 28x28 model input enlarged with
square pixels. OpenCV and NumPy only (works on the inference-only install).
"""

from __future__ import annotations

import numpy as np


def fit_thumb(grey: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    """``grey`` scaled to fit ``side`` x ``side`` (aspect kept); returns it and the scale."""
    import cv2

    h, w = grey.shape
    scale = side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_NEAREST if scale >= 2 else cv2.INTER_LINEAR
    return cv2.resize(grey, size, interpolation=interp), scale


def model_input_image(x: np.ndarray | None, side: int) -> np.ndarray | None:
    """A model input (ink bright, 0..1) as dark ink on white uint8, ``side`` px, pixels kept sharp."""
    if x is None:
        return None
    import cv2

    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        return None
    img = np.round((1.0 - np.clip(a, 0.0, 1.0)) * 255).astype(np.uint8)
    return cv2.resize(img, (side, side), interpolation=cv2.INTER_NEAREST)


__all__ = ["fit_thumb", "model_input_image"]
