"""The 1,797 handwritten digits of the UCI "Optical Recognition of Handwritten Digits" data
(as scikit-learn ships them), embedded in hcr as a 45 kB array file (``digits.npz``: the
8x8 values 0-16 and the labels, exactly ``sklearn.datasets.load_digits()``): real data that
needs no download and no scikit-learn."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..labels import DIGITS, LabelMap
from .base import Samples
from .csv_source import _SplitArrays

SIZE = 32
TEST_FRACTION = 0.2
TEST_SEED = 0


def _upscale(images: np.ndarray) -> np.ndarray:
    """8x8 values 0-16 -> 32x32 uint8 0-255 (bicubic, clipped)."""
    import cv2

    scaled = images.astype(np.float32) * (255.0 / 16.0)
    out = np.empty((len(scaled), SIZE, SIZE), dtype=np.uint8)
    for i, img in enumerate(scaled):
        big = cv2.resize(img, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)
        out[i] = np.clip(np.rint(big), 0, 255).astype(np.uint8)
    return out


#: The embedded array file.
ARRAYS = Path(__file__).with_name("digits.npz")


def load_raw() -> tuple[np.ndarray, np.ndarray]:
    """The 8x8 images (uint8, values 0-16) and their labels (0-9), as stored."""
    with np.load(ARRAYS) as z:
        return z["images"], z["target"].astype(np.int64)


class DigitsSource(_SplitArrays):
    """The 1,797 8x8 digits (as ``sklearn.datasets.load_digits`` gives them, embedded in
    hcr), upscaled to 32x32, ink bright.

    ``test`` is a fixed stratified 20% split (seed 0) whatever the constructor's seed, so
    reported test figures are reproducible; ``val_fraction`` and ``seed`` are kept for a
    uniform constructor across sources and do not change it.
    """

    name = "digits"
    splits = ("train", "test", "all")
    default_val_split = "test"
    citation = (
        "Optical Recognition of Handwritten Digits (E. Alpaydin, C. Kaynak, UCI Machine Learning "
        "Repository, 1998; CC BY 4.0), as shipped with scikit-learn and embedded in hcr"
    )

    def __init__(self, val_fraction: float = 0.2, seed: int = 0) -> None:
        super().__init__(val_fraction, seed)

    def _split_params(self) -> tuple[float, int]:
        return TEST_FRACTION, TEST_SEED

    def label_map(self) -> LabelMap:
        return LabelMap(DIGITS)

    def required_files(self) -> list[Path]:
        return []  # embedded in the package

    def _source_prefix(self) -> str:
        return self.name

    def _read_all(self) -> Samples:
        images, target = load_raw()
        return Samples(_upscale(images), target, self.label_map(), f"{self.name}:all")
