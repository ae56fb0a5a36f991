"""Backends: format sniffing, metadata validation, input conventions, and refusing
tampered, truncated or mismatched model files without running anything in them."""

from __future__ import annotations

import json
import os
import pickle
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from hcr.errors import HcrError, ModelFileError  # noqa: E402
from hcr.labels import LabelMap  # noqa: E402
from hcr.modelfile import META_FORMAT, ModelMeta, sidecar_path
from hcr.preprocess import PreprocessSpec  # noqa: E402
from hcr.runtime import Backend, load_backend, sniff_format
from hcr.runtime.base import softmax
from hcr.runtime.onnx import OnnxBackend

DIGITS = LabelMap(tuple("0123456789"))


@pytest.fixture(scope="module")
def onnx_digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hcr.export import export_model

    return export_model("digits", "onnx", tmp_path_factory.mktemp("onnx") / "digits.onnx", check=False).path


def _meta(**kw: object) -> ModelMeta:
    base: dict[str, object] = {"task": "classify", "preprocess": PreprocessSpec().to_dict(), "labels": DIGITS}
    base.update(kw)
    return ModelMeta(**base)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- metadata


def test_metadata_round_trip_and_validation() -> None:
    meta = _meta(temperature=1.5, model_name="seed-cnn", output="probs", invert=True, scale=255.0, layout="NHWC")
    back = ModelMeta.from_json(meta.to_json(), "x")
    assert back.labels == DIGITS and back.temperature == 1.5 and back.output == "probs"
    assert (back.invert, back.scale, back.layout) == (True, 255.0, "NHWC") and back.spec == PreprocessSpec()
    d = meta.to_dict()
    cases = [
        ({**d, "format": "something"}, "not hcr model metadata"),
        ({**d, "task": "detect"}, "task 'detect'"),
        ({**d, "temperature": 0}, "temperature"),
        ({**d, "temperature": True}, "temperature"),
        ({k: v for k, v in d.items() if k != "labels"}, "needs 'labels'"),
        ({**d, "labels": {"symbols": ["1", "1"]}}, "duplicate"),
        ({**d, "preprocess": {"size": 3}}, "invalid sizes"),
        ({**d, "preprocess": {"colour": 1}}, "unknown preprocessing keys"),
        ({**d, "input": {"scale": -1}}, "input scale"),
        ({**d, "output": "scores"}, "output"),
    ]
    for bad, msg in cases:
        with pytest.raises(ModelFileError, match=f"^where: malformed hcr metadata.*{msg}"):
            ModelMeta.from_dict(bad, "where")
    with pytest.raises(ModelFileError, match="newer hcr"):
        ModelMeta.from_dict({**d, "format_version": 99}, "where")
    with pytest.raises(ModelFileError, match="not JSON"):
        ModelMeta.from_json(b"{oops", "where")
    with pytest.raises(ModelFileError, match="too large"):
        ModelMeta.from_json(b" " * (2 << 20), "where")


class _Identity(Backend):
    """A backend whose network returns its (flattened) input: shows what the network sees."""

    format = "test"

    def _run(self, x: np.ndarray) -> np.ndarray:
        return x.reshape(len(x), -1)


def test_input_conventions_reach_the_network() -> None:
    x = np.random.default_rng(0).random((3, 28, 28), dtype=np.float32)
    for layout, shape in (("NCHW", (3, 1, 28, 28)), ("NHWC", (3, 28, 28, 1)), ("NHW", (3, 28, 28)), ("NF", (3, 784))):
        b = _Identity(_meta(layout=layout), "t")
        assert b.prepare(x).shape == shape and b.prepare(x[:, None]).shape == shape
    b = _Identity(_meta(invert=True, scale=255.0), "t")
    np.testing.assert_allclose(b.raw(x), ((1 - x) * 255).reshape(3, -1), rtol=1e-6)
    with pytest.raises(HcrError, match=r"expected a batch of shape \(N, H, W\)"):
        b.prepare(x[0])


def test_probability_outputs_and_temperature() -> None:
    logits = np.array([[2.0, 1.0, 0.0]], np.float32)
    p = softmax(logits)

    class Probs(Backend):
        def _run(self, x: np.ndarray) -> np.ndarray:
            return np.repeat(p, len(x), axis=0)

    b = Probs(_meta(labels=LabelMap(tuple("abc")), output="probs"), "t")
    x = np.zeros((2, 28, 28), np.float32)
    np.testing.assert_allclose(b.probs(x), np.repeat(p, 2, 0), atol=1e-7)
    np.testing.assert_allclose(b.probs(x, temperature=2.0), np.repeat(softmax(logits, 2.0), 2, 0), atol=1e-6)
    np.testing.assert_allclose(b.logits(x)[0] - b.logits(x)[0, 0], logits[0] - logits[0, 0], atol=1e-5)
    assert b.probs(np.zeros((0, 28, 28), np.float32)).shape == (0, 3)


# --------------------------------------------------------------------------- sniffing


