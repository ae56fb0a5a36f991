"""benchmarks/learning_curve.py: the log-linear fit, and a short curve on the embedded digits."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
import yaml

from hcr.errors import HcrError
from helpers_train import hcr_cache, one_thread  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("learning_curve", ROOT / "benchmarks" / "learning_curve.py")
assert spec and spec.loader
lc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lc)


def test_the_fit_reads_as_points_per_doubling() -> None:
    a, b = lc.log_fit([1000, 2000, 4000], [0.80, 0.82, 0.84])
    assert b == pytest.approx(0.02) and a == pytest.approx(0.80 - 0.02 * math.log2(1000))
    assert lc.size_for(0.86, a, b) == pytest.approx(8000)
    assert lc.size_for(0.9, a, 0.0) == math.inf  # a flat curve never gets there
    with pytest.raises(HcrError, match="two different training sizes"):
        lc.log_fit([500, 500], [0.8, 0.81])


def test_a_short_curve_trains_each_part_and_resumes(hcr_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(dict(data="digits", val_split="test", model="seed-cnn", epochs=2, batch_size=64, lr=0.003, seed=0)))
    args = ["--config", str(cfg), "--fractions", "0.5", "1", "--eval-data", "digits", "--target", "0.99", "--out", str(tmp_path / "curve")]
    with one_thread():
        assert lc.main(args) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ") and line[2].isdigit()]
    sizes = [int(r.split("|")[1].replace(",", "")) for r in rows]
    full = json.loads((tmp_path / "curve" / "tiny-all" / "learning-curve.json").read_text())
    assert len(rows) == 2 and sizes[1] == full["train_images"] and abs(sizes[0] - sizes[1] / 2) <= 1
    assert 0 < full["accuracy"] <= 1 and "digits" in full["evaluated_on"]
    assert "each doubling adds" in out and "training images" in out
    # a second run reuses the finished parts instead of training again
    stamp = (tmp_path / "curve" / "tiny-all" / "best.pt").stat().st_mtime_ns
    assert lc.main(args) == 0
    assert (tmp_path / "curve" / "tiny-all" / "best.pt").stat().st_mtime_ns == stamp
    assert capsys.readouterr().out == out
