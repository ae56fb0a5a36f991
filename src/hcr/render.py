"""Render a handwritten glyph the way users submit it, and images that hold no character.

A data-set glyph (28x28, ink bright on dark, as :mod:`hcr.data` sources return it) becomes a
photo of paper, a blue-pen scan, a JPEG-compressed photo, a transparent canvas export, a
chalkboard photo or a small character in a large picture; :func:`render` picks the style by
name. :func:`render_negative` makes the inputs a user may submit *without* a character: an
empty canvas, a photo of blank paper, a doodle and a photo of some texture.

The degradations are realistic, not adversarial: ink keeps at least ~80 grey levels of
contrast to its paper, lighting varies by at most about a third across the picture, blur and
noise stay mild, so a person reads every rendered character at a glance. Every function
takes a :class:`numpy.random.Generator` and draws all of its randomness from it: the same
generator state gives the same pixels.

Nothing here prepares images for the model; that is :func:`hcr.preprocess.preprocess`, which
is what these renderings are meant to exercise (``benchmarks/robustness.py``).
"""

from __future__ import annotations

import io
import math
from typing import Callable

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray
from PIL import Image

from .errors import InputError, UnknownNameError

__all__ = [
    "JPEG_QUALITY",
    "NEGATIVES",
    "STYLES",
    "as_glyph",
    "encode_jpeg",
    "render",
    "render_blank_canvas",
    "render_blank_paper_photo",
    "render_blue_pen_scan",
    "render_canvas_png",
    "render_chalkboard",
    "render_jpeg_photo",
    "render_line",
    "render_negative",
    "render_paper_photo",
    "render_scribble",
    "render_small_in_large",
    "render_texture_photo",
]

#: Submission styles of a real character, in reporting order.
STYLES: tuple[str, ...] = ("paper-photo", "blue-pen-scan", "jpeg-photo", "canvas-png", "chalkboard", "small-in-large")
#: Kinds of image that hold no character.
NEGATIVES: tuple[str, ...] = ("blank-canvas", "blank-paper-photo", "scribble", "texture-photo")
#: JPEG quality range (inclusive) of the ``jpeg-photo`` style.
JPEG_QUALITY: tuple[int, int] = (40, 75)

Float = NDArray[np.float32]
Rgb = tuple[float, float, float]


# --------------------------------------------------------------------------- building blocks


def as_glyph(glyph: ArrayLike) -> Float:
    """A glyph as float32 in [0, 1], ink bright on dark.

    Accepts what data sources return (2-D ``uint8``, 0..255) as well as floats in [0, 1] and
    booleans. Raises :class:`~hcr.errors.InputError` for anything else.
    """
    a = np.asarray(glyph)
    if a.ndim != 2 or a.size == 0:
        raise InputError(f"glyph: expected a 2-D array, got shape {a.shape}")
    if a.dtype == np.bool_:
        return a.astype(np.float32)
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if not np.issubdtype(a.dtype, np.number):
        raise InputError(f"glyph: expected a numeric array, got dtype {a.dtype}")
    f = a.astype(np.float32)
    if not np.isfinite(f).all() or f.min() < 0.0 or f.max() > 1.0:
        raise InputError("glyph: float values must be finite and lie in [0, 1] (or pass uint8 0..255)")
    return f


def _smooth_noise(h: int, w: int, cell: float, rng: np.random.Generator, stretch: float = 1.0) -> Float:
    """Smooth random field (zero mean, unit std) varying over about ``cell`` pixels.

    ``stretch`` > 1 makes it vary ``stretch`` times more slowly along x (wood-like grain).
    """
    gh = max(2, int(math.ceil(h / cell)) + 2)
    gw = max(2, int(math.ceil(w / (cell * stretch))) + 2)
    grid = rng.standard_normal((gh, gw), dtype=np.float32)
    field = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    sd = float(field.std())
    return ((field - float(field.mean())) / sd if sd > 1e-6 else field).astype(np.float32)


def _lighting(h: int, w: int, rng: np.random.Generator, strength: float) -> Float:
    """Multiplicative illumination in [1 - strength, 1]: a linear fall-off in a random
    direction plus a vignette around a random light centre."""
    yy = np.linspace(-1.0, 1.0, h, dtype=np.float32)[:, None]
    xx = np.linspace(-1.0, 1.0, w, dtype=np.float32)[None, :]
    theta = rng.uniform(0.0, 2.0 * math.pi)
    ramp = xx * math.cos(theta) + yy * math.sin(theta)
    ramp = (ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1e-6)
    cy, cx = rng.uniform(-0.6, 0.6, 2)
    vignette = np.clip(((xx - cx) ** 2 + (yy - cy) ** 2) / 2.5, 0.0, 1.0)
    share = rng.uniform(0.3, 0.8)  # how much of the drop is the ramp vs. the vignette
    light: Float = (1.0 - strength * (share * ramp + (1.0 - share) * vignette)).astype(np.float32)
    return light


