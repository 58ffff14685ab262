"""``python -m samstream.cli ...`` runs the command line (same as ``python -m samstream``)."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
