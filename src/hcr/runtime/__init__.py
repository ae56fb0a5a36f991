"""Running models in any format hcr reads, behind one small interface (:class:`~hcr.runtime.base.Backend`).

A backend runs a network of one format on preprocessed inputs (see :mod:`hcr.runtime.base`);
the numpy code around it is shared, so every format answers the same.

=================  ==================================  ==========================================
format             file                                runs with
=================  ==================================  ==========================================
``pytorch``        hcr model file (``.pt``)             torch (:mod:`hcr.runtime.torch`)
``onnx``           ``.onnx``                            onnxruntime (:mod:`hcr.runtime.onnx`)
``torchscript``    ``.torchscript.pt`` / ``.ts``        torch.jit (:mod:`hcr.runtime.torch`)
``keras``          ``.keras`` (Keras 3) or ``.h5``      keras + TensorFlow (:mod:`hcr.runtime.tensorflow`)
``tf-savedmodel``  a SavedModel folder                  TensorFlow (:mod:`hcr.runtime.tensorflow`)
``tflite``         ``.tflite``                          the TFLite interpreter (:mod:`hcr.runtime.tensorflow`)
=================  ==================================  ==========================================

Each format is one row of :data:`FORMATS`: how to recognise a file of it (:func:`sniff_format`
tries the rows in order, on the file's first bytes and zip contents, not its name), the module
and class that run it, and, for export formats, the writer ``hcr export`` calls, its default
suffix and parity tolerance. Adding a runtime or an export format is one module in this
package plus one row. Anything no row recognises is a :class:`~hcr.errors.ModelFileError`.

**Metadata.** Every exported file carries a :class:`~hcr.modelfile.ModelMeta` (task, label map or CTC
alphabet, preprocessing spec, temperature, model name, versions) as JSON: inside the file
where the format has room for it (ONNX ``metadata_props["hcr"]``, TorchScript extra file
``hcr.json``, ``hcr.json`` inside a ``.keras`` zip, SavedModel ``assets.extra/hcr.json``,
a TFLite metadata buffer named ``hcr``), else in a sidecar ``FILE.hcr.json``; a sidecar
next to the file wins. Imported Keras classifiers get their sidecar from
:func:`hcr.runtime.tensorflow.import_keras`.

**No torch on the ONNX path.** This package imports only numpy and hcr's torch-free modules
at import time (a row's module is imported when a file of its format is loaded); each backend imports its runtime (onnxruntime, tensorflow, torch) when it
is created. ``Predictor.load("model.onnx")`` therefore runs with numpy, Pillow, OpenCV and
onnxruntime alone (``requirements-inference.txt``).

**Pickling.** Every backend pickles (so :class:`~hcr.predictor.Predictor`,
:class:`~hcr.reader.Reader` and :class:`~hcr.reader.CrnnReader` can be shipped to
``multiprocessing``, Ray, Dask or Spark workers): what is pickled is the model's source and
options, never a runtime session, and unpickling loads the network again in the receiving
process. ONNX, TorchScript and TFLite backends carry the model file's bytes (so the file
need not exist where they are unpickled), PyTorch backends their module (on the CPU; moved
back to its device when that device exists there), Keras and SavedModel backends the path
of their file (which must be readable at the same path where they are unpickled).

**Safety.** Loading never unpickles: hcr model files go through ``torch.load(weights_only=True)``,
Keras files are refused when their configuration holds a ``Lambda`` layer or a custom
class, and are then loaded with ``safe_mode=True``; ONNX and TFLite are plain data
(protobuf, flatbuffer) parsed by their runtimes. A file that cannot be parsed, or whose
label list does not match the network's outputs, is a one-line ``ModelFileError`` naming it.
"""

from __future__ import annotations

import importlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import HcrError, ModelFileError
from ..modelfile import read_sidecar
from .base import Backend


def _zip_names(p: Path) -> list[str]:
    try:
        with zipfile.ZipFile(p) as z:
            return z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise ModelFileError(f"{p}: a damaged or truncated zip archive, not a readable model file ({e})") from None


