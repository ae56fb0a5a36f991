"""Every answer the shipped models give on the real captures and DHSD's held-out writers,
written to a JSON file, to show that a change (a refactor, a new runtime) leaves the answers
bit for bit as they were: run it on both commits and compare.

    HCR_DATA_DIR=../shared/data python tools/fingerprint.py before.json     # on the old commit
    HCR_DATA_DIR=../shared/data python tools/fingerprint.py after.json      # on the new one
    python tools/fingerprint.py --compare before.json after.json

Each answer keeps its label or text, its confidence to 6 decimals, the top 5 (characters)
and every character's box (fields). ``HCR_RUNTIME=pytorch`` or ``onnx`` picks the runtime.
Needs the data folder (``real/`` and ``words/dhsd``); asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path
from typing import Any

#: (folder under real/, model, charset) of the one-character sets.
CHARACTER_SETS = [
    ("sse-letters/cells", "chars", None),
    ("sse-letters/cells", "chars", "upper"),
    ("sse-letters/crops", "chars", "upper"),
    ("hwd1000", "digits", None),
    ("hwd1000", "chars", "digits"),
]


def _rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / "labels.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def fingerprint(data: Path) -> dict[str, list[Any]]:
    from hcr.data import get_line_source
    from hcr.reading import CrnnReader, LineRecognizer, Predictor, Reader
    from hcr.train.sequence import prepare_lines

    out: dict[str, list[Any]] = {}
    for sub, model, charset in CHARACTER_SETS:
        folder = data / "real" / sub
        p = Predictor.load(model, charset=charset)
        preds = p.predict_files([folder / r["file"] for r in _rows(folder)])
        out[f"{sub}|{model}|{charset}"] = [(x.label, round(float(x.confidence), 6), [(s, round(float(c), 6)) for s, c in x.top_k]) for x in preds]
    folder = data / "real" / "form-names-dev"
    files = [folder / r["file"] for r in _rows(folder)]
    for engine, reader in (("segment", Reader.load()), ("crnn", CrnnReader.load())):
        results = reader.read_files(files, field=True)
        out[f"form-names-dev|{engine}"] = [(r.text, [(c.char, round(float(c.confidence), 6), list(c.box)) for c in r.characters]) for r in results]
    rec = LineRecognizer.load("words")
    lines = prepare_lines(get_line_source("dhsd", data, seed=0).load("val"), rec.spec, progress=False, cache=False)
    out["dhsd-val|words"] = [rec.decode(lp).text for lp in rec.log_probs(lines.images)]
    return out


def compare(a: dict[str, list[Any]], b: dict[str, list[Any]]) -> int:
    """Print each set's count of differing answers; 0 when all are identical."""
    differ = 0
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if x is None or y is None:
            print(f"{key}: only in {'the second' if x is None else 'the first'} file")
            differ += 1
            continue
        n = sum(p != q for p, q in zip(x, y)) + abs(len(x) - len(y))
        differ += n
        print(f"{key}: {len(x)} answers, {'identical' if n == 0 else f'{n} differ'}")
    print(f"{sum(len(v) for v in a.values())} answers in all: {'identical' if differ == 0 else f'{differ} differ'}")
    return 1 if differ else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", nargs="?", type=Path, help="JSON file to write")
    ap.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"), help="compare two files written by this script")
    ap.add_argument("--data-dir", type=Path, default=os.environ.get("HCR_DATA_DIR"), help="data folder with real/ and words/dhsd (default: $HCR_DATA_DIR)")
    args = ap.parse_args()
    if args.compare:
        return compare(*(json.loads(p.read_text()) for p in args.compare))
    if args.out is None or args.data_dir is None:
        ap.error("give an output file and --data-dir (or HCR_DATA_DIR)")
    out = fingerprint(Path(args.data_dir))
    args.out.write_text(json.dumps(out))
    print({k: len(v) for k, v in out.items()}, file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
