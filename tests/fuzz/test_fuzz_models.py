"""Tampered, truncated and hostile model files of each format hcr loads (issue 17): each one
a clear one-line error on the CLI (exit code 2), no traceback, no code run."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from hcr.cli import main

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "digit_3_paper.png"


class _Payload:
    """Unpickling this would create ``marker``: proof that a file's code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (eval, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def _huge_constant_files(good: Path) -> dict[str, bytes]:
    """The exported model with a forged constant added: 16 GiB declared by its dimensions (a few
    bytes present), as an initialiser and as a Constant node, or weights in an external file."""
    import onnx
    from onnx import TensorProto, helper

    out = {}
    for name in ("huge-initializer.onnx", "huge-constant-node.onnx", "external-data.onnx", "external-data-escaping.onnx"):
        proto = onnx.load(str(good))
        tensor = helper.make_tensor("forged", TensorProto.FLOAT, [4], b"\0" * 16, raw=True)
        tensor.dims[:] = [65536, 65536]  # 16 GiB declared, 16 bytes present
        if name == "huge-constant-node.onnx":
            proto.graph.node.append(helper.make_node("Constant", [], ["forged_out"], value=tensor))
        else:
            if name.startswith("external-data"):
                tensor.ClearField("raw_data")
                tensor.dims[:] = [4]
                tensor.data_location = TensorProto.EXTERNAL
                where = "weights.bin" if name == "external-data.onnx" else "../../../../etc/passwd"
                tensor.external_data.add(key="location", value=where)
            proto.graph.initializer.append(tensor)
        out[name] = proto.SerializeToString()
    return out


def test_declared_weights_are_counted_before_onnxruntime(tmp_path: Path) -> None:
    """The shipped runtime files pass (their declared weights match their size); a forged
    constant is refused by :func:`hcr.runtime.onnx.check_onnx_weights` without onnxruntime."""
    from hcr.errors import ModelFileError
    from hcr.export import export_model
    from hcr.pretrained import pretrained_path
    from hcr.runtime.onnx import check_onnx_weights

    for name in ("chars", "digits", "words"):
        data = pretrained_path(name).with_suffix(".onnx").read_bytes()
        assert 0.9 * len(data) < check_onnx_weights(data, name) <= len(data)
    forged = _huge_constant_files(export_model("digits", "onnx", tmp_path / "good.onnx", check=False).path)
    with pytest.raises(ModelFileError, match=r"m.onnx: the model declares 16.0 GiB of weights, over the 2 GiB limit"):
        check_onnx_weights(forged["huge-initializer.onnx"], "m.onnx")
    with pytest.raises(ModelFileError, match=r"16.0 GiB"):
        check_onnx_weights(forged["huge-constant-node.onnx"], "m.onnx")
    with pytest.raises(ModelFileError, match=r"'forged' refers to data in another file"):
        check_onnx_weights(forged["external-data-escaping.onnx"], "m.onnx")
    with pytest.raises(ModelFileError, match="not a readable ONNX model"):
        check_onnx_weights(b"\x0a\xff\xff\xff\x0f", "m.onnx")  # a graph field longer than the file


@pytest.fixture(scope="module")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import onnx

    from hcr.export import export_model
    from hcr.pretrained import pretrained_path

    d = tmp_path_factory.mktemp("models")
    good_onnx = export_model("digits", "onnx", d / "good.onnx", check=False).path
    pt = pretrained_path("digits").read_bytes()
    files: dict[str, bytes] = {
        "truncated.pt": pt[: len(pt) // 3],
        "random.pt": bytes(range(256)) * 64,
        "empty.onnx": b"",
        "truncated.onnx": good_onnx.read_bytes()[:2000],
        "text.onnx": b"this is not a model\n",
    }
    proto = onnx.load(str(good_onnx))
    for k in (2, 3):  # declare a 30000 x 30000 input
        proto.graph.input[0].type.tensor_type.shape.dim[k].dim_value = 30000
    files["huge-input.onnx"] = proto.SerializeToString()
    files.update(_huge_constant_files(good_onnx))
    checkpoint = torch.load(pretrained_path("digits"), weights_only=True)
    checkpoint["preprocess"] = {**checkpoint["preprocess"], "size": 512, "box": 500}
    torch.save(checkpoint, d / "spec-512.pt")
    with open(d / "pickle-payload.pt", "wb") as f:
        pickle.dump({"format": "hcr", "model": _Payload(d / "marker")}, f)
    for name, data in files.items():
        (d / name).write_bytes(data)
    return {p.name: p for p in d.iterdir() if p.name != "good.onnx"}


def test_every_bad_model_file_is_one_line(model_files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    expect = {"spec-512.pt": "does not fit the network", "huge-initializer.onnx": "16.0 GiB of weights", "huge-constant-node.onnx": "16.0 GiB of weights",
              "external-data.onnx": "refers to data in another file", "external-data-escaping.onnx": "refers to data in another file"}  # (onnxruntime itself refuses the 30000 x 30000 input of this network)
    for name, path in model_files.items():
        code = main(["predict", "--model", str(path), str(SAMPLE)])
        out, err = capsys.readouterr()
        assert code == 2, (name, out, err)
        assert "Traceback" not in out + err and len(err.strip().splitlines()) == 1, (name, err)
        assert name in err and expect.get(name, "") in err, (name, err)
    assert not (next(iter(model_files.values())).parent / "marker").exists(), "a model file's pickled code ran"


def test_a_declared_input_size_must_be_the_preprocessing_one() -> None:
    from hcr.errors import ModelFileError
    from hcr.labels import LabelMap
    from hcr.modelfile import ModelMeta
    from hcr.runtime.base import check_input_shape

    meta = ModelMeta(task="classify", preprocess={"size": 28}, labels=LabelMap(tuple("0123456789")))
    check_input_shape(meta, ["batch", 1, 28, 28], "m.onnx")
    check_input_shape(meta, ["batch", 1, "h", "w"], "m.onnx")  # free axes fit anything
    with pytest.raises(ModelFileError, match=r"m.onnx: the network declares input height 30000, width 30000, but its preprocessing makes 28 x 28"):
        check_input_shape(meta, [1, 1, 30000, 30000], "m.onnx")
    with pytest.raises(ModelFileError, match="declares 900000000 input values"):
        check_input_shape(meta, [1, 900_000_000], "m.onnx")
