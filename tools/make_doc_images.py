"""Make the pictures in ``docs/images/`` from library code.

    python tools/make_doc_images.py                      # every picture it can make
    HCR_DATA_DIR=/path/to/data python tools/make_doc_images.py

Pictures of the bundled ``samples/`` need no data; the confusion matrix needs MNIST and the
handwritten line needs the EMNIST ByClass subset under ``--data-dir`` / ``$HCR_DATA_DIR``
(those are skipped, with a message, when the files are absent). Everything is seeded, and
PNGs are written with a reduced palette to keep them small. ``docs/images/web-app.png``
comes from the web app, not from this script.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from hcr.errors import HcrError  # noqa: E402

OUT = ROOT / "docs" / "images"
SAMPLES = ROOT / "samples"

#: Samples shown stage by stage in docs/preprocessing.md: (file, what it shows).
STAGE_SAMPLES: tuple[tuple[str, str], ...] = (
    ("char_A_paper-photo.jpg", "paper photo, uneven light"),
    ("char_k_chalkboard.jpg", "chalk: light on dark"),
    ("char_4_canvas-png.png", "transparent canvas PNG"),
    ("char_E_small-in-large.jpg", "small in a large photo"),
    ("none_photo_no_writing.jpg", "no writing: blank"),
)
#: Stages of :func:`hcr.preprocess.preprocess` with ``stages=True``, in order, and their captions.
STAGES: tuple[tuple[str, str], ...] = (
    ("grey", "1. decoded, grey"),
    ("ink_bright", "2. ink made bright"),
    ("flattened", "3. paper flattened"),
    ("mask", "4. ink mask"),
    ("crop", "5. cropped to the ink"),
    ("input", "6. model input 28x28"),
)
#: The handwritten line of the README's `hcr read` example (EMNIST ByClass dev-val glyphs).
LINE_TEXT = "Anna 2024"
LINE_SEED = 3


def save_small(path: Path, colors: int = 64) -> Path:
    """Re-save the PNG at ``path`` with a ``colors``-entry palette (about 3-5x smaller)."""
    from PIL import Image

    with Image.open(path) as img:
        small = img.convert("RGB").quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(path, optimize=True)
    return path


def preprocess_stages(out: Path) -> Path:
    """One row per sample, one column per preprocessing stage (the `chars` model's spec)."""
    from matplotlib.figure import Figure

    from hcr.checkpoint import load_checkpoint
    from hcr.preprocess import PreprocessSpec, preprocess
    from hcr.pretrained import pretrained_path

    spec = load_checkpoint(pretrained_path("chars")).spec
    assert isinstance(spec, PreprocessSpec)  # a character model's spec
    fig = Figure(figsize=(1.55 * len(STAGES) + 1.3, 1.45 * len(STAGE_SAMPLES)), layout="constrained")
    axes = fig.subplots(len(STAGE_SAMPLES), len(STAGES), squeeze=False)
    for r, (row, (name, what)) in enumerate(zip(axes, STAGE_SAMPLES)):
        result = preprocess(SAMPLES / name, spec, stages=True)
        for ax, (key, caption) in zip(row, STAGES):
            ax.set_xticks([])
            ax.set_yticks([])
            image = result.stages.get(key)
            if image is None:
                ax.text(0.5, 0.5, "(blank: no\ncharacter)", ha="center", va="center", fontsize=8, transform=ax.transAxes)
            else:
                ax.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest" if key == "input" else "antialiased")
            if r == 0:
                ax.set_title(caption, fontsize=9)
        row[0].set_ylabel(what, fontsize=8)
    fig.savefig(out, dpi=90)
    return save_small(out)


def predict_samples(out: Path) -> Path:
    """What `make demo` writes: every bundled sample with its model input and answer."""
    from hcr.predictor import Predictor
    from hcr.report import annotate_predictions

    files = sorted(p for p in SAMPLES.iterdir() if p.suffix.lower() in (".png", ".jpg"))
    preds = Predictor.load("chars").predict_files(files)
    for p in preds:  # paths relative to the repository in the captions
        p.file = str(Path(str(p.file)).relative_to(ROOT))
    annotate_predictions(preds, out, title="hcr predict samples/ (model chars)", ncols=6)
    return save_small(out)


def augment_presets(out: Path) -> Path:
    """The same ten embedded digits under each augmentation preset."""
    import torch

    from hcr.augment import PRESET_NAMES, AugmentConfig, Augmenter
    from hcr.data import get_source
    from hcr.preprocess import PreprocessSpec
    from hcr.report import plot_gallery
    from hcr.train.classify import prepare

    samples = get_source("digits").load("train")
    pick = np.arange(10)
    x, y, _ = prepare(samples.subset(pick), PreprocessSpec(), cache=False, progress=False)
    batch = torch.from_numpy(x[:, None])
    rows, captions = [], []
    for preset in PRESET_NAMES:
        rows.append(Augmenter(AugmentConfig.preset(preset))(batch, torch.Generator().manual_seed(0))[:, 0].numpy())
        captions += [f"{preset} {samples.label_map[int(t)]}" for t in y]
    plot_gallery(np.concatenate(rows), captions, out, ncols=10, title="one row per augmentation preset (embedded digits)")
    return save_small(out)


def confusion_digits_mnist(out: Path, data_dir: str | None) -> Path:
    """The confusion matrix of `hcr evaluate digits --data mnist --split test`."""
    from hcr.train.evaluate import evaluate_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        evaluate_checkpoint("digits", "mnist", "test", tmp, data_dir=data_dir, progress=False)
        shutil.copyfile(Path(tmp) / "confusion.png", out)
    return save_small(out)


def handwritten_line(out: Path, read_out: Path, data_dir: str | None) -> tuple[Path, Path]:
    """A line of held-out EMNIST glyphs photographed on paper, and how `hcr read` reads it."""
    from PIL import ImageOps

    from hcr.compose import GlyphPool, compose
    from hcr.data import get_source
    from hcr.reader import Reader
    from hcr.render import render_line
    from hcr.report import annotate_reading

    source = get_source("emnist-byclass", data_dir)
    source.auto_download = False
    held_out = source.load("dev-val")
    pool = GlyphPool.from_samples(held_out.images, held_out.targets, held_out.label_map.symbols)
    rng = np.random.default_rng(LINE_SEED)
    photo = render_line(compose(LINE_TEXT, pool, rng, touch=0.0), "paper-photo", rng).convert("L")
    photo.thumbnail((800, 800))  # a phone photo, scaled down: small enough for the repository
    paper = int(np.median(np.asarray(photo)))
    photo = ImageOps.expand(photo, border=(0, 50), fill=paper)  # room above and below for the answers
    photo.save(out, quality=85)
    result = Reader.load("chars").read_file(out)
    print(f"  {out.name}: written {LINE_TEXT!r}, read {result.text!r}")
    annotate_reading(result, read_out)
    return out, save_small(read_out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Make the pictures in docs/images/ from library code.")
    ap.add_argument("--data-dir", help="where data sets live (default: $HCR_DATA_DIR or the user cache)")
    ap.add_argument("--out", type=Path, default=OUT, help="output folder (default docs/images)")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    jobs: list[tuple[str, Callable[[], object]]] = [
        ("preprocess-stages.png", lambda: preprocess_stages(args.out / "preprocess-stages.png")),
        ("predict-samples.png", lambda: predict_samples(args.out / "predict-samples.png")),
        ("augment-presets.png", lambda: augment_presets(args.out / "augment-presets.png")),
        ("confusion-digits-mnist.png", lambda: confusion_digits_mnist(args.out / "confusion-digits-mnist.png", args.data_dir)),
        ("line.jpg", lambda: handwritten_line(args.out / "line.jpg", args.out / "line-read.png", args.data_dir)),
    ]
    skipped = 0
    for name, job in jobs:
        try:
            job()
        except HcrError as e:  # a data set that is not on disk
            skipped += 1
            print(f"skipped {name}: {str(e).splitlines()[0][:200]}")
            continue
        print(f"wrote {args.out / name} ({(args.out / name).stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
