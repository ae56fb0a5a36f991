"""Running models in any format hcr reads, behind one small interface.

A :class:`Backend` turns a batch of preprocessed inputs (float32 ``(N, H, W)`` in [0, 1],
ink bright: exactly what :func:`hcr.preprocess.preprocess` or
:func:`~hcr.preprocess.preprocess_line` produce) into network outputs: ``logits`` (classifiers
``(N, C)``, sequence models ``(N, T, C)``) and ``probs`` (softmax of ``logits / temperature``).
Everything around the network (preprocessing, charset and case handling, top-k, rejection,
CTC decoding) is shared numpy code outside the backends, so every format answers the same.

=================  ==================================  ==========================================
format             file                                runs with
=================  ==================================  ==========================================
``pytorch``        hcr model file (``.pt``)             torch (:class:`TorchBackend`)
``onnx``           ``.onnx``                            onnxruntime (:class:`OnnxBackend`)
``torchscript``    ``.torchscript.pt`` / ``.ts``        torch.jit (:class:`TorchScriptBackend`)
``keras``          ``.keras`` (Keras 3) or ``.h5``      keras + TensorFlow (:class:`KerasBackend`)
``tf-savedmodel``  a SavedModel folder                  TensorFlow (:class:`SavedModelBackend`)
``tflite``         ``.tflite``                          the TFLite interpreter (:class:`TFLiteBackend`)
=================  ==================================  ==========================================

:func:`load_backend` tells the format from the file's first bytes (and zip contents), not
from its name, and refuses anything else with a :class:`~hcr.errors.ModelFileError`.

**Metadata.** Every exported file carries a :class:`ModelMeta` (task, label map or CTC
alphabet, preprocessing spec, temperature, model name, versions) as JSON: inside the file
where the format has room for it (ONNX ``metadata_props["hcr"]``, TorchScript extra file
``hcr.json``, ``hcr.json`` inside a ``.keras`` zip, SavedModel ``assets.extra/hcr.json``,
a TFLite metadata buffer named ``hcr``), else in a sidecar ``FILE.hcr.json``; a sidecar
next to the file wins. Imported Keras classifiers get their sidecar from
:func:`hcr.keras_import.import_keras`.

**No torch on the ONNX path.** This module imports only numpy and hcr's torch-free modules
at import time; each backend imports its runtime (onnxruntime, tensorflow, torch) when it
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

import io
import json
import os
import shutil
import tempfile
import warnings
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import __version__
from .errors import HcrError, ModelFileError
from .labels import CTCCodec, LabelMap
from .preprocess import PreprocessSpec

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

    from .checkpoint import Checkpoint

#: The export formats (``hcr export --format``).
FORMATS = ("onnx", "torchscript", "keras", "tf-savedmodel", "tflite")
#: ``task`` values: one character per image, or a word/line decoded with CTC.
TASKS = ("classify", "sequence")
#: Identifies hcr metadata JSON and its version.
META_FORMAT = "hcr-model-meta"
META_VERSION = 1
#: Key / file name of the metadata inside model files.
META_KEY = "hcr"
META_FILE = "hcr.json"
#: Suffix of metadata sidecars: ``model.h5`` -> ``model.h5.hcr.json``.
SIDECAR_SUFFIX = ".hcr.json"
#: How a network takes its input: (N,1,H,W), (N,H,W,1), (N,H,W) or flattened (N,H*W).
LAYOUTS = ("NCHW", "NHWC", "NHW", "NF")
#: Largest batch sent to a runtime in one call (backends may prefer smaller ones).
MAX_BATCH = 512
#: Metadata larger than this is refused (a label list is a few hundred bytes).
MAX_META_BYTES = 1 << 20


def sidecar_path(path: str | os.PathLike[str]) -> Path:
    """Where the metadata sidecar of ``path`` lives: ``path`` + ``.hcr.json``."""
    return Path(str(path) + SIDECAR_SUFFIX)


# --------------------------------------------------------------------------- metadata


@dataclass(frozen=True)
class ModelMeta:
    """What a runtime needs besides the network: kept inside (or next to) every exported file.

    ``output`` says what the network returns: ``logits`` (hcr models) or ``probs`` (a final
    softmax, as in most Keras classifiers). ``invert`` and ``scale`` adapt hcr's model input
    (ink bright, [0, 1]) to a foreign network's convention: the network sees
    ``(1 - x if invert else x) * scale``. ``layout`` is filled in from the network itself.
    """

    task: str
    preprocess: dict[str, Any]
    labels: LabelMap | None = None
    codec: CTCCodec | None = None
    temperature: float = 1.0
    model_name: str = ""
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    output: str = "logits"
    invert: bool = False
    scale: float = 1.0
    layout: str = "NCHW"
    source_format: str = "pytorch"
    versions: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # every field of the spec, defaults filled in: a file written before a field existed
        # (frames) describes the same preprocessing as one written after
        from .preprocess import LineSpec

        try:
            object.__setattr__(self, "preprocess", (LineSpec if self.task == "sequence" else PreprocessSpec).from_dict(self.preprocess).to_dict())
        except (TypeError, ValueError):
            pass  # a bad spec is reported where it is used, with the file's name

    @property
    def num_classes(self) -> int:
        if self.task == "sequence":
            assert self.codec is not None
            return self.codec.num_classes
        assert self.labels is not None
        return len(self.labels)

    @property
    def spec(self) -> PreprocessSpec:
        """The character preprocessing spec (classifiers)."""
        return PreprocessSpec.from_dict(self.preprocess)

    def line_spec(self) -> Any:
        """The line preprocessing spec (sequence models): a :class:`hcr.preprocess.LineSpec`."""
        from .preprocess import LineSpec

        return LineSpec.from_dict(self.preprocess)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "format": META_FORMAT,
            "format_version": META_VERSION,
            "task": self.task,
            "preprocess": dict(self.preprocess),
            "temperature": float(self.temperature),
            "model": {"name": self.model_name, "kwargs": dict(self.model_kwargs)},
            "output": self.output,
            "input": {"invert": self.invert, "scale": float(self.scale), "layout": self.layout},
            "source_format": self.source_format,
            "versions": dict(self.versions) or {"hcr": __version__},
            "metrics": _plain(self.metrics),
        }
        if self.labels is not None:
            d["labels"] = self.labels.to_dict()
        if self.codec is not None:
            d["codec"] = self.codec.to_dict()
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, d: Any, where: str) -> "ModelMeta":
        """Validate metadata read from ``where``; any problem is a ModelFileError naming it."""

        def bad(what: str) -> ModelFileError:
            return ModelFileError(f"{where}: malformed hcr metadata ({what})")

        if not isinstance(d, dict) or d.get("format") != META_FORMAT:
            raise bad("not hcr model metadata")
        version = d.get("format_version")
        if not isinstance(version, int):
            raise bad("format_version")
        if version > META_VERSION:
            raise ModelFileError(f"{where}: written by a newer hcr (metadata format {version}); upgrade hcr")
        task = d.get("task")
        if task not in TASKS:
            raise bad(f"task {task!r}; expected one of {', '.join(TASKS)}")
        model = d.get("model", {})
        inp = d.get("input", {})
        if not isinstance(model, dict) or not isinstance(model.get("kwargs", {}), dict) or not isinstance(inp, dict):
            raise bad("model/input entries")
        temperature = d.get("temperature", 1.0)
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0.01 <= float(temperature) <= 100.0:
            raise bad("temperature")
        scale = inp.get("scale", 1.0)
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < float(scale) <= 65535:
            raise bad("input scale")
        if d.get("output", "logits") not in ("logits", "probs") or inp.get("layout", "NCHW") not in LAYOUTS:
            raise bad("output or input layout")
        try:
            labels = LabelMap.from_dict(d["labels"]) if "labels" in d else None
            codec = CTCCodec.from_dict(d["codec"]) if "codec" in d else None
            preprocess = d.get("preprocess")
            if not isinstance(preprocess, dict):
                raise ValueError("preprocess")
            meta = cls(
                task=task, preprocess=dict(preprocess), labels=labels, codec=codec, temperature=float(temperature),
                model_name=str(model.get("name", "")), model_kwargs=dict(model.get("kwargs", {})),
                output=d.get("output", "logits"), invert=bool(inp.get("invert", False)), scale=float(scale),
                layout=inp.get("layout", "NCHW"), source_format=str(d.get("source_format", "")),
                versions={str(k): str(v) for k, v in dict(d.get("versions") or {}).items()},
                metrics=dict(d.get("metrics") or {}),
            )
            if task == "classify" and labels is None:
                raise ValueError("a classifier needs 'labels'")
            if task == "sequence" and codec is None:
                raise ValueError("a sequence model needs 'codec'")
            meta.spec if task == "classify" else meta.line_spec()  # noqa: B018  (validates the spec)
        except (HcrError, KeyError, TypeError, ValueError, AttributeError) as e:
            raise bad(str(e)) from None
        return meta

    @classmethod
    def from_json(cls, text: str | bytes, where: str) -> "ModelMeta":
        if len(text) > MAX_META_BYTES:
            raise ModelFileError(f"{where}: hcr metadata too large ({len(text):,} bytes)")
        try:
            d = json.loads(text)
        except (ValueError, UnicodeDecodeError) as e:
            raise ModelFileError(f"{where}: malformed hcr metadata (not JSON: {e})") from None
        return cls.from_dict(d, where)

    def describe(self) -> str:
        what = f"{len(self.labels)} classes" if self.labels is not None else f"{len(self.codec.alphabet) if self.codec else 0} symbols + blank"
        return f"{self.model_name or 'model'} ({self.task}, {what})"


def _plain(x: Any) -> Any:
    """``x`` reduced to JSON types (metrics may hold numpy scalars or tuples)."""
    return json.loads(json.dumps(x, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def check_outputs(meta: ModelMeta, n_out: int | None, where: str) -> None:
    """Refuse metadata whose label list does not fit the network's output size."""
    if n_out is None or n_out == meta.num_classes:
        return
    if meta.task == "sequence":
        raise ModelFileError(f"{where}: the network scores {n_out} classes per column but its CTC alphabet gives {meta.num_classes} (symbols + blank): mismatched metadata")
    raise ModelFileError(f"{where}: the network has {n_out} outputs but its label list has {meta.num_classes} symbols: wrong or mismatched labels")


