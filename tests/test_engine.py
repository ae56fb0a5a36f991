"""Training, resuming, fine-tuning and evaluation (hcr.train.classify) plus the training recipe."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
import yaml
from helpers_train import (  # noqa: F401  (fixtures)
    digits_model,
    digits_test_split,
    hcr_cache,
    one_thread,
    quiet,
    single_thread,
)
from PIL import Image

from hcr.checkpoint import load_checkpoint, save_checkpoint
from hcr.config import SequenceConfig, TrainConfig, load_config
from hcr.errors import HcrError
from hcr.labels import LabelMap
from hcr.models import create_model
from hcr.predictor import Predictor
from hcr.train.classify import fit, init_from_checkpoint
from hcr.train.evaluate import evaluate_checkpoint

pytestmark = pytest.mark.usefixtures("single_thread", "hcr_cache")

REPO = Path(__file__).resolve().parents[1]

#: A tiny run: 400 training digits, validated on the test split (~360 digits).
TINY = dict(data="digits", val_split="test", model="seed-cnn", epochs=2, batch_size=64, lr=0.003, augment="light", max_train_samples=400, seed=0)

#: history columns that must be reproducible (the rest are timings)
STABLE = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr")


def _stable(history: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [tuple(row[k] for k in STABLE) for row in history]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path).state_dict


def _same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, hcr_cache: Path) -> tuple[Path, Any]:  # noqa: F811
    out = tmp_path_factory.mktemp("tiny")
    with one_thread():
        return out, fit(TrainConfig(**TINY), out, progress=False, log=quiet)


# --------------------------------------------------------------------------- fit


def test_fit_writes_the_run_folder(tiny_run: tuple[Path, Any]) -> None:
    out, res = tiny_run
    for name in ("best.pt", "last.pt", "history.csv", "history.json", "learning_curve.png", "config.yaml"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert res.best_path == out / "best.pt" and res.last_path == out / "last.pt"

    history = json.loads((out / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2]
    for row in history:
        assert {"epoch", "train_loss", "val_acc"} <= set(row)
        assert np.isfinite(row["train_loss"]) and 0.0 <= row["val_acc"] <= 1.0
    assert history == res.history
    rows = list(csv.DictReader((out / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert [float(r["train_loss"]) for r in rows] == [r["train_loss"] for r in history]
    with Image.open(out / "learning_curve.png") as im:
        assert im.format == "PNG" and im.size[0] > 100

    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert TrainConfig.from_dict(cfg) == TrainConfig(**TINY)

    best = load_checkpoint(out / "best.pt")
    assert "best_val_acc" in best.metrics
    assert best.metrics["best_val_acc"] == pytest.approx(max(r["val_acc"] for r in history), abs=1e-5)
    assert res.best_val_acc == best.metrics["best_val_acc"]
    n_test = len(digits_test_split()[1])
    assert best.metrics["train_samples"] == 400 and best.metrics["val_samples"] == n_test
    assert best.model_name == "seed-cnn" and best.label_map.symbols == tuple("0123456789")
    assert best.train_state is None  # best.pt is a lean model file
    last = load_checkpoint(out / "last.pt")
    assert last.train_state is not None and last.train_state["epoch"] == 2
    assert last.metrics["epoch"] == 2
    # the model file is usable straight away
    Predictor.load(out / "best.pt")


def test_same_seed_same_run_different_seed_different_run(tiny_run: tuple[Path, Any], tmp_path: Path) -> None:
    out, res = tiny_run
    again = fit(TrainConfig(**TINY), tmp_path / "again", progress=False, log=quiet)
    assert _stable(again.history) == _stable(res.history)
    assert [r["train_loss"] for r in again.history] == [r["train_loss"] for r in res.history]
    assert _same_weights(_weights(out / "last.pt"), _weights(tmp_path / "again" / "last.pt"))

    other = fit(TrainConfig(**{**TINY, "seed": 1}), tmp_path / "other", progress=False, log=quiet)
    assert [r["train_loss"] for r in other.history] != [r["train_loss"] for r in res.history]
    assert not _same_weights(_weights(out / "last.pt"), _weights(tmp_path / "other" / "last.pt"))


@pytest.mark.parametrize("rng_layout", ["current", "older"])
def test_resume_continues_exactly_where_it_stopped(tmp_path: Path, rng_layout: str) -> None:
    cfg = dict(TINY, epochs=3, max_train_samples=300)
    a = fit(TrainConfig(**cfg), tmp_path / "a", progress=False, log=quiet)

    def stop_after_epoch_2(line: str) -> None:
        # fit logs "epoch 2/3: ..." after last.pt of epoch 2 is saved
        if line.startswith("epoch 2/3"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(TrainConfig(**cfg), tmp_path / "b", progress=False, log=stop_after_epoch_2)
    assert load_checkpoint(tmp_path / "b" / "last.pt").train_state["epoch"] == 2
    if rng_layout == "older":  # as written before the shared layout (hcr.train.run.RunRngs)
        last = load_checkpoint(tmp_path / "b" / "last.pt")
        rng = last.train_state["rng"]
        last.train_state["rng"] = {"order": rng["torch"]["order"], "augment": rng["torch"]["augment"], "torch": rng["global"]}
        save_checkpoint(last, tmp_path / "b" / "last.pt")

    lines: list[str] = []
    # a different config object: the interrupted run's recipe must win
    b = fit(TrainConfig(**dict(cfg, epochs=99, lr=1.0)), tmp_path / "b", resume=True, progress=False, log=lines.append)
    assert any(line.startswith("resuming") and "epoch 3/3" in line for line in lines)
    assert [r["epoch"] for r in b.history] == [1, 2, 3]
    assert _stable(b.history) == _stable(a.history)
    assert _same_weights(_weights(tmp_path / "a" / "last.pt"), _weights(tmp_path / "b" / "last.pt"))
    assert _same_weights(_weights(tmp_path / "a" / "best.pt"), _weights(tmp_path / "b" / "best.pt"))
    assert b.best_val_acc == a.best_val_acc
    hist = json.loads((tmp_path / "b" / "history.json").read_text())
    assert _stable(hist) == _stable(a.history)


def test_resume_without_last_checkpoint_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(HcrError, match="last.pt"):
        fit(TrainConfig(**TINY), tmp_path / "empty", resume=True, progress=False, log=quiet)


# --------------------------------------------------------------------------- fine-tuning


def _draw(symbol: str, rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """Dark strokes on light paper, with random jitter."""
    img = np.full((size, size), 245, np.uint8)
    t = int(rng.integers(3, 6))
    cx, cy = size // 2 + int(rng.integers(-4, 5)), size // 2 + int(rng.integers(-4, 5))
    if symbol == "0":
        axes = (int(rng.integers(10, 15)), int(rng.integers(17, 22)))
        cv2.ellipse(img, (cx, cy), axes, float(rng.uniform(-15, 15)), 0, 360, 20, t, cv2.LINE_AA)
    elif symbol == "1":
        dx = int(rng.integers(-4, 5))
        cv2.line(img, (cx + dx, cy - 20), (cx - dx, cy + 20), 20, t, cv2.LINE_AA)
    else:  # "X"
        h, w = int(rng.integers(15, 21)), int(rng.integers(12, 19))
        cv2.line(img, (cx - w, cy - h), (cx + w, cy + h), 20, t, cv2.LINE_AA)
        cv2.line(img, (cx + w, cy - h), (cx - w, cy + h), 20, t, cv2.LINE_AA)
    return img


@pytest.fixture(scope="module")
def symbol_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("symbols")
    rng = np.random.default_rng(0)
    for symbol in ("0", "1", "X"):
        (root / symbol).mkdir()
        for i in range(30):
            Image.fromarray(_draw(symbol, rng)).save(root / symbol / f"{i:02d}.png")
    return root


def test_init_from_checkpoint_carries_matching_classes(digits_model) -> None:  # noqa: F811
    old = load_checkpoint(digits_model.best)
    old_model = old.build_model()
    labels = LabelMap(("0", "1", "X"))
    torch.manual_seed(0)
    model = create_model("seed-cnn", len(labels))
    carried = init_from_checkpoint(model, old, labels)
    assert carried == 2
    new_sd, old_sd = model.state_dict(), old_model.state_dict()
    head = "classifier.4"
    for k in old_sd:
        if not k.startswith(head):
            assert torch.equal(new_sd[k], old_sd[k]), k
    assert new_sd[f"{head}.weight"].shape == (3, 128)
    for new_i, old_i in ((0, 0), (1, 1)):  # "0" and "1" keep their rows
        assert torch.equal(new_sd[f"{head}.weight"][new_i], old_sd[f"{head}.weight"][old_i])
        assert torch.equal(new_sd[f"{head}.bias"][new_i], old_sd[f"{head}.bias"][old_i])
    # "X" is new: it keeps its fresh initialisation, not a copy of an old row
    assert not any(torch.equal(new_sd[f"{head}.weight"][2], old_sd[f"{head}.weight"][j]) for j in range(10))


def test_init_from_checkpoint_refuses_another_architecture(digits_model) -> None:  # noqa: F811
    with pytest.raises(HcrError, match="seed-cnn"):
        init_from_checkpoint(create_model("hcr-cnn", 3), load_checkpoint(digits_model.best), LabelMap(("0", "1", "X")))


def test_finetune_onto_a_different_label_set(digits_model, symbol_folder: Path, tmp_path: Path) -> None:  # noqa: F811
    lines: list[str] = []
    cfg = TrainConfig(
        data=f"folder:{symbol_folder}", val_split="val", model="seed-cnn", epochs=5, batch_size=16,
        lr=0.003, augment="none", seed=0, finetune=str(digits_model.best),
    )
    res = fit(cfg, tmp_path / "ft", progress=False, log=lines.append)
    assert any("2/3 classes carried over" in line for line in lines), lines
    ckpt = load_checkpoint(res.best_path)
    assert ckpt.label_map.symbols == ("0", "1", "X")
    assert ckpt.metrics["val_samples"] == 9
    assert res.best_val_acc > 0.8, res.history
    # the fine-tuned model reads the new symbol
    pred = Predictor.load(res.best_path)
    rng = np.random.default_rng(99)
    got = [p.label for p in pred.predict([_draw(s, rng) for s in ("X", "X", "X", "0", "1")])]
    assert got.count("X") >= 2


# --------------------------------------------------------------------------- evaluation


def test_evaluate_checkpoint_writes_a_consistent_report(digits_model, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "report"
    rep = evaluate_checkpoint(digits_model.best, "digits", "test", out, device="cpu", progress=False)
    for name in ("metrics.json", "report.md", "confusion.png", "confusion.csv", "reliability.png", "errors.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    for name in ("confusion.png", "reliability.png", "errors.png"):
        with Image.open(out / name) as im:
            assert im.format == "PNG"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(rep["accuracy"], abs=1e-12)
    assert metrics["split"] == "test" and metrics["data"] == "digits"

    # recompute from the public prediction path on the raw test images
    images, targets = digits_test_split()
    preds = Predictor.load(digits_model.best).predict(list(images), top_k=1)
    labels = np.array([-1 if p.label is None else int(p.label) for p in preds])
    assert abs(metrics["accuracy"] - float(np.mean(labels == targets))) <= 1e-9
    assert metrics["accuracy"] > 0.8  # the session model learnt something

    cm = np.loadtxt(out / "confusion.csv", delimiter=",", dtype=str)
    counts = cm[1:, 1:].astype(int)
    assert counts.sum() == len(targets)
    assert np.trace(counts) == int(np.sum(labels == targets))

    report = (out / "report.md").read_text()
    assert rep["data_description"] in report
    assert f"digits (test split), {len(targets):,} images" in report


# --------------------------------------------------------------------------- recipes


def test_config_unknown_key_is_named() -> None:
    with pytest.raises(HcrError, match="bogus_option"):
        TrainConfig.from_dict({"epochs": 1, "bogus_option": 3})


def test_config_bad_optimizer(tmp_path: Path) -> None:
    with pytest.raises(HcrError, match="sgd"):
        TrainConfig(optimizer="sgd").validate()
    with pytest.raises(HcrError, match="optimizer"):
        fit(TrainConfig(**dict(TINY, optimizer="sgd")), tmp_path / "bad", progress=False, log=quiet)
    assert not (tmp_path / "bad").exists()  # refused before anything is written


@pytest.mark.parametrize("bad", [dict(epochs=0), dict(batch_size=0), dict(schedule="linear"), dict(val_fraction=1.0)])
def test_config_validate_rejects(bad: dict[str, Any]) -> None:
    with pytest.raises(HcrError):
        TrainConfig(**bad).validate()


def test_config_updated_ignores_none() -> None:
    base = TrainConfig(epochs=7, lr=0.01)
    new = base.updated(epochs=None, lr=None, model="hcr-cnn", seed=None, batch_size=32)
    assert (new.epochs, new.lr, new.model, new.seed, new.batch_size) == (7, 0.01, "hcr-cnn", 0, 32)
    assert base.model == "seed-cnn" and base.batch_size == 128  # a copy
    with pytest.raises(HcrError, match="nope"):
        base.updated(nope=1)


@pytest.mark.parametrize("recipe", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_recipe_loads(recipe: Path) -> None:
    from hcr.data import SOURCES
    from hcr.models import list_models

    cfg = load_config(recipe)
    cfg.validate()
    if isinstance(cfg, SequenceConfig):  # a word/line recipe: line data sets, a sequence model
        assert cfg.model in list_models("sequence")
        assert all(d.split(":")[0] in ("lines", "dhsd", "synth", "fonts") for d in cfg.data)
        assert all(d.split(":", 1)[1] in SOURCES for d in cfg.data if d.startswith("synth:"))
        return
    assert cfg.model in list_models("classify") and cfg.data.split(":")[0] in SOURCES
    # test splits are for `hcr evaluate` only: recipes never validate on them
    assert cfg.val_split not in ("test", "dev-val")


def test_missing_recipe() -> None:
    with pytest.raises(HcrError, match="not found"):
        load_config(REPO / "configs" / "missing.yaml")


def test_evaluate_only_the_classes_the_model_knows(digits_model, symbol_folder: Path, tmp_path: Path) -> None:  # noqa: F811
    """A digits model on a set with letters: refused by default, or scored on the digits only."""
    data = f"folder:{symbol_folder}"
    with pytest.raises(HcrError, match="does not know.*'X'.*known-classes-only"):
        evaluate_checkpoint(digits_model.best, data, "all", tmp_path / "a", progress=False)
    rep = evaluate_checkpoint(digits_model.best, data, "all", tmp_path / "b", progress=False, known_classes_only=True)
    assert rep["num_samples"] == 60 and rep["left_out_unknown_classes"] == 30
    assert "60 samples of classes the model knows (30 others left out)" in rep["data_description"]
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["num_samples"] == 60
