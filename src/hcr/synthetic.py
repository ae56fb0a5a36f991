"""Synthetic training inputs: photo-like copies of training glyphs, and non-characters.

Two optional additions to training (see :class:`hcr.config.TrainConfig`):

* **rendered copies** (``render_fraction``): a training glyph is rendered the way users
  submit characters (:mod:`hcr.render`: paper photo, blue-pen scan, JPEG photo, canvas PNG,
  chalkboard, small in a large picture) and brought back through the shared preprocessing.
  During training a share of each batch uses these copies instead of the clean inputs, so
  the network learns what a photographed character looks like *after* preprocessing.
* **outliers** (``outliers``): doodles that are not characters, preprocessed the same way,
  trained towards the uniform distribution (outlier exposure, Hendrycks et al. 2019), so a
  scribble gets a low-confidence answer instead of a confident letter.

Both are made once per recipe, in worker processes, and cached in the user cache next to
the preprocessed data sets (:mod:`hcr.cache`; keyed by the inputs, the settings and this code).
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from . import preprocess as _pp
from .cache import cache_file, cached_arrays
from . import render as _render
from .preprocess import PreprocessSpec, preprocess_many

#: Styles used for rendered training copies (all of :data:`hcr.render.STYLES`).
TRAIN_STYLES: tuple[str, ...] = _render.STYLES
#: Draw side of a synthetic outlier before preprocessing.
_OUTLIER_SIDE = 112


def _cache_path(kind: str, *parts: bytes | str) -> Path:
    return cache_file(kind, *parts, code=(_render.__file__, _pp.__file__, __file__))


def _workers(n_jobs: int) -> int:
    return max(1, min(os.cpu_count() or 1, 4, n_jobs))


def _run_chunks(fn: Callable[..., tuple[np.ndarray, np.ndarray]], chunks: list[tuple], workers: int) -> list[tuple[np.ndarray, np.ndarray]]:
    if workers <= 1 or len(chunks) == 1:
        return [fn(*c) for c in chunks]
    with ProcessPoolExecutor(workers) as ex:
        return list(ex.map(fn, *zip(*chunks)))


# --------------------------------------------------------------------------- rendered copies


def _preprocessed(images: list[Any], spec_dict: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Model inputs as ``uint8`` and which ones hold ink, through the shared preprocessing."""
    x, blank = preprocess_many(images, PreprocessSpec.from_dict(spec_dict))
    return np.round(x * 255.0).astype(np.uint8), ~blank


def _render_chunk(glyphs: np.ndarray, seeds: np.ndarray, spec_dict: dict[str, Any], styles: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    images = []
    for g, s in zip(glyphs, seeds):
        rng = np.random.default_rng(int(s))
        images.append(_render.render(g, styles[int(rng.integers(len(styles)))], rng))
    return _preprocessed(images, spec_dict)


def rendered_copies(inputs: np.ndarray, spec: PreprocessSpec, *, seed: int = 0, styles: tuple[str, ...] = TRAIN_STYLES, workers: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A rendered-and-preprocessed copy of each model input in ``inputs`` ((N,S,S) in [0,1],
    ink bright). Returns ``(copies (N,S,S) float32, ok (N,) bool)``; ``ok`` is False where
    the rendering came back blank (the clean input is then used)."""
    q = np.round(np.asarray(inputs, np.float32) * 255.0).astype(np.uint8)
    path = _cache_path("rendered", q.tobytes(), repr(sorted(spec.to_dict().items())), str(seed), ",".join(styles))

    def make() -> dict[str, np.ndarray]:
        seeds = np.random.SeedSequence(seed).generate_state(len(q), np.uint64)
        n_chunks = max(1, min(64, len(q) // 256))
        bounds = np.linspace(0, len(q), n_chunks + 1).astype(int)
        chunks = [(q[a:b], seeds[a:b], spec.to_dict(), styles) for a, b in zip(bounds[:-1], bounds[1:])]
        parts = _run_chunks(_render_chunk, chunks, workers or _workers(len(chunks)))
        return {"x": np.concatenate([p[0] for p in parts]), "ok": np.concatenate([p[1] for p in parts])}

    z = cached_arrays(path, make)
    return z["x"].astype(np.float32) / 255.0, z["ok"].astype(bool)


# --------------------------------------------------------------------------- outliers


def draw_outlier(rng: np.random.Generator, side: int = _OUTLIER_SIDE) -> np.ndarray:
    """A doodle that is not a character, light on dark (``uint8`` (side, side)): 3-6 random
    Bezier curves, zig-zags, loops and hatching of one pen thickness, crossing each other.
    Three strokes at least: fewer would often make a real character (a curve is a C or S)."""
    img = np.zeros((side, side), np.uint8)
    thickness = int(rng.integers(max(2, side // 28), max(3, side // 14) + 1))
    m = thickness + 2
    for _ in range(int(rng.integers(3, 7))):
        kind = rng.random()
        if kind < 0.45:  # a smooth curve
            p = rng.uniform(m, side - m, (4, 2))
            t = np.linspace(0.0, 1.0, 48)[:, None]
            pts = (1 - t) ** 3 * p[0] + 3 * (1 - t) ** 2 * t * p[1] + 3 * (1 - t) * t**2 * p[2] + t**3 * p[3]
        elif kind < 0.75:  # a zig-zag
            pts = rng.uniform(m, side - m, (int(rng.integers(4, 10)), 2))
        elif kind < 0.9:  # a small tight loop (spiral)
            c = rng.uniform(side * 0.25, side * 0.75, 2)
            a = np.linspace(0, rng.uniform(3, 7) * np.pi, 60)
            r = np.linspace(rng.uniform(2, 6), rng.uniform(side * 0.12, side * 0.3), 60)
            pts = c + np.stack([r * np.cos(a), r * np.sin(a)], 1)
        else:  # hatching
            n = int(rng.integers(3, 7))
            x0, x1 = sorted(rng.uniform(m, side - m, 2))
            ys = np.sort(rng.uniform(m, side - m, n))
            pts = np.concatenate([[[x0, y], [x1, y + rng.uniform(-6, 6)]] for y in ys])
        fixed = np.round(np.clip(pts, 0, side - 1) * 16).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(img, [fixed], False, 255, thickness, lineType=cv2.LINE_AA, shift=4)
    return img


def _outlier_chunk(seeds: np.ndarray, spec_dict: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    return _preprocessed([draw_outlier(np.random.default_rng(int(s))) for s in seeds], spec_dict)


def outlier_inputs(n: int, spec: PreprocessSpec, *, seed: int = 0, workers: int | None = None) -> np.ndarray:
    """``n`` preprocessed doodles (fewer if some came back blank), float32 (M,S,S) in [0,1]."""
    path = _cache_path("outliers", str(n), repr(sorted(spec.to_dict().items())), str(seed))

    def make() -> dict[str, np.ndarray]:
        seeds = np.random.SeedSequence([seed, 0x0D00D1E]).generate_state(n, np.uint64)
        n_chunks = max(1, min(32, n // 256))
        bounds = np.linspace(0, n, n_chunks + 1).astype(int)
        chunks = [(seeds[a:b], spec.to_dict()) for a, b in zip(bounds[:-1], bounds[1:])]
        parts = _run_chunks(_outlier_chunk, chunks, workers or _workers(len(chunks)))
        x, ok = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        return {"x": x[ok]}

    return cached_arrays(path, make)["x"].astype(np.float32) / 255.0


__all__ = ["TRAIN_STYLES", "draw_outlier", "outlier_inputs", "rendered_copies"]