def read_sidecar(path: str | os.PathLike[str]) -> ModelMeta | None:
    """The metadata in ``path``'s sidecar, or None when there is none."""
    side = sidecar_path(path)
    if not side.is_file():
        return None
    return ModelMeta.from_json(side.read_bytes(), str(side))


# --------------------------------------------------------------------------- numerics


def softmax(logits: np.ndarray, temperature: float = 1.0, axis: int = -1) -> np.ndarray:
    """float32 softmax of ``logits / temperature`` (computed in float64)."""
    from .ctc import log_softmax

    return np.exp(log_softmax(np.asarray(logits, np.float64) / float(temperature), axis=axis)).astype(np.float32)


def layout_of(shape: Any) -> str:
    """The layout of a network input of ``shape`` (batch first; None/-1/str for free axes)."""
    dims = [int(d) if isinstance(d, (int, np.integer)) and d > 0 else None for d in list(shape)]
    if len(dims) == 4 and dims[1] == 1:
        return "NCHW"
    if len(dims) == 4 and dims[3] == 1:
        return "NHWC"
    if len(dims) == 3:
        return "NHW"
    if len(dims) == 2:
        return "NF"
    raise ModelFileError(f"unsupported network input shape {tuple(shape)}: expected one grey channel, (N,1,H,W), (N,H,W,1), (N,H,W) or (N,H*W)")


