"""``python -m attack_workers``: see ``attack_workers.cli``."""

import sys

from attack_workers.cli import main

sys.exit(main())
