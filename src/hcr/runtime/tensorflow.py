"""TensorFlow: Keras files (``.keras`` or ``.h5``, exported by hcr or imported from
elsewhere), SavedModel folders and TFLite flatbuffers; the safety checks and metadata
sidecar of Keras import (:func:`import_keras`); and the exports to these three formats
(:func:`write_keras`, :func:`write_savedmodel`, :func:`write_tflite`: the PyTorch network
rebuilt layer by layer in Keras). TensorFlow is imported when a backend is created
(:func:`import_tensorflow`), torch only when a network is exported.

The classic notebook projects train a small CNN on MNIST / EMNIST (28x28x1 input, a final
softmax) and save it as ``.h5`` or ``.keras``; the file holds no label list. :func:`import_keras`
checks such a file, takes the labels from the user, and writes a metadata sidecar
``MODEL.h5.hcr.json`` next to it, after which ``hcr predict --model MODEL.h5``, ``hcr evaluate
MODEL.h5`` and ``Predictor.load("MODEL.h5")`` use it like any hcr model: every input goes
through :func:`hcr.preprocess.preprocess` (polarity, background, crop, fit in 20x20, centre of
mass in 28x28, values in [0, 1], **ink bright on black**, the MNIST convention), then through
the import options:

``invert``  the network was trained on dark ink on white paper: it sees ``1 - x``;
``scale``   the network was trained on raw pixel values: it sees ``x * scale`` (255 for 0-255).

The input layout is read from the network: ``(28, 28, 1)``, ``(1, 28, 28)``, ``(28, 28)`` or a
flattened ``(784,)`` (dense-only notebooks); the side length sets the preprocessing size
(the glyph box scales with it, 20/28). Whether the network ends in a softmax (``probs``) or
returns logits is found by running it on probe inputs.

**Safety.** Keras files can carry code: a ``Lambda`` layer stores Python bytecode, and a
custom class names a module to import. Before Keras sees a file, its configuration
(``config.json`` of a ``.keras`` zip, the ``model_config`` attribute of an ``.h5``) is read
as plain JSON and refused when it holds a Lambda layer or anything outside Keras' own
modules; the model is then loaded with ``safe_mode=True`` and ``compile=False``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import warnings
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np

from ..errors import HcrError, ModelFileError
from ..labels import LabelMap
from ..modelfile import META_FILE, META_KEY, ModelMeta, check_outputs, layout_of, sidecar_path, write_atomic
from ..preprocess import PreprocessSpec
from .base import Backend, first_line, network_layout

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn


def import_tensorflow() -> Any:
    """``tensorflow`` with Keras 3 on its TensorFlow backend and quiet logs, or a clear error."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    try:
        import tensorflow as tf
    except ImportError:
        raise HcrError("this model format needs TensorFlow: pip install 'hcr-toolkit[tf]' (tensorflow-cpu)") from None
    return tf


class KerasBackend(Backend):
    """A Keras model (``.keras`` zip or legacy ``.h5``), exported by hcr or imported
    (:func:`import_keras`); refused when it holds code (Lambda layers, custom classes)."""

    format = "keras"

    def __init__(self, path: Path, meta: ModelMeta | None = None) -> None:
        self._path, self._given_meta = Path(path), meta
        self.model = load_keras_model(path)
        where = str(path)
        if meta is None:
            meta = embedded_meta(path)
        if meta is None:
            raise ModelFileError(f"{where}: a Keras model without hcr metadata: import it first with `hcr import-keras {path} --labels ...` (the label list is not in the file)")
        in_shape, n_out, output = network_io(self.model, where)
        meta = replace(meta, layout=network_layout(in_shape, where), output=output)
        check_outputs(meta, n_out, where)
        super().__init__(meta, where)
        tf = import_tensorflow()
        spec = tf.TensorSpec([None, *in_shape[1:]], tf.float32)
        # one graph for every batch size (and width): eager Keras calls are slow, retraces slower
        self._call = tf.function(lambda x: self.model(x, training=False), input_signature=[spec])

    def __getstate__(self) -> dict[str, Any]:
        """The file's path and the metadata it was loaded with: the file must be readable at
        that path where the backend is unpickled."""
        return {"path": str(self._path), "meta": self._given_meta}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(Path(state["path"]), state["meta"])  # type: ignore[misc]

    def _run(self, x: np.ndarray) -> np.ndarray:
        return self._call(x).numpy()


