"""The ``hcr`` command, called in-process through ``hcr.cli.main`` (plus one real subprocess)."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hcr import __version__
from hcr.cli import main

from helpers_train import digits_model, hcr_cache, single_thread  # noqa: F401  (fixtures)

pytestmark = pytest.mark.usefixtures("single_thread", "hcr_cache")

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
SAMPLE_FILES = sorted(p for p in SAMPLES.iterdir() if p.suffix.lower() in (".png", ".jpg"))
#: samples without any ink: read as "no character" by every model
BLANK_SAMPLES = {"blank_canvas.png", "none_photo_no_writing.jpg"}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


# --------------------------------------------------------------------------- entry point


def test_entry_point_help_in_a_subprocess() -> None:
    exe = Path(sys.executable).with_name("hcr")
    cmd = [str(exe), "--help"] if exe.exists() else [sys.executable, "-m", "hcr.cli", "--help"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    for word in ("data", "models", "train", "evaluate", "predict"):
        assert word in r.stdout
    assert "Traceback" not in r.stderr


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "usage" in capsys.readouterr().err


# --------------------------------------------------------------------------- models / data


def test_models_lists_the_architectures_and_the_pretrained_models(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "models")
    assert code == 0
    assert re.search(r"^seed-cnn\s+[\d,]+ params", out, re.M)
    assert re.search(r"^hcr-cnn\s+[\d,]+ params", out, re.M)
    # the shipped models: name, number of classes, size, description; the default marked
    chars = re.search(r"^chars\s+62 classes \(0-9, A-Z, a-z\)\s+(\d+\.\d) MB\s+(.+)$", out, re.M)
    digits = re.search(r"^digits\s+10 classes \(0-9\)\s+(\d+\.\d) MB\s+(.+)$", out, re.M)
    assert chars and digits, out
    from hcr.pretrained import get_pretrained

    assert float(chars.group(1)) == pytest.approx(get_pretrained("chars").bytes / 1e6, abs=0.06)
    assert get_pretrained("digits").description in digits.group(2)
    assert "[default]" in chars.group(2) and "[default]" not in digits.group(2)


def test_data_list(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "data", "list")
    assert code == 0
    names = {line.split()[0] for line in out.splitlines() if line.strip()}
    assert {"mnist", "emnist-byclass", "emnist-letters", "az-csv", "folder", "digits"} <= names


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]


def _choices(parser: argparse.ArgumentParser, command: str, option: str) -> tuple[str, ...]:
    return tuple(next(a for a in _subparser(parser, command)._actions if option in a.option_strings).choices)


def test_cli_choices_come_from_the_registries() -> None:
    """Adding a preset, precision, engine, export format or data source to its table
    reaches the CLI without editing cli.py."""
    from hcr.augment import PRESET_NAMES
    from hcr.cli import build_parser
    from hcr.config import PRECISIONS
    from hcr.data import LINE_SOURCES, SOURCES
    from hcr.distributed import BACKENDS
    from hcr.models import list_models
    from hcr.reading import ENGINES
    from hcr.runtime import EXPORT_FORMATS, QUANTIZE

    ap = build_parser()
    assert _choices(ap, "train", "--augment") == PRESET_NAMES
    assert _choices(ap, "train", "--precision") == PRECISIONS
    assert _choices(ap, "train", "--dist-backend") == BACKENDS
    assert tuple(_choices(ap, "train", "--model")) == tuple(list_models())
    assert _choices(ap, "export", "--format") == EXPORT_FORMATS
    assert _choices(ap, "export", "--quantize") == QUANTIZE
    assert _choices(ap, "read", "--engine") == ENGINES
    text = next(a for a in _subparser(_subparser(ap, "data"), "info")._actions if a.dest == "name").help
    assert all(name in text for name in SOURCES) and all(usage in text for _, usage, _ in LINE_SOURCES.values())


def test_data_info_digits_prints_class_counts(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "data", "info", "digits")
    assert code == 0, err
    assert "digits" in out and "Alpaydin" in out
    assert re.search(r"train: 1,4\d\d samples, 10 classes", out)
    assert re.search(r"all: 1,797 samples, 10 classes", out)
    counts = re.findall(r"\b(\d):(\d+)\b", out)
    assert {d for d, _ in counts} == set("0123456789")
    code, out, _ = run(capsys, "data", "info", "digits", "--split", "test")
    assert code == 0 and "test:" in out and "train:" not in out


def test_data_info_of_word_and_line_sets(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "data", "list")
    assert code == 0 and "dhsd" in out and "lines:PATH" in out
    # DHSD missing: says where it looked and where the data comes from, no error
    code, out, err = run(capsys, "data", "info", "dhsd", "--data-dir", str(tmp_path))
    assert code == 0, err
    assert "not available locally" in out and str(tmp_path) in out and "DFKI" in out
    # your own words: lines, writers and characters per split
    folder = tmp_path / "words"
    folder.mkdir()
    rows = ["file\ttext\twriter"]
    for i in range(20):
        Image.new("L", (40, 16), 255).save(folder / f"{i}.png")
        rows.append(f"{i}.png\tword {i}\tw{i % 4}")
    (folder / "labels.tsv").write_text("\n".join(rows) + "\n")
    code, out, err = run(capsys, "data", "info", f"lines:{folder}")
    assert code == 0, err
    assert "all: 20 lines, 4 writers, 15 characters" in out
    assert re.search(r"val: \d+ lines, 1 writers", out) and "train:" in out


def test_data_info_of_a_broken_data_set_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Files that are there but cannot be read, or a path that does not exist, fail the query;
    an official data set that is not downloaded yet does not."""
    broken = tmp_path / "broken.csv"
    broken.write_text("label,p1,p2\nA,1,2,3\n")
    (tmp_path / "empty").mkdir()
    for spec, why in ((f"csv:{broken}", "'A' is not a number"), (f"folder:{tmp_path / 'empty'}", "no class folders"),
                      (f"csv:{tmp_path / 'absent.csv'}", "does not exist")):
        code, out, err = run(capsys, "data", "info", spec)
        assert code == 2, (spec, out, err)
        assert "cannot be read" in out and err.startswith("hcr: error:") and why in err and len(err.strip().splitlines()) == 1
    code, out, err = run(capsys, "data", "info", "mnist", "--data-dir", tmp_path / "nothing")
    assert code == 0, err
    assert "train: not available locally" in out and err == ""


