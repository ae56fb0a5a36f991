"""A generated corpus of hostile image inputs (issue 17): nothing binary is committed, every
case is made here, deterministically, from a few valid images.

``image_cases(folder)`` writes the files and returns ``{name: path}``; ``array_cases()``
returns the arrays handed to the Python API. Each case must get one clear error line or a
normal answer: never a traceback, a hang or a blow-up of memory.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def declared_png(width: int, height: int, bit_depth: int = 1) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` pixels, with a tiny (wrong-sized)
    body: only a decoder that trusts the header before checking it allocates the image."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    body = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", body) + _png_chunk(b"IEND", b"")


def _letter(size: int = 64) -> Image.Image:
    img = Image.new("L", (size, size), 255)
    a = np.asarray(img).copy()
    a[size // 5 : -size // 5, size // 2 - 3 : size // 2 + 3] = 0  # an "I"
    return Image.fromarray(a)


def _save(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def image_cases(folder: Path) -> dict[str, Path]:
    rng = random.Random(17)
    base = _letter()
    valid = {
        "png": _save(base, "PNG"),
        "jpg": _save(base.convert("RGB"), "JPEG", quality=90),
        "gif": _save(base, "GIF"),
        "webp": _save(base, "WEBP"),
        "tif": _save(base, "TIFF"),
    }
    cases: dict[str, bytes] = {}
    for ext, data in valid.items():
        cases[f"truncated-half.{ext}"] = data[: len(data) // 2]
        cases[f"truncated-header.{ext}"] = data[:12]
        for k in range(3):
            flipped = bytearray(data)
            for _ in range(8):
                i = rng.randrange(len(flipped))
                flipped[i] ^= 1 << rng.randrange(8)
            cases[f"bitflip-{k}.{ext}"] = bytes(flipped)
    cases["empty.png"] = b""
    cases["text.png"] = b"this is not an image\n" * 10
    cases["page.png"] = b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>"
    cases["drawing.svg"] = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'
    cases["bomb-100000x100000.png"] = declared_png(100_000, 100_000)
    cases["strip-1x40000000.png"] = declared_png(1, 40_000_000)
    cases["strip-40000000x1.png"] = declared_png(40_000_000, 1)
    cases["one-pixel.png"] = _save(Image.new("L", (1, 1), 0), "PNG")
    cases["one-by-3000.png"] = _save(Image.new("L", (3000, 1), 0), "PNG")
    cases["16-bit.png"] = _save(Image.fromarray(np.asarray(base).astype(np.uint16) * 257), "PNG")
    cases["cmyk.jpg"] = _save(base.convert("CMYK"), "JPEG")
    pal = base.convert("P")
    cases["palette-transparent.png"] = _save(pal, "PNG", transparency=255)
    frames = [base, Image.new("L", base.size, 255)]
    cases["animated.gif"] = _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90
    cases["exif-rotated.jpg"] = _save(base.convert("RGB"), "JPEG", exif=exif)
    out = {}
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in cases.items():
        path = folder / name
        path.write_bytes(data)
        out[name] = path
    return out


#: The cases that are valid images: these must be read (an answer or "no character"), not refused.
VALID = {"one-pixel.png", "16-bit.png", "cmyk.jpg", "palette-transparent.png", "animated.gif", "exif-rotated.jpg"}


def refused(name: str) -> bool:
    """Whether a case can never decode (a bit flip may land where a decoder does not look,
    so those cases may decode or not; truncated files may decode as a partial image)."""
    return not name.startswith(("bitflip-", "truncated-half")) and name not in VALID


def array_cases() -> dict[str, object]:
    nan = np.full((28, 28), np.nan)
    inf = np.zeros((28, 28))
    inf[3, 3] = np.inf
    return {
        "nan": nan,
        "inf": inf,
        "empty": np.zeros((0, 0)),
        "1-d": np.zeros(28),
        "4-d": np.zeros((2, 28, 28, 1)),
        "5-channels": np.zeros((28, 28, 5)),
        "strip": np.zeros((1, 100_000), np.uint8),
        "object": np.array([[object()]], dtype=object),
        "complex": np.zeros((28, 28), np.complex64),
        "list": [[0, 1], [1, 0]],
    }
