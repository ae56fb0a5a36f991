"""hcr model files (``.pt``): a :class:`~hcr.modelfile.ModelMeta` plus the weights.

A :class:`Checkpoint` is the model-file contract (:attr:`Checkpoint.meta`, encoded by
:meth:`hcr.modelfile.ModelMeta.checkpoint_entries`) plus what only PyTorch has: the weights,
the network built from them (:meth:`Checkpoint.build_model`), the training configuration and
state. On disk it is a dict of plain types and tensors, written with ``torch.save`` and read
with ``torch.load(weights_only=True)`` (no pickled objects, so loading a file cannot run
code). Keys:

``format``        "hcr-checkpoint" and ``format_version``
``task``          "classify" (one character) or "sequence" (a word or line, CTC); absent: classify
``model``         {"name": registry name, "kwargs": constructor arguments}
``labels``        LabelMap.to_dict(); for a sequence model the CTC classes: "" (the blank,
                  index 0) then the alphabet, also written as ``codec`` (CTCCodec.to_dict())
``preprocess``    PreprocessSpec.to_dict(), or LineSpec.to_dict() for a sequence model
``state_dict``    the weights
``config``        the training configuration (plain dict)
``metrics``       best validation figures etc.
``versions``      hcr / torch / python versions that wrote it
``calibration``   {"temperature": T}: logits are divided by T before the softmax
``train_state``   optional: optimizer / scheduler / epoch / RNG, only in resumable files

Writes go through :func:`hcr.modelfile.write_atomic` (a temporary file in the same folder,
fsync'd, then renamed), so an interruption leaves either the old file or the new one, never
half of one.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import __version__
from .errors import HcrError, ModelFileError
from .labels import BLANK, CTCCodec, LabelMap
from .modelfile import ModelMeta, write_atomic
from .models import create_model
from .preprocess import LineSpec, PreprocessSpec


@dataclass
class Checkpoint:
    model_name: str
    model_kwargs: dict[str, Any]
    label_map: LabelMap
    spec: PreprocessSpec | LineSpec
    state_dict: dict[str, torch.Tensor]
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    train_state: dict[str, Any] | None = None
    temperature: float = 1.0  # softmax temperature fitted on held-out data (1.0: uncalibrated)
    source: str = "<checkpoint>"  # where it was loaded from, for error messages
    task: str = "classify"  # "classify" or "sequence"

    @property
    def codec(self) -> CTCCodec:
        """The CTC codec of a sequence model (its classes after the blank)."""
        if self.task != "sequence":
            raise ModelFileError(f"{self.source}: a character classifier has no CTC codec")
        return CTCCodec(self.label_map.symbols[BLANK + 1 :])

    @property
    def char_spec(self) -> PreprocessSpec:
        """The character preprocessing of a classifier (a word/line model is refused by name)."""
        if not isinstance(self.spec, PreprocessSpec):
            raise ModelFileError(f"{self.source}: a word/line model (CRNN), not a character classifier; read with it: hcr read --engine crnn --model {self.source}")
        return self.spec

    @staticmethod
    def sequence_labels(codec: CTCCodec) -> LabelMap:
        """The label map stored for a sequence model: the blank ("") then the alphabet."""
        return codec.label_map()

    def build_model(self) -> nn.Module:
        """Instantiate the network and load the weights (strictly: every tensor must match)."""
        try:
            model = create_model(self.model_name, len(self.label_map), **self.model_kwargs)
        except (HcrError, TypeError, ValueError) as e:
            raise ModelFileError(f"{self.source}: cannot build model {self.model_name!r} ({e})") from None
        try:
            model.load_state_dict(self.state_dict, strict=True)
        except RuntimeError as e:
            first = str(e).strip().splitlines()[0]
            raise ModelFileError(f"{self.source}: weights do not fit model {self.model_name!r}: {first}") from None
        model.eval()
        return model

    def file_meta(self) -> ModelMeta:
        """The metadata as stored in this file (its own versions and all its metrics)."""
        sequence = self.task == "sequence"
        return ModelMeta(
            task=self.task, preprocess=self.spec.to_dict(), labels=None if sequence else self.label_map, codec=self.codec if sequence else None,
            temperature=self.temperature, model_name=self.model_name, model_kwargs=dict(self.model_kwargs),
            versions=self.versions or current_versions(), metrics=self.metrics,
        )

    @property
    def meta(self) -> ModelMeta:
        """The metadata runtimes and exports carry: :meth:`file_meta` with the versions
        that run or export it added and only the metrics worth shipping."""
        return ModelMeta(
            task=self.task, preprocess=self.spec.to_dict(), labels=None if self.task == "sequence" else self.label_map,
            codec=self.codec if self.task == "sequence" else None, temperature=self.temperature,
            model_name=self.model_name, model_kwargs=dict(self.model_kwargs),
            versions={**self.versions, **{f"export_{k}": v for k, v in current_versions().items()}},
            metrics={k: self.metrics[k] for k in ("best_val_acc", "train_source", "val_source", "citation") if k in self.metrics},
        )

    def to_dict(self) -> dict[str, Any]:
        d = self.file_meta().checkpoint_entries()
        d["state_dict"] = {k: v.detach().cpu().contiguous() for k, v in self.state_dict.items()}
        d["config"] = self.config
        if self.train_state is not None:
            d["train_state"] = self.train_state
        return d


def current_versions() -> dict[str, str]:
    return {"hcr": __version__, "torch": torch.__version__.split("+")[0], "python": platform.python_version()}


def atomic_save(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save`` ``obj`` to ``path`` atomically (:func:`hcr.modelfile.write_atomic`)."""
    return write_atomic(path, lambda f: torch.save(obj, f))


