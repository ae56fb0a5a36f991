"""The model-file contract: what every hcr model file says about itself, without torch.

A model file is a network's weights plus a :class:`ModelMeta`: the task (:data:`TASKS`), the
label map or CTC alphabet, the preprocessing spec, the softmax temperature, the model's name
and constructor arguments, the input convention and versions. Two encodings carry it:

- hcr's own ``.pt`` files (:mod:`hcr.checkpoint`): a dict of plain types and tensors whose
  keys are :meth:`ModelMeta.checkpoint_entries` plus the weights, config and training state;
- exported and imported files (:mod:`hcr.runtime`): :meth:`ModelMeta.to_json` inside the
  file (ONNX ``metadata_props["hcr"]``, TorchScript extra file ``hcr.json``, ``hcr.json``
  inside a ``.keras`` zip, SavedModel ``assets.extra/hcr.json``, a TFLite metadata buffer
  named ``hcr``) or in a sidecar ``FILE.hcr.json`` (:func:`sidecar_path`), which wins.

Also here: the CTC column stride of the line networks (:func:`stride_of`, :func:`columns`),
and the one atomic-write helper every writer of files uses (:func:`write_atomic`,
:func:`temp_sibling` and :func:`commit`): an interruption leaves the old file or the new one,
never half of one.

This module imports no deep-learning framework and not :mod:`hcr.models`; the
preprocessing specs (:mod:`hcr.preprocess`, OpenCV) are imported only when a spec is built.
"""

from __future__ import annotations

import json
import operator
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Callable

from . import __version__
from .errors import HcrError, ModelFileError
from .labels import CTCCodec, LabelMap

if TYPE_CHECKING:  # pragma: no cover
    from .preprocess import LineSpec, PreprocessSpec

#: ``task`` values: one character per image, or a word/line decoded with CTC.
TASKS = ("classify", "sequence")
#: Identifies hcr metadata JSON and its version.
META_FORMAT = "hcr-model-meta"
META_VERSION = 1
#: Identifies hcr's own ``.pt`` model files and their version.
CHECKPOINT_FORMAT = "hcr-checkpoint"
CHECKPOINT_VERSION = 1
#: Key / file name of the metadata inside model files.
META_KEY = "hcr"
META_FILE = "hcr.json"
#: Suffix of metadata sidecars: ``model.h5`` -> ``model.h5.hcr.json``.
SIDECAR_SUFFIX = ".hcr.json"
#: How a network takes its input: (N,1,H,W), (N,H,W,1), (N,H,W) or flattened (N,H*W).
LAYOUTS = ("NCHW", "NHWC", "NHW", "NF")
#: Metadata larger than this is refused (a label list is a few hundred bytes).
MAX_META_BYTES = 1 << 20
#: Column stride of a CRNN built without a ``stride`` kwarg (every model file from before it);
#: :data:`hcr.models.crnn.COLUMN_STRIDE` is this value.
DEFAULT_STRIDE = 2


def stride_of(model_kwargs: dict[str, Any]) -> int:
    """Input pixels per output column of a CRNN built with ``model_kwargs``."""
    return int(model_kwargs.get("stride", DEFAULT_STRIDE))


