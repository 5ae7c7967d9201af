"""``python -m manylm`` runs the command line."""

import sys

from manylm.cli.main import main

sys.exit(main())
