"""PyTorch: hcr's own model files (:class:`TorchBackend`) and TorchScript files
(:class:`TorchScriptBackend`, written by :func:`write_torchscript`), plus the batched forward
helpers training and evaluation share with inference (:func:`batched_logits`,
:func:`batched_probs`) and :func:`resolve_device`.
"""

from __future__ import annotations

import copy
import io
import os
import warnings
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ..errors import HcrError, ModelFileError
from ..modelfile import META_FILE, ModelMeta, check_outputs
from ..models import channels_last
from .base import Backend, first_line, probe_size, softmax

if TYPE_CHECKING:  # pragma: no cover
    from ..checkpoint import Checkpoint


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise HcrError(f"device {device!r} requested but CUDA is not available; use --device cpu")
    try:
        return torch.device(device)
    except RuntimeError:
        raise HcrError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None


def batched_logits(model: nn.Module, inputs: np.ndarray | torch.Tensor, batch_size: int = 512, device: "torch.device | None" = None) -> torch.Tensor:
    """Logits (N, C) on the CPU for float inputs of shape (N, H, W) or (N, 1, H, W)."""
    with torch.inference_mode():
        device = device or next(model.parameters()).device
        x = torch.as_tensor(inputs, dtype=torch.float32)
        if x.ndim == 3:
            x = x[:, None]
        if model.training:  # eval() walks every module: only when needed (it adds ~0.2 ms a call)
            model.eval()
        out = [model(x[i : i + batch_size].to(device).contiguous(memory_format=torch.channels_last)).float().cpu() for i in range(0, len(x), batch_size)]
        return torch.cat(out) if out else torch.zeros(0, 0)


def batched_probs(model: nn.Module, inputs: np.ndarray | torch.Tensor, batch_size: int = 512, device: "torch.device | None" = None, temperature: float = 1.0) -> np.ndarray:
    """Softmax probabilities of ``logits / temperature`` for a batch of inputs."""
    logits = batched_logits(model, inputs, batch_size, device)
    return torch.softmax(logits / temperature, dim=1).numpy() if logits.numel() else np.zeros((0, 0), np.float32)



def example_input(meta: ModelMeta, batch: int = 2, width: int = 64) -> torch.Tensor:
    if meta.task == "sequence":
        return torch.rand(batch, 1, int(meta.preprocess.get("height", 32)), width)
    s = int(meta.preprocess.get("size", 28))
    return torch.rand(batch, 1, s, s)



class TorchBackend(Backend):
    """A PyTorch ``nn.Module`` (hcr model files). ``model`` is kept as an attribute so
    callers may inspect it; outputs come from :func:`batched_logits`."""

    format = "pytorch"

    def __init__(self, model: "nn.Module", meta: ModelMeta, source: str = "<model>", device: str | "torch.device" = "cpu") -> None:
        super().__init__(meta, source)
        self.device = resolve_device(device) if isinstance(device, str) else device
        self.model = channels_last(model.to(self.device)).eval()

    @classmethod
    def from_checkpoint(cls, ckpt: "Checkpoint", device: str = "cpu") -> "TorchBackend":
        return cls(ckpt.build_model(), ckpt.meta, ckpt.source, device)

    def __getstate__(self) -> dict[str, Any]:
        """The module travels on the CPU (a GPU's tensors would need that GPU to unpickle);
        :meth:`__setstate__` moves it back to its device where that device exists."""
        state = dict(self.__dict__)
        state["device"] = str(self.device)
        if self.device.type != "cpu":
            state["model"] = copy.deepcopy(self.model).cpu()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        device = torch.device(state["device"])
        if device.type == "cuda" and not torch.cuda.is_available():
            device = torch.device("cpu")  # unpickled on a machine without the GPU: run on its CPU
        self.__dict__.update(state)
        self.device = device
        if device.type != "cpu":
            self.model = channels_last(self.model.to(device)).eval()

    def raw(self, inputs: Any, batch_size: int | None = None) -> np.ndarray:
        return batched_logits(self.model, np.asarray(inputs, np.float32), batch_size or self.batch_size, self.device).numpy()

    def probs(self, inputs: Any, temperature: float | None = None, batch_size: int | None = None) -> np.ndarray:
        t = self.meta.temperature if temperature is None else temperature
        if self.meta.task == "sequence":
            return softmax(self.raw(inputs, batch_size), t)
        return batched_probs(self.model, np.asarray(inputs, np.float32), batch_size or self.batch_size, self.device, temperature=t)



class TorchScriptBackend(Backend):
    """A TorchScript file (``torch.jit``), for deployments that run libtorch (C++, mobile)."""

    format = "torchscript"

    def __init__(self, path: str | os.PathLike[str], meta: ModelMeta | None = None) -> None:
        try:
            data = Path(path).read_bytes()
        except OSError as e:
            raise ModelFileError(f"{path}: cannot read the TorchScript file ({e.strerror or e})") from None
        self._open(data, meta, str(path))

    def __getstate__(self) -> dict[str, Any]:
        """The file's bytes and metadata; never the loaded module."""
        return {"data": self._data, "meta": self.meta, "source": self.source}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._open(state["data"], state["meta"], state["source"])

    def _open(self, data: bytes, meta: ModelMeta | None, path: str) -> None:
        self._data = data
        extra = {META_FILE: ""}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch.jit is deprecated in favour of torch.export; it still loads
                self.module = torch.jit.load(io.BytesIO(data), map_location="cpu", _extra_files=extra)
        except Exception as e:
            raise ModelFileError(f"{path}: not a readable TorchScript model (corrupt, truncated or unsafe: {first_line(e)})") from None
        self.module.eval()
        if meta is None:
            if not extra[META_FILE]:
                raise ModelFileError(f"{path}: the TorchScript file holds no hcr metadata (hcr.json) and has no sidecar")
            meta = ModelMeta.from_json(extra[META_FILE], str(path))
        super().__init__(replace(meta, layout="NCHW"), str(path))
        probe = self.module(torch.zeros(1, 1, *probe_size(meta)))
        check_outputs(self.meta, int(probe.shape[-1]), str(path))

    def _run(self, x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.module(torch.from_numpy(x)).numpy()


def write_torchscript(model: nn.Module, meta: ModelMeta, out: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes about shape arithmetic: checked by the parity test
        traced = torch.jit.trace(model, (example_input(meta),), check_trace=False, _store_inputs=False)
        buf = io.BytesIO()  # saved through a buffer: the archive's folder is "archive", not the temporary name
        torch.jit.save(traced, buf, _extra_files={META_FILE: meta.to_json()})
    out.write_bytes(buf.getvalue())

