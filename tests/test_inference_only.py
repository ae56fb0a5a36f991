"""The inference-only path: ONNX models read and run with numpy, Pillow, OpenCV and
onnxruntime, and torch is never imported.

Each check runs in a fresh interpreter whose import system refuses torch (and TensorFlow,
Keras, scikit-learn, matplotlib: none is in requirements-inference.txt), so an import of
any of them anywhere on the path fails the run instead of passing unnoticed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from helpers_export import CODEC, crnn_meta, random_crnn  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"

#: Put in front of every script: makes importing these packages an ImportError.
BLOCKER = textwrap.dedent(
    """
    import importlib.abc, sys
    BLOCKED = ("torch", "torchvision", "tensorflow", "keras", "sklearn", "matplotlib")
    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is not installed (inference-only test)")
    sys.meta_path.insert(0, Blocker())
    """
)


def _run(script: str, *args: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", BLOCKER + textwrap.dedent(script), *args], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from hcr.export import export_model
    from hcr.pretrained import pretrained_path

    d = tmp_path_factory.mktemp("inference-only")
    return {
        "chars": export_model("chars", "onnx", d / "chars.onnx", check=False).path,
        "crnn": export_model((random_crnn(), crnn_meta()), "onnx", d / "crnn.onnx", check=False).path,
        "pt": pretrained_path("digits"),
        "words": export_model("words", "onnx", d / "words.onnx", check=False).path,
    }


def test_predictor_runs_onnx_without_torch(exported: dict[str, Path]) -> None:
    from hcr.predictor import Predictor

    files = sorted(str(f) for f in SAMPLES.iterdir() if f.suffix.lower() in (".png", ".jpg", ".jpeg"))
    assert len(files) >= 10
    out = _run(
        """
        import json, sys
        from hcr.predictor import Predictor
        pred = Predictor.load(sys.argv[1])
        answers = [[p.label, p.confidence, p.blank, p.error] for p in pred.predict_files(sys.argv[2:])]
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "tensorflow", "keras", "sklearn", "matplotlib"))
        print(json.dumps({"answers": answers, "heavy": heavy, "ort": "onnxruntime" in sys.modules, "format": pred.meta["format"]}))
        """,
        str(exported["chars"]), *files,
    )
    assert out["heavy"] == [] and out["ort"] and out["format"] == "onnx"
    reference = Predictor.load("chars").predict_files(files)  # the PyTorch model, in this process
    assert len(out["answers"]) == len(reference)
    read = 0
    for (label, conf, blank, error), ref in zip(out["answers"], reference):
        assert (label, blank, error) == (ref.label, ref.blank, ref.error)
        assert abs(conf - ref.confidence) < 1e-4
        read += label is not None
    assert read >= 8


def test_cli_predict_and_crnn_decoding_without_torch(exported: dict[str, Path]) -> None:
    out = _run(
        """
        import contextlib, io, json, sys
        import numpy as np
        from hcr.runtime import load_backend
        from hcr.cli import main
        from hcr.ctc import decode, log_softmax
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            code = main(["predict", "--model", sys.argv[1], "--json", sys.argv[3]])
        line = json.loads(buf.getvalue().splitlines()[0])
        crnn = load_backend(sys.argv[2])
        x = np.random.default_rng(0).random((2, 32, 96), dtype=np.float32)
        texts = [decode(log_softmax(l), crnn.codec).text for l in crnn.logits(x)]
        try:
            load_backend(sys.argv[4])
            pt = "loaded"
        except Exception as e:
            pt = f"{type(e).__name__}: {e}"
        print(json.dumps({"code": code, "label": line["label"], "texts": texts, "shape": list(crnn.logits(x).shape),
                          "torch": "torch" in sys.modules, "pt": pt}))
        """,
        str(exported["chars"]), str(exported["crnn"]), str(SAMPLES / "char_A_paper-photo.jpg"), str(exported["pt"]),
    )
    assert out["code"] == 0 and out["label"] == "A" and not out["torch"]
    assert out["shape"] == [2, 48, CODEC.num_classes] and len(out["texts"]) == 2
    assert out["pt"].startswith("HcrError") and "PyTorch is not installed" in out["pt"] and "hcr export" in out["pt"]


def test_requirements_file_lists_no_torch() -> None:
    reqs = [ln.split(">")[0].split("=")[0].strip() for ln in (ROOT / "requirements-inference.txt").read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert reqs == ["numpy", "pillow", "opencv-python-headless", "onnxruntime", "platformdirs"]


def test_cli_reads_a_line_with_the_exported_words_model_without_torch(exported: dict[str, Path], tmp_path: Path) -> None:
    from hcr.compose import GlyphPool, compose
    from hcr.data import get_source
    from hcr.reader import CrnnReader
    from hcr.render import render_line

    rng = np.random.default_rng(3)
    digits = get_source("digits").load("test")
    img = tmp_path / "line.png"
    render_line(compose("2024 305", GlyphPool.from_samples(digits.images, digits.targets, digits.label_map.symbols), rng), "paper-photo", rng).save(img)
    out = _run(
        """
        import contextlib, io, json, sys
        from hcr.cli import main
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            code = main(["read", "--engine", "crnn", "--model", sys.argv[1], "--json", sys.argv[2]])
        got = json.loads(buf.getvalue().splitlines()[0])
        print(json.dumps({"code": code, "text": got["text"], "boxes": [c["box"] for c in got["characters"]],
                          "torch": "torch" in sys.modules}))
        """,
        str(exported["words"]), str(img),
    )
    reference = CrnnReader.load("words").read(img)  # the PyTorch model file, in this process
    assert out["code"] == 0 and not out["torch"]
    assert out["text"] == reference.text and reference.text.replace(" ", "") != ""
    assert out["boxes"] == [list(c.box) for c in reference.characters]


def test_shipped_models_run_from_their_runtime_files_without_torch() -> None:
    out = _run(
        """
        import contextlib, io, json, sys
        from hcr.cli import main
        labels, codes = {}, []
        for model, image in (("chars", sys.argv[1]), ("digits", sys.argv[2]), ("letters", sys.argv[3])):
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):
                codes.append(main(["predict", "--json", "--model", model, image]))  # by name
            labels[model] = json.loads(buf.getvalue().splitlines()[0])["label"]
        from hcr.reading.line import LineRecognizer
        words = LineRecognizer.load()
        print(json.dumps({"codes": codes, "labels": labels, "words": words.backend.format, "torch": "torch" in sys.modules}))
        """,
        str(SAMPLES / "char_A_paper-photo.jpg"),
        str(SAMPLES / "digit_7_chalk.png"),
        str(SAMPLES / "char_R_blue-pen-scan.jpg"),
    )
    assert out == {"codes": [0, 0, 0], "labels": {"chars": "A", "digits": "7", "letters": "R"}, "words": "onnx", "torch": False}


def test_hcr_models_lists_the_shipped_models_without_torch() -> None:
    out = _run(
        """
        import contextlib, io, json
        from hcr.cli import main
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            code = main(["models"])
        print(json.dumps({"code": code, "out": buf.getvalue()}))
        """
    )
    assert out["code"] == 0
    lines = {line.split()[0]: line for line in out["out"].splitlines() if line.strip()}
    assert "62 classes" in lines["chars"] and "10 classes" in lines["digits"]
    assert "unavailable" not in out["out"] and "training needs PyTorch" in out["out"]


def test_hcr_models_and_the_api_agree_on_the_classes(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from hcr.cli import main
    from hcr.web.api import ApiConfig, create_app

    assert main(["models"]) == 0
    cli = {line.split()[0]: int(line.split()[1]) for line in capsys.readouterr().out.splitlines() if " classes (" in line}
    api = TestClient(create_app(ApiConfig(models=list(cli)))).get("/v1/models").json()["models"]
    assert {m["name"]: m["num_classes"] for m in api} == cli