def _upsample(glyph: Float, scale: float, rng: np.random.Generator, jitter: float = 0.06) -> Float:
    """Resize the glyph by ``scale`` (per-axis jitter of +-``jitter``) with bicubic or
    Lanczos interpolation; values clipped back to [0, 1] (no ringing halos)."""
    h, w = glyph.shape
    sx = scale * (1.0 + rng.uniform(-jitter, jitter))
    sy = scale * (1.0 + rng.uniform(-jitter, jitter))
    size = (max(1, int(round(w * sx))), max(1, int(round(h * sy))))
    if scale < 1.0:
        interp = cv2.INTER_AREA
    else:
        interp = cv2.INTER_CUBIC if rng.random() < 0.5 else cv2.INTER_LANCZOS4
    up: Float = np.clip(cv2.resize(glyph, size, interpolation=interp), 0.0, 1.0).astype(np.float32)
    return up


def _canvas_size(need: int, lo: int, hi: int, rng: np.random.Generator) -> tuple[int, int]:
    """Height and width in [lo, hi] (grown when needed) with room for ``need`` pixels plus a
    margin on each side of 5% of the shorter side (+2 px): the border stays paper."""
    lo = max(lo, int(math.ceil((need + 6) / 0.88)))
    hi = max(hi, lo)
    return int(rng.integers(lo, hi + 1)), int(rng.integers(lo, hi + 1))


def _place(alpha: Float, h: int, w: int, rng: np.random.Generator) -> Float:
    """An ``h`` x ``w`` coverage map with ``alpha`` at a random position inside the margin."""
    gh, gw = alpha.shape
    m = min(h, w) // 20 + 2
    top = int(rng.integers(m, max(m, h - gh - m) + 1))
    left = int(rng.integers(m, max(m, w - gw - m) + 1))
    out = np.zeros((h, w), np.float32)
    out[top : top + gh, left : left + gw] = alpha[: h - top, : w - left]
    return out


def _line_canvas_size(need_h: int, need_w: int, lo: int, hi: int, rng: np.random.Generator) -> tuple[int, int]:
    """Like :func:`_canvas_size`, per axis, for a line of writing: the height is drawn as a
    glyph's side is, the width fits the line with a margin and up to 15% more paper."""
    h, _ = _canvas_size(need_h, lo, hi, rng)
    lo_w = max(lo, int(math.ceil((need_w + 6) / 0.88)))
    return h, int(rng.integers(lo_w, max(hi, int(lo_w * 1.15)) + 1))


def _scaled_glyph_on_canvas(glyph: ArrayLike, scale: float, lo: int, hi: int, rng: np.random.Generator, line: bool = False) -> Float:
    """Upsample the glyph and place it in a canvas of random size: the ink coverage map.
    A glyph gets a canvas with room for its longer side both ways; a ``line`` one that fits
    its height and its width separately (:func:`_line_canvas_size`)."""
    alpha = _upsample(as_glyph(glyph), scale, rng)
    h, w = _line_canvas_size(alpha.shape[0], alpha.shape[1], lo, hi, rng) if line else _canvas_size(max(alpha.shape), lo, hi, rng)
    return _place(alpha, h, w, rng)


def _composite(background: Float, alpha: Float, ink: Rgb | Float) -> Float:
    """Ink of colour ``ink`` (RGB, or per-pixel H x W x 3) laid over an H x W x 3
    ``background`` with coverage ``alpha``; ``background`` is updated in place and returned."""
    a = alpha[..., None]
    background += a * (np.asarray(ink, np.float32) - background)
    return background


def _to_uint8(img: Float, rng: np.random.Generator, blur: float, noise: float) -> NDArray[np.uint8]:
    """Camera/scanner finish: optical blur, then sensor noise, then 8-bit quantisation.

    The noise is luminance noise (the same in every channel), as phone and scanner
    pipelines leave it after suppressing chroma noise; ``img`` may be overwritten."""
    if blur > 0:
        img = np.asarray(cv2.GaussianBlur(img, (0, 0), blur), np.float32)
    if noise > 0:
        grain = rng.standard_normal(img.shape[:2], dtype=np.float32)
        grain *= np.float32(noise)
        img += grain[..., None] if img.ndim == 3 else grain
    img += np.float32(0.5)
    np.clip(img, 0.0, 255.0, out=img)
    return img.astype(np.uint8)