# --------------------------------------------------------------------------- backends


class Backend:
    """A network in some runtime plus its metadata. Subclasses implement :meth:`_run`
    (one batch already in the network's layout and convention -> raw output)."""

    format = "?"
    #: inputs per runtime call when the caller gives no ``batch_size``
    batch_size = MAX_BATCH

    def __init__(self, meta: ModelMeta, source: str) -> None:
        self.meta = meta
        self.source = source

    # metadata shortcuts ---------------------------------------------------------
    @property
    def task(self) -> str:
        return self.meta.task

    @property
    def label_map(self) -> LabelMap:
        if self.meta.labels is None:
            raise HcrError(f"{self.source} is a {self.meta.task} model: it has a CTC alphabet, not a label map")
        return self.meta.labels

    @property
    def codec(self) -> CTCCodec:
        if self.meta.codec is None:
            raise HcrError(f"{self.source} is a character classifier: it has no CTC alphabet")
        return self.meta.codec

    @property
    def spec(self) -> PreprocessSpec:
        return self.meta.spec

    @property
    def temperature(self) -> float:
        return self.meta.temperature

    def describe(self) -> str:
        return f"{self.meta.describe()} [{self.format}] from {self.source}"

    # inference ------------------------------------------------------------------
    def _run(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def prepare(self, inputs: Any) -> np.ndarray:
        """hcr model input ``(N, H, W)`` or ``(N, 1, H, W)`` -> the network's input."""
        x = np.asarray(inputs, dtype=np.float32)
        if x.ndim == 4 and x.shape[1] == 1:
            x = x[:, 0]
        if x.ndim != 3:
            raise HcrError(f"expected a batch of shape (N, H, W) or (N, 1, H, W), got {x.shape}")
        if self.meta.invert:
            x = 1.0 - x
        if self.meta.scale != 1.0:
            x = x * np.float32(self.meta.scale)
        layout = self.meta.layout
        if layout == "NCHW":
            x = x[:, None]
        elif layout == "NHWC":
            x = x[..., None]
        elif layout == "NF":
            x = x.reshape(len(x), -1)
        return np.ascontiguousarray(x, dtype=np.float32)

    def raw(self, inputs: Any, batch_size: int | None = None) -> np.ndarray:
        """The network's output for a batch (chunked into ``batch_size`` runs)."""
        x = self.prepare(inputs)
        if len(x) == 0:
            return np.zeros((0, self.meta.num_classes), np.float32)
        batch_size = batch_size or self.batch_size
        outs = [np.asarray(self._run(x[i : i + batch_size]), dtype=np.float32) for i in range(0, len(x), batch_size)]
        return np.concatenate(outs) if len(outs) > 1 else outs[0]

    def logits(self, inputs: Any, batch_size: int | None = None) -> np.ndarray:
        """Logits ``(N, C)`` / ``(N, T, C)``; for networks ending in a softmax, log-probabilities."""
        out = self.raw(inputs, batch_size)
        return np.log(np.clip(out, 1e-30, None)) if self.meta.output == "probs" else out

    def probs(self, inputs: Any, temperature: float | None = None, batch_size: int | None = None) -> np.ndarray:
        """Softmax of ``logits / temperature`` (default: the file's temperature), float32."""
        t = self.meta.temperature if temperature is None else temperature
        if self.meta.output == "probs" and t == 1.0:
            p = self.raw(inputs, batch_size)
            return p / np.maximum(p.sum(axis=-1, keepdims=True), 1e-30)
        return softmax(self.logits(inputs, batch_size), t)


class TorchBackend(Backend):
    """A PyTorch ``nn.Module`` (hcr model files). ``model`` is kept as an attribute so
    callers may inspect it; outputs come from :func:`hcr.predictor.batched_logits`."""

    format = "pytorch"

    def __init__(self, model: "nn.Module", meta: ModelMeta, source: str = "<model>", device: str | "torch.device" = "cpu") -> None:
        from .models import channels_last
        from .predictor import resolve_device

        super().__init__(meta, source)
        self.device = resolve_device(device) if isinstance(device, str) else device
        self.model = channels_last(model.to(self.device)).eval()

    @classmethod
    def from_checkpoint(cls, ckpt: "Checkpoint", device: str = "cpu") -> "TorchBackend":
        return cls(ckpt.build_model(), meta_from_checkpoint(ckpt), ckpt.source, device)

    def __getstate__(self) -> dict[str, Any]:
        """The module travels on the CPU (a GPU's tensors would need that GPU to unpickle);
        :meth:`__setstate__` moves it back to its device where that device exists."""
        import copy

        state = dict(self.__dict__)
        state["device"] = str(self.device)
        if self.device.type != "cpu":
            state["model"] = copy.deepcopy(self.model).cpu()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        import torch

        from .models import channels_last

        device = torch.device(state["device"])
        if device.type == "cuda" and not torch.cuda.is_available():
            device = torch.device("cpu")  # unpickled on a machine without the GPU: run on its CPU
        self.__dict__.update(state)
        self.device = device
        if device.type != "cpu":
            self.model = channels_last(self.model.to(device)).eval()

    def raw(self, inputs: Any, batch_size: int | None = None) -> np.ndarray:
        from .predictor import batched_logits

        return batched_logits(self.model, np.asarray(inputs, np.float32), batch_size or self.batch_size, self.device).numpy()

    def probs(self, inputs: Any, temperature: float | None = None, batch_size: int | None = None) -> np.ndarray:
        from .predictor import batched_probs

        t = self.meta.temperature if temperature is None else temperature
        if self.meta.task == "sequence":
            return softmax(self.raw(inputs, batch_size), t)
        return batched_probs(self.model, np.asarray(inputs, np.float32), batch_size or self.batch_size, self.device, temperature=t)


def meta_from_checkpoint(ckpt: "Checkpoint") -> ModelMeta:
    """The :class:`ModelMeta` of an hcr model file: a classifier's label map and
    :class:`~hcr.preprocess.PreprocessSpec`, or a sequence model's CTC codec and
    :class:`~hcr.preprocess.LineSpec`."""
    from .checkpoint import current_versions

    sequence = ckpt.task == "sequence"
    return ModelMeta(
        task=ckpt.task,
        preprocess=ckpt.spec.to_dict(),
        labels=None if sequence else ckpt.label_map,
        codec=ckpt.codec if sequence else None,
        temperature=ckpt.temperature,
        model_name=ckpt.model_name,
        model_kwargs=dict(ckpt.model_kwargs),
        versions={**ckpt.versions, **{f"export_{k}": v for k, v in current_versions().items()}},
        metrics={k: ckpt.metrics[k] for k in ("best_val_acc", "train_source", "val_source", "citation") if k in ckpt.metrics},
    )


class OnnxBackend(Backend):
    """An ONNX file run by onnxruntime on the CPU (imports nothing else)."""

    format = "onnx"
    batch_size = 64  # small convolution batches stay in cache: faster per image than 512 on CPUs

    def __init__(self, path: str | os.PathLike[str], meta: ModelMeta | None = None, *, threads: int | None = None) -> None:
        try:
            data = Path(path).read_bytes()
        except OSError as e:
            raise ModelFileError(f"{path}: cannot read the ONNX file ({e.strerror or e})") from None
        self._open(data, meta, threads, str(path))

    def __getstate__(self) -> dict[str, Any]:
        """The file's bytes, metadata and options; never the onnxruntime session."""
        return {"data": self._data, "meta": self.meta, "threads": self.threads, "source": self.source}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._open(state["data"], state["meta"], state["threads"], state["source"])

    def _open(self, data: bytes, meta: ModelMeta | None, threads: int | None, where: str) -> None:
        """Start an onnxruntime session on the model ``data`` (read from ``where``)."""
        try:
            import onnxruntime as ort
        except ImportError:
            raise HcrError(f"{where}: running ONNX models needs onnxruntime: pip install 'hcr-toolkit[onnx]' (or onnxruntime)") from None
        self._data, self.threads = data, threads
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        # worker threads sleep instead of spinning between runs: spinning wins a little on an
        # idle machine and loses badly (2x here) when the cores are shared with other work
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        check_onnx_weights(data, where)  # before onnxruntime allocates anything the file declares
        try:
            self.session = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for bad files
            raise ModelFileError(f"{where}: not a readable ONNX model (corrupt, truncated or unsupported: {first_line(e)})") from None
        if meta is None:
            text = self.session.get_modelmeta().custom_metadata_map.get(META_KEY)
            if text is None:
                raise ModelFileError(f"{where}: the ONNX file holds no hcr metadata and has no sidecar {sidecar_path(where).name}: export it with hcr export, or write the sidecar")
            meta = ModelMeta.from_json(text, where)
        inp = self.session.get_inputs()
        if len(inp) != 1:
            raise ModelFileError(f"{where}: expected a network with one input, got {len(inp)}")
        self.input_name = inp[0].name
        meta = replace(meta, layout=_layout(inp[0].shape, where))
        check_input_shape(meta, inp[0].shape, where)
        out_shape = self.session.get_outputs()[0].shape
        check_outputs(meta, out_shape[-1] if isinstance(out_shape[-1], int) else None, where)
        super().__init__(meta, where)

    def _run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: x})[0]


