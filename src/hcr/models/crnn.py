"""CRNN for words and lines: convolutional features, a bidirectional LSTM, per-column scores.

Input: a (B, 1, H, W) float batch in [0, 1] (ink bright), H = ``in_height``, any width W.
Output: logits (B, T, C) with T = ceil(W / s) columns (one every s = ``stride`` input pixels:
2 by default, or 4 for a model about twice as fast) and
C = ``num_classes`` including the CTC blank (index 0; see :class:`hcr.labels.CTCCodec`).
Decoding (greedy or beam search) happens outside the network, in numpy (:mod:`hcr.ctc`).
"""

from __future__ import annotations

import torch
from torch import nn

from ..modelfile import DEFAULT_STRIDE as COLUMN_STRIDE
from ..modelfile import (
    columns as output_columns,  # T for an input width (torch-free: inference shares it)
)
from .registry import register_model
from .cnn import pool_then_relu

#: COLUMN_STRIDE: the default horizontal downsampling of the feature extractor (one output
#: column per this many pixels); a model's own value is its ``column_stride`` attribute
#: (model kwarg ``stride``), one of:
STRIDES = (2, 4)


def _conv(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class CRNN(nn.Module):
    """Four conv stages; pooling halves the height three times and the width once (stride 2)
    or twice (stride 4: half the columns for the later stages and the LSTM). The remaining H/8 rows are stacked into each column's feature vector, projected, and read
    by a bidirectional LSTM (2 layers by default)."""

    def __init__(self, num_classes: int, in_height: int = 32, width: int = 32, hidden: int = 128, layers: int = 2, dropout: float = 0.2, stride: int = COLUMN_STRIDE) -> None:
        super().__init__()
        if stride not in STRIDES:
            raise ValueError(f"stride must be one of {STRIDES}, got {stride}")
        if in_height < 8 or in_height % 8:
            raise ValueError(f"in_height must be a multiple of 8 and >= 8, got {in_height}")
        if num_classes < 2:
            raise ValueError("a CRNN needs the blank and at least one symbol")
        w = width
        self.in_height = in_height
        self.column_stride = stride
        self.features = nn.Sequential(
            *pool_then_relu(_conv(1, w), nn.MaxPool2d(2, 2, ceil_mode=True)),  # (B,w,H/2,ceil(W/2))
            *pool_then_relu(_conv(w, 2 * w), nn.MaxPool2d((2, 1)) if stride == 2 else nn.MaxPool2d(2, 2, ceil_mode=True)),  # (B,2w,H/4,T)
            *pool_then_relu(_conv(2 * w, 4 * w), nn.MaxPool2d((2, 1))),  # (B,4w,H/8,T)
            *_conv(4 * w, 4 * w),  # (B,4w,H/8,T)
        )
        with torch.no_grad():
            c, h = self.features(torch.zeros(1, 1, in_height, 8)).shape[1:3]
        self.project = nn.Sequential(nn.Dropout(dropout), nn.Linear(int(c * h), hidden), nn.ReLU(inplace=True))
        self.rnn = nn.LSTM(hidden, hidden, num_layers=layers, bidirectional=True, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)  # (B,C,H/8,T)
        b, c, h, t = f.shape
        f = f.permute(0, 3, 1, 2).reshape(b, t, c * h)  # (B,T,C*H/8)
        seq, _ = self.rnn(self.project(f))  # (B,T,2*hidden)
        return self.head(seq)  # (B,T,num_classes)


@register_model("crnn", "words and lines: conv features + 2-layer BiLSTM, CTC scores per column (~1M params)", task="sequence")
def crnn(num_classes: int, in_height: int = 32, width: int = 32, hidden: int = 128, layers: int = 2, dropout: float = 0.2, stride: int = COLUMN_STRIDE) -> nn.Module:
    return CRNN(num_classes, in_height, width, hidden, layers, dropout, stride)
