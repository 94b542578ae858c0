"""Noise: a failing flow whose raw samples (pair_samples) are too spread to call, with the
optimistic decile meeting the limit, or whose repeated measurements disagree, is inconclusive."""

from __future__ import annotations

import math

import numpy as np

from fabscope_analyze.accept.pairs.flows import BW_BITS, LAT50_BITS, LAT99_BITS, R_ERROR, Flows
from fabscope_analyze.accept.pairs.stalls import RowsOfPairs
from fabscope_analyze.criteria import PairsCriteria
from fabscope_analyze.reader import PairsRun
from fabscope_analyze.stats import nanpercentile_rows


def noise_keys(run: PairsRun, flows: Flows) -> np.ndarray | None:
    """The pair keys (min * N + max) whose rows judge_noise reads; None when it reads none."""
    candidates = np.flatnonzero((flows.reasons & R_ERROR) == 0)
    if candidates.size == 0 or run.n_pair_samples == 0:
        return None
    n = run.n_ranks
    s, d = flows.src[candidates].astype(np.int64), flows.dst[candidates].astype(np.int64)
    return np.unique(np.minimum(s, d) * n + np.maximum(s, d))


def judge_noise(run: PairsRun, crit: PairsCriteria, flows: Flows, found: RowsOfPairs | None = None) -> None:
    """Sets flows.inconclusive for the failing flows (errors aside) that the samples cannot call.
    found: every row of the candidates' pairs when already read (stalls.sweep_rows)."""
    candidates = np.flatnonzero((flows.reasons & R_ERROR) == 0)
    if candidates.size == 0 or run.n_pair_samples == 0:
        return
    n = run.n_ranks
    s, d = flows.src[candidates].astype(np.int64), flows.dst[candidates].astype(np.int64)
    fkey = np.minimum(s, d) * n + np.maximum(s, d)
    if found is not None:
        rows_of, keys_of = found.rows, found.keys
    else:
        rows_of, keys_of = _rows_of_pairs(run, np.unique(fkey))
    by_key = np.argsort(keys_of, kind="stable")
    order = rows_of[by_key]  # row indices, by pair key (rows of one pair in file order)
    sorted_keys = keys_of[by_key]
    left = np.searchsorted(sorted_keys, fkey, "left")
    right = np.searchsorted(sorted_keys, fkey, "right")
    have = right > left
    if not have.any():
        return
    candidates, left, right, s = candidates[have], left[have], right[have], s[have]
    if found is not None:
        rows_needed, samples = found.rows, found.samples  # every row of every candidate pair
    else:
        rows_needed = np.unique(np.concatenate([order[left], order[np.maximum(left, right - 1)]] +
                                               [order[a:b] for a, b in zip(left, right) if b - a > 1]))
        samples = run.load_pair_samples(rows_needed)
    single = right - left == 1
    # one measurement of the pair (the usual case): vectorised
    k1 = candidates[single]
    pos = np.searchsorted(rows_needed, order[left[single]])
    fwd = samples.pair[pos, 0] == s[single]
    bw = np.where(fwd[:, None], samples.bw_gbps_fwd[pos], samples.bw_gbps_rev[pos])
    flows.inconclusive[k1] = noisy_rows(crit, flows, k1, bw, samples.latency_ns[pos])
    # repeated measurements: one by one
    for flow, a, b, src in zip(candidates[~single], left[~single], right[~single], s[~single]):
        rows = np.searchsorted(rows_needed, order[a:b])
        fwd = samples.pair[rows, 0] == src
        bw_rows = np.where(fwd[:, None], samples.bw_gbps_fwd[rows], samples.bw_gbps_rev[rows])
        flows.inconclusive[flow] = noisy_repeats(crit, flows, int(flow), bw_rows, samples.latency_ns[rows])


