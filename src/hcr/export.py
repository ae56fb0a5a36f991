"""Export hcr models to ONNX, TorchScript, Keras, TensorFlow SavedModel and TFLite.

``export_model(source, fmt, out)`` takes an hcr model file (or a pretrained name, a loaded
:class:`~hcr.checkpoint.Checkpoint`, or an ``nn.Module`` with its :class:`~hcr.backends.ModelMeta`)
and writes the network alone: preprocessing, softmax temperature, charset handling and CTC
decoding stay in hcr's numpy code, described by the metadata stored with the file (see
:mod:`hcr.backends`). Then, unless ``check=False``, it loads the new file with its own
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
import io
import json
import os
import tempfile
import time
import warnings
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from .backends import (
    FORMATS, META_FILE, META_KEY, Backend, ModelMeta, TorchBackend, commit, import_tensorflow, load_backend,
    meta_from_checkpoint, remove_path, temp_sibling,
)
from .checkpoint import Checkpoint, load_checkpoint
from .errors import HcrError

#: Largest absolute probability difference allowed between PyTorch and an export.
TOLERANCE = {"onnx": 1e-4, "torchscript": 1e-4, "keras": 1e-3, "tf-savedmodel": 1e-3, "tflite": 1e-3}
#: The ONNX opset written.
OPSET = 17
#: Default suffix of each format's output.
SUFFIX = {"onnx": ".onnx", "torchscript": ".torchscript.pt", "keras": ".keras", "tf-savedmodel": "", "tflite": ".tflite"}
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
        from .backends import sniff_format
        from .pretrained import resolve_model

        path = resolve_model(source)
        fmt = sniff_format(path)
        if fmt != "pytorch":
            raise HcrError(f"{path} is a {fmt} file: hcr export starts from an hcr PyTorch model file (.pt) or a pretrained name")
        source = load_checkpoint(path)
    return source.build_model().cpu().float().eval(), meta_from_checkpoint(source)


def _example(meta: ModelMeta, batch: int = 2, width: int = 64) -> torch.Tensor:
    if meta.task == "sequence":
        return torch.rand(batch, 1, int(meta.preprocess.get("height", 32)), width)
    s = int(meta.preprocess.get("size", 28))
    return torch.rand(batch, 1, s, s)


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


# --------------------------------------------------------------------------- ONNX


def _require_onnx() -> None:
    """ONNX export writes with the ``onnx`` package (onnxruntime alone runs, not writes)."""
    import importlib.util

    missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        raise HcrError(f"ONNX export needs {' and '.join(missing)}: pip install 'hcr-toolkit[onnx]'")


def _onnx_bytes(model: nn.Module, meta: ModelMeta, opset: int = OPSET) -> bytes:
    import onnx

    buf = io.BytesIO()
    dynamic = {"input": {0: "batch"}, "logits": {0: "batch"}}
    if meta.task == "sequence":
        dynamic = {"input": {0: "batch", 3: "width"}, "logits": {0: "batch", 1: "columns"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter is deprecated in favour of dynamo (needs onnxscript)
        torch.onnx.export(model, (_example(meta),), buf, dynamo=False, opset_version=opset, input_names=["input"],  # type: ignore[arg-type]
                          output_names=["logits"], dynamic_axes=dynamic, do_constant_folding=True)  # (the legacy exporter writes to a buffer)
    proto = onnx.load_from_string(buf.getvalue())
    _set_onnx_meta(proto, meta)
    return proto.SerializeToString()


def _set_onnx_meta(proto: Any, meta: ModelMeta) -> None:
    import onnx

    from . import __version__

    keep = {p.key: p.value for p in proto.metadata_props if p.key != META_KEY}
    onnx.helper.set_model_props(proto, {**keep, META_KEY: meta.to_json()})
    proto.producer_name, proto.producer_version = "hcr", __version__
    proto.doc_string = f"hcr {meta.describe()}: input (N,1,H,W) float32 in [0,1], ink bright; output {meta.output}"


def _calibration_reader(meta: ModelMeta, n: int = 256) -> Any:
    from onnxruntime.quantization import CalibrationDataReader

    batches = parity_inputs(meta, n, seed=1)

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.it: Iterator[np.ndarray] = (x[i : i + 32, None] for x in batches for i in range(0, len(x), 32))

        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(self.it, None)
            return None if x is None else {"input": np.ascontiguousarray(x, np.float32)}

    return Reader()


def quantize_onnx(fp32: Path, out: Path, meta: ModelMeta) -> None:
    """int8 weights (per channel) and activations: onnxruntime's static QDQ quantisation,
    calibrated on 256 real inputs (:func:`parity_inputs` with another seed: embedded digits,
    or lines of them for the CRNN, whose LSTM stays in float)."""
    import logging

    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser logs advice through the root logger
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_static(str(fp32), str(out), _calibration_reader(meta), quant_format=QuantFormat.QDQ,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
    finally:
        root.setLevel(level)
    proto = onnx.load(str(out))
    _set_onnx_meta(proto, meta)
    out.write_bytes(proto.SerializeToString())


# --------------------------------------------------------------------------- TorchScript


def _torchscript(model: nn.Module, meta: ModelMeta, out: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes about shape arithmetic: checked by the parity test
        traced = torch.jit.trace(model, (_example(meta),), check_trace=False, _store_inputs=False)
        buf = io.BytesIO()  # saved through a buffer: the archive's folder is "archive", not the temporary name
        torch.jit.save(traced, buf, _extra_files={META_FILE: meta.to_json()})
    out.write_bytes(buf.getvalue())


# --------------------------------------------------------------------------- Keras


class _KerasBuilder:
    """Rebuilds torch layers as Keras layers on a symbolic NHWC tensor and copies weights.

    ``shape`` tracks (H, W, C) of the activations (None for a free width); after a Flatten,
    ``perm`` maps Keras' (h, w, c) feature order onto torch's (c, h, w) for the next Linear.
    """

    def __init__(self) -> None:
        import_tensorflow()
        import keras

        self.L = keras.layers
        self.shape: tuple[int | None, int | None, int] | None = None
        self.perm: np.ndarray | None = None

    def sequence(self, x: Any, modules: Sequence[nn.Module]) -> Any:
        mods = [m for m in modules if not isinstance(m, nn.Identity)]
        i = 0
        while i < len(mods):
            m = mods[i]
            relu_next = i + 1 < len(mods) and isinstance(mods[i + 1], nn.ReLU)
            # conv, pool, ReLU (hcr.models.cnn.pool_then_relu) is conv+ReLU, pool: the classic Keras layers
            pool_relu = (not relu_next and i + 2 < len(mods) and isinstance(mods[i + 1], nn.MaxPool2d) and isinstance(mods[i + 2], nn.ReLU))
            if isinstance(m, nn.Conv2d) and pool_relu:
                x = self.layer(self.conv(x, m, True), mods[i + 1])
                i += 3
            elif isinstance(m, nn.Conv2d):
                x = self.conv(x, m, relu_next)
                i += 1 + relu_next
            elif isinstance(m, nn.Linear):
                x = self.dense(x, m, relu_next)
                i += 1 + relu_next
            else:
                x = self.layer(x, m)
                i += 1
        return x

    def conv(self, x: Any, m: nn.Conv2d, relu: bool) -> Any:
        if m.groups != 1 or tuple(m.dilation) != (1, 1) or m.padding_mode != "zeros" or isinstance(m.padding, str):
            raise HcrError(f"cannot convert {m} to Keras (groups, dilation or padding mode)")
        (kh, kw), (sh, sw), (ph, pw) = m.kernel_size, m.stride, m.padding
        same = (sh, sw) == (1, 1) and kh % 2 == 1 and kw % 2 == 1 and (ph, pw) == ((kh - 1) // 2, (kw - 1) // 2) and ph + pw > 0
        if (ph or pw) and not same:
            x = self.L.ZeroPadding2D(((ph, ph), (pw, pw)))(x)
        layer = self.L.Conv2D(m.out_channels, (kh, kw), strides=(sh, sw), padding="same" if same else "valid",
                              use_bias=m.bias is not None, activation="relu" if relu else None)
        y = layer(x)
        w = [m.weight.detach().numpy().transpose(2, 3, 1, 0)]
        if m.bias is not None:
            w.append(m.bias.detach().numpy())
        layer.set_weights(w)
        self.shape = _hwc(y)
        return y

    def dense(self, x: Any, m: nn.Linear, relu: bool) -> Any:
        kernel = m.weight.detach().numpy()
        if self.perm is not None:
            kernel = kernel[:, self.perm]
            self.perm = None
        layer = self.L.Dense(m.out_features, use_bias=m.bias is not None, activation="relu" if relu else None)
        y = layer(x)
        layer.set_weights([kernel.T] + ([m.bias.detach().numpy()] if m.bias is not None else []))
        return y

    def layer(self, x: Any, m: nn.Module) -> Any:
        L = self.L
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            if self.perm is not None or m.running_mean is None or m.running_var is None:
                raise HcrError(f"cannot convert {m} to Keras (after a flatten, or without running statistics)")
            layer = L.BatchNormalization(axis=-1, epsilon=m.eps, center=m.affine, scale=m.affine)
            y = layer(x)
            stats = [m.running_mean.detach().numpy(), m.running_var.detach().numpy()]
            layer.set_weights(([m.weight.detach().numpy(), m.bias.detach().numpy()] if m.affine else []) + stats)
            return y
        if isinstance(m, nn.ReLU):
            return L.ReLU()(x)
        if isinstance(m, nn.Dropout):
            return L.Dropout(m.p)(x)
        if isinstance(m, nn.MaxPool2d):
            return self.pool(x, m)
        if isinstance(m, nn.Flatten):
            h, w, c = self.shape or (None, None, 0)
            if h is None or w is None:
                raise HcrError("cannot convert a Flatten of a free-size input to Keras")
            self.perm = np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).ravel()
            self.shape = None
            return L.Flatten()(x)
        raise HcrError(f"cannot convert layer {type(m).__name__} to Keras")

    def pool(self, x: Any, m: nn.MaxPool2d) -> Any:
        k = _pair(m.kernel_size)
        s = _pair(m.stride if m.stride is not None else m.kernel_size)
        if _pair(m.padding) != (0, 0) or _pair(m.dilation) != (1, 1):
            raise HcrError(f"cannot convert {m} to Keras (padding or dilation)")
        assert self.shape is not None
        exact = all(n is not None and (n - kk) % ss == 0 for n, kk, ss in zip(self.shape[:2], k, s))
        padding = "valid"
        if m.ceil_mode and not exact:
            # torch's ceil mode adds a last, partial window; TensorFlow's "same" does the same
            # when the padding it adds goes after the data only (stride = kernel <= 2)
            if k != s or max(k) > 2:
                raise HcrError(f"cannot convert {m} to Keras (ceil mode with this kernel/stride)")
            padding = "same"
        y = self.L.MaxPooling2D(k, s, padding=padding)(x)
        self.shape = _hwc(y)
        return y

    def lstm(self, x: Any, m: nn.LSTM) -> Any:
        if not m.batch_first or m.proj_size or not m.bias:
            raise HcrError(f"cannot convert {m} to Keras (needs batch_first, bias, no projection)")

        def weights(layer: int, suffix: str) -> list[np.ndarray]:
            get = lambda name: getattr(m, f"{name}_l{layer}{suffix}").detach().numpy()  # noqa: E731
            # torch gates (i, f, g, o) are Keras' (i, f, c, o); torch has two biases, Keras one
            return [get("weight_ih").T, get("weight_hh").T, get("bias_ih") + get("bias_hh")]

        for layer in range(m.num_layers):
            cell = lambda: self.L.LSTM(m.hidden_size, return_sequences=True)  # noqa: E731
            if m.bidirectional:
                wrapper = self.L.Bidirectional(cell(), merge_mode="concat")
                x = wrapper(x)
                wrapper.set_weights(weights(layer, "") + weights(layer, "_reverse"))
            else:
                rnn = cell()
                x = rnn(x)
                rnn.set_weights(weights(layer, ""))
        return x


def _pair(v: Any) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _hwc(t: Any) -> tuple[int | None, int | None, int]:
    h, w, c = t.shape[1:]
    return h, w, int(c)


def keras_model(model: nn.Module, meta: ModelMeta) -> Any:
    """The same network as a Keras 3 functional model with the weights copied; input
    (N, H, W, 1), output logits like the torch module's."""
    import keras

    b = _KerasBuilder()
    features = getattr(model, "features", None)
    if not isinstance(features, nn.Sequential):
        raise HcrError(f"cannot convert {type(model).__name__} to Keras: expected a 'features' nn.Sequential")
    if meta.task == "classify":
        classifier = getattr(model, "classifier", None)
        if not isinstance(classifier, nn.Sequential):
            raise HcrError(f"cannot convert {type(model).__name__} to Keras: expected a 'classifier' nn.Sequential")
        s = int(meta.preprocess.get("size", 28))
        inp = keras.Input((s, s, 1), name="input")
        b.shape = (s, s, 1)
        out = b.sequence(b.sequence(inp, list(features)), list(classifier))
    else:
        project, rnn, head = (getattr(model, n, None) for n in ("project", "rnn", "head"))
        if not (isinstance(project, nn.Sequential) and isinstance(rnn, nn.LSTM) and isinstance(head, nn.Sequential)):
            raise HcrError(f"cannot convert {type(model).__name__} to Keras: expected features, project, rnn (LSTM) and head")
        h = int(meta.preprocess.get("height", 32))
        inp = keras.Input((h, None, 1), name="input")
        b.shape = (h, None, 1)
        x = b.sequence(inp, list(features))  # (N, H', T, C)
        assert b.shape is not None
        fh, _, fc = b.shape
        if fh is None:
            raise HcrError("cannot convert the CRNN to Keras: its feature height is not fixed")
        x = keras.layers.Permute((2, 3, 1))(x)  # (N, T, C, H'): torch's permute(0, 3, 1, 2)
        x = keras.layers.Reshape((-1, fc * fh))(x)  # (N, T, C*H'), torch's feature order
        x = b.sequence(x, list(project))
        x = b.lstm(x, rnn)
        out = b.sequence(x, list(head))
    return keras.Model(inp, out, name=(meta.model_name or "hcr").replace("-", "_"))


