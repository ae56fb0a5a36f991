"""hcr: handwritten character recognition.

The data path, one hop per module: ``hcr.data`` (sources) -> ``hcr.augment`` (training
only) -> ``hcr.preprocess`` (the one path to model input) -> ``hcr.models`` (registry) ->
``hcr.checkpoint`` (one self-describing file) -> ``hcr.predictor`` -> ``hcr.cli``.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
