"""Pixel CSV files (``label, p0, p1, ...`` per row), including the popular A-Z letters CSV.

Also home of :class:`_SplitArrays`, the one place that turns "all samples of a source" into
seeded, stratified ``all`` / ``train`` / held-out splits for the local sources.
"""

from __future__ import annotations

import gzip
import itertools
import math
import zlib
from pathlib import Path
from typing import IO, Sequence

import numpy as np

from ..errors import DataError
from ..labels import UPPER, LabelMap
from .base import DataSource, Samples, resolve_data_dir, split_indices

_CHUNK_ROWS = 4096


class _SplitArrays(DataSource):
    """Mixin for sources that read all their samples at once and split them by seed.

    Subclasses implement :meth:`_read_all` and :meth:`_source_prefix`; ``load`` then serves
    ``"all"``, ``"train"`` and the held-out split named by ``default_val_split``. The parsed
    samples and the split are computed once per instance.
    """

    splits: tuple[str, ...] = ("all", "train", "val")
    default_val_split: str | None = "val"

    def __init__(self, val_fraction: float, seed: int) -> None:
        if not 0.0 < val_fraction < 1.0:
            raise DataError(f"validation fraction must be in (0, 1), got {val_fraction}")
        self.val_fraction = float(val_fraction)
        self.seed = int(seed)
        self._all: Samples | None = None
        self._split: tuple[np.ndarray, np.ndarray] | None = None

    def _read_all(self) -> Samples:
        raise NotImplementedError

    def _source_prefix(self) -> str:
        raise NotImplementedError

    def _split_params(self) -> tuple[float, int]:
        """(held-out fraction, seed) of the train / held-out split."""
        return self.val_fraction, self.seed

    def _all_samples(self) -> Samples:
        if self._all is None:
            self._all = self._read_all()
        return self._all

    def load(self, split: str) -> Samples:
        self.check_split(split)
        every = self._all_samples()
        if split == "all":
            index = np.arange(len(every))
        else:
            if self._split is None:
                fraction, seed = self._split_params()
                self._split = split_indices(len(every), fraction, seed, every.targets)
            index = self._split[0] if split == "train" else self._split[1]
        part = every.subset(index)
        part.source = f"{self._source_prefix()}:{split}"
        return part


def _open_text(path: Path) -> IO[str]:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, "r", encoding="utf-8-sig", newline="")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _show(field: str, limit: int = 24) -> str:
    """A field quoted for an error message, shortened (a forged file may hold a huge one)."""
    text = field.strip()
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text):,} characters)"


def _bad_line(path: Path, lines: list[str], first_line: int, ncols: int | None) -> DataError:
    """Find the first unparsable line of a chunk (slow path, only after a failure)."""
    for k, line in enumerate(lines):
        if not line.strip():
            continue
        fields = line.strip().split(",")
        where = f"{path} line {first_line + k}"
        ncols = len(fields) if ncols is None else ncols  # the first line sets the width
        if len(fields) != ncols:
            return DataError(f"{where}: expected {ncols} comma-separated values, found {len(fields)}")
        for col, field in enumerate(fields):
            try:
                value = float(field)
            except ValueError:
                return DataError(f"{where}, column {col + 1}: {_show(field)} is not a number")
            if not math.isfinite(value) and not math.isnan(value) or abs(value) >= 2**53:
                return DataError(f"{where}, column {col + 1}: {_show(field)} is out of range (pixels are 0..255)")
            if not value.is_integer():
                return DataError(f"{where}, column {col + 1}: {_show(field)} is not an integer")
    return DataError(f"{path} lines {first_line}-{first_line + len(lines) - 1}: cannot parse the values")


def _parse_chunk(path: Path, lines: list[str], data: list[str], first_line: int, ncols: int | None) -> np.ndarray:
    """Parse the non-blank ``data`` lines of chunk ``lines`` into an int64 (rows, cols) array.

    Errors name the file and line.
    """
    try:
        rows = np.loadtxt(data, delimiter=",", dtype=np.int64, ndmin=2, comments=None)
    except ValueError:
        try:  # integral floats such as "12.0" are accepted
            values = np.loadtxt(data, delimiter=",", dtype=np.float64, ndmin=2, comments=None)
        except ValueError:
            raise _bad_line(path, lines, first_line, ncols) from None
        if not np.all(np.isfinite(values) & (values == np.round(values)) & (np.abs(values) < 2**53)):
            raise _bad_line(path, lines, first_line, ncols) from None
        rows = values.astype(np.int64)
    if ncols is not None and rows.shape[1] != ncols:
        raise _bad_line(path, lines, first_line, ncols)
    return rows


