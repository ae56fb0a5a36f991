"""Export hcr models to ONNX, TorchScript, Keras, TensorFlow SavedModel and TFLite.

``export_model(source, fmt, out)`` takes an hcr model file (or a pretrained name, a loaded
:class:`~hcr.checkpoint.Checkpoint`, or an ``nn.Module`` with its :class:`~hcr.modelfile.ModelMeta`)
and writes the network alone: preprocessing, softmax temperature, charset handling and CTC
decoding stay in hcr's numpy code, described by the metadata stored with the file (see
:mod:`hcr.modelfile`). Then, unless ``check=False``, it loads the new file with its own
runtime and compares it with PyTorch on real inputs (:func:`parity_inputs`: 512 preprocessed
handwritten digits, or 512 composed lines of them for the CRNN): the largest absolute
probability difference must stay within :data:`TOLERANCE` (1e-4; 1e-3 for TensorFlow formats)
and every top-1 answer must agree, else nothing is written.

=================  =================================================================
``onnx``           ``torch.onnx.export`` (opset 17), dynamic batch (and width for the
                   CRNN); metadata in ``metadata_props["hcr"]``. ``quantize="int8"``:
                   onnxruntime static QDQ quantisation calibrated on embedded digits
                   (lines of them for the CRNN).
``torchscript``    ``torch.jit.trace``; metadata as the extra file ``hcr.json``.
``keras``          the same network rebuilt layer by layer in Keras 3 with the weights
                   copied (NCHW -> NHWC, flatten order, BatchNorm eps, LSTM gates and the
                   two torch biases summed); a ``.keras`` zip with ``hcr.json`` inside.
``tf-savedmodel``  that Keras model exported as a SavedModel folder; metadata in
                   ``assets.extra/hcr.json``.
``tflite``         the SavedModel converted by the TFLite converter (built-in ops only;
                   the CRNN with a batch of one line and a free width, as the TFLite
                   LSTM kernels need); metadata in a TFLite metadata buffer named ``hcr``.
=================  =================================================================

Writes are atomic: the file (or folder) is built under a temporary name beside ``out``,
checked, then renamed, so an interruption or a failed check never leaves half a model.
"""

from __future__ import annotations

import copy
import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from .checkpoint import Checkpoint, load_checkpoint
from .errors import HcrError
from .modelfile import ModelMeta, commit, remove_path, temp_sibling
from .runtime import EXPORT_FORMATS, FORMATS, QUANTIZE, Backend, load_backend, sniff_format
from .runtime.torch import TorchBackend

#: Largest absolute probability difference allowed between PyTorch and an export (the
#: ``tolerance`` of each :data:`hcr.runtime.FORMATS` row).
TOLERANCE = {name: FORMATS[name].tolerance for name in EXPORT_FORMATS}
#: Images used by the parity check.
CHECK_IMAGES = 512


@dataclass
class Parity:
    """How closely an export matches PyTorch: the largest absolute probability difference,
    the share of inputs with the same top-1 answer (classifiers: the class; sequence
    models: every column's class and so the decoded text) and how many inputs were compared."""

    max_abs_diff: float
    top1_agreement: float
    images: int

    def __str__(self) -> str:
        return f"max |dp| {self.max_abs_diff:.2e}, top-1 agreement {self.top1_agreement:.2%} on {self.images} images"


@dataclass
class ExportResult:
    path: Path
    format: str
    bytes: int
    seconds: float
    parity: Parity | None
    quantized: str | None = None

    def summary(self) -> str:
        what = self.format + (f" ({self.quantized})" if self.quantized else "")
        check = f"; parity vs PyTorch: {self.parity}" if self.parity else "; not checked"
        return f"wrote {self.path} ({what}, {self.bytes / 1e6:.2f} MB, {self.seconds:.1f} s){check}"


# --------------------------------------------------------------------------- sources


def resolve_source(source: str | os.PathLike[str] | Checkpoint | tuple[nn.Module, ModelMeta] | None) -> tuple[nn.Module, ModelMeta]:
    """(network in eval mode on the CPU, metadata) of a pretrained name, an hcr model file,
    a Checkpoint, or an ``(nn.Module, ModelMeta)`` pair (the module is copied)."""
    if isinstance(source, tuple):
        module, meta = source
        return copy.deepcopy(module).cpu().float().eval(), meta
    if not isinstance(source, Checkpoint):
        from .pretrained import resolve_model

        path = resolve_model(source)
        fmt = sniff_format(path)
        if fmt != "pytorch":
            raise HcrError(f"{path} is a {fmt} file: hcr export starts from an hcr PyTorch model file (.pt) or a pretrained name")
        source = load_checkpoint(path)
    return source.build_model().cpu().float().eval(), source.meta


# --------------------------------------------------------------------------- parity inputs


_INPUTS: dict[tuple[Any, ...], list[np.ndarray]] = {}


def parity_inputs(meta: ModelMeta, n: int = CHECK_IMAGES, seed: int = 0) -> list[np.ndarray]:
    """Real model inputs for checking an export, as batches of equal-sized ``(B, H, W)``
    float32 arrays: ``n`` handwritten digits (the embedded UCI digits) through the model's
    own preprocessing, or for sequence models ``n`` lines composed of those digits through
    the line preprocessing (widths bucketed to multiples of 32, zero-padded on the right).
    Memoised (the last few requests): do not modify the arrays."""
    key = (meta.task, json.dumps(meta.preprocess, sort_keys=True), n, seed)
    if key not in _INPUTS:
        if len(_INPUTS) >= 4:
            _INPUTS.pop(next(iter(_INPUTS)))
        _INPUTS[key] = _make_parity_inputs(meta, n, seed)
    return _INPUTS[key]


