"""Label maps: class index <-> symbol, with a JSON-friendly round trip."""

from __future__ import annotations

import string
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Iterable, Sequence

from .errors import DataError

DIGITS = tuple(string.digits)
UPPER = tuple(string.ascii_uppercase)
LOWER = tuple(string.ascii_lowercase)


@dataclass(frozen=True)
class LabelMap:
    """An ordered tuple of class symbols; index ``i`` of the model output is ``symbols[i]``."""

    symbols: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.symbols) == 0:
            raise DataError("a label map needs at least one class")
        if len(set(self.symbols)) != len(self.symbols):
            dup = sorted({s for s in self.symbols if self.symbols.count(s) > 1})
            raise DataError(f"label map has duplicate symbols: {dup}")

    @classmethod
    def from_symbols(cls, symbols: Iterable[str]) -> "LabelMap":
        return cls(tuple(str(s) for s in symbols))

    @classmethod
    def from_mapping_file(cls, lines: Iterable[str]) -> "LabelMap":
        """Parse an EMNIST-style mapping file: ``index ascii_code`` per line.

        Letters' mapping has several codes per index (``1 65 97``): the first is used.
        Indices must be contiguous from their minimum (0, or 1 for EMNIST Letters).
        """
        pairs: dict[int, str] = {}
        for n, raw in enumerate(lines, 1):
            parts = raw.split()
            if not parts:
                continue
            try:
                idx, code = int(parts[0]), int(parts[1])
            except (ValueError, IndexError):
                raise DataError(f"mapping file line {n}: expected 'index ascii_code', got {raw.strip()!r}") from None
            pairs[idx] = chr(code)
        if not pairs:
            raise DataError("mapping file is empty")
        lo = min(pairs)
        keys = sorted(pairs)
        if keys != list(range(lo, lo + len(keys))):
            raise DataError("mapping file indices are not contiguous")
        return cls(tuple(pairs[k] for k in keys))

    def __len__(self) -> int:
        return len(self.symbols)

    def __getitem__(self, index: int) -> str:
        return self.symbols[index]

    def index(self, symbol: str) -> int:
        try:
            return self.symbols.index(symbol)
        except ValueError:
            raise DataError(f"symbol {symbol!r} is not in the label map") from None

    def to_dict(self) -> dict[str, Any]:
        return {"symbols": list(self.symbols)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "LabelMap":
        return cls.from_symbols(d["symbols"])

    def case_merged(self) -> list[str]:
        """Symbol per class with letter case folded (for case-merged accuracy)."""
        return [s.lower() for s in self.symbols]

    @property
    def has_letters(self) -> bool:
        return any(s.isalpha() for s in self.symbols)


def remap_indices(src: LabelMap, dst: LabelMap) -> list[int]:
    """For each class of ``src``, its index in ``dst`` (-1 if absent)."""
    where = {s: i for i, s in enumerate(dst.symbols)}
    return [where.get(s, -1) for s in src.symbols]


def charset(names: Sequence[str]) -> LabelMap:
    """Build a label map from named groups: 'digits', 'upper', 'lower'."""
    groups = {"digits": DIGITS, "upper": UPPER, "lower": LOWER}
    out: list[str] = []
    for n in names:
        out.extend(groups[n])
    return LabelMap(tuple(out))


#: The CTC blank's index in every :class:`CTCCodec`.
BLANK = 0


@dataclass(frozen=True)
class CTCCodec:
    """Text <-> label sequences for CTC, with one convention: **index 0 is the blank** and
    symbol ``i`` of ``alphabet`` is class ``i + 1``; a model's output has
    ``len(alphabet) + 1`` classes.

    Decoding a per-column path collapses runs of the same class and then drops blanks, so a
    doubled letter ("ll") survives only with a blank between its two runs. The alphabet is
    saved in model files (``to_dict``) so the decoder always matches the network.
    """

    alphabet: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.alphabet:
            raise DataError("a CTC alphabet needs at least one symbol")
        if any(len(s) != 1 for s in self.alphabet):
            raise DataError("CTC alphabet symbols must be single characters")
        if len(set(self.alphabet)) != len(self.alphabet):
            raise DataError("CTC alphabet has duplicate symbols")

    @classmethod
    def from_texts(cls, texts: Iterable[str], extra: str = "") -> "CTCCodec":
        """The sorted set of characters in ``texts`` (plus ``extra``)."""
        return cls(tuple(sorted(set("".join(texts)) | set(extra))))

    @property
    def num_classes(self) -> int:
        return len(self.alphabet) + 1

    def symbol(self, index: int) -> str:
        """The character of class ``index`` ("" for the blank)."""
        return "" if index == BLANK else self.alphabet[index - 1]

    def encode(self, text: str) -> list[int]:
        """Class indices of ``text``; a character outside the alphabet is an error."""
        lookup = self._lookup
        try:
            return [lookup[c] for c in text]
        except KeyError as e:
            raise DataError(f"character {e.args[0]!r} of {text!r} is not in the model's alphabet") from None

    def can_encode(self, text: str) -> bool:
        return all(c in self._lookup for c in text)

    def label_map(self) -> "LabelMap":
        """The classes as a label map: the blank ("") then the alphabet (as stored in model files)."""
        return LabelMap(("",) + self.alphabet)

    def decode(self, path: Iterable[int]) -> str:
        """The text of a per-column best path: collapse repeats, then drop blanks."""
        out: list[str] = []
        prev = BLANK
        for k in path:
            k = int(k)
            if k != prev and k != BLANK:
                out.append(self.alphabet[k - 1])
            prev = k
        return "".join(out)

    @cached_property
    def _lookup(self) -> dict[str, int]:
        return {c: i + 1 for i, c in enumerate(self.alphabet)}

    def to_dict(self) -> dict[str, Any]:
        return {"alphabet": "".join(self.alphabet), "blank": BLANK}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CTCCodec":
        if d.get("blank", BLANK) != BLANK:
            raise DataError(f"unsupported CTC blank index {d.get('blank')!r} (hcr uses {BLANK})")
        return cls(tuple(str(d["alphabet"])))
