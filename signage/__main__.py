"""``python -m signage`` runs the ``signage`` command."""

import sys

from signage.cli import main

sys.exit(main())
