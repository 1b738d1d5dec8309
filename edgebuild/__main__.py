"""`python3 -m edgebuild`: the same command as the `edgebuild` console script."""

import sys

from .cli import main

sys.exit(main())
