"""How hcr reads real captures made by people outside the project, next to its benchmark sets.

Every figure names the folder (or split) it comes from:

- ``real/sse-letters/cells``: phone photos of paper cards, one capital per grid cell, cut
  with parts of the grid lines and card edges (15 classes); ``hcr predict`` with the default
  model, without a charset and with ``--charset upper``.
- ``real/sse-letters/crops``: the same writers' letters, binarised (white on black).
- ``real/hwd1000``: digits drawn on a 28 x 28 web canvas; ``chars`` with ``--charset digits``
  and the ``digits`` model.
- ``real/form-names-dev``: crops of scanned school forms around a handwritten name, with
  printed labels, neighbouring rows and comb spacing; ``hcr read --field`` with each engine.
  CER is case-insensitive (edit distance over the reference length, summed); a name is
  exact when it matches ignoring case and runs of spaces. Evaluation only: nothing in hcr
  is trained or tuned on it.
- ``words/dhsd`` (held-out writers 15, 20, 25, 36) with the ``words`` model, and EMNIST
  ByClass subset (dev-val) with ``chars``: the benchmark sets, so a gain on real captures
  is seen next to what it costs there.

Runs the paths users run (:class:`hcr.predictor.Predictor`, :class:`hcr.reader.Reader`,
:class:`hcr.reader.CrnnReader`). Asserts nothing.

    HCR_DATA_DIR=/path/to/data python benchmarks/real_captures.py [--json out.json] [--limit N]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np


def _rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / "labels.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _limit(rows: list[dict[str, str]], n: int) -> list[dict[str, str]]:
    return rows if not n or n >= len(rows) else [rows[i] for i in np.linspace(0, len(rows) - 1, n).astype(int)]


def characters(folder: Path, model: str, charset: str | None, limit: int) -> dict[str, Any]:
    """Accuracy of ``model`` on a folder of one-character images (``labels.csv``: file, label)."""
    from hcr.predictor import Predictor

    rows = _limit(_rows(folder), limit)
    p = Predictor.load(model, charset=charset)
    t0 = time.perf_counter()
    preds = p.predict_files([folder / r["file"] for r in rows])
    right = sum(pr.label == r["label"] for pr, r in zip(preds, rows))
    return {"n": len(rows), "accuracy": right / len(rows), "ms_per_image": 1000 * (time.perf_counter() - t0) / len(rows)}


def _norm(text: str) -> str:
    return " ".join(text.upper().split())


def fields(folder: Path, engine: str, limit: int, charset: str | None = None) -> dict[str, Any]:
    """``hcr read --field`` on a folder of field crops (``labels.csv``: file, text)."""
    from hcr.metrics import levenshtein
    from hcr.reader import CrnnReader, Reader

    rows = _limit(_rows(folder), limit)
    reader: Any = CrnnReader.load(charset=charset) if engine == "crnn" else Reader.load(charset=charset)
    t0 = time.perf_counter()
    results = reader.read_files([folder / r["file"] for r in rows], field=True)
    seconds = time.perf_counter() - t0
    refs = [_norm(r["text"]) for r in rows]
    hyps = [_norm(res.text) for res in results]
    edits = sum(levenshtein(r, h) for r, h in zip(refs, hyps))
    return {
        "n": len(rows), "cer_ci": edits / max(sum(len(r) for r in refs), 1),
        "exact": sum(r == h for r, h in zip(refs, hyps)) / len(rows),
        "exact_no_spaces": sum(r.replace(" ", "") == h.replace(" ", "") for r, h in zip(refs, hyps)) / len(rows),
        "blank": sum(res.blank for res in results) / len(rows), "ms_per_image": 1000 * seconds / len(rows),
        "examples": [(r, h) for r, h in zip(refs, hyps) if r != h][:12],
    }


def dhsd(data_dir: Path, model: str) -> dict[str, Any]:
    """CER of ``model`` on DHSD's held-out writers (the split the words recipes hold out)."""
    from hcr.data import get_line_source
    from hcr.metrics import error_rates
    from hcr.reading.line import LineRecognizer
    from hcr.train.sequence import prepare_lines

    rec = LineRecognizer.load(model)
    lines = prepare_lines(get_line_source("dhsd", data_dir, seed=0).load("val"), rec.spec, progress=False)
    hyps = [rec.decode(lp).text for lp in rec.log_probs(lines.images)]
    rates = error_rates(lines.texts, hyps)
    return {"n": len(lines), "cer": rates["cer"], "cer_ci": rates["cer_ci"], "exact": rates["line_acc"]}


