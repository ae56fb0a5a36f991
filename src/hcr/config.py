"""Training recipes: a dataclass, YAML files in ``configs/``, command-line overrides."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import yaml

from .errors import HcrError


@dataclass
class TrainConfig:
    """Everything that defines a training run; stored in every checkpoint."""

    data: str = "digits"  # data set spec (see ``hcr data list``)
    data_dir: str | None = None  # defaults to $HCR_DATA_DIR or the user cache
    data_options: dict[str, Any] = field(default_factory=dict)  # source options, e.g. {transpose: true} for csv
    train_split: str | None = None  # None: the source's default (official train, else a dev subset on disk)
    val_split: str | None = None  # a held-out split of the source; None: carve val_fraction off train
    val_fraction: float = 0.05
    max_train_samples: int | None = None  # cap (seeded subset) for quick runs
    model: str = "seed-cnn"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    preprocess: dict[str, Any] = field(default_factory=dict)  # PreprocessSpec overrides
    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "adamw"  # adamw | adam
    lr: float = 2e-3  # peak learning rate
    weight_decay: float = 1e-4
    schedule: str = "onecycle"  # onecycle | cosine | constant
    label_smoothing: float = 0.1
    augment: str | dict[str, Any] = "default"  # preset name or AugmentConfig fields
    render_fraction: float = 0.0  # share of training inputs drawn as photo-like renderings (hcr.synthetic)
    render_pool: int = 0  # how many training images get a rendered copy (seeded subset; 0 = all)
    outliers: float = 0.0  # doodles per batch, as a share of the batch size, trained towards "no class"
    outlier_weight: float = 0.5  # weight of the outliers' loss (KL divergence from the uniform distribution)
    outlier_pool: int = 8000  # how many distinct doodles are made
    early_stopping: int = 0  # patience in epochs without validation improvement; 0 = off
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    finetune: str | None = None  # checkpoint to start from (its label set may differ)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise HcrError(f"unknown training option(s) {unknown}; valid: {sorted(known)}")
        return cls(**dict(d))

    def updated(self, **overrides: Any) -> "TrainConfig":
        """A copy with the non-None overrides applied (command-line flags)."""
        d = self.to_dict()
        d.update({k: v for k, v in overrides.items() if v is not None})
        return TrainConfig.from_dict(d)

    def validate(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise HcrError(f"epochs and batch size must be positive (got {self.epochs}, {self.batch_size})")
        if self.optimizer not in ("adamw", "adam"):
            raise HcrError(f"optimizer must be adamw or adam, got {self.optimizer!r}")
        if self.schedule not in ("onecycle", "cosine", "constant"):
            raise HcrError(f"schedule must be onecycle, cosine or constant, got {self.schedule!r}")
        for name in ("render_fraction", "outliers"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise HcrError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.outlier_weight < 0 or self.render_pool < 0 or self.outlier_pool < 1:
            raise HcrError("outlier_weight and render_pool must be >= 0 and outlier_pool >= 1")
        if not 0.0 < self.val_fraction < 1.0:
            raise HcrError(f"val_fraction must be in (0, 1), got {self.val_fraction}")


def load_config(path: str | Path) -> TrainConfig:
    p = Path(path)
    if not p.exists():
        raise HcrError(f"{p}: recipe not found")
    try:
        d = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise HcrError(f"{p}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(d, dict):
        raise HcrError(f"{p}: a recipe must be a mapping of option: value")
    return TrainConfig.from_dict(d)
