"""hcr: handwritten character recognition.

The data path, one hop per module: ``hcr.data`` (sources) -> ``hcr.augment`` (training
only) -> ``hcr.preprocess`` (the one path to model input) -> ``hcr.models`` (registry) ->
``hcr.checkpoint`` (one self-describing file) -> ``hcr.predictor`` -> ``hcr.cli``.

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
