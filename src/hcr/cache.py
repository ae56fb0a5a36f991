"""Arrays computed once and kept in the user cache (``~/.cache/hcr`` or ``$XDG_CACHE_HOME``).

Preprocessed data sets (:func:`hcr.train.classify.prepare`) and synthetic training inputs
(:mod:`hcr.synthetic`) are stored as ``.npz`` files named by a hash of everything they
depend on, the code that computes them included, so a change anywhere gives a new file.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Callable

import numpy as np
from platformdirs import user_cache_dir


def cache_file(kind: str, *parts: bytes | str, code: tuple[str | os.PathLike[str], ...] = ()) -> Path:
    """``<cache>/hcr/<kind>/<hash>.npz`` for the given inputs and source files."""
    h = hashlib.sha256(kind.encode())
    for p in parts:
        h.update(p if isinstance(p, bytes) else p.encode())
    for f in code:  # a change to the code that computes the arrays invalidates them
        h.update(Path(f).read_bytes())
    return Path(user_cache_dir("hcr")) / kind / f"{h.hexdigest()[:20]}.npz"


def cached_arrays(path: Path | None, make: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The arrays stored at ``path``, else ``make()``'s, written there atomically (a
    damaged file is recomputed). ``path=None`` computes without caching."""
    if path is not None and path.exists():
        try:
            with np.load(path) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
    arrays = make()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        np.savez(buf, **arrays)  # type: ignore[arg-type]  # numpy stubs type **kwds poorly
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(buf.getvalue())
        tmp.replace(path)
    return arrays


__all__ = ["cache_file", "cached_arrays"]
