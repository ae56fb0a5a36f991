"""Drawings of what hcr read, one module each:

- :mod:`hcr.annotate.reading`: a reading (``hcr read --annotate``, the web page's text view),
  OpenCV only, re-exported here;
- :mod:`hcr.annotate.predictions`: a sheet of single-character answers (``hcr predict
  --annotate``), drawn with matplotlib (import it where matplotlib is installed);
- :mod:`hcr.annotate.thumbs`: thumbnails of images and model inputs (OpenCV only);
- :mod:`hcr.annotate.figure`: the PNG output the drawings and :mod:`hcr.report` share.

Importing this package needs no matplotlib, so ``hcr read --annotate`` works on the
inference-only install.
"""

from .reading import (
    LINE_BOX_BGR,
    ReadingLike,
    ReadingPlan,
    annotate_reading,
    annotated_reading_bgr,
    label_layout,
    plan_reading,
    reading_png,
    rects_overlap,
)

__all__ = [
    "LINE_BOX_BGR",
    "ReadingLike",
    "ReadingPlan",
    "annotate_reading",
    "annotated_reading_bgr",
    "label_layout",
    "plan_reading",
    "reading_png",
    "rects_overlap",
]