class TorchScriptBackend(Backend):
    """A TorchScript file (``torch.jit``), for deployments that run libtorch (C++, mobile)."""

    format = "torchscript"

    def __init__(self, path: str | os.PathLike[str], meta: ModelMeta | None = None) -> None:
        try:
            data = Path(path).read_bytes()
        except OSError as e:
            raise ModelFileError(f"{path}: cannot read the TorchScript file ({e.strerror or e})") from None
        self._open(data, meta, str(path))

    def __getstate__(self) -> dict[str, Any]:
        """The file's bytes and metadata; never the loaded module."""
        return {"data": self._data, "meta": self.meta, "source": self.source}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._open(state["data"], state["meta"], state["source"])

    def _open(self, data: bytes, meta: ModelMeta | None, path: str) -> None:
        try:
            import torch
        except ImportError:
            raise HcrError(f"{path}: TorchScript models need PyTorch; export to ONNX for a torch-free runtime") from None
        self._data = data
        extra = {META_FILE: ""}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch.jit is deprecated in favour of torch.export; it still loads
                self.module = torch.jit.load(io.BytesIO(data), map_location="cpu", _extra_files=extra)
        except Exception as e:
            raise ModelFileError(f"{path}: not a readable TorchScript model (corrupt, truncated or unsafe: {first_line(e)})") from None
        self.module.eval()
        if meta is None:
            if not extra[META_FILE]:
                raise ModelFileError(f"{path}: the TorchScript file holds no hcr metadata (hcr.json) and has no sidecar")
            meta = ModelMeta.from_json(extra[META_FILE], str(path))
        super().__init__(replace(meta, layout="NCHW"), str(path))
        probe = self.module(torch.zeros(1, 1, *_probe_size(meta)))
        check_outputs(self.meta, int(probe.shape[-1]), str(path))

    def _run(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.module(torch.from_numpy(x)).numpy()


def _probe_size(meta: ModelMeta) -> tuple[int, int]:
    """(H, W) of a dummy input for checking a network's output size."""
    if meta.task == "sequence":
        h = int(meta.preprocess.get("height", 32))
        return h, 2 * h
    s = int(meta.preprocess.get("size", 28))
    return s, s


def check_input_shape(meta: ModelMeta, shape: Any, where: str) -> None:
    """The network's declared input size must be the one its preprocessing makes (``H`` and
    ``W`` of a classifier, ``H`` of a line model; a free dimension fits anything), so a file
    declaring a 30000 x 30000 input is refused before anything is allocated for it."""
    dims = list(shape)
    want_h, want_w = _probe_size(meta)
    if len(dims) == 2:  # (N, H*W)
        if isinstance(dims[1], int) and dims[1] > 0 and dims[1] != want_h * want_w:
            raise ModelFileError(f"{where}: the network declares {dims[1]} input values, but its preprocessing makes {want_h} x {want_w} = {want_h * want_w}")
        return
    h, w = (dims[2], dims[3]) if meta.layout == "NCHW" else (dims[1], dims[2])
    wrong = [f"{name} {got}" for name, got, want in (("height", h, want_h), ("width", w, want_w))
             if isinstance(got, int) and got > 0 and got != want and not (name == "width" and meta.task == "sequence")]
    if wrong:
        raise ModelFileError(f"{where}: the network declares input {', '.join(wrong)}, but its preprocessing makes {want_h} x {want_w} inputs")


#: Most bytes of constant tensors (initialisers and Constant nodes) an ONNX file may declare;
#: the shipped models hold about 4 MB, and protobuf itself caps a file at 2 GiB.
MAX_ONNX_WEIGHT_BYTES = 2 * 2**30

#: Bytes per element of ONNX ``TensorProto.DataType`` codes (unknown codes count 8).
_ONNX_ITEMSIZE = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 8: 1, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 14: 8, 15: 16, 16: 2,
                  17: 1, 18: 1, 19: 1, 20: 1, 21: 1, 22: 1, 23: 1}


