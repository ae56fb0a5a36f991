"""IDX files, MNIST and EMNIST: synthetic files in the official layout, and the real data when present."""

from __future__ import annotations

import gzip
import string
import struct
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from hcr.data import download as dl
from hcr.data.idx import read_idx, read_idx_pair
from hcr.data.mnist import _MNIST_FILES, EmnistSource, MnistSource
from hcr.errors import DataError
from hcr.preprocess import preprocess

# --------------------------------------------------------------------------- IDX writing


def idx_bytes(arr: np.ndarray) -> bytes:
    codes = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">i2"): 0x0B, np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D}
    dt = arr.dtype.newbyteorder(">") if arr.dtype.itemsize > 1 else arr.dtype
    header = bytes([0, 0, codes[np.dtype(dt)], arr.ndim]) + b"".join(struct.pack(">I", n) for n in arr.shape)
    return header + arr.astype(dt).tobytes()


def write_idx(path: Path, arr: np.ndarray) -> Path:
    data = idx_bytes(arr)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


# --------------------------------------------------------------------------- read_idx


@pytest.mark.parametrize("name", ["imgs-idx3-ubyte", "imgs-idx3-ubyte.gz"])
def test_read_idx_round_trip(tmp_path: Path, name: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (5, 7, 6), dtype=np.uint8)
    out = read_idx(write_idx(tmp_path / name, x))
    assert out.dtype == np.uint8 and out.shape == (5, 7, 6)
    np.testing.assert_array_equal(out, x)


def test_read_idx_big_endian_types(tmp_path: Path) -> None:
    ints = np.array([1, -2, 70000, 2**30], dtype=">i4")
    out = read_idx(write_idx(tmp_path / "ints.idx", ints))
    np.testing.assert_array_equal(out, [1, -2, 70000, 2**30])
    floats = np.array([[0.5, -1.25]], dtype=">f4")
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "f.idx.gz", floats)), floats.astype(np.float32))


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_idx_data(tmp_path: Path, gz: bool) -> None:
    data = idx_bytes(np.zeros((10, 28, 28), np.uint8))[:-100]
    path = tmp_path / ("short-idx3-ubyte" + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(DataError, match="truncated") as err:
        read_idx(path)
    assert path.name in str(err.value)


def test_truncated_gzip_stream(tmp_path: Path) -> None:
    blob = gzip.compress(idx_bytes(np.arange(3000, dtype=np.uint8).reshape(3, 1000) % 251))
    path = tmp_path / "cut-idx1-ubyte.gz"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError) as err:
        read_idx(path)
    assert path.name in str(err.value)


def test_truncated_header(tmp_path: Path) -> None:
    path = tmp_path / "hdr-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 8, 3, 0, 0, 0, 10]))
    with pytest.raises(DataError, match="hdr-idx3-ubyte"):
        read_idx(path)


@pytest.mark.parametrize("magic", [b"\x1f\x8b\x08\x03", b"\x00\x01\x08\x01", b"\x00\x00\x07\x01", b"PK\x03\x04"])
def test_bad_magic(tmp_path: Path, magic: bytes) -> None:
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(magic + struct.pack(">I", 4) + b"\x00" * 4)
    with pytest.raises(DataError, match="magic") as err:
        read_idx(path)
    assert path.name in str(err.value)


def test_missing_idx_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nothing-idx3-ubyte.gz"):
        read_idx(tmp_path / "nothing-idx3-ubyte.gz")


def test_mismatched_counts(tmp_path: Path) -> None:
    imgs = write_idx(tmp_path / "i-idx3-ubyte.gz", np.zeros((5, 28, 28), np.uint8))
    labs = write_idx(tmp_path / "l-idx1-ubyte.gz", np.zeros(4, np.uint8))
    with pytest.raises(DataError) as err:
        read_idx_pair(imgs, labs)
    assert "i-idx3-ubyte.gz" in str(err.value) and "l-idx1-ubyte.gz" in str(err.value)
    with pytest.raises(DataError):  # images and labels swapped: wrong ranks
        read_idx_pair(labs, imgs)
    x, y = read_idx_pair(imgs, write_idx(tmp_path / "ok-idx1-ubyte.gz", np.arange(5, dtype=np.uint8)))
    assert x.dtype == np.uint8 and y.dtype == np.int64 and len(x) == len(y) == 5


# --------------------------------------------------------------------------- EMNIST, synthetic official layout


def upright_bar(label: int) -> np.ndarray:
    """A 28x28 glyph that is not symmetric under transposition: a bar along the top and a short
    stem on the left; ``label`` extra pixels mark the sample."""
    img = np.zeros((28, 28), np.uint8)
    img[3:7, 4:24] = 255  # horizontal bar at the top
    img[7:14, 4:8] = 200  # short stem down the left
    img[20, 10 : 10 + label] = 100
    return img


