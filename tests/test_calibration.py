"""Temperature scaling: fitted on held-out data, stored in the model file, used everywhere."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers_train import digits_model, hcr_cache, single_thread  # noqa: F401  (fixtures)

from hcr.checkpoint import load_checkpoint, save_checkpoint
from hcr.cli import main
from hcr.errors import ModelFileError
from hcr.predictor import Predictor
from hcr.train.classify import fit_temperature


def test_fit_temperature_recovers_a_known_temperature() -> None:
    # labels drawn from softmax(z): z is calibrated, so z * 3 needs T = 3 to be calibrated again
    g = torch.Generator().manual_seed(0)
    z = torch.randn(20000, 10, generator=g) * 2.0
    y = torch.multinomial(torch.softmax(z, 1), 1, generator=g)[:, 0]
    assert fit_temperature(z * 3.0, y) == pytest.approx(3.0, rel=0.05)
    assert fit_temperature(z / 2.0, y) == pytest.approx(0.5, rel=0.05)


def test_training_stores_a_fitted_temperature_and_the_predictor_uses_it(digits_model, tmp_path: Path) -> None:  # noqa: F811
    ckpt = load_checkpoint(digits_model.best)
    assert ckpt.temperature != 1.0
    assert ckpt.metrics["val_ece_after"] <= ckpt.metrics["val_ece_before"]
    p = Predictor.load(digits_model.best)
    assert p.temperature == ckpt.temperature
    image = np.zeros((28, 28), np.uint8)
    image[4:24, 12:16] = 255  # a "1"
    calibrated = p.predict(image).confidence
    p.temperature = 1.0
    assert p.predict(image).confidence != pytest.approx(calibrated)


def test_calibrate_command_refits_in_place(digits_model, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    path = tmp_path / "m.pt"
    shutil.copy(digits_model.best, path)
    ckpt = load_checkpoint(path)
    fitted = ckpt.temperature
    ckpt.temperature = 1.0
    save_checkpoint(ckpt, path)
    assert main(["calibrate", str(path), "--no-progress"]) == 0
    assert "temperature" in capsys.readouterr().out
    assert load_checkpoint(path).temperature == pytest.approx(fitted, rel=1e-3)


@pytest.mark.parametrize("bad", [{"temperature": 0.0}, {"temperature": "hot"}, {"temperature": float("nan")}, "x"])
def test_tampered_calibration_is_refused(digits_model, tmp_path: Path, bad: object) -> None:  # noqa: F811
    d = torch.load(digits_model.best, weights_only=True)
    d["calibration"] = bad
    path = tmp_path / "bad.pt"
    torch.save(d, path)
    with pytest.raises(ModelFileError, match="bad.pt"):
        load_checkpoint(path)
