"""hcr export to ONNX and TorchScript: parity with PyTorch on 512 real inputs, metadata
inside the files, int8 quantisation, atomic writes, the CLI. (Keras, SavedModel and
TFLite, which need TensorFlow, are in test_tensorflow.py.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from helpers_export import (  # noqa: E402
    CODEC,
    crnn_meta,
    peakedness,
    random_crnn,
    sequence_checkpoint,
)
from helpers_train import digits_model, hcr_cache, single_thread  # noqa: E402,F401

from hcr.cli import main  # noqa: E402
from hcr.ctc import decode, log_softmax  # noqa: E402
from hcr.errors import HcrError  # noqa: E402
from hcr.export import (  # noqa: E402
    CHECK_IMAGES,
    TOLERANCE,
    compare,
    default_output,
    export_model,
    parity_inputs,
    resolve_source,
)
from hcr.runtime import load_backend
from hcr.runtime.onnx import OnnxBackend  # noqa: E402
from hcr.runtime.torch import TorchBackend, TorchScriptBackend

pytestmark = pytest.mark.usefixtures("single_thread")

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def _reference(source: object) -> TorchBackend:
    model, meta = resolve_source(source)  # type: ignore[arg-type]
    return TorchBackend(model, meta)


def _parity_asserts(reference: TorchBackend, exported_path: Path, fmt: str) -> None:
    """The acceptance criterion, computed here independently of export_model's own check."""
    exported = load_backend(exported_path)
    batches = parity_inputs(reference.meta, CHECK_IMAGES)
    assert sum(len(b) for b in batches) >= 500
    worst, same, n = 0.0, 0, 0
    for x in batches:
        a, b = reference.probs(x), exported.probs(x)
        assert a.shape == b.shape
        worst = max(worst, float(np.abs(a - b).max()))
        same += int((a.argmax(-1) == b.argmax(-1)).reshape(len(x), -1).all(axis=1).sum())
        n += len(x)
    assert worst <= TOLERANCE[fmt], worst
    assert same == n


# --------------------------------------------------------------------------- classifiers


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_pretrained_classifier_parity(fmt: str, tmp_path: Path) -> None:
    out = tmp_path / f"chars{'.onnx' if fmt == 'onnx' else '.torchscript.pt'}"
    res = export_model("chars", fmt, out)
    assert res.path == out and out.is_file() and res.bytes == out.stat().st_size
    assert res.parity is not None and res.parity.images == CHECK_IMAGES
    assert res.parity.top1_agreement == 1.0 and res.parity.max_abs_diff <= TOLERANCE[fmt]
    _parity_asserts(_reference("chars"), out, fmt)
    backend = load_backend(out)
    assert isinstance(backend, OnnxBackend if fmt == "onnx" else TorchScriptBackend)
    ref = _reference("chars")
    assert backend.label_map == ref.label_map and backend.spec == ref.spec and backend.temperature == ref.temperature
    assert backend.meta.model_name == "hcr-cnn" and backend.task == "classify"


def test_seed_cnn_onnx_parity_and_metadata(digits_model, tmp_path: Path) -> None:  # noqa: F811
    import onnx

    out = tmp_path / "seed.onnx"
    res = export_model(digits_model.best, "onnx", out)
    assert res.parity is not None and res.parity.top1_agreement == 1.0
    _parity_asserts(_reference(str(digits_model.best)), out, "onnx")
    proto = onnx.load(str(out))
    props = {p.key: p.value for p in proto.metadata_props}
    assert '"symbols": ["0", "1"' in props["hcr"] and '"task": "classify"' in props["hcr"]
    assert proto.opset_import[0].version >= 17
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [1, 28, 28]


def test_onnx_predictor_answers_like_pytorch(tmp_path: Path) -> None:
    from hcr.predictor import Predictor

    out = export_model("digits", "onnx", tmp_path / "digits.onnx", check=False).path
    files = sorted(SAMPLES.glob("digit_*")) + [SAMPLES / "blank_canvas.png"]
    torch_preds = Predictor.load("digits").predict(files)
    onnx_pred = Predictor.load(out)
    assert onnx_pred.model is None and onnx_pred.device is None and onnx_pred.meta["format"] == "onnx"
    for a, b in zip(torch_preds, onnx_pred.predict(files)):
        assert (a.label, a.blank, a.uncertain) == (b.label, b.blank, b.uncertain)
        assert abs(a.confidence - b.confidence) < 1e-4
        assert [s for s, _ in a.top_k] == [s for s, _ in b.top_k]
    restricted = Predictor.load(out, charset="0123")
    assert all(p.label in "0123" for p in restricted.predict(files[:-1]))


# --------------------------------------------------------------------------- CRNN