@pytest.fixture
def letters_dir(tmp_path: Path) -> Path:
    """A data dir with EMNIST Letters files as published: transposed images, classes from 1."""
    root = tmp_path / "data"
    em = root / "emnist"
    em.mkdir(parents=True)
    (em / "emnist-letters-mapping.txt").write_text(
        "".join(f"{i + 1} {ord(u)} {ord(lo)}\n" for i, (u, lo) in enumerate(zip(string.ascii_uppercase, string.ascii_lowercase)))
    )
    for split, labels in (("train", [1, 2, 3, 26, 1, 5]), ("test", [26, 1, 2]), ("dev-train", [4, 4])):
        upright = np.stack([upright_bar(i % 8) for i in range(len(labels))])
        stored = np.ascontiguousarray(upright.transpose(0, 2, 1))  # EMNIST stores columns first
        write_idx(em / f"emnist-letters-{split}-images-idx3-ubyte.gz", stored)
        write_idx(em / f"emnist-letters-{split}-labels-idx1-ubyte.gz", np.array(labels, np.uint8))
    return root


def test_emnist_images_are_upright_and_labels_start_at_zero(letters_dir: Path) -> None:
    src = EmnistSource("letters", letters_dir)
    s = src.load("train")
    assert s.images.shape == (6, 28, 28)
    for i, img in enumerate(s.images):
        np.testing.assert_array_equal(img, upright_bar(i % 8))
    assert img[3:7, 4:24].min() == 255  # the bar is at the top (stored, it ran down the left)
    assert not np.array_equal(upright_bar(0), upright_bar(0).T)  # the check can tell
    assert s.targets.tolist() == [0, 1, 2, 25, 0, 4]
    assert [s.label_map[t] for t in s.targets] == ["A", "B", "C", "Z", "A", "E"]
    assert s.label_map.symbols == tuple(string.ascii_uppercase)
    assert src.load("test").targets.tolist() == [25, 0, 1]


def test_emnist_custom_splits_on_disk(letters_dir: Path) -> None:
    src = EmnistSource("letters", letters_dir)
    assert "dev-train" in src.splits and "train" in src.splits and "test" in src.splits
    s = src.load("dev-train")
    assert len(s) == 2 and s.targets.tolist() == [3, 3]
    np.testing.assert_array_equal(s.images[1], upright_bar(1))
    with pytest.raises(DataError) as err:
        src.load("validation")
    msg = str(err.value)
    assert "validation" in msg and all(name in msg for name in ("train", "test", "dev-train"))


def test_emnist_custom_split_with_missing_labels(letters_dir: Path) -> None:
    (letters_dir / "emnist" / "emnist-letters-dev-train-labels-idx1-ubyte.gz").unlink()
    src = EmnistSource("letters", letters_dir)
    with pytest.raises(DataError, match="emnist-letters-dev-train-labels-idx1-ubyte.gz"):
        src.load("dev-train")


def test_emnist_unknown_subset(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="byclass"):
        EmnistSource("klingon", tmp_path)


def test_emnist_byclass_synthetic_mapping_from_zero(tmp_path: Path) -> None:
    em = tmp_path / "emnist"
    em.mkdir()
    symbols = string.digits + string.ascii_uppercase + string.ascii_lowercase
    (em / "emnist-byclass-mapping.txt").write_text("".join(f"{i} {ord(c)}\n" for i, c in enumerate(symbols)))
    stored = np.stack([upright_bar(0).T, upright_bar(1).T])
    write_idx(em / "emnist-byclass-dev-val-images-idx3-ubyte.gz", stored)
    write_idx(em / "emnist-byclass-dev-val-labels-idx1-ubyte.gz", np.array([0, 61], np.uint8))
    src = EmnistSource("byclass", tmp_path)
    assert src.default_val_split == "dev-val"
    s = src.load("dev-val")
    assert s.targets.tolist() == [0, 61] and [s.label_map[t] for t in s.targets] == ["0", "z"]
    np.testing.assert_array_equal(s.images[0], upright_bar(0))


# --------------------------------------------------------------------------- MNIST offline


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("network blocked by the test")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)


def test_mnist_offline_error_says_what_to_place_where(tmp_path: Path, offline: None) -> None:
    with pytest.raises(DataError) as err:
        MnistSource(tmp_path).load("test")
    msg = str(err.value)
    assert str(tmp_path / "mnist") in msg
    assert "t10k-images-idx3-ubyte.gz" in msg
    assert "network blocked by the test" in msg
    assert not list((tmp_path / "mnist").glob(".*.part"))