def save_checkpoint(ckpt: Checkpoint, path: str | os.PathLike[str]) -> Path:
    return atomic_save(ckpt.to_dict(), path)


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> Checkpoint:
    """Load and validate a model file; any problem raises ModelFileError naming the file."""
    p = Path(path)
    where = str(p)
    if not p.exists():
        raise ModelFileError(f"{where}: model file not found")
    if p.is_dir():
        raise ModelFileError(f"{where}: is a directory, not a model file")
    try:
        d = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many types for corrupt or unsafe files
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelFileError(f"{where}: not a readable hcr model file (corrupt, truncated or unsafe: {msg[:200]})") from None
    meta = ModelMeta.from_checkpoint_entries(d, where)
    state = d["state_dict"]
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise ModelFileError(f"{where}: malformed weights (non-tensor entries)")
    for k, v in state.items():
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise ModelFileError(f"{where}: weights contain NaN or infinite values ({k})")
    ckpt = Checkpoint(
        model_name=meta.model_name,
        model_kwargs=meta.model_kwargs,
        label_map=meta.class_labels(),
        spec=meta.line_spec() if meta.task == "sequence" else meta.spec,
        state_dict=state,
        config=dict(d.get("config") or {}),
        metrics=meta.metrics,
        versions=meta.versions,
        train_state=d.get("train_state"),
        temperature=meta.temperature,
        source=where,
        task=meta.task,
    )
    _probe(ckpt.build_model(), ckpt)  # reject files whose weights or spec do not fit their declared model, now
    return ckpt


def _probe(model: nn.Module, ckpt: Checkpoint) -> None:
    """Run the network once on an empty input of the size its preprocessing spec makes, so
    a spec that disagrees with the weights (a 512-pixel spec on a 28 x 28 network) is one
    clear error at load time, not a shape error at the first prediction."""
    spec = ckpt.spec
    if isinstance(spec, LineSpec):
        shape, what = (1, 1, spec.height, 4 * spec.height), f"line height {spec.height}"
    else:
        shape, what = (1, 1, spec.size, spec.size), f"input size {spec.size}x{spec.size}"
    try:
        with torch.no_grad():
            out = model(torch.zeros(shape))
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0][:200]
        raise ModelFileError(f"{ckpt.source}: the preprocessing spec ({what}) does not fit the network {ckpt.model_name!r}: {first}") from None
    n = len(ckpt.label_map)
    if ckpt.task != "sequence" and tuple(out.shape) != (1, n):
        raise ModelFileError(f"{ckpt.source}: the network answers {tuple(out.shape[1:])} outputs for {n} labels")
