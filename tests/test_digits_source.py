"""The embedded handwritten digits (the UCI data as scikit-learn ships them, stored in hcr)."""

from __future__ import annotations

import numpy as np

from hcr.data.digits import DigitsSource


def test_digits_splits_and_images() -> None:
    src = DigitsSource()
    every, train, test = src.load("all"), src.load("train"), src.load("test")
    assert len(every) == 1797 and src.label_map().symbols == tuple("0123456789")
    assert len(train) + len(test) == 1797 and abs(len(test) / 1797 - 0.2) < 0.01
    assert np.bincount(test.targets).min() >= 30  # stratified: every digit is tested
    assert every.images.shape == (1797, 32, 32) and every.images.dtype == np.uint8
    assert train.source == "digits:train" and src.default_val_split == "test"
    keys = lambda s: {im.tobytes() + bytes([t]) for im, t in zip(s.images, s.targets)}  # noqa: E731
    assert not keys(train) & keys(test) and keys(train) | keys(test) == keys(every)
    sides = np.concatenate([every.images[:, :, 0].ravel(), every.images[:, :, -1].ravel()])
    assert sides.mean() < 10 and every.images.max(axis=(1, 2)).min() > 200  # ink bright on dark
    assert np.median(every.images) < every.images.mean() < 128
    assert "Alpaydin" in DigitsSource.citation and src.required_files() == []


def test_test_split_is_fixed_whatever_the_seed() -> None:
    a = DigitsSource(seed=0).load("test")
    b = DigitsSource(val_fraction=0.3, seed=123).load("test")
    assert np.array_equal(a.images, b.images) and np.array_equal(a.targets, b.targets)


def test_the_embedded_arrays_are_scikit_learns_digits() -> None:
    from hcr.data.digits import load_raw

    images, target = load_raw()
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8 and images.max() == 16
    assert np.bincount(target).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        return  # scikit-learn is no dependency; the class counts above still pin the data
    bunch = load_digits()
    assert np.array_equal(images, bunch.images) and np.array_equal(target, bunch.target)


def test_loading_the_digits_needs_no_scikit_learn() -> None:
    import subprocess
    import sys

    code = ("import sys; sys.modules['sklearn'] = None; sys.modules['scipy'] = None\n"
            "from hcr.data.digits import DigitsSource\n"
            "print(len(DigitsSource().load('all')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "1797", out.stderr
