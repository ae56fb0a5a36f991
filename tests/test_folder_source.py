"""Images in one sub-folder per class."""

from __future__ import annotations

import warnings

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from hcr.data.folder import IMAGE_SUFFIXES, FolderSource
from hcr.errors import DataError


def _draw(path: Path, size: tuple[int, int], shape: str) -> None:
    """Dark ink on white paper, like a photo or scan of handwriting."""
    img = Image.new("L", size, 255)
    d = ImageDraw.Draw(img)
    w, h = size
    if shape == "bar":
        d.line([(w // 2, h // 6), (w // 2, 5 * h // 6)], fill=0, width=max(2, w // 8))
    else:
        d.ellipse([w // 5, h // 5, 4 * w // 5, 4 * h // 5], outline=0, width=max(2, w // 10))
    img.save(path)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "letters"
    for cls, shape in (("1", "bar"), ("O", "ring"), ("ok", "ring")):
        (root / cls).mkdir(parents=True)
        for i in range(6):
            suffix = (".png", ".JPG", ".jpeg")[i % 3]
            _draw(root / cls / f"s{i}{suffix}", (28 + 4 * i, 32 + 2 * i), shape)
    (root / "O" / "notes.txt").write_text("not an image")
    (root / "empty").mkdir()
    return root


def test_loads_classes_sizes_and_ids(tree: Path) -> None:
    src = FolderSource(tree)
    assert src.label_map().symbols == ("1", "O", "ok")
    s = src.load("all")
    assert len(s) == 18 and s.source == "folder:letters:all"
    assert isinstance(s.images, list) and all(im.dtype == np.uint8 and im.ndim == 2 for im in s.images)
    assert {im.shape for im in s.images} == {(32 + 2 * i, 28 + 4 * i) for i in range(6)}
    assert s.ids is not None and s.ids[:2] == ["1/s0.png", "1/s1.JPG"]
    assert s.targets.tolist() == [0] * 6 + [1] * 6 + [2] * 6
    first = s.images[0]
    assert first.mean() > 128 and first.min() < 64  # dark ink on white is kept as it is
    assert ".png" in IMAGE_SUFFIXES and src.required_files() == [tree]


def test_corrupt_file_is_skipped_with_a_warning(tree: Path) -> None:
    (tree / "O" / "x.png").write_bytes(np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8).tobytes())
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable image.*x\.png"):
        s = FolderSource(tree).load("all")
    assert len(s) == 18 and "O/x.png" not in (s.ids or [])


def test_nothing_readable(tmp_path: Path) -> None:
    (tmp_path / "A").mkdir()
    (tmp_path / "A" / "bad.png").write_bytes(b"garbage")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the reasons are in the one error, not in a warning before it
        with pytest.raises(DataError, match=r"no readable images in .*: 1 unreadable \(\S*A/bad\.png: not an image"):
            FolderSource(tmp_path).load("all")


def test_bad_roots(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        FolderSource(tmp_path / "missing").load("all")
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(DataError, match="not a folder"):
        FolderSource(tmp_path / "file.png").load("all")
    (tmp_path / "root").mkdir()
    with pytest.raises(DataError, match="no class folders"):
        FolderSource(tmp_path / "root").label_map()


def test_split_reproducible(tree: Path) -> None:
    a = FolderSource(tree, val_fraction=0.34, seed=5)
    train, val = a.load("train"), a.load("val")
    assert len(train) + len(val) == 18 and train.source == "folder:letters:train"
    assert np.bincount(val.targets).tolist() == [2, 2, 2]
    assert not set(train.ids or []) & set(val.ids or [])
    assert FolderSource(tree, val_fraction=0.34, seed=5).load("val").ids == val.ids
