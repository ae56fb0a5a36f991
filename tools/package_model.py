"""Copy a trained model file into the package as a pretrained model and record it.

    python tools/package_model.py NAME runs/RUN/best.pt --config configs/RUN.yaml \
        --description "..." [--onnx]

Writes ``src/hcr/pretrained/NAME.pt`` (the same checkpoint, minus the trainer's local data
path) and updates ``manifest.json`` (SHA-256, size, recipe, card). Given the shipped file
itself (``src/hcr/pretrained/NAME.pt``), it leaves that file's bytes as they are, so adding a
runtime file does not change the model's hash. With ``--onnx`` it also writes the ONNX
runtime file ``NAME.onnx`` (``hcr export``, checked against the ``.pt`` on 512 inputs) that
inference runs with onnxruntime; without it, a runtime file left from an earlier version of
NAME is removed. The model card
``src/hcr/pretrained/NAME.md`` is written by hand from the evaluation reports; this script
only checks that it exists.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from hcr.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from hcr.pretrained import HERE, MANIFEST, sha256_file  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name")
    ap.add_argument("model_file")
    ap.add_argument("--config", required=True, help="the committed recipe that trained it")
    ap.add_argument("--description", required=True)
    ap.add_argument("--onnx", action="store_true", help="also ship NAME.onnx, the network for onnxruntime")
    ap.add_argument("--task", help="the manifest's task when it is not the model file's: printed (the reader's printed-or-handwritten classifier)")
    a = ap.parse_args()
    ckpt = load_checkpoint(a.model_file)  # refuses anything that is not a valid model file
    local_path = ckpt.config.get("data_dir") is not None
    ckpt.config["data_dir"] = None  # the trainer's local data folder means nothing to users
    if not (ROOT / a.config).is_file():
        raise SystemExit(f"{a.config}: recipe not found (it must be committed)")
    dest = HERE / f"{a.name}.pt"
    if local_path or Path(a.model_file).resolve() != dest.resolve():
        save_checkpoint(ckpt, dest)  # atomic; re-packaging the shipped file itself keeps its bytes
    raw = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {"models": []}
    entry = {"name": a.name, "file": dest.name, "sha256": sha256_file(dest), "bytes": dest.stat().st_size,
             "description": a.description, "config": a.config, "card": f"{a.name}.md", "task": a.task or ckpt.task}
    onnx = HERE / f"{a.name}.onnx"
    if a.onnx:
        from hcr.export import export_model

        res = export_model(dest, "onnx", onnx)  # refuses (writes nothing) unless it matches the .pt
        print(f"{onnx.name}: {res.parity}")
        entry["runtime"] = {"file": onnx.name, "sha256": sha256_file(onnx), "bytes": onnx.stat().st_size}
    else:
        onnx.unlink(missing_ok=True)
    raw["models"] = [m for m in raw["models"] if m["name"] != a.name] + [entry]
    raw["models"].sort(key=lambda m: m["name"])
    MANIFEST.write_text(json.dumps(raw, indent=2) + "\n")
    if not (HERE / entry["card"]).is_file():
        print(f"note: write the model card {HERE / entry['card']}")
    print(f"{a.name}: {dest} ({entry['bytes']:,} bytes, sha256 {entry['sha256'][:12]}...)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
