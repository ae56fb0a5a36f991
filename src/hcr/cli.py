"""The ``hcr`` command: a thin shell over the library (parse, call, print)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Iterator, Sequence

from . import __version__
from .errors import DataError, HcrError


def _add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="where data sets live (default: $HCR_DATA_DIR or the user cache)")
    p.add_argument("--data-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="a data set option, repeatable: e.g. transpose=true, mapping=FILE, val_fraction=0.2 (csv, folder, az-csv)")


def _data_options(pairs: Sequence[str]) -> dict[str, Any]:
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise HcrError(f"--data-opt expects KEY=VALUE, got {pair!r}")
        out[key.strip().replace("-", "_")] = yaml.safe_load(value) if value else None
    return out


def _add_batch(p: argparse.ArgumentParser, task: str) -> None:
    """The options of reading many images (hcr.batch): output file, workers, resume, Ray."""
    from .batch import FORMATS

    g = p.add_argument_group("many images (one row per image in a file; docs/scale.md)")
    g.add_argument("--out", "-o", metavar="FILE",
                   help="write one row per image (file, " + ("text" if task == "read" else "label") + ", confidence, error, ...) to FILE "
                        "instead of printing: .jsonl, .csv or .parquet (- : JSON Lines on stdout); with --ray also a folder of shards (DIR/, s3://...)")
    g.add_argument("--format", choices=FORMATS, help="output format when FILE's suffix does not say it")
    g.add_argument("--manifest", metavar="FILE", help="images listed in FILE: .txt (one path per line), .csv/.tsv/.parquet/.jsonl "
                                                      "with a file or path column (relative paths: from FILE's folder)")
    g.add_argument("--column", metavar="NAME", help="the manifest's column of image paths (default: file, else path)")
    g.add_argument("--workers", type=int, metavar="N", help="processes on this machine, each loading the model once (default 1); "
                                                            "with --ray: Ray actors, one CPU each (default: every CPU of the cluster)")
    g.add_argument("--resume", action="store_true", help="skip the images already in --out and append the rest (after an interruption)")
    g.add_argument("--overwrite", action="store_true", help="replace an existing --out (without it, an existing output is refused unless --resume)")
    g.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run on Ray Data: a local Ray instance, or the cluster at ADDRESS (auto, ray://HOST:10001); needs pip install 'hcr-toolkit[distributed]'")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")


def _pretrained_names() -> list[str]:
    """Names of the shipped models for help texts (empty if the manifest is unreadable:
    the error then surfaces, as one line, when a model is actually loaded)."""
    from .pretrained import list_pretrained

    try:
        return [m.name for m in list_pretrained()]
    except HcrError:
        return []


def build_parser() -> argparse.ArgumentParser:
    from .charset import NAMED_CHARSETS
    from .config import PRECISIONS
    from .data import LINE_SOURCES, SOURCES
    from .pretrained import DEFAULT_MODEL
    from .reading import ENGINES

    try:
        from .augment import PRESET_NAMES
        from .distributed import BACKENDS
        from .models import list_models

        model_names: list[str] | None = list_models()
        presets: tuple[str, ...] | None = PRESET_NAMES
        dist_backends: tuple[str, ...] = BACKENDS
    except ImportError:  # an inference-only install (no torch, docs/export.md): predict works, train does not
        model_names, presets, dist_backends = None, None, ("auto",)

    ap = argparse.ArgumentParser(prog="hcr", description="Handwritten character recognition.")
    ap.add_argument("--version", action="version", version=f"hcr {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)

    # data
    data = sub.add_parser("data", help="list, inspect, download and preview data sets")
    dsub = data.add_subparsers(dest="data_command", required=True)
    dsub.add_parser("list", help="the data sets hcr knows")
    info = dsub.add_parser("info", help="files, splits and class counts of a data set")
    info.add_argument("name", help=f"one of: {', '.join(SOURCES)} (NAME:PATH for csv/folder), or a word/line data set: {', '.join(usage for _, usage, _ in LINE_SOURCES.values())}")
    info.add_argument("--split", help="split to count (default: every split available locally)")
    _add_data_dir(info)
    dl = dsub.add_parser("download", help="fetch and verify a data set's files")
    dl.add_argument("name")
    _add_data_dir(dl)
    pv = dsub.add_parser("preview", help="write a PNG grid of model inputs")
    pv.add_argument("name")
    pv.add_argument("--split", help="split to preview (default: the first)")
    pv.add_argument("--augment", nargs="?", const="default", choices=presets, help="show augmented inputs with a preset (default: default)")
    pv.add_argument("-n", type=int, default=60, help="number of images (default 60)")
    pv.add_argument("--seed", type=int, default=0)
    pv.add_argument("--out", default="preview.png", help="output PNG (default preview.png)")
    _add_data_dir(pv)

    sub.add_parser("models", help="the shipped pretrained models and the architectures hcr can train")

    tr = sub.add_parser("train", help="train a model; a recipe (--config) plus overrides; a recipe with task: sequence trains a word/line CRNN")
    tr.add_argument("--config", help="a YAML recipe (see configs/)")
    tr.add_argument("--data", help="data set spec (hcr data list); for a sequence recipe a line data set: lines:PATH, dhsd, synth:DATA")
    tr.add_argument("--model", choices=model_names)
    tr.add_argument("--epochs", type=int)
    tr.add_argument("--batch-size", type=int)
    tr.add_argument("--lr", type=float)
    tr.add_argument("--train-split")
    tr.add_argument("--val-split", help="held-out split for validation (default: a seeded part of train)")
    tr.add_argument("--max-train-samples", type=int, help="train on a seeded subset (quick runs)")
    tr.add_argument("--augment", choices=presets, help="augmentation preset")
    tr.add_argument("--early-stopping", type=int, metavar="PATIENCE")
    tr.add_argument("--finetune", metavar="CHECKPOINT", help="start from a model file (its label set may differ)")
    tr.add_argument("--device", help="auto, cpu, cuda or cuda:N (under torchrun: auto/cuda give each process cuda:LOCAL_RANK)")
    tr.add_argument("--seed", type=int)
    tr.add_argument("--precision", choices=PRECISIONS, help="fp32 (default); bf16 or fp16 autocast for the forward pass (fp16: GPU only)")
    tr.add_argument("--loader-workers", type=int, metavar="N", help="processes that build and augment batches ahead of the training step (default 0: in the training process)")
    tr.add_argument("--threads", metavar="N|auto|split", help="CPU threads of a training step: N (default 0: one per core); auto: the fastest count, "
                                                    "measured every 500 steps (not bit-for-bit repeatable); split: each batch cut between threads, "
                                                    "one per operation (fp32 character models; the fastest on machines shared with other work)")
    tr.add_argument("--dist-backend", choices=dist_backends, default="auto",
                    help="under torchrun: the process group's backend (auto: nccl on GPUs, gloo on the CPU)")
    tr.add_argument("--out", required=True, help="run folder (best.pt, last.pt, history, curves); under torchrun rank 0 writes it")
    tr.add_argument("--resume", action="store_true", help="continue an interrupted run in --out (torchrun's own restarts continue by themselves)")
    tr.add_argument("--no-progress", action="store_true")
    _add_data_dir(tr)

    ev = sub.add_parser("evaluate", help="accuracy, per-class figures, confusion matrix, calibration; CER/WER and the worst lines for a word/line model")
    ev.add_argument("model", help="model file (.pt, or exported: .onnx, .keras, ...) or a pretrained name (chars, digits, letters, words)")
    ev.add_argument("--data", required=True, help="a character data set; for a word/line model a line data set (lines:PATH, dhsd, synth:DATA)")
    ev.add_argument("--beam", type=int, metavar="WIDTH", help="word/line models: beam search of this width (default: greedy)")
    ev.add_argument("--lexicon", metavar="FILE", help="word/line models: allowed words, one per line (beam search keeps to them)")
    ev.add_argument("--split", help="default: the data set's held-out split")
    ev.add_argument("--known-classes-only", action="store_true", help="leave out samples of classes the model does not have (e.g. digits model on EMNIST ByClass)")
    ev.add_argument("--out", required=True, help="report folder")
    ev.add_argument("--device", default="auto")
    ev.add_argument("--no-progress", action="store_true")
    _add_data_dir(ev)

    ca = sub.add_parser("calibrate", help="fit a model's softmax temperature on its validation split (in place; a character or a word/line model)")
    ca.add_argument("model", help="model file (.pt) trained by hcr train")
    ca.add_argument("--device", default="auto")
    ca.add_argument("--no-progress", action="store_true")
    _add_data_dir(ca)

    from .runtime import EXPORT_FORMATS, QUANTIZE

    ex = sub.add_parser("export", help="write a model's network as ONNX, TorchScript, Keras, TensorFlow SavedModel or TFLite (metadata inside the file), checked against PyTorch")
    ex.add_argument("model", help="hcr model file (.pt) or a pretrained name")
    ex.add_argument("--format", "-f", required=True, choices=EXPORT_FORMATS)
    ex.add_argument("--out", "-o", help="output file (a folder for tf-savedmodel; default: beside the model, e.g. best.onnx)")
    ex.add_argument("--quantize", choices=QUANTIZE, help="onnx only: int8 weights and activations (smaller and faster; the accuracy change is reported)")
    ex.add_argument("--no-check", action="store_true", help="skip the parity check against PyTorch on 512 real inputs")

    ki = sub.add_parser("import-keras", help="use a Keras classifier (.h5/.keras, e.g. a 28x28x1 MNIST notebook model) with hcr: checks it and writes MODEL.hcr.json beside it")
    ki.add_argument("model", help="the .h5 or .keras file")
    lab = ki.add_mutually_exclusive_group(required=True)
    lab.add_argument("--labels", help="the class of each network output, in order, as one string, e.g. 0123456789")
    lab.add_argument("--labels-file", metavar="FILE", help="a text file with one label per line, in output order")
    ki.add_argument("--invert", action="store_true", help="the network was trained on dark ink on white paper (hcr's input is bright ink on black)")
    ki.add_argument("--scale", type=float, default=1.0, help="the network expects pixel values 0..SCALE: 255 for raw bytes (default 1)")

    names = _pretrained_names()
    pr = sub.add_parser("predict", help="read characters from image files or folders")
    pr.add_argument("inputs", nargs="*", help="image files, PDFs, folders or glob patterns (quoted: 'scans/**/*.png'); every page of a PDF or multi-page TIFF is read")
    pr.add_argument("--model", "-m", metavar="NAME|PATH", default=None,
                    help=f"a shipped pretrained model ({', '.join(names) or 'see hcr models'}; default: {DEFAULT_MODEL}) "
                         "or a model file: .pt from hcr train, .onnx/.keras/.tflite/... from hcr export, or an imported Keras .h5")
    pr.add_argument("--charset", metavar="SPEC",
                    help=f"answer only with these characters: {', '.join(NAMED_CHARSETS)}, or the characters "
                         "themselves, e.g. 0123456789ABCDEF (probabilities renormalised over them)")
    pr.add_argument("--ignore-case", action="store_true",
                    help="letters differing only by case (o/O, s/S) are one answer: probabilities summed, "
                         "reported as the more probable one")
    pr.add_argument("--top-k", type=int, default=3)
    pr.add_argument("--json", action="store_true", help="one JSON object per input line")
    pr.add_argument("--threshold", type=float, default=0.5, help="confidence below which answers are marked uncertain")
    pr.add_argument("--save-input", metavar="DIR", help="save the exact model input of each image as a PNG")
    pr.add_argument("--annotate", metavar="OUT.png",
                    help="write one image: each input's thumbnail and model input, captioned with the answer")
    pr.add_argument("--device", default="cpu")
    _add_batch(pr, "predict")

    rd = sub.add_parser("read", help="read lines, fields or pages: separately written characters (segment) or joined-up writing (crnn)")
    rd.add_argument("inputs", nargs="*", help="image files, PDFs, folders or glob patterns (quoted: 'scans/**/*.png'); every page of a PDF or multi-page TIFF is read")
    rd.add_argument("--engine", choices=ENGINES, default="segment",
                    help="segment: cut characters apart and classify each (codes, forms, printed-style writing; default); "
                         "crnn: whole lines through the word/line model (joined-up and cursive writing)")
    rd.add_argument("--model", "-m", metavar="NAME|PATH", default=None,
                    help=f"segment: the character classifier, a shipped pretrained model ({', '.join(names) or 'see hcr models'}; "
                         f"default: {DEFAULT_MODEL}) or a model file (.pt from hcr train, or exported); crnn: a word/line model, shipped (words, the default) or a file (.pt or exported)")
    rd.add_argument("--beam", type=int, metavar="WIDTH", help="crnn: beam search of this width (default: greedy; 16 with --lexicon)")
    rd.add_argument("--charset", metavar="SPEC",
                    help=f"every character is one of these: {', '.join(NAMED_CHARSETS)}, or the characters themselves, "
                         "punctuation included, e.g. 0123456789.- for dates (named sets allow no punctuation)")
    rd.add_argument("--ignore-case", action="store_true", help="letters differing only by case are one answer")
    rd.add_argument("--lexicon", metavar="FILE", help="allowed words, one per line: each word read becomes the closest one")
    rd.add_argument("--no-context", action="store_true",
                    help="do not let a word's letters or digits settle its look-alike characters (O/0, l/1, S/5, Z/2) and case")
    rd.add_argument("--field", action="store_true",
                    help="each image is one form field (a name, date, amount, code): answer its handwritten value only, "
                         "without the printed label, neighbouring rows or box lines (blank when it holds no handwriting)")
    rd.add_argument("--keep-printed", action="store_true",
                    help="read printed words too (the JSON marks each word printed: true); by default printed labels are left out")
    rd.add_argument("--json", action="store_true", help="one JSON object per image: file, text, blank, characters (char, confidence, box, top_k, printed), lines (with words, each printed or not)")
    rd.add_argument("--details", action="store_true", help="also list every character: box, confidence and alternatives")
    rd.add_argument("--annotate", metavar="DIR", help="write each image with its boxes and answers drawn on it to DIR")
    rd.add_argument("--threshold", type=float, default=0.5, help="confidence below which characters are marked uncertain")
    rd.add_argument("--device", default="cpu")
    _add_batch(rd, "read")

    web = sub.add_parser("app", help="the web page: draw or upload characters and see the answers (Streamlit)")
    web.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)")
    web.add_argument("--port", type=int, default=8501)
    web.add_argument("--model", "-m", metavar="NAME|PATH", help=f"the model selected when the page opens (default: {DEFAULT_MODEL})")
    web.add_argument("--max-upload-mb", type=float, default=10.0, help="largest image accepted (default 10)")
    web.add_argument("--headless", action="store_true", help="do not open a browser")

    sv = sub.add_parser("serve", help="the HTTP API (FastAPI): POST /v1/predict and /v1/read, GET /v1/models; docs at /docs")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument("--model", "-m", action="append", metavar="NAME|PATH",
                    help="a model to serve (pretrained name or model file), repeatable; the first is the default "
                         "(default: every pretrained model: chars, digits, letters, and words for /v1/read)")
    sv.add_argument("--max-upload-mb", type=float, default=10.0, help="largest upload accepted (default 10)")
    sv.add_argument("--timeout", type=float, default=10.0, help="per-request time limit in seconds (default 10; 0: none)")
    sv.add_argument("--workers", type=int, default=4, help="threads that decode and preprocess images (default 4)")
    sv.add_argument("--processes", type=int, default=1, help="server processes, each with its own models (default 1; one per core serves most)")
    sv.add_argument("--op-threads", type=int, default=1,
                    help="threads one PyTorch or OpenCV operation may use (default 1: requests run side by side instead; 0: the libraries' defaults)")
    sv.add_argument("--no-batch", action="store_true", help="one forward pass per request (default: concurrent requests share them)")
    sv.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN", help="allow browser pages from ORIGIN, repeatable")
    sv.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    return ap


# --------------------------------------------------------------------------- commands


def cmd_data(args: argparse.Namespace) -> int:
    from . import data as D

    if args.data_command == "list":
        for name, (_, desc) in D.SOURCES.items():
            print(f"{name:16s} {desc}")
        print("\nword/line data sets (hcr train with task: sequence):")
        for _, usage, desc in D.LINE_SOURCES.values():
            print(f"{usage:16s} {desc}")
        return 0
    if args.data_command == "info" and D.is_line_source(args.name):
        print("\n".join(D.describe_line_source(args.name, args.data_dir, args.split)))
        return 0
    src = D.get_source(args.name, args.data_dir, **_data_options(args.data_opt))
    if args.data_command == "download":
        for p in src.download():
            print(p)
        return 0
    if args.data_command == "info":
        return _data_info(src, args.split)
    return _data_preview(src, args)


def _data_info(src: Any, split: str | None) -> int:
    from .data.base import DataSource

    src.auto_download = False  # a query never starts a download
    print(f"{src.name}")
    if getattr(src, "citation", ""):
        print(f"  credit: {src.citation}")
    print(f"  splits: {', '.join(src.splits)}")
    files = src.required_files()
    for f in files:
        print(f"  {'ok     ' if Path(f).exists() else 'missing'} {f}")
    # an official data set that is not downloaded yet is news, not an error; files that are
    # there but cannot be read (or a user's path that does not exist) are
    fetchable = type(src).download is not DataSource.download
    not_downloaded = fetchable and not all(Path(f).exists() for f in files)
    problem = ""
    for s in [split] if split else src.splits:
        try:
            samples = src.load(s)
        except HcrError as e:
            why = str(e).splitlines()[0]
            print(f"  {s}: {'not available locally' if not_downloaded else 'cannot be read'} ({why})")
            problem = problem or why
            continue
        counts = samples.class_counts()
        print(f"  {s}: {len(samples):,} samples, {len(counts)} classes")
        print("    " + "  ".join(f"{k}:{v}" for k, v in counts.items()))
    if problem and not not_downloaded:
        raise DataError(problem)
    return 0


def _data_preview(src: Any, args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from .augment import AugmentConfig, Augmenter
    from .preprocess import PreprocessSpec
    from .report import plot_gallery
    from .train.classify import prepare

    samples = src.load(args.split or src.splits[0])
    rng = np.random.default_rng(args.seed)
    pick = np.sort(rng.choice(len(samples), size=min(args.n, len(samples)), replace=False))
    sub = samples.subset(pick)
    x, y, _ = prepare(sub, PreprocessSpec(), cache=False, progress=False)
    if args.augment:
        t = torch.from_numpy(x[:, None])
        x = Augmenter(AugmentConfig.preset(args.augment))(t, torch.Generator().manual_seed(args.seed))[:, 0].numpy()
    title = f"{sub.source}" + (f" (augment: {args.augment})" if args.augment else "")
    out = plot_gallery(x, [sub.label_map[int(i)] for i in y], Path(args.out), title=title)
    print(out)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from .charset import describe_symbols
    from .pretrained import DEFAULT_MODEL, list_pretrained
    from .runtime import load_backend

    use = {"classify": "hcr predict/read --model NAME", "sequence": "hcr read --engine crnn --model NAME", "printed": "hcr read (drops printed labels)"}
    print("Pretrained models:")
    for m in list_pretrained():
        try:  # the runtime (ONNX) file where one ships: no torch needed to list them
            backend = load_backend(m.name, shipped_runtime=True)
            symbols = backend.codec.alphabet if backend.task == "sequence" else backend.label_map.symbols  # what it writes (no CTC blank), as GET /v1/models
            classes = f"{len(symbols):>3} classes ({describe_symbols(symbols, 24)})"
        except HcrError as e:
            classes = f"unavailable: {str(e).splitlines()[0]}"
        default = "  [default]" if m.name == DEFAULT_MODEL else ""
        print(f"{m.name:10s} {classes:30s} {m.bytes / 1e6:5.1f} MB  {m.description}{default}  ({use.get(m.task, m.task)})")
    print()
    try:
        from .models import count_parameters, create_model, describe_model, list_models
    except ImportError as e:  # an inference-only install (no torch): nothing to train with
        print(f"Architectures: training needs PyTorch ({e.name} is not installed: an inference-only install, docs/export.md)")
        return 0
    print("Architectures (hcr train --model NAME):")
    for name in list_models():
        n = count_parameters(create_model(name, 62))
        print(f"{name:10s} {n:>10,} params (62 classes)  {describe_model(name)}")
    return 0


def _sequence_recipe(cfg: Any, args: argparse.Namespace) -> Any:
    """A word/line recipe with the command-line overrides that apply to it."""
    bad = [f"--{k.replace('_', '-')}" for k in ("train_split", "val_split", "augment", "data_opt") if getattr(args, k)]
    if bad:
        raise HcrError(f"{', '.join(bad)} do not apply to a sequence recipe; set data_options / augment in the YAML")
    return cfg.updated(
        data=[args.data] if args.data else None, model=args.model, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        max_train_samples=args.max_train_samples, early_stopping=args.early_stopping, finetune=args.finetune,
        device=args.device, seed=args.seed, data_dir=args.data_dir, precision=args.precision, loader_workers=args.loader_workers, threads=args.threads,
    )


def cmd_train(args: argparse.Namespace) -> int:
    from .config import TrainConfig, load_config

    cfg = load_config(args.config) if args.config else TrainConfig()
    if args.resume and not args.config and (Path(args.out) / "config.yaml").exists():
        cfg = load_config(Path(args.out) / "config.yaml")  # the run's own recipe tells which task it is
    with _no_empty_folder_on_failure(Path(args.out)):
        return _train(cfg, args)


@contextlib.contextmanager
def _no_empty_folder_on_failure(out: Path) -> Iterator[None]:
    """A run that fails before it writes anything (bad data, a wrong recipe) leaves no empty
    run folder behind; a folder that existed before, or holds files, is left alone."""
    made = [d for d in [out, *out.parents] if not d.exists()]  # what the run may create, innermost first
    try:
        yield
    except BaseException:
        for d in made:
            if not d.is_dir() or any(d.iterdir()):
                break
            d.rmdir()
        raise


def _train(cfg: Any, args: argparse.Namespace) -> int:
    from .config import SequenceConfig

    try:
        if isinstance(cfg, SequenceConfig):
            from .train.sequence import fit_sequence

            seq = fit_sequence(_sequence_recipe(cfg, args), args.out, resume=args.resume, progress=not args.no_progress, dist_backend=args.dist_backend)
            if seq.rank == 0:
                print(f"best validation CER {seq.best_val_cer:.4f}; model: {seq.best_path}")
            return 0
        from .train.classify import fit

        cfg = cfg.updated(
            data=args.data, model=args.model, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
            train_split=args.train_split, val_split=args.val_split, max_train_samples=args.max_train_samples,
            augment=args.augment, early_stopping=args.early_stopping, finetune=args.finetune,
            device=args.device, seed=args.seed, data_dir=args.data_dir, precision=args.precision, loader_workers=args.loader_workers, threads=args.threads,
        )
        if args.data_opt:
            cfg.data_options = {**cfg.data_options, **_data_options(args.data_opt)}
        res = fit(cfg, args.out, resume=args.resume, progress=not args.no_progress, dist_backend=args.dist_backend)
    except KeyboardInterrupt:
        print(f"\ninterrupted; the last finished epoch is saved: continue with  hcr train --out {args.out} --resume", file=sys.stderr)
        return 130
    if res.rank == 0:
        print(f"best validation accuracy {res.best_val_acc:.4f}; model: {res.best_path}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .reading import LineRecognizer, load_recognizer
    from .train.evaluate import evaluate_checkpoint

    recognizer = load_recognizer(args.model, device=args.device, shipped_runtime=False)  # any format hcr reads; loaded once, evaluated below
    backend = recognizer.backend
    if isinstance(recognizer, LineRecognizer):
        from .train.evaluate import evaluate_sequence_checkpoint

        r = evaluate_sequence_checkpoint(args.model, args.data, args.split, args.out, data_dir=args.data_dir, device=args.device,
                                         beam_width=args.beam, lexicon=args.lexicon, progress=not args.no_progress, backend=backend)
        print(f"{r['data_description']}: CER {r['cer']:.4f} (case-insensitive {r['cer_ci']:.4f}), WER {r['wer']:.4f}, "
              f"lines exact {r['line_acc']:.4f} [{r['decoding']}]")
        print(f"report: {Path(args.out) / 'report.md'}; worst lines: {Path(args.out) / 'worst.png'}")
        return 0
    if args.beam or args.lexicon:
        raise HcrError("--beam and --lexicon apply to word/line models only")

    rep = evaluate_checkpoint(args.model, args.data, args.split, args.out, data_dir=args.data_dir, data_options=_data_options(args.data_opt), device=args.device, progress=not args.no_progress, known_classes_only=args.known_classes_only, backend=backend)
    print(f"{rep['data_description']}: accuracy {rep['accuracy']:.4f}, top-{rep['top_k']} {rep['top_k_accuracy']:.4f}, "
          f"macro-F1 {rep['macro_f1']:.4f}, ECE {rep['ece']:.4f}"
          + (f", case-merged {rep['case_merged_accuracy']:.4f}" if rep.get("case_merged_accuracy") is not None else "")
          + (f", look-alikes merged {rep['lookalike_merged_accuracy']:.4f}" if rep.get("lookalike_merged_accuracy") is not None else ""))
    print(f"report: {Path(args.out) / 'report.md'}")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from .train.evaluate import calibrate_checkpoint

    r = calibrate_checkpoint(args.model, data_dir=args.data_dir, device=args.device, progress=not args.no_progress)
    how = ("validation ECE", "val_ece") if "val_ece_before" in r else ("validation CTC NLL per line", "val_nll")
    print(f"{args.model}: temperature {r['temperature']:.3f}; {how[0]} {r[how[1] + '_before']:.4f} -> {r[how[1] + '_after']:.4f}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .export import default_output, export_model

    out = args.out or default_output(args.model, args.format, args.quantize)
    print(export_model(args.model, args.format, out, check=not args.no_check, quantize=args.quantize).summary())
    return 0


def cmd_import_keras(args: argparse.Namespace) -> int:
    from .charset import describe_symbols
    from .runtime.tensorflow import import_keras

    labels = args.labels
    if args.labels_file:
        try:
            labels = Path(args.labels_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise HcrError(f"{args.labels_file}: cannot read the label file ({e})") from None
    side, meta = import_keras(args.model, labels, invert=args.invert, scale=args.scale)
    assert meta.labels is not None
    print(f"{args.model}: {len(meta.labels)} classes ({describe_symbols(meta.labels.symbols)}), input {meta.spec.size}x{meta.spec.size} "
          f"({meta.layout}), output {meta.output}; the network sees hcr's input (ink bright, 0..1)"
          + (" inverted" if meta.invert else "") + (f" times {meta.scale:g}" if meta.scale != 1 else ""))
    print(f"metadata: {side}; use it as: hcr predict --model {args.model} IMAGES, or hcr evaluate {args.model} --data ...")
    return 0


def _expand_inputs(args: argparse.Namespace) -> list[Path]:
    """The image files named by the inputs and --manifest (folders searched recursively,
    glob patterns expanded: :func:`hcr.batch.list_images`)."""
    from .batch import list_images

    if not args.inputs and not args.manifest:
        raise HcrError("give image files or folders, or --manifest FILE")
    return [Path(r.source) for r in list_images(args.inputs, manifest=args.manifest, column=args.column, unique=False)]


_BATCH_ONLY = ("format", "workers", "resume", "overwrite", "ray", "no_progress")


def _batch_job(args: argparse.Namespace, spec: Any, **options: Any) -> int | None:
    """Run the command over many images with hcr.batch when --out (or a batch option) is
    given; None when it is not (the command prints as usual)."""
    from . import batch

    batch_only = [f"--{k.replace('_', '-')}" for k in _BATCH_ONLY if getattr(args, k) not in (None, False)]
    if args.out is None:
        if batch_only:
            raise HcrError(f"{', '.join(batch_only)} {'needs' if len(batch_only) == 1 else 'need'} --out FILE (the file the rows go to; - for JSON Lines on stdout)")
        return None
    clash = [f"--{k.replace('_', '-')}" for k in ("annotate", "save_input", "json") if getattr(args, k, None)]
    if clash:
        raise HcrError(f"{', '.join(clash)}: not with --out, where the rows go to {args.out}; leave {'it' if len(clash) == 1 else 'them'} out")
    if not args.inputs and not args.manifest:
        raise HcrError("give image files or folders, or --manifest FILE")
    refs = batch.list_images(args.inputs, manifest=args.manifest, column=args.column)
    common = dict(fmt=args.format, resume=args.resume, overwrite=args.overwrite, progress=not args.no_progress, **options)
    if args.ray is not None:
        summary = batch.run_ray(refs, args.out, spec, address=args.ray or None, workers=args.workers, **common)
    else:
        summary = batch.run(refs, args.out, spec, workers=args.workers or 1, **common)
    print(summary.describe(), file=sys.stderr)
    return _exit_code(summary.written + summary.skipped, summary.failed)


def cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from .batch import ModelSpec
    from .reading.char import Predictor

    spec = ModelSpec("predict", args.model, threshold=args.threshold, device=args.device, charset=args.charset, ignore_case=args.ignore_case)
    code = _batch_job(args, spec, top_k=args.top_k)
    if code is not None:
        return code
    files = _expand_inputs(args)
    predictor = Predictor.load(args.model, threshold=args.threshold, device=args.device, charset=args.charset, ignore_case=args.ignore_case)
    preds = predictor.predict_files(files, top_k=args.top_k, pages=True)
    save_dir = Path(args.save_input) if args.save_input else None
    if save_dir:
        save_dir.mkdir(parents=True, exist_ok=True)
    failed = blank = uncertain = 0
    for i, p in enumerate(preds):
        if save_dir and p.input is not None:
            page = f"_p{p.page}" if p.page else ""
            Image.fromarray(np.round(p.input * 255).astype(np.uint8)).save(save_dir / f"{i:04d}_{Path(str(p.file)).stem}{page}.png")
        failed += p.error is not None
        blank += p.blank
        uncertain += p.uncertain
        where = _where(p.file, p.page)
        if args.json:
            print(json.dumps(p.to_dict(), ensure_ascii=False))
        elif p.error:
            print(f"{where}: ERROR {p.error}")
        elif p.blank:
            print(f"{where}: no character (blank image)")
        else:
            alts = "  ".join(f"{s} {c:.2f}" for s, c in p.top_k[1:])
            flag = "  (uncertain)" if p.uncertain else ""
            print(f"{where}: {p.label}  {p.confidence:.2f}{flag}" + (f"   [{alts}]" if alts else ""))
    model_name = predictor.meta.get("pretrained") or args.model
    if args.annotate:
        from .annotate.predictions import annotate_predictions

        title = f"hcr predict: model {model_name}" + (f", {predictor.answer_filter.describe()}" if predictor.answer_filter.active else "")
        print(f"annotated: {annotate_predictions(preds, Path(args.annotate), title=title)}", file=sys.stderr)
    summary = f"{len(preds)} images: {len(preds) - failed - blank} read, {blank} blank, {uncertain} uncertain, {failed} failed (model {model_name})"
    print(summary, file=sys.stderr)
    return _exit_code(len(preds), failed)


def _where(file: str | None, page: int | None) -> str:
    """How the text output names a result: the file, and its page in a document."""
    return f"{file} page {page}" if page else str(file)


def _annotation_path(out_dir: Path, file: str | None, index: int, used: set[str], page: int | None = None) -> Path:
    """``out_dir/<image stem>.png`` (``<stem>_p<page>.png`` for a document's page),
    numbered when two images share a stem."""
    stem = (Path(file).stem if file else f"image{index}") + (f"_p{page}" if page else "")
    name = f"{stem}.png" if f"{stem}.png" not in used else f"{stem}_{index}.png"
    used.add(name)
    return out_dir / name


def cmd_read(args: argparse.Namespace) -> int:
    from .batch import ModelSpec
    from .reading import Reader

    spec = ModelSpec("read", args.model, engine=args.engine, charset=args.charset, ignore_case=args.ignore_case, threshold=args.threshold,
                     device=args.device, lexicon=args.lexicon, beam=args.beam, context=not args.no_context, keep_printed=args.keep_printed)
    code = _batch_job(args, spec, field=args.field, details=args.details)
    if code is not None:
        return code
    files = _expand_inputs(args)
    reader: Any
    if args.engine == "crnn":
        from .reading import CrnnReader

        reader = CrnnReader.load(args.model, charset=args.charset, ignore_case=args.ignore_case, threshold=args.threshold,
                                 device=args.device, lexicon=args.lexicon, beam_width=args.beam, keep_printed=args.keep_printed,
                                 context=not args.no_context)
        model_name = reader.recognizer.meta.get("pretrained") or args.model or "words"
    else:
        if args.beam:
            raise HcrError("--beam applies to --engine crnn")
        reader = Reader.load(args.model, charset=args.charset, ignore_case=args.ignore_case, threshold=args.threshold,
                             device=args.device, lexicon=args.lexicon, context=not args.no_context, keep_printed=args.keep_printed)
        model_name = reader.predictor.meta.get("pretrained") or args.model
    out_dir = Path(args.annotate) if args.annotate else None
    used: set[str] = set()
    failed = empty = chars = uncertain = count = 0
    results = (result for f in files for result in reader.read_pages(f, field=args.field))  # every page of a PDF or TIFF
    for i, result in enumerate(results):
        count += 1
        where = _where(result.file, result.page)
        failed += result.error is not None
        empty += result.error is None and not result.text
        chars += len(result.characters)
        uncertain += result.uncertain
        if args.json:
            print(json.dumps(result.to_dict(), ensure_ascii=False), flush=True)
        elif result.error:
            print(f"{where}: ERROR {result.error}")
        elif not result.text:
            print(f"{where}: " + ("(only printed text)" if result.printed_only else "(blank field)" if args.field else "(no writing found)"))
        elif len(result.lines) == 1:
            print(f"{where}: {result.text}")
        else:
            print(f"{where}:")
            for line in result.lines:
                print(f"  {line.text}")
        if args.details and not args.json:
            for c in result.characters:
                alts = "  ".join(f"{s} {p:.2f}" for s, p in c.top_k[1:4])
                flag = " (uncertain)" if c.uncertain else " (mark)" if c.mark else ""
                flag += " (printed)" if c.printed else ""
                print(f"    line {c.line + 1} word {c.word + 1}: {c.char!r} {c.confidence:.2f}{flag}  box {','.join(map(str, c.box))}"
                      + (f"  [{alts}]" if alts else ""))
        if out_dir is not None and result.error is None:
            # OpenCV only: works on an inference-only install
            from .annotate import annotate_reading

            path = annotate_reading(result, _annotation_path(out_dir, result.file, i, used, result.page))
            print(f"annotated: {path}", file=sys.stderr)
    print(f"{count} images: {count - failed - empty} with text, {empty} without, {failed} failed; "
          f"{chars} characters, {uncertain} uncertain (model {model_name})", file=sys.stderr)
    return _exit_code(count, failed)


def _exit_code(answered: int, failed: int) -> int:
    """0 when every input was read, 1 when some failed (each named on its own line), 2 when
    none could be used: a single bad file exits 2, like any other bad input."""
    if not failed:
        return 0
    return 2 if failed >= answered else 1


def cmd_app(args: argparse.Namespace) -> int:
    from .web import run_app

    run_app(args.host, args.port, model=args.model, max_upload_mb=args.max_upload_mb, headless=args.headless)


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from .web.api import ApiConfig, serve
    except ImportError as e:
        raise HcrError(f"hcr serve needs the web extra ({e.name} is missing): pip install 'hcr-toolkit[web]'") from None
    config = ApiConfig(models=args.model, max_upload_bytes=int(args.max_upload_mb * 2**20), timeout_s=args.timeout or None,
                       workers=args.workers, batch=not args.no_batch, cors_origins=args.cors_origin)
    serve(args.host, args.port, config, op_threads=args.op_threads or None, processes=args.processes, log_level=args.log_level)
    return 0


COMMANDS = {"data": cmd_data, "models": cmd_models, "train": cmd_train, "evaluate": cmd_evaluate, "calibrate": cmd_calibrate, "predict": cmd_predict, "read": cmd_read,
            "export": cmd_export, "import-keras": cmd_import_keras,
            "app": cmd_app, "serve": cmd_serve}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except HcrError as e:
        print(f"hcr: error: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:  # e.g. an inference-only install (docs/export.md) asked to train
        print(f"hcr: error: hcr {args.command} needs {e.name}, which is not installed (an inference-only install "
              "runs exported ONNX models with hcr predict); install hcr-toolkit with its dependencies", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hcr: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`hcr predict ... | head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes stdout at exit
        return 141


if __name__ == "__main__":
    sys.exit(main())
