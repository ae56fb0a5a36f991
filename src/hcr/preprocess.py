"""The one path from any image to model input.

``load_image`` decodes whatever a user has (path, bytes, PIL image, numpy array) into a 2-D
``uint8`` grey image: EXIF orientation applied, first frame of animations, alpha flattened
so that transparent canvas drawings keep their strokes. :func:`iter_pages` does the same for
every page of a document (a PDF, rendered with pypdfium2; a multi-page TIFF), one grey image
per page, and is what ``hcr read``/``hcr predict`` and :mod:`hcr.batch` open files with.
``preprocess`` then turns that grey image into the exact array the model was trained on,
following the MNIST procedure:

1. polarity: ink is made bright on a dark background (decided by which way pixels stand
   out from a local estimate of the paper);
2. background: uneven lighting is flattened (a morphological estimate of the paper) only
   when the border shows it, so clean images are left bit-for-bit alone;
3. ink mask: Otsu threshold on the flattened image, tiny specks removed; too little
   contrast or ink means *blank* (``Preprocessed.blank``), never a guess;
4. crop to the ink, optional deskew, fit into ``box`` x ``box`` keeping the aspect ratio;
5. place in ``size`` x ``size`` with the centre of mass in the middle.

:func:`find_ink` is steps 1-3 on their own, for a whole image: the reader
(:mod:`hcr.reader`) finds the characters of a line or a page in its mask, then sends each
one through :func:`preprocess`.

Data sets (MNIST, EMNIST, CSV, folders), evaluation, ``hcr predict`` and the web layers all
call :func:`preprocess` with the :class:`PreprocessSpec` stored in the model file, so a 28x28
data-set image saved as a PNG and read back gets the identical input.
"""

from __future__ import annotations

import io
import math
import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Sequence, Union

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import HcrError, InputError
from .frames import border_clutter
from .segment import without_form_lines

ImageInput = Union[str, os.PathLike, bytes, bytearray, Image.Image, np.ndarray]

#: Images with more pixels than this are refused (decompression bombs, absurd scans).
MAX_PIXELS = 40_000_000
#: Images longer than this many times their width (or wider than this many times their
#: height) are refused before any pixel work: no writing is that thin (a long line of a
#: scan is about 80:1), while a 1 x 40,000,000 strip exhausts OpenCV's label tables.
MAX_ASPECT = 500
#: Strokes are the pixels brighter than this share of the ink's peak.
INK_THRESHOLD = 0.3
#: Files larger than this are refused before decoding.
MAX_FILE_BYTES = 64 * 1024 * 1024
#: Documents with more pages than this are refused (:func:`iter_pages`) before any page is read.
MAX_PAGES = 500
#: PDF pages are rendered at this resolution (dots per inch), less where a page would
#: otherwise exceed :data:`MAX_PIXELS` (:func:`check_size`).
PDF_DPI = 200
#: Image formats (Pillow's names) whose frames are the pages of a document: every frame is
#: read (:func:`iter_pages`). The frames of other formats (an animated GIF, WebP or PNG, the
#: preview of a camera's MPO JPEG) are not pages: only the first is read.
PAGED_FORMATS = ("TIFF", "DCX")
#: The extra that brings PDF input.
PDF_EXTRA = "pdf"