class SavedModelBackend(Backend):
    """A TensorFlow SavedModel folder (its ``serving_default`` signature)."""

    format = "tf-savedmodel"

    def __init__(self, path: Path, meta: ModelMeta | None = None) -> None:
        tf = import_tensorflow()
        where = str(path)
        self._path, self._given_meta = Path(path), meta
        try:
            loaded = tf.saved_model.load(where)
            self.fn = loaded.signatures["serving_default"]
        except Exception as e:
            raise ModelFileError(f"{where}: not a readable TensorFlow SavedModel ({first_line(e)})") from None
        self._loaded = loaded  # keeps the variables alive
        if meta is None:
            f = path / "assets.extra" / META_FILE
            if not f.is_file():
                raise ModelFileError(f"{where}: the SavedModel holds no hcr metadata (assets.extra/{META_FILE})")
            meta = ModelMeta.from_json(f.read_bytes(), str(f))
        specs = self.fn.structured_input_signature[1]
        if len(specs) != 1:
            raise ModelFileError(f"{where}: expected a signature with one input, got {len(specs)}")
        self.input_name, spec = next(iter(specs.items()))
        outs = self.fn.structured_outputs
        self.output_name = next(iter(outs))
        meta = replace(meta, layout=network_layout(spec.shape.as_list(), where))
        check_outputs(meta, outs[self.output_name].shape[-1], where)
        super().__init__(meta, where)

    def __getstate__(self) -> dict[str, Any]:
        """The folder's path and the metadata it was loaded with (the folder must be readable
        at that path where the backend is unpickled)."""
        return {"path": str(self._path), "meta": self._given_meta}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(Path(state["path"]), state["meta"])  # type: ignore[misc]

    def _run(self, x: np.ndarray) -> np.ndarray:
        return self.fn(**{self.input_name: x})[self.output_name].numpy()


class TFLiteBackend(Backend):
    """A TensorFlow Lite flatbuffer run by the TFLite interpreter (batch and, for sequence
    models, width resized per call)."""

    format = "tflite"

    def __init__(self, path: Path, meta: ModelMeta | None = None, *, threads: int | None = None) -> None:
        self._open(Path(path).read_bytes(), meta, threads, str(path))

    def __getstate__(self) -> dict[str, Any]:
        """The file's bytes, metadata and options; never the interpreter."""
        return {"data": self._data, "meta": self.meta, "threads": self.threads, "source": self.source}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._open(state["data"], state["meta"], state["threads"], state["source"])

    def _open(self, data: bytes, meta: ModelMeta | None, threads: int | None, where: str) -> None:
        import_tensorflow()
        self._data, self.threads = data, threads
        try:
            self.interp = tflite_interpreter(data, threads)
            self.interp.allocate_tensors()
        except Exception as e:
            raise ModelFileError(f"{where}: not a readable TFLite model (corrupt, truncated or unsupported: {first_line(e)})") from None
        if meta is None:
            text = tflite_metadata(data).get(META_KEY)
            if not text:
                raise ModelFileError(f"{where}: the TFLite file holds no hcr metadata and has no sidecar")
            meta = ModelMeta.from_json(text, where)
        inp, out = self.interp.get_input_details()[0], self.interp.get_output_details()[0]
        self.in_index, self.out_index = inp["index"], out["index"]
        self._shape: tuple[int, ...] = tuple(int(d) for d in inp["shape"])
        self.one_at_a_time = int(inp["shape_signature"][0]) == 1  # a fixed batch of one (the CRNN)
        meta = replace(meta, layout=network_layout(inp["shape_signature"], where))
        check_outputs(meta, int(out["shape"][-1]), where)
        super().__init__(meta, where)

    def _run(self, x: np.ndarray) -> np.ndarray:
        if self.one_at_a_time and len(x) > 1:
            return np.concatenate([self._invoke(x[i : i + 1]) for i in range(len(x))])
        return self._invoke(x)

    def _invoke(self, x: np.ndarray) -> np.ndarray:
        if x.shape != self._shape:
            self.interp.resize_tensor_input(self.in_index, list(x.shape), strict=False)
            self.interp.allocate_tensors()
            self._shape = x.shape
        self.interp.set_tensor(self.in_index, x)
        self.interp.invoke()
        return self.interp.get_tensor(self.out_index).copy()