def _paper(h: int, w: int, rng: np.random.Generator) -> Float:
    """Off-white paper (RGB, 0..255 reflectance) with faint fibre and blotch texture."""
    base = np.array([rng.uniform(232, 250), 0.0, 0.0], np.float32)
    base[1] = base[0] - rng.uniform(0, 6)
    base[2] = base[0] - rng.uniform(2, 16)  # a little warm/yellow, like most paper
    texture = 2.0 * _smooth_noise(h, w, rng.uniform(30, 90), rng) + 1.5 * _smooth_noise(h, w, rng.uniform(2, 4), rng)
    return base[None, None, :] + texture[..., None]


def _dark_ink(rng: np.random.Generator) -> Rgb:
    """Near-black or dark grey pen/pencil ink (never pure 0), faintly tinted."""
    level = rng.uniform(18, 70)
    r, g, b = level + rng.uniform(-6, 6, 3)
    return (float(r), float(g), float(b))


def _photo_on_paper(
    alpha: Float,
    ink: Rgb,
    rng: np.random.Generator,
    light: tuple[float, float] = (0.08, 0.3),
    blur: tuple[float, float] = (0.4, 1.2),
    noise: tuple[float, float] = (1.5, 4.0),
) -> Image.Image:
    """Ink coverage ``alpha`` written on paper and photographed: uneven (slightly warm)
    light falls on paper and ink alike, then blur and sensor noise."""
    h, w = alpha.shape
    img = _composite(_paper(h, w, rng), alpha, ink)
    tint = np.array([1.0, rng.uniform(0.96, 1.0), rng.uniform(0.9, 0.99)], np.float32)
    img *= _lighting(h, w, rng, rng.uniform(*light))[..., None] * tint
    return Image.fromarray(_to_uint8(img, rng, rng.uniform(*blur), rng.uniform(*noise)), "RGB")


def encode_jpeg(img: Image.Image, quality: int) -> bytes:
    """The image as JPEG bytes at ``quality`` (1-95); RGBA/LA/P images are made RGB first."""
    if not 1 <= quality <= 95:
        raise ValueError(f"JPEG quality must be in 1..95, got {quality}")
    if img.mode not in ("RGB", "L"):
        img = img.convert("RGB")
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=int(quality))
    return buf.getvalue()


# --------------------------------------------------------------------------- styles


def render_paper_photo(glyph: ArrayLike, rng: np.random.Generator, *, line: bool = False) -> Image.Image:
    """Dark ink on off-white paper, photographed: 3-8x upsampled glyph at a random place in
    a 150-400 px RGB picture, uneven light, mild blur and sensor noise."""
    alpha = _scaled_glyph_on_canvas(glyph, rng.uniform(3.0, 8.0), 150, 400, rng, line)
    return _photo_on_paper(alpha, _dark_ink(rng), rng)


def render_blue_pen_scan(glyph: ArrayLike, rng: np.random.Generator, *, line: bool = False) -> Image.Image:
    """Blue ballpoint on a bright white scan: even light, slightly uneven ink density,
    light blur and noise."""
    alpha = _scaled_glyph_on_canvas(glyph, rng.uniform(3.0, 8.0), 150, 400, rng, line)
    h, w = alpha.shape
    density = np.clip(0.88 + 0.08 * _smooth_noise(h, w, rng.uniform(8, 20), rng), 0.75, 1.0)
    paper = np.full((h, w, 3), rng.uniform(246, 254), np.float32)
    ink = (rng.uniform(15, 45), rng.uniform(35, 80), rng.uniform(125, 190))
    img = _composite(paper, alpha * density, ink)
    return Image.fromarray(_to_uint8(img, rng, rng.uniform(0.3, 0.7), rng.uniform(0.8, 2.0)), "RGB")


def render_jpeg_photo(glyph: ArrayLike, rng: np.random.Generator, *, line: bool = False) -> Image.Image:
    """A paper photo saved as JPEG at quality 40-75 and decoded again (RGB)."""
    photo = render_paper_photo(glyph, rng, line=line)
    quality = int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1))
    with Image.open(io.BytesIO(encode_jpeg(photo, quality))) as decoded:
        return decoded.convert("RGB")


