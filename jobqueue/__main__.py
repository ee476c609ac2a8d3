"""``python -m jobqueue``: the command line (jobqueue.cli)."""

import sys

from .cli import main

sys.exit(main())
