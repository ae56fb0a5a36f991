"""How well and how fast the word/line model (CRNN + CTC) reads.

1. **DHSD, writer-disjoint validation split**: the shared DHSD street names, the writers that
   ``configs/words.yaml`` holds out (10% of the writers, seeded; none of their lines is seen
   in training). CER and WER, greedy and beam search, and with the street-name list as a
   lexicon (every transcription of the data set, so this figure shows what a closed list
   of allowed answers adds, not open-vocabulary reading).
2. **Synthetic lines from EMNIST ByClass subset (dev-val) glyphs**: words, numbers and dates
   composed from held-out glyphs (the model trained on lines of dev-train glyphs only),
   rendered in the six robustness styles (paper photo, blue pen scan, JPEG photo, canvas
   PNG, chalkboard, small in a large picture), with a seed the training never used. CER
   with and without letter case.
3. **Speed**: from the file path of a 64 x 256 word image (a DHSD image) to its text
   (decoding, preprocessing, network, CTC decoding): median single-image latency on one
   thread, and batched throughput (images preprocessed and read 64 at a time), for the
   model file as it is (PyTorch) and for its ONNX export run by ONNX Runtime (exported
   here, into a temporary folder, with ``hcr.export``).

Every image goes through :class:`hcr.reading.line.LineRecognizer`, the path ``hcr read
--engine crnn`` takes (a word image is one line). Asserts nothing.

    HCR_DATA_DIR=/path/to/data python benchmarks/read_words.py [--model words] [--lines 600]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from robustness import run_and_report  # noqa: E402


def pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _rates_line(name: str, r: dict[str, float]) -> str:
    return (f"{name:34s} lines {r['lines']:5d}  CER {pct(r['cer']):>7s}  CER (ci) {pct(r['cer_ci']):>7s}  "
            f"WER {pct(r['wer']):>7s}  WER (ci) {pct(r['wer_ci']):>7s}  exact {pct(r['line_acc']):>7s}")


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from hcr.data import get_line_source
    from hcr.data.lines import DHSD_CITATION
    from hcr.lexicon import Lexicon
    from hcr.metrics import error_rates
    from hcr.reading.line import LineRecognizer

    torch.set_num_threads(args.threads)
    from hcr.pretrained import resolve_model

    rec = LineRecognizer.load(str(resolve_model(args.model)))  # the .pt (PyTorch), also for a shipped name
    figures: dict[str, Any] = {"model": args.model}
    print(f"Reading words and lines with {args.model} ({rec.codec.num_classes} classes incl. the CTC blank; {args.threads} thread(s))")

    def read_all(images: Sequence[Any], r: LineRecognizer) -> list[str]:
        out: list[str] = []
        for i in range(0, len(images), 64):
            out += [d.text for d in r.recognize_inputs([r.preprocess(x) for x in images[i : i + 64]])]
        return out

    # 1. DHSD held-out writers
    src = get_line_source("dhsd", args.data_dir, val_fraction=0.1, seed=0)
    val = src.load("val")
    every = src.load("all")
    writers = sorted(set(val.writers or []), key=lambda w: int(w) if w.isdigit() else 0)
    print(f"\n1. DHSD validation split: writers {', '.join(writers)} held out ({len(val)} images; writer-disjoint from training)")
    print(f"   credit: {DHSD_CITATION}")
    t0 = time.perf_counter()
    greedy = error_rates(val.texts, read_all(val.images, rec))
    t_greedy = time.perf_counter() - t0
    beam = error_rates(val.texts, read_all(val.images, rec.with_decoding(beam_width=args.beam)))
    lex_rec = rec.with_decoding(lexicon=Lexicon(sorted(set(every.texts))))
    lex = error_rates(val.texts, read_all(val.images, lex_rec))
    print(_rates_line("greedy", greedy))
    print(_rates_line(f"beam search (width {args.beam})", beam))
    print(_rates_line(f"lexicon ({len(set(every.texts))} street names)", lex))
    print(f"   ({t_greedy:.1f} s for the greedy pass)")
    figures["dhsd_val"] = {"writers": writers, "greedy": greedy, "beam": beam, "lexicon": lex}

    # 2. synthetic lines of EMNIST dev-val glyphs
    synth = get_line_source(f"synth:{args.data}", args.data_dir, count=0, val_count=args.lines, seed=args.seed)
    lines = synth.load("val")
    got = read_all(lines.images, rec)
    syn = error_rates(lines.texts, got)
    print(f"\n2. {lines.source}: {len(lines)} lines of words, numbers and dates in 6 styles (seed {args.seed})")
    print(_rates_line("greedy", syn))
    bad = [(t, g) for t, g in zip(lines.texts, got) if t.lower() != g.lower()][:8]
    for t, g in bad:
        print(f"   {t!r} -> {g!r}")
    figures["synthetic_dev_val"] = syn

    # 3. speed on a 64 x 256 word image
    from PIL import Image

    files = [p for p in val.images if isinstance(p, (str, Path))]
    sizes = {Image.open(f).size for f in files[:50]}
    one = files[0]
    print(f"\n3. speed: {Path(one).name} ({'x'.join(map(str, Image.open(one).size))} px; DHSD images are {sorted(sizes)})")
    figures["speed"] = {"image": str(one)}
    with tempfile.TemporaryDirectory() as tmp:
        from hcr.export import export_model

        onnx = export_model(rec.backend.source, "onnx", Path(tmp) / "model.onnx").path
        runtimes = (("PyTorch", rec, rec), ("ONNX Runtime", LineRecognizer.load(onnx, threads=1), LineRecognizer.load(onnx, threads=args.threads)))
        for runtime, r, r_n in runtimes:
            torch.set_num_threads(1)
            figures["speed"][runtime] = f = speed(r, r_n, one, files[:256], args)
            print(f"   {runtime:12s} single image, file to text, 1 thread: median {f['median_ms']:.2f} ms (p90 {f['p90_ms']:.2f} ms; of which "
                  f"decoding + preprocessing {f['preprocess_ms']:.2f} ms, network {f['network_ms']:.2f} ms, CTC decoding {f['ctc_ms']:.2f} ms), {args.repeats} runs")
            print(f"   {runtime:12s} single image, file to text, 1 thread, median over {f['images_timed']} DHSD images: {f['median_ms_over_images']:.2f} ms")
            print(f"   {runtime:12s} batched (64 per batch, from files): {f['batched_per_s_1_thread']:.0f} images/s on 1 thread"
                  + f", {f['batched_per_s_n_threads']:.0f} images/s on {args.threads} threads")
    return figures


def _median_ms(fn: Any, repeats: int) -> tuple[float, float]:
    for _ in range(10):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times)) * 1000, float(np.percentile(times, 90)) * 1000


def speed(rec: Any, rec_n: Any, one: Any, batch: Sequence[Any], args: argparse.Namespace) -> dict[str, float]:
    """Latency (1 thread) and batched throughput of ``rec`` from files, with a breakdown;
    ``rec_n``: the same model set up for ``args.threads`` threads."""
    import torch

    med, p90 = _median_ms(lambda: rec.recognize(one), args.repeats)
    pre = rec.preprocess(one)
    lp = rec.log_probs([pre.image])[0]
    out = {"median_ms": med, "p90_ms": p90, "preprocess_ms": _median_ms(lambda: rec.preprocess(one), args.repeats)[0],
           "network_ms": _median_ms(lambda: rec.log_probs([pre.image]), args.repeats)[0], "ctc_ms": _median_ms(lambda: rec.decode(lp), args.repeats)[0]}
    many = []  # one image is one width: the median over many word images, each read once after a warm-up
    for f in batch[:150]:
        rec.recognize(f)
        t = time.perf_counter()
        rec.recognize(f)
        many.append(time.perf_counter() - t)
    out["median_ms_over_images"] = float(np.median(many)) * 1000
    out["images_timed"] = len(many)

    def read_batch(r: Any) -> float:
        t = time.perf_counter()
        for i in range(0, len(batch), 64):
            r.recognize_inputs([r.preprocess(x) for x in batch[i : i + 64]])
        return len(batch) / (time.perf_counter() - t)

    out["batched_per_s_1_thread"] = read_batch(rec)
    torch.set_num_threads(args.threads)  # (an ONNX Runtime session keeps the count it was made with)
    out["batched_per_s_n_threads"] = read_batch(rec_n)
    return out


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="words", help="pretrained name or sequence model file (default: words)")
    ap.add_argument("--data", default="emnist-byclass", help="character data set the synthetic lines come from")
    ap.add_argument("--data-dir", default=None, help="data folder (default: $HCR_DATA_DIR, else the user cache)")
    ap.add_argument("--lines", type=int, default=600, help="synthetic lines (default 600)")
    ap.add_argument("--beam", type=int, default=16, help="beam width (default 16)")
    ap.add_argument("--repeats", type=int, default=200, help="timed single-image runs (default 200)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=7, help="seed of the synthetic lines (training used 0)")
    ap.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    return run_and_report("read_words", run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