def _make_parity_inputs(meta: ModelMeta, n: int, seed: int) -> list[np.ndarray]:
    from .data.digits import DigitsSource
    from .preprocess import PreprocessSpec, preprocess_many

    samples = DigitsSource().load("all")
    rng = np.random.default_rng(seed)
    if meta.task == "classify":
        x, blank = preprocess_many(samples.images, meta.spec)
        x = x[~blank]
        idx = rng.permutation(len(x))
        x = x[np.resize(idx, n)]  # repeats only when n exceeds the data set
        return [x[i : i + 256] for i in range(0, n, 256)]
    from .compose import GlyphPool, compose
    from .preprocess import preprocess_line

    glyphs, _ = preprocess_many(samples.images, PreprocessSpec())
    pool = GlyphPool.from_samples(np.round(glyphs * 255).astype(np.uint8), samples.targets, samples.label_map.symbols)
    spec = meta.line_spec()
    lines = []
    for _ in range(n):
        text = "".join(str(d) for d in rng.integers(0, 10, int(rng.integers(1, 9))))
        if rng.random() < 0.3:
            text += " " + "".join(str(d) for d in rng.integers(0, 10, int(rng.integers(1, 5))))
        lines.append(preprocess_line(compose(text, pool, rng), spec).image)
    buckets: dict[int, list[np.ndarray]] = {}
    for img in lines:
        w = -(-img.shape[1] // 32) * 32
        padded = np.zeros((img.shape[0], w), np.float32)
        padded[:, : img.shape[1]] = img
        buckets.setdefault(w, []).append(padded)
    return [np.stack(v) for _, v in sorted(buckets.items())]


def compare(reference: Backend, other: Backend, batches: Sequence[np.ndarray]) -> Parity:
    """:class:`Parity` of ``other`` against ``reference`` on ``batches``."""
    worst, same, total = 0.0, 0, 0
    for x in batches:
        a, b = reference.probs(x), other.probs(x)
        if a.shape != b.shape:
            raise HcrError(f"{other.source}: output shape {b.shape} differs from PyTorch's {a.shape}")
        worst = max(worst, float(np.abs(a.astype(np.float64) - b).max()))
        agree = a.argmax(-1) == b.argmax(-1)
        same += int(agree.reshape(len(x), -1).all(axis=1).sum())
        total += len(x)
    return Parity(worst, same / max(total, 1), total)


# --------------------------------------------------------------------------- export


def default_output(source: str | os.PathLike[str], fmt: str, quantize: str | None = None) -> Path:
    """``model.pt`` -> ``model.onnx`` (``model.int8.onnx``, ``model.torchscript.pt``, ...)."""
    p = Path(str(source))
    stem = p.stem if p.suffix == ".pt" else p.name
    return p.with_name(stem + (f".{quantize}" if quantize else "") + (FORMATS[fmt].suffix or "_savedmodel"))


def export_model(
    source: str | os.PathLike[str] | Checkpoint | tuple[nn.Module, ModelMeta] | None,
    fmt: str,
    out: str | os.PathLike[str],
    *,
    check: bool = True,
    quantize: str | None = None,
    check_images: int = CHECK_IMAGES,
) -> ExportResult:
    """Export ``source`` to ``out`` in format ``fmt`` (see the module docstring).

    ``quantize="int8"`` (ONNX only) writes an int8 model; its parity is reported, not
    enforced. Raises :class:`HcrError` for an unknown format, a network that cannot be
    converted, or an export that fails its parity check (nothing is written then).
    """
    if fmt not in EXPORT_FORMATS:
        raise HcrError(f"unknown export format {fmt!r}; choose one of: {', '.join(EXPORT_FORMATS)}")
    if quantize is not None and quantize not in QUANTIZE:
        raise HcrError(f"unknown quantisation {quantize!r}; choose one of: {', '.join(QUANTIZE)}")
    if quantize and fmt != "onnx":
        raise HcrError("int8 quantisation is offered for ONNX exports only (--format onnx)")
    row = FORMATS[fmt]
    if fmt == "onnx":
        from .runtime.onnx import require_onnx

        require_onnx()
    t0 = time.perf_counter()
    model, meta = resolve_source(source)
    meta = replace(meta, layout=row.layout, output="logits", invert=False, scale=1.0)
    out = Path(out)
    tmp = temp_sibling(out, directory=not row.suffix)
    try:
        with torch.inference_mode(False), torch.no_grad():
            row.write_function()(model, meta, tmp)
            if quantize:
                from .runtime.onnx import quantize_onnx

                fp32 = temp_sibling(out)
                os.replace(tmp, fp32)
                try:
                    quantize_onnx(fp32, tmp, meta, parity_inputs(meta, 256, seed=1))
                finally:
                    fp32.unlink(missing_ok=True)
        parity = None
        if check:
            reference = TorchBackend(model, replace(meta, layout="NCHW"), "<pytorch>")
            parity = compare(reference, load_backend(tmp), parity_inputs(meta, check_images))
            if not quantize and (parity.max_abs_diff > TOLERANCE[fmt] or parity.top1_agreement < 1.0):
                raise HcrError(f"{fmt} export of {meta.describe()} does not match PyTorch ({parity}; allowed max |dp| {TOLERANCE[fmt]:g}, identical top-1): nothing written")
        commit(tmp, out)
    except BaseException:
        remove_path(tmp)
        raise
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) if out.is_dir() else out.stat().st_size
    return ExportResult(out, fmt, size, time.perf_counter() - t0, parity, quantize)


__all__ = ["CHECK_IMAGES", "TOLERANCE", "ExportResult", "Parity", "compare", "default_output", "export_model", "parity_inputs", "resolve_source"]
