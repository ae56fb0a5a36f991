"""Prediction from a model file: inputs of every kind, blanks, thresholds, batches of files,
and the acceptance test (the same character however it is rendered reads the same)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers_train import digits_model, digits_test_split, hcr_cache, single_thread  # noqa: F401  (fixtures)
from PIL import Image

from hcr.errors import InputError
from hcr.predictor import Prediction, Predictor
from hcr.train.classify import prepare

pytestmark = pytest.mark.usefixtures("single_thread", "hcr_cache")

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"


@pytest.fixture(scope="module")
def predictor(digits_model) -> Predictor:  # noqa: F811
    return Predictor.load(digits_model.best)


def _check(p: Prediction, predictor: Predictor, k: int) -> None:
    assert p.error is None and not p.blank
    assert p.label in predictor.label_map.symbols
    assert 0.0 <= p.confidence <= 1.0
    assert len(p.top_k) == k
    assert p.top_k[0] == (p.label, p.confidence)
    probs = [c for _, c in p.top_k]
    assert probs == sorted(probs, reverse=True)
    assert len({s for s, _ in p.top_k}) == k  # distinct labels
    assert p.box is not None and len(p.box) == 4


def _save(arr: np.ndarray, path: Path, mode: str | None = None) -> Path:
    (Image.fromarray(arr, mode) if mode else Image.fromarray(arr)).save(path)
    return path


# --------------------------------------------------------------------------- inputs


def test_predict_accepts_every_input_kind(predictor: Predictor, tmp_path: Path) -> None:
    images, targets = digits_test_split()
    raw = images[0]  # 2-D uint8, ink bright on dark
    png = _save(raw, tmp_path / "digit.png")
    rgb = np.stack([raw] * 3, axis=2)
    with Image.open(png) as im:
        pil = im.copy()
    inputs = {
        "str": str(png),
        "Path": png,
        "bytes": png.read_bytes(),
        "PIL": pil,
        "2-D uint8": raw,
        "3-D RGB": rgb,
        "sample file": SAMPLES / "digit_3_paper.png",
    }
    for kind, x in inputs.items():
        p = predictor.predict(x, top_k=3)
        assert isinstance(p, Prediction), kind
        _check(p, predictor, 3)
    assert predictor.predict(str(png)).file == str(png)
    assert predictor.predict(png).file == str(png)
    assert predictor.predict(raw).file is None

    # the same pixels give the same answer whatever the container
    same = [predictor.predict(x, top_k=3) for x in (str(png), png, png.read_bytes(), pil, raw, rgb)]
    assert len({(p.label, p.confidence) for p in same}) == 1

    mixed = predictor.predict(list(inputs.values()), top_k=4)
    assert isinstance(mixed, list) and len(mixed) == len(inputs)
    for p in mixed:
        _check(p, predictor, 4)
    assert mixed[0].file == str(png) and mixed[2].file is None
    assert predictor.predict((raw, rgb))[0].label == same[0].label  # tuples too
    assert predictor.predict([]) == []


def test_top_k_is_capped_by_the_number_of_classes(predictor: Predictor) -> None:
    raw = digits_test_split()[0][0]
    p = predictor.predict(raw, top_k=50)
    _check(p, predictor, 10)
    assert sum(c for _, c in p.top_k) == pytest.approx(1.0, abs=1e-4)
    _check(predictor.predict(raw, top_k=1), predictor, 1)
    _check(predictor.predict(raw, top_k=0), predictor, 1)


def test_unreadable_single_input_raises_input_error(predictor: Predictor, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nothere.png"):
        predictor.predict(tmp_path / "nothere.png")
    with pytest.raises(InputError):
        predictor.predict(b"definitely not an image")


# --------------------------------------------------------------------------- blank inputs


def test_blank_canvases_read_as_no_character(predictor: Predictor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    white = _save(np.full((120, 120), 255, np.uint8), tmp_path / "white.png")
    black = _save(np.zeros((120, 120), np.uint8), tmp_path / "black.png")
    clear = _save(np.zeros((120, 120, 4), np.uint8), tmp_path / "transparent.png", "RGBA")
    blanks = [white, black, clear, SAMPLES / "blank_canvas.png", np.full((50, 80), 200, np.uint8)]

    def no_network(*_: object) -> None:
        raise AssertionError("the network must not be consulted for a blank input")

    monkeypatch.setattr(predictor.model, "forward", no_network)
    preds = predictor.predict(blanks)
    for x, p in zip(blanks, preds):
        assert p.blank is True, x
        assert p.label is None and p.confidence == 0 and p.top_k == [] and p.error is None
        assert p.to_dict()["label"] is None
    assert preds[0].file == str(white)
    for x, p in zip(blanks[:4], predictor.predict_files(blanks[:4])):
        assert p.blank and p.label is None and p.error is None and p.file == str(x)


# --------------------------------------------------------------------------- threshold


def test_threshold_marks_uncertain_answers(digits_model, tmp_path: Path) -> None:  # noqa: F811
    files = sorted(SAMPLES.glob("digit_*"))
    images = list(digits_test_split()[0][:10])
    strict = Predictor.load(digits_model.best, threshold=1.01)
    lenient = Predictor.load(digits_model.best, threshold=0.0)
    for preds in (strict.predict_files(files), strict.predict(images)):
        assert preds and all(p.uncertain for p in preds if not p.blank)
    for preds in (lenient.predict_files(files), lenient.predict(images)):
        assert not any(p.uncertain for p in preds)
    # uncertain answers still carry their best guess
    assert all(p.label is not None for p in strict.predict(images))
    default = Predictor.load(digits_model.best)
    assert default.threshold == 0.5
    for p in default.predict(images):
        assert p.uncertain == (p.confidence < 0.5)
    blank = strict.predict(np.zeros((40, 40), np.uint8))
    assert blank.blank and not blank.uncertain


# --------------------------------------------------------------------------- batches of files


def test_predict_files_keeps_going_past_bad_files(predictor: Predictor, tmp_path: Path) -> None:
    good = SAMPLES / "digit_7_chalk.png"
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8)))
    missing = tmp_path / "missing.png"
    folder = tmp_path / "a_folder"
    folder.mkdir()
    files = [good, corrupt, missing, folder, good]
    preds = predictor.predict_files(files, batch=2)  # bad files straddle batch boundaries
    assert len(preds) == len(files)
    assert [p.file for p in preds] == [str(f) for f in files]
    for p in (preds[0], preds[4]):
        assert p.error is None
        _check(p, predictor, 5)
    assert preds[0].label == preds[4].label
    for p, f in zip(preds[1:4], files[1:4]):
        assert p.error and str(f) in p.error, p.error
        assert p.label is None and p.top_k == [] and not p.blank
        assert p.to_dict()["error"] == p.error
    assert "not found" in preds[2].error and "directory" in preds[3].error
    assert predictor.predict_files([]) == []


def test_prediction_to_dict_is_json_ready(predictor: Predictor) -> None:
    import json

    p = predictor.predict(SAMPLES / "digit_3_paper.png", top_k=3)
    d = json.loads(json.dumps(p.to_dict()))
    assert set(d) >= {"file", "label", "confidence", "top_k", "blank", "uncertain", "box", "error"}
    assert d["label"] == p.label and d["top_k"][0][0] == p.label
    assert all(isinstance(pair, list) and len(pair) == 2 for pair in d["top_k"])


# --------------------------------------------------------------------------- acceptance


def _pick_reference(predictor: Predictor) -> tuple[np.ndarray, str]:
    """A test digit the model reads correctly with confidence > 0.5: the first such sample
    of the class with the most such samples (deterministic)."""
    images, targets = digits_test_split()
    preds = predictor.predict(list(images), top_k=1)
    good = np.array([p.label is not None and p.label == predictor.label_map[int(t)] and p.confidence > 0.5 for p, t in zip(preds, targets)])
    assert good.sum() > 0, "the session model reads no test digit confidently"
    counts = np.bincount(targets[good], minlength=len(predictor.label_map))
    cls = int(np.argmax(counts))
    i = int(np.flatnonzero(good & (targets == cls))[0])
    return images[i], predictor.label_map[cls]


def _ink(raw: np.ndarray, size: int) -> np.ndarray:
    """0..1 ink of a 32x32 sample, upscaled to ``size`` px (bicubic), as 8-bit levels."""
    g = cv2.resize(raw.astype(np.float32) / 255.0, (size, size), interpolation=cv2.INTER_CUBIC)
    return np.round(np.clip(g, 0.0, 1.0) * 255.0).astype(np.uint8)


def _on_canvas(ink: np.ndarray, shape: tuple[int, int], at: tuple[int, int]) -> np.ndarray:
    c = np.zeros(shape, np.uint8)
    y, x = at
    c[y : y + ink.shape[0], x : x + ink.shape[1]] = ink
    return c


def test_same_character_any_rendering_same_prediction(predictor: Predictor, tmp_path: Path) -> None:
    raw, label = _pick_reference(predictor)
    ink = _on_canvas(_ink(raw, 120), (160, 160), (20, 20))
    rgba = np.zeros((160, 160, 4), np.uint8)
    rgba[..., 3] = ink  # black strokes, alpha = ink, fully transparent paper
    renders = {
        "dark_on_light": _save(255 - ink, tmp_path / "dark_on_light.png"),
        "light_on_dark": _save(ink, tmp_path / "light_on_dark.png"),
        "transparent": _save(rgba, tmp_path / "transparent.png", "RGBA"),
        "shifted": _save(255 - _on_canvas(_ink(raw, 120), (300, 420), (30, 270)), tmp_path / "shifted.png"),
    }
    for size in (60, 150, 400):
        m = max(8, size // 6)
        big = _on_canvas(_ink(raw, size), (size + 2 * m, size + 2 * m), (m, m))
        renders[f"size_{size}"] = _save(255 - big, tmp_path / f"size_{size}.png")

    names = list(renders)
    preds = predictor.predict([str(renders[n]) for n in names])
    got = {n: p.label for n, p in zip(names, preds)}
    assert got == {n: label for n in names}, f"true label {label!r}"

    inputs = {n: predictor.preprocess(renders[n]) for n in ("dark_on_light", "light_on_dark", "transparent", "shifted")}
    assert not any(p.blank for p in inputs.values())
    assert inputs["dark_on_light"].inverted and not inputs["light_on_dark"].inverted
    ref = inputs["dark_on_light"].image
    for n, p in inputs.items():
        assert p.image.shape == (28, 28) and p.image.dtype == np.float32
        diff = p.image != ref
        assert not diff.any(), (
            f"{n} gives a different model input than dark_on_light: {int(diff.sum())} pixels differ "
            f"(max {float(np.abs(p.image - ref).max()):.3f}); ink box {p.box} vs {inputs['dark_on_light'].box}"
        )
    assert inputs["shifted"].box[:2] != inputs["dark_on_light"].box[:2]  # it really was elsewhere


def test_dataset_and_png_give_identical_inputs(predictor: Predictor, tmp_path: Path) -> None:
    from hcr.data.digits import DigitsSource

    samples = DigitsSource().load("test").subset(np.arange(20))
    x, y, blank = prepare(samples, predictor.spec, cache=False, progress=False)
    x_cached, _, _ = prepare(samples, predictor.spec, progress=False)  # writes the cache
    x_again, _, blank_again = prepare(samples, predictor.spec, progress=False)  # reads it
    assert np.array_equal(x, x_cached) and np.array_equal(x, x_again) and np.array_equal(blank, blank_again)
    assert not blank.any()

    files = [_save(img, tmp_path / f"{i:02d}.png") for i, img in enumerate(samples.images)]
    for i, f in enumerate(files):
        p = predictor.preprocess(f)
        assert p.image.dtype == x.dtype and np.array_equal(p.image, x[i]), f"sample {i}"

    from hcr.runtime.torch import batched_probs

    probs = batched_probs(predictor.model, x, temperature=predictor.temperature)
    from_files = predictor.predict_files(files, top_k=1)
    assert [p.label for p in from_files] == [predictor.label_map[int(i)] for i in probs.argmax(1)]
    assert np.allclose([p.confidence for p in from_files], probs.max(1), atol=1e-6)


# --------------------------------------------------------------------------- annotated image


def _png_pixels(path: Path) -> np.ndarray:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as im:
        im.load()
        assert im.format == "PNG"
        return np.asarray(im.convert("RGB"))


def test_annotate_predictions_draws_every_kind_of_answer(tmp_path: Path) -> None:
    from hcr.report import annotate_predictions

    pred = Predictor.load("digits")  # the packaged model: no training needed
    files = [SAMPLES / "digit_3_paper.png", SAMPLES / "blank_canvas.png", tmp_path / "missing.png"]
    preds = pred.predict_files(files)
    preds.append(pred.predict(digits_test_split()[0][0]))  # an array input: no file to show
    preds[0].uncertain = True
    assert preds[1].blank and preds[2].error and preds[3].file is None

    out = annotate_predictions(preds, tmp_path / "a" / "annotated.png", title="test")
    assert out == tmp_path / "a" / "annotated.png"
    big = _png_pixels(out)
    h, w, _ = big.shape
    assert w >= 4 * (96 + 56) and h >= 96 + 40
    assert big.std() > 20
    # the captions' colours are there: orange "uncertain", red error (pure-ish channel checks)
    r, g, b = (big[..., i].astype(int) for i in range(3))
    assert ((r > 150) & (g < 120) & (b < 60)).sum() > 20  # red/orange text
    assert [p.name for p in out.parent.iterdir()] == ["annotated.png"]  # atomic: no temp file left

    # more inputs than columns: more rows; no model input column: narrower cells
    tall = _png_pixels(annotate_predictions(preds * 3, tmp_path / "tall.png", ncols=4))
    assert tall.shape[0] > h and tall.shape[1] == w
    narrow = _png_pixels(annotate_predictions(preds, tmp_path / "narrow.png", show_input=False))
    assert narrow.shape[1] < w
    capped = _png_pixels(annotate_predictions(preds * 3, tmp_path / "capped.png", max_images=4))
    assert capped.shape[:2] == (h, w)
    assert _png_pixels(annotate_predictions([], tmp_path / "empty.png")).size > 0
    # one cell with a long title: the image widens so the title is not cut off
    one = _png_pixels(annotate_predictions(preds[:1], tmp_path / "one.png"))
    titled = _png_pixels(annotate_predictions(preds[:1], tmp_path / "titled.png", title="a long title " * 6))
    assert titled.shape[1] > one.shape[1] + 200
    band = titled[:30].min(axis=2) < 128
    cols = np.flatnonzero(band.any(axis=0))
    assert cols.min() > 0 and cols.max() < titled.shape[1] - 1  # the whole title is inside the image