def _line_of_row(lines: list[str], first_line: int, row: int) -> int:
    """File line number of data row ``row`` of a chunk (blank lines are skipped by the parser)."""
    nonblank = [k for k, line in enumerate(lines) if line.strip()]
    return first_line + nonblank[row]


def _rows_to_arrays(
    path: Path, lines: list[str], first_line: int, rows: np.ndarray, label_offset: int
) -> tuple[np.ndarray, np.ndarray]:
    """Check parsed rows (square pixel count, pixels 0..255, labels >= offset) and convert them."""
    npix = rows.shape[1] - 1
    side = math.isqrt(max(npix, 0))
    if npix < 1 or side * side != npix:
        raise DataError(
            f"{path} line {_line_of_row(lines, first_line, 0)}: {npix} pixel values is not a square image "
            f"(expected a label then S*S pixels, e.g. 784 for 28x28)"
        )
    pixels = rows[:, 1:]
    bad = np.flatnonzero((pixels < 0).any(axis=1) | (pixels > 255).any(axis=1))
    if bad.size:
        r = int(bad[0])
        value = int(pixels[r][(pixels[r] < 0) | (pixels[r] > 255)][0])
        raise DataError(f"{path} line {_line_of_row(lines, first_line, r)}: pixel value {value} is outside 0..255")
    labels = rows[:, 0] - label_offset
    if labels.min() < 0:
        r = int(np.argmin(labels))
        raise DataError(
            f"{path} line {_line_of_row(lines, first_line, r)}: label {int(rows[r, 0])} is below "
            f"the first label index {label_offset}"
        )
    return pixels.astype(np.uint8).reshape(len(rows), side, side), labels


def read_pixel_csv(path: Path, *, transpose: bool = False, label_offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Read a pixel CSV (``.csv`` or ``.csv.gz``): each row a label then S*S pixels 0..255.

    A header line (first field not a number) is skipped; blank lines are ignored. Returns
    ``uint8`` images (N, S, S), each transposed if ``transpose``, and ``int64`` labels minus
    ``label_offset``. Errors name the file and the line.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"CSV file {path} does not exist")
    images: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    ncols: int | None = None
    try:
        with _open_text(path) as f:
            line_no = 0
            first = ""
            for first in f:  # first non-blank line: header or data
                line_no += 1
                if first.strip():
                    break
            head = first.split(",", 1)[0].strip()
            pending = [] if first.strip() and not _is_number(head) else [first]  # header skipped
            start = line_no if pending else line_no + 1  # file line number of lines[0]
            while True:
                lines = pending + list(itertools.islice(f, _CHUNK_ROWS))
                pending = []
                if not lines:
                    break
                data = [line for line in lines if line and not line.isspace()]
                if data:
                    rows = _parse_chunk(path, lines, data, start, ncols)
                    ncols = rows.shape[1]
                    chunk_images, chunk_labels = _rows_to_arrays(path, lines, start, rows, label_offset)
                    images.append(chunk_images)
                    labels.append(chunk_labels)
                start += len(lines)
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not a UTF-8 text CSV (binary data, or another encoding: {e.reason})") from None
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"cannot read {path}: {e}") from None
    if not images:
        if first.strip() and not _is_number(head):  # the one non-blank line was taken for a header
            sep = next((f" separated by {name} instead of commas" for c, name in (("\t", "tabs"), (";", "semicolons")) if c in first and "," not in first), "")
            raise DataError(f"{path} contains no data rows: its one line {_show(first, 40)} was read as a header, not label,pixel values{sep} "
                            f"(expected comma-separated rows: a label, then S*S pixels 0..255)")
        raise DataError(f"{path} contains no data rows")
    out = np.concatenate(images) if len(images) > 1 else images[0]
    images.clear()
    if transpose:
        out = np.ascontiguousarray(out.transpose(0, 2, 1))
    return out, np.concatenate(labels).astype(np.int64)


def _mapping_first_index(lines: Sequence[str]) -> int:
    """Smallest index of an EMNIST-style mapping file (0, or 1 for EMNIST Letters)."""
    indices = [int(parts[0]) for parts in (line.split() for line in lines) if parts and parts[0].lstrip("-").isdigit()]
    return min(indices) if indices else 0


