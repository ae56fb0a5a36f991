"""hcr.render: realistic submissions of a glyph, and images with no character.

The property the robustness benchmark relies on: a rendering of a glyph, whatever the
style, goes through the shared preprocessing to (nearly) the model input of the clean glyph.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from hcr.errors import HcrError, InputError, UnknownNameError
from hcr.preprocess import PreprocessSpec, load_image, preprocess
from hcr.render import (
    JPEG_QUALITY,
    NEGATIVES,
    STYLES,
    as_glyph,
    encode_jpeg,
    render,
    render_jpeg_photo,
    render_negative,
    render_paper_photo,
)

SIDES = {  # style -> (mode, smallest side, largest side)
    "paper-photo": ("RGB", 150, 400),
    "blue-pen-scan": ("RGB", 150, 400),
    "jpeg-photo": ("RGB", 150, 400),
    "canvas-png": ("RGBA", 200, 400),
    "chalkboard": ("RGB", 150, 400),
    "small-in-large": ("RGB", 600, 1000),
}
SEEDS = (0, 1, 2)

def grey(img: Image.Image) -> np.ndarray:
    """What preprocessing sees: the image decoded to grey, alpha flattened."""
    return load_image(img)


def frame(a: np.ndarray, t: int = 3) -> np.ndarray:
    return np.concatenate([a[:t].ravel(), a[-t:].ravel(), a[:, :t].ravel(), a[:, -t:].ravel()])


def iou(a: np.ndarray, b: np.ndarray) -> float:
    ma, mb = a > 0.5, b > 0.5
    return float((ma & mb).sum() / max(int((ma | mb).sum()), 1))


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------- styles: what they look like


def test_names() -> None:
    assert STYLES == ("paper-photo", "blue-pen-scan", "jpeg-photo", "canvas-png", "chalkboard", "small-in-large")
    assert NEGATIVES == ("blank-canvas", "blank-paper-photo", "scribble", "texture-photo")


@pytest.mark.parametrize("style", STYLES)
def test_mode_and_size(glyph: np.ndarray, style: str) -> None:
    mode, lo, hi = SIDES[style]
    for seed in SEEDS:
        img = render(glyph, style, rng(seed))
        assert isinstance(img, Image.Image)
        assert img.mode == mode
        assert lo <= min(img.size) and max(img.size) <= hi, img.size


@pytest.mark.parametrize("style", [s for s in STYLES if s != "chalkboard"])
def test_dark_ink_on_light_paper_with_real_contrast(glyph: np.ndarray, style: str) -> None:
    for seed in SEEDS:
        g = grey(render(glyph, style, rng(seed)))
        paper = float(np.median(frame(g)))
        ink = float(cv2.medianBlur(g, 3).min())  # darkest stroke, not a noise pixel
        assert paper > 150, paper
        assert paper - ink >= 80, (paper, ink)
        if style != "canvas-png":  # a canvas pen is pure black; real ink and photos are not
            assert ink >= 5, ink
        assert preprocess(g).inverted  # preprocessing sees dark ink too, however small


def test_chalkboard_is_light_ink_on_a_dark_board(glyph: np.ndarray) -> None:
    for seed in SEEDS:
        img = render(glyph, "chalkboard", rng(seed))
        rgb = np.asarray(img).astype(np.float32)
        board = np.median(rgb[:4].reshape(-1, 3), axis=0)
        assert board.mean() < 110 and board[1] >= board[0], board  # dark, green or grey
        g = grey(img)
        assert float(cv2.medianBlur(g, 3).max()) - float(np.median(frame(g))) >= 80
        assert not preprocess(g).inverted


def test_blue_pen_scan_has_blue_ink_on_white(glyph: np.ndarray) -> None:
    for seed in SEEDS:
        rgb = np.asarray(render(glyph, "blue-pen-scan", rng(seed))).astype(np.float32)
        assert frame(rgb.mean(axis=2)).min() > 225  # bright white scan, light noise only
        lum = rgb.mean(axis=2)
        ink = rgb[lum < np.percentile(lum, 1)]
        assert (ink[:, 2] - ink[:, 0]).mean() > 50, ink.mean(axis=0)  # blue, not black


def test_canvas_png_is_black_strokes_on_transparency(glyph: np.ndarray) -> None:
    seen = set()
    for seed in range(12):
        rgba = np.asarray(render(glyph, "canvas-png", rng(seed)))
        alpha = rgba[..., 3]
        assert alpha.max() == 255
        if alpha.min() == 0:  # transparent export: opaque black strokes, anti-aliased edges
            seen.add("transparent")
            assert (frame(alpha) == 0).all()
            assert (rgba[..., :3][alpha > 0] == 0).all()
            assert ((alpha > 0) & (alpha < 255)).any()
        else:  # the canvas was filled white first
            seen.add("white")
            assert (frame(rgba[..., 0]) == 255).all() and rgba[..., :3].min() == 0
    assert seen == {"transparent", "white"}


def test_small_in_large_glyph_is_small(glyph: np.ndarray) -> None:
    spec = PreprocessSpec(polarity="dark-on-light")
    for seed in SEEDS:
        p = preprocess(render(glyph, "small-in-large", rng(seed)), spec)
        assert p.box is not None
        assert 20 <= max(p.box[2:]) <= 75, p.box  # the "7" fills ~2/3 of its 40-70 px glyph box


def test_jpeg_photo_is_a_compressed_paper_photo(glyph: np.ndarray) -> None:
    photo = np.asarray(render_paper_photo(glyph, rng(4))).astype(np.float32)
    jpeg = np.asarray(render_jpeg_photo(glyph, rng(4))).astype(np.float32)
    assert photo.shape == jpeg.shape
    diff = np.abs(photo - jpeg).mean()
    assert 0.2 < diff < 6.0, diff  # JPEG artefacts, same picture


def test_encode_jpeg() -> None:
    img = Image.fromarray(rng(0).integers(0, 256, (64, 80, 3), dtype=np.uint8), "RGB")
    low, high = encode_jpeg(img, JPEG_QUALITY[0]), encode_jpeg(img, 95)
    assert low[:2] == b"\xff\xd8" and len(low) < len(high)
    with Image.open(io.BytesIO(low)) as back:
        assert back.format == "JPEG" and back.size == (80, 64)
    assert encode_jpeg(img.convert("RGBA"), 60)[:2] == b"\xff\xd8"
    with pytest.raises(ValueError):
        encode_jpeg(img, 0)


# --------------------------------------------------------------------------- reproducibility and input


@pytest.mark.parametrize("style", STYLES)
def test_same_seed_same_pixels_other_seed_other_pixels(glyph: np.ndarray, style: str) -> None:
    a = np.asarray(render(glyph, style, rng(11)))
    b = np.asarray(render(glyph, style, rng(11)))
    c = np.asarray(render(glyph, style, rng(12)))
    assert np.array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)


@pytest.mark.parametrize("kind", NEGATIVES)
def test_negatives_are_reproducible(kind: str) -> None:
    a = np.asarray(render_negative(kind, rng(5)))
    assert np.array_equal(a, np.asarray(render_negative(kind, rng(5))))
    others = [np.asarray(render_negative(kind, rng(s))) for s in (6, 7)]
    assert any(o.shape != a.shape or not np.array_equal(o, a) for o in others)


def test_uint8_and_float_glyphs_render_identically(glyph: np.ndarray) -> None:
    f = glyph.astype(np.float32) / 255.0
    assert np.array_equal(as_glyph(glyph), f)
    assert np.array_equal(np.asarray(render(glyph, "paper-photo", rng(3))), np.asarray(render(f, "paper-photo", rng(3))))


def test_bad_input() -> None:
    with pytest.raises(UnknownNameError, match="paper-photo"):
        render(np.zeros((28, 28), np.uint8), "oil-painting", rng(0))
    with pytest.raises(UnknownNameError, match="scribble"):
        render_negative("nothing", rng(0))
    with pytest.raises(InputError):
        as_glyph(np.zeros((28, 28, 3), np.uint8))
    with pytest.raises(InputError):
        as_glyph(np.full((28, 28), 2.0, np.float32))
    assert issubclass(InputError, HcrError)


# --------------------------------------------------------------------------- the benchmark's premise


def _close_to_clean(glyph: np.ndarray, style: str, spec: PreprocessSpec | None = None) -> None:
    ref = preprocess(glyph).image
    for seed in SEEDS:
        p = preprocess(render(glyph, style, rng(seed)), spec)
        assert not p.blank, (style, seed)
        assert iou(p.image, ref) > 0.55, (style, seed, iou(p.image, ref))
        assert float(np.abs(p.image - ref).mean()) < 0.1, (style, seed)


@pytest.mark.parametrize("style", STYLES)
def test_rendering_preprocesses_like_the_clean_glyph(glyph: np.ndarray, style: str) -> None:
    _close_to_clean(glyph, style)


# --------------------------------------------------------------------------- negatives


def test_blank_negatives_are_blank() -> None:
    for kind in ("blank-canvas", "blank-paper-photo"):
        for seed in range(6):
            img = render_negative(kind, rng(seed))
            assert preprocess(img).blank, (kind, seed)
    modes = {render_negative("blank-canvas", rng(s)).mode for s in range(6)}
    assert modes == {"RGBA", "RGB"}  # transparent and white canvases


def test_scribble_is_ink_but_texture_is_a_photo() -> None:
    for seed in range(4):
        p = preprocess(render_negative("scribble", rng(seed)))
        assert not p.blank, seed
        assert p.box is not None and max(p.box[2:]) >= 60  # strokes across the sheet, not a speck
        tex = render_negative("texture-photo", rng(seed))
        assert tex.mode == "RGB" and 150 <= min(tex.size) and max(tex.size) <= 400
        assert float(np.asarray(tex).std()) > 3  # some texture, not a flat colour