@dataclass(frozen=True)
class Format:
    """One model format: how to recognise its files, what runs them, how to write them.

    ``sniff(path, head, zip_names)``: whether ``path`` is of this format, from its first 8
    bytes ``head`` and, for a zip archive, its member names (None otherwise); rows are tried
    by ``rank`` (folders and magic numbers first, zip contents next, a guess by suffix last). ``backend``: ``"module:Class"`` in this package, built as
    ``Class(path, meta, **options)`` (``threads`` passed where ``threads`` is true).
    ``writer``: ``"module:function"`` writing ``(network, meta, out_path)`` for ``hcr
    export`` (None: load only), with its default ``suffix`` (empty: a folder), the
    network ``layout`` it writes and the ``tolerance`` of its parity check against
    PyTorch."""

    name: str
    rank: int
    sniff: Callable[[Path, bytes, list[str] | None], bool]
    backend: str
    writer: str | None = None
    suffix: str = ""
    layout: str = "NCHW"
    tolerance: float = 1e-4
    threads: bool = False

    def load_class(self) -> Callable[..., Backend]:
        """The backend class, called as ``cls(path, meta, **options)`` (the PyTorch row: :meth:`TorchBackend.from_checkpoint`)."""
        module, cls = self.backend.split(":")
        return getattr(importlib.import_module(f"{__name__}.{module}"), cls)  # type: ignore[no-any-return]

    def write_function(self) -> Callable[..., None]:
        if self.writer is None:
            raise HcrError(f"{self.name} files are read, not written, by hcr export")
        module, fn = self.writer.split(":")
        return getattr(importlib.import_module(f"{__name__}.{module}"), fn)  # type: ignore[no-any-return]


#: Every format hcr reads (export formats first, in ``hcr export --format``'s order). ``pytorch`` is hcr's own model file (training
#: writes it; a zip without Keras' or TorchScript's members, or a bare pickle, which
#: :func:`hcr.checkpoint.load_checkpoint` refuses safely).
FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("onnx", 6, lambda p, head, z: p.suffix.lower() == ".onnx" or head[:1] == b"\x08",  # ModelProto starts with ir_version (field 1)
           "onnx:OnnxBackend", "onnx:write_onnx", ".onnx", threads=True),
    Format("torchscript", 4, lambda p, head, z: z is not None and any(n.endswith("/constants.pkl") or "/code/" in n for n in z),
           "torch:TorchScriptBackend", "torch:write_torchscript", ".torchscript.pt"),
    Format("keras", 3, lambda p, head, z: z is not None and "config.json" in z, "tensorflow:KerasBackend", "tensorflow:write_keras", ".keras", "NHWC", 1e-3),
    Format("tf-savedmodel", 0, lambda p, head, z: p.is_dir(), "tensorflow:SavedModelBackend", "tensorflow:write_savedmodel", "", "NHWC", 1e-3),
    Format("tflite", 2, lambda p, head, z: head[4:8] == b"TFL3", "tensorflow:TFLiteBackend", "tensorflow:write_tflite", ".tflite", "NHWC", 1e-3, threads=True),
    Format("keras-h5", 1, lambda p, head, z: head == b"\x89HDF\r\n\x1a\n", "tensorflow:KerasBackend"),
    Format("pytorch", 5, lambda p, head, z: z is not None or head[:1] == b"\x80", "torch:TorchBackend"),
)}

#: The export formats (``hcr export --format``): the rows with a writer.
EXPORT_FORMATS = tuple(n for n, f in FORMATS.items() if f.writer)
#: Quantisations ``hcr export --quantize`` offers (ONNX exports only: :func:`hcr.runtime.onnx.quantize_onnx`).
QUANTIZE = ("int8",)


