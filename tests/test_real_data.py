"""Smoke runs of the real entry points on the real data sets (skipped when absent)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hcr.cli import main


def test_train_and_evaluate_on_the_emnist_subset(real_data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    rc = main(["train", "--data", "emnist-byclass", "--data-dir", str(real_data_dir), "--model", "seed-cnn",
               "--epochs", "3", "--max-train-samples", "6000", "--out", str(run), "--no-progress"])
    assert rc == 0 and (run / "best.pt").exists()
    out = capsys.readouterr().out
    assert "emnist-byclass:dev-train" in out  # the dev subset is picked when the official files are absent
    rc = main(["evaluate", str(run / "best.pt"), "--data", "emnist-byclass", "--data-dir", str(real_data_dir),
               "--out", str(tmp_path / "eval"), "--no-progress"])
    assert rc == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["num_samples"] == 11688 and metrics["split"] == "dev-val"
    assert "not the official EMNIST test set" in metrics["data_description"]
    # 62 classes, chance is ~1/62 (or ~10% by always answering the commonest digit)
    assert metrics["accuracy"] > 0.3
    assert metrics["case_merged_accuracy"] >= metrics["accuracy"]
    assert len(metrics["confusion"]) == 62


def test_train_on_the_az_csv(real_data_dir: Path, tmp_path: Path) -> None:
    rc = main(["train", "--data", "az-csv", "--data-dir", str(real_data_dir), "--model", "seed-cnn",
               "--epochs", "3", "--max-train-samples", "4000", "--out", str(tmp_path / "az"), "--no-progress"])
    assert rc == 0
    from hcr.checkpoint import load_checkpoint

    ckpt = load_checkpoint(tmp_path / "az" / "best.pt")
    assert ckpt.label_map.symbols == tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    assert ckpt.metrics["best_val_acc"] > 0.3