class CsvSource(_SplitArrays):
    """Any pixel CSV: ``label, S*S pixels`` per row, split into seeded train / val."""

    name = "csv"
    citation = ""

    def __init__(
        self,
        path: Path | None,
        mapping: Path | None = None,
        symbols: Sequence[str] | None = None,
        transpose: bool = False,
        val_fraction: float = 0.1,
        seed: int = 0,
    ) -> None:
        super().__init__(val_fraction, seed)
        if mapping is not None and symbols is not None:
            raise DataError("give a mapping file or a list of symbols for a CSV source, not both")
        self._path = Path(path).expanduser() if path is not None else None
        self.transpose = transpose
        self.label_offset = 0
        self._label_map: LabelMap | None = None
        if mapping is not None:
            mapping = Path(mapping).expanduser()
            try:
                lines = mapping.read_text(encoding="utf-8").splitlines()
            except OSError as e:
                raise DataError(f"cannot read mapping file {mapping}: {e}") from None
            self._label_map = LabelMap.from_mapping_file(lines)
            self.label_offset = _mapping_first_index(lines)
        elif symbols is not None:
            self._label_map = LabelMap.from_symbols(symbols)

    @property
    def path(self) -> Path:
        """The CSV file read by this source."""
        if self._path is None:
            raise DataError("no CSV file given")
        return self._path

    def required_files(self) -> list[Path]:
        return [self.path]

    def label_map(self) -> LabelMap:
        if self._label_map is None:  # symbols are the distinct label values: needs the file
            self._all_samples()
        assert self._label_map is not None
        return self._label_map

    def _source_prefix(self) -> str:
        return f"{self.name}:{self.path.name}"

    def _read_all(self) -> Samples:
        path = self.path
        images, labels = read_pixel_csv(path, transpose=self.transpose, label_offset=self.label_offset)
        if self._label_map is None:
            values, labels = np.unique(labels, return_inverse=True)
            self._label_map = LabelMap.from_symbols(str(v) for v in values)
        elif labels.max() >= len(self._label_map):
            raise DataError(
                f"{path}: label {int(labels.max()) + self.label_offset} has no symbol "
                f"(the label map has {len(self._label_map)} classes)"
            )
        return Samples(images, labels, self._label_map, source=f"{self._source_prefix()}:all")


AZ_FILENAMES = ("A_Z Handwritten Data.csv", "A_Z Handwritten Data.csv.gz", "a_z_handwritten_dev.csv.gz")


class AzCsvSource(CsvSource):
    """Kaggle's "A-Z Handwritten Alphabets in .csv format": labels 0-25 are 'A'..'Z'.

    It cannot be downloaded automatically: place the file in ``<data dir>/az``.
    """

    name = "az-csv"
    citation = "A-Z Handwritten Alphabets (Kaggle, Sachin Patel), derived from NIST Special Database 19"

    def __init__(
        self, path: Path | None = None, data_dir: Path | None = None, val_fraction: float = 0.1, seed: int = 0
    ) -> None:
        super().__init__(path, symbols=UPPER, val_fraction=val_fraction, seed=seed)
        self.folder = resolve_data_dir(data_dir) / "az"

    def _find(self) -> Path | None:
        if self._path is not None:
            return self._path
        for name in AZ_FILENAMES:
            if (self.folder / name).is_file():
                return self.folder / name
        for pattern in ("*.csv", "*.csv.gz"):
            found = sorted(p for p in self.folder.glob(pattern) if p.is_file())
            if found:
                return found[0]
        return None

    @property
    def path(self) -> Path:
        found = self._find()
        if found is None:
            raise DataError(
                f"the A-Z letters CSV is not in {self.folder}: place 'A_Z Handwritten Data.csv' (or a "
                f".csv.gz of it) in {self.folder} by hand, or use --data-dir / HCR_DATA_DIR to point at a "
                f"data folder with an 'az' sub-folder holding it. It is distributed on Kaggle as "
                f"\"A-Z Handwritten Alphabets in .csv format\" (derived from NIST Special Database 19) "
                f"and cannot be downloaded automatically."
            )
        return found

    def required_files(self) -> list[Path]:
        found = self._find()
        return [found if found is not None else self.folder / AZ_FILENAMES[0]]

    def download(self, progress: bool = True) -> list[Path]:
        return [self.path]  # nothing to fetch: says where to place the file when it is missing