def render_canvas_png(glyph: ArrayLike, rng: np.random.Generator, *, line: bool = False) -> Image.Image:
    """An HTML canvas export (RGBA): opaque black strokes with anti-aliased edges.

    Mostly on a fully transparent background (transparent pixels are (0, 0, 0, 0), as
    browsers write them); one time in four the canvas was first filled white (alpha 255).
    """
    alpha = _scaled_glyph_on_canvas(glyph, rng.uniform(3.0, 8.0), 200, 400, rng, line)
    # a canvas pen lays down solid strokes: the soft scan edges become a thin AA rim
    alpha = np.clip((alpha - 0.08) / 0.6, 0.0, 1.0)
    a8 = np.round(alpha * 255.0).astype(np.uint8)
    rgba = np.zeros((*alpha.shape, 4), np.uint8)
    if rng.random() < 0.25:
        rgba[..., :3] = (255 - a8)[..., None]
        rgba[..., 3] = 255
    else:
        rgba[..., 3] = a8
    return Image.fromarray(rgba, "RGBA")


def render_chalkboard(glyph: ArrayLike, rng: np.random.Generator, *, line: bool = False) -> Image.Image:
    """Grainy white chalk on a dark green or grey board with smudges of wiped chalk,
    photographed: uneven light, mild blur, noise."""
    alpha = _scaled_glyph_on_canvas(glyph, rng.uniform(3.0, 8.0), 150, 400, rng, line)
    h, w = alpha.shape
    if rng.random() < 0.6:  # green board
        board = np.array([rng.uniform(30, 50), rng.uniform(60, 85), rng.uniform(48, 65)], np.float32)
    else:  # slate grey
        board = np.full(3, rng.uniform(40, 60), np.float32)
    smudge = 5.0 * np.clip(_smooth_noise(h, w, rng.uniform(25, 70), rng), 0.0, None)  # wiped chalk residue
    grain = 2.0 * _smooth_noise(h, w, 2.0, rng)
    background = board[None, None, :] + (smudge + grain)[..., None]
    chalk_grain = np.clip(0.8 + 0.2 * _smooth_noise(h, w, 1.5, rng), 0.45, 1.0)
    chalk = rng.uniform(215, 245)
    img = _composite(background, alpha * chalk_grain, (chalk, chalk, chalk - rng.uniform(0, 10)))
    img *= _lighting(h, w, rng, rng.uniform(0.05, 0.25))[..., None]
    return Image.fromarray(_to_uint8(img, rng, rng.uniform(0.4, 1.0), rng.uniform(2.0, 4.5)), "RGB")


def render_small_in_large(glyph: ArrayLike, rng: np.random.Generator, *, line: bool = False) -> Image.Image:
    """A small character (40-70 px) at an arbitrary place in a large (600-1000 px) photo of
    light paper."""
    g = as_glyph(glyph)
    side = rng.uniform(40.0, 70.0)  # of a glyph; of a line's height
    alpha = _scaled_glyph_on_canvas(g, side / (g.shape[0] if line else max(g.shape)), 600, 1000, rng, line)
    return _photo_on_paper(alpha, _dark_ink(rng), rng, light=(0.05, 0.25), blur=(0.3, 0.7), noise=(1.5, 3.5))


_STYLE_FUNCS: dict[str, Callable[..., Image.Image]] = {
    "paper-photo": render_paper_photo,
    "blue-pen-scan": render_blue_pen_scan,
    "jpeg-photo": render_jpeg_photo,
    "canvas-png": render_canvas_png,
    "chalkboard": render_chalkboard,
    "small-in-large": render_small_in_large,
}


def render(glyph: ArrayLike, style: str, rng: np.random.Generator) -> Image.Image:
    """Render ``glyph`` (2-D, ink bright on dark; uint8 or float in [0, 1]) in ``style``
    (one of :data:`STYLES`). Raises :class:`~hcr.errors.UnknownNameError` for other names."""
    if style not in _STYLE_FUNCS:
        raise UnknownNameError("render style", style, list(STYLES))
    return _STYLE_FUNCS[style](glyph, rng)


def render_line(line: ArrayLike, style: str, rng: np.random.Generator) -> Image.Image:
    """Render a line of writing (2-D, ink bright on dark, any width: e.g. data-set glyphs
    side by side) in ``style``, as :func:`render` renders a glyph, except that the style's
    scale applies to the line's height (a glyph's side) and the picture fits the line
    instead of being square: the paper gets the same margins above and below, and the width
    of the line plus a margin. ``render`` itself is unchanged."""
    if style not in _STYLE_FUNCS:
        raise UnknownNameError("render style", style, list(STYLES))
    return _STYLE_FUNCS[style](line, rng, line=True)


# --------------------------------------------------------------------------- negatives