def _proto_fields(buf: memoryview) -> Any:
    """(field number, wire type, value) of each field of one protobuf message: an int for
    varints and fixed-size fields, a memoryview (no copy) for length-delimited ones. Raises
    ValueError on a malformed message."""
    i, n = 0, len(buf)

    def varint() -> int:
        nonlocal i
        value = shift = 0
        while True:
            if i >= n or shift > 63:
                raise ValueError("truncated or overlong varint")
            b = buf[i]
            i += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return value

    while i < n:
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            yield number, wire, varint()
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            if i + size > n:
                raise ValueError("truncated fixed-size field")
            yield number, wire, int.from_bytes(buf[i : i + size], "little")
            i += size
        elif wire == 2:
            size = varint()
            if i + size > n:
                raise ValueError("a field runs past the end of the file")
            yield number, wire, buf[i : i + size]
            i += size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def _onnx_tensor(buf: memoryview, where: str) -> int:
    """Bytes a ``TensorProto`` declares (its dims times its element size); refuses external data."""
    dims: list[int] = []
    dtype, name = 1, ""
    for number, wire, value in _proto_fields(buf):
        if number == 1:  # dims: repeated int64, packed or not
            if wire == 2:
                dims.extend(_packed_varints(value))
            else:
                dims.append(value)
        elif number == 2 and wire == 0:
            dtype = value
        elif number == 8 and wire == 2:
            name = bytes(value[:80]).decode("utf-8", "replace")
        elif (number == 13 and wire == 2) or (number == 14 and wire == 0 and value == 1):  # external_data / data_location EXTERNAL
            raise ModelFileError(f"{where}: the tensor {name or '(unnamed)'!r} refers to data in another file (ONNX external data); "
                                 "hcr loads self-contained ONNX files only (export the model again with hcr export)")
    total = _ONNX_ITEMSIZE.get(dtype, 8)
    for d in dims:
        d = d - 2**64 if d >= 2**63 else d  # int64 as two's complement
        if d < 0:
            raise ModelFileError(f"{where}: the tensor {name or '(unnamed)'!r} declares a negative dimension ({d})")
        total *= d
    return total


