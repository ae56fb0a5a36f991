"""Character classification: a model file in, labels with confidences out (:class:`Predictor`).

``Predictor.load(model)`` takes a shipped pretrained model by name (``chars``, the default,
``digits``, ``letters``; see :mod:`hcr.pretrained`) or a model file, builds the network and
takes the preprocessing spec and label map from the same file, so prediction can never
disagree with training. Inputs go through :func:`hcr.preprocess.preprocess`; decoding
(softmax with the file's temperature, an optional charset and case merging from
:mod:`hcr.charset`, top-k, rejection of blank or uncertain inputs) happens here, outside
the network.

The network runs in a :class:`hcr.runtime.base.Backend`: PyTorch for hcr model files, or
onnxruntime, TorchScript, Keras, TensorFlow SavedModel or TFLite for exported and imported
files (:func:`hcr.runtime.load_backend` tells them apart by content). This module imports
torch only for an in-memory PyTorch network, so ``Predictor.load("model.onnx")`` works in
an install without torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..charset import AnswerFilter
from ..errors import HcrError, InputError
from ..labels import LabelMap
from ..modelfile import ModelMeta
from ..preprocess import ImageInput, Preprocessed, PreprocessSpec, iter_pages, preprocess
from ..runtime import Backend, load_backend

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from ..checkpoint import Checkpoint


@dataclass
class Prediction:
    """One answer. ``label`` is None when the image holds no character (``blank``) or
    could not be read (``error``); ``uncertain`` marks confidences below the threshold.
    ``page``: the page of a document (a PDF, a multi-page TIFF) answered, from 1
    (:meth:`Predictor.predict_files` with ``pages``); None for a single image (and then
    left out of :meth:`to_dict`)."""

    label: str | None
    confidence: float
    top_k: list[tuple[str, float]] = field(default_factory=list)
    blank: bool = False
    uncertain: bool = False
    box: tuple[int, int, int, int] | None = None
    file: str | None = None
    error: str | None = None
    input: np.ndarray | None = field(default=None, repr=False)  # the exact model input (not serialised)
    page: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            **({"page": self.page} if self.page is not None else {}),
            "label": self.label,
            "confidence": round(float(self.confidence), 6),
            "top_k": [[s, round(float(p), 6)] for s, p in self.top_k],
            "blank": self.blank,
            "uncertain": self.uncertain,
            "box": list(self.box) if self.box else None,
            "error": self.error,
        }


class Predictor:
    """Character classifier ready for inference.

    ``charset`` (see :func:`hcr.charset.parse_charset`: ``digits``, ``upper``, ``lower``,
    ``letters``, ``alnum`` or the allowed characters, e.g. ``"0123456789ABCDEF"``) limits the
    answers to those classes, renormalising their probabilities; ``ignore_case`` makes
    letters that differ only by case one answer (probabilities summed, reported as the
    more probable member). Both are checked here, so a bad charset fails at construction
    with an :class:`~hcr.errors.HcrError` naming the problem.
    """

    def __init__(self, model: "nn.Module | Backend", label_map: LabelMap, spec: PreprocessSpec, *, threshold: float = 0.5, temperature: float = 1.0, device: str = "cpu", meta: dict[str, Any] | None = None, charset: str | None = None, ignore_case: bool = False) -> None:
        self.answer_filter = AnswerFilter(label_map, charset, ignore_case=ignore_case)
        if isinstance(model, Backend):
            if model.task != "classify":
                raise HcrError(f"{model.source} is a {model.task} model (words and lines), not a character classifier")
            self.backend: Backend = model
        else:
            from ..runtime.torch import TorchBackend

            self.backend = TorchBackend(model, ModelMeta("classify", spec.to_dict(), labels=label_map, temperature=temperature), device=device)
        #: the torch device of a PyTorch model (None for other runtimes, which run on the CPU)
        self.device = getattr(self.backend, "device", None)
        self.label_map = label_map
        self.spec = spec
        self.threshold = threshold
        self.temperature = temperature
        self.meta = meta or {}

    @property
    def charset(self) -> str | None:
        """The charset spec in force (None: every class)."""
        return self.answer_filter.charset.spec if self.answer_filter.charset else None

    @property
    def ignore_case(self) -> bool:
        return self.answer_filter.ignore_case

    @property
    def model(self) -> Any:
        """The network object of the backend (an ``nn.Module`` for PyTorch models, a Keras
        model, ...; None for runtimes that expose none, such as onnxruntime)."""
        return getattr(self.backend, "model", None)

    @classmethod
    def from_checkpoint(cls, ckpt: "Checkpoint", **kw: Any) -> "Predictor":
        if not isinstance(ckpt.spec, PreprocessSpec):
            raise HcrError(f"{ckpt.source} is a {ckpt.task} model (words and lines), not a character classifier")
        meta = {"model": ckpt.model_name, "metrics": ckpt.metrics, "config": ckpt.config, "versions": ckpt.versions, "source": ckpt.source}
        return cls(ckpt.build_model(), ckpt.label_map, ckpt.spec, temperature=ckpt.temperature, meta=meta, **kw)

    @classmethod
    def from_backend(cls, backend: "Backend", *, pretrained: str | None = None, **kw: Any) -> "Predictor":
        """A predictor over any :class:`~hcr.runtime.base.Backend` (its metadata supplies the
        label map, preprocessing and temperature); ``pretrained``: the shipped model's name."""
        m = backend.meta
        meta = {"model": m.model_name, "format": backend.format, "metrics": m.metrics, "versions": m.versions, "source": backend.source}
        if pretrained is not None:
            meta["pretrained"] = pretrained
        return cls(backend, backend.label_map, backend.spec, temperature=backend.temperature, meta=meta, **kw)

    @classmethod
    def load(cls, model: str | os.PathLike[str] | None = None, *, threshold: float = 0.5, device: str = "cpu", charset: str | None = None, ignore_case: bool = False, threads: int | None = None) -> "Predictor":
        """Load a pretrained model by name (``chars``, ``digits``, ``letters``; None: the
        default, ``chars``) or a model file: written by ``hcr train``, exported by ``hcr
        export`` (ONNX, TorchScript, Keras, SavedModel, TFLite) or a Keras classifier
        imported with ``hcr import-keras``. A shipped model with an ONNX runtime file runs on
        onnxruntime when it is installed (``HCR_RUNTIME=pytorch`` keeps PyTorch; see
        :mod:`hcr.pretrained`); ``threads`` sets onnxruntime's thread count."""
        from ..pretrained import DEFAULT_MODEL, is_pretrained_name

        backend = load_backend(model, device=device, threads=threads, shipped_runtime=True)
        name = DEFAULT_MODEL if model is None else str(model) if is_pretrained_name(model) else None
        return cls.from_backend(backend, pretrained=name, threshold=threshold, charset=charset, ignore_case=ignore_case)

    def preprocess(self, x: ImageInput, *, stages: bool = False, name: str | None = None) -> Preprocessed:
        return preprocess(x, self.spec, stages=stages, name=name)

    def predict_inputs(self, inputs: Sequence[Preprocessed], top_k: int = 5) -> list[Prediction]:
        """Classify already-preprocessed inputs (blank ones are answered without the network)."""
        todo = [i for i, p in enumerate(inputs) if not p.blank]
        out = [Prediction(None, 0.0, [], blank=True, input=p.image) for p in inputs]
        if not todo:
            return out
        probs = self.backend.probs(np.stack([inputs[i].image for i in todo]), temperature=self.temperature)
        for i, top in zip(todo, self.answer_filter.decode(probs, top_k)):
            label, conf = top[0]
            out[i] = Prediction(label, conf, top, uncertain=conf < self.threshold, box=inputs[i].box, input=inputs[i].image)
        return out

    def predict(self, x: ImageInput | Sequence[ImageInput], top_k: int = 5) -> Prediction | list[Prediction]:
        """Predict one input (path, bytes, PIL image, 2-D/3-D array) or a list of them.

        Raises :class:`~hcr.errors.InputError` for unreadable input; use
        :meth:`predict_files` to keep going over a batch and collect errors instead.
        """
        single = not isinstance(x, (list, tuple))
        items: list[ImageInput] = [x] if single else list(x)  # type: ignore[list-item,arg-type]
        names = [str(i) if isinstance(i, (str, os.PathLike)) else None for i in items]
        pre = [self.preprocess(i) for i in items]
        preds = self.predict_inputs(pre, top_k)
        for p, n in zip(preds, names):
            p.file = n
        return preds[0] if single else preds

    def predict_files(self, files: Sequence[str | Path], top_k: int = 5, batch: int = 256, *, pages: bool = False) -> list[Prediction]:
        """Predict many files; unreadable ones get a Prediction with ``error`` set.

        ``pages``: every page of a document (a PDF, a multi-page TIFF:
        :func:`hcr.preprocess.iter_pages`) is one prediction, with ``page`` set (from 1),
        instead of one prediction per file (of its first frame; a PDF is then an error). A
        page that cannot be read ends its document with an error prediction; a PDF without
        pypdfium2 installed raises :class:`HcrError`."""
        out: list[Prediction] = []
        todo: list[tuple[str, int | None, Preprocessed]] = []  # preprocessed, not yet answered

        def answer() -> None:
            preds = self.predict_inputs([pre for _, _, pre in todo], top_k)
            for (file, page, _), pred in zip(todo, preds):
                pred.file, pred.page = file, page
            out.extend(preds)
            todo.clear()

        for f in files:
            file = str(f)
            try:
                if pages:
                    for page, grey in iter_pages(f):
                        todo.append((file, page or None, self.preprocess(grey, name=f"{file} page {page}" if page else file)))
                else:
                    todo.append((file, None, self.preprocess(f)))
            except InputError as e:
                answer()  # the file's pages read so far come first
                out.append(Prediction(None, 0.0, error=str(e), file=file))
            if len(todo) >= batch:
                answer()
        answer()
        return out