def render_blank_canvas(rng: np.random.Generator) -> Image.Image:
    """An empty 200-400 px canvas export: fully transparent RGBA, or opaque white."""
    h, w = _canvas_size(0, 200, 400, rng)
    if rng.random() < 0.5:
        return Image.fromarray(np.zeros((h, w, 4), np.uint8), "RGBA")
    return Image.fromarray(np.full((h, w, 3), 255, np.uint8), "RGB")


def render_blank_paper_photo(rng: np.random.Generator) -> Image.Image:
    """A photo of blank paper: the paper-photo style with nothing written."""
    h, w = _canvas_size(0, 150, 400, rng)
    return _photo_on_paper(np.zeros((h, w), np.float32), _dark_ink(rng), rng)


def _bezier(p: NDArray[np.float64], n: int = 64) -> NDArray[np.float64]:
    """Points of the cubic Bezier curve with control points ``p`` (4 x 2)."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    pts: NDArray[np.float64] = (1 - t) ** 3 * p[0] + 3 * (1 - t) ** 2 * t * p[1] + 3 * (1 - t) * t**2 * p[2] + t**3 * p[3]
    return pts


def render_scribble(rng: np.random.Generator) -> Image.Image:
    """A doodle on paper: 3-6 long random Bezier curves and zig-zags, pen thick, crossing
    each other all over the sheet; clearly not a character."""
    h, w = _canvas_size(0, 150, 400, rng)
    m = min(h, w) // 20 + 4
    thickness = int(rng.integers(3, 9))
    mask = np.zeros((h, w), np.uint8)
    lo, hi = np.array([m + thickness, m + thickness]), np.array([w - m - thickness, h - m - thickness])
    for _ in range(int(rng.integers(3, 7))):
        if rng.random() < 0.6:
            pts = _bezier(rng.uniform(lo, hi, (4, 2)))
        else:
            pts = rng.uniform(lo, hi, (int(rng.integers(4, 9)), 2))
        fixed = np.round(pts * 16).astype(np.int32).reshape(-1, 1, 2)  # 4 fractional bits: smooth AA lines
        cv2.polylines(mask, [fixed], False, 255, thickness, lineType=cv2.LINE_AA, shift=4)
    alpha = mask.astype(np.float32) / 255.0
    if rng.random() < 0.3:  # doodled on a canvas instead of paper
        rgba = np.zeros((h, w, 4), np.uint8)
        rgba[..., 3] = mask
        return Image.fromarray(rgba, "RGBA")
    return _photo_on_paper(alpha, _dark_ink(rng), rng)


def render_texture_photo(rng: np.random.Generator) -> Image.Image:
    """A photo of some surface (wood, fabric, a desk): smooth blobs and grain, uneven
    light and noise, no writing."""
    h, w = _canvas_size(0, 150, 400, rng)
    palettes: list[tuple[Rgb, Rgb]] = [
        ((150, 100, 60), (200, 150, 100)),  # wood
        ((70, 80, 110), (120, 130, 160)),  # blue fabric
        ((170, 160, 140), (215, 205, 185)),  # beige desk / linen
        ((90, 90, 90), (150, 150, 150)),  # grey fabric
    ]
    dark, light = (np.array(c, np.float32) for c in palettes[int(rng.integers(len(palettes)))])
    stretch = rng.uniform(3.0, 10.0) if rng.random() < 0.5 else 1.0  # grain along x, or isotropic blobs
    field = 0.6 * _smooth_noise(h, w, rng.uniform(40, 120), rng) + 0.4 * _smooth_noise(h, w, rng.uniform(6, 16), rng, stretch)
    t = np.clip(0.5 + 0.25 * field, 0.0, 1.0)[..., None]
    img = (dark * (1.0 - t) + light * t).astype(np.float32)
    img *= _lighting(h, w, rng, rng.uniform(0.05, 0.3))[..., None]
    return Image.fromarray(_to_uint8(img, rng, rng.uniform(0.5, 1.2), rng.uniform(2.0, 4.0)), "RGB")


_NEGATIVE_FUNCS: dict[str, Callable[[np.random.Generator], Image.Image]] = {
    "blank-canvas": render_blank_canvas,
    "blank-paper-photo": render_blank_paper_photo,
    "scribble": render_scribble,
    "texture-photo": render_texture_photo,
}


def render_negative(kind: str, rng: np.random.Generator) -> Image.Image:
    """An image with no character, of ``kind`` (one of :data:`NEGATIVES`)."""
    if kind not in _NEGATIVE_FUNCS:
        raise UnknownNameError("negative kind", kind, list(NEGATIVES))
    return _NEGATIVE_FUNCS[kind](rng)