def _packed_varints(buf: memoryview) -> list[int]:
    """The values of a packed repeated varint field."""
    out: list[int] = []
    value = shift = 0
    for b in bytes(buf):
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            out.append(value)
            value = shift = 0
        elif shift > 63:
            raise ValueError("overlong varint")
    if shift:
        raise ValueError("truncated varint")
    return out


def _onnx_graph_weights(buf: memoryview, where: str, depth: int = 0) -> int:
    """Bytes of the constant tensors a ``GraphProto`` declares: its initialisers and the tensors
    of its nodes' attributes (Constant nodes), subgraphs (If, Loop, Scan) included."""
    if depth > 32:
        raise ModelFileError(f"{where}: subgraphs nested over 32 deep")
    total = 0
    for number, wire, value in _proto_fields(buf):
        if wire != 2:
            continue
        if number == 5:  # initializer
            total += _onnx_tensor(value, where)
        elif number == 15:  # sparse_initializer: values (1) and indices (2)
            total += sum(_onnx_tensor(v, where) for n, w, v in _proto_fields(value) if w == 2 and n in (1, 2))
        elif number == 1:  # node -> attribute (5) -> t (5), tensors (11), g (6), graphs (10)
            for an, aw, attr in _proto_fields(value):
                if an != 5 or aw != 2:
                    continue
                for fn, fw, fv in _proto_fields(attr):
                    if fw != 2:
                        continue
                    if fn in (5, 11):
                        total += _onnx_tensor(fv, where)
                    elif fn in (6, 10):
                        total += _onnx_graph_weights(fv, where, depth + 1)
    return total


