"""Training precision (``precision:`` in a recipe, ``--precision`` on the command line).

``fp32`` (the default) is plain float32, exactly the loop as it was. ``bf16`` runs the
forward pass under ``torch.autocast`` in bfloat16 (GPUs with bf16 support, and CPUs, where
it pays on processors with AMX/AVX512-BF16); ``fp16`` runs it in float16 with a
``GradScaler`` against underflowing gradients, on a GPU only. Weights, optimizer state,
validation and the saved model stay float32.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch

from .config import PRECISIONS
from .errors import HcrError

__all__ = ["PRECISIONS", "Precision"]


class Precision:
    """The autocast context and the backward/optimizer step of one precision on one device."""

    def __init__(self, name: str, device: torch.device) -> None:
        if name not in PRECISIONS:
            raise HcrError(f"precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
        if name == "fp16" and device.type != "cuda":
            raise HcrError("precision fp16 needs a CUDA GPU (float16 training on the CPU is slow and unstable); use bf16 or fp32 on the CPU")
        if name == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise HcrError(f"this GPU ({torch.cuda.get_device_name(device)}) does not support bf16; use fp16 or fp32")
        self.name, self.device = name, device
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(name)
        self.scaler = torch.amp.GradScaler(device.type) if name == "fp16" else None

    def autocast(self) -> AbstractContextManager[Any]:
        """The context for the forward pass and the loss (a no-op for fp32)."""
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def step(self, loss: torch.Tensor, opt: torch.optim.Optimizer, clip: tuple[Iterable[torch.nn.Parameter], float] | None = None) -> None:
        """Backward, optional gradient-norm clipping ``(parameters, max_norm)``, optimizer
        step; with fp16 the loss is scaled and steps with inf/NaN gradients are skipped."""
        opt.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(clip[0], clip[1])
            opt.step()
            return
        self.scaler.scale(loss).backward()
        if clip is not None:
            self.scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(clip[0], clip[1])
        self.scaler.step(opt)
        self.scaler.update()

    def state_dict(self) -> dict[str, Any]:
        return self.scaler.state_dict() if self.scaler is not None else {}

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)