def _keras_file(model: nn.Module, meta: ModelMeta, out: Path) -> None:
    km = keras_model(model, meta)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Keras' own numpy-2 notice while saving
        km.save(str(out))
    with zipfile.ZipFile(out, "a") as z:
        z.writestr(META_FILE, meta.to_json())


def _savedmodel(model: nn.Module, meta: ModelMeta, out: Path) -> None:
    km = keras_model(model, meta)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        km.export(str(out), format="tf_saved_model", verbose=False)
    (out / "assets.extra").mkdir(exist_ok=True)
    (out / "assets.extra" / META_FILE).write_text(meta.to_json(), encoding="utf-8")


def _tflite(model: nn.Module, meta: ModelMeta, out: Path) -> None:
    tf = import_tensorflow()
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".hcr-savedmodel.") as d:
        km = keras_model(model, meta)
        signature = None
        if meta.task == "sequence":  # the TFLite LSTM kernels need a fixed batch: one line per call
            signature = [tf.TensorSpec((1, *km.inputs[0].shape[1:]), tf.float32)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            km.export(d, format="tf_saved_model", verbose=False, input_signature=signature)
        converter = tf.lite.TFLiteConverter.from_saved_model(d)
        data = converter.convert()
    out.write_bytes(add_tflite_metadata(data, {META_KEY: meta.to_json()}))


def add_tflite_metadata(data: bytes, entries: dict[str, str]) -> bytes:
    """A TFLite flatbuffer with named metadata buffers added (replacing same-named ones)."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(data))
    model.metadata = [m for m in (model.metadata or []) if (m.name.decode() if isinstance(m.name, bytes) else m.name) not in entries]
    for name, text in entries.items():
        buf = schema.BufferT()
        buf.data = np.frombuffer(text.encode("utf-8"), np.uint8)
        model.buffers.append(buf)
        md = schema.MetadataT()
        md.name = name
        md.buffer = len(model.buffers) - 1
        model.metadata.append(md)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


# --------------------------------------------------------------------------- export


def default_output(source: str | os.PathLike[str], fmt: str, quantize: str | None = None) -> Path:
    """``model.pt`` -> ``model.onnx`` (``model.int8.onnx``, ``model.torchscript.pt``, ...)."""
    p = Path(str(source))
    stem = p.stem if p.suffix == ".pt" else p.name
    return p.with_name(stem + (f".{quantize}" if quantize else "") + (SUFFIX[fmt] or "_savedmodel"))


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
    if fmt not in FORMATS:
        raise HcrError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if quantize not in (None, "int8"):
        raise HcrError(f"unknown quantisation {quantize!r}; the one offered is int8")
    if quantize and fmt != "onnx":
        raise HcrError("int8 quantisation is offered for ONNX exports only (--format onnx)")
    if fmt == "onnx":
        _require_onnx()
    t0 = time.perf_counter()
    model, meta = resolve_source(source)
    meta = replace(meta, layout="NHWC" if fmt in ("keras", "tf-savedmodel", "tflite") else "NCHW", output="logits", invert=False, scale=1.0)
    out = Path(out)
    tmp = temp_sibling(out, directory=fmt == "tf-savedmodel")
    try:
        with torch.inference_mode(False), torch.no_grad():
            if fmt == "onnx":
                tmp.write_bytes(_onnx_bytes(model, meta))
                if quantize:
                    fp32 = temp_sibling(out)
                    os.replace(tmp, fp32)
                    try:
                        quantize_onnx(fp32, tmp, meta)
                    finally:
                        fp32.unlink(missing_ok=True)
            elif fmt == "torchscript":
                _torchscript(model, meta, tmp)
            elif fmt == "keras":
                _keras_file(model, meta, tmp)
            elif fmt == "tf-savedmodel":
                _savedmodel(model, meta, tmp)
            else:
                _tflite(model, meta, tmp)
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


__all__ = ["CHECK_IMAGES", "OPSET", "TOLERANCE", "ExportResult", "Parity", "add_tflite_metadata", "compare", "default_output", "export_model", "keras_model", "parity_inputs", "quantize_onnx", "resolve_source"]
