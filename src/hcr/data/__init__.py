"""Data sources and their registry.

A data set is named by a spec string: a registered name (``mnist``, ``emnist-byclass``,
``az-csv``, ``digits``...) or ``NAME:PATH`` for sources that read the user's files
(``folder:my_letters/``, ``csv:pixels.csv``, ``az-csv:"A_Z Handwritten Data.csv"``).
Character data sets are rows of :data:`SOURCES` (:func:`get_source`); word/line data sets
(``dhsd``, ``lines:PATH``, ``fonts:KIND``, ``synth:DATA``) rows of :data:`LINE_SOURCES`
(:func:`get_line_source`). Each row's factory imports its module when it is used.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable

from ..errors import DataError, UnknownNameError
from .base import DataSource, Samples, default_data_dir, resolve_data_dir, split_indices

__all__ = [
    "DataSource", "LINE_SOURCES", "Samples", "SOURCES", "default_data_dir", "describe_line_source", "get_line_source", "get_source",
    "is_line_source", "list_sources", "resolve_data_dir", "split_indices",
]


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


def _line_folder(path: str | None, data_dir: Path | None, **kw: Any) -> Any:
    from .lines import LineFolder

    if not path:
        raise DataError("lines:PATH needs the folder holding labels.tsv")
    return LineFolder(path, **kw)


def _dhsd(path: str | None, data_dir: Path | None, **kw: Any) -> Any:
    from .lines import dhsd_source

    return dhsd_source(data_dir, **kw)


def _font_lines(path: str | None, data_dir: Path | None, **kw: Any) -> Any:
    from .lines import FontLines

    return FontLines(path or "handwriting", **kw)


def _synth_lines(path: str | None, data_dir: Path | None, **kw: Any) -> Any:
    from .lines import SyntheticLines

    if not path:
        raise DataError("synth:DATA needs a character data set, e.g. synth:emnist-byclass")
    return SyntheticLines(path, get_source(path, data_dir), **kw)


#: The word/line data sets (:mod:`hcr.data.lines`): name -> (factory, how to name it, one-line description).
LINE_SOURCES: dict[str, tuple[Callable[..., Any], str, str]] = {
    "dhsd": (_dhsd, "dhsd", "DHSD: 4,745 German handwritten street names by 37 writers (words; place it in DATA_DIR/words/dhsd)"),
    "lines": (_line_folder, "lines:PATH", "your word or line images: a folder with labels.tsv (file, text[, writer])"),
    "fonts": (_font_lines, "fonts:KIND", "lines typeset in handwriting or printed fonts (generated; the @fontsource fonts are fetched on first use)"),
    "synth": (_synth_lines, "synth:DATA", "lines composed from a character data set's glyphs (generated), e.g. synth:emnist-byclass"),
}


def is_line_source(spec: str) -> bool:
    """Whether ``spec`` names a word/line data set (else a character data set)."""
    return spec.partition(":")[0] in LINE_SOURCES


def get_line_source(spec: str, data_dir: str | Path | None = None, **options: Any) -> Any:
    """Build the word/line source named by ``spec`` (a :class:`hcr.data.lines.LineFolder`,
    ``SyntheticLines`` or ``FontLines``; see :mod:`hcr.data.lines`)."""
    name, _, path = spec.partition(":")
    if name not in LINE_SOURCES:
        raise UnknownNameError("line data set", spec, [usage for _, usage, _ in LINE_SOURCES.values()])
    factory = LINE_SOURCES[name][0]
    try:
        return factory(path or None, Path(data_dir) if data_dir else None, **options)
    except TypeError as e:  # an option this source does not take
        raise DataError(f"line data {spec!r} does not take the option(s) {sorted(options)}: {e}") from None


def describe_line_source(spec: str, data_dir: str | Path | None = None, split: str | None = None) -> list[str]:
    """What ``hcr data info`` prints for a word/line data set (:func:`hcr.data.lines.describe_lines`),
    or that it is not available here."""
    from .lines import describe_lines

    try:
        src = get_line_source(spec, data_dir)
    except DataError as e:
        return [spec, f"  not available locally: {str(e).splitlines()[0]}"]
    return describe_lines(spec, src, split)


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