def test_mnist_offline_error_lists_every_missing_file(tmp_path: Path, offline: None) -> None:
    # both files of the split are missing: the user must learn about both at once, not
    # fetch one, retry, and only then hear about the other
    with pytest.raises(DataError) as err:
        MnistSource(tmp_path).load("test")
    msg = str(err.value)
    assert "t10k-images-idx3-ubyte.gz" in msg
    assert "t10k-labels-idx1-ubyte.gz" in msg


def test_mnist_unknown_split(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="train, test"):
        MnistSource(tmp_path).load("validation")


# --------------------------------------------------------------------------- real data


@pytest.fixture
def private_verify_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep verification records of the (read-only) shared data out of the user's cache."""
    where = tmp_path / "verified"
    monkeypatch.setattr(dl, "_fallback_dir", lambda: where)
    return where


def test_real_mnist_test_split(real_data_dir: Path, private_verify_cache: Path) -> None:
    if not (real_data_dir / "mnist" / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip(f"MNIST not found in {real_data_dir / 'mnist'}")
    s = MnistSource(real_data_dir).load("test")
    assert len(s) == 10_000
    assert s.images.shape == (10_000, 28, 28) and s.images.dtype == np.uint8
    counts = s.class_counts()
    assert list(counts) == list("0123456789")
    assert sum(counts.values()) == 10_000 and min(counts.values()) > 800
    # MNIST digits as PNG-like arrays go through preprocess without being called blank
    for img in s.images[:20]:
        assert not preprocess(img).blank


def test_real_mnist_files_pass_checksums(real_data_dir: Path, private_verify_cache: Path) -> None:
    mnist = real_data_dir / "mnist"
    if not mnist.is_dir():
        pytest.skip(f"MNIST not found in {mnist}")
    for rf in MnistSource(real_data_dir).remote_files():
        if not rf.filename.startswith("t10k"):
            continue  # the train files verify the same way; skip hashing 10 MB
        path = mnist / rf.filename
        assert dl._checksum_problem(path, rf) is None, rf.filename
        dl.verify_file(path, rf)
        if dl.file_md5(path) != rf.md5:
            # re-compressed by hand: accepted only because the gunzipped content matches
            assert dl.file_md5(path, gunzip=True) == _MNIST_FILES[rf.filename][1]
            strict = dl.RemoteFile(rf.filename, rf.urls, md5=rf.md5)
            assert dl._checksum_problem(path, strict) is not None


def test_real_emnist_byclass_dev_val(real_data_dir: Path) -> None:
    if not (real_data_dir / "emnist" / "emnist-byclass-dev-val-images-idx3-ubyte.gz").exists():
        pytest.skip(f"EMNIST ByClass dev files not found in {real_data_dir / 'emnist'}")
    src = EmnistSource("byclass", real_data_dir)
    assert {"dev-train", "dev-val"} <= set(src.splits)
    assert src.default_val_split == "dev-val"
    s = src.load("dev-val")
    assert len(s) == 11_688 and s.images.shape[1:] == (28, 28)
    assert len(s.label_map) == 62 and len(np.unique(s.targets)) == 62
    assert s.targets.min() == 0 and s.targets.max() == 61

    def mean_of(symbol: str) -> np.ndarray:
        sel = s.images[s.targets == s.label_map.index(symbol)]
        assert len(sel) >= 30, symbol
        return sel.astype(np.float64).mean(axis=0)

    def halves(m: np.ndarray) -> dict[str, float]:
        return {"left": m[:, :14].sum(), "right": m[:, 14:].sum(), "top": m[:10].sum(), "bottom": m[-10:].sum()}

    def looks_like_L(m: np.ndarray) -> bool:
        h = halves(m)
        return h["left"] > 1.4 * h["right"] and h["bottom"] > 1.5 * h["top"]

    def looks_like_7(m: np.ndarray) -> bool:
        h = halves(m)
        return h["top"] > 1.5 * h["bottom"] and h["right"] > 1.2 * h["left"]

    mean_l, mean_7 = mean_of("L"), mean_of("7")
    assert looks_like_L(mean_l), halves(mean_l)
    assert looks_like_7(mean_7), halves(mean_7)
    # the checks tell orientations apart: as stored in the file (transposed) or mirrored they fail
    for wrong in (mean_l.T, mean_l[:, ::-1], mean_l[::-1]):
        assert not looks_like_L(wrong)
    for wrong in (mean_7.T, mean_7[:, ::-1], mean_7[::-1]):
        assert not looks_like_7(wrong)
