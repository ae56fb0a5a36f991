"""Classification CNNs for single characters."""

from __future__ import annotations

import torch
from torch import nn

from .registry import register_model


def _flat_features(features: nn.Module, in_size: int) -> int:
    """Size of ``features``' flattened output, from a dummy forward (no magic numbers)."""
    with torch.no_grad():
        return int(features(torch.zeros(1, 1, in_size, in_size)).numel())


def pool_then_relu(block: list[nn.Module], pool: nn.Module) -> list[nn.Module]:
    """``block`` (ending in a ReLU) followed by ``pool``, with the pooling moved before the ReLU.

    Max pooling and ReLU commute (ReLU is monotonic), so the outputs and the gradients are
    the same as ReLU-then-pool, and the parameter names do not change (neither layer has
    any); the ReLU and its backward pass then run on a quarter of the values. On a 2-core
    CPU this made ``seed-cnn`` training about 1.3-1.9x faster (``benchmarks/throughput.py``).
    """
    if not block or not isinstance(block[-1], nn.ReLU):
        raise ValueError("the block must end in a ReLU")
    return [*block[:-1], pool, block[-1]]


class SeedCNN(nn.Module):
    """The classic baseline: Conv32-ReLU-MaxPool, Conv64-ReLU-MaxPool, Flatten,
    Dense128-ReLU, Dropout, Dense(n) (3x3 valid convolutions, 2x2 pooling; each pooling
    runs before its ReLU, the same function computed faster: :func:`pool_then_relu`)."""

    def __init__(self, num_classes: int, in_size: int = 28, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *pool_then_relu([nn.Conv2d(1, 32, 3), nn.ReLU(inplace=True)], nn.MaxPool2d(2)),  # (B,32,13,13) at 28
            *pool_then_relu([nn.Conv2d(32, 64, 3), nn.ReLU(inplace=True)], nn.MaxPool2d(2)),  # (B,64,5,5)
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),  # (B,1600)
            nn.Linear(_flat_features(self.features, in_size), 128), nn.ReLU(inplace=True),  # (B,128)
            nn.Dropout(dropout),
            nn.Linear(128, num_classes),  # (B,n)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def _conv_bn(cin: int, cout: int, k: int = 3) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class HcrCNN(nn.Module):
    """A stronger small CNN: batch-normalised VGG-style stages, global pooling + a wide head.

    About 0.9M parameters at width 32; a few times the baseline's compute.
    """

    def __init__(self, num_classes: int, in_size: int = 28, width: int = 32, dropout: float = 0.3) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            *pool_then_relu(_conv_bn(1, w, 5), nn.MaxPool2d(2)),  # (B,w,14,14)
            *_conv_bn(w, 2 * w), *pool_then_relu(_conv_bn(2 * w, 2 * w), nn.MaxPool2d(2)),  # (B,2w,7,7)
            *_conv_bn(2 * w, 4 * w), *pool_then_relu(_conv_bn(4 * w, 4 * w), nn.MaxPool2d(2, ceil_mode=True)),  # (B,4w,4,4)
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),  # (B,4w*16)
            nn.Dropout(dropout),
            nn.Linear(_flat_features(self.features, in_size), 256, bias=False), nn.BatchNorm1d(256), nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(256, num_classes),  # (B,n)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


@register_model("seed-cnn", "classic baseline: 2 conv + pool, dense 128, dropout (~0.2M params)")
def seed_cnn(num_classes: int, in_size: int = 28, dropout: float = 0.5) -> nn.Module:
    return SeedCNN(num_classes, in_size, dropout)


@register_model("hcr-cnn", "stronger: batch-norm VGG-style, 5 conv layers (~0.8M params at width 32)")
def hcr_cnn(num_classes: int, in_size: int = 28, width: int = 32, dropout: float = 0.3) -> nn.Module:
    return HcrCNN(num_classes, in_size, width, dropout)
