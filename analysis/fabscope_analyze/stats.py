"""Statistics over fabscope samples, following the definitions in results/SCHEMA.md.

Pure functions from numpy arrays to numpy arrays; no file access, no plotting.
"""

from __future__ import annotations

import numpy as np

from fabscope_analyze import parallel

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


def nanmedian_rows(x: np.ndarray) -> np.ndarray:
    """Median of the non-NaN values of each row of a 2-D array (NaN for an all-NaN row).

    np.nanmedian runs a Python-level loop per row for wide rows; here rows are grouped by their
    count of NaNs (which sort last) and each group takes one np.partition, so a [10,000, 20,000]
    block costs about a second; a large array's rows are shared among processes (parallel.map_rows).
    """
    a = np.asarray(x)
    if a.ndim == 2 and a.shape[0] > 1:
        parts = parallel.map_rows(lambda r0, r1: _nanmedian_rows(a[r0:r1]), a.shape[0], a.shape[1])
        return np.concatenate(parts) if len(parts) > 1 else parts[0]
    return _nanmedian_rows(a)


def _nanmedian_rows(a: np.ndarray) -> np.ndarray:
    out = np.full(a.shape[0], np.nan)
    if a.size == 0:
        return out
    nans = np.isnan(a)
    missing = nans.sum(axis=1)
    for k in np.unique(missing):
        rows = np.flatnonzero(missing == k)
        m = a.shape[1] - int(k)
        if m <= 0:
            continue
        sub = a[rows]
        if k:
            sub = np.where(nans[rows], np.inf, sub)  # NaN -> +inf: still last, partition-safe
        lo, hi = (m - 1) // 2, m // 2
        part = np.partition(sub, (lo, hi) if lo != hi else lo, axis=1)
        out[rows] = 0.5 * (part[:, lo].astype(np.float64) + part[:, hi].astype(np.float64))
    return out


def nanpercentile_rows(x: np.ndarray, percentiles: tuple[float, ...]) -> np.ndarray:
    """np.nanpercentile(x, percentiles, axis=1).T (numpy's linear method) without its per-row
    Python loop for rows holding NaN: [R, len(percentiles)], NaN for a row without a value. One
    sort of the block; a million rows of 12 values take about a second."""
    a = np.asarray(x, dtype=np.float64)
    out = np.full((a.shape[0], len(percentiles)), np.nan)
    if a.size == 0:
        return out
    s = np.sort(a, axis=1)  # NaN last
    count = (~np.isnan(a)).sum(axis=1)
    rows = np.flatnonzero(count > 0)
    c = count[rows]
    for j, p in enumerate(percentiles):
        pos = (c - 1) * (p / 100.0)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, c - 1)
        t = pos - lo
        v0, v1 = s[rows, lo], s[rows, hi]
        with np.errstate(invalid="ignore"):
            out[rows, j] = np.where(t >= 0.5, v1 - (v1 - v0) * (1 - t), v0 + (v1 - v0) * t)
    return out


