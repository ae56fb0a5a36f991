"""The models shipped in the package: registry, integrity checks, and that they read."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import hcr.pretrained as pt
from hcr.checkpoint import load_checkpoint
from hcr.errors import ModelFileError, UnknownNameError
from hcr.pretrained import DEFAULT_MODEL, get_pretrained, list_pretrained, resolve_model, sha256_file

EXPECTED = {
    "chars": "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
    "digits": "0123456789",
    "letters": "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
}
ROOT = Path(__file__).resolve().parents[1]


def test_the_three_models_are_shipped_with_cards_recipes_and_a_size_budget() -> None:
    models = {m.name: m for m in list_pretrained()}
    assert set(EXPECTED) <= set(models)
    assert list_pretrained()[0].name == DEFAULT_MODEL == "chars"
    total = 0
    for name, m in models.items():
        assert m.path.is_file() and m.path.stat().st_size == m.bytes
        assert sha256_file(m.path) == m.sha256
        if m.runtime:
            assert sha256_file(pt.HERE / m.runtime["file"]) == m.runtime["sha256"]
        total += (m.bytes + (m.runtime["bytes"] if m.runtime else 0)) if m.task == "classify" else 0
        if m.task == "sequence":  # a word/line model: at most 15 MB with its runtime file (issue 15)
            assert m.bytes + (m.runtime["bytes"] if m.runtime else 0) <= 15 * 1024 * 1024
        card = m.card_path.read_text()
        # a card names its data, split, metrics, size, licence/credit and reproduction command
        for needle in ("## Data", "## Metrics", "## Reproduce", "## Licence", m.config, "parameters"):
            assert needle in card, f"{m.card} lacks {needle!r}"
        assert (ROOT / m.config).is_file(), f"{m.config} is not committed"
    assert total <= 25 * 1024 * 1024


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_model_loads_by_name_with_its_label_set(name: str) -> None:
    path = resolve_model(name)
    ckpt = load_checkpoint(path)
    assert "".join(ckpt.label_map.symbols) == EXPECTED[name]
    assert 0.1 < ckpt.temperature < 10  # calibrated after training


def test_default_and_paths_resolve(tmp_path: Path) -> None:
    assert resolve_model(None) == get_pretrained("chars").path
    f = tmp_path / "mine.pt"
    shutil.copyfile(get_pretrained("digits").path, f)
    assert resolve_model(str(f)) == f
    with pytest.raises(ModelFileError, match="not a pretrained model name.*chars"):
        resolve_model("no-such-model")
    with pytest.raises(UnknownNameError, match="digits"):
        get_pretrained("nope")


@pytest.fixture
def shipped_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Ship a copy of some models from ``tmp_path``: ``shipped_copy(names, no_runtime=())``
    copies their files and a manifest listing only them (``no_runtime`` lose their runtime
    file) and points the registry there until the test ends."""

    def make(names: set[str], no_runtime: set[str] = set()) -> Path:
        raw = json.loads(pt.MANIFEST.read_text())
        raw["models"] = [m for m in raw["models"] if m["name"] in names]
        for m in raw["models"]:
            if m["name"] in no_runtime:
                del m["runtime"]
            for f in [m["file"], m["card"]] + ([m["runtime"]["file"]] if "runtime" in m else []):
                shutil.copyfile(pt.HERE / f, tmp_path / f)
        (tmp_path / "manifest.json").write_text(json.dumps(raw))
        monkeypatch.setattr(pt, "HERE", tmp_path)
        monkeypatch.setattr(pt, "MANIFEST", tmp_path / "manifest.json")
        pt._manifest.cache_clear()
        pt._verified.cache_clear()
        return tmp_path

    yield make
    pt._manifest.cache_clear()
    pt._verified.cache_clear()


