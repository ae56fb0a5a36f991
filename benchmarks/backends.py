"""Inference speed of every runtime hcr models run in, measured in one process, one run.

For each model, every backend runs the same network on the same inputs (real model inputs:
embedded digits through hcr's preprocessing; composed lines for the CRNN):

* batched throughput: images (lines) per second over ``--images`` inputs, batch 256 (64
  lines), best of 3;
* single-image latency: the median time of one call with one image (what ``hcr predict``
  and the web API do per request), after a warm-up.

Backends: PyTorch (hcr's ``batched_probs``), ONNX Runtime fp32 and int8 (``hcr export
--quantize int8``), the same network in Keras 3 called through ``model.predict`` (how
notebooks run it: the reference of the speed targets), and called directly (``model(x)``),
hcr's Keras backend (a compiled ``tf.function``), and TFLite. Targets (issue 6, ``seed-cnn``):
ONNX Runtime batched throughput >= 2x Keras ``model.predict``, single-image latency >= 20x
lower. The int8 model's accuracy is compared with fp32 on a named split: EMNIST ByClass
subset (dev-val) for ``chars`` when ``$HCR_DATA_DIR`` has it, else the embedded digits test
split; the ``seed-cnn`` is trained here on the digits train split (about 15 s) and scored
on its test split.

    python benchmarks/backends.py [--models seed-cnn chars crnn] [--threads 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def best_rate(fn: Callable[[np.ndarray], Any], x: np.ndarray, repeats: int = 3) -> float:
    """Items per second of ``fn(x)`` (best of ``repeats``, after a warm-up)."""
    fn(x[: min(len(x), 256)])
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t)
    return len(x) / min(times)


def median_latency(fn: Callable[[np.ndarray], Any], one: np.ndarray, calls: int) -> float:
    """Median seconds of ``fn`` on a batch of one, after warm-up calls."""
    for _ in range(5):
        fn(one)
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        fn(one)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def set_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)
    try:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except ImportError:
        pass


def train_seed_cnn(out: Path) -> Path:
    """seed-cnn trained on the embedded digits (train split; validated on test)."""
    from hcr.config import TrainConfig
    from hcr.train.classify import fit

    cfg = TrainConfig(data="digits", val_split="test", model="seed-cnn", epochs=8, batch_size=64, lr=0.003, augment="light", seed=0)
    return fit(cfg, out, progress=False, log=lambda _: None).best_path


def accuracy_split(meta: Any, data_dir: str | None) -> tuple[str, np.ndarray, np.ndarray]:
    """(name, inputs, targets in the model's label order) of the split int8 is scored on."""
    from hcr.data import get_source
    from hcr.labels import remap_indices
    from hcr.train.classify import prepare

    name, split = "digits", "test"
    emnist = data_dir and Path(data_dir, "emnist").is_dir()
    if emnist and len(meta.labels) == 62:
        name, split = "emnist-byclass", "dev-val"
    src = get_source(name, data_dir)
    samples = src.load(split)
    mapping = np.array(remap_indices(samples.label_map, meta.labels))
    keep = mapping[samples.targets] >= 0
    samples = samples.subset(np.flatnonzero(keep))
    x, _, blank = prepare(samples, meta.spec, progress=False)
    y = mapping[samples.targets]
    y[blank] = -1  # a blank input is a wrong answer
    label = {"digits": "embedded digits test split", "emnist-byclass": "EMNIST ByClass subset (dev-val)"}[name]
    return f"{label}, {len(y):,} images", x, y


def measure_model(name: str, src: Any, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Every backend on one model: prints a table, returns the figures."""
    from hcr.export import export_model, parity_inputs, resolve_source
    from hcr.runtime import load_backend
    from hcr.runtime.tensorflow import import_tensorflow, keras_model
    from hcr.runtime.torch import TorchBackend

    model, meta = resolve_source(src)
    sequence = meta.task == "sequence"
    ref = TorchBackend(model, meta)
    if sequence:
        lines = parity_inputs(meta, 512)
        x = next(b for b in lines if b.shape[2] == 256) if any(b.shape[2] == 256 for b in lines) else lines[len(lines) // 2]
        x = np.resize(x, (args.lines, *x.shape[1:])).astype(np.float32)
        batch = 64
    else:
        x = np.concatenate(parity_inputs(meta, args.images))
        batch = 256
    one = x[:1]
    results: dict[str, Any] = {"model": name, "task": meta.task, "input": list(x.shape[1:]), "rows": []}
    unit = "lines" if sequence else "img"

    def add(backend: str, fn: Callable[[np.ndarray], Any], calls: int, note: str = "") -> None:
        rate = best_rate(lambda a: [fn(a[i : i + batch]) for i in range(0, len(a), batch)], x)
        lat = median_latency(fn, one, calls)
        results["rows"].append({"backend": backend, "throughput": rate, "latency_ms": lat * 1e3, "note": note})
        print(f"  {backend:28s} {rate:10,.0f} {unit}/s   {lat * 1e3:9.3f} ms  {note}", flush=True)

    print(f"\n{name} ({meta.describe()}; input {tuple(x.shape[1:])}; batch {batch}; {args.threads} threads)")
    print(f"  {'backend':28s} {'throughput':>14s}   {'latency':>9s}")
    add("PyTorch (eager)", ref.probs, 200)
    files = {
        "onnx": export_model(src, "onnx", work / f"{name}.onnx", check=False).path,
        "int8": export_model(src, "onnx", work / f"{name}.int8.onnx", check=False, quantize="int8").path,
    }
    fp32, int8 = load_backend(files["onnx"], threads=args.threads), load_backend(files["int8"], threads=args.threads)
    add("ONNX Runtime fp32", fp32.probs, 500)
    add("ONNX Runtime int8", int8.probs, 500, "static QDQ int8")
    if not args.no_tf:
        try:
            import_tensorflow()
        except Exception as e:  # noqa: BLE001
            print(f"  (TensorFlow not measured: {e})")
        else:
            km = keras_model(model, meta)

            def predict(a: np.ndarray) -> Any:
                return km.predict(a[..., None], batch_size=batch, verbose=0)

            add("Keras model.predict", predict, 30, "the reference")
            add("Keras model(x) eager", lambda a: np.asarray(km(a[..., None], training=False)), 100)
            keras_file = export_model(src, "keras", work / f"{name}.keras", check=False).path
            kb = load_backend(keras_file)
            add("hcr Keras backend (tf.function)", kb.probs, 200)
            tfl = load_backend(export_model(src, "tflite", work / f"{name}.tflite", check=False).path, threads=args.threads)
            add("TFLite", tfl.probs, 500, "one line per call" if sequence else "")
    rows = {r["backend"]: r for r in results["rows"]}
    if "Keras model.predict" in rows:
        k, o = rows["Keras model.predict"], rows["ONNX Runtime fp32"]
        results["onnx_vs_keras_predict"] = {"throughput_x": o["throughput"] / k["throughput"], "latency_x": k["latency_ms"] / o["latency_ms"]}
        print(f"  ONNX Runtime vs Keras model.predict: throughput {o['throughput'] / k['throughput']:.1f}x, single-image latency {k['latency_ms'] / o['latency_ms']:.0f}x lower")
    f, q = rows["ONNX Runtime fp32"], rows["ONNX Runtime int8"]
    results["int8"] = {"throughput_x": q["throughput"] / f["throughput"], "latency_x": f["latency_ms"] / q["latency_ms"], "bytes_fp32": files["onnx"].stat().st_size, "bytes_int8": files["int8"].stat().st_size}
    if not sequence:
        split, xa, ya = accuracy_split(meta, args.data_dir)
        acc = {}
        for label, b in (("fp32", fp32), ("int8", int8)):
            acc[label] = float((b.probs(xa).argmax(1) == ya).mean())
        results["int8"].update({"split": split, "acc_fp32": acc["fp32"], "acc_int8": acc["int8"]})
        print(f"  int8 vs fp32 on the {split}: accuracy {acc['fp32']:.4%} -> {acc['int8']:.4%} ({(acc['int8'] - acc['fp32']) * 100:+.2f} points)")
    else:
        agree = float(np.mean([(fp32.logits(b).argmax(-1) == int8.logits(b).argmax(-1)).mean() for b in parity_inputs(meta, 256)]))
        results["int8"]["column_agreement"] = agree
        print(f"  int8 vs fp32: per-column top-1 agreement {agree:.2%} on 256 composed lines (random-weight network: no accuracy to report)")
    print(f"  int8: {q['throughput'] / f['throughput']:.2f}x throughput, {f['latency_ms'] / q['latency_ms']:.2f}x lower latency, "
          f"file {files['onnx'].stat().st_size / 1e6:.1f} -> {files['int8'].stat().st_size / 1e6:.1f} MB")
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["seed-cnn", "chars", "crnn"], help="seed-cnn (trained here), pretrained names or .pt files, crnn")
    ap.add_argument("--seed-cnn", help="a trained seed-cnn model file to use instead of training one")
    ap.add_argument("--crnn", help="a trained CRNN model file (default: a random-weight CRNN, speed only)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--images", type=int, default=4096, help="images for the throughput runs (default 4096)")
    ap.add_argument("--lines", type=int, default=256, help="lines (256 px wide) for the CRNN throughput runs")
    ap.add_argument("--data-dir", default=os.environ.get("HCR_DATA_DIR"))
    ap.add_argument("--no-tf", action="store_true", help="skip the TensorFlow backends")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()

    import onnxruntime
    import torch

    set_threads(args.threads)
    versions = f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}"
    if not args.no_tf:
        try:
            from hcr.runtime.tensorflow import import_tensorflow

            tf = import_tensorflow()
            import keras

            versions += f", tensorflow {tf.__version__}, keras {keras.__version__}"
        except Exception:  # noqa: BLE001
            args.no_tf = True
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; {versions}; {args.threads} threads per backend")
    out: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="hcr-bench-") as d:
        work = Path(d)
        for name in args.models:
            if name == "seed-cnn":
                src: Any = args.seed_cnn or train_seed_cnn(work / "seed-cnn")
            elif name == "crnn":
                if args.crnn:
                    src = args.crnn
                else:
                    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
                    from helpers_export import crnn_meta, random_crnn

                    src = (random_crnn(), crnn_meta())
            else:
                src = name
            out.append(measure_model(name, src, args, work))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": platform.machine(), "threads": args.threads, "versions": versions, "models": out}, indent=1))
    seed = next((r for r in out if r["model"] == "seed-cnn" and "onnx_vs_keras_predict" in r), None)
    if seed:
        r = seed["onnx_vs_keras_predict"]
        ok = r["throughput_x"] >= 2 and r["latency_x"] >= 20
        print(f"\nseed-cnn targets (ONNX Runtime vs Keras model.predict, this run): throughput {r['throughput_x']:.1f}x (>= 2x), "
              f"latency {r['latency_x']:.0f}x lower (>= 20x): {'MET' if ok else 'NOT MET'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
