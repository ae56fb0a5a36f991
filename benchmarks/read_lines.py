"""How well ``hcr read`` reads lines of separately written characters, and how fast a page.

Lines of words, numbers and dates are composed from real handwritten characters of the
data set's evaluation split (for each character of the text, a random glyph of that class;
the dot and the dash, which the data set lacks, are drawn in its stroke width), laid out
like handwriting (a few pixels between letters, more between words, a little vertical
jitter, now and then two letters touching), rendered as the users' photos, scans and
canvas images of the robustness benchmark (``hcr.render.render_line``, one style per
line in turn) and read with :class:`hcr.reader.Reader`. Prints character and word error
rates (CER, WER: edit distance over the reference length, summed over all lines), with and
without letter case, per style, per kind of line and overall; then the same word lines read
with the word list as a lexicon; then the time to read an A4 page at 300 dpi (2480 x 3508
pixels) holding 20 handwritten lines. Asserts nothing.

    HCR_DATA_DIR=/path/to/data python benchmarks/read_lines.py [--lines 20] [--model chars]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
from PIL import Image

from hcr.compose import KINDS, WORDS, GlyphPool, compose, make_text
from hcr.metrics import error_rates
from hcr.render import STYLES, render_line

sys.path.insert(0, str(Path(__file__).resolve().parent))
from robustness import run_and_report, split_title  # noqa: E402  (the same naming of splits: "EMNIST ByClass subset (dev-val)")

# --------------------------------------------------------------------------- scoring


class Score:
    """Lines read so far: truths, readings and reading time; :func:`hcr.metrics.error_rates` scores them."""

    def __init__(self) -> None:
        self.refs: list[str] = []
        self.hyps: list[str] = []
        self.seconds = 0.0

    def add(self, ref: str, hyp: str, seconds: float = 0.0) -> None:
        self.refs.append(ref)
        self.hyps.append(hyp)
        self.seconds += seconds

    def figures(self) -> dict[str, float]:
        return {**error_rates(self.refs, self.hyps), "ms_per_line": 1000 * self.seconds / max(len(self.refs), 1)}


def pct(x: float) -> str:
    return f"{100 * x:6.2f}%"


def _row(name: str, f: dict[str, float]) -> str:
    return (f"{name:16s} {f['lines']:6d} {f['characters']:6d} {pct(f['cer']):>8s} {pct(f['cer_ci']):>9s} "
            f"{pct(f['wer']):>8s} {pct(f['wer_ci']):>9s} {f['ms_per_line']:8.0f}")


# --------------------------------------------------------------------------- the A4 page


def make_page(pool: GlyphPool, rng: np.random.Generator, lines: int = 20) -> tuple[np.ndarray, str]:
    """A 2480 x 3508 grey scan (A4 at 300 dpi) of ``lines`` handwritten lines (characters
    about 75 px, 6 mm, tall), dark ink on white paper with mild blur and noise, and its text."""
    h_page, w_page, margin = 3508, 2480, 200
    scale = 3.0
    paper = np.zeros((h_page, w_page), np.float32)
    texts: list[str] = []
    pitch = (h_page - 2 * margin) / lines
    room = w_page - 2 * margin
    for i in range(lines):
        parts: list[str] = []
        line: np.ndarray | None = None
        while len(parts) < 12:  # add words, numbers and dates while the line fits the page
            candidate = parts + [make_text(str(rng.choice(KINDS)), rng)]
            trial = compose(" ".join(candidate), pool, rng)
            if trial.shape[1] * scale > room:
                break
            parts, line = candidate, trial
        if line is None:
            continue
        texts.append(" ".join(parts))
        big = cv2.resize(line, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255.0
        y = int(margin + i * pitch)
        region = paper[y : y + big.shape[0], margin : margin + big.shape[1]]
        np.maximum(region, big, out=region)
    alpha = np.clip(paper, 0.0, 1.0)
    ink = 245.0 - alpha * (245.0 - 45.0)
    scan = cv2.GaussianBlur(ink, (0, 0), 0.6) + rng.normal(0.0, 2.0, ink.shape).astype(np.float32)
    return np.clip(scan + 0.5, 0, 255).astype(np.uint8), "\n".join(texts)


# --------------------------------------------------------------------------- main


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from hcr.data import get_source
    from hcr.reader import Lexicon, Reader

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    source = get_source(args.data, args.data_dir)
    source.auto_download = False
    samples = source.load(args.split)
    pool = GlyphPool.from_samples(samples.images, samples.targets, samples.label_map.symbols)
    reader = Reader.load(args.model)
    lex_reader = Reader(reader.predictor, lexicon=Lexicon(WORDS, ignore_case=True))
    title = split_title(source, args.split)
    print(f"Reading lines with {args.model} ({len(reader.predictor.label_map)} classes): segmentation + classifier, context on")
    print(f"data: {title}; {args.lines} lines per style x {len(STYLES)} styles, kinds {', '.join(KINDS)} in turn, seed {args.seed}")
    if getattr(source, "citation", ""):
        print(f"credit: {source.citation}")
    print()

    per_style = {s: Score() for s in STYLES}
    per_kind = {k: Score() for k in KINDS}
    overall, lexicon_words, plain_words = Score(), Score(), Score()
    examples: list[tuple[str, str, str]] = []
    t_start = time.perf_counter()
    for si, style in enumerate(STYLES):
        for i in range(args.lines):
            rng = np.random.default_rng([args.seed, si, i])
            kind = KINDS[i % len(KINDS)]
            text = make_text(kind, rng)
            img = render_line(compose(text, pool, rng), style, rng)
            t = time.perf_counter()
            got = reader.read(img).text
            dt = time.perf_counter() - t
            for s in (per_style[style], per_kind[kind], overall):
                s.add(text, got, dt)
            if kind == "words":
                plain_words.add(text, got)
                lexicon_words.add(text, lex_reader.read(img).text)
            if got != text and len(examples) < 12 and i % 3 == 0:
                examples.append((style, text, got))
    elapsed = time.perf_counter() - t_start

    head = f"{'lines':16s} {'n':>6s} {'chars':>6s} {'CER':>8s} {'CER (ci)':>9s} {'WER':>8s} {'WER (ci)':>9s} {'ms/line':>8s}"
    print(head)
    print("-" * len(head))
    for style, s in per_style.items():
        print(_row(style, s.figures()))
    for kind, s in per_kind.items():
        print(_row(f"kind: {kind}", s.figures()))
    print(_row("all", overall.figures()))
    print("(ci: case-insensitive; CER/WER: edit distance / reference length, summed over lines; ms/line: reading only)")
    pw, lw = plain_words.figures(), lexicon_words.figures()
    print()
    print(f"word lines with the {len(WORDS)}-word list as lexicon (case ignored in matching): "
          f"CER (ci) {pct(pw['cer_ci']).strip()} -> {pct(lw['cer_ci']).strip()}, WER (ci) {pct(pw['wer_ci']).strip()} -> {pct(lw['wer_ci']).strip()}")
    if examples:
        print()
        print("some misreadings (style: truth -> read):")
        for style, ref, hyp in examples:
            print(f"  {style}: {ref!r} -> {hyp!r}")

    # the A4 page
    page, page_text = make_page(pool, np.random.default_rng([args.seed, 99]), lines=20)
    times = []
    with tempfile.TemporaryDirectory() as tmp:  # timed from the PNG file, decoding included
        page_file = Path(tmp) / "page.png"
        Image.fromarray(page).save(page_file)
        for _ in range(args.page_repeats):
            t = time.perf_counter()
            page_read = reader.read(page_file)
            times.append(time.perf_counter() - t)
    page_score = Score()
    page_score.add(page_text, page_read.text)
    pf = page_score.figures()
    print()
    print(f"A4 page, 300 dpi ({page.shape[1]} x {page.shape[0]} px), 20 handwritten lines, {len(page_text.replace(chr(10), ''))} characters "
          f"(clean scan, characters ~75 px tall): read in {np.median(times):.2f} s (median of {len(times)}; "
          f"min {min(times):.2f} s; {args.threads} thread(s), from the PNG file, decoding included, model loaded); "
          f"{len(page_read.lines)} lines found; CER {pct(pf['cer']).strip()}, CER (ci) {pct(pf['cer_ci']).strip()}")
    print(f"total benchmark time {time.perf_counter() - t_start:.0f} s (lines: {elapsed:.0f} s)")
    return {
        "model": args.model, "data": args.data, "split": args.split, "title": title, "seed": args.seed,
        "lines_per_style": args.lines, "styles": {k: v.figures() for k, v in per_style.items()},
        "kinds": {k: v.figures() for k, v in per_kind.items()}, "all": overall.figures(),
        "lexicon_words": {"without": pw, "with": lw},
        "page": {"size": [page.shape[1], page.shape[0]], "seconds": times, "lines_found": len(page_read.lines), **pf},
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="chars", help="pretrained name or model file (default: chars)")
    ap.add_argument("--data", default="emnist-byclass", help="data set (default: emnist-byclass)")
    ap.add_argument("--split", default="dev-val", help="split the glyphs come from (default: dev-val)")
    ap.add_argument("--data-dir", default=None, help="data folder (default: $HCR_DATA_DIR, else the user cache)")
    ap.add_argument("--lines", type=int, default=100, help="lines per style (default: 100)")
    ap.add_argument("--page-repeats", type=int, default=3, help="timed reads of the A4 page (default: 3)")
    ap.add_argument("--threads", type=int, default=1, help="torch/OpenCV threads (default: 1)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    if args.lines < 1 or args.page_repeats < 1 or args.threads < 1:
        ap.error("--lines, --page-repeats and --threads must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    return run_and_report("read_lines", run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