def tflite_interpreter(data: bytes, threads: int | None = None) -> Any:
    """A TFLite interpreter for ``data``: LiteRT's (``ai-edge-litert``) when installed, else
    TensorFlow's (deprecated in its favour, same kernels)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TensorFlow's deprecation notice
        return Interpreter(model_content=data, num_threads=threads)


def tflite_metadata(data: bytes) -> dict[str, bytes]:
    """The named metadata buffers of a TFLite flatbuffer (raw bytes; hcr's is UTF-8 JSON)."""
    from tensorflow.lite.python import schema_py_generated as schema

    out: dict[str, bytes] = {}
    try:
        model = schema.Model.GetRootAsModel(data, 0)
        for i in range(model.MetadataLength()):
            m = model.Metadata(i)
            buf = model.Buffers(m.Buffer())
            if buf.Offset():  # large models keep buffers after the flatbuffer
                out[m.Name().decode()] = data[buf.Offset() : buf.Offset() + buf.Size()]
            elif buf.DataLength():
                out[m.Name().decode()] = buf.DataAsNumpy().tobytes()
    except Exception:  # a damaged table: no metadata (the caller reports what is missing)
        return {}
    return out


# --------------------------------------------------------------------------- Keras import


#: Layer classes that hold Python code and are always refused.
CODE_LAYERS = frozenset({"Lambda", "TFOpLambda", "SlicingOpLambda"})
#: Largest configuration read from a Keras file.
MAX_CONFIG_BYTES = 16 << 20
#: MNIST's glyph box relative to the image side (20 of 28 pixels).
BOX_FRACTION = 20 / 28


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def check_keras_config(config: Any, where: str) -> None:
    """Refuse a Keras model configuration that would run code when loaded."""
    for node in _walk(config):
        cls = node.get("class_name")
        if not isinstance(cls, str):
            continue
        if cls in CODE_LAYERS:
            raise ModelFileError(f"{where}: refused: the model holds a {cls} layer, i.e. Python code that loading would run; rebuild it without Lambda layers")
        module = node.get("module")
        if isinstance(module, str) and module and module != "builtins" and module.split(".")[0] != "keras":
            raise ModelFileError(f"{where}: refused: the model names code outside Keras ({module}.{cls}); hcr loads only built-in Keras layers")
        registered = node.get("registered_name")
        if isinstance(registered, str) and ">" in registered:
            raise ModelFileError(f"{where}: refused: the model uses a custom registered class ({registered}); hcr loads only built-in Keras layers")


def read_keras_config(path: Path) -> Any:
    """The model configuration of a ``.keras`` zip or ``.h5`` file, read as plain JSON."""
    where = str(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                info = z.getinfo("config.json")
                if info.file_size > MAX_CONFIG_BYTES:
                    raise ModelFileError(f"{where}: Keras configuration too large ({info.file_size:,} bytes)")
                raw: bytes | str = z.read(info)
        else:
            import h5py

            with h5py.File(path, "r") as f:
                if "model_config" not in f.attrs:
                    raise ModelFileError(f"{where}: an HDF5 file without a model configuration (weights only?): save the whole model (model.save) and import that")
                raw = f.attrs["model_config"]
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8")
        return json.loads(raw)
    except ModelFileError:
        raise
    except ImportError:
        raise HcrError(f"{where}: reading .h5 files needs h5py (installed with TensorFlow: pip install 'hcr-toolkit[tf]')") from None
    except Exception as e:  # zipfile, h5py and json raise many types for damaged files
        raise ModelFileError(f"{where}: not a readable Keras model file (corrupt or truncated: {first_line(e)})") from None


def load_keras_model(path: str | os.PathLike[str]) -> Any:
    """A Keras model from ``path`` after :func:`check_keras_config`; ``safe_mode=True``."""
    p = Path(path)
    check_keras_config(read_keras_config(p), str(p))
    import_tensorflow()
    import keras

    try:
        return keras.saving.load_model(str(p), compile=False, safe_mode=True)
    except Exception as e:
        raise ModelFileError(f"{p}: Keras cannot load this model ({first_line(e)})") from None


def embedded_meta(path: str | os.PathLike[str]) -> ModelMeta | None:
    """hcr metadata stored inside a Keras file (``hcr.json`` in the zip, or the ``hcr``
    attribute of an ``.h5``), or None."""
    p = Path(path)
    try:
        if zipfile.is_zipfile(p):
            with zipfile.ZipFile(p) as z:
                if META_FILE not in z.namelist():
                    return None
                return ModelMeta.from_json(z.read(META_FILE), f"{p}:{META_FILE}")
        import h5py

        with h5py.File(p, "r") as f:
            raw = f.attrs.get("hcr")
        return None if raw is None else ModelMeta.from_json(raw, str(p))
    except ModelFileError:
        raise
    except Exception as e:
        raise ModelFileError(f"{p}: not a readable Keras model file ({first_line(e)})") from None


def network_io(model: Any, where: str) -> tuple[tuple[Any, ...], int, str]:
    """(input shape, number of outputs, ``"probs"`` or ``"logits"``) of a Keras classifier.

    The output kind is found by running the network: a final softmax gives non-negative
    rows summing to 1 for every probe input."""
    inputs = model.inputs
    if len(inputs) != 1 or len(model.outputs) != 1:
        raise ModelFileError(f"{where}: expected a network with one input and one output")
    in_shape = tuple(inputs[0].shape)
    out_shape = tuple(model.outputs[0].shape)
    n_out = out_shape[-1]
    if not isinstance(n_out, int):
        raise ModelFileError(f"{where}: the network's output size is not fixed ({out_shape})")
    probe_shape = [2] + [d if isinstance(d, int) else 32 for d in in_shape[1:]]
    rng = np.random.default_rng(0)
    probe = np.concatenate([np.zeros([1] + probe_shape[1:], np.float32), rng.random([1] + probe_shape[1:], np.float32)])
    try:
        out = np.asarray(model(probe, training=False), np.float64)
    except Exception as e:
        raise ModelFileError(f"{where}: the network does not run on a {tuple(probe_shape)} input ({first_line(e)})") from None
    probs = bool((out >= 0).all() and np.allclose(out.sum(axis=-1), 1.0, atol=1e-3))
    return in_shape, int(n_out), "probs" if probs else "logits"


def parse_labels(text: str) -> list[str]:
    """A label list from text: one label per line when there are several lines, else each
    character of the one line is a label (``"0123456789"``)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if len(lines) > 1:
        return lines
    return [c for c in (lines[0] if lines else "") if not c.isspace()]


def _input_side(in_shape: Sequence[Any], where: str) -> int:
    dims = [d for d in in_shape[1:] if d != 1]
    if len(dims) == 1 and isinstance(dims[0], int) and math.isqrt(dims[0]) ** 2 == dims[0]:
        return math.isqrt(dims[0])  # flattened square image
    if len(dims) == 2 and dims[0] == dims[1] and isinstance(dims[0], int):
        return int(dims[0])
    raise ModelFileError(f"{where}: expected a square grey image input such as (28, 28, 1) or (784,), got {tuple(in_shape[1:])}")


def import_keras(
    model_path: str | os.PathLike[str],
    labels: Sequence[str] | str,
    *,
    invert: bool = False,
    scale: float = 1.0,
    temperature: float = 1.0,
    out: str | os.PathLike[str] | None = None,
) -> tuple[Path, ModelMeta]:
    """Check a Keras classifier and write its metadata sidecar (default ``MODEL.hcr.json``
    next to it). ``labels``: a string whose characters are the classes, or a list of class
    names, in the network's output order. Returns (sidecar path, metadata)."""
    p = Path(model_path)
    where = str(p)
    if not p.is_file():
        raise ModelFileError(f"{where}: model file not found")
    symbols = parse_labels(labels) if isinstance(labels, str) else [str(s) for s in labels]
    if not symbols:
        raise HcrError("the label list is empty: give the class of each network output, in order (e.g. --labels 0123456789)")
    label_map = LabelMap.from_symbols(symbols)
    if not 0 < scale <= 65535:
        raise HcrError(f"scale must be positive (1 for [0, 1] inputs, 255 for [0, 255]), got {scale}")
    model = load_keras_model(p)
    in_shape, n_out, output = network_io(model, where)
    if n_out != len(label_map):
        raise HcrError(f"{where}: the network has {n_out} outputs but {len(label_map)} labels were given; give exactly one label per output, in order")
    side = _input_side(in_shape, where)
    spec = PreprocessSpec(size=side, box=max(4, round(side * BOX_FRACTION)))
    meta = ModelMeta(
        task="classify", preprocess=spec.to_dict(), labels=label_map, temperature=temperature,
        model_name=f"keras:{p.name}", output=output, invert=invert, scale=float(scale),
        layout=layout_of(in_shape), source_format="keras-import",
    )
    dest = Path(out) if out is not None else sidecar_path(p)
    write_atomic(dest, (json.dumps(meta.to_dict(), indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
    return dest, meta



# --------------------------------------------------------------------------- export


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
        from torch import nn

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
        from torch import nn

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
    from torch import nn

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


def write_keras(model: nn.Module, meta: ModelMeta, out: Path) -> None:
    """A ``.keras`` zip of the rebuilt network with ``hcr.json`` inside."""
    km = keras_model(model, meta)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Keras' own numpy-2 notice while saving
        km.save(str(out))
    with zipfile.ZipFile(out, "a") as z:
        z.writestr(META_FILE, meta.to_json())


def write_savedmodel(model: nn.Module, meta: ModelMeta, out: Path) -> None:
    """A SavedModel folder of the rebuilt network, metadata in ``assets.extra/hcr.json``."""
    km = keras_model(model, meta)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        km.export(str(out), format="tf_saved_model", verbose=False)
    (out / "assets.extra").mkdir(exist_ok=True)
    (out / "assets.extra" / META_FILE).write_text(meta.to_json(), encoding="utf-8")


def write_tflite(model: nn.Module, meta: ModelMeta, out: Path) -> None:
    """The SavedModel converted to TFLite (built-in ops only; the CRNN one line per call), metadata buffer ``hcr``."""
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
