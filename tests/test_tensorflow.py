"""Everything that needs TensorFlow, in one module (importing it takes seconds): Keras,
SavedModel and TFLite exports with parity against PyTorch on 512 real inputs, and the
import of classic Keras notebook classifiers (.h5 / .keras) with their safety checks."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("onnxruntime")

from helpers_export import CODEC, crnn_meta, random_crnn  # noqa: E402
from helpers_train import digits_model, digits_test_split, hcr_cache, single_thread  # noqa: E402,F401

from hcr.cli import main  # noqa: E402
from hcr.ctc import decode, log_softmax  # noqa: E402
from hcr.errors import HcrError, ModelFileError  # noqa: E402
from hcr.export import (  # noqa: E402
    CHECK_IMAGES,
    TOLERANCE,
    export_model,
    parity_inputs,
    resolve_source,
)
from hcr.labels import LabelMap  # noqa: E402
from hcr.modelfile import ModelMeta, sidecar_path
from hcr.preprocess import PreprocessSpec  # noqa: E402
from hcr.runtime import load_backend
from hcr.runtime.tensorflow import (  # noqa: E402  # noqa: E402
    KerasBackend,
    SavedModelBackend,
    TFLiteBackend,
    check_keras_config,
    import_keras,
    import_tensorflow,
    keras_model,
    parse_labels,
)
from hcr.runtime.torch import TorchBackend

pytestmark = [
    pytest.mark.usefixtures("single_thread"),
    # Keras' own notice (saving under numpy 2), not hcr's
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"),
]

TF_FORMATS = {"keras": ".keras", "tf-savedmodel": "", "tflite": ".tflite"}
BACKENDS = {"keras": KerasBackend, "tf-savedmodel": SavedModelBackend, "tflite": TFLiteBackend}


@pytest.fixture(scope="module")
def keras() -> Any:
    import_tensorflow()
    import keras

    return keras


# --------------------------------------------------------------------------- export parity


@pytest.mark.parametrize("fmt", list(TF_FORMATS))
def test_classifier_export_parity(fmt: str, tmp_path: Path, keras: Any) -> None:
    out = tmp_path / f"chars{TF_FORMATS[fmt] or '_savedmodel'}"
    res = export_model("chars", fmt, out)
    assert res.parity is not None and res.parity.images == CHECK_IMAGES
    assert res.parity.top1_agreement == 1.0 and res.parity.max_abs_diff <= TOLERANCE[fmt]
    model, meta = resolve_source("chars")
    reference, exported = TorchBackend(model, meta), load_backend(out)
    assert isinstance(exported, BACKENDS[fmt]) and exported.meta.layout == "NHWC"
    assert exported.label_map == reference.label_map and exported.spec == reference.spec and exported.temperature == reference.temperature
    worst, n = 0.0, 0
    for x in parity_inputs(meta):  # independent of export_model's own check
        a, b = reference.probs(x), exported.probs(x)
        assert (a.argmax(1) == b.argmax(1)).all()
        worst, n = max(worst, float(np.abs(a - b).max())), n + len(x)
    assert n >= 500 and worst <= TOLERANCE[fmt]


@pytest.mark.parametrize("fmt,stride", [(f, 2) for f in TF_FORMATS] + [("tflite", 4)])
def test_crnn_export_parity(fmt: str, stride: int, tmp_path: Path, keras: Any) -> None:
    model, meta = random_crnn(stride=stride), crnn_meta(stride)
    out = tmp_path / f"crnn{TF_FORMATS[fmt] or '_savedmodel'}"
    res = export_model((model, meta), fmt, out)
    assert res.parity is not None and res.parity.images == CHECK_IMAGES
    assert res.parity.top1_agreement == 1.0 and res.parity.max_abs_diff <= TOLERANCE[fmt]
    exported = load_backend(out)
    assert exported.task == "sequence" and exported.codec == CODEC
    reference = TorchBackend(model, meta)
    for x in parity_inputs(meta)[::4]:  # widths from 32 up: the same decoded text everywhere
        la, lb = reference.logits(x), exported.logits(x)
        assert [decode(log_softmax(a), CODEC).text for a in la] == [decode(log_softmax(b), CODEC).text for b in lb]


def test_keras_network_mirrors_the_torch_layers(digits_model, keras: Any) -> None:  # noqa: F811
    model, meta = resolve_source(str(digits_model.best))
    km = keras_model(model, meta)
    kinds = [type(layer).__name__ for layer in km.layers]
    assert kinds == ["InputLayer", "Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dropout", "Dense"]
    assert km.count_params() == sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------- Keras import


def _notebook_model(keras: Any, source: Path, *, inverted_bytes: bool = False) -> Any:
    """The classic notebook network (Sequential: Conv32-Pool-Conv64-Pool-Flatten-Dense128-
    Dropout-Dense10-softmax) holding the weights of the seed-cnn at ``source``; with
    ``inverted_bytes`` it expects what many notebooks feed: dark ink on white, 0..255."""
    model, meta = resolve_source(str(source))
    trained = keras_model(model, meta)
    L = keras.layers
    first = [L.Rescaling(-1 / 255.0, offset=1.0)] if inverted_bytes else []
    seq = keras.Sequential([keras.Input((28, 28, 1)), *first, L.Conv2D(32, 3, activation="relu"), L.MaxPooling2D(), L.Conv2D(64, 3, activation="relu"),
                            L.MaxPooling2D(), L.Flatten(), L.Dense(128, activation="relu"), L.Dropout(0.5), L.Dense(10, activation="softmax")])
    seq.set_weights(trained.get_weights())
    return seq


def test_imported_notebook_model_matches_hcr(digits_model, tmp_path: Path, keras: Any, hcr_cache: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    from hcr.predictor import Predictor

    h5 = tmp_path / "mnist_cnn.h5"
    _notebook_model(keras, digits_model.best).save(h5)
    with pytest.raises(ModelFileError, match="without hcr metadata: import it first with `hcr import-keras"):
        Predictor.load(h5)
    assert main(["import-keras", str(h5), "--labels", "0123456789"]) == 0
    printed = capsys.readouterr().out
    assert "10 classes (0-9), input 28x28 (NHWC), output probs" in printed and str(sidecar_path(h5)) in printed
    imported, hcr_model = Predictor.load(h5), Predictor.load(digits_model.best)
    assert imported.meta["format"] == "keras" and imported.backend.meta.output == "probs"
    images, _ = digits_test_split()
    a, b = hcr_model.predict(list(images[:200])), imported.predict(list(images[:200]))
    assert [p.label for p in a] == [p.label for p in b]
    x = np.stack([p.input for p in a if p.input is not None])
    # the Keras network ends in a softmax at temperature 1; the hcr file adds its fitted temperature
    assert np.abs(hcr_model.backend.probs(x, temperature=1.0) - imported.backend.probs(x)).max() < 1e-4
    accuracy = {}
    for name, model in (("hcr", str(digits_model.best)), ("keras", str(h5))):  # side by side, same data, same preprocessing
        assert main(["evaluate", model, "--data", "digits", "--split", "test", "--out", str(tmp_path / name), "--no-progress"]) == 0
        accuracy[name] = re.search(r"accuracy (\d\.\d+)", capsys.readouterr().out).group(1)  # type: ignore[union-attr]
    assert accuracy["hcr"] == accuracy["keras"]


def test_import_options_invert_and_scale(digits_model, tmp_path: Path, keras: Any) -> None:  # noqa: F811
    from hcr.predictor import Predictor

    path = tmp_path / "inverted.keras"
    _notebook_model(keras, digits_model.best, inverted_bytes=True).save(path)
    images, targets = digits_test_split()
    files = list(images[:150])
    hcr_labels = [p.label for p in Predictor.load(digits_model.best).predict(files)]
    import_keras(path, "0123456789", invert=True, scale=255)
    right = [p.label for p in Predictor.load(path).predict(files)]
    import_keras(path, "0123456789")  # the wrong assumptions: bright ink in 0..1
    wrong = [p.label for p in Predictor.load(path).predict(files)]
    assert right == hcr_labels
    truth = [str(t) for t in targets[:150]]
    assert np.mean([w == t for w, t in zip(wrong, truth)]) < np.mean([r == t for r, t in zip(right, truth)]) - 0.3


def test_import_other_input_layouts_and_label_files(tmp_path: Path, keras: Any) -> None:
    L = keras.layers
    rng = np.random.default_rng(0)
    mlp = keras.Sequential([keras.Input((784,)), L.Dense(32, activation="relu"), L.Dense(3)])
    flat = keras.Sequential([keras.Input((28, 28)), L.Flatten(), L.Dense(3, activation="softmax")])
    for name, model, layout, output in (("mlp.keras", mlp, "NF", "logits"), ("flat.h5", flat, "NHW", "probs")):
        model.save(tmp_path / name)
        labels = tmp_path / "labels.txt"
        labels.write_text("cat\ndog\nbird\n")
        assert main(["import-keras", str(tmp_path / name), "--labels-file", str(labels)]) == 0
        backend = load_backend(tmp_path / name)
        assert (backend.meta.layout, backend.meta.output) == (layout, output)
        assert backend.label_map.symbols == ("cat", "dog", "bird")
        x = rng.random((4, 28, 28), dtype=np.float32)
        p = backend.probs(x)
        assert p.shape == (4, 3) and np.allclose(p.sum(1), 1, atol=1e-5)
    assert parse_labels("0123456789") == list("0123456789") and parse_labels("a\nbb\n") == ["a", "bb"]


def test_import_refuses_wrong_labels(tmp_path: Path, keras: Any, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.keras"
    keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")]).save(path)
    with pytest.raises(HcrError, match="the network has 10 outputs but 26 labels were given"):
        import_keras(path, "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    with pytest.raises(HcrError, match="the label list is empty"):
        import_keras(path, "  ")
    assert main(["import-keras", str(path), "--labels", "0123"]) == 2
    assert "10 outputs but 4 labels" in capsys.readouterr().err
    assert not sidecar_path(path).exists()
    import_keras(path, "0123456789")
    meta = json.loads(sidecar_path(path).read_text())
    meta["labels"]["symbols"] = list("01234")  # a sidecar edited by hand, wrongly
    sidecar_path(path).write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="the network has 10 outputs but its label list has 5 symbols"):
        load_backend(path)


def test_keras_files_with_code_are_refused_unrun(tmp_path: Path, keras: Any) -> None:
    marker = tmp_path / "PWNED"

    def side_effect(x: Any) -> Any:
        marker.touch()  # runs whenever the layer is built or called
        return x * 2

    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Lambda(side_effect), keras.layers.Flatten(), keras.layers.Dense(10)])
    for suffix in (".h5", ".keras"):
        path = tmp_path / f"lambda{suffix}"
        model.save(path)
        marker.unlink(missing_ok=True)
        with pytest.raises(ModelFileError, match=f"^{re.escape(str(path))}: refused: the model holds a Lambda layer"):
            import_keras(path, "0123456789")
        sidecar_path(path).write_text(ModelMeta("classify", PreprocessSpec().to_dict(), labels=LabelMap(tuple("0123456789"))).to_json())
        with pytest.raises(ModelFileError, match="refused: the model holds a Lambda layer"):
            load_backend(path)
        assert not marker.exists()
    custom = tmp_path / "custom.keras"
    good = tmp_path / "good.keras"
    keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)]).save(good)
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(custom, "w") as zout:
        for n in zin.namelist():
            data = zin.read(n)
            if n == "config.json":
                cfg = json.loads(data)
                cfg["config"]["layers"][-1].update({"module": "os", "class_name": "system", "registered_name": None})
                data = json.dumps(cfg).encode()
            zout.writestr(n, data)
    with pytest.raises(ModelFileError, match=r"refused: the model names code outside Keras \(os.system\)"):
        import_keras(custom, "0123456789")
    with pytest.raises(ModelFileError, match="custom registered class"):
        check_keras_config({"class_name": "Dense", "registered_name": "evil>Dense"}, "x")


def test_damaged_tf_files(tmp_path: Path, keras: Any) -> None:
    good = tmp_path / "g.keras"
    keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)]).save(good)
    keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)]).save(tmp_path / "g.h5")
    tfl = export_model("digits", "tflite", tmp_path / "d.tflite", check=False).path
    for src in (good, tmp_path / "g.h5", tfl):
        data = src.read_bytes()
        cut = tmp_path / f"cut{src.suffix}"
        cut.write_bytes(data[: len(data) // 3])
        with pytest.raises(ModelFileError, match=f"^{re.escape(str(cut))}: "):
            load_backend(cut)
    weights = tmp_path / "weights.h5"
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save_weights(str(tmp_path / "w.weights.h5"))
    (tmp_path / "w.weights.h5").rename(weights)
    with pytest.raises(ModelFileError, match="without a model configuration"):
        import_keras(weights, "ab")
    saved = export_model("digits", "tf-savedmodel", tmp_path / "sm", check=False).path
    (saved / "assets.extra" / "hcr.json").unlink()
    with pytest.raises(ModelFileError, match="holds no hcr metadata"):
        load_backend(saved)