def _rows_of_pairs(run: PairsRun, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, their pair keys) of the pairs whose keys are in `wanted` (sorted), found a block of
    rows at a time (never every row's key)."""
    n = run.n_ranks
    found_rows, found_keys = [], []
    for r0, pair in run.sample_pair_blocks():
        p = pair.astype(np.int64)
        keys = np.minimum(p[:, 0], p[:, 1]) * n + np.maximum(p[:, 0], p[:, 1])
        pos = np.minimum(np.searchsorted(wanted, keys), wanted.size - 1)
        hit = np.flatnonzero(wanted[pos] == keys)
        found_rows.append(r0 + hit)
        found_keys.append(keys[hit])
    rows_of = np.concatenate(found_rows) if found_rows else np.empty(0, np.int64)
    keys_of = np.concatenate(found_keys) if found_keys else np.empty(0, np.int64)
    return rows_of, keys_of


def noisy_rows(c: PairsCriteria, flows: Flows, k: np.ndarray, bw: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Inconclusive or not, for flows with one measurement each: [F] bool. Every metric the
    flow fails must be noisy: bandwidth / latency p50 too spread with the optimistic decile
    meeting the limit; latency p99 too spread."""
    reasons = flows.reasons[k]
    out = np.ones(k.size, dtype=bool)

    def quantiles(x: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        q = np.full((k.size, 3), np.nan)
        enough = np.isfinite(x).sum(axis=1) >= c.min_samples
        rows = rows & enough
        if rows.any():
            q[rows] = nanpercentile_rows(x[rows], (10, 50, 90))
        with np.errstate(divide="ignore", invalid="ignore"):
            spread = (q[:, 2] - q[:, 0]) / q[:, 1]
        return q, np.where(rows, spread, np.nan)

    bw_fails = ((reasons & BW_BITS) != 0) & np.isfinite(flows.bw_limit[k])
    if bw_fails.any():
        q, spread = quantiles(bw, bw_fails)
        with np.errstate(invalid="ignore"):
            noisy = (spread > c.max_bw_spread) & (q[:, 2] >= flows.bw_limit[k])
        out &= ~bw_fails | noisy
    lat50_fails = ((reasons & LAT50_BITS) != 0) & np.isfinite(flows.lat_limit[k])
    lat99_fails = (reasons & LAT99_BITS) != 0
    if (lat50_fails | lat99_fails).any():
        q, spread = quantiles(lat, lat50_fails | lat99_fails)
        with np.errstate(invalid="ignore"):
            wide = spread > c.max_lat_spread
            out &= ~lat50_fails | (wide & (q[:, 0] <= flows.lat_limit[k]))
        out &= ~lat99_fails | wide
    return out & (bw_fails | lat50_fails | lat99_fails)


def noisy_repeats(c: PairsCriteria, flows: Flows, k: int, bw_rows: np.ndarray, lat_rows: np.ndarray) -> bool:
    """Inconclusive or not, for a flow measured more than once (rows: one per measurement)."""
    reasons = int(flows.reasons[k])
    bw_lim, lat_lim = float(flows.bw_limit[k]), float(flows.lat_limit[k])
    verdicts = []  # per failing metric: inconclusive?
    if reasons & BW_BITS and math.isfinite(bw_lim):
        verdicts.extend(limit_inconclusive(bw_rows, bw_lim, c.max_bw_spread, c.min_samples, higher_is_better=True))
    if reasons & LAT99_BITS:
        x = lat_rows[np.isfinite(lat_rows)]
        if x.size >= c.min_samples:
            p10, p50, p90 = np.percentile(x, [10, 50, 90])
            verdicts.append(bool((p90 - p10) / p50 > c.max_lat_spread))
        else:
            verdicts.append(False)
    if reasons & LAT50_BITS and math.isfinite(lat_lim):
        verdicts.extend(limit_inconclusive(lat_rows, lat_lim, c.max_lat_spread, c.min_samples, higher_is_better=False))
    return bool(verdicts) and all(verdicts)


def limit_inconclusive(rows: np.ndarray, limit: float, max_spread: float, min_samples: int, *,
                       higher_is_better: bool) -> list[bool]:
    """Is a pair that failed a limit on this metric too noisy to call? Repeated measurements
    (rows) whose medians fall on both sides of the limit: yes. Otherwise the pooled samples: too
    few to judge: no; a 10..90 percentile spread wider than max_spread with the good tail
    reaching the limit: yes. Returns [] when nothing was measured."""
    x = rows[np.isfinite(rows)]
    if len(rows) > 1:  # repeated measurements that disagree
        med = np.array([np.nanmedian(r) for r in rows if np.isfinite(r).any()])
        good = med >= limit if higher_is_better else med <= limit
        if med.size > 1 and good.any() and (~good).any():
            return [True]
    if not x.size:
        return []
    if x.size < min_samples:
        return [False]
    p10, p50, p90 = np.percentile(x, [10, 50, 90])
    reaches = p90 >= limit if higher_is_better else p10 <= limit
    return [bool((p90 - p10) / p50 > max_spread and reaches)]
