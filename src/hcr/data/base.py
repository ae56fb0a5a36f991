"""What every data source returns, and seeded splits.

A source yields :class:`Samples`: upright grey ``uint8`` images (benchmark sets are ink
bright on dark; user images may be either, :func:`hcr.preprocess.preprocess` decides) with
integer targets into a :class:`~hcr.labels.LabelMap`. Turning samples into model input is
*not* a source's job: that is the one shared preprocessing path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from platformdirs import user_cache_dir

from ..errors import DataError
from ..labels import LabelMap

ENV_DATA_DIR = "HCR_DATA_DIR"


def default_data_dir() -> Path:
    """``$HCR_DATA_DIR`` if set, else the user cache directory (``~/.cache/hcr/data``)."""
    env = os.environ.get(ENV_DATA_DIR)
    return Path(env).expanduser() if env else Path(user_cache_dir("hcr")) / "data"


def resolve_data_dir(data_dir: str | os.PathLike[str] | None) -> Path:
    return Path(data_dir).expanduser() if data_dir else default_data_dir()


@dataclass
class Samples:
    """Images (a ``uint8`` N x H x W array, or a list of 2-D ``uint8`` arrays of any size),
    integer targets, the label map, and where each sample came from (for error galleries)."""

    images: np.ndarray | list[np.ndarray]
    targets: np.ndarray
    label_map: LabelMap
    source: str = ""
    ids: list[str] | None = field(default=None)

    def __post_init__(self) -> None:
        self.targets = np.asarray(self.targets, dtype=np.int64)
        if len(self.images) != len(self.targets):
            raise DataError(f"{self.source}: {len(self.images)} images but {len(self.targets)} labels")
        if len(self.targets) and (self.targets.min() < 0 or self.targets.max() >= len(self.label_map)):
            raise DataError(
                f"{self.source}: labels out of range 0..{len(self.label_map) - 1} "
                f"(found {int(self.targets.min())}..{int(self.targets.max())})"
            )

    def __len__(self) -> int:
        return len(self.targets)

    def subset(self, index: np.ndarray | Sequence[int]) -> "Samples":
        index = np.asarray(index, dtype=np.int64)
        if isinstance(self.images, np.ndarray):
            imgs: np.ndarray | list[np.ndarray] = self.images[index]
        else:
            imgs = [self.images[i] for i in index]
        ids = [self.ids[i] for i in index] if self.ids is not None else None
        return Samples(imgs, self.targets[index], self.label_map, self.source, ids)

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.targets, minlength=len(self.label_map))
        return {s: int(c) for s, c in zip(self.label_map.symbols, counts)}


def split_indices(n: int, val_fraction: float, seed: int, targets: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Seeded, reproducible train/validation split; stratified by class when targets are given."""
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"validation fraction must be in (0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    if targets is None:
        perm = rng.permutation(n)
        k = max(1, int(round(n * val_fraction)))
        return np.sort(perm[k:]), np.sort(perm[:k])
    train, val = [], []
    for c in np.unique(targets):
        idx = np.flatnonzero(targets == c)
        idx = idx[rng.permutation(len(idx))]
        k = int(round(len(idx) * val_fraction))
        if len(idx) > 1:
            k = min(max(k, 1), len(idx) - 1)
        val.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


@dataclass(frozen=True)
class SourceInfo:
    """Registry entry: how to build a source and what to tell users about it."""

    name: str
    description: str
    splits: tuple[str, ...]
    citation: str
    factory: Callable[..., "DataSource"]
    takes_path: bool = False  # e.g. ``folder:PATH`` / ``csv:PATH``


class DataSource:
    """A named data set with splits. Subclasses implement :meth:`load`."""

    name: str = ""
    splits: tuple[str, ...] = ()
    default_train_split: str = "train"
    default_val_split: str | None = None  # the held-out split evaluation uses by default
    citation: str = ""
    auto_download: bool = True  # fetch missing official files on load; off for read-only queries

    def load(self, split: str) -> Samples:
        raise NotImplementedError

    def label_map(self) -> LabelMap:
        raise NotImplementedError

    def required_files(self) -> list[Path]:
        """Local files this source reads (for ``hcr data info`` and offline messages)."""
        return []

    def download(self, progress: bool = True) -> list[Path]:
        """Fetch missing files (verified). Sources with nothing to fetch return their files."""
        return self.required_files()

    def check_split(self, split: str) -> None:
        if split not in self.splits:
            raise DataError(f"{self.name} has no split {split!r}; choose one of: {', '.join(self.splits)}")
