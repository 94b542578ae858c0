"""fabscope-analyze: reads fabscope result files (results/SCHEMA.md) and turns them into reports."""

import numpy as _np

__version__ = "0.1.0"

# numpy asks the kernel for transparent huge pages on every large array (madvise). With Debian's
# default /sys/kernel/mm/transparent_hugepage/defrag = madvise, each such page fault compacts memory
# first: a fresh 625 MB view of a 12,500-host run took 1.0 s to fill instead of 0.27 s, and every
# row block read from a large file paid the same. The analysis allocates many large arrays once
# and reads them in order: it does not need huge pages.
if hasattr(_np.core.multiarray, "_set_madvise_hugepage"):
    _np.core.multiarray._set_madvise_hugepage(False)
