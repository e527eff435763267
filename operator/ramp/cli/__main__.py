"""``python -m ramp.cli``: the same as ``kubectl-ramp``."""

import sys

from ramp.cli.main import main

sys.exit(main())
