"""``python -m attack_workers.lexicon build | report``: the counter-fitted word vectors' command line."""

import sys

from attack_workers.lexicon.vectors import main

sys.exit(main())
