"""Statistics over fabscope samples, following the definitions in results/SCHEMA.md.

Pure functions from numpy arrays to numpy arrays; no file access, no plotting.
"""

from __future__ import annotations

import numpy as np

# The statistics every summary holds, in the order SCHEMA.md lists them.
STAT_NAMES: tuple[str, ...] = ("min", "p50", "p90", "p99", "p999", "max", "mean", "stddev")

_PERCENTILES: dict[str, float] = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9}


def summary_stats(samples: np.ndarray) -> dict[str, np.ndarray]:
    """Statistics of each row of `samples` [S, n] as SCHEMA.md defines them.

    Percentiles use linear interpolation (numpy's default), `stddev` is the sample standard
    deviation (n - 1). Returns one array [S] per name in STAT_NAMES.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"samples must be 2-D [sizes, iterations], got shape {x.shape}")
    out: dict[str, np.ndarray] = {
        "min": x.min(axis=1),
        "max": x.max(axis=1),
        "mean": x.mean(axis=1),
        "stddev": x.std(axis=1, ddof=1) if x.shape[1] > 1 else np.full(x.shape[0], np.nan),
    }
    for name, q in _PERCENTILES.items():
        out[name] = np.percentile(x, q, axis=1, method="linear")
    return {name: out[name] for name in STAT_NAMES}


def percentile_band(samples: np.ndarray, low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
    """The `low` and `high` percentiles (0..100) of each row of `samples` [S, n], NaNs ignored."""
    x = np.asarray(samples, dtype=np.float64)
    lo = np.full(x.shape[0], np.nan)
    hi = np.full(x.shape[0], np.nan)
    rows = ~np.all(np.isnan(x), axis=1)
    if rows.any():
        lo[rows], hi[rows] = np.nanpercentile(x[rows], [low, high], axis=1, method="linear")
    return lo, hi


def offdiag(matrix: np.ndarray) -> np.ndarray:
    """The off-diagonal entries of a square matrix, flattened (NaNs kept)."""
    m = np.asarray(matrix)
    return m[~np.eye(m.shape[0], dtype=bool)]


def per_host_median(matrix: np.ndarray) -> np.ndarray:
    """Median over each host's measured pairs of a pairs matrix [N, N] -> [N] (NaN if none).

    For a directional matrix both directions count: row i (i sending) and column i (i receiving).
    """
    m = np.asarray(matrix, dtype=np.float64).copy()
    n = m.shape[0]
    np.fill_diagonal(m, np.nan)
    both = np.concatenate([m, m.T], axis=1)
    out = np.full(n, np.nan)
    rows = ~np.all(np.isnan(both), axis=1)
    if rows.any():
        out[rows] = np.nanmedian(both[rows], axis=1)
    return out


def nan_median(values: np.ndarray) -> float:
    """Median of the non-NaN values, NaN when there are none (and no warning)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    return float(np.median(v)) if v.size else float("nan")


def nan_min(values: np.ndarray) -> float:
    """Minimum of the non-NaN values, NaN when there are none (and no warning)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    return float(v.min()) if v.size else float("nan")


def nan_max(values: np.ndarray) -> float:
    """Maximum of the non-NaN values, NaN when there are none (and no warning)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    return float(v.max()) if v.size else float("nan")
