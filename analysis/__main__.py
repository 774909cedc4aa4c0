"""python -m analysis --store STORE: the sweep's table, plots and report page (``analysis.summary``)."""

import sys

from analysis.summary import main

sys.exit(main())