def sniff_format(path: str | os.PathLike[str]) -> str:
    """The format of a model file from its content (a :data:`FORMATS` key: ``pytorch``,
    ``torchscript``, ``onnx``, ``keras``, ``keras-h5``, ``tflite`` or ``tf-savedmodel``, a
    folder). Anything else is a ModelFileError."""
    p = Path(path)
    if not p.exists():
        raise ModelFileError(f"{p}: model file not found")
    head = b""
    names: list[str] | None = None
    if p.is_dir():
        if not (p / "saved_model.pb").is_file():
            raise ModelFileError(f"{p}: is a directory, not a model file (nor a TensorFlow SavedModel)")
    else:
        with open(p, "rb") as f:
            head = f.read(8)
        if not head:
            raise ModelFileError(f"{p}: empty file, not a model")
        if head.startswith(b"PK"):
            names = _zip_names(p)
    for fmt in sorted(FORMATS.values(), key=lambda f: f.rank):
        if fmt.sniff(p, head, names):
            return fmt.name
    raise ModelFileError(f"{p}: not a model file hcr can read (hcr .pt, .onnx, TorchScript, .keras/.h5, .tflite or a SavedModel folder)")


#: Environment variable choosing how shipped models run for inference: ``auto`` (the ONNX
#: runtime file with onnxruntime when both are there, else PyTorch), ``pytorch`` or ``onnx``.
RUNTIME_ENV = "HCR_RUNTIME"


def _shipped_runtime(model: str | os.PathLike[str] | None, device: str) -> Path | None:
    """The ONNX runtime file to run a shipped model with, or None for its ``.pt`` file."""
    from ..pretrained import DEFAULT_MODEL, is_pretrained_name, runtime_path

    name = DEFAULT_MODEL if model is None else model
    choice = os.environ.get(RUNTIME_ENV, "auto").strip().lower() or "auto"
    if choice not in ("auto", "pytorch", "onnx"):
        raise HcrError(f"{RUNTIME_ENV}={choice!r}: choose auto, pytorch or onnx")
    if choice == "pytorch" or not isinstance(name, str) or not is_pretrained_name(name) or device != "cpu":
        return None
    path = runtime_path(name)
    if choice == "onnx" and path is None:
        raise HcrError(f"{RUNTIME_ENV}=onnx: the shipped model {name!r} has no ONNX runtime file (export one: hcr export {name} --format onnx)")
    if path is not None and choice == "auto":
        import importlib.util

        if importlib.util.find_spec("onnxruntime") is None:
            return None
    return path


def load_backend(model: str | os.PathLike[str] | None = None, *, device: str = "cpu", threads: int | None = None, shipped_runtime: bool = False) -> Backend:
    """The backend for a pretrained model name (None: the default) or a model file of any
    supported format; metadata from the sidecar ``FILE.hcr.json`` when one exists, else
    from inside the file. With ``shipped_runtime`` (inference entry points), a shipped model
    with an ONNX runtime file runs on onnxruntime on the CPU (see :data:`RUNTIME_ENV`)."""
    from ..pretrained import resolve_model

    runtime = _shipped_runtime(model, device) if shipped_runtime else None
    if runtime is not None:
        return FORMATS["onnx"].load_class()(runtime, threads=threads)
    path = resolve_model(model)
    fmt = sniff_format(path)
    if fmt != "pytorch" and device not in ("cpu", "auto"):
        raise HcrError(f"device {device!r}: only PyTorch models run on other devices; {path} ({fmt}) runs on the CPU")
    if fmt == "pytorch":
        try:
            from ..checkpoint import load_checkpoint
            from .torch import TorchBackend
        except ImportError:
            raise HcrError(f"{path} is a PyTorch model file and PyTorch is not installed: export it to ONNX (hcr export {path} --format onnx) on a machine with torch") from None
        return TorchBackend.from_checkpoint(load_checkpoint(path), device)
    row = FORMATS[fmt]
    options: dict[str, Any] = {"threads": threads} if row.threads else {}
    return row.load_class()(path, read_sidecar(path), **options)


__all__ = ["EXPORT_FORMATS", "FORMATS", "QUANTIZE", "RUNTIME_ENV", "Backend", "Format", "load_backend", "sniff_format"]
