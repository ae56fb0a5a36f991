"""Model registry: ``create_model(name, num_classes, **kwargs)`` and ``list_models()``.

Every model takes a (B, 1, H, W) float batch in [0, 1] (ink bright). Classifiers return
logits (B, num_classes); sequence models (task "sequence", the CRNN) return per-column
logits (B, T, num_classes) for CTC. Decoding lives outside the networks
(:mod:`hcr.reading`, :mod:`hcr.ctc`).
"""

from . import cnn, crnn  # noqa: F401  (registers the models)
from .registry import channels_last, count_parameters, create_model, describe_model, list_models, model_task, register_model

__all__ = ["channels_last", "count_parameters", "create_model", "describe_model", "list_models", "model_task", "register_model"]
