"""The PNG output shared by the drawings (:mod:`hcr.annotate.predictions`) and the reports
(:mod:`hcr.report`): one resolution, written atomically (:func:`hcr.modelfile.write_atomic`),
so a reader never sees a half-written image. Needs matplotlib (not in the inference-only set).
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from ..modelfile import write_atomic

#: Dots per inch of every PNG written from a matplotlib ``Figure``.
DPI = 120


def save_png(fig: Figure, path: Path) -> Path:
    """Write ``fig`` to ``path`` as PNG at :data:`DPI`, atomically; returns ``path``."""
    return write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=DPI))


def message_png(text: str, path: Path) -> Path:
    """A small image showing one line of text (e.g. 'no errors')."""
    fig = Figure(figsize=(3, 1))
    fig.text(0.5, 0.5, text, ha="center", va="center", fontsize=12, parse_math=False)
    return save_png(fig, path)


__all__ = ["DPI", "message_png", "save_png"]