def test_a_damaged_shipped_file_is_refused_by_name(shipped_copy) -> None:
    """A packaged file that no longer matches the manifest is an error, not other weights."""
    here = shipped_copy({"digits"})
    assert resolve_model("digits") == here / "digits.pt"  # intact copy: fine
    data = bytearray((here / "digits.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (here / "digits.pt").write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="'digits'.*checksum"):
        resolve_model("digits")
    (here / "digits.pt").unlink()
    with pytest.raises(ModelFileError, match="missing"):
        resolve_model("digits")


RUNTIMES = [m.name for m in list_pretrained() if m.runtime]


@pytest.mark.parametrize("name", RUNTIMES)
def test_a_shipped_runtime_file_is_the_same_network_as_the_model_file(name: str) -> None:
    pytest.importorskip("onnxruntime")
    from hcr.export import compare, parity_inputs
    from hcr.runtime.onnx import OnnxBackend
    from hcr.runtime.torch import TorchBackend

    ref = TorchBackend.from_checkpoint(load_checkpoint(resolve_model(name)))
    onnx = OnnxBackend(pt.runtime_path(name))
    for key in ("task", "preprocess", "labels", "codec", "temperature", "model_name", "model_kwargs"):
        assert getattr(onnx.meta, key) == getattr(ref.meta, key), key
    parity = compare(ref, onnx, parity_inputs(ref.meta, 512))
    assert parity.top1_agreement == 1.0 and parity.max_abs_diff <= 1e-4, parity


def test_inference_runs_the_shipped_runtime_file_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnxruntime")
    from hcr.errors import HcrError
    from hcr.predictor import Predictor
    from hcr.reading.line import LineRecognizer

    assert {"chars", "words"} <= set(RUNTIMES)
    files = sorted(str(f) for f in (ROOT / "samples").iterdir() if f.suffix in (".png", ".jpg"))
    fast = Predictor.load()
    assert fast.backend.format == "onnx" and fast.meta["pretrained"] == "chars"
    assert LineRecognizer.load().backend.format == "onnx"
    assert Predictor.load("digits").backend.format == "onnx"
    monkeypatch.setenv("HCR_RUNTIME", "pytorch")
    slow = Predictor.load()
    assert slow.backend.format == "pytorch" and LineRecognizer.load().backend.format == "pytorch"
    for a, b in zip(fast.predict_files(files), slow.predict_files(files)):
        assert (a.label, a.blank) == (b.label, b.blank) and abs(a.confidence - b.confidence) < 1e-4
    monkeypatch.setenv("HCR_RUNTIME", "tensorflow")
    with pytest.raises(HcrError, match="HCR_RUNTIME='tensorflow': choose auto, pytorch or onnx"):
        Predictor.load()


def test_a_damaged_runtime_file_is_refused_by_name(shipped_copy, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnxruntime")
    from hcr.predictor import Predictor

    here = shipped_copy({"chars"})
    data = bytearray((here / "chars.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (here / "chars.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="'chars'.*chars.onnx.*checksum"):
        Predictor.load("chars")
    monkeypatch.setenv("HCR_RUNTIME", "pytorch")
    assert Predictor.load("chars").backend.format == "pytorch"  # the .pt is intact


def test_a_model_without_runtime_file_runs_on_pytorch(shipped_copy, monkeypatch: pytest.MonkeyPatch) -> None:
    """A model packaged without ``--onnx`` still works (on PyTorch) unless onnx is demanded."""
    pytest.importorskip("onnxruntime")
    from hcr.errors import HcrError
    from hcr.predictor import Predictor

    shipped_copy({"digits"}, no_runtime={"digits"})
    assert Predictor.load("digits").backend.format == "pytorch"
    monkeypatch.setenv("HCR_RUNTIME", "onnx")
    with pytest.raises(HcrError, match="'digits' has no ONNX runtime file"):
        Predictor.load("digits")


def test_an_unreadable_manifest_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "manifest.json").write_text("{not json")
    monkeypatch.setattr(pt, "MANIFEST", tmp_path / "manifest.json")
    pt._manifest.cache_clear()
    try:
        with pytest.raises(ModelFileError, match="manifest"):
            list_pretrained()
    finally:
        pt._manifest.cache_clear()


def test_the_models_read_real_held_out_characters(real_data_dir: Path) -> None:
    """Seeded samples of the held-out splits, through the full predictor path."""
    from hcr.data import get_source
    from hcr.predictor import Predictor

    val = get_source("emnist-byclass", real_data_dir).load("dev-val")
    idx = np.random.default_rng(0).choice(len(val), 600, replace=False)
    chars = Predictor.load("chars")
    answers = [p.label for p in chars.predict([val.images[i] for i in idx])]
    truth = [val.label_map[int(val.targets[i])] for i in idx]
    acc = np.mean([a == t for a, t in zip(answers, truth)])
    folded = np.mean([a is not None and a.lower() == t.lower() for a, t in zip(answers, truth)])
    assert acc > 0.83 and folded > 0.87  # full dev-val: see the model card
    digits = Predictor.load("digits")
    d_idx = [i for i in idx if val.targets[i] < 10]
    d_ans = [p.label for p in digits.predict([val.images[i] for i in d_idx])]
    assert np.mean([a == val.label_map[int(val.targets[i])] for a, i in zip(d_ans, d_idx)]) > 0.97


def test_the_default_model_reads_the_bundled_samples() -> None:
    """What `make demo` shows: the char_* samples read as the characters their names say
    (letter case aside: a lone k/K is ambiguous; the g is read as its look-alike 9, with g
    second), each none_* sample rejected."""
    from hcr.predictor import Predictor

    samples = ROOT / "samples"
    chars = sorted(samples.glob("char_*"))
    nones = sorted(samples.glob("none_*")) + [samples / "blank_canvas.png"]
    assert len(chars) >= 8 and len(nones) >= 3
    p = Predictor.load()
    right = 0
    for f, pred in zip(chars, p.predict(chars)):  # type: ignore[arg-type]
        want = f.name.split("_")[1].lower()
        top2 = [s.lower() for s, _ in pred.top_k[:2]]
        assert want in top2, (f.name, pred.top_k[:3])
        right += pred.label is not None and pred.label.lower() == want
    assert right >= len(chars) - 1
    for f, pred in zip(nones, p.predict(nones)):  # type: ignore[arg-type]
        assert pred.blank or pred.uncertain, (f.name, pred.label, pred.confidence)


def test_the_words_model_is_a_sequence_model_within_its_budget() -> None:
    from hcr.metrics import cer
    from hcr.reader import CrnnReader

    m = get_pretrained("words")
    assert m.task == "sequence" and m.bytes + (m.runtime["bytes"] if m.runtime else 0) <= 15 * 1024 * 1024
    assert [p.name for p in list_pretrained("sequence")] == ["words"]
    assert "words" not in [p.name for p in list_pretrained("classify")]
    ckpt = load_checkpoint(resolve_model("words"))
    assert ckpt.task == "sequence" and ckpt.label_map.symbols[0] == ""
    assert set("0123456789abcxyzABCXYZäöüßÄÖÜ -.") <= set(ckpt.codec.alphabet)
    card = m.card_path.read_text()
    assert "DHSD" in card and "CC BY 4.0" in card and "writer" in card
    # the bundled example line (EMNIST dev-val glyphs, "Anna 2024") through hcr read --engine crnn
    got = CrnnReader.load("words").read(ROOT / "docs" / "images" / "line.jpg").text
    assert cer("anna 2024", got.lower()) <= 0.2, got
