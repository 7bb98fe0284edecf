"""Allow ``python -m palaute``, handy where the console script is not on PATH."""

import sys

from palaute.cli import main

sys.exit(main())
