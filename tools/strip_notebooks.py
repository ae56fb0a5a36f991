"""Remove outputs and execution counts from notebooks, so they are committed clean.

    python tools/strip_notebooks.py              # every notebooks/*.ipynb, in place
    python tools/strip_notebooks.py --check      # exit 1 if any holds outputs
    python tools/strip_notebooks.py some.ipynb   # named files only

``tests/test_notebooks.py`` fails when a committed notebook holds outputs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def is_clean(nb: Any) -> bool:
    """Whether no code cell of ``nb`` has outputs or an execution count."""
    return all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")


def strip(nb: Any) -> Any:
    """``nb`` with every code cell's outputs and execution count removed (in place)."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
    return nb


def main(argv: list[str] | None = None) -> int:
    import nbformat

    ap = argparse.ArgumentParser(description="Remove outputs and execution counts from notebooks.")
    ap.add_argument("files", nargs="*", type=Path, help="notebooks (default: notebooks/*.ipynb)")
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if a notebook holds outputs")
    args = ap.parse_args(argv)
    files = args.files or sorted((ROOT / "notebooks").glob("*.ipynb"))
    dirty = []
    for path in files:
        nb = nbformat.read(path, as_version=4)
        if is_clean(nb):
            continue
        dirty.append(path)
        if not args.check:
            nbformat.write(strip(nb), path)
            print(f"stripped {path}")
    if args.check and dirty:
        print("notebooks with outputs: " + ", ".join(str(p) for p in dirty) + "; run  python tools/strip_notebooks.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
