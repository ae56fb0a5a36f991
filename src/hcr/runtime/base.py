"""The runtime interface: a network in some runtime plus its :class:`~hcr.modelfile.ModelMeta`.

A :class:`Backend` turns a batch of preprocessed inputs (float32 ``(N, H, W)`` in [0, 1],
ink bright: exactly what :func:`hcr.preprocess.preprocess` or
:func:`~hcr.preprocess.preprocess_line` produce) into network outputs: ``logits`` (classifiers
``(N, C)``, sequence models ``(N, T, C)``) and ``probs`` (softmax of ``logits / temperature``).
Everything around the network (preprocessing, charset and case handling, top-k, rejection,
CTC decoding) is shared numpy code outside the backends, so every format answers the same.
Subclasses live in one module per runtime (:mod:`hcr.runtime.torch`, :mod:`~hcr.runtime.onnx`,
:mod:`~hcr.runtime.tensorflow`); :mod:`hcr.runtime` lists them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import HcrError, ModelFileError
from ..labels import CTCCodec, LabelMap
from ..modelfile import ModelMeta, layout_of
from ..preprocess import PreprocessSpec

#: Largest batch sent to a runtime in one call (backends may prefer smaller ones).
MAX_BATCH = 512


def softmax(logits: np.ndarray, temperature: float = 1.0, axis: int = -1) -> np.ndarray:
    """float32 softmax of ``logits / temperature`` (computed in float64)."""
    from ..ctc import log_softmax

    return np.exp(log_softmax(np.asarray(logits, np.float64) / float(temperature), axis=axis)).astype(np.float32)



def network_layout(shape: Any, where: str) -> str:
    """:func:`~hcr.modelfile.layout_of`, with ``where`` named in the error."""
    try:
        return layout_of(shape)
    except ModelFileError as e:
        raise ModelFileError(f"{where}: {e}") from None


def first_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:200]



def probe_size(meta: ModelMeta) -> tuple[int, int]:
    """(H, W) of a dummy input for checking a network's output size."""
    if meta.task == "sequence":
        h = int(meta.preprocess.get("height", 32))
        return h, 2 * h
    s = int(meta.preprocess.get("size", 28))
    return s, s


def check_input_shape(meta: ModelMeta, shape: Any, where: str) -> None:
    """The network's declared input size must be the one its preprocessing makes (``H`` and
    ``W`` of a classifier, ``H`` of a line model; a free dimension fits anything), so a file
    declaring a 30000 x 30000 input is refused before anything is allocated for it."""
    dims = list(shape)
    want_h, want_w = probe_size(meta)
    if len(dims) == 2:  # (N, H*W)
        if isinstance(dims[1], int) and dims[1] > 0 and dims[1] != want_h * want_w:
            raise ModelFileError(f"{where}: the network declares {dims[1]} input values, but its preprocessing makes {want_h} x {want_w} = {want_h * want_w}")
        return
    h, w = (dims[2], dims[3]) if meta.layout == "NCHW" else (dims[1], dims[2])
    wrong = [f"{name} {got}" for name, got, want in (("height", h, want_h), ("width", w, want_w))
             if isinstance(got, int) and got > 0 and got != want and not (name == "width" and meta.task == "sequence")]
    if wrong:
        raise ModelFileError(f"{where}: the network declares input {', '.join(wrong)}, but its preprocessing makes {want_h} x {want_w} inputs")




class Backend:
    """A network in some runtime plus its metadata. Subclasses implement :meth:`_run`
    (one batch already in the network's layout and convention -> raw output)."""

    format = "?"
    #: inputs per runtime call when the caller gives no ``batch_size``
    batch_size = MAX_BATCH

    def __init__(self, meta: ModelMeta, source: str) -> None:
        self.meta = meta
        self.source = source

    # metadata shortcuts ---------------------------------------------------------
    @property
    def task(self) -> str:
        return self.meta.task

    @property
    def label_map(self) -> LabelMap:
        if self.meta.labels is None:
            raise HcrError(f"{self.source} is a {self.meta.task} model: it has a CTC alphabet, not a label map")
        return self.meta.labels

    @property
    def codec(self) -> CTCCodec:
        if self.meta.codec is None:
            raise HcrError(f"{self.source} is a character classifier: it has no CTC alphabet")
        return self.meta.codec

    @property
    def spec(self) -> PreprocessSpec:
        return self.meta.spec

    @property
    def temperature(self) -> float:
        return self.meta.temperature

    def describe(self) -> str:
        return f"{self.meta.describe()} [{self.format}] from {self.source}"

    # inference ------------------------------------------------------------------
    def _run(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def prepare(self, inputs: Any) -> np.ndarray:
        """hcr model input ``(N, H, W)`` or ``(N, 1, H, W)`` -> the network's input."""
        x = np.asarray(inputs, dtype=np.float32)
        if x.ndim == 4 and x.shape[1] == 1:
            x = x[:, 0]
        if x.ndim != 3:
            raise HcrError(f"expected a batch of shape (N, H, W) or (N, 1, H, W), got {x.shape}")
        if self.meta.invert:
            x = 1.0 - x
        if self.meta.scale != 1.0:
            x = x * np.float32(self.meta.scale)
        layout = self.meta.layout
        if layout == "NCHW":
            x = x[:, None]
        elif layout == "NHWC":
            x = x[..., None]
        elif layout == "NF":
            x = x.reshape(len(x), -1)
        return np.ascontiguousarray(x, dtype=np.float32)

    def raw(self, inputs: Any, batch_size: int | None = None) -> np.ndarray:
        """The network's output for a batch (chunked into ``batch_size`` runs)."""
        x = self.prepare(inputs)
        if len(x) == 0:
            return np.zeros((0, self.meta.num_classes), np.float32)
        batch_size = batch_size or self.batch_size
        outs = [np.asarray(self._run(x[i : i + batch_size]), dtype=np.float32) for i in range(0, len(x), batch_size)]
        return np.concatenate(outs) if len(outs) > 1 else outs[0]

    def logits(self, inputs: Any, batch_size: int | None = None) -> np.ndarray:
        """Logits ``(N, C)`` / ``(N, T, C)``; for networks ending in a softmax, log-probabilities."""
        out = self.raw(inputs, batch_size)
        return np.log(np.clip(out, 1e-30, None)) if self.meta.output == "probs" else out

    def probs(self, inputs: Any, temperature: float | None = None, batch_size: int | None = None) -> np.ndarray:
        """Softmax of ``logits / temperature`` (default: the file's temperature), float32."""
        t = self.meta.temperature if temperature is None else temperature
        if self.meta.output == "probs" and t == 1.0:
            p = self.raw(inputs, batch_size)
            return p / np.maximum(p.sum(axis=-1, keepdims=True), 1e-30)
        return softmax(self.logits(inputs, batch_size), t)
