"""Shared pieces of the export / backend tests: a CRNN with realistic outputs and its
metadata, a sequence model file, and the 512 parity inputs of each task.

The CRNN has random weights (the lead ships a trained one) but realistic numbers: its
batch-norm layers get non-trivial statistics and its head is scaled so that the per-column
probabilities are peaked and varied, as a trained network's are, instead of nearly uniform
(where any two runtimes agree trivially).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hcr.labels import CTCCodec
from hcr.modelfile import ModelMeta
from hcr.preprocess import LineSpec

CODEC = CTCCodec(tuple("0123456789 abcdef"))


def random_crnn(seed: int = 0, stride: int = 2) -> torch.nn.Module:
    """A CRNN (registry defaults, column ``stride``) for :data:`CODEC` with realistic, peaked outputs."""
    from hcr.models import create_model

    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = create_model("crnn", CODEC.num_classes, stride=stride).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)
        # scale the head so that the column logits spread like a trained network's (std ~5)
        x = torch.rand(4, 1, 32, 160, generator=g)
        spread = float(model(x).std())
        model.head[-1].weight.mul_(5.0 / spread)
        model.head[-1].bias.mul_(5.0 / spread)
    return model


def crnn_meta(stride: int = 2) -> ModelMeta:
    return ModelMeta("sequence", LineSpec().to_dict(), codec=CODEC, model_name="crnn", model_kwargs={"stride": stride})


def sequence_checkpoint(path: Path) -> Path:
    """An hcr sequence model file (task "sequence") holding :func:`random_crnn`."""
    from hcr.checkpoint import Checkpoint, save_checkpoint

    model = random_crnn()
    ckpt = Checkpoint("crnn", {}, Checkpoint.sequence_labels(CODEC), LineSpec(), {k: v.clone() for k, v in model.state_dict().items()}, task="sequence")
    return save_checkpoint(ckpt, path)


def peakedness(probs: np.ndarray) -> float:
    """Mean top probability per row/column: near 1/C for an uninformative network."""
    return float(probs.max(axis=-1).mean())