def columns(width: int, stride: int = DEFAULT_STRIDE) -> int:
    """Score columns T of a CRNN for an input ``width`` pixels wide (ceil-mode pooling);
    also :func:`hcr.models.crnn.output_columns`."""
    return (int(width) + stride - 1) // stride

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
        from .preprocess import LineSpec, PreprocessSpec

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
        from .preprocess import PreprocessSpec

        return PreprocessSpec.from_dict(self.preprocess)

    def line_spec(self) -> LineSpec:
        """The line preprocessing spec (sequence models)."""
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

    def checkpoint_entries(self) -> dict[str, Any]:
        """The metadata entries of an hcr ``.pt`` file (:mod:`hcr.checkpoint` adds the
        weights, the training config and state): a sequence model's classes are stored as
        ``labels`` (the blank "" then the alphabet) and again as ``codec``; the temperature
        as ``calibration``."""
        d: dict[str, Any] = {
            "format": CHECKPOINT_FORMAT,
            "format_version": CHECKPOINT_VERSION,
            "task": self.task,
            "model": {"name": self.model_name, "kwargs": dict(self.model_kwargs)},
            "labels": self.class_labels().to_dict(),
            "preprocess": dict(self.preprocess),
            "metrics": self.metrics,
            "versions": self.versions,
            "calibration": {"temperature": float(self.temperature)},
        }
        if self.task == "sequence":
            d["codec"] = self.codec.to_dict()  # type: ignore[union-attr]
        return d

    @classmethod
    def from_checkpoint_entries(cls, d: Any, where: str) -> "ModelMeta":
        """Validate the metadata entries of an hcr ``.pt`` file (everything but the weights,
        which :func:`hcr.checkpoint.load_checkpoint` checks); any problem is a
        ModelFileError naming ``where``."""
        if not isinstance(d, dict) or d.get("format") != CHECKPOINT_FORMAT:
            raise ModelFileError(f"{where}: not an hcr model file (a bare state_dict or another format)")
        version = d.get("format_version")
        if not isinstance(version, int):
            raise ModelFileError(f"{where}: not a valid hcr model file (malformed 'format_version')")
        if version > CHECKPOINT_VERSION:
            raise ModelFileError(f"{where}: written by a newer hcr (format {version}); upgrade hcr")
        model = _require(d, "model", dict, where)
        _require(d, "state_dict", dict, where)
        name, kwargs = model.get("name"), model.get("kwargs", {})
        if not isinstance(name, str) or not isinstance(kwargs, dict):
            raise ModelFileError(f"{where}: not a valid hcr model file (malformed 'model' entry)")
        temperature = (d.get("calibration") or {}).get("temperature", 1.0) if isinstance(d.get("calibration", {}), dict) else None
        if not isinstance(temperature, (int, float)) or not 0.01 <= float(temperature) <= 100.0:
            raise ModelFileError(f"{where}: not a valid hcr model file (malformed 'calibration')")
        for key in ("config", "metrics", "versions"):
            if not isinstance(d.get(key, {}), dict):
                raise ModelFileError(f"{where}: not a valid hcr model file (malformed {key!r})")
        task = d.get("task", "classify")
        if task not in TASKS:
            raise ModelFileError(f"{where}: not a valid hcr model file (unknown task {task!r})")
        from .preprocess import LineSpec, PreprocessSpec

        try:
            labels = LabelMap.from_dict(_require(d, "labels", dict, where))
            spec = (LineSpec if task == "sequence" else PreprocessSpec).from_dict(_require(d, "preprocess", dict, where))
            codec = None
            if task == "sequence":
                codec = CTCCodec.from_dict(_require(d, "codec", dict, where))
                if labels.symbols[0] != "" or codec.alphabet != labels.symbols[1:]:
                    raise ValueError("the CTC codec does not match the labels (blank first, then the alphabet)")
        except (HcrError, KeyError, TypeError, ValueError) as e:
            raise ModelFileError(f"{where}: malformed metadata ({e})") from None
        return cls(
            task=task, preprocess=spec.to_dict(), labels=None if codec else labels, codec=codec, temperature=float(temperature),
            model_name=name, model_kwargs=dict(kwargs), versions=dict(d.get("versions") or {}), metrics=dict(d.get("metrics") or {}),
        )

    def class_labels(self) -> LabelMap:
        """The network's output classes: a classifier's label map, or a sequence model's
        blank ("") followed by its CTC alphabet."""
        if self.codec is not None:
            return self.codec.label_map()
        assert self.labels is not None
        return self.labels

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



def _require(d: dict[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in d or not isinstance(d[key], kind):
        raise ModelFileError(f"{where}: not a valid hcr model file (missing or malformed {key!r})")
    return d[key]


def _dim(d: Any) -> int | None:
    """A fixed axis length (an int or a numpy integer above 0), else None (a free axis)."""
    try:
        n = operator.index(d)
    except TypeError:
        return None
    return n if n > 0 else None


def layout_of(shape: Any) -> str:
    """The layout of a network input of ``shape`` (batch first; None/-1/str for free axes)."""
    dims = [_dim(d) for d in list(shape)]
    if len(dims) == 4 and dims[1] == 1:
        return "NCHW"
    if len(dims) == 4 and dims[3] == 1:
        return "NHWC"
    if len(dims) == 3:
        return "NHW"
    if len(dims) == 2:
        return "NF"
    raise ModelFileError(f"unsupported network input shape {tuple(shape)}: expected one grey channel, (N,1,H,W), (N,H,W,1), (N,H,W) or (N,H*W)")


# --------------------------------------------------------------------------- writing files atomically

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


def write_atomic(path: str | os.PathLike[str], data: bytes | str | Callable[[IO[bytes]], object]) -> Path:
    """Write ``data`` to ``path`` through a temporary sibling (flushed to disk), then
    :func:`commit` it: the old file or the new one, never half of one. ``data``: bytes, text
    (written as UTF-8, newlines untouched) or a function that writes to the open binary file
    (``torch.save``, ``savefig``). Creates parent folders; returns ``path``."""
    path = Path(path)
    tmp = temp_sibling(path)
    try:
        with open(tmp, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        commit(tmp, path)
    except BaseException:
        remove_path(tmp)
        raise
    return path

