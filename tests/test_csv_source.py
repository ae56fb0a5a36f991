"""Pixel CSV reading, label maps, seeded splits, and the A-Z letters CSV."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from hcr.data.csv_source import AzCsvSource, CsvSource, read_pixel_csv
from hcr.errors import DataError


def _glyph_l(side: int = 4) -> np.ndarray:
    """An asymmetric 'L': a vertical bar on the left and a foot along the bottom."""
    img = np.zeros((side, side), dtype=np.uint8)
    img[:, 0] = 255
    img[-1, 1:] = 200
    return img


def _write(path: Path, rows: list[tuple[int, np.ndarray]], header: bool = False) -> Path:
    lines = []
    if header:
        lines.append(",".join(["label"] + [f"p{i}" for i in range(rows[0][1].size)]))
    lines += [",".join([str(lab)] + [str(v) for v in img.ravel()]) for lab, img in rows]
    text = "\n".join(lines) + "\n"
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def _dataset(n_per_class: int = 10, classes: tuple[int, ...] = (0, 1, 2), side: int = 4) -> list[tuple[int, np.ndarray]]:
    rng = np.random.default_rng(1)
    return [(c, rng.integers(0, 256, (side, side), dtype=np.uint8)) for c in classes for _ in range(n_per_class)]


@pytest.mark.parametrize("header", [False, True])
@pytest.mark.parametrize("name", ["x.csv", "x.csv.gz"])
def test_read_roundtrip(tmp_path: Path, header: bool, name: str) -> None:
    rows = _dataset()
    images, labels = read_pixel_csv(_write(tmp_path / name, rows, header=header))
    assert images.dtype == np.uint8 and images.shape == (30, 4, 4)
    assert labels.dtype == np.int64 and labels.tolist() == [r[0] for r in rows]
    assert np.array_equal(images, np.stack([r[1] for r in rows]))


def test_blank_lines_and_crlf_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"3,1,2,3,4\r\n\r\n  \r\n5,5,6,7,8\r\n")
    images, labels = read_pixel_csv(path)
    assert labels.tolist() == [3, 5] and images[1].tolist() == [[5, 6], [7, 8]]


def test_transpose_makes_stored_columns_upright(tmp_path: Path) -> None:
    upright = _glyph_l()
    path = _write(tmp_path / "t.csv", [(0, upright.T)])  # stored transposed, EMNIST style
    images, _ = read_pixel_csv(path, transpose=True)
    assert np.array_equal(images[0], upright)
    assert images[0][:, 0].min() == 255 and images[0][0, 1:].max() == 0  # bar on the left, not on top
    as_stored, _ = read_pixel_csv(path)
    assert np.array_equal(as_stored[0], upright.T)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("1,0,0,0,0\n2,0,0,0\n", r"line 2: expected 5 comma-separated values, found 4"),
        ("1,0,0,0\n2,0,0,0\n", r"line 1: 3 pixel values is not a square"),
        ("1,0,0,0,0\n2,0,300,0,0\n", r"line 2: pixel value 300 is outside 0\.\.255"),
        ("1,0,0,0,0\n2,0,-1,0,0\n", r"line 2: pixel value -1"),
        ("label,a,b,c,d\n1,0,0,0,0\n\n2,0,x,0,0\n", r"line 4, column 3: 'x' is not a number"),
        ("1,0,0,0,0\n2,0,1.5,0,0\n", r"line 2, column 3: '1.5' is not an integer"),
        ("", r"no data rows"),
        ("label,a,b,c,d\n", r"no data rows"),
    ],
)
def test_bad_files_name_file_and_line(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=match) as info:
        read_pixel_csv(path)
    assert str(path) in str(info.value)


def test_error_line_number_in_a_later_chunk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hcr.data.csv_source as cs

    monkeypatch.setattr(cs, "_CHUNK_ROWS", 3)
    lines = ["7,1,2,3,4"] * 8 + ["7,1,2,999,4"]
    path = tmp_path / "c.csv"
    path.write_text("h,a,b,c,d\n" + "\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"line 10: pixel value 999"):
        read_pixel_csv(path)
    path.write_text("\n".join(lines[:8]) + "\n")
    images, labels = read_pixel_csv(path)
    assert len(images) == 8 and labels.tolist() == [7] * 8


def test_integral_floats_accepted(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("1.0,0.0,255.0,3,4\n")
    images, labels = read_pixel_csv(path)
    assert labels.tolist() == [1] and images[0].tolist() == [[0, 255], [3, 4]]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        CsvSource(tmp_path / "nope.csv").load("all")


def test_symbols_default_to_sorted_label_values(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.csv", _dataset(classes=(7, 3, 12)))
    src = CsvSource(path)
    assert src.label_map().symbols == ("3", "7", "12")
    s = src.load("all")
    assert s.source == "csv:x.csv:all" and len(s) == 30
    assert [s.label_map[t] for t in s.targets[::10]] == ["7", "3", "12"]


def test_explicit_symbols(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.csv", _dataset())
    s = CsvSource(path, symbols=["a", "b", "c"]).load("all")
    assert s.label_map.symbols == ("a", "b", "c") and s.targets.tolist() == [0] * 10 + [1] * 10 + [2] * 10
    with pytest.raises(DataError, match="has no symbol"):
        CsvSource(path, symbols=["a", "b"]).load("all")


@pytest.mark.parametrize("first", [0, 1])
def test_mapping_file(tmp_path: Path, first: int) -> None:
    mapping = tmp_path / "mapping.txt"
    mapping.write_text("".join(f"{first + i} {ord(ch)}\n" for i, ch in enumerate("ABC")))
    rows = [(first + c, img) for c, img in _dataset()]
    src = CsvSource(_write(tmp_path / "x.csv", rows), mapping=mapping)
    s = src.load("all")
    assert src.label_offset == first
    assert s.label_map.symbols == ("A", "B", "C")
    assert s.targets.tolist() == [0] * 10 + [1] * 10 + [2] * 10


def test_mapping_and_symbols_together_rejected(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not both"):
        CsvSource(tmp_path / "x.csv", mapping=tmp_path / "m.txt", symbols=["a"])


def test_seeded_stratified_split(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.csv", _dataset(n_per_class=20))
    a = CsvSource(path, val_fraction=0.25, seed=3)
    train, val, every = a.load("train"), a.load("val"), a.load("all")
    assert len(train) + len(val) == len(every) == 60
    assert train.source == "csv:x.csv:train" and val.source == "csv:x.csv:val"
    assert np.bincount(val.targets).tolist() == [5, 5, 5]  # stratified
    keys = lambda s: {img.tobytes() for img in s.images}  # noqa: E731
    assert not keys(train) & keys(val)
    b = CsvSource(path, val_fraction=0.25, seed=3).load("val")
    assert np.array_equal(b.images, val.images)
    c = CsvSource(path, val_fraction=0.25, seed=4).load("val")
    assert not np.array_equal(c.images, val.images)
    with pytest.raises(DataError, match="no split 'test'"):
        a.load("test")


def test_parsed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hcr.data.csv_source as cs

    calls = []
    real = cs.read_pixel_csv
    monkeypatch.setattr(cs, "read_pixel_csv", lambda *a, **k: calls.append(1) or real(*a, **k))
    src = CsvSource(_write(tmp_path / "x.csv", _dataset()))
    src.load("train"), src.load("val"), src.label_map()
    assert len(calls) == 1


def test_az_missing_file_says_where_to_place_it(tmp_path: Path) -> None:
    src = AzCsvSource(data_dir=tmp_path)
    assert src.required_files() == [tmp_path / "az" / "A_Z Handwritten Data.csv"]
    with pytest.raises(DataError) as info:
        src.load("train")
    msg = str(info.value)
    assert "A_Z Handwritten Data.csv" in msg and str(tmp_path / "az") in msg and "Kaggle" in msg
    with pytest.raises(DataError, match="by hand|cannot be downloaded"):
        src.download()


def test_az_finds_any_csv_in_its_folder(tmp_path: Path) -> None:
    folder = tmp_path / "az"
    folder.mkdir()
    _write(folder / "letters.csv.gz", [(c, _glyph_l()) for c in range(26)])
    src = AzCsvSource(data_dir=tmp_path)
    assert src.required_files() == [folder / "letters.csv.gz"]
    s = src.load("all")
    assert len(s.label_map) == 26 and s.label_map[25] == "Z" and s.targets.tolist() == list(range(26))
    assert AzCsvSource.citation.startswith("A-Z Handwritten Alphabets") and CsvSource.citation == ""


def _shared_data() -> Path:
    env = os.environ.get("HCR_DATA_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


def test_real_az_csv() -> None:
    data = _shared_data()
    if not (data / "az" / "a_z_handwritten_dev.csv.gz").is_file():
        pytest.skip(f"real A-Z CSV not found under {data / 'az'} (set HCR_DATA_DIR to a folder with it)")
    src = AzCsvSource(data_dir=data)
    s = src.load("all")
    assert len(s) == 21_919
    assert s.images.shape == (21_919, 28, 28) and s.images.dtype == np.uint8
    assert len(np.unique(s.targets)) == 26 and len(s.label_map) == 26
    border = np.concatenate([s.images[:, :2].ravel(), s.images[:, -2:].ravel(), s.images[:, :, :2].ravel(), s.images[:, :, -2:].ravel()])
    centre_max = s.images[:, 8:20, 8:20].max(axis=(1, 2))
    assert border.mean() < 10 and centre_max.mean() > 200  # white ink on black
    train, val = src.load("train"), src.load("val")
    assert len(train) + len(val) == 21_919 and abs(len(val) / 21_919 - 0.1) < 0.01