def test_data_info_unknown_name(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "data", "info", "nope")
    assert code == 2
    assert "Traceback" not in err and "Traceback" not in out
    assert "nope" in err
    for name in ("digits", "mnist", "emnist-byclass", "folder"):
        assert name in err
    assert len(err.strip().splitlines()) == 1


def test_data_preview_writes_pngs(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    plain, aug = tmp_path / "preview.png", tmp_path / "sub" / "aug.png"
    code, out, err = run(capsys, "data", "preview", "digits", "-n", "20", "--out", plain)
    assert code == 0, err
    assert str(plain) in out
    code, _, err = run(capsys, "data", "preview", "digits", "-n", "20", "--augment", "--out", aug)
    assert code == 0, err
    for p in (plain, aug):
        with Image.open(p) as im:
            im.load()
            assert im.format == "PNG" and min(im.size) > 50


# --------------------------------------------------------------------------- train


def test_train_tiny_run(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_dir = tmp_path / "run"
    code, out, err = run(
        capsys, "train", "--data", "digits", "--model", "seed-cnn", "--epochs", "1", "--max-train-samples", "300",
        "--out", out_dir, "--no-progress",
    )
    assert code == 0, err
    assert (out_dir / "best.pt").is_file() and (out_dir / "last.pt").is_file()
    assert "best validation accuracy" in out and str(out_dir / "best.pt") in out
    cfg = (out_dir / "config.yaml").read_text()
    assert "max_train_samples: 300" in cfg and "epochs: 1" in cfg


def test_train_unknown_model_is_an_argparse_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        main(["train", "--data", "digits", "--model", "nope", "--out", str(tmp_path / "x")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "nope" in err and "seed-cnn" in err
    assert not (tmp_path / "x").exists()


def test_train_bad_recipe_is_a_one_line_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("epochs: 1\nno_such_option: 3\n")
    code, _, err = run(capsys, "train", "--config", recipe, "--out", tmp_path / "x", "--no-progress")
    assert code == 2
    assert "no_such_option" in err and "Traceback" not in err
    code, _, err = run(capsys, "train", "--out", tmp_path / "y", "--resume", "--no-progress")
    assert code == 2 and "last.pt" in err and "Traceback" not in err


def test_a_failed_train_leaves_no_empty_run_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    broken = tmp_path / "broken.csv"
    broken.write_text("label,p1,p2\nA,1,2,3\n")
    out = tmp_path / "runs" / "a"
    code, _, err = run(capsys, "train", "--data", f"csv:{broken}", "--epochs", "1", "--out", out, "--no-progress")
    assert code == 2 and "'A' is not a number" in err
    assert not (tmp_path / "runs").exists()  # neither the run folder nor the parent it made
    kept = tmp_path / "kept"
    kept.mkdir()
    code, _, _ = run(capsys, "train", "--data", f"csv:{broken}", "--epochs", "1", "--out", kept, "--no-progress")
    assert code == 2 and kept.is_dir()  # a folder the user made is theirs


# --------------------------------------------------------------------------- predict


def test_predict_json_over_the_samples(capsys: pytest.CaptureFixture[str], digits_model) -> None:  # noqa: F811
    code, out, err = run(capsys, "predict", "--model", digits_model.best, SAMPLES, "--json")
    assert code == 0, err
    rows = _json_lines(out)
    assert [Path(r["file"]).name for r in rows] == [p.name for p in SAMPLE_FILES]
    for r in rows:
        assert {"file", "label", "confidence", "top_k"} <= set(r)
        assert r["error"] is None
        assert isinstance(r["top_k"], list)
        for pair in r["top_k"]:
            assert isinstance(pair, list) and len(pair) == 2
            assert isinstance(pair[0], str) and 0.0 <= pair[1] <= 1.0
        if Path(r["file"]).name in BLANK_SAMPLES:
            assert r["label"] is None and r["blank"] is True and r["top_k"] == []
        else:
            assert r["label"] in list("0123456789")
            assert len(r["top_k"]) == 3  # the CLI default
            assert r["top_k"][0] == [r["label"], r["confidence"]]
    assert f"{len(SAMPLE_FILES)} images" in err and "0 failed" in err and f"{len(BLANK_SAMPLES)} blank" in err

    code, out, _ = run(capsys, "predict", "--model", digits_model.best, SAMPLES / "digit_3_paper.png", "--top-k", "2")
    assert code == 0
    assert re.match(r".*digit_3_paper\.png: \d  \d\.\d\d", out)


def test_predict_with_bad_files_reports_them_and_exits_1_or_2(capsys: pytest.CaptureFixture[str], digits_model, tmp_path: Path) -> None:  # noqa: F811
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 2)
    missing = tmp_path / "missing.png"
    code, out, err = run(capsys, "predict", "--model", digits_model.best, SAMPLES, corrupt, missing, "--json")
    assert code == 1
    rows = {Path(r["file"]).name: r for r in _json_lines(out)}
    assert len(rows) == len(SAMPLE_FILES) + 2
    for name in ("corrupt.png", "missing.png"):
        assert rows[name]["error"] and name in rows[name]["error"]
        assert rows[name]["label"] is None
    for p in SAMPLE_FILES:
        r = rows[p.name]
        assert r["error"] is None
        assert (r["label"] is None) == (p.name in BLANK_SAMPLES)
    assert re.search(r"\b2 failed\b", err)
    assert "Traceback" not in err

    code, out, err = run(capsys, "predict", "--model", digits_model.best, missing)  # plain text output
    assert code == 2 and "missing.png: ERROR" in out and "1 failed" in err  # nothing could be read: a bad input


def test_predict_with_a_tampered_model_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "tampered.pt"
    bad.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)))
    code, out, err = run(capsys, "predict", "--model", bad, SAMPLES)
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0]
    code, _, err = run(capsys, "predict", "--model", tmp_path / "absent.pt", SAMPLES)
    assert code == 2 and "absent.pt" in err and len(err.strip().splitlines()) == 1


