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

from .reading import *  # noqa: F403  (the names of hcr.annotate.reading, by its __all__)
from .reading import __all__  # noqa: F401
