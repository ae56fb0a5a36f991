"""Keras classifiers from elsewhere: load them safely and run them behind hcr's preprocessing.

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
import zipfile
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from .backends import META_FILE, ModelMeta, first_line, import_tensorflow, sidecar_path, write_atomic
from .errors import HcrError, ModelFileError
from .labels import LabelMap
from .preprocess import PreprocessSpec

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
    from .backends import layout_of

    spec = PreprocessSpec(size=side, box=max(4, round(side * BOX_FRACTION)))
    meta = ModelMeta(
        task="classify", preprocess=spec.to_dict(), labels=label_map, temperature=temperature,
        model_name=f"keras:{p.name}", output=output, invert=invert, scale=float(scale),
        layout=layout_of(in_shape), source_format="keras-import",
    )
    dest = Path(out) if out is not None else sidecar_path(p)
    write_atomic(dest, (json.dumps(meta.to_dict(), indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
    return dest, meta


__all__ = ["CODE_LAYERS", "check_keras_config", "embedded_meta", "import_keras", "load_keras_model", "network_io", "parse_labels", "read_keras_config"]
