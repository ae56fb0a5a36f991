"""hcr: handwritten character recognition.

The layers, lowest first (docs/contributing.md): ``hcr.preprocess`` and the pixel modules
(the one path to model input) -> ``hcr.data`` (sources) -> ``hcr.modelfile`` (what a model
file says about itself) -> ``hcr.models`` (networks) and ``hcr.checkpoint`` -> ``hcr.runtime``
(any format, one interface) -> ``hcr.reading`` (predictors and readers) -> ``hcr.train``,
``hcr.cli`` and ``hcr.web``.

Importing ``hcr`` before PyTorch sets ``GOMP_SPINCOUNT=20000`` unless the OpenMP wait
policy is already set (``GOMP_SPINCOUNT`` or ``OMP_WAIT_POLICY``): PyTorch's OpenMP threads
otherwise spin for about 3 ms whenever they wait for each other, and on a machine whose
cores other work also uses, a spinning thread holds a core that the thread it waits for
needs. With ``benchmarks/throughput.py`` on 2 cores shared with 2 busy processes,
``seed-cnn`` trained 2.5x faster this way, and as fast as before on idle cores. The
variable is read once, when PyTorch loads.
"""

import os as _os

#: Whether the OpenMP spin count was set here (not by the user).
OMP_POLICY_SET_BY_HCR = not ({"GOMP_SPINCOUNT", "OMP_WAIT_POLICY"} & set(_os.environ))
if OMP_POLICY_SET_BY_HCR:
    _os.environ["GOMP_SPINCOUNT"] = "20000"

__version__ = "0.1.0"

__all__ = ["__version__"]
