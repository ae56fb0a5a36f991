"""Reading: model input in, answers out, with any runtime (:mod:`hcr.runtime`).

==================  ==========================================================================
module              what
==================  ==========================================================================
``char``            :class:`Predictor`: one character per image (a classifier)
``line``            :class:`LineRecognizer`: one word or line per image (a CTC sequence model)
``segmented``       :class:`Reader`: characters cut apart by the segmentation, classified,
                    with the context rules and the lexicon
``crnn``            :class:`CrnnReader`: each line of a page read whole by a sequence model
``result``          :class:`ReadResult` and what both readers share (fields, files, pages)
==================  ==========================================================================

:func:`load_recognizer` is the one place that decides between a classifier and a sequence
model for a model file: the CLI, the API and the app call it.
"""

from __future__ import annotations

import os

from ..pretrained import DEFAULT_MODEL, is_pretrained_name
from ..runtime import load_backend
from .char import Prediction, Predictor
from .crnn import CrnnReader
from .line import LineRecognizer
from .result import ReadChar, ReadLine, ReadResult, ReadWord
from .segmented import Reader, read, split_charset

#: Reading engines: "segment" (characters cut apart and classified: separately written
#: characters, codes, forms) and "crnn" (whole lines through a CRNN with CTC: joined-up and
#: cursive writing).
ENGINES = ("segment", "crnn")


def load_recognizer(model: str | os.PathLike[str] | None = None, *, device: str = "cpu", threads: int | None = None, shipped_runtime: bool = True) -> Predictor | LineRecognizer:
    """A model file or shipped name (None: the default classifier) as what reads with it: a
    :class:`Predictor` for a character classifier, a :class:`LineRecognizer` for a word/line
    (CTC) model. ``shipped_runtime``: a shipped model runs on its ONNX runtime file where it
    can (:func:`hcr.runtime.load_backend`)."""
    backend = load_backend(model, device=device, threads=threads, shipped_runtime=shipped_runtime)
    if backend.task == "sequence":
        return LineRecognizer(backend)
    name = DEFAULT_MODEL if model is None else str(model) if is_pretrained_name(model) else None
    return Predictor.from_backend(backend, pretrained=name)


__all__ = ["CrnnReader", "ENGINES", "LineRecognizer", "Prediction", "Predictor", "ReadChar", "ReadLine", "ReadResult", "ReadWord", "Reader", "load_recognizer", "read", "split_charset"]
