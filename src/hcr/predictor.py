"""Character prediction: :class:`Predictor` and :class:`Prediction`, kept importable here;
they live in :mod:`hcr.reading.char`."""

from .reading.char import Prediction, Predictor

__all__ = ["Prediction", "Predictor"]
