"""The one preprocessing path: decoding any image, and turning it into MNIST-style model input."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import hcr.preprocess as pp
from hcr.errors import InputError
from hcr.preprocess import PreprocessSpec, Preprocessed, load_image, preprocess

STAGES = {"grey", "ink_bright", "flattened", "mask", "crop", "input"}


# --------------------------------------------------------------------------- helpers


def encode(img: Image.Image | np.ndarray, fmt: str, **kw: object) -> bytes:
    if isinstance(img, np.ndarray):
        img = Image.fromarray(img)
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def iou(a: np.ndarray, b: np.ndarray, thr: float = 0.5) -> float:
    ma, mb = a > thr, b > thr
    union = (ma | mb).sum()
    return float((ma & mb).sum() / union) if union else 1.0


def aligned(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Best (IoU, mean abs diff) of ``a`` shifted by at most 1 px against ``b``.

    Centring is by an integer shift of the centre of mass (as in MNIST), so two renderings of
    one glyph may legitimately land one pixel apart."""
    best_iou, best_diff = 0.0, 1.0
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            s = np.roll(a, (dy, dx), axis=(0, 1))
            best_iou = max(best_iou, iou(s, b))
            best_diff = min(best_diff, float(np.abs(s - b).mean()))
    return best_iou, best_diff


def on_canvas(img: np.ndarray, shape: tuple[int, int], top: int, left: int, fill: int = 0) -> np.ndarray:
    out = np.full(shape, fill, np.uint8)
    out[top : top + img.shape[0], left : left + img.shape[1]] = img
    return out


def png_with_size(width: int, height: int) -> bytes:
    """A small valid PNG whose IHDR claims ``width`` x ``height`` (CRC recomputed)."""
    data = bytearray(encode(np.full((8, 8), 255, np.uint8), "PNG"))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return bytes(data)


def assert_contract(p: Preprocessed, size: int = 28, box: int = 20) -> None:
    img = p.image
    assert not p.blank
    assert img.dtype == np.float32 and img.shape == (size, size)
    assert img.min() >= 0.0 and img.max() <= 1.0
    assert img.max() == pytest.approx(1.0)
    scaled = img.astype(np.float64) * 255.0
    assert np.abs(scaled - np.round(scaled)).max() < 1e-3, "not quantised to multiples of 1/255"
    ys, xs = np.nonzero(img)
    h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    assert h <= box + 1 and w <= box + 1
    assert abs(max(h, w) - box) <= 1, (h, w)
    yy, xx = np.mgrid[0:size, 0:size]
    total = img.sum()
    cy, cx = (yy * img).sum() / total, (xx * img).sum() / total
    centre = size / 2 - 0.5
    assert abs(cy - centre) <= 1.0 and abs(cx - centre) <= 1.0, (cy, cx)


# --------------------------------------------------------------------------- load_image: formats


@pytest.fixture
def paper(glyph: np.ndarray) -> np.ndarray:
    """The glyph as dark ink on white paper."""
    return 255 - glyph


@pytest.mark.parametrize("fmt,suffix", [("PNG", ".png"), ("BMP", ".bmp"), ("TIFF", ".tif")])
def test_lossless_formats_decode_exactly(tmp_path: Path, paper: np.ndarray, fmt: str, suffix: str) -> None:
    path = write(tmp_path / f"glyph{suffix}", encode(paper, fmt))
    for source in (path, str(path), path.read_bytes()):
        out = load_image(source)
        assert out.dtype == np.uint8 and out.ndim == 2
        np.testing.assert_array_equal(out, paper)


@pytest.mark.parametrize("fmt,suffix", [("JPEG", ".jpg"), ("WEBP", ".webp")])
def test_lossy_formats_decode_close(tmp_path: Path, paper: np.ndarray, fmt: str, suffix: str) -> None:
    out = load_image(write(tmp_path / f"glyph{suffix}", encode(paper, fmt, quality=90)))
    assert out.dtype == np.uint8 and out.shape == paper.shape
    assert np.abs(out.astype(int) - paper).mean() < 6