def check_onnx_weights(data: bytes, where: str, limit: int = MAX_ONNX_WEIGHT_BYTES) -> int:
    """The bytes of constant weights the ONNX model ``data`` declares, read from the file's
    own structure before onnxruntime sees it: a tensor whose dimensions declare more than
    ``limit`` in all (a forged 16 GB initialiser, whatever its actual bytes), a tensor stored
    in another file (external data), or a malformed file is a :class:`ModelFileError`."""
    try:
        graphs = [v for n, w, v in _proto_fields(memoryview(data)) if n == 7 and w == 2]  # ModelProto.graph
        total = sum(_onnx_graph_weights(g, where) for g in graphs)
    except ValueError as e:
        raise ModelFileError(f"{where}: not a readable ONNX model (corrupt or truncated: {e})") from None
    if not graphs:
        raise ModelFileError(f"{where}: not a readable ONNX model (no graph)")
    if total > limit:
        raise ModelFileError(f"{where}: the model declares {total / 2**30:,.1f} GiB of weights, over the {limit / 2**30:g} GiB limit "
                             "(a forged or corrupt file)")
    return total


def _layout(shape: Any, where: str) -> str:
    try:
        return layout_of(shape)
    except ModelFileError as e:
        raise ModelFileError(f"{where}: {e}") from None


def first_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:200]


# --------------------------------------------------------------------------- TensorFlow


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
    (:mod:`hcr.keras_import`); refused when it holds code (Lambda layers, custom classes)."""

    format = "keras"

    def __init__(self, path: Path, meta: ModelMeta | None = None) -> None:
        from .keras_import import embedded_meta, load_keras_model, network_io

        self._path, self._given_meta = Path(path), meta
        self.model = load_keras_model(path)
        where = str(path)
        if meta is None:
            meta = embedded_meta(path)
        if meta is None:
            raise ModelFileError(f"{where}: a Keras model without hcr metadata: import it first with `hcr import-keras {path} --labels ...` (the label list is not in the file)")
        in_shape, n_out, output = network_io(self.model, where)
        meta = replace(meta, layout=_layout(in_shape, where), output=output)
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
        meta = replace(meta, layout=_layout(spec.shape.as_list(), where))
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
        meta = replace(meta, layout=_layout(inp["shape_signature"], where))
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


# --------------------------------------------------------------------------- writing


def temp_sibling(out: Path, directory: bool = False) -> Path:
    """A fresh temporary file (or folder) beside ``out`` that keeps its suffix (Keras and
    the loaders look at suffixes); :func:`commit` renames it over ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        return Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    fd, tmp = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=f".tmp{out.suffix}", dir=out.parent)
    os.close(fd)
    return Path(tmp)