def test_predict_save_input_writes_model_inputs(capsys: pytest.CaptureFixture[str], digits_model, tmp_path: Path) -> None:  # noqa: F811
    save = tmp_path / "inputs"
    code, _, err = run(capsys, "predict", "--model", digits_model.best, SAMPLES, "--save-input", save)
    assert code == 0, err
    pngs = sorted(save.glob("*.png"))
    assert len(pngs) == len(SAMPLE_FILES)
    from hcr.predictor import Predictor

    pred = Predictor.load(digits_model.best)
    for png in pngs:
        with Image.open(png) as im:
            assert im.size == (28, 28) and im.mode == "L"
            saved = np.asarray(im)
        src = next(p for p in SAMPLE_FILES if png.stem.endswith(p.stem))
        # the saved PNG is exactly the model input: reading it back gives the same input
        assert np.array_equal(saved.astype(np.float32) / 255.0, pred.preprocess(src).image)


def test_predict_no_images_found(capsys: pytest.CaptureFixture[str], digits_model, tmp_path: Path) -> None:  # noqa: F811
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run(capsys, "predict", "--model", digits_model.best, empty)
    assert code == 2 and "no image files" in err and "Traceback" not in err


def test_predict_help_lists_the_shipped_models(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["predict", "--help"])
    assert info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "chars, digits" in out and "default: chars" in out
    for flag in ("--model", "--charset", "--ignore-case", "--annotate"):
        assert flag in out


