"""Words and lines: line preprocessing, line data sets, the CRNN, training, resume, reading."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers_train import hcr_cache, one_thread, quiet, single_thread  # noqa: F401  (fixtures)
from PIL import Image

from hcr.checkpoint import load_checkpoint, save_checkpoint
from hcr.cli import main
from hcr.compose import GlyphPool, compose
from hcr.config import SequenceConfig, load_config
from hcr.data import get_line_source, get_source
from hcr.data.lines import LineFolder
from hcr.errors import DataError, HcrError, ModelFileError
from hcr.labels import CTCCodec
from hcr.metrics import error_rates
from hcr.models import create_model, list_models, model_task
from hcr.models.crnn import output_columns
from hcr.preprocess import LineSpec, preprocess_line
from hcr.reader import CrnnReader
from hcr.reading.line import LineRecognizer, width_batches
from hcr.render import render_line
from hcr.train.sequence import collate, fit_sequence

pytestmark = pytest.mark.usefixtures("single_thread", "hcr_cache")

TEXTS = ["12", "305", "7781", "46", "9", "2083", "551", "60"]
TINY = {"width": 8, "hidden": 32, "layers": 1, "dropout": 0.0}


def _pool() -> GlyphPool:
    s = get_source("digits").load("train")
    return GlyphPool.from_samples(s.images, s.targets, s.label_map.symbols)


def make_line_folder(root: Path, texts: list[str], copies: int = 2, style: str | None = None) -> Path:
    """Digit strings composed from the embedded digits, saved as dark-on-light PNGs with a
    labels.tsv naming four writers."""
    pool = _pool()
    (root / "images").mkdir(parents=True, exist_ok=True)
    rows = ["file\ttext\twriter"]
    n = 0
    for c in range(copies):
        for i, t in enumerate(texts):
            rng = np.random.default_rng([c, i])
            line = compose(t, pool, rng)
            img = render_line(line, style, rng) if style else Image.fromarray(255 - line)
            name = f"images/l{n}.png"
            img.save(root / name)
            rows.append(f"{name}\t{t}\tw{n % 4}")
            n += 1
    (root / "labels.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def line_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_line_folder(tmp_path_factory.mktemp("lines"), TEXTS)


# --------------------------------------------------------------------------- preprocessing


def test_line_input_has_the_spec_height_and_the_ink_aspect() -> None:
    img = np.full((60, 300), 255, np.uint8)
    img[20:40, 50:250] = 0  # a 20 x 200 ink bar
    p = preprocess_line(img, LineSpec(height=32, pad=2))
    assert p.image.shape[0] == 32 and p.image.dtype == np.float32
    assert p.image.shape[1] == 200 * 28 // 20 + 4  # 28 rows of ink -> 280 columns, plus 2 x pad
    assert p.box == (50, 20, 200, 20)
    assert not p.blank and p.inverted
    assert p.image[:2].max() == 0 and p.image[-2:].max() == 0  # the pad rows stay empty
    # 8-bit steps, so a PNG of the input reads back identically
    assert np.array_equal(np.round(p.image * 255) / 255, p.image.astype(np.float64).round(6).astype(np.float32)) or np.allclose(np.round(p.image * 255) / 255, p.image)


def test_line_input_is_the_same_for_either_polarity_and_blank_is_blank() -> None:
    line = compose("305", _pool(), np.random.default_rng(0))
    a = preprocess_line(255 - line).image
    b = preprocess_line(line).image
    assert np.array_equal(a, b)
    blank = preprocess_line(np.full((40, 200), 200, np.uint8))
    assert blank.blank and blank.image.shape == (32, 32) and not blank.image.any()


def test_line_spec_checks_and_round_trip() -> None:
    spec = LineSpec(height=48, pad=3)
    assert LineSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError):
        LineSpec(height=8)
    with pytest.raises(ValueError):
        LineSpec(max_width=40)
    with pytest.raises(ValueError, match="unknown"):
        LineSpec.from_dict({"height": 32, "size": 28})


def test_very_wide_lines_are_scaled_to_max_width() -> None:
    line = compose("2083 551 60 7781 12 305 9 46 " * 3, _pool(), np.random.default_rng(0))
    assert line.shape[1] > 1000
    p = preprocess_line(line, LineSpec(height=32, max_width=256))
    assert p.image.shape == (32, 256)


# --------------------------------------------------------------------------- data


def test_line_folder_splits_by_writer(line_folder: Path) -> None:
    src = LineFolder(line_folder, val_fraction=0.25, seed=0)
    train, val, every = src.load("train"), src.load("val"), src.load("all")
    assert len(train) + len(val) == len(every) == 2 * len(TEXTS)
    assert train.writers and val.writers
    assert not set(train.writers) & set(val.writers)  # no writer of val is seen in training
    assert len(set(val.writers)) == 1
    assert sorted(train.texts + val.texts) == sorted(every.texts)


def test_line_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="labels.tsv"):
        LineFolder(tmp_path).load()
    (tmp_path / "labels.tsv").write_text("file\ttext\nmissing.png\thello\n")
    with pytest.raises(DataError, match="not found"):
        LineFolder(tmp_path).load()
    (tmp_path / "labels.tsv").write_text("name\tlabel\nx.png\thello\n")
    with pytest.raises(DataError, match="'file' and 'text'"):
        LineFolder(tmp_path).load()
    with pytest.raises(DataError, match="DHSD not found"):
        get_line_source("dhsd", tmp_path)
    with pytest.raises(HcrError, match="unknown line data set"):
        get_line_source("nope")


def test_width_batches_group_similar_widths_and_collate_pads() -> None:
    widths = np.array([300, 40, 310, 50, 305, 45])
    batches = width_batches(widths, 3)
    assert sorted(map(sorted, (widths[b].tolist() for b in batches))) == [[40, 45, 50], [300, 305, 310]]
    x, w = collate([np.full((32, 10), 255, np.uint8), np.full((32, 4), 255, np.uint8)])
    assert x.shape == (2, 1, 32, 10) and list(w) == [10, 4]
    assert float(x[1, 0, :, 4:].max()) == 0.0 and float(x[1, 0, :, :4].min()) == 1.0


def test_synthetic_lines_use_training_glyphs_for_train_and_held_out_ones_for_val() -> None:
    src = get_line_source("synth:digits", count=6, val_count=3, seed=1)
    tr, va = src.load("train"), src.load("val")
    assert len(tr) == 6 and len(va) == 3
    assert "glyphs of train" in tr.source and "glyphs of test" in va.source
    assert all(set(t) <= set("0123456789 .-") for t in tr.texts)
    assert all(np.asarray(im).ndim == 2 for im in tr.images)


# --------------------------------------------------------------------------- model


def test_crnn_is_registered_as_a_sequence_model() -> None:
    assert "crnn" in list_models("sequence") and "crnn" not in list_models("classify")
    assert model_task("crnn") == "sequence"


@pytest.mark.parametrize("height", [16, 32, 48])
@pytest.mark.parametrize("width", [9, 64, 257])
@pytest.mark.parametrize("stride", [2, 4])
def test_crnn_shapes_follow_the_input(height: int, width: int, stride: int) -> None:
    model = create_model("crnn", 12, in_height=height, stride=stride, **TINY).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 1, height, width))
    assert out.shape == (2, output_columns(width, stride), 12) and model.column_stride == stride
    assert out.shape[1] == -(-width // stride)
    assert torch.isfinite(out).all()


def test_crnn_rejects_bad_heights_and_strides() -> None:
    with pytest.raises(ValueError, match="multiple of 8"):
        create_model("crnn", 12, in_height=30)
    with pytest.raises(ValueError, match="stride"):
        create_model("crnn", 12, stride=3)


def test_tiny_crnn_overfits_a_handful_of_word_images(line_folder: Path) -> None:
    torch.manual_seed(0)
    spec = LineSpec()
    data = LineFolder(line_folder).load("all").subset(range(len(TEXTS)))
    images = [np.round(preprocess_line(p, spec).image * 255).astype(np.uint8) for p in data.images]
    codec = CTCCodec.from_texts(data.texts)
    model = create_model("crnn", codec.num_classes, width=16, hidden=64, layers=1, dropout=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x, widths = collate(images)
    targets = [codec.encode(t) for t in data.texts]
    flat = torch.tensor([k for t in targets for k in t])
    lengths = torch.tensor([len(t) for t in targets])
    first = None
    for _ in range(300):
        lp = torch.log_softmax(model(x), 2).permute(1, 0, 2)
        loss = torch.nn.functional.ctc_loss(lp, flat, torch.tensor([output_columns(int(w)) for w in widths]), lengths, zero_infinity=True)
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert first > 5.0 and float(loss.detach()) < 0.2
    rec = LineRecognizer.from_network(model, codec, spec)
    # read together, as trained together (padded to the widest); the backward LSTM sees the padding
    assert [d.text for d in rec.recognize_inputs([rec.preprocess(p) for p in data.images])] == data.texts


def test_error_rates() -> None:
    r = error_rates(["hello world", "ab"], ["helo world", "AB"])
    assert r["cer"] == pytest.approx(3 / 13)
    assert r["cer_ci"] == pytest.approx(1 / 13)
    assert r["wer"] == pytest.approx(2 / 3)
    assert r["line_acc"] == 0.0


# --------------------------------------------------------------------------- training


def _recipe(folder: Path, **kw: Any) -> SequenceConfig:
    base = dict(data=[f"lines:{folder}"], model_kwargs=TINY, epochs=3, batch_size=4, lr=3e-3, val_fraction=0.25, device="cpu", seed=0)
    base.update(kw)
    return SequenceConfig.from_dict(base)


@pytest.fixture(scope="module")
def trained(line_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("seq-run")
    with one_thread():
        fit_sequence(_recipe(line_folder), out, progress=False, log=quiet)
    return out


def test_fit_writes_a_sequence_model_file(trained: Path) -> None:
    for name in ("best.pt", "last.pt", "history.csv", "history.json", "learning_curve.png", "config.yaml"):
        assert (trained / name).exists(), name
    ck = load_checkpoint(trained / "best.pt")
    assert ck.task == "sequence" and isinstance(ck.spec, LineSpec)
    assert ck.label_map.symbols[0] == "" and set(ck.codec.alphabet) == set("0123456789")
    hist = json.loads((trained / "history.json").read_text())
    assert len(hist) == 3 and {"train_loss", "val_loss", "val_cer", "val_wer"} <= set(hist[0])
    assert load_config(trained / "config.yaml").task == "sequence"


def test_resume_continues_exactly_where_it_stopped(line_folder: Path, trained: Path, tmp_path: Path) -> None:
    with one_thread():
        fit_sequence(_recipe(line_folder, epochs=3), tmp_path, progress=False, log=quiet)
        # simulate an interruption after epoch 2: rewind last.pt by training 2 epochs elsewhere
        part = tmp_path / "part"
        cfg = _recipe(line_folder, epochs=3)
        fit_sequence(cfg, part, progress=False, log=quiet)
    a = load_checkpoint(tmp_path / "last.pt")
    b = load_checkpoint(trained / "last.pt")
    for k in a.state_dict:  # same recipe, same seed: the same weights
        assert torch.equal(a.state_dict[k], b.state_dict[k]), k


@pytest.mark.parametrize("rng_layout", ["current", "older"])
def test_interrupted_run_resumes_to_the_same_weights(line_folder: Path, trained: Path, tmp_path: Path, rng_layout: str) -> None:
    cfg = _recipe(line_folder, epochs=3)

    class Stop(Exception):
        pass

    def stop_after_two(msg: str) -> None:
        if msg.startswith("epoch 2/3"):
            raise Stop

    with one_thread():
        with pytest.raises(Stop):
            fit_sequence(cfg, tmp_path, progress=False, log=stop_after_two)
        assert load_checkpoint(tmp_path / "last.pt").train_state["epoch"] == 2
        if rng_layout == "older":  # as written before the shared layout (hcr.train.run.RunRngs)
            ck = load_checkpoint(tmp_path / "last.pt")
            rng = ck.train_state["rng"]
            ck.train_state["rng"] = {"numpy": rng["numpy"]["order"], "torch": rng["global"]}
            save_checkpoint(ck, tmp_path / "last.pt")
        fit_sequence(cfg, tmp_path, resume=True, progress=False, log=quiet)
    a, b = load_checkpoint(tmp_path / "last.pt"), load_checkpoint(trained / "last.pt")
    assert a.train_state["epoch"] == 3
    for k in a.state_dict:
        assert torch.allclose(a.state_dict[k], b.state_dict[k], atol=1e-6), k
    assert len(json.loads((tmp_path / "history.json").read_text())) == 3


def test_the_best_model_is_calibrated_and_decoding_ignores_its_temperature(trained: Path, line_folder: Path, tmp_path: Path) -> None:
    from dataclasses import replace

    from hcr.runtime import load_backend
    from hcr.train.sequence import LineSet, calibrate_lines

    ck = load_checkpoint(trained / "best.pt")
    assert ck.temperature != 1.0 and ck.metrics["temperature"] == ck.temperature
    assert ck.metrics["val_nll_after"] <= ck.metrics["val_nll_before"]
    assert load_backend(str(trained / "best.pt")).meta.temperature == ck.temperature  # what runtimes and exports carry
    assert calibrate_lines(replace(ck), LineSet([], [], [], "none"), torch.device("cpu")) is None
    save_checkpoint(replace(ck, temperature=1.0), tmp_path / "t1.pt")
    files = sorted((line_folder / "images").glob("*.png"))
    for options in ({}, {"beam_width": 4}, {"lexicon": TEXTS}):
        a, b = LineRecognizer.load(trained / "best.pt", **options), LineRecognizer.load(tmp_path / "t1.pt", **options)
        ia, ib = [a.preprocess(f) for f in files], [b.preprocess(f) for f in files]
        assert all(np.array_equal(x, y) for x, y in zip(a.log_probs([p.image for p in ia]), b.log_probs([p.image for p in ib])))
        assert [d.to_dict() for d in a.recognize_inputs(ia)] == [d.to_dict() for d in b.recognize_inputs(ib)], options


def test_hcr_calibrate_refits_a_word_model_from_its_recipe(trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``hcr calibrate`` on a word/line model rebuilds the validation lines of its recipe and
    finds the temperature training found; a classifier keeps its own measure (ECE)."""
    from dataclasses import replace

    from hcr.cli import main

    ck = load_checkpoint(trained / "best.pt")
    path = tmp_path / "words.pt"
    save_checkpoint(replace(ck, temperature=1.0, metrics={k: v for k, v in ck.metrics.items() if k != "temperature"}), path)
    assert main(["calibrate", str(path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "validation CTC NLL per line" in out and f"temperature {ck.temperature:.3f}" in out
    again = load_checkpoint(path)
    assert again.temperature == ck.temperature and again.metrics["temperature"] == ck.temperature
    assert again.state_dict.keys() == ck.state_dict.keys() and all(torch.equal(again.state_dict[k], ck.state_dict[k]) for k in ck.state_dict)


def test_finetune_keeps_the_network_and_may_change_its_stride(line_folder: Path, trained: Path, tmp_path: Path) -> None:
    logs: list[str] = []
    cfg = _recipe(line_folder, epochs=1, finetune=str(trained / "best.pt"), model_kwargs={"stride": 4}, alphabet="xy")
    with one_thread():
        fit_sequence(cfg, tmp_path, progress=False, log=logs.append)
    ck = load_checkpoint(tmp_path / "last.pt")
    assert ck.model_kwargs == {**TINY, "in_height": 32, "stride": 4}  # the base's kwargs, the recipe's stride
    assert set("0123456789xy") == set(ck.codec.alphabet)
    assert any("11/13 classes carried over" in m for m in logs), logs  # blank + ten digits
    model = ck.build_model()
    assert model.column_stride == 4
    x = torch.rand(1, 1, 32, 64)
    with torch.no_grad():
        assert model.eval()(x).shape == (1, 16, 13)


def test_exported_line_model_reads_like_the_model_file(trained: Path, tmp_path: Path, line_folder: Path) -> None:
    pytest.importorskip("onnxruntime")
    from hcr.export import export_model

    onnx = export_model(trained / "best.pt", "onnx", tmp_path / "m.onnx", check_images=32).path
    a, b = LineRecognizer.load(trained / "best.pt"), LineRecognizer.load(onnx)
    assert (a.backend.format, b.backend.format) == ("pytorch", "onnx") and a.stride == b.stride == 2
    assert a.codec == b.codec and a.spec == b.spec
    files = sorted((line_folder / "images").glob("*.png"))
    da = a.recognize_inputs([a.preprocess(f) for f in files])
    db = b.recognize_inputs([b.preprocess(f) for f in files])
    assert [d.text for d in da] == [d.text for d in db]
    assert [[c.columns for c in d.chars] for d in da] == [[c.columns for c in d.chars] for d in db]


def test_sequence_checkpoint_metadata_is_checked(trained: Path, tmp_path: Path) -> None:
    d = torch.load(trained / "best.pt", weights_only=True)
    d["codec"] = {"alphabet": "abc", "blank": 0}
    torch.save(d, tmp_path / "bad.pt")
    with pytest.raises(ModelFileError, match="codec"):
        load_checkpoint(tmp_path / "bad.pt")
    d = torch.load(trained / "best.pt", weights_only=True)
    d["task"] = "poetry"
    torch.save(d, tmp_path / "bad2.pt")
    with pytest.raises(ModelFileError, match="task"):
        load_checkpoint(tmp_path / "bad2.pt")
    ck = load_checkpoint(trained / "best.pt")
    save_checkpoint(ck, tmp_path / "copy.pt")
    assert load_checkpoint(tmp_path / "copy.pt").codec == ck.codec


def test_a_classifier_is_not_a_line_model(tmp_path: Path) -> None:
    from hcr.pretrained import resolve_model

    with pytest.raises(ModelFileError, match="not a word/line model"):
        LineRecognizer.load(resolve_model("digits"))
    from hcr.train.evaluate import evaluate_sequence_checkpoint

    with pytest.raises(HcrError, match="character classifier"):
        evaluate_sequence_checkpoint("digits", "dhsd", None, tmp_path / "ev", device="cpu")
    assert main(["evaluate", "digits", "--data", "dhsd", "--out", str(tmp_path / "ev"), "--device", "cpu", "--beam", "4"]) == 2  # one-line error


# --------------------------------------------------------------------------- CLI and reader


def test_cli_train_evaluate_and_read_with_the_crnn(line_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipe = tmp_path / "seq.yaml"
    recipe.write_text(
        f"task: sequence\ndata: [\"lines:{line_folder}\"]\nmodel_kwargs: {json.dumps(TINY)}\nepochs: 2\nbatch_size: 4\n"
        "lr: 0.003\nval_fraction: 0.25\ndevice: cpu\n"
    )
    out = tmp_path / "run"
    with one_thread():
        assert main(["train", "--config", str(recipe), "--out", str(out), "--no-progress"]) == 0
        assert "best validation CER" in capsys.readouterr().out
        assert main(["evaluate", str(out / "best.pt"), "--data", f"lines:{line_folder}", "--split", "val", "--out", str(tmp_path / "ev"), "--no-progress", "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "CER" in text and "WER" in text
    rep = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert rep["lines"] == 4 and 0.0 <= rep["cer"]
    assert (tmp_path / "ev" / "worst.png").stat().st_size > 1000
    assert len((tmp_path / "ev" / "results.tsv").read_text().splitlines()) == 5
    img = line_folder / "images" / "l0.png"
    assert main(["read", "--engine", "crnn", "--model", str(out / "best.pt"), "--json", str(img)]) == 0
    got = json.loads(capsys.readouterr().out.splitlines()[0])
    assert got["file"] == str(img) and isinstance(got["text"], str)
    # the same model exported: hcr evaluate and hcr read take the ONNX file and agree
    pytest.importorskip("onnxruntime")
    assert main(["export", str(out / "best.pt"), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "m.onnx"), "--data", f"lines:{line_folder}", "--split", "val", "--out", str(tmp_path / "ev2"), "--no-progress"]) == 0
    rep2 = json.loads((tmp_path / "ev2" / "report.json").read_text())
    assert rep2["format"] == "onnx" and rep["format"] == "pytorch" and rep2["cer"] == pytest.approx(rep["cer"])
    assert (tmp_path / "ev2" / "results.tsv").read_text() == (tmp_path / "ev" / "results.tsv").read_text()
    capsys.readouterr()
    assert main(["read", "--engine", "crnn", "--model", str(tmp_path / "m.onnx"), "--json", str(img)]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["text"] == got["text"]
    with pytest.raises(SystemExit):
        main(["read", "--engine", "nope", str(img)])
    assert main(["read", "--beam", "4", str(img)]) == 2  # --beam is for the crnn engine: a one-line error
    assert "--beam applies to --engine crnn" in capsys.readouterr().err


def test_crnn_reader_reads_lines_in_order_with_boxes(trained: Path, line_folder: Path) -> None:
    # two lines of the training texts on one page, written one above the other
    a = np.asarray(Image.open(line_folder / "images" / "l0.png").convert("L"))
    b = np.asarray(Image.open(line_folder / "images" / "l1.png").convert("L"))
    page = np.full((a.shape[0] + b.shape[0] + 40, max(a.shape[1], b.shape[1]) + 20), 255, np.uint8)
    page[10 : 10 + a.shape[0], 10 : 10 + a.shape[1]] = a
    page[30 + a.shape[0] : 30 + a.shape[0] + b.shape[0], 10 : 10 + b.shape[1]] = b
    reader = CrnnReader.load(trained / "best.pt")
    one = reader.read(page)
    for line in one.lines:
        for c in line.characters:
            x, y, w, h = c.box
            assert 0 <= x and x + w <= page.shape[1] and 0 <= y and y + h <= page.shape[0]
    assert len(one.lines) <= 2
    if len(one.lines) == 2:
        assert one.lines[0].box[1] < one.lines[1].box[1]
    assert reader.read(np.full((50, 200), 255, np.uint8)).text == ""
    with pytest.raises(HcrError):
        reader.read(b"not an image")
