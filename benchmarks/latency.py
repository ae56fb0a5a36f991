"""From a file path to an answer: single-image latency and batched throughput.

Times what ``hcr predict`` does for each image (decode the file, the shared preprocessing,
the network, decoding the answer) with a pretrained model, on the bundled ``samples/``
images (photos, scans, canvas PNGs, of various sizes) or on files given on the command
line. Prints the median and 90th-percentile single-image latency, a per-stage breakdown
(decode / preprocess / network) and the batched throughput, all measured in this one run:
for the model as ``hcr predict`` loads it (a shipped model with an ONNX runtime file runs on
onnxruntime) and, for such a model, for its PyTorch ``.pt`` file too.

    python benchmarks/latency.py [--model chars] [--repeats 30] [--threads 1] [FILES...]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from hcr.data.folder import IMAGE_SUFFIXES
from hcr.errors import HcrError
from hcr.predictor import Predictor
from hcr.preprocess import load_image, preprocess
from hcr.pretrained import is_pretrained_name
from hcr.runtime import load_backend

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def _ms(samples: list[float]) -> tuple[float, float]:
    s = sorted(samples)
    return statistics.median(s) * 1e3, s[min(len(s) - 1, int(0.9 * len(s)))] * 1e3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*", type=Path, help=f"images to time (default: {SAMPLES})")
    ap.add_argument("--model", default="chars", help="pretrained name or model file (default: chars)")
    ap.add_argument("--repeats", type=int, default=30, help="timed passes over the files (default: 30)")
    ap.add_argument("--threads", type=int, default=1, help="torch and onnxruntime threads (default: 1, as a web server worker would use)")
    ap.add_argument("--batch", type=int, default=256, help="batch size for the throughput figure")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    files = a.files or sorted(p for p in SAMPLES.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        print("no image files to time", file=sys.stderr)
        return 2
    try:
        preds = {"as loaded": Predictor.load(a.model, threads=a.threads)}  # what hcr predict runs
        if preds["as loaded"].backend.format != "pytorch" and is_pretrained_name(a.model):
            preds["PyTorch (.pt)"] = Predictor.from_backend(load_backend(a.model))  # HCR_RUNTIME=pytorch
        for pred in preds.values():
            for f in files:  # warm-up, and fail early on unreadable files
                pred.predict(str(f))
    except HcrError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    sizes = [image_size(f) for f in files]
    print(f"model {a.model} ({preds['as loaded'].meta.get('model')}), torch {torch.__version__}, {a.threads} thread(s), "
          f"{platform.processor() or platform.machine()}")
    print(f"{len(files)} files, {min(s[0] * s[1] for s in sizes) / 1e3:.0f}k to {max(s[0] * s[1] for s in sizes) / 1e3:.0f}k pixels; "
          f"{a.repeats} passes")
    for label, pred in preds.items():
        print(f"\n== {label}: {pred.backend.format} runtime ({pred.backend.source})")
        measure(pred, files, a.repeats, a.batch)
    return 0


def measure(pred: Predictor, files: list[Path], repeats: int, batch_size: int) -> None:
    total, dec, pre, net = [], [], [], []
    for _ in range(repeats):
        for f in files:
            t0 = time.perf_counter()
            pred.predict(str(f))
            total.append(time.perf_counter() - t0)
            # the same work, stage by stage
            t0 = time.perf_counter()
            grey = load_image(str(f))
            t1 = time.perf_counter()
            p = preprocess(grey, pred.spec)
            t2 = time.perf_counter()
            if not p.blank:
                pred.backend.probs(p.image[None], temperature=pred.temperature)
            t3 = time.perf_counter()
            dec.append(t1 - t0)
            pre.append(t2 - t1)
            net.append(t3 - t2)
    med, p90 = _ms(total)
    print(f"single image, file path -> answer: median {med:.2f} ms, p90 {p90:.2f} ms (n={len(total)})")
    for name, s in (("decode", dec), ("preprocess", pre), ("network", net)):
        m, q = _ms(s)
        print(f"  {name:<10} median {m:6.2f} ms   p90 {q:6.2f} ms")

    batch = [str(f) for f in files] * max(1, batch_size // len(files))
    t0 = time.perf_counter()
    out = pred.predict_files(batch, batch=batch_size)
    dt = time.perf_counter() - t0
    print(f"batched (predict_files, batch {batch_size}): {len(out) / dt:,.0f} images/s "
          f"({dt / len(out) * 1e3:.2f} ms per image, {len(out)} images)")
    print(f"ratio single-image latency / batched per-image time: {med / (dt / len(out) * 1e3):.2f}x")


def image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        return im.size


if __name__ == "__main__":
    raise SystemExit(main())