def remove_path(path: Path) -> None:
    """Delete a file or a folder tree, if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def commit(tmp: Path, out: Path) -> None:
    """Rename a finished ``tmp`` over ``out``: a file atomically (with the permissions the
    user's umask gives new files); a folder replaces a folder, the old one moved aside first."""
    if tmp.is_file():
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files
    if tmp.is_dir() and out.exists():
        old = out.with_name(f".{out.name}.old{os.getpid()}")
        os.replace(out, old)
        os.replace(tmp, out)
        remove_path(old)
    else:
        os.replace(tmp, out)


def write_atomic(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary sibling and :func:`commit`."""
    tmp = temp_sibling(path)
    try:
        tmp.write_bytes(data)
        commit(tmp, path)
    except BaseException:
        remove_path(tmp)
        raise
    return path


# --------------------------------------------------------------------------- loading


def sniff_format(path: str | os.PathLike[str]) -> str:
    """The format of a model file from its content: ``pytorch`` (hcr model file),
    ``torchscript``, ``onnx``, ``keras`` (``.keras`` zip), ``keras-h5``, ``tflite`` or
    ``tf-savedmodel`` (a folder). Anything else is a ModelFileError."""
    p = Path(path)
    if not p.exists():
        raise ModelFileError(f"{p}: model file not found")
    if p.is_dir():
        if (p / "saved_model.pb").is_file():
            return "tf-savedmodel"
        raise ModelFileError(f"{p}: is a directory, not a model file (nor a TensorFlow SavedModel)")
    with open(p, "rb") as f:
        head = f.read(8)
    if not head:
        raise ModelFileError(f"{p}: empty file, not a model")
    if head == b"\x89HDF\r\n\x1a\n":
        return "keras-h5"
    if head[4:8] == b"TFL3":
        return "tflite"
    if head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(p) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, OSError, ValueError) as e:
            raise ModelFileError(f"{p}: a damaged or truncated zip archive, not a readable model file ({e})") from None
        if "config.json" in names:
            return "keras"
        if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
            return "torchscript"
        return "pytorch"
    if head[:1] == b"\x80":  # a bare pickle (old torch.save): load_checkpoint refuses it safely
        return "pytorch"
    if p.suffix.lower() == ".onnx" or head[:1] == b"\x08":  # ModelProto starts with ir_version (field 1)
        return "onnx"
    raise ModelFileError(f"{p}: not a model file hcr can read (hcr .pt, .onnx, TorchScript, .keras/.h5, .tflite or a SavedModel folder)")


#: Environment variable choosing how shipped models run for inference: ``auto`` (the ONNX
#: runtime file with onnxruntime when both are there, else PyTorch), ``pytorch`` or ``onnx``.
RUNTIME_ENV = "HCR_RUNTIME"


def _shipped_runtime(model: str | os.PathLike[str] | None, device: str) -> Path | None:
    """The ONNX runtime file to run a shipped model with, or None for its ``.pt`` file."""
    from .pretrained import DEFAULT_MODEL, is_pretrained_name, runtime_path

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
    from .pretrained import resolve_model

    runtime = _shipped_runtime(model, device) if shipped_runtime else None
    if runtime is not None:
        return OnnxBackend(runtime, threads=threads)
    path = resolve_model(model)
    fmt = sniff_format(path)
    if fmt != "pytorch" and device not in ("cpu", "auto"):
        raise HcrError(f"device {device!r}: only PyTorch models run on other devices; {path} ({fmt}) runs on the CPU")
    if fmt == "pytorch":
        try:
            from .checkpoint import load_checkpoint
        except ImportError:
            raise HcrError(f"{path} is a PyTorch model file and PyTorch is not installed: export it to ONNX (hcr export {path} --format onnx) on a machine with torch") from None
        return TorchBackend.from_checkpoint(load_checkpoint(path), device)
    meta = read_sidecar(path)
    if fmt == "onnx":
        return OnnxBackend(path, meta, threads=threads)
    if fmt == "torchscript":
        return TorchScriptBackend(path, meta)
    if fmt in ("keras", "keras-h5"):
        return KerasBackend(path, meta)
    if fmt == "tflite":
        return TFLiteBackend(path, meta, threads=threads)
    return SavedModelBackend(path, meta)


__all__ = [
    "FORMATS", "META_FILE", "META_KEY", "RUNTIME_ENV", "SIDECAR_SUFFIX", "Backend", "KerasBackend", "ModelMeta", "OnnxBackend",
    "SavedModelBackend", "TFLiteBackend", "TorchBackend", "TorchScriptBackend", "check_onnx_weights", "check_outputs", "commit", "import_tensorflow",
    "layout_of", "load_backend", "meta_from_checkpoint", "read_sidecar", "remove_path", "sidecar_path", "sniff_format",
    "softmax", "temp_sibling", "tflite_interpreter", "tflite_metadata", "write_atomic",
]
