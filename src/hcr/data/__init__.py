"""Data sources and their registry.

A data set is named by a spec string: a registered name (``mnist``, ``emnist-byclass``,
``az-csv``, ``digits``...) or ``NAME:PATH`` for sources that read the user's files
(``folder:my_letters/``, ``csv:pixels.csv``, ``az-csv:"A_Z Handwritten Data.csv"``).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable

from ..errors import DataError, UnknownNameError
from .base import DataSource, Samples, default_data_dir, resolve_data_dir, split_indices

__all__ = ["DataSource", "LINE_SOURCES", "Samples", "SOURCES", "is_line_source", "default_data_dir", "get_source", "list_sources", "resolve_data_dir", "split_indices"]


def _mnist(path: str | None, data_dir: Path | None, **kw: Any) -> DataSource:
    from .mnist import MnistSource

    return MnistSource(data_dir)


def _emnist(subset: str) -> Callable[..., DataSource]:
    def make(path: str | None, data_dir: Path | None, **kw: Any) -> DataSource:
        from .mnist import EmnistSource

        return EmnistSource(subset, data_dir)

    return make


def _az(path: str | None, data_dir: Path | None, **kw: Any) -> DataSource:
    from .csv_source import AzCsvSource

    return AzCsvSource(Path(path) if path else None, data_dir=data_dir, **kw)


def _csv(path: str | None, data_dir: Path | None, **kw: Any) -> DataSource:
    from .csv_source import CsvSource

    if not path:
        raise UnknownNameError("data set", "csv", ["csv:PATH (a CSV file of label,pixels rows)"])
    return CsvSource(Path(path), **kw)


def _folder(path: str | None, data_dir: Path | None, **kw: Any) -> DataSource:
    from .folder import FolderSource

    if not path:
        raise UnknownNameError("data set", "folder", ["folder:PATH (one sub-folder per class)"])
    return FolderSource(Path(path), **kw)


def _digits(path: str | None, data_dir: Path | None, **kw: Any) -> DataSource:
    from .digits import DigitsSource

    return DigitsSource(**kw)


def _printed(path: str | None, data_dir: Path | None, **kw: Any) -> DataSource:
    # a composite source: it builds its parts through this registry (get_source), so the
    # registry finds it by name, not by an import (no import cycle)
    printed = importlib.import_module(f"{__name__}.printed")
    return printed.PrintedSource(data_dir, **kw)  # type: ignore[no-any-return]


#: name -> (factory, one-line description)
SOURCES: dict[str, tuple[Callable[..., DataSource], str]] = {
    "digits": (_digits, "1,797 handwritten digits (UCI, as scikit-learn ships them; embedded, no download)"),
    "mnist": (_mnist, "MNIST digits, 60,000 train / 10,000 test (official IDX files)"),
    "emnist-byclass": (_emnist("byclass"), "EMNIST ByClass: 62 classes, digits + upper + lower case"),
    "emnist-bymerge": (_emnist("bymerge"), "EMNIST ByMerge: 47 classes, similar upper/lower letters merged"),
    "emnist-balanced": (_emnist("balanced"), "EMNIST Balanced: 47 classes, equal samples per class"),
    "emnist-letters": (_emnist("letters"), "EMNIST Letters: 26 classes, case merged"),
    "emnist-digits": (_emnist("digits"), "EMNIST Digits: 10 classes, 280,000 images"),
    "emnist-mnist": (_emnist("mnist"), "EMNIST MNIST: 10 classes, MNIST-sized"),
    "az-csv": (_az, "A-Z handwritten letters CSV (label 0-25 + 784 pixels); az-csv[:PATH]"),
    "csv": (_csv, "any CSV of label + pixels; csv:PATH"),
    "folder": (_folder, "your images, one sub-folder per class; folder:PATH"),
    "printed": (_printed, "printed or handwritten: character crops of typeset and real handwritten lines (generated; needs DHSD, EMNIST and the fonts)"),
}


#: The word/line data sets (``hcr data list``), by spec, with a one-line description.
LINE_SOURCES: dict[str, str] = {
    "dhsd": "DHSD: 4,745 German handwritten street names by 37 writers (words; place it in DATA_DIR/words/dhsd)",
    "lines:PATH": "your word or line images: a folder with labels.tsv (file, text[, writer])",
    "fonts:KIND": "lines typeset in handwriting or printed fonts (generated; the @fontsource fonts are fetched on first use)",
    "synth:DATA": "lines composed from a character data set's glyphs (generated), e.g. synth:emnist-byclass",
}
def is_line_source(spec: str) -> bool:
    """Whether ``spec`` names a word/line data set (else a character data set)."""
    return spec.partition(":")[0] in {k.partition(":")[0] for k in LINE_SOURCES}


def list_sources() -> list[str]:
    return list(SOURCES)


def get_source(spec: str, data_dir: str | Path | None = None, **options: Any) -> DataSource:
    """Build the source named by ``spec`` (``NAME`` or ``NAME:PATH``)."""
    name, _, path = spec.partition(":")
    if name not in SOURCES:
        raise UnknownNameError("data set", spec, list(SOURCES))
    factory, _ = SOURCES[name]
    if "mapping" in options and options["mapping"] is not None:
        options["mapping"] = Path(options["mapping"])
    try:
        return factory(path or None, Path(data_dir) if data_dir else None, **options)
    except TypeError as e:  # an option this source does not take
        raise DataError(f"data set {name!r} does not take the option(s) {sorted(options)}: {e}") from None
