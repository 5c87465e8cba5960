"""``python -m hybridsim`` is the ``hybridsim`` command."""

import sys

from hybridsim._src.cli.main import main

sys.exit(main())
