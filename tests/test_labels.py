"""Label maps: index <-> symbol, EMNIST mapping files, and remapping between maps."""

from __future__ import annotations

import string

import pytest

from hcr.errors import DataError
from hcr.labels import DIGITS, LOWER, UPPER, LabelMap, charset, remap_indices

BYCLASS_MAPPING = [f"{i} {ord(c)}" for i, c in enumerate(string.digits + string.ascii_uppercase + string.ascii_lowercase)]
LETTERS_MAPPING = [f"{i + 1} {ord(u)} {ord(lo)}" for i, (u, lo) in enumerate(zip(string.ascii_uppercase, string.ascii_lowercase))]


def test_basic_lookup() -> None:
    lm = LabelMap(("a", "b", "c"))
    assert len(lm) == 3
    assert lm[1] == "b"
    assert lm.index("c") == 2
    assert LabelMap.from_symbols([0, 1, 2]).symbols == ("0", "1", "2")


@pytest.mark.parametrize("symbols", [("a", "b", "a"), ("1", "1")])
def test_duplicates_raise(symbols: tuple[str, ...]) -> None:
    with pytest.raises(DataError, match="duplicate"):
        LabelMap(symbols)


def test_empty_raises() -> None:
    with pytest.raises(DataError):
        LabelMap(())
    with pytest.raises(DataError):
        LabelMap.from_symbols([])


def test_unknown_symbol_raises_data_error() -> None:
    lm = charset(["digits"])
    with pytest.raises(DataError, match="'x'"):
        lm.index("x")


def test_mapping_file_byclass_layout() -> None:
    lm = LabelMap.from_mapping_file(BYCLASS_MAPPING)
    assert len(lm) == 62
    assert lm.symbols == DIGITS + UPPER + LOWER
    assert lm[0] == "0" and lm[10] == "A" and lm[61] == "z"


def test_mapping_file_letters_layout_starts_at_1_and_uses_first_code() -> None:
    lm = LabelMap.from_mapping_file(["", *LETTERS_MAPPING, "   "])  # blank lines are ignored
    assert lm.symbols == UPPER
    assert lm[0] == "A"  # file index 1 is class 0


def test_mapping_file_order_does_not_matter() -> None:
    assert LabelMap.from_mapping_file(list(reversed(BYCLASS_MAPPING))) == LabelMap.from_mapping_file(BYCLASS_MAPPING)


@pytest.mark.parametrize(
    "lines",
    [["0 48", "1 49", "3 51"], ["1 65", "3 67"], [], ["", "  "], ["0 48", "one 49"], ["0"]],
    ids=["gap", "gap-from-1", "empty", "blank-lines", "not-a-number", "missing-code"],
)
def test_bad_mapping_files_raise(lines: list[str]) -> None:
    with pytest.raises(DataError):
        LabelMap.from_mapping_file(lines)


def test_real_byclass_mapping_file(real_data_dir) -> None:
    path = real_data_dir / "emnist" / "emnist-byclass-mapping.txt"
    if not path.exists():
        pytest.skip(f"{path} not found")
    lm = LabelMap.from_mapping_file(path.read_text().splitlines())
    assert lm.symbols == DIGITS + UPPER + LOWER


def test_dict_round_trip() -> None:
    lm = charset(["digits", "upper", "lower"])
    d = lm.to_dict()
    assert d == {"symbols": list(lm.symbols)}
    assert LabelMap.from_dict(d) == lm
    odd = LabelMap(("ä", "ß", " ", "-", "10"))
    assert LabelMap.from_dict(odd.to_dict()) == odd


def test_remap_indices() -> None:
    src = LabelMap(("a", "b", "c", "7"))
    dst = LabelMap(("7", "c", "x", "a"))
    assert remap_indices(src, dst) == [3, -1, 1, 0]
    assert remap_indices(dst, dst) == [0, 1, 2, 3]


def test_charset() -> None:
    lm = charset(["digits", "upper"])
    assert len(lm) == 36
    assert lm.symbols[:10] == DIGITS and lm.symbols[10:] == UPPER
    assert len(charset(["digits", "upper", "lower"])) == 62
    with pytest.raises(DataError):
        charset(["digits", "digits"])  # duplicates


def test_case_merged_and_has_letters() -> None:
    lm = charset(["digits", "upper", "lower"])
    merged = lm.case_merged()
    assert merged[lm.index("A")] == merged[lm.index("a")] == "a"
    assert merged[lm.index("7")] == "7"
    assert lm.has_letters and not charset(["digits"]).has_letters
