"""Work on large in-memory arrays shared with forked processes.

The analysis of a 12,500-host run handles [N, N] views of 156 million cells and row tables of 78
million rows. fork_map runs a function over parts of such work in forked child processes: they
inherit every array of this process (copy-on-write, nothing is pickled on the way in) and send
back only what the function returns (per-rank vectors, samples: small). shared_full makes an array
the children can write into (views filled by ranges of rows).

How many processes: workers(size) (the CPUs this process may use, at most 8, for work of at least
`min_size`; FABSCOPE_ANALYZE_WORKERS overrides: 1 keeps everything in this process).
"""

from __future__ import annotations

import mmap
import multiprocessing
import os
import pickle
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Sequence

import numpy as np

WORKERS_ENV = "FABSCOPE_ANALYZE_WORKERS"
MAX_WORKERS = 8


class WorkerError(Exception):
    """A forked worker died (killed, out of memory) or raised something unexpected."""


class WorkersSettingError(ValueError):
    """FABSCOPE_ANALYZE_WORKERS is not a whole number."""


def workers(size: int, min_size: int) -> int:
    """Processes for work of `size` units: the CPUs this process may use (at most MAX_WORKERS)
    when size >= min_size, else 1; FABSCOPE_ANALYZE_WORKERS sets the count for any size."""
    text = os.environ.get(WORKERS_ENV, "").strip()
    if text:
        try:
            return max(1, min(64, int(text)))
        except ValueError:
            raise WorkersSettingError(f"{WORKERS_ENV}={text!r}: expected a whole number of processes, e.g. 2") from None
    if size < min_size:
        return 1
    return max(1, min(MAX_WORKERS, len(os.sched_getaffinity(0))))


def shared_full(shape: tuple[int, ...], value: Any, dtype: Any) -> np.ndarray:
    """np.full in anonymous shared memory: what forked workers write into it, this process sees."""
    dt = np.dtype(dtype)
    count = int(np.prod(shape))
    buf = mmap.mmap(-1, max(1, count * dt.itemsize))
    out = np.frombuffer(buf, dtype=dt, count=count).reshape(shape)
    flat = out.reshape(-1)
    # Touching every page is most of the cost (a 625 MB view: ~0.7 s): by ranges, in parallel.
    map_rows(lambda a, b: flat[a:b].fill(value), count, 1)
    return out


def split(n: int, parts: int) -> list[tuple[int, int]]:
    """[0, n) as `parts` consecutive ranges as even as whole numbers allow (empty ones dropped)."""
    edges = [k * n // parts for k in range(parts + 1)]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]


# What the forked workers run: (function, its items). Inherited by fork, never pickled.
_JOB: tuple[Callable[[Any], Any], Sequence[Any]] | None = None


def _run_item(i: int) -> tuple[bool, Any]:
    assert _JOB is not None
    fn, items = _JOB
    try:
        return True, fn(items[i])
    except Exception as exc:  # noqa: BLE001 - sent back and raised again in the parent
        try:
            pickle.dumps(exc)
            return False, exc
        except Exception:  # noqa: BLE001
            return False, WorkerError(f"{type(exc).__name__}: {exc}")


def fork_map(fn: Callable[[Any], Any], items: Sequence[Any], processes: int) -> list[Any]:
    """[fn(item) for item in items], in up to `processes` forked processes (in this one when
    processes <= 1 or there is one item). An exception in a worker is raised here again."""
    global _JOB
    if processes <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    if _JOB is not None:  # a worker's own fork_map runs in the worker
        return [fn(item) for item in items]
    _JOB = (fn, items)
    try:
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=min(processes, len(items)), mp_context=ctx) as ex:
            results = list(ex.map(_run_item, range(len(items))))
    except BrokenProcessPool as exc:
        raise WorkerError(f"a worker process died ({exc}); run again with {WORKERS_ENV}=1") from None
    finally:
        _JOB = None
    out = []
    for ok, value in results:
        if not ok:
            raise value
        out.append(value)
    return out


# Row work on [N, N] matrices is split across processes from this many cells on.
MIN_CELLS = 1 << 25


def map_rows(fn: Callable[[int, int], Any], n_rows: int, cells_per_row: int, min_cells: int = MIN_CELLS) -> list[Any]:
    """[fn(r0, r1)] over consecutive ranges of [0, n_rows) that cover it, in order: one range per
    process (workers(n_rows x cells_per_row, min_cells)), or [fn(0, n_rows)] in this one."""
    w = min(workers(n_rows * max(1, cells_per_row), min_cells), max(1, n_rows))
    ranges = split(n_rows, w) or [(0, 0)]
    return fork_map(lambda r: fn(*r), ranges, w)
