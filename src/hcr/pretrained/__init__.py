"""Pretrained models shipped inside the package, loadable by name.

``manifest.json`` (next to this file) lists each model: its file, SHA-256 and size, the
recipe that trained it and its model card. A name resolves to the packaged file only after
the file's checksum matches the manifest, so a damaged or swapped file is reported by name
instead of answering with someone else's weights. Anything that is not a registered name is
treated as a path to a model file.

A model may also ship a **runtime file**: its network exported to ONNX (``NAME.onnx``, same
weights, metadata inside, checked against the ``.pt`` when packaged and by the tests).
Inference entry points (:meth:`hcr.predictor.Predictor.load`,
:meth:`hcr.reading.line.LineRecognizer.load`) run it with onnxruntime when that is
installed, on the CPU: about twice as fast per image as PyTorch for these small networks, and
usable without torch. ``HCR_RUNTIME=pytorch`` keeps them on the ``.pt`` file; training,
evaluation, calibration and export always use the ``.pt`` file.

``tools/package_model.py`` copies a trained checkpoint here, writes the runtime file and
updates the manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import ModelFileError, UnknownNameError

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "manifest.json"
DEFAULT_MODEL = "chars"


@dataclass(frozen=True)
class PretrainedModel:
    name: str
    file: str  # file name inside this package folder
    sha256: str
    bytes: int
    description: str
    config: str  # the committed recipe that trains it (path from the project root)
    card: str  # model card (Markdown) file name inside this package folder
    task: str = "classify"  # "classify" (one character), "sequence" (words and lines: hcr read --engine crnn) or "printed" (hcr.reading.page: printed or handwritten)
    runtime: dict[str, Any] | None = None  # {"file", "sha256", "bytes"} of the ONNX runtime file, if shipped

    @property
    def path(self) -> Path:
        return HERE / self.file

    @property
    def card_path(self) -> Path:
        return HERE / self.card


@lru_cache(maxsize=1)
def _manifest() -> dict[str, PretrainedModel]:
    try:
        raw = json.loads(MANIFEST.read_text())
    except (OSError, ValueError) as e:
        raise ModelFileError(f"{MANIFEST}: the pretrained model manifest cannot be read ({e}); reinstall hcr-toolkit") from None
    return {m["name"]: PretrainedModel(**m) for m in raw["models"]}


def list_pretrained(task: str | None = None) -> list[PretrainedModel]:
    """The shipped models (of one task, if given), default first."""
    models = [m for m in _manifest().values() if task is None or m.task == task]
    return sorted(models, key=lambda m: (m.name != DEFAULT_MODEL, m.name))


def get_pretrained(name: str) -> PretrainedModel:
    models = _manifest()
    if name not in models:
        raise UnknownNameError("pretrained model", name, sorted(models))
    return models[name]


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _expected(name: str, runtime: bool) -> tuple[Path, int, str]:
    """Path, size and SHA-256 the manifest records for a model's file (or its runtime file)."""
    m = get_pretrained(name)
    if runtime and m.runtime:
        return HERE / m.runtime["file"], int(m.runtime["bytes"]), str(m.runtime["sha256"])
    return m.path, m.bytes, m.sha256


@lru_cache(maxsize=16)
def _verified(name: str, runtime: bool, mtime_ns: int, size: int) -> Path:
    path, want_bytes, want_sha = _expected(name, runtime)
    if size != want_bytes or sha256_file(path) != want_sha:
        raise ModelFileError(
            f"pretrained model {name!r} ({path}) does not match its recorded checksum: the file is damaged "
            f"or was replaced; reinstall hcr-toolkit, or retrain it with `hcr train --config {get_pretrained(name).config}`"
        )
    return path


def _checked(name: str, runtime: bool) -> Path:
    path = _expected(name, runtime)[0]
    try:
        st = path.stat()
    except OSError:
        raise ModelFileError(f"pretrained model {name!r} is missing from the installation ({path}); reinstall hcr-toolkit") from None
    return _verified(name, runtime, st.st_mtime_ns, st.st_size)


def pretrained_path(name: str) -> Path:
    """Path of a shipped model after checking it against the manifest."""
    return _checked(name, False)


def runtime_path(name: str) -> Path | None:
    """Path of a shipped model's ONNX runtime file after checking it against the manifest
    (None when the model ships none)."""
    return _checked(name, True) if get_pretrained(name).runtime else None


def is_pretrained_name(spec: str | os.PathLike[str]) -> bool:
    return isinstance(spec, str) and spec in _manifest()


def resolve_model(spec: str | os.PathLike[str] | None = None) -> Path:
    """A pretrained name (``chars``, ``digits``, ``letters``, ``words``; None = the default) or a path."""
    if spec is None:
        spec = DEFAULT_MODEL
    if is_pretrained_name(spec):
        return pretrained_path(str(spec))
    p = Path(spec)
    if not p.exists():
        names = ", ".join(m.name for m in list_pretrained())
        raise ModelFileError(f"{p}: no such model file, and not a pretrained model name ({names})")
    return p


__all__ = ["DEFAULT_MODEL", "PretrainedModel", "get_pretrained", "is_pretrained_name", "list_pretrained", "pretrained_path", "resolve_model", "runtime_path", "sha256_file"]
