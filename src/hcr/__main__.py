"""``python -m hcr``: the ``hcr`` command (and what ``torchrun -m hcr train ...`` runs)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