@pytest.mark.parametrize("fmt,stride", [("onnx", 2), ("torchscript", 2), ("onnx", 4)])
def test_crnn_parity_on_lines_of_any_width(fmt: str, stride: int, tmp_path: Path) -> None:
    model, meta = random_crnn(stride=stride), crnn_meta(stride)
    out = tmp_path / ("crnn.onnx" if fmt == "onnx" else "crnn.torchscript.pt")
    res = export_model((model, meta), fmt, out)
    assert res.parity is not None and res.parity.images == CHECK_IMAGES and res.parity.top1_agreement == 1.0
    reference = TorchBackend(model, meta)
    batches = parity_inputs(meta)
    assert len({b.shape[2] for b in batches}) >= 5  # many widths through one file
    _parity_asserts(reference, out, fmt)
    exported = load_backend(out)
    assert exported.task == "sequence" and exported.codec == CODEC
    probs = reference.probs(batches[len(batches) // 2])
    assert 0.5 < peakedness(probs) < 0.99  # a realistic spread of answers, not uniform noise
    for x in batches[:3]:  # decoding stays in numpy: the same text from both
        la, lb = reference.logits(x), exported.logits(x)
        assert la.shape[1] == -(-x.shape[2] // stride)
        for i in range(len(x)):
            assert decode(log_softmax(la[i]), CODEC).text == decode(log_softmax(lb[i]), CODEC).text


def test_sequence_model_file_exports_with_its_codec(tmp_path: Path) -> None:
    path = sequence_checkpoint(tmp_path / "crnn.pt")
    res = export_model(path, "onnx", tmp_path / "crnn.onnx", check_images=64)
    assert res.parity is not None and res.parity.top1_agreement == 1.0
    backend = load_backend(res.path)
    assert backend.task == "sequence" and backend.codec == CODEC
    assert backend.meta.line_spec().height == 32
    with pytest.raises(HcrError, match="sequence"):
        from hcr.predictor import Predictor

        Predictor.load(res.path)


# --------------------------------------------------------------------------- int8


def test_int8_onnx_is_smaller_and_agrees(tmp_path: Path) -> None:
    fp32 = export_model("digits", "onnx", tmp_path / "d.onnx", check=False)
    res = export_model("digits", "onnx", tmp_path / "d.int8.onnx", quantize="int8")
    assert res.quantized == "int8" and res.bytes < fp32.bytes / 2
    assert res.parity is not None and res.parity.top1_agreement >= 0.97
    backend = load_backend(res.path)
    assert backend.label_map.symbols == tuple("0123456789")  # metadata survives quantisation
    a = compare(load_backend(fp32.path), backend, parity_inputs(backend.meta, 256))
    assert a.top1_agreement >= 0.97 and a.max_abs_diff < 0.5
    with pytest.raises(HcrError, match="ONNX exports only"):
        export_model("digits", "keras", tmp_path / "x.keras", quantize="int8")


def test_int8_crnn_keeps_its_columns(tmp_path: Path) -> None:
    model, meta = random_crnn(), crnn_meta()
    fp32 = load_backend(export_model((model, meta), "onnx", tmp_path / "c.onnx", check=False).path)
    int8 = load_backend(export_model((model, meta), "onnx", tmp_path / "c.int8.onnx", quantize="int8", check=False).path)
    assert int8.codec == CODEC and int8.meta.task == "sequence"
    batches = parity_inputs(meta, 128)
    agree = np.mean([(fp32.logits(x).argmax(-1) == int8.logits(x).argmax(-1)).mean() for x in batches])
    assert agree >= 0.97


# --------------------------------------------------------------------------- writes and errors


def test_failed_check_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hcr.export as ex

    out = tmp_path / "digits.onnx"
    out.write_bytes(b"the previous file")
    monkeypatch.setitem(ex.TOLERANCE, "onnx", 0.0)  # nothing can pass a zero tolerance
    with pytest.raises(HcrError, match="does not match PyTorch.*nothing written"):
        export_model("digits", "onnx", out, check_images=16)
    assert out.read_bytes() == b"the previous file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits.onnx"]  # no temporary left behind


def test_export_refuses_bad_requests(tmp_path: Path) -> None:
    with pytest.raises(HcrError, match="unknown export format 'coreml'"):
        export_model("digits", "coreml", tmp_path / "x")
    with pytest.raises(HcrError, match="no such model file"):
        export_model(tmp_path / "missing.pt", "onnx", tmp_path / "x.onnx")
    onnx_file = export_model("digits", "onnx", tmp_path / "d.onnx", check=False).path
    with pytest.raises(HcrError, match="starts from an hcr PyTorch model file"):
        export_model(onnx_file, "torchscript", tmp_path / "x.pt")
    assert default_output("runs/a/best.pt", "onnx") == Path("runs/a/best.onnx")
    assert default_output("chars", "onnx", "int8") == Path("chars.int8.onnx")
    assert default_output("chars", "tf-savedmodel") == Path("chars_savedmodel")


def test_cli_export_predict_evaluate(tmp_path: Path, capsys: pytest.CaptureFixture[str], hcr_cache: Path) -> None:  # noqa: F811
    out = tmp_path / "digits.onnx"
    assert main(["export", "digits", "--format", "onnx", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out} (onnx" in printed and "top-1 agreement 100.00% on 512 images" in printed
    digit = sorted(SAMPLES.glob("digit_*"))[0]
    assert main(["predict", "--model", str(out), str(digit)]) == 0
    assert f"{digit}: " in capsys.readouterr().out
    assert main(["predict", str(out)]) == 2  # a model passed as an image
    assert "looks like a model file" in capsys.readouterr().err
    reports = {}
    for name, model in (("torch", "digits"), ("onnx", str(out))):
        assert main(["evaluate", model, "--data", "digits", "--split", "test", "--out", str(tmp_path / name), "--no-progress"]) == 0
        reports[name] = capsys.readouterr().out.split(":", 1)[1].split(",")[0]
    assert reports["torch"] == reports["onnx"]  # the same accuracy, to four decimals
    assert main(["export", "digits", "--format", "onnx", "--out", str(tmp_path / "q.onnx"), "--quantize", "int8"]) == 0
    assert "(onnx (int8)" in capsys.readouterr().out


def test_onnx_export_without_the_onnx_package_says_which_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    from hcr.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a))
    code = main(["export", "digits", "--format", "onnx", "--out", str(tmp_path / "d.onnx")])
    err = capsys.readouterr().err
    assert code == 2 and "ONNX export needs onnx: pip install 'hcr-toolkit[onnx]'" in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())  # nothing written
