"""Training recipes: a dataclass, YAML files in ``configs/``, command-line overrides."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import yaml

from .errors import HcrError

#: Training precisions (``precision:``): float32, or autocast to bfloat16 / float16 (hcr.amp).
PRECISIONS = ("fp32", "bf16", "fp16")
#: The ``threads`` values besides a count (:mod:`hcr.train.threads`): the count picked by measured speed, the batch split between threads.
THREAD_AUTO, THREAD_SPLIT = "auto", "split"
THREAD_MODES = (THREAD_AUTO, THREAD_SPLIT)


_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def _coerce(value: Any, hint: Any) -> Any:
    """``value`` as the type ``hint`` (int, float, bool, str, dict, list of str, unions with
    None), or ValueError saying what was expected. Lenient only where nothing is lost:
    ``'2'`` and ``2.0`` are 2, ``'1e-3'`` is 0.001; ``64.5`` is no int and ``True`` no number."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg)
            except ValueError as e:
                errors.append(str(e).removeprefix("expected "))
        raise ValueError("expected " + " or ".join(errors) + (" or nothing (null)" if type(None) in args else ""))
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError("expected true or false")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise ValueError("expected a whole number")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                raise ValueError("expected a number (such as 0.001 or 1e-3)") from None
        else:
            raise ValueError("expected a number (such as 0.001 or 1e-3)")
        if not math.isfinite(number):
            raise ValueError("expected a finite number")
        return number
    if hint is str:
        if isinstance(value, str):
            return value
        raise ValueError("expected text")
    if origin is dict or hint is dict:
        if isinstance(value, dict):
            return dict(value)
        raise ValueError("expected a mapping (key: value)")
    if origin is list:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        raise ValueError("expected a list of names")
    return value  # pragma: no cover (every recipe field has one of the types above)


