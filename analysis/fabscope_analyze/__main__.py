"""`python -m fabscope_analyze ...` is the same as the `fabscope-analyze` command."""

import sys

from fabscope_analyze.cli import main

sys.exit(main())
