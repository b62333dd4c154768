"""``python -m sipha``: the ``sipha`` command."""

import sys

from sipha.cli import main

sys.exit(main())