def block_reduce(matrix: np.ndarray, bounds: np.ndarray, order: np.ndarray | None = None,
                 worst: str = "min", rows: tuple[np.ndarray, np.ndarray] | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Aggregate an [N, N] matrix into [B, B] blocks: the worst value (`worst` = "min" or "max")
    and the median of each block, NaNs ignored (NaN for a block without values).

    `order` permutes ranks first (display order); block b holds ordered positions
    bounds[b]:bounds[b + 1]. `rows` = (row bounds, row order) aggregates only the columns and keeps
    a row per rank of those positions (drill-downs). Works one block row at a time, so memory
    stays near one block row of the matrix.
    """
    m = np.asarray(matrix)
    n = m.shape[0]
    idx = np.arange(n) if order is None else np.asarray(order)
    bounds = np.asarray(bounds)
    nb = len(bounds) - 1
    widths = np.diff(bounds)
    wmax = int(widths.max()) if nb else 0
    # column positions of every block, padded with n (a NaN column appended to each row block)
    pad = np.full((nb, wmax), n, dtype=np.int64)
    for c in range(nb):
        pad[c, : widths[c]] = idx[bounds[c]:bounds[c + 1]]
    reducer = np.fmin if worst == "min" else np.fmax
    if rows is None:
        row_groups = [idx[bounds[b]:bounds[b + 1]] for b in range(nb)]
    else:
        rb, ro = rows
        row_groups = [ro[rb[0]:rb[-1]][k:k + 1] for k in range(int(rb[-1] - rb[0]))]

    def reduce_groups(g0: int, g1: int) -> tuple[np.ndarray, np.ndarray]:
        worst_out = np.full((g1 - g0, nb), np.nan)
        median_out = np.full((g1 - g0, nb), np.nan)
        for b, r in enumerate(row_groups[g0:g1]):
            block = m[r]
            ext = np.concatenate([block, np.full((block.shape[0], 1), np.nan, dtype=block.dtype)], axis=1)
            cells = ext[:, pad].transpose(1, 0, 2).reshape(nb, -1)  # [nb, rows * wmax]
            with np.errstate(invalid="ignore"):
                worst_out[b] = reducer.reduce(cells, axis=1)
            median_out[b] = nanmedian_rows(cells)
        return worst_out, median_out

    cells_per_group = max(1, sum(len(r) for r in row_groups) // max(1, len(row_groups))) * n
    parts = parallel.map_rows(reduce_groups, len(row_groups), cells_per_group)
    return (np.concatenate([w for w, _ in parts]) if parts else np.full((0, nb), np.nan),
            np.concatenate([md for _, md in parts]) if parts else np.full((0, nb), np.nan))


def per_host_median_blocks(matrix: np.ndarray, max_peers: int | None = None, seed: int = 0) -> np.ndarray:
    """per_host_median for large matrices, row block by row block (no N x 2N copy). With
    `max_peers`, each host's median is over the same seeded random set of that many peers
    (both directions) instead of all of them."""
    m = np.asarray(matrix)
    n = m.shape[0]
    peers = np.arange(n)
    if max_peers is not None and max_peers < n:
        peers = np.sort(np.random.default_rng(seed).choice(n, max_peers, replace=False))
    cols = m[peers].T if peers.size < n else None  # [N, peers]: column i of the chosen rows
    out = np.full(n, np.nan)
    step = max(1, 4_000_000 // max(1, 2 * peers.size))
    for r0 in range(0, n, step):
        r1 = min(n, r0 + step)
        rows = np.arange(r0, r1)
        sent = m[r0:r1][:, peers] if cols is not None else m[r0:r1]
        received = cols[r0:r1] if cols is not None else m[:, r0:r1].T
        both = np.concatenate([sent, received], axis=1).astype(np.float64)
        self_cols = np.flatnonzero(np.isin(peers, rows))
        if self_cols.size:
            r_idx = peers[self_cols] - r0
            both[r_idx, self_cols] = np.nan
            both[r_idx, peers.size + self_cols] = np.nan
        out[r0:r1] = nanmedian_rows(both)
    return out


def offdiag_sample(matrix: np.ndarray, max_values: int = 1_000_000, seed: int = 0) -> tuple[np.ndarray, int]:
    """The finite off-diagonal values of a square matrix, all of them when there are at most
    `max_values` cells, else a seeded uniform random sample of that many cells; returns
    (values, number of off-diagonal cells)."""
    m = np.asarray(matrix)
    n = m.shape[0]
    total = n * (n - 1)
    if total <= max_values:
        v = m[~np.eye(n, dtype=bool)]
    else:
        rng = np.random.default_rng(seed)
        i = rng.integers(0, n, max_values)
        j = rng.integers(0, n - 1, max_values)
        j = np.where(j >= i, j + 1, j)
        v = m[i, j]
    v = np.asarray(v, dtype=np.float64)
    return v[np.isfinite(v)], total


def spread(samples: np.ndarray) -> np.ndarray:
    """Relative spread of each row of samples: (p90 - p10) / p50, NaNs ignored."""
    x = np.asarray(samples, dtype=np.float64)
    out = np.full(x.shape[0], np.nan)
    ok = np.sum(np.isfinite(x), axis=1) > 0
    if ok.any():
        p10, p50, p90 = np.nanpercentile(x[ok], [10, 50, 90], axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[ok] = (p90 - p10) / p50
    return out


def bh_adjust(p_values: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values), NaNs kept.

    scipy.stats.false_discovery_control does this from scipy 1.11; Debian 12 ships 1.10.
    """
    p = np.asarray(p_values, dtype=np.float64)
    q = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    m = int(ok.sum())
    if m == 0:
        return q
    v = p[ok]
    order = np.argsort(v)
    ranked = v[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(ranked, 1.0)
    q[ok] = out
    return q


def rest_rate(k_total: np.ndarray | float, n_total: np.ndarray | float, k: np.ndarray | float,
              n: np.ndarray | float) -> np.ndarray:
    """The rate of an event in the rest of a population (everything but the k of n of one member),
    Laplace-smoothed so that it is never 0 or 1: (k_total - k + 1) / (n_total - n + 2)."""
    return (np.asarray(k_total, dtype=np.float64) - k + 1) / (np.asarray(n_total, dtype=np.float64) - n + 2)


def binom_excess_p(k: np.ndarray, n: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """One-sided binomial p-values: P(X >= k) for X ~ Binomial(n, rate), elementwise; 1 where k <= 0
    or n <= 0 (nothing to test)."""
    from scipy import stats as sps  # scipy is only needed here; the rest of this module is numpy

    k, n, rate = np.broadcast_arrays(np.asarray(k, dtype=np.float64), np.asarray(n, dtype=np.float64),
                                     np.clip(np.asarray(rate, dtype=np.float64), 1e-300, 1.0))
    out = np.ones(k.shape)
    ok = (k > 0) & (n > 0)
    if ok.any():
        out[ok] = sps.binom.sf(k[ok] - 1, n[ok], rate[ok])
    return out
