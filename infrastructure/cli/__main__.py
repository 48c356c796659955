"""`python -m infrastructure.cli`: the same as the `coursereg` console script."""

import sys

from infrastructure.cli.main import main

sys.exit(main())