def test_sniff_formats_by_content(tmp_path: Path, onnx_digits: Path) -> None:
    from hcr.pretrained import pretrained_path

    assert sniff_format(pretrained_path("digits")) == "pytorch"
    assert sniff_format(onnx_digits) == "onnx"
    renamed = tmp_path / "model.bin"
    renamed.write_bytes(onnx_digits.read_bytes())
    assert sniff_format(renamed) == "onnx"  # content, not the name
    (tmp_path / "h.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    assert sniff_format(tmp_path / "h.h5") == "keras-h5"
    (tmp_path / "m.tflite").write_bytes(b"\x1c\0\0\0TFL3" + b"\0" * 100)
    assert sniff_format(tmp_path / "m.tflite") == "tflite"
    (tmp_path / "sm").mkdir()
    (tmp_path / "sm" / "saved_model.pb").write_bytes(b"")
    assert sniff_format(tmp_path / "sm") == "tf-savedmodel"
    for name, data, msg in (
        ("empty.onnx", b"", "empty file"),
        ("text.txt", b"hello world", "not a model file hcr can read"),
        ("cut.pt", b"PK\x03\x04" + b"\0" * 40, "a damaged or truncated zip"),
    ):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ModelFileError, match=f"^{re.escape(str(tmp_path / name))}: {msg}"):
            load_backend(tmp_path / name)
    (tmp_path / "dir").mkdir()
    with pytest.raises(ModelFileError, match="is a directory"):
        load_backend(tmp_path / "dir")
    with pytest.raises(ModelFileError, match="no such model file"):
        load_backend(tmp_path / "missing.onnx")


# --------------------------------------------------------------------------- safety


class _Evil:
    """A pickle payload: unpickling it would run a shell command that creates a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, ...]:
        return (os.system, (f"touch {self.marker}",))


def test_pickle_payloads_are_refused_and_never_run(tmp_path: Path) -> None:
    import torch

    marker = tmp_path / "PWNED"
    bare = tmp_path / "evil.pt"
    bare.write_bytes(pickle.dumps(_Evil(marker), protocol=2))
    zipped = tmp_path / "evil-zip.pt"
    torch.save({"format": "hcr-checkpoint", "model": _Evil(marker)}, zipped)
    whole = tmp_path / "module.pt"
    torch.save(torch.nn.Linear(2, 2), whole)  # a pickled module (not a payload, but code-bearing all the same)
    for path in (bare, zipped, whole):
        with pytest.raises(ModelFileError, match=f"^{re.escape(str(path))}: not a readable hcr model file .*unsafe"):
            load_backend(path)
    from hcr.predictor import Predictor

    with pytest.raises(ModelFileError, match="unsafe"):
        Predictor.load(zipped)
    assert not marker.exists()


def test_torchscript_with_a_pickle_payload_is_refused(tmp_path: Path) -> None:
    from hcr.export import export_model

    good = export_model("digits", "torchscript", tmp_path / "d.torchscript.pt", check=False).path
    marker = tmp_path / "PWNED"
    evil = tmp_path / "evil.torchscript.pt"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(evil, "w") as zout:
        for n in zin.namelist():
            zout.writestr(n, pickle.dumps(_Evil(marker), protocol=2) if n.endswith("/data.pkl") else zin.read(n))
    with pytest.raises(ModelFileError, match=f"^{re.escape(str(evil))}: not a readable TorchScript model"):
        load_backend(evil)
    assert not marker.exists()
    assert load_backend(good).label_map == DIGITS


def test_truncated_and_foreign_onnx_files(tmp_path: Path, onnx_digits: Path) -> None:
    import onnx

    data = onnx_digits.read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match=f"^{re.escape(str(cut))}: not a readable ONNX model"):
        load_backend(cut)
    bare = onnx.load(str(onnx_digits))
    del bare.metadata_props[:]
    foreign = tmp_path / "foreign.onnx"
    onnx.save(bare, str(foreign))
    with pytest.raises(ModelFileError, match="holds no hcr metadata and has no sidecar foreign.onnx.hcr.json"):
        load_backend(foreign)
    sidecar_path(foreign).write_text(_meta().to_json())
    assert load_backend(foreign).label_map == DIGITS  # a sidecar supplies it


def test_mismatched_labels_are_refused(tmp_path: Path, onnx_digits: Path) -> None:
    import onnx

    proto = onnx.load(str(onnx_digits))
    meta = json.loads({p.key: p.value for p in proto.metadata_props}["hcr"])
    assert meta["format"] == META_FORMAT
    meta["labels"]["symbols"] = list("01234")
    onnx.helper.set_model_props(proto, {"hcr": json.dumps(meta)})
    tampered = tmp_path / "tampered.onnx"
    onnx.save(proto, str(tampered))
    with pytest.raises(ModelFileError, match=f"^{re.escape(str(tampered))}: the network has 10 outputs but its label list has 5 symbols"):
        load_backend(tampered)
    copy = tmp_path / "digits.onnx"
    copy.write_bytes(onnx_digits.read_bytes())
    side = sidecar_path(copy)
    side.write_text(_meta(labels=LabelMap(tuple("0123456789AB"))).to_json())
    with pytest.raises(ModelFileError, match="10 outputs but its label list has 12 symbols"):
        load_backend(copy)
    side.write_text("not json")
    with pytest.raises(ModelFileError, match=f"^{re.escape(str(side))}: malformed hcr metadata"):
        load_backend(copy)


def test_onnx_backend_options(onnx_digits: Path) -> None:
    b = load_backend(onnx_digits, threads=1)
    assert isinstance(b, OnnxBackend) and b.meta.layout == "NCHW" and "onnx" in b.describe()
    with pytest.raises(HcrError, match="only PyTorch models run on other devices"):
        load_backend(onnx_digits, device="cuda")
    with pytest.raises(HcrError, match="character classifier: it has no CTC alphabet"):
        b.codec  # noqa: B018