class _Recipe:
    """Dict round trip and command-line overrides shared by the recipe dataclasses."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Any:
        """The recipe from a mapping (a YAML file, overrides): every value is checked against
        its field's type and coerced where that is unambiguous (``lr: 1e-3``, which YAML reads
        as a string, ``epochs: '2'``); every wrong field is named, one line each."""
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(d) - known)
        if unknown:
            raise HcrError(f"unknown training option(s) {unknown}; valid: {sorted(known)}")
        hints = typing.get_type_hints(cls)
        values, wrong = {}, []
        for name, value in d.items():
            try:
                values[name] = _coerce(value, hints[name])
            except ValueError as e:
                wrong.append(f"recipe option {name!r}: {e}, got {value!r}")
        if wrong:
            raise HcrError("\n".join(wrong))
        return cls(**values)

    def updated(self, **overrides: Any) -> Any:
        """A copy with the non-None overrides applied (command-line flags)."""
        d = self.to_dict()
        d.update({k: v for k, v in overrides.items() if v is not None})
        return type(self).from_dict(d)

    def _check_optimisation(self) -> None:
        epochs, batch, opt, sched = self.epochs, self.batch_size, self.optimizer, self.schedule  # type: ignore[attr-defined]
        if epochs < 1 or batch < 1:
            raise HcrError(f"epochs and batch size must be positive (got {epochs}, {batch})")
        if opt not in ("adamw", "adam"):
            raise HcrError(f"optimizer must be adamw or adam, got {opt!r}")
        if sched not in ("onecycle", "cosine", "constant"):
            raise HcrError(f"schedule must be onecycle, cosine or constant, got {sched!r}")
        if not 0.0 < self.val_fraction < 1.0:  # type: ignore[attr-defined]
            raise HcrError(f"val_fraction must be in (0, 1), got {self.val_fraction}")  # type: ignore[attr-defined]
        self._check_runtime()

    def _check_runtime(self) -> None:
        """How a recipe runs (not what it learns): precision, loader worker processes, CPU threads."""
        precision, workers = self.precision, self.loader_workers  # type: ignore[attr-defined]
        if precision not in PRECISIONS:
            raise HcrError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
            raise HcrError(f"loader_workers must be a whole number >= 0, got {workers!r}")
        threads = self.threads  # type: ignore[attr-defined]
        if threads not in THREAD_MODES and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 0):
            raise HcrError(f"threads must be auto, split or a whole number >= 0 (0: one per core), got {threads!r}")
        if threads == THREAD_SPLIT and (self.task != "classify" or precision != "fp32" or getattr(self, "outliers", 0)):  # type: ignore[attr-defined]
            raise HcrError("threads: split is for character models trained in fp32 without outliers; use auto or a number of threads")


@dataclass
class TrainConfig(_Recipe):
    """Everything that defines a training run of a character classifier; stored in every checkpoint."""

    task: str = "classify"
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
    device: str = "auto"  # auto | cpu | cuda | cuda:N (under torchrun: each process takes cuda:LOCAL_RANK)
    finetune: str | None = None  # checkpoint to start from (its label set may differ)
    precision: str = "fp32"  # fp32 | bf16 | fp16 (fp16: GPU only); autocast for the forward pass (hcr.amp)
    loader_workers: int = 0  # processes assembling and augmenting batches ahead of the step (0: in the training process)
    threads: int | str = 0  # CPU threads of a step: 0 = one per core, N, auto = the fastest count, re-measured as the load changes, or split = the batch cut between threads (hcr.train.threads)

    def validate(self) -> None:
        if self.task != "classify":
            raise HcrError(f"a character recipe has task: classify, got {self.task!r}")
        self._check_optimisation()
        for name in ("render_fraction", "outliers"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise HcrError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.outlier_weight < 0 or self.render_pool < 0 or self.outlier_pool < 1:
            raise HcrError("outlier_weight and render_pool must be >= 0 and outlier_pool >= 1")


@dataclass
class SequenceConfig(_Recipe):
    """A training run of a word/line recogniser (CRNN + CTC, :mod:`hcr.train.sequence`)."""

    task: str = "sequence"
    data: list[str] = field(default_factory=lambda: ["dhsd"])  # line data sets (hcr.data.lines); the first picks the best epoch
    data_dir: str | None = None
    data_options: dict[str, dict[str, Any]] = field(default_factory=dict)  # per data spec, e.g. {synth:emnist-byclass: {count: 8000}}
    val_fraction: float = 0.1  # writers (or lines) of a folder held out for validation
    max_train_samples: int | None = None  # cap per data set (seeded subset) for quick runs
    model: str = "crnn"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    preprocess: dict[str, Any] = field(default_factory=dict)  # LineSpec overrides
    alphabet: str = ""  # characters to include beyond those of the training texts
    epochs: int = 30
    batch_size: int = 32
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    schedule: str = "onecycle"
    augment: bool = True  # random stretch, slant, stroke width, contrast and noise (hcr.augment.augment_line)
    early_stopping: int = 0
    seed: int = 0  # also picks a folder's held-out writers: keep it when fine-tuning on the same data
    device: str = "auto"
    finetune: str | None = None  # a sequence model file (or shipped name) to start from (its alphabet may differ)
    precision: str = "fp32"  # fp32 | bf16 | fp16 (fp16: GPU only)
    loader_workers: int = 0  # processes augmenting and padding line batches ahead of the step (0: in the training process)
    threads: int | str = 0  # CPU threads of a step: 0 = one per core, N, or auto (hcr.train.threads)

    def validate(self) -> None:
        if self.task != "sequence":
            raise HcrError(f"a sequence recipe has task: sequence, got {self.task!r}")
        self._check_optimisation()
        if not self.data or not all(isinstance(d, str) for d in self.data):
            raise HcrError("data must be a list of line data sets (lines:PATH, dhsd, synth:DATA)")


def load_config(path: str | Path) -> TrainConfig | SequenceConfig:
    p = Path(path)
    if not p.exists():
        raise HcrError(f"{p}: recipe not found")
    try:
        d = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise HcrError(f"{p}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(d, dict):
        raise HcrError(f"{p}: a recipe must be a mapping of option: value")
    if d.get("task") == "sequence":
        if isinstance(d.get("data"), str):
            d["data"] = [d["data"]]
        return SequenceConfig.from_dict(d)
    return TrainConfig.from_dict(d)