def test_colour_png_is_converted_to_grey(tmp_path: Path, paper: np.ndarray) -> None:
    rgb = np.dstack([paper, paper, paper])
    rgb[..., 0] = np.where(paper < 128, 200, 255)  # red-tinted ink must still read darker
    out = load_image(write(tmp_path / "c.png", encode(rgb, "PNG")))
    assert out.shape == paper.shape
    assert out[paper < 128].mean() < out[paper >= 128].mean() - 100


def test_animated_gif_uses_first_frame(tmp_path: Path, paper: np.ndarray) -> None:
    blank = np.full_like(paper, 255)
    first_glyph = encode(Image.fromarray(paper), "GIF", save_all=True, append_images=[Image.fromarray(blank)], duration=100, loop=0)
    first_blank = encode(Image.fromarray(blank), "GIF", save_all=True, append_images=[Image.fromarray(paper)], duration=100, loop=0)
    assert Image.open(io.BytesIO(first_glyph)).n_frames == 2
    np.testing.assert_array_equal(load_image(write(tmp_path / "a.gif", first_glyph)), paper)
    assert load_image(write(tmp_path / "b.gif", first_blank)).min() == 255


def test_16_bit_png(tmp_path: Path, paper: np.ndarray) -> None:
    data = encode(Image.fromarray(paper.astype(np.uint16) * 257), "PNG")
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    out = load_image(write(tmp_path / "deep.png", data))
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, paper)


def test_palette_png_with_transparency_keeps_strokes(tmp_path: Path, glyph: np.ndarray) -> None:
    # index 0: black ink, index 1: fully transparent *black* canvas - flattening on the
    # colour of the transparent pixels would erase the strokes
    pal = Image.new("P", glyph.shape[::-1])
    pal.putpalette([0, 0, 0, 0, 0, 0] + [0] * 762)
    pal.putdata(np.where(glyph > 127, 0, 1).ravel().tolist())
    data = encode(pal, "PNG", transparency=1)
    img = Image.open(io.BytesIO(data))
    assert img.mode == "P" and img.info.get("transparency") == 1
    out = load_image(write(tmp_path / "pal.png", data))
    np.testing.assert_array_equal(out < 128, glyph > 127)


def test_rgba_and_la_black_strokes_on_transparent(tmp_path: Path, glyph: np.ndarray, paper: np.ndarray) -> None:
    rgba = np.dstack([np.zeros((*glyph.shape, 3), np.uint8), glyph])
    la = np.dstack([np.zeros_like(glyph), glyph])
    np.testing.assert_array_equal(load_image(rgba), paper)
    np.testing.assert_array_equal(load_image(write(tmp_path / "rgba.png", encode(Image.fromarray(rgba, "RGBA"), "PNG"))), paper)
    np.testing.assert_array_equal(load_image(write(tmp_path / "la.png", encode(Image.fromarray(la, "LA"), "PNG"))), paper)


def test_rgba_white_strokes_on_transparent_stay_visible(glyph: np.ndarray) -> None:
    rgba = np.dstack([np.full((*glyph.shape, 3), 255, np.uint8), glyph])
    out = load_image(rgba)
    np.testing.assert_array_equal(out, glyph)  # composited on black: ink stays bright


def test_numpy_float_bool_and_pil_inputs(paper: np.ndarray, glyph: np.ndarray) -> None:
    np.testing.assert_array_equal(load_image(paper.astype(np.float64) / 255.0), paper)
    np.testing.assert_array_equal(load_image(paper.astype(np.float32) / 255.0), paper)
    mask = glyph > 127
    out = load_image(mask)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, mask.astype(np.uint8) * 255)
    np.testing.assert_array_equal(load_image(Image.fromarray(paper)), paper)
    np.testing.assert_array_equal(load_image(paper[..., None]), paper)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    img = np.full((24, 48), 255, np.uint8)
    img[2:10, 2:18] = 0  # a dark block in the top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    data = encode(Image.fromarray(img), "JPEG", exif=exif, quality=95)
    out = load_image(write(tmp_path / "phone.jpg", data))
    assert out.shape == (48, 24)
    expected = np.rot90(img, k=-1)  # clockwise: the block ends up top-right
    assert np.abs(out.astype(int) - expected).mean() < 8
    assert np.abs(out.astype(int) - np.rot90(img, k=1)).mean() > 20


