"""Reader for the IDX format (MNIST, EMNIST), plain or gzip-compressed.

The header is checked before the data is read: a header declaring more data than the file
holds (or than any real data set, :data:`MAX_IDX_BYTES`) is refused without allocating it,
and a gzip file is decompressed only up to the size its header declares, so neither a
forged header nor a gzip bomb can exhaust memory.
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import DataError

_DTYPES: dict[int, Any] = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

#: Largest IDX payload read (bytes); EMNIST ByClass training images, the largest in use, are 0.55 GB.
MAX_IDX_BYTES = 8 * 2**30

_CHUNK = 64 * 2**20


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def _read_exactly(f: _Readable, n: int) -> bytes:
    """Up to ``n`` bytes of ``f``, read in chunks (so memory follows the data actually there,
    not what a header claims)."""
    out = bytearray()
    while len(out) < n:
        chunk = f.read(min(_CHUNK, n - len(out)))
        if not chunk:
            break
        out += chunk
    return bytes(out)


def _describe(n: int) -> str:
    return f"{n:,} bytes" if n < 2**30 else f"{n / 2**30:,.0f} GiB"


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file; raises DataError naming the file when it is truncated, corrupt,
    not IDX, or declares an impossible size."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found" if not path.exists() else f"{path}: not a file")
    compressed = path.suffix == ".gz"
    try:
        with (gzip.open(path, "rb") if compressed else open(path, "rb")) as f:
            magic = _read_exactly(f, 4)
            if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in _DTYPES:
                raise DataError(f"{path}: not an IDX file (bad magic number)")
            ndim = magic[3]
            dims = _read_exactly(f, 4 * ndim)
            if ndim == 0 or len(dims) < 4 * ndim:
                raise DataError(f"{path}: truncated IDX header")
            shape = tuple(int.from_bytes(dims[4 * i : 4 + 4 * i], "big") for i in range(ndim))
            dtype = np.dtype(_DTYPES[magic[2]])
            expected = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
            header = 4 + 4 * ndim
            if expected > MAX_IDX_BYTES:
                raise DataError(f"{path}: the IDX header declares {' x '.join(map(str, shape))} values "
                                f"({_describe(expected)}), over the {_describe(MAX_IDX_BYTES)} limit (corrupt header)")
            if not compressed and path.stat().st_size - header != expected:
                raise DataError(f"{path}: IDX data has {path.stat().st_size - header:,} bytes, header says {expected:,} (truncated or corrupt)")
            raw = _read_exactly(f, expected + 1)  # one byte more: trailing data is an error too
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: corrupt or truncated gzip file ({e})") from None
    if len(raw) != expected:
        more = "more than" if len(raw) > expected else f"{len(raw):,} bytes,"
        raise DataError(f"{path}: IDX data has {more} the {expected:,} bytes the header says (truncated or corrupt)")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="), copy=True)


def read_idx_pair(images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N x H x W, 8-bit) and their N integer labels; DataError naming the file(s)
    when the shapes, types or counts do not match."""
    x, y = read_idx(images), read_idx(labels)
    if x.ndim != 3 or y.ndim != 1:
        raise DataError(f"{images} / {labels}: expected N x H x W images and N labels, got {x.shape} and {y.shape}")
    if x.dtype != np.uint8:
        raise DataError(f"{images}: expected 8-bit unsigned pixels, the file holds {x.dtype} values")
    if y.dtype.kind not in "iu":
        raise DataError(f"{labels}: expected integer labels, the file holds {y.dtype} values")
    if len(x) != len(y):
        raise DataError(f"{images} has {len(x)} images but {labels} has {len(y)} labels")
    if len(x) == 0 or x.shape[1] == 0 or x.shape[2] == 0:
        raise DataError(f"{images}: holds no images (shape {x.shape})")
    return x, y.astype(np.int64)
