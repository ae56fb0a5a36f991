from __future__ import annotations

import csv
import json
import string
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hcr.metrics import classification_report
from hcr.modelfile import write_atomic as atomic_write_text
from hcr.report import (
    plot_confusion,
    plot_gallery,
    plot_history,
    write_confusion_csv,
    write_evaluation_report,
)

SYMBOLS = list(string.digits + string.ascii_uppercase + string.ascii_lowercase)
DATA = "EMNIST ByClass subset (dev-val), 300 random samples | seed 0"
CREDITS = ["EMNIST: Cohen et al. 2017 (CC0)", "NIST Special Database 19"]


def _problem(n: int, c: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random images, labels and softmax probs that are right about half the time."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    logits = rng.normal(size=(n, c))
    logits[np.arange(n), y] += rng.choice([0.0, 6.0], size=n)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return rng.random((n, 28, 28)), y, probs


@pytest.fixture(scope="module")
def full_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path], np.ndarray, np.ndarray]:
    images, y, probs = _problem(300, 62)
    out = tmp_path_factory.mktemp("eval") / "run"
    rep = classification_report(y, probs, SYMBOLS)
    paths = write_evaluation_report(out, rep, images, y, probs, SYMBOLS, title="Demo CNN evaluation",
                                    data_description=DATA, model_description="tiny CNN", credits=CREDITS)
    return out, paths, y, probs


def test_report_writes_all_files(full_report: tuple[Path, dict[str, Path], np.ndarray, np.ndarray]) -> None:
    out, paths, _, _ = full_report
    names = {"metrics.json", "report.md", "confusion.png", "confusion.csv", "reliability.png", "errors.png"}
    assert {p.name for p in paths.values()} == names
    assert all(p.parent == out and p.is_file() for p in paths.values())
    assert sorted(f.name for f in out.iterdir()) == sorted(names)  # no temp files left behind
    for name in ("confusion.png", "reliability.png", "errors.png"):
        with Image.open(out / name) as im:
            im.verify()
    with Image.open(out / "confusion.png") as im:
        assert im.width >= 1200 and im.height >= 1200


def test_report_metrics_json_matches_independent_accuracy(
    full_report: tuple[Path, dict[str, Path], np.ndarray, np.ndarray],
) -> None:
    out, _, y, probs = full_report
    data = json.loads((out / "metrics.json").read_text())
    expected = float(np.mean(probs.argmax(axis=1) == y))
    assert 0.2 < expected < 0.9
    assert data["accuracy"] == pytest.approx(expected)
    assert data["data_description"] == DATA and data["title"] == "Demo CNN evaluation"
    assert data["num_samples"] == 300 and len(data["confusion"]) == 62


def test_report_markdown(full_report: tuple[Path, dict[str, Path], np.ndarray, np.ndarray]) -> None:
    out, _, y, probs = full_report
    md = (out / "report.md").read_text()
    assert DATA in md
    assert all(c in md for c in CREDITS)
    assert "## Data credits" in md and "tiny CNN" in md
    assert f"| accuracy | {100 * np.mean(probs.argmax(axis=1) == y):.2f}% |" in md
    for png in ("confusion.png", "reliability.png", "errors.png"):
        assert f"]({png})" in md
    assert md.count("\n| `") >= 62  # one per-class row per symbol (plus confused pairs)


def test_report_confusion_csv_shape(full_report: tuple[Path, dict[str, Path], np.ndarray, np.ndarray]) -> None:
    out, _, y, _ = full_report
    with open(out / "confusion.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert len(rows) == 63 and all(len(r) == 63 for r in rows)
    assert rows[0] == ["", *SYMBOLS] and [r[0] for r in rows[1:]] == SYMBOLS
    assert sum(int(v) for r in rows[1:] for v in r[1:]) == len(y)


def test_confusion_csv_quotes_awkward_symbols(tmp_path: Path) -> None:
    symbols = [",", '"', "a"]
    cm = np.array([[1, 0, 2], [0, 3, 0], [4, 0, 5]])
    write_confusion_csv(cm, symbols, tmp_path / "c.csv")
    with open(tmp_path / "c.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["", ",", '"', "a"]
    assert rows[3] == ["a", "4", "0", "5"]


def test_report_without_errors_and_small_confusion(tmp_path: Path) -> None:
    symbols = ["0", "1", "$"]
    y = np.array([0, 1, 2, 2])
    probs = np.eye(3)[y] * 0.9 + 0.1 / 3
    rep = classification_report(y, probs, symbols)
    paths = write_evaluation_report(tmp_path / "r", rep, np.zeros((4, 28, 28)), y, probs, symbols,
                                    title="t", data_description="digits (test)")
    with Image.open(paths["errors"]) as im:
        assert im.width < 600  # the small "no errors" image
    assert "n/a" in paths["report"].read_text()  # no letters -> no case-merged accuracy
    with pytest.raises(ValueError, match="3 images but 4 labels"):
        write_evaluation_report(tmp_path / "bad", rep, np.zeros((3, 28, 28)), y, probs, symbols,
                                title="t", data_description="d")


def test_plot_confusion_rejects_mismatched_symbols(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not match"):
        plot_confusion(np.eye(3, dtype=int), ["a", "b"], tmp_path / "x.png")


def test_plot_gallery_grid(tmp_path: Path) -> None:
    images = np.random.default_rng(1).random((13, 28, 28))
    path = plot_gallery(images, [f"#{i}" for i in range(13)], tmp_path / "g.png", ncols=5, title="some")
    with Image.open(path) as im:
        assert im.width > im.height  # 5 columns x 3 rows
    with pytest.raises(ValueError, match="13 images but 2 titles"):
        plot_gallery(images, ["a", "b"], tmp_path / "h.png")


@pytest.mark.parametrize("with_val", [True, False])
def test_plot_history(tmp_path: Path, with_val: bool) -> None:
    history = [
        {"epoch": e, "train_loss": 2.0 / e, "train_acc": 0.5 + 0.1 * e,
         **({"val_loss": 2.2 / e, "val_acc": 0.45 + 0.1 * e} if with_val else {"val_loss": None})}
        for e in range(1, 4)
    ]
    path = plot_history(history, tmp_path / "h.png")
    with Image.open(path) as im:
        im.verify()
    with pytest.raises(ValueError, match="empty"):
        plot_history([], tmp_path / "e.png")


def test_atomic_write_text(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "a.txt"
    atomic_write_text(target, "one\n")
    atomic_write_text(target, "two\r\n")
    assert target.read_bytes() == b"two\r\n"
    assert [p.name for p in target.parent.iterdir()] == ["a.txt"]