@dataclass(frozen=True)
class PreprocessSpec:
    """Parameters of :func:`preprocess`; stored in every model file."""

    size: int = 28  # output side in pixels
    box: int = 20  # the ink is fitted into box x box (MNIST: 20 in 28)
    polarity: str = "auto"  # "auto", "dark-on-light" or "light-on-dark" (of the input)
    deskew: bool = False  # shear the glyph upright using its second moments
    min_contrast: float = 40.0  # grey levels between paper and ink below which the image is blank
    min_ink_pixels: int = 6  # fewer ink pixels than this means blank (a speck is not a character)
    speck_fraction: float = 0.02  # connected ink parts smaller than this share of the ink are dropped
    frames: bool = True  # drop ink along the image's edges (cell and grid lines, card edges): hcr.frames

    def __post_init__(self) -> None:
        if not 8 <= self.size <= 512 or not 4 <= self.box <= self.size:
            raise ValueError(f"invalid sizes: size={self.size}, box={self.box} (need 4 <= box <= size, 8 <= size <= 512)")
        if self.polarity not in ("auto", "dark-on-light", "light-on-dark"):
            raise ValueError(f"polarity must be auto, dark-on-light or light-on-dark, got {self.polarity!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "PreprocessSpec":
        return _spec_from_dict(cls, d)


def _spec_from_dict(cls: Any, d: Mapping[str, Any]) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = set(d) - known
    if unknown:
        raise ValueError(f"unknown preprocessing keys {sorted(unknown)}; valid: {sorted(known)}")
    return cls(**dict(d))


@dataclass(frozen=True)
class LineSpec:
    """Parameters of :func:`preprocess_line` (words and lines for the CRNN); stored in
    sequence model files. Polarity, background and ink mask follow :func:`find_ink` with
    the same meaning as in :class:`PreprocessSpec`."""

    height: int = 32  # output height in pixels; the width follows the ink's aspect ratio
    pad: int = 2  # empty rows above and below the ink, and columns on each side
    max_width: int = 2048  # wider lines are scaled down to this width
    polarity: str = "auto"
    min_contrast: float = 40.0
    min_ink_pixels: int = 6
    speck_fraction: float = 0.002  # of a whole line's ink: only dust, not i-dots or commas
    frames: bool = True

    def __post_init__(self) -> None:
        if not 16 <= self.height <= 256 or not 0 <= self.pad < self.height // 4:
            raise ValueError(f"invalid line sizes: height={self.height}, pad={self.pad} (need 16 <= height <= 256, pad < height/4)")
        if self.max_width < 4 * self.height:
            raise ValueError(f"max_width must be at least 4 x height, got {self.max_width}")
        PreprocessSpec(polarity=self.polarity)  # same polarity check

    def ink_spec(self) -> PreprocessSpec:
        """The :func:`find_ink` parameters."""
        return PreprocessSpec(polarity=self.polarity, min_contrast=self.min_contrast, min_ink_pixels=self.min_ink_pixels, speck_fraction=self.speck_fraction, frames=self.frames)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "LineSpec":
        return _spec_from_dict(cls, d)


@dataclass
class Preprocessed:
    """Result of :func:`preprocess`: model input (float32, ``size`` x ``size``, ink bright, in
    [0, 1]), whether the image is blank, the ink bounding box in the input (x, y, w, h), and,
    when asked for, named intermediate stages (uint8 images) for display."""

    image: np.ndarray
    blank: bool
    box: tuple[int, int, int, int] | None
    inverted: bool
    stages: dict[str, np.ndarray] = field(default_factory=dict)


# --------------------------------------------------------------------------- decoding


def _describe(source: ImageInput, name: str | None) -> str:
    if name:
        return name
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return f"<{type(source).__name__}>"


def _flatten_alpha(rgba: np.ndarray) -> np.ndarray:
    """Composite an RGBA image onto a background that contrasts with its ink.

    Canvas drawings are often black (or white) strokes on fully transparent pixels whose
    colour is arbitrary; compositing on a fixed colour would erase strokes of that colour.
    The opaque pixels' mean brightness tells the ink colour; the paper is its opposite.
    """
    rgb = rgba[..., :3].astype(np.float32)
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    if alpha.min() >= 1.0:
        return rgba[..., :3]
    opaque = alpha[..., 0] > 0.5
    transparent = alpha[..., 0] < 0.5
    paper = 255.0
    if opaque.any() and transparent.any():
        grey = rgb[opaque].mean(axis=1)  # brightness of the opaque pixels only
        lo, hi = np.percentile(grey, [0.5, 99.5])
        if hi - lo > 80:  # the opaque part holds paper and ink (a card): extend its paper
            paper = float(np.median(grey))
        else:  # strokes only: the paper is their opposite
            paper = 0.0 if float(grey.mean()) > 127 else 255.0
    out = rgb * alpha + paper * (1.0 - alpha)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def check_size(width: int, height: int, what: str) -> None:
    """Refuse an image by its declared size alone, before any pixel is decoded or touched:
    empty, more than :data:`MAX_PIXELS` pixels, or more elongated than :data:`MAX_ASPECT`."""
    if width <= 0 or height <= 0:
        raise InputError(f"{what}: image is empty ({width}x{height} pixels)")
    if width * height > MAX_PIXELS:
        raise InputError(f"{what}: image too large ({width}x{height} pixels; limit {MAX_PIXELS:,})")
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise InputError(f"{what}: image too elongated ({width}x{height} pixels; at most {MAX_ASPECT}:1)")


def _array_to_grey(arr: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(arr)
    if a.size == 0 or a.ndim not in (2, 3):
        raise InputError(f"{what}: expected a 2-D grey or 3-D colour image array, got shape {a.shape}")
    if a.ndim == 3 and a.shape[2] not in (1, 3, 4):
        raise InputError(f"{what}: expected 1, 3 or 4 channels, got shape {a.shape}")
    if a.dtype.kind not in "biuf":
        raise InputError(f"{what}: expected an array of numbers (bool, integer or float), got dtype {a.dtype}")
    check_size(a.shape[1], a.shape[0], what)
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif a.dtype != np.uint8:
        a = a.astype(np.float64)
        if not np.isfinite(a).all():
            raise InputError(f"{what}: image contains NaN or infinite values")
        # floats in [0, 1] are scaled; anything else is clipped to 0..255
        if a.max(initial=0) <= 1.0 and a.min(initial=0) >= 0.0:
            a = a * 255.0
        a = np.clip(a + 0.5, 0, 255).astype(np.uint8)
    if a.ndim == 3:
        if a.shape[2] == 4:
            a = _flatten_alpha(a)
        if a.shape[2] == 1:
            a = a[..., 0]
        else:
            a = cv2.cvtColor(np.ascontiguousarray(a[..., :3]), cv2.COLOR_RGB2GRAY)
    return np.ascontiguousarray(a)


def _pil_to_grey(img: Image.Image, what: str, frame: int = 0) -> np.ndarray:
    """Frame ``frame`` of ``img`` (the first of GIF/WebP/TIFF stacks by default) as grey."""
    check_size(*img.size, what)
    try:
        img.seek(frame)
    except (EOFError, AttributeError):
        if frame:
            raise
    check_size(*img.size, what)  # a later frame may declare another size
    img = ImageOps.exif_transpose(img) or img
    has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    if has_alpha:
        arr = np.asarray(img.convert("RGBA"))
    elif img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        lo, hi = float(a.min()), float(a.max())
        arr = np.zeros(a.shape, np.uint8) if hi <= lo else ((a - lo) * (255.0 / (hi - lo)) + 0.5).astype(np.uint8)
    else:
        arr = np.asarray(img.convert("RGB"))
    return _array_to_grey(arr, what)


def _read_capped(path: Path, what: str) -> bytes:
    """A file's bytes, reading at most :data:`MAX_FILE_BYTES` + 1: a device or pipe that
    never ends (``/dev/zero``) or claims no size is stopped there, not read into memory."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InputError(f"{what}: file too large ({size:,} bytes; limit {MAX_FILE_BYTES:,})")
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except PermissionError:
        raise InputError(f"{what}: permission denied (cannot read the file)") from None
    except OSError as e:
        raise InputError(f"{what}: cannot read the file ({e.strerror or e})") from None
    if len(data) > MAX_FILE_BYTES:
        raise InputError(f"{what}: input too large (more than {MAX_FILE_BYTES:,} bytes; not a regular image file?)")
    return data


def _source_bytes(source: ImageInput, what: str) -> bytes:
    """The encoded bytes of a path or bytes ``source`` (checked: exists, not a folder, not
    empty, at most :data:`MAX_FILE_BYTES`)."""
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise InputError(f"{what}: file not found")
        if path.is_dir():
            raise InputError(f"{what}: is a directory, not an image")
        data = _read_capped(path, what)
    else:
        raise InputError(f"{what}: unsupported input type {type(source).__name__} (use a path, bytes, PIL image or numpy array)")
    if not data:
        raise InputError(f"{what}: file is empty")
    if len(data) > MAX_FILE_BYTES:
        raise InputError(f"{what}: input too large ({len(data):,} bytes; limit {MAX_FILE_BYTES:,})")
    return data


@contextmanager
def _decoding(what: str) -> Iterator[None]:
    """Pillow's errors while opening or decoding ``what`` as one-line :class:`InputError` s
    (and its decompression-bomb warning as an error)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(f"{what}: image too large (decompression bomb protection)") from None
    except UnidentifiedImageError:
        raise InputError(f"{what}: not an image file (or an unsupported format)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise InputError(f"{what}: corrupt or truncated image ({e})") from None


def _open(data: bytes, what: str) -> Image.Image:
    """``data`` opened by Pillow, its declared size checked; no pixel decoded yet."""
    with _decoding(what):
        img = Image.open(io.BytesIO(data))
        check_size(*img.size, what)
        return img


def _frame(img: Image.Image, frame: int, what: str) -> np.ndarray:
    """Frame ``frame`` of an opened image decoded to grey."""
    with _decoding(what):
        if frame:
            img.seek(frame)
            check_size(*img.size, what)
        img.load()
        return _pil_to_grey(img, what, frame)


def is_pdf(data: bytes) -> bool:
    """``data`` is a PDF file: it starts with ``%PDF-`` (after white space)."""
    return data[:1024].lstrip().startswith(b"%PDF-")


def load_image(source: ImageInput, *, name: str | None = None) -> np.ndarray:
    """Decode ``source`` into a 2-D ``uint8`` grey image (of a multi-frame file, the first
    frame; :func:`iter_pages` reads every page of a document).

    Raises :class:`~hcr.errors.InputError` with one line naming the input and the problem
    for missing, empty, corrupt, truncated, non-image or enormous inputs, and for a PDF.
    """
    what = _describe(source, name)
    if isinstance(source, np.ndarray):
        return _array_to_grey(source, what)
    if isinstance(source, Image.Image):
        return _pil_to_grey(source, what)
    data = _source_bytes(source, what)
    if is_pdf(data):
        raise InputError(f"{what}: a PDF document, not an image: read its pages with hcr.preprocess.iter_pages (hcr read and hcr predict do)")
    return _frame(_open(data, what), 0, what)


def iter_pages(source: ImageInput, *, name: str | None = None, dpi: float = PDF_DPI, max_pages: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Every page of ``source`` as ``(page, grey)``: ``grey`` as :func:`load_image` gives
    it, ``page`` its number in a document, from 1, or 0 for a single image.

    A document is a PDF (each page rendered at ``dpi``, less where the page would exceed
    :data:`MAX_PIXELS`; needs pypdfium2: ``pip install 'hcr-toolkit[pdf]'``) or an image
    file of several frames in a format of pages (:data:`PAGED_FORMATS`: a multi-page TIFF).
    Anything else, an animated GIF, WebP or PNG included, is one image (its first frame),
    page 0. Pages are decoded one at a time, as they are asked for.

    Raises :class:`~hcr.errors.InputError` (a one-line message naming the input) for what
    :func:`load_image` refuses, for a corrupt, encrypted or empty PDF, for a document of
    more than ``max_pages`` pages (default :data:`MAX_PAGES`; before any page is read),
    and, naming the page, for a page that cannot be decoded; :class:`~hcr.errors.HcrError`
    for a PDF without pypdfium2 installed.
    """
    what = _describe(source, name)
    if isinstance(source, np.ndarray):
        yield 0, _array_to_grey(source, what)
        return
    if isinstance(source, Image.Image):
        img = source
    else:
        data = _source_bytes(source, what)
        if is_pdf(data):
            yield from _pdf_pages(data, what, dpi, max_pages)
            return
        img = _open(data, what)
    frames = int(getattr(img, "n_frames", 1) or 1)
    if frames <= 1 or img.format not in PAGED_FORMATS:
        yield 0, (_pil_to_grey(img, what) if img is source else _frame(img, 0, what))
        return
    _check_pages(frames, what, max_pages)
    for i in range(frames):
        page_what = f"{what} page {i + 1}"
        yield i + 1, (_pil_to_grey(img, page_what, i) if img is source else _frame(img, i, page_what))


def _check_pages(count: int, what: str, max_pages: int | None) -> None:
    """Refuse a document of more than ``max_pages`` pages (None: :data:`MAX_PAGES`)."""
    max_pages = MAX_PAGES if max_pages is None else max_pages
    if count > max_pages:
        raise InputError(f"{what}: {count} pages; at most {max_pages} are read from one document (split it)")


def _pdf_pages(data: bytes, what: str, dpi: float, max_pages: int | None) -> Iterator[tuple[int, np.ndarray]]:
    """The pages of a PDF rendered to grey with pypdfium2 (see :func:`iter_pages`)."""
    try:
        import pypdfium2 as pdfium  # type: ignore[import-untyped]
    except ImportError:
        raise HcrError(f"{what}: reading PDF files needs pypdfium2: pip install 'hcr-toolkit[{PDF_EXTRA}]'") from None
    try:
        doc = pdfium.PdfDocument(data)
    except pdfium.PdfiumError:
        # PDFium's reason (its last error) is not reset by a document that loads, nor set by
        # one without pages: it may be a previous file's, so the bytes tell what is wrong
        if re.search(rb"/Encrypt\b", data):
            raise InputError(f"{what}: the PDF is encrypted (password protected); save an unprotected copy") from None
        if re.search(rb"/Count\s+0\b", data) and not re.search(rb"/Type\s*/(Page(?![a-zA-Z])|ObjStm)", data):
            raise InputError(f"{what}: the PDF has no pages") from None  # a page tree of none
        raise InputError(f"{what}: corrupt or unreadable PDF (PDFium cannot load it)") from None
    try:
        count = len(doc)
        if count == 0:
            raise InputError(f"{what}: the PDF has no pages")
        _check_pages(count, what, max_pages)
        for i in range(count):
            page_what = f"{what} page {i + 1}"
            try:
                page = doc[i]
                try:
                    w, h = page.get_size()  # points: 1/72 inch
                    scale = min(dpi / 72.0, math.sqrt(MAX_PIXELS / max(w * h, 1e-9)))
                    while scale > 1e-3 and math.ceil(w * scale) * math.ceil(h * scale) > MAX_PIXELS:  # whole pixels
                        scale *= 0.995
                    check_size(math.ceil(w * scale), math.ceil(h * scale), page_what)
                    bitmap = page.render(scale=scale, grayscale=True)  # white paper under the page's content
                    grey = np.array(bitmap.to_numpy(), np.uint8)  # a copy: the bitmap's memory is pdfium's
                    bitmap.close()
                finally:
                    page.close()
            except pdfium.PdfiumError as e:
                raise InputError(f"{page_what}: cannot render it ({str(e).strip() or type(e).__name__})") from None
            yield i + 1, _array_to_grey(grey, page_what)
    finally:
        doc.close()


# --------------------------------------------------------------------------- preprocessing


def _border(grey: np.ndarray) -> np.ndarray:
    h, w = grey.shape
    t = max(1, min(h, w) // 20)
    return np.concatenate([grey[:t].ravel(), grey[-t:].ravel(), grey[:, :t].ravel(), grey[:, -t:].ravel()])


#: The polarity decision and the uneven-lighting estimate run on copies at most this many
#: pixels on a side (both are smooth, low-frequency estimates; this keeps photos fast).
_POLARITY_SIDE = 160
_BACKGROUND_SIDE = 192
#: A border whose 5th-95th percentile spread is below this many grey levels is evenly lit.
_EVEN_BORDER = 24


def _needs_inversion(grey: np.ndarray, polarity: str) -> bool:
    if polarity == "dark-on-light":
        return True
    if polarity == "light-on-dark":
        return False
    # Ink is what stands out from the paper *around it*: compare each pixel with a local
    # paper estimate (a median, which does not care which way the ink goes) and weigh how
    # much lies beyond the noise floor on the dark side and on the light side. Whole-image
    # percentiles would miss a small character on a large, unevenly lit photo, where the
    # extremes are lighting rather than ink.
    small = grey
    if max(grey.shape) > _POLARITY_SIDE:
        f = _POLARITY_SIDE / max(grey.shape)
        small = cv2.resize(grey, (max(1, round(grey.shape[1] * f)), max(1, round(grey.shape[0] * f))), interpolation=cv2.INTER_AREA)
    border = _border(small)
    lo, hi = np.percentile(border, [5, 95])
    if hi - lo >= _EVEN_BORDER and min(small.shape) >= 48:
        k = (min(small.shape) // 4) | 1
        paper: np.ndarray | float = cv2.medianBlur(small, k).astype(np.float32)
    else:  # an evenly lit sheet, or too small for a local estimate: the border is the paper
        paper = float(np.median(border))
    dev = small.astype(np.float32) - paper
    floor = max(4.0 * _noise_sigma(dev), 8.0)
    dark = float(np.clip(-dev - floor, 0, None).sum())
    light = float(np.clip(dev - floor, 0, None).sum())
    if dark == light:  # nothing stands out (blank): the old rule, tails around the border
        bg = float(np.median(_border(grey)))
        lo, hi = np.percentile(grey, [0.5, 99.5])
        return bool(bg - lo >= hi - bg)
    return dark > light


def _noise_sigma(dev: np.ndarray) -> float:
    """Noise level of the paper: a robust spread (MAD) of the border's deviations from the
    paper estimate, taken before any clipping so that a flat paper still shows its noise."""
    return _mad(_border(dev))


def _mad(values: np.ndarray) -> float:
    """Robust standard deviation: 1.4826 times the median absolute deviation."""
    return 1.4826 * float(np.median(np.abs(values - np.median(values))))


def _paper_noise(dev: np.ndarray) -> float:
    """The noise floor of the ink mask: :func:`_noise_sigma` measured on each side of the
    border on its own, the quietest side counting. A side covered by a card edge, a grid
    line or a shadow would otherwise raise the floor above the ink (a frame is dropped
    afterwards, :func:`hcr.frames.border_clutter`; its statistics must not hide the ink)."""
    h, w = dev.shape
    t = max(1, min(h, w) // 20)
    return min(_mad(b.ravel()) for b in (dev[:t], dev[-t:], dev[:, :t], dev[:, -t:]))


def _background(ink_bright: np.ndarray) -> np.ndarray | float:
    """Paper level: a constant when the border is even, else a smooth per-pixel estimate."""
    border = _border(ink_bright)
    lo, hi = np.percentile(border, [5, 95])
    if hi - lo < _EVEN_BORDER or min(ink_bright.shape) < 48:
        return float(np.median(border))
    # Uneven light: ink is thin and bright, so a grey opening with a kernel wider than the
    # strokes removes it and leaves the paper; a blur smooths the estimate.
    k = max(15, (min(ink_bright.shape) // 6) | 1)
    small = ink_bright
    scale = 1.0
    if max(ink_bright.shape) > _BACKGROUND_SIDE:  # estimate on a reduced copy: fast and smooth enough
        scale = _BACKGROUND_SIDE / max(ink_bright.shape)
        small = cv2.resize(ink_bright, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        k = max(15, (int(k * scale)) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    bg = cv2.morphologyEx(small, cv2.MORPH_OPEN, kernel)
    bg = cv2.GaussianBlur(bg, (0, 0), k / 3)
    if scale != 1.0:
        bg = cv2.resize(bg, (ink_bright.shape[1], ink_bright.shape[0]), interpolation=cv2.INTER_LINEAR)
    return bg.astype(np.float32)


def _ink_mask(signal: np.ndarray, spec: PreprocessSpec, sigma: float) -> np.ndarray | None:
    """Binary ink mask of a background-subtracted image, or None when it is blank.

    Every statistic is taken over the ink candidates only, never over the paper, so the
    same drawing on a larger or smaller sheet gets the same mask: the noise floor comes
    from the border, candidates lie above it, and strokes are the candidates brighter
    than a fixed share of the ink's own peak.
    """
    floor = max(4.0 * sigma, 8.0)
    cand = signal > floor
    if int(cand.sum()) < spec.min_ink_pixels:
        return None
    peak = float(np.percentile(signal[cand], 99))
    if peak < spec.min_contrast:
        return None
    strokes = (signal > max(INK_THRESHOLD * peak, floor)).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(strokes, connectivity=8)
    if n <= 1:
        return None
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = areas >= max(2.0, spec.speck_fraction * float(areas.sum()))
    mask = np.isin(labels, np.flatnonzero(keep) + 1)
    if int(mask.sum()) < spec.min_ink_pixels:
        return None
    return mask


def _deskew(img: np.ndarray) -> np.ndarray:
    m = cv2.moments(img)
    if abs(m["mu02"]) < 1e-2:
        return img
    skew = float(m["mu11"] / m["mu02"])
    h, w = img.shape
    pad = int(abs(skew) * h / 2) + 1
    img = cv2.copyMakeBorder(img, 0, 0, pad, pad, cv2.BORDER_CONSTANT, value=0)
    cy = float(m["m01"] / max(m["m00"], 1e-6))
    mat = np.array([[1.0, skew, -skew * cy], [0.0, 1.0, 0.0]], np.float32)
    return cv2.warpAffine(img, mat, (img.shape[1], h), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR, borderValue=0)


def _crop(img: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(img)
    if len(ys) == 0:
        return img
    return img[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def _fit_and_centre(glyph: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """Fit into box x box keeping aspect ratio; centre by centre of mass in size x size."""
    h, w = glyph.shape
    f = spec.box / max(h, w)
    nh, nw = max(1, int(round(h * f))), max(1, int(round(w * f)))
    interp = cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR
    g = cv2.resize(glyph, (nw, nh), interpolation=interp) if (nh, nw) != (h, w) else glyph
    out = np.zeros((spec.size, spec.size), np.float32)
    total = float(g.sum())
    if total <= 0:
        return out
    yy, xx = np.mgrid[0:nh, 0:nw]
    cy, cx = float((yy * g).sum() / total), float((xx * g).sum() / total)
    # integer shift, as in the MNIST procedure; keep the glyph inside the canvas
    top = int(round(spec.size / 2 - 0.5 - cy))
    left = int(round(spec.size / 2 - 0.5 - cx))
    top = min(max(top, 0), spec.size - nh)
    left = min(max(left, 0), spec.size - nw)
    out[top : top + nh, left : left + nw] = g
    return out


@dataclass
class InkMap:
    """Where the ink is in a whole image: steps 1-3 of :func:`preprocess` (polarity,
    background, ink mask), before anything is cropped or resized.

    ``grey`` is the decoded image, ``ink_bright`` the same with the ink made bright,
    ``signal`` the ink's height above the paper estimate (float32, >= 0; the "flattened"
    stage), ``mask`` the boolean ink mask (None when the image is blank).
    """

    grey: np.ndarray
    ink_bright: np.ndarray
    signal: np.ndarray
    mask: np.ndarray | None
    inverted: bool

    @property
    def blank(self) -> bool:
        return self.mask is None

    def flattened(self) -> np.ndarray:
        """``signal`` as ``uint8`` (ink bright on a black, flat background)."""
        return np.clip(self.signal, 0, 255).astype(np.uint8)


def find_ink(image: ImageInput, spec: PreprocessSpec | None = None, *, name: str | None = None) -> InkMap:
    """Decode ``image`` and find its ink exactly as :func:`preprocess` does (same polarity
    decision, background estimate and mask). Used on its own to find many characters in
    one image (:mod:`hcr.segment`); pass a spec with ``speck_fraction=0`` there, since a
    character is a small share of a page's ink."""
    spec = spec or PreprocessSpec()
    grey = load_image(image, name=name)
    inverted = _needs_inversion(grey, spec.polarity)
    ink = (255 - grey) if inverted else grey
    bg = _background(ink)
    diff = ink.astype(np.float32) - bg
    signal = np.clip(diff, 0, None)
    sigma = _paper_noise(diff)
    mask = _ink_mask(signal, spec, sigma)
    clutter = border_clutter(mask) if spec.frames and mask is not None else None
    if clutter is not None and mask is not None and int((mask & ~clutter).sum()) >= spec.min_ink_pixels:
        # Frames and edges out of the picture: the ink statistics (peak, stroke threshold,
        # specks) are taken again without them, so a black card edge cannot outshine a
        # pencil stroke. Ink that only lives along the edges is kept (a tight crop).
        near = cv2.dilate(clutter.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        signal = np.where(near & ~(mask & ~clutter), 0.0, signal).astype(np.float32)
        mask = _ink_mask(signal, spec, sigma)
        again = border_clutter(mask) if mask is not None else None
        if again is not None and mask is not None and int((mask & ~again).sum()) >= spec.min_ink_pixels:
            mask &= ~again
    return InkMap(grey, ink, signal, mask, inverted)


def _ink_levels(signal: np.ndarray, mask: np.ndarray, min_contrast: float) -> np.ndarray:
    """Ink in [0, 1]: a high percentile of the masked signal maps to 1.0, anti-aliased
    edges keep their grey levels, everything away from the ink is zeroed."""
    level = max(float(np.percentile(signal[mask], 90)), min_contrast)
    near = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    return np.where(near, np.clip(signal / level, 0.0, 1.0), 0.0).astype(np.float32)


def _quantise(x: np.ndarray) -> np.ndarray:
    """8-bit steps, like an image file: a PNG of the input reads back identically."""
    return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.float32) / 255.0


def preprocess(image: ImageInput, spec: PreprocessSpec | None = None, *, stages: bool = False, name: str | None = None) -> Preprocessed:
    """Turn any image into model input. See the module docstring for the steps."""
    spec = spec or PreprocessSpec()
    found = find_ink(image, spec, name=name)
    grey, signal, mask, inverted = found.grey, found.signal, found.mask, found.inverted
    st: dict[str, np.ndarray] = {"grey": grey} if stages else {}
    if stages:
        st["ink_bright"] = found.ink_bright
        st["flattened"] = found.flattened()
        st["mask"] = (mask.astype(np.uint8) * 255) if mask is not None else np.zeros_like(grey)
    if mask is None:
        out = np.zeros((spec.size, spec.size), np.float32)
        if stages:
            st["input"] = (out * 255).astype(np.uint8)
        return Preprocessed(out, True, None, inverted, st)
    # ink level: a high percentile of the masked signal maps to 1.0; anti-aliased edges keep
    # their grey levels; everything away from the ink (noise, stains) is zeroed.
    norm = _ink_levels(signal, mask, spec.min_contrast)
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    glyph = norm[y0:y1, x0:x1]
    if spec.deskew:
        glyph = _crop(_deskew(glyph))
    if stages:
        st["crop"] = (glyph * 255).astype(np.uint8)
    # Quantised to 8-bit steps, like an image file: saving the input as a PNG and reading
    # it back gives exactly the same model input.
    out = _quantise(_fit_and_centre(glyph, spec))
    if stages:
        st["input"] = np.round(out * 255.0).astype(np.uint8)
    return Preprocessed(out, False, (int(x0), int(y0), int(x1 - x0), int(y1 - y0)), inverted, st)


def preprocess_line(image: ImageInput, spec: LineSpec | None = None, *, stages: bool = False, name: str | None = None) -> Preprocessed:
    """Turn an image of a word or a line into CRNN input: steps 1-3 of :func:`preprocess`
    (polarity, background, ink mask: :func:`find_ink`), the same ink levels, then the
    ink's bounding box scaled to ``height - 2 * pad`` rows keeping its aspect ratio
    (narrower than ``max_width``) and padded. ``image`` of the result is float32
    ``(height, width)``; a blank image gives a ``(height, height)`` zero array."""
    spec = spec or LineSpec()
    found = find_ink(image, spec.ink_spec(), name=name)
    st: dict[str, np.ndarray] = {"grey": found.grey, "flattened": found.flattened()} if stages else {}
    if found.mask is None:
        out = np.zeros((spec.height, spec.height), np.float32)
        if stages:
            st["input"] = np.zeros_like(out, np.uint8)
        return Preprocessed(out, True, None, found.inverted, st)
    mask = without_form_lines(found.mask) if spec.frames else found.mask
    if not mask.any():
        mask = found.mask
    norm = _ink_levels(found.signal, mask, spec.min_contrast)
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    crop = norm[y0:y1, x0:x1]
    h, w = crop.shape
    inner = spec.height - 2 * spec.pad
    f = min(inner / h, (spec.max_width - 2 * spec.pad) / w)
    nh, nw = max(1, int(round(h * f))), max(1, int(round(w * f)))
    g = cv2.resize(crop, (nw, nh), interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
    out = np.zeros((spec.height, nw + 2 * spec.pad), np.float32)
    top = (spec.height - nh) // 2
    out[top : top + nh, spec.pad : spec.pad + nw] = g
    out = _quantise(out)
    if stages:
        st["mask"] = mask.astype(np.uint8) * 255
        st["input"] = np.round(out * 255.0).astype(np.uint8)
    return Preprocessed(out, False, (x0, y0, x1 - x0, y1 - y0), found.inverted, st)


def preprocess_many(images: np.ndarray | Sequence[ImageInput], spec: PreprocessSpec | None = None, progress: bool = False, desc: str = "preprocess") -> tuple[np.ndarray, np.ndarray]:
    """Preprocess a collection of images (arrays of grey ``uint8`` images, or anything :func:`preprocess` takes).

    Returns ``(inputs, blank)``: float32 ``(N, size, size)`` and a boolean mask of blank images.
    """
    spec = spec or PreprocessSpec()
    n = len(images)
    out = np.zeros((n, spec.size, spec.size), np.float32)
    blank = np.zeros(n, bool)
    it: Any = range(n)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=desc, unit="img", leave=False, mininterval=0.5)
    for i in it:
        p = preprocess(images[i], spec)
        out[i] = p.image
        blank[i] = p.blank
    return out, blank