def emnist(data_dir: Path, model: str) -> dict[str, Any]:
    """Accuracy of ``model`` on EMNIST ByClass subset (dev-val)."""
    from hcr.data import get_source
    from hcr.predictor import Predictor
    from hcr.preprocess import preprocess

    src = get_source("emnist-byclass", data_dir)
    s = src.load("dev-val")
    p = Predictor.load(model)
    preds = p.predict_inputs([preprocess(im, p.spec) for im in s.images])
    truth = [s.label_map.symbols[int(t)] for t in s.targets]
    right = sum(pr.label == t for pr, t in zip(preds, truth))
    folded = sum((pr.label or "").lower() == t.lower() for pr, t in zip(preds, truth))
    return {"n": len(truth), "accuracy": right / len(truth), "case_folded": folded / len(truth)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=os.environ.get("HCR_DATA_DIR"), help="data folder holding real/, words/, emnist/ (default: $HCR_DATA_DIR)")
    ap.add_argument("--limit", type=int, default=0, help="at most this many images per real folder, evenly spread (default: all)")
    ap.add_argument("--skip-benchmark-sets", action="store_true", help="leave out DHSD and EMNIST (real folders only)")
    ap.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    a = ap.parse_args(argv)
    if not a.data_dir or not (Path(a.data_dir) / "real").is_dir():
        print("real captures not found: point --data-dir or HCR_DATA_DIR at the folder holding real/", file=sys.stderr)
        return 2
    data, real = Path(a.data_dir), Path(a.data_dir) / "real"
    rows: list[tuple[str, str, str, dict[str, Any]]] = []

    def run(folder: str, what: str, how: str, fn: Callable[[], dict[str, Any]]) -> None:
        t0 = time.perf_counter()
        res = fn()
        rows.append((folder, what, how, res))
        figure = ", ".join(f"{k} {100 * v:.2f}%" if isinstance(v, float) and k != "ms_per_image" else f"{k} {v}" for k, v in res.items() if k not in ("examples",))
        print(f"{folder:28s} {what:32s} {how:34s} {figure}  ({time.perf_counter() - t0:.0f} s)", flush=True)

    cells, crops = real / "sse-letters" / "cells", real / "sse-letters" / "crops"
    for folder, name in ((cells, "real/sse-letters/cells"), (crops, "real/sse-letters/crops")):
        run(name, "capitals, accuracy", "chars", lambda f=folder: characters(f, "chars", None, a.limit))
        run(name, "capitals, accuracy", "chars --charset upper", lambda f=folder: characters(f, "chars", "upper", a.limit))
    hwd = real / "hwd1000"
    run("real/hwd1000", "digits, accuracy", "chars", lambda: characters(hwd, "chars", None, a.limit))
    run("real/hwd1000", "digits, accuracy", "chars --charset digits", lambda: characters(hwd, "chars", "digits", a.limit))
    run("real/hwd1000", "digits, accuracy", "digits", lambda: characters(hwd, "digits", None, a.limit))
    forms = real / "form-names-dev"
    for engine in ("segment", "crnn"):
        run("real/form-names-dev", "names, CER (ci) and exact", f"read --field --engine {engine}", lambda e=engine: fields(forms, e, a.limit))
    if not a.skip_benchmark_sets:
        run("words/dhsd (held-out writers)", "words, CER", "words (read --engine crnn)", lambda: dhsd(data, "words"))
        run("emnist (dev-val)", "characters, accuracy", "chars", lambda: emnist(data, "chars"))
    print()
    print("| folder | what | how | n | figure |")
    print("|---|---|---|---:|---|")
    for folder, what, how, res in rows:
        if "accuracy" in res:
            figure = f"**{100 * res['accuracy']:.2f}%**" + (f" ({100 * res['case_folded']:.2f}% case folded)" if "case_folded" in res else "")
        elif "exact" in res and "exact_no_spaces" in res:
            figure = f"CER **{100 * res['cer_ci']:.2f}%**, exact **{100 * res['exact']:.2f}%** ({100 * res['exact_no_spaces']:.2f}% ignoring spaces), blank {100 * res['blank']:.1f}%"
        else:
            figure = f"CER **{100 * res['cer']:.2f}%** ({100 * res['cer_ci']:.2f}% ci), exact {100 * res['exact']:.2f}%"
        print(f"| `{folder}` | {what} | `{how}` | {res['n']:,} | {figure} |")
    for folder, what, how, res in rows:
        for ref, hyp in res.get("examples", [])[:8]:
            print(f"  {folder} {how}: {ref!r} -> {hyp!r}")
    if a.json:
        a.json.write_text(json.dumps([{"folder": f, "what": w, "how": h, **r} for f, w, h, r in rows], indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
