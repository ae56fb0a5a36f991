"""Reading word and line images with a sequence (CTC) model, in any runtime hcr can load.

:class:`LineRecognizer` runs a word/line network through a :class:`hcr.runtime.base.Backend`:
an hcr ``.pt`` file (PyTorch) or an exported ONNX, TorchScript, Keras, SavedModel or TFLite
file, with the CTC alphabet, the :class:`~hcr.preprocess.LineSpec` and the column stride
taken from the file's metadata. Decoding is :mod:`hcr.ctc` (numpy). This module imports
no deep-learning framework itself: with an ONNX file and onnxruntime, torch is never
imported.

Batches hold lines of similar width (:func:`width_batches`), padded on the right with
background (:func:`pad_lines`); each line keeps only the score columns of its own width.

The file's softmax temperature (``ModelMeta.temperature``, fitted on the validation lines
when a word/line model is trained, :func:`hcr.train.sequence.calibrate_lines`) is not
applied here: greedy and beam search, lexicon decoding and the characters' confidences all
use the network's own log-probabilities (:meth:`LineRecognizer.log_probs` takes the
backend's ``logits``, never its temperature-scaled ``probs``), so a calibrated model file
reads exactly as the same file uncalibrated.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence

import numpy as np

from ..charset import parse_charset
from ..ctc import Decoded, decode, log_softmax
from ..errors import ModelFileError
from ..labels import CTCCodec
from ..lexicon import Lexicon
from ..modelfile import DEFAULT_STRIDE, ModelMeta, columns, stride_of
from ..preprocess import ImageInput, LineSpec, Preprocessed, preprocess_line
from ..runtime import Backend, load_backend

__all__ = ["LineRecognizer", "line_log_probs_with", "pad_lines", "width_batches"]

#: A line whose letters and digits are this share of one kind is read as that kind
#: (:meth:`LineRecognizer.decode_in_context`).
KIND_SHARE = 0.75
def width_batches(widths: np.ndarray, batch_size: int, rng: np.random.Generator | None = None) -> list[np.ndarray]:
    """Index batches of lines of similar width (so little is padding), in random order
    when ``rng`` is given (with a little jitter in the sort, so batches vary by epoch)."""
    key = np.asarray(widths).astype(np.float64)
    if rng is not None:
        key = key + rng.uniform(0, 24, len(key))
    order = np.argsort(key, kind="stable")
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if rng is not None:
        rng.shuffle(chunks)  # type: ignore[arg-type]
    return chunks


def pad_lines(images: Sequence[np.ndarray], *, min_width: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """A (B, 1, H, W_max) float32 batch in [0, 1] (padded with background) and the widths.
    ``images`` are float in [0, 1] or uint8 (0-255)."""
    widths = np.asarray([im.shape[1] for im in images], np.int64)
    h = images[0].shape[0]
    x = np.zeros((len(images), 1, h, max(int(widths.max()), min_width)), np.float32)
    for i, im in enumerate(images):
        x[i, 0, :, : im.shape[1]] = im if im.dtype == np.float32 else im.astype(np.float32) / 255.0
    return x, widths


def line_log_probs_with(run: Callable[[np.ndarray], np.ndarray], images: Sequence[np.ndarray], stride: int, batch_size: int = 64) -> list[np.ndarray]:
    """Per line, the (T_i, C) log-probabilities of its own columns. ``run`` maps a padded
    (B, 1, H, W) batch to (B, T, C) scores (logits or log-probabilities)."""
    out: list[np.ndarray] = [np.zeros(0)] * len(images)
    if not images:
        return out
    for idx in width_batches(np.asarray([im.shape[1] for im in images]), batch_size):
        x, widths = pad_lines([images[i] for i in idx])
        lp = log_softmax(np.asarray(run(x), np.float32))
        for j, i in enumerate(idx):
            out[i] = lp[j, : columns(int(widths[j]), stride)]
    return out


class LineRecognizer:
    """A word/line model ready for inference: image in, :class:`hcr.ctc.Decoded` out.

    ``backend`` is a sequence model in any runtime (:func:`hcr.runtime.load_backend`).
    ``beam_width`` (default greedy) and ``lexicon`` (a :class:`~hcr.lexicon.Lexicon`, a file
    or a list of words: each decoded word must be an entry) control the decoding;
    ``charset`` (as for :class:`hcr.reading.char.Predictor`: ``digits``, ``upper``, ... or the
    allowed characters) removes the other classes from every column before decoding (the
    blank and the space stay allowed)."""

    def __init__(self, backend: Backend, *, beam_width: int | None = None, lexicon: Lexicon | str | os.PathLike[str] | Sequence[str] | None = None, charset: str | None = None, ignore_case: bool = False) -> None:
        if backend.task != "sequence":
            raise ModelFileError(f"{backend.source}: a character classifier, not a word/line model (use hcr predict or hcr read without --engine crnn)")
        self.backend = backend
        self.codec: CTCCodec = backend.codec
        self.spec: LineSpec = backend.meta.line_spec()
        self.stride = stride_of(backend.meta.model_kwargs)
        self.beam_width = beam_width
        self.allowed: np.ndarray | None = None
        if charset is not None:
            labels = self.codec.label_map()
            self.allowed = parse_charset(charset, labels, ignore_case=ignore_case).mask(self.codec.num_classes)
            self.allowed[0] = True
            if self.codec.can_encode(" "):
                self.allowed[self.codec.encode(" ")[0]] = True
        if lexicon is None or isinstance(lexicon, Lexicon):
            self.lexicon = lexicon
        elif isinstance(lexicon, (str, os.PathLike)):
            self.lexicon = Lexicon.from_file(lexicon)
        else:
            self.lexicon = Lexicon(lexicon)

    @classmethod
    def load(cls, model: str | os.PathLike[str] | None = None, *, device: str = "cpu", threads: int | None = None, **kw: Any) -> "LineRecognizer":
        """A shipped model by name (``words``, the default; its ONNX runtime file when
        onnxruntime is installed, see :mod:`hcr.pretrained`) or a sequence model file of any
        format hcr reads (``.pt``, ``.onnx``, TorchScript, Keras, SavedModel, TFLite)."""
        return cls(load_backend(model if model is not None else "words", device=device, threads=threads, shipped_runtime=True), **kw)

    @classmethod
    def from_network(cls, model: Any, codec: CTCCodec, spec: LineSpec, *, device: str = "cpu", **kw: Any) -> "LineRecognizer":
        """An in-memory PyTorch CRNN (``nn.Module``) with its codec and line spec."""
        from ..runtime.torch import TorchBackend

        meta = ModelMeta(task="sequence", preprocess=spec.to_dict(), codec=codec, model_name="crnn", model_kwargs={"stride": int(getattr(model, "column_stride", DEFAULT_STRIDE))})
        return cls(TorchBackend(model, meta, "<network>", device), **kw)

    def with_decoding(self, **kw: Any) -> "LineRecognizer":
        """The same network with other decoding options (``beam_width``, ``lexicon``, ``charset``)."""
        return LineRecognizer(self.backend, **kw)

    @property
    def meta(self) -> dict[str, Any]:
        return {"model": self.backend.meta.model_name, "metrics": self.backend.meta.metrics, "source": self.backend.source, "format": self.backend.format}

    def preprocess(self, image: ImageInput, *, stages: bool = False, name: str | None = None) -> Preprocessed:
        return preprocess_line(image, self.spec, stages=stages, name=name)

    def log_probs(self, images: Sequence[np.ndarray], batch_size: int = 64) -> list[np.ndarray]:
        """Per preprocessed line image, the (T, C) log-probabilities of its columns."""
        return line_log_probs_with(lambda x: self.backend.logits(x, batch_size), images, self.stride, batch_size)

    def decode(self, lp: np.ndarray) -> Decoded:
        """Decode one line's (T, C) log-probabilities with this recognizer's options."""
        if self.allowed is not None:
            lp = log_softmax(np.where(self.allowed, lp, -np.inf))
        return decode(lp, self.codec, beam_width=self.beam_width, lexicon=self.lexicon)

    def decode_in_context(self, lp: np.ndarray) -> Decoded:
        """:meth:`decode`, then, when neither a charset nor a lexicon is set and at least
        :data:`KIND_SHARE` of the letters and digits read (two or more) are of one kind, the
        line decoded again with the other kind left out: a name is letters (``DUB015`` ->
        ``DUBOIS``), a date or an amount digits and punctuation. The same rule as the
        segmentation engine's context (:mod:`hcr.reading.segmented`, step 5), for a whole line."""
        dec = self.decode(lp)
        if self.allowed is not None or self.lexicon is not None:
            return dec
        kinds = [c.isdigit() for c in dec.text if c.isalnum()]
        if len(kinds) < 2:
            return dec
        digits = sum(kinds) >= KIND_SHARE * len(kinds)
        if not digits and len(kinds) - sum(kinds) < KIND_SHARE * len(kinds):
            return dec
        keep = np.asarray([True] + [(not c.isalpha()) if digits else (not c.isdigit()) for c in self.codec.alphabet])
        return decode(log_softmax(np.where(keep, lp, -np.inf)), self.codec, beam_width=self.beam_width)

    def recognize_inputs(self, inputs: Sequence[Preprocessed], *, context: bool = False) -> list[Decoded]:
        """Decode already-preprocessed lines (blank ones give empty text without the
        network); ``context``: :meth:`decode_in_context`."""
        todo = [i for i, p in enumerate(inputs) if not p.blank]
        out = [Decoded("") for _ in inputs]
        for i, lp in zip(todo, self.log_probs([inputs[i].image for i in todo])):
            out[i] = self.decode_in_context(lp) if context else self.decode(lp)
        return out

    def recognize(self, image: ImageInput, *, name: str | None = None) -> Decoded:
        """The text of one word or line image."""
        return self.recognize_inputs([self.preprocess(image, name=name)])[0]