def test_predict_with_the_default_pretrained_model(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "predict", SAMPLES / "digit_3_paper.png", "--json", "--top-k", "62")
    assert code == 0, err
    (row,) = _json_lines(out)
    assert row["label"] == "3" and row["confidence"] > 0.5
    assert len(row["top_k"]) == 62  # the default model is `chars`: digits and both cases
    assert {s for s, _ in row["top_k"]} == set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
    assert "model chars" in err

    code, out, err = run(capsys, "predict", SAMPLES / "digit_3_paper.png", "--model", "digits", "--json", "--top-k", "62")
    assert code == 0, err
    (row,) = _json_lines(out)
    assert row["label"] == "3" and {s for s, _ in row["top_k"]} == set("0123456789")
    assert "model digits" in err


def test_predict_model_path_in_the_old_position_is_explained(capsys: pytest.CaptureFixture[str], digits_model) -> None:  # noqa: F811
    code, out, err = run(capsys, "predict", digits_model.best, SAMPLES)
    assert code == 2 and out == ""
    assert f"--model {digits_model.best}" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "predict", "--model", "nope", SAMPLES)
    assert code == 2 and "nope" in err and "chars" in err and len(err.strip().splitlines()) == 1


def test_predict_charset_and_ignore_case(capsys: pytest.CaptureFixture[str]) -> None:
    digit = SAMPLES / "digit_3_paper.png"
    code, out, err = run(capsys, "predict", digit, "--charset", "upper", "--json", "--top-k", "100")
    assert code == 0, err
    (row,) = _json_lines(out)
    assert row["label"] in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    assert sorted(s for s, _ in row["top_k"]) == list("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    assert sum(c for _, c in row["top_k"]) == pytest.approx(1.0, abs=1e-4)  # renormalised

    code, out, err = run(capsys, "predict", digit, "--charset", "0123456789ABCDEF", "--json", "--top-k", "100")
    assert code == 0, err
    (row,) = _json_lines(out)
    assert row["label"] == "3" and sorted(s for s, _ in row["top_k"]) == sorted("0123456789ABCDEF")

    code, out, err = run(capsys, "predict", digit, "--ignore-case", "--json", "--top-k", "100")
    assert code == 0, err
    (row,) = _json_lines(out)
    folded = [s.lower() for s, _ in row["top_k"]]
    assert len(folded) == 36 and len(set(folded)) == 36  # 10 digits + 26 letters, each once
    assert sum(c for _, c in row["top_k"]) == pytest.approx(1.0, abs=1e-4)

    code, out, err = run(capsys, "predict", digit, "--charset", "letters", "--ignore-case", "--json", "--top-k", "100")
    assert code == 0, err
    (row,) = _json_lines(out)
    assert sorted(s.lower() for s, _ in row["top_k"]) == list("abcdefghijklmnopqrstuvwxyz")

    code, out, err = run(capsys, "predict", digit, "--model", "digits", "--charset", "01234")  # plain text
    assert code == 0, err
    assert re.match(r".*digit_3_paper\.png: 3  \d\.\d\d", out)
    assert all(s in "01234" for s in re.findall(r"\b(\d) \d\.\d\d", out))


def test_predict_bad_charset_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, words in (
        (["--charset", "AB#"], ["'#' is not a class of this model"]),
        (["--model", "digits", "--charset", "letters"], ["letters", "shares no class"]),
        (["--model", "digits", "--charset", "12x"], ["'x'"]),
        (["--charset", " "], ["empty"]),
    ):
        code, out, err = run(capsys, "predict", SAMPLES, *argv)
        assert code == 2, argv
        assert out == "" and "Traceback" not in err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("hcr: error:"), err
        for w in words:
            assert w in lines[0], (argv, lines[0])


def test_predict_annotate_writes_one_png(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "missing.png"
    out_png = tmp_path / "sub" / "annotated.png"
    code, out, err = run(capsys, "predict", SAMPLES, missing, "--annotate", out_png)
    assert code == 1  # the missing file is reported (and drawn) but fails the run
    assert out_png.is_file() and str(out_png) in err
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(out_png) as im:
        im.load()
        assert im.format == "PNG"
        w, h = im.size
        pixels = np.asarray(im.convert("L"))
    assert w >= 6 * 96 and h >= 2 * 96  # 7 cells: six in the first row, one below
    assert out_png.stat().st_size > 10_000
    assert pixels.std() > 20  # thumbnails and captions, not a blank page
    assert [p.name for p in out_png.parent.iterdir()] == ["annotated.png"]  # no temp files left


# --------------------------------------------------------------------------- evaluate


def test_evaluate_writes_the_report(capsys: pytest.CaptureFixture[str], digits_model, tmp_path: Path) -> None:  # noqa: F811
    out_dir = tmp_path / "eval"
    code, out, err = run(capsys, "evaluate", digits_model.best, "--data", "digits", "--split", "test", "--out", out_dir, "--no-progress", "--device", "cpu")
    assert code == 0, err
    for name in ("metrics.json", "report.md", "confusion.png", "confusion.csv", "reliability.png", "errors.png"):
        assert (out_dir / name).is_file(), name
    m = re.search(r"accuracy (\d\.\d{4})", out)
    assert m
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert float(m.group(1)) == pytest.approx(metrics["accuracy"], abs=1e-4)
    assert str(out_dir / "report.md") in out


def test_evaluate_unknown_data_is_a_one_line_error(capsys: pytest.CaptureFixture[str], digits_model, tmp_path: Path) -> None:  # noqa: F811
    code, _, err = run(capsys, "evaluate", digits_model.best, "--data", "nope", "--out", tmp_path / "e")
    assert code == 2 and "nope" in err and "Traceback" not in err


def test_data_options_reach_the_csv_source(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A transposed CSV with a 1-based mapping file (the Kaggle EMNIST CSV layout)."""
    import numpy as np

    glyph = np.zeros((28, 28), np.uint8)
    glyph[2:5, 4:24] = 255  # a bar at the top: stored transposed it becomes a bar on the left
    rows = [[label] + glyph.T.ravel().tolist() for label in (1, 2, 2)]
    csv_path = tmp_path / "emnist-like.csv"
    csv_path.write_text("\n".join(",".join(map(str, r)) for r in rows) + "\n")
    mapping = tmp_path / "mapping.txt"
    mapping.write_text("1 65 97\n2 66 98\n")
    preview = tmp_path / "p.png"
    rc = main(["data", "preview", f"csv:{csv_path}", "--split", "all", "--data-opt", "transpose=true",
               "--data-opt", f"mapping={mapping}", "--out", str(preview)])
    assert rc == 0 and preview.exists()
    rc = main(["data", "info", f"csv:{csv_path}", "--split", "all", "--data-opt", "transpose=true", "--data-opt", f"mapping={mapping}"])
    out = capsys.readouterr().out
    assert rc == 0 and "A:1" in out and "B:2" in out

    from hcr.data import get_source

    img = get_source(f"csv:{csv_path}", transpose=True, mapping=str(mapping)).load("all").images[0]
    assert img[2:5].sum() > 0 and img[10:].sum() == 0  # upright: the bar is back at the top

    rc = main(["data", "info", f"csv:{csv_path}", "--data-opt", "bogus=1"])
    err = capsys.readouterr().err
    assert rc == 2 and "bogus" in err and "Traceback" not in err
    assert main(["data", "info", f"csv:{csv_path}", "--data-opt", "novalue"]) == 2


def test_a_closed_pipe_ends_quietly() -> None:
    """`hcr models | head -1`: the reader goes away; no traceback, exit status 141."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "hcr.cli", "models"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before the command gets to print anything
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err
