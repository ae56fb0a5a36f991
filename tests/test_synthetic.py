"""Training-time synthetic inputs: rendered copies of glyphs and doodle outliers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers_train import hcr_cache, one_thread, quiet, single_thread  # noqa: F401  (fixtures)

from hcr.config import TrainConfig
from hcr.errors import HcrError
from hcr.models import create_model
from hcr.predictor import Predictor
from hcr.preprocess import PreprocessSpec, preprocess
from hcr.synthetic import draw_outlier, outlier_inputs, rendered_copies
from hcr.train.classify import Split, build_optimizer, fit, train_epoch

pytestmark = pytest.mark.usefixtures("hcr_cache", "single_thread")
SPEC = PreprocessSpec()


def _inputs(glyph: np.ndarray, n: int) -> np.ndarray:
    base = preprocess(glyph, SPEC).image
    return np.stack([np.roll(base, i % 3 - 1, axis=1) for i in range(n)])


def test_rendered_copies_look_like_their_glyph_and_are_reproducible(glyph: np.ndarray, hcr_cache: Path) -> None:  # noqa: F811
    x = _inputs(glyph, 12)
    copies, ok = rendered_copies(x, SPEC, seed=3, workers=1)
    assert copies.shape == x.shape and copies.dtype == np.float32 and ok.all()
    # a photographed character, after preprocessing, is close to the clean input but not identical
    diff = np.abs(copies - x).mean(axis=(1, 2))
    assert (diff < 0.12).all() and (diff > 0).any()
    cached = list((hcr_cache / "hcr" / "rendered").glob("*.npz"))
    assert len(cached) == 1
    again, ok2 = rendered_copies(x, SPEC, seed=3, workers=1)  # from the cache
    np.testing.assert_array_equal(again, copies)
    cached[0].unlink()
    fresh, _ = rendered_copies(x, SPEC, seed=3, workers=2)  # recomputed, in two processes
    np.testing.assert_array_equal(fresh, copies)
    other, _ = rendered_copies(x, SPEC, seed=4, workers=1)
    assert not np.array_equal(other, copies)


def test_outliers_are_non_blank_doodles() -> None:
    d = draw_outlier(np.random.default_rng(0))
    assert d.dtype == np.uint8 and d.shape == (112, 112) and (d > 128).mean() > 0.03
    x = outlier_inputs(40, SPEC, seed=1, workers=1)
    assert 35 <= len(x) <= 40 and x.shape[1:] == (28, 28)
    assert (x.reshape(len(x), -1).max(axis=1) > 0.9).all()  # each one holds ink
    np.testing.assert_array_equal(outlier_inputs(40, SPEC, seed=1, workers=1), x)


def test_outlier_exposure_lowers_confidence_on_doodles() -> None:
    """The same tiny network trained with and without doodles: with them, unseen doodles
    get much lower confidence while the digits are learnt as well."""
    rng = np.random.default_rng(0)
    n = 600
    protos = [np.zeros((28, 28), np.float32) for _ in range(3)]
    protos[0][6:22, 13:15] = 1  # |
    protos[1][13:15, 6:22] = 1  # -
    protos[2][6:22, 6:22] = np.eye(16, dtype=np.float32)  # \\
    y = rng.integers(0, 3, n)
    x = np.stack([np.roll(protos[c], tuple(rng.integers(-3, 4, 2)), axis=(0, 1)) for c in y])
    train = Split(torch.from_numpy(x[:, None]), torch.from_numpy(y), x)
    doodles = torch.from_numpy(outlier_inputs(300, SPEC, seed=5, workers=1)[:, None].copy())
    held_out = doodles[200:]
    conf = {}
    for oe in (0.0, 0.25):
        torch.manual_seed(0)
        cfg = TrainConfig(model="seed-cnn", epochs=4, batch_size=32, outliers=oe, lr=0.003)
        model = create_model("seed-cnn", 3)
        opt, sched = build_optimizer(cfg, model, (n + 31) // 32)
        gen = torch.Generator().manual_seed(0)
        for _ in range(cfg.epochs):
            train_epoch(model, opt, sched, train, None, cfg, gen, torch.Generator().manual_seed(1), torch.device("cpu"),
                        progress=False, outliers=doodles[:200] if oe else None)
        model.eval()
        with torch.no_grad():
            acc = (model(train.x).argmax(1) == train.y).float().mean().item()
            conf[oe] = torch.softmax(model(held_out), 1).max(1).values.mean().item()
        assert acc > 0.95
    assert conf[0.25] < 0.6 < conf[0.0], conf


def test_fit_with_rendered_copies_and_outliers(tmp_path: Path) -> None:
    logs: list[str] = []
    cfg = TrainConfig(data="digits", model="seed-cnn", epochs=1, max_train_samples=300, render_fraction=0.5, render_pool=40,
                      outliers=0.25, outlier_pool=64, seed=0)
    with one_thread():
        fit(cfg, tmp_path / "run", progress=False, log=logs.append)
    assert any(line.startswith("rendered copies: 40 training images") for line in logs), logs
    assert any(line.startswith("outliers: ") and "32 per batch" in line for line in logs), logs
    assert Predictor.load(tmp_path / "run" / "best.pt").predict(draw_outlier(np.random.default_rng(1))).label is not None


@pytest.mark.parametrize("bad", [dict(render_fraction=1.5), dict(outliers=-0.1), dict(outlier_pool=0), dict(render_pool=-1)])
def test_config_rejects_bad_synthetic_options(bad: dict) -> None:
    with pytest.raises(HcrError):
        TrainConfig(**bad).validate()