# --------------------------------------------------------------------------- load_image: bad input


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    png = encode(np.full((40, 40), 255, np.uint8) - np.eye(40, dtype=np.uint8) * 200, "PNG")
    (tmp_path / "folder.png").mkdir()
    rng = np.random.default_rng(1)
    return {
        "missing": tmp_path / "missing.png",
        "directory": tmp_path / "folder.png",
        "empty": write(tmp_path / "empty.png", b""),
        "random": write(tmp_path / "x.png", rng.integers(0, 256, 600, dtype=np.uint8).tobytes()),
        "truncated": write(tmp_path / "half.png", png[: len(png) // 2]),
        "text": write(tmp_path / "notes.png", b"shopping list:\n- milk\n- eggs\n"),
        "bomb": write(tmp_path / "bomb.png", png_with_size(100_000, 100_000)),
        "over-limit": write(tmp_path / "huge.png", png_with_size(7_000, 7_000)),
    }


@pytest.mark.parametrize("case", ["missing", "directory", "empty", "random", "truncated", "text", "bomb", "over-limit"])
def test_bad_files_raise_input_error_naming_the_file(tmp_path: Path, case: str) -> None:
    path = _bad_files(tmp_path)[case]
    with pytest.raises(InputError) as err:
        load_image(path)
    assert path.name in str(err.value)
    with pytest.raises(InputError) as err:
        preprocess(str(path))
    assert path.name in str(err.value)


@pytest.mark.parametrize("case", ["empty", "random", "truncated", "text", "bomb"])
def test_bad_bytes_raise_input_error_with_given_name(tmp_path: Path, case: str) -> None:
    data = _bad_files(tmp_path)[case].read_bytes()
    with pytest.raises(InputError, match="upload-1.png"):
        load_image(data, name="upload-1.png")


def test_pixel_and_byte_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, paper: np.ndarray) -> None:
    big = cv2.resize(paper, (300, 300), interpolation=cv2.INTER_LINEAR)
    path = write(tmp_path / "scan.png", encode(big, "PNG"))
    assert load_image(path).shape == (300, 300)
    monkeypatch.setattr(pp, "MAX_PIXELS", 300 * 300 - 1)
    for source in (path, Image.fromarray(big), big):
        with pytest.raises(InputError, match="too large") as err:
            load_image(source, name=None if isinstance(source, Path) else "scan.png")
        assert "scan.png" in str(err.value)
    monkeypatch.setattr(pp, "MAX_PIXELS", 10**9)
    monkeypatch.setattr(pp, "MAX_FILE_BYTES", path.stat().st_size - 1)
    with pytest.raises(InputError, match="too large") as err:
        load_image(path)
    assert "scan.png" in str(err.value)


@pytest.mark.parametrize(
    "array",
    [np.zeros((0, 10), np.uint8), np.zeros((4, 0, 3), np.uint8), np.zeros((2, 8, 8, 1), np.uint8), np.zeros((8, 8, 2), np.uint8),
     np.array([[0.0, np.nan], [0.5, 1.0]]), np.array([[0.0, np.inf], [0.5, 1.0]], np.float32)],
    ids=["empty", "empty-colour", "4-D", "2-channels", "nan", "inf"],
)
def test_bad_arrays_raise_input_error(array: np.ndarray) -> None:
    with pytest.raises(InputError, match="canvas.npy"):
        load_image(array, name="canvas.npy")
    with pytest.raises(InputError):
        preprocess(array)


def test_unsupported_type_raises_input_error() -> None:
    with pytest.raises(InputError):
        load_image(12345)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- polarity, alpha, position, scale


def test_polarity_alpha_and_position_give_identical_input(glyph: np.ndarray) -> None:
    h, w = glyph.shape
    variants = {
        "bright-on-black": glyph,
        "dark-on-white": 255 - glyph,
        "black-strokes-transparent": np.dstack([np.zeros((h, w, 3), np.uint8), glyph]),
        "white-strokes-transparent": np.dstack([np.full((h, w, 3), 255, np.uint8), glyph]),
        "shifted-in-large-canvas": on_canvas(glyph, (90, 130), 47, 71),
        "dark-shifted-in-large-canvas": on_canvas(255 - glyph, (90, 130), 5, 13, fill=255),
    }
    results = {k: preprocess(v) for k, v in variants.items()}
    ref = results["bright-on-black"].image
    for name, r in results.items():
        assert not r.blank, name
        np.testing.assert_array_equal(r.image, ref, err_msg=name)
    assert not results["bright-on-black"].inverted
    assert results["dark-on-white"].inverted
    assert results["dark-shifted-in-large-canvas"].inverted
    # the box is reported in the coordinates of the (larger) input
    x, y, bw, bh = results["shifted-in-large-canvas"].box
    x0, y0, _, _ = results["bright-on-black"].box
    assert (x, y) == (x0 + 71, y0 + 47)


def test_forced_polarity(glyph: np.ndarray) -> None:
    dark = 255 - glyph
    forced = preprocess(dark, PreprocessSpec(polarity="dark-on-light"))
    assert forced.inverted
    np.testing.assert_array_equal(forced.image, preprocess(glyph).image)
    assert not preprocess(glyph, PreprocessSpec(polarity="light-on-dark")).inverted


@pytest.mark.parametrize("paper,ink", [(120, 230), (135, 245), (60, 200), (135, 25), (115, 10), (200, 90)])
def test_polarity_on_grey_paper(glyph: np.ndarray, paper: int, ink: int) -> None:
    """Ink darker or brighter than a grey paper: the ink is what differs from the border."""
    img = np.pad(paper + (ink - paper) * (glyph.astype(np.float32) / 255.0), 10, constant_values=paper)
    p = preprocess(np.round(img).astype(np.uint8))
    assert not p.blank
    assert p.inverted == (ink < paper)
    best_iou, _ = aligned(p.image, preprocess(glyph).image)
    assert best_iou > 0.9


@pytest.mark.parametrize("dark_ink", [True, False])
def test_polarity_of_a_small_character_on_a_large_unevenly_lit_photo(glyph: np.ndarray, dark_ink: bool) -> None:
    """A 50 px character covers ~0.3% of a 900x700 photo: whole-image extremes are lighting,
    yet the ink is still found on the right side of the paper."""
    h, w = 700, 900
    light = np.tile(np.linspace(235, 150, w, dtype=np.float32), (h, 1))
    if not dark_ink:
        light = 255 - light  # a board: darker than the ink, lit unevenly
    img = light.copy()
    ink = cv2.resize(glyph, (50, 50), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
    y, x = 480, 130
    img[y : y + 50, x : x + 50] += (-110 if dark_ink else 110) * ink
    img = np.clip(img + np.random.default_rng(3).normal(0, 3, img.shape), 0, 255).astype(np.uint8)
    p = preprocess(img)
    assert p.inverted == dark_ink and not p.blank
    assert p.box is not None  # the ink found lies where the character was drawn
    bx, by, bw, bh = p.box
    assert x <= bx and bx + bw <= x + 50 and y <= by and by + bh <= y + 50 and bw * bh > 400, p.box
    assert iou(p.image, preprocess(glyph).image) > 0.6


def test_noise_floor_follows_the_paper_noise_on_flat_paper(glyph: np.ndarray) -> None:
    """On an even but noisy sheet the noise floor must come from the noise, not default to
    a constant: otherwise thousands of noise pixels outnumber a small glyph's ink and the
    image is called blank (or the noise joins the mask)."""
    rng = np.random.default_rng(5)
    img = np.full((1500, 1500), 200.0, np.float32)
    ink = cv2.resize(glyph, (50, 50), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
    img[700:750, 300:350] -= 150 * ink
    img = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
    p = preprocess(img, stages=True)
    assert not p.blank
    mask = p.stages["mask"] > 0
    assert mask[700:750, 300:350].sum() == mask.sum() > 100


def test_opaque_card_with_transparent_margin(glyph: np.ndarray) -> None:
    """A white opaque card holding a dark glyph, with a transparent margin around it (a
    cut-out or rounded-corner PNG): the glyph is the ink, not the card."""
    rgba = np.zeros((100, 100, 4), np.uint8)
    card = on_canvas(255 - glyph, (60, 60), 16, 16, fill=255)
    rgba[20:80, 20:80, :3] = card[..., None]
    rgba[20:80, 20:80, 3] = 255
    p = preprocess(rgba)
    assert not p.blank
    best_iou, _ = aligned(p.image, preprocess(glyph).image)
    assert best_iou > 0.9


@pytest.mark.parametrize("side", [40, 100, 300])
def test_scale_invariance(glyph: np.ndarray, side: int) -> None:
    ref = preprocess(glyph).image
    big = cv2.resize(glyph, (side, side), interpolation=cv2.INTER_LINEAR)
    canvas = on_canvas(255 - big, (side * 3 // 2, side * 3 // 2), side // 4, side // 4, fill=255)
    out = preprocess(canvas)
    assert_contract(out)
    best_iou, best_diff = aligned(out.image, ref)
    assert best_iou > 0.8, best_iou
    assert best_diff < 0.06, best_diff
    assert float(np.abs(out.image - ref).mean()) < 0.08


# --------------------------------------------------------------------------- output contract


def _shapes() -> dict[str, np.ndarray]:
    bar = np.zeros((60, 200), np.uint8)
    cv2.line(bar, (20, 30), (180, 30), 255, 12, lineType=cv2.LINE_AA)
    one = np.full((150, 100), 255, np.uint8)
    cv2.line(one, (50, 20), (50, 130), 0, 9, lineType=cv2.LINE_AA)
    cv2.line(one, (50, 20), (35, 40), 0, 9, lineType=cv2.LINE_AA)
    ring = np.full((64, 64), 230, np.uint8)
    cv2.circle(ring, (30, 34), 18, 20, 5, lineType=cv2.LINE_AA)
    return {"wide-bar": bar, "one": one, "ring": ring}


@pytest.mark.parametrize("shape", ["glyph", "wide-bar", "one", "ring"])
def test_output_contract(glyph: np.ndarray, shape: str) -> None:
    img = glyph if shape == "glyph" else _shapes()[shape]
    assert_contract(preprocess(img))


def test_output_contract_other_sizes(glyph: np.ndarray) -> None:
    big = cv2.resize(255 - glyph, (120, 120), interpolation=cv2.INTER_LINEAR)
    assert_contract(preprocess(big, PreprocessSpec(size=32, box=24)), size=32, box=24)


# --------------------------------------------------------------------------- blank images


def _blank_images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    speck = np.full((64, 64), 255, np.uint8)
    speck[30, 40] = 0
    return {
        "white": np.full((64, 64), 255, np.uint8),
        "black": np.zeros((64, 64), np.uint8),
        "grey": np.full((64, 64), 128, np.uint8),
        "transparent": np.zeros((64, 64, 4), np.uint8),
        "faint-noise": np.clip(rng.normal(200, 3, (120, 120)), 0, 255).astype(np.uint8),
        "speck": speck,
    }


@pytest.mark.parametrize("case", ["white", "black", "grey", "transparent", "faint-noise", "speck"])
def test_blank_images(case: str) -> None:
    p = preprocess(_blank_images()[case], stages=True)
    assert p.blank
    assert p.box is None
    assert p.image.shape == (28, 28) and p.image.dtype == np.float32
    assert not p.image.any()
    assert not p.stages["input"].any()


def test_faint_but_visible_glyph_is_not_blank(glyph: np.ndarray) -> None:
    faint = np.pad(200 - (glyph.astype(np.float32) * 60 / 255), 12, constant_values=200).astype(np.uint8)
    assert int(faint.max()) - int(faint.min()) == 60
    p = preprocess(faint)
    assert not p.blank
    assert_contract(p)
    best_iou, _ = aligned(p.image, preprocess(glyph).image)
    assert best_iou > 0.7


# --------------------------------------------------------------------------- uneven lighting


def test_uneven_lighting_and_jpeg(glyph: np.ndarray) -> None:
    side, top, left = 240, 60, 60
    ink = cv2.resize(glyph, (120, 120), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
    clean = np.full((side, side), 250.0, np.float32)
    clean[top : top + 120, left : left + 120] -= ink * 200
    light = np.tile(np.linspace(250, 120, side, dtype=np.float32), (side, 1))  # bright left, dark right
    shaded = light.copy()
    shaded[top : top + 120, left : left + 120] -= ink * 200 * light[top : top + 120, left : left + 120] / 250
    rng = np.random.default_rng(7)
    shaded = np.clip(shaded + rng.normal(0, 4, shaded.shape), 0, 255).astype(np.uint8)
    jpeg = encode(shaded, "JPEG", quality=50)

    ref = preprocess(clean.astype(np.uint8))
    got = preprocess(jpeg, stages=True, name="photo.jpg")
    assert not got.blank
    assert got.inverted
    assert_contract(got)
    assert iou(got.image, ref.image) > 0.7
    frac_ref, frac_got = (ref.image > 0.5).mean(), (got.image > 0.5).mean()
    assert abs(frac_got - frac_ref) < 0.3 * frac_ref, (frac_ref, frac_got)
    # the mask stays on the glyph: nothing picked up from the dark side of the paper
    x, y, w, h = got.box
    assert left - 8 <= x and x + w <= left + 128 and top - 8 <= y and y + h <= top + 128, got.box
    mask = got.stages["mask"] > 0
    assert not mask[:, left + 130 :].any() and not mask[:, : left - 10].any()


# --------------------------------------------------------------------------- stages, round trip


def test_stages(glyph: np.ndarray) -> None:
    dark = on_canvas(255 - glyph, (60, 60), 10, 20, fill=255)
    p = preprocess(dark, stages=True)
    assert set(p.stages) == STAGES
    for name, arr in p.stages.items():
        assert isinstance(arr, np.ndarray) and arr.dtype == np.uint8 and arr.ndim == 2, name
    for name in ("grey", "ink_bright", "flattened", "mask"):
        assert p.stages[name].shape == dark.shape, name
    np.testing.assert_array_equal(p.stages["grey"], dark)
    np.testing.assert_array_equal(p.stages["ink_bright"], 255 - dark)
    assert set(np.unique(p.stages["mask"])) <= {0, 255}
    np.testing.assert_array_equal(p.stages["input"], np.round(p.image * 255).astype(np.uint8))
    assert preprocess(dark).stages == {}


def test_png_round_trip_gives_identical_input(tmp_path: Path, glyph: np.ndarray) -> None:
    path = write(tmp_path / "sample.png", encode(glyph, "PNG"))
    from_array, from_file = preprocess(glyph), preprocess(path)
    assert np.array_equal(from_array.image, from_file.image)
    # the model input itself, written as an 8-bit PNG, reads back bit-for-bit
    saved = write(tmp_path / "input.png", encode(np.round(from_array.image * 255).astype(np.uint8), "PNG"))
    assert np.array_equal(load_image(saved).astype(np.float32) / 255.0, from_array.image)


# --------------------------------------------------------------------------- deskew and spec


def _row_centre_spread(img: np.ndarray) -> float:
    xs = np.arange(img.shape[1])
    centres = [float((xs * r).sum() / r.sum()) for r in img if r.sum() > 0.5 * img.max()]
    return float(np.ptp(centres))


@pytest.mark.parametrize("shear", [0.5, -0.4])
def test_deskew_makes_a_sheared_bar_upright(shear: float) -> None:
    img = np.zeros((100, 100), np.uint8)
    cv2.line(img, (int(50 - shear * 35), 85), (int(50 + shear * 35), 15), 255, 8, lineType=cv2.LINE_AA)
    plain = preprocess(img).image
    upright = preprocess(img, PreprocessSpec(deskew=True)).image
    assert _row_centre_spread(plain) > 4
    assert _row_centre_spread(upright) < 0.5 * _row_centre_spread(plain)
    assert_contract(preprocess(img, PreprocessSpec(deskew=True)))


@pytest.mark.parametrize(
    "kwargs", [{"polarity": "upside-down"}, {"box": 30}, {"size": 4, "box": 4}, {"box": 2}, {"size": 1000}]
)
def test_spec_validation(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        PreprocessSpec(**kwargs)


def test_spec_dict_round_trip() -> None:
    spec = PreprocessSpec(size=32, box=24, polarity="dark-on-light", deskew=True, min_contrast=30.0)
    d = spec.to_dict()
    assert d["size"] == 32 and d["deskew"] is True
    assert PreprocessSpec.from_dict(d) == spec
    assert PreprocessSpec.from_dict({}) == PreprocessSpec()
    with pytest.raises(ValueError, match="sharpen"):
        PreprocessSpec.from_dict({**d, "sharpen": 1})
