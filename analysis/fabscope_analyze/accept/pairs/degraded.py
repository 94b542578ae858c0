"""Degraded hosts and leaves: flows that sit consistently below the rest of the fabric's, although
every limit passes them (a port trained down to 70%, a host whose latency is 1.3x everyone's).

Per rank, every measured pair (both directions for bandwidth; above PROFILE_PEERS ranks, the same
seeded random PROFILE_PEERS peers for every rank) as a ratio to the fabric: bandwidth / the
median of the fabric's clean flows, latency p50 / the median p50 of the clean pairs of its hop
class. A pair is "clean" for a rank when no named suspect explains it: the peer is not a suspect
host and, across leaves, neither leaf's uplinks are a suspect. Then:

* a leaf (three leaves or more) is degraded when the median of its ranks' cross-leaf bandwidth
  ratios is below attribution.degraded_fraction, at least two of its ranks are each below it (not
  one bad host), and it stands out from the other leaves (robust z: more than Z_MIN scaled median
  absolute deviations below their median);
* a rank is degraded in bandwidth when the median of its clean ratios is below degraded_fraction,
  at least EVERY_PAIR of them are below the midpoint between degraded_fraction and 1 (every pair,
  not a few slow peers) and it stands out from the other ranks the same way; in latency, the
  same with the ratios above 1 / degraded_fraction.

Those are warnings (severity "warning"): the verdict does not fail on them, the suspect list
carries them with the ratio."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fabscope_analyze import parallel, stats
from fabscope_analyze.accept.pairs.job import PairsJob

PROFILE_PEERS = 2000  # peers per rank in the profile above this many ranks (seeded sample)
EVERY_PAIR = 0.8  # share of a rank's clean pairs that must sit beyond the midpoint
Z_MIN = 5.0  # robust z (in scaled MADs) a degraded rank or leaf must stand out by
MIN_PEERS = 3  # clean pairs a rank needs to be judged
PROFILE_MIN_CELLS = 1 << 22  # profiles of at least this many cells are gathered in several processes
REF_VALUES = 2_000_000  # values each of the fabric's reference medians is taken from


@dataclass
class Profile:
    """Per-rank values over a set of peers (columns); judge() turns them into ratios to the fabric."""

    peers: np.ndarray  # int64 [M] the peer ranks of the columns
    bw_out: np.ndarray  # float32 [N, M] bw(rank -> peer) Gb/s, NaN unmeasured
    bw_in: np.ndarray  # float32 [N, M] bw(peer -> rank) Gb/s
    lat: np.ndarray  # float32 [N, M] latency p50 ns
    cls: np.ndarray  # int8 [N, M] hop class of the pair
    bw_ref_gbps: float = float("nan")  # set by judge(): the median of the clean flows


def profile(job: PairsJob) -> Profile | None:
    run, lay, n = job.run, job.layout, job.n
    if n < 4 or job.ok_code is None:
        return None
    peers = np.arange(n)
    if n > PROFILE_PEERS:
        peers = np.sort(np.random.default_rng(0).choice(n, PROFILE_PEERS, replace=False))
    status, bw_m, lat_m = run.status, run.bw_gbps, run.latency_ns_p50  # built here: the workers inherit them
    shape = (n, peers.size)
    cells = n * peers.size
    forked = parallel.workers(cells, PROFILE_MIN_CELLS) > 1  # map_rows' test: forked workers write the rows
    bw_out, bw_in, lat = ((parallel.shared_full if forked else np.full)(shape, np.nan, np.float32) for _ in range(3))

    def rows(r0: int, r1: int) -> None:
        """The profile's rows [r0, r1): measured (ok, > 0) values, NaN otherwise."""
        ok_out = status[r0:r1][:, peers] == job.ok_code
        ok_in = (status[peers, r0:r1] == job.ok_code).T
        with np.errstate(invalid="ignore"):
            for out, ok, v in ((bw_out, ok_out, bw_m[r0:r1][:, peers]), (bw_in, ok_in, bw_m[peers, r0:r1].T),
                               (lat, ok_out, lat_m[r0:r1][:, peers])):
                out[r0:r1] = np.where(ok & (v > 0), v, np.nan)

    parallel.map_rows(rows, n, peers.size, PROFILE_MIN_CELLS)
    cls = lay.pair_hop_class(np.arange(n)[:, None], peers[None, :])
    return Profile(peers=peers, bw_out=bw_out, bw_in=bw_in, lat=lat, cls=cls)


def _first_values(x: np.ndarray, mask: np.ndarray, limit: int) -> np.ndarray:
    """x[mask][:limit] of [N, M] arrays, reading only the rows needed."""
    per_row = np.cumsum(np.count_nonzero(mask, axis=1))
    stop = int(np.searchsorted(per_row, limit)) + 1
    return x[:stop][mask[:stop]][:limit]


def _normalise(prof: Profile, clean: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ratios to the fabric: bandwidth / the median of the clean flows, latency / the median of
    the clean pairs of its hop class (sets prof.bw_ref_gbps). Each median is of the first
    REF_VALUES clean values in row order (bandwidth: out, then in)."""
    first = _first_values(prof.bw_out, clean, REF_VALUES)
    if first.size < REF_VALUES:
        first = np.concatenate([first, _first_values(prof.bw_in, clean, REF_VALUES - first.size)])
    ref = stats.nan_median(first)
    prof.bw_ref_gbps = ref
    ok = np.isfinite(ref) and ref > 0
    bw_out = prof.bw_out / ref if ok else np.full(prof.bw_out.shape, np.nan, np.float32)
    bw_in = prof.bw_in / ref if ok else np.full(prof.bw_in.shape, np.nan, np.float32)
    refs = np.full(256, np.nan, np.float32)  # per hop class code (int8 read as uint8); NaN: not judged
    codes = prof.cls.view(np.uint8)
    for c in np.flatnonzero(np.bincount(codes.reshape(-1), minlength=256)):
        r = stats.nan_median(_first_values(prof.lat, clean & (codes == c), REF_VALUES))
        if np.isfinite(r) and r > 0:
            refs[c] = r
    lat = prof.lat / refs[codes]
    return bw_out, bw_in, lat


@dataclass
class Degraded:
    """What the profile says of each rank and leaf (NaN: not judged)."""

    bw_ratio: np.ndarray  # [N] median clean bandwidth ratio
    lat_ratio: np.ndarray  # [N] median clean latency ratio
    clean_pairs: np.ndarray  # [N]
    bw_low_share: np.ndarray  # [N] share of clean bandwidth ratios below the midpoint
    lat_high_share: np.ndarray  # [N]
    bw_rank: np.ndarray  # bool [N] degraded in bandwidth
    lat_rank: np.ndarray  # bool [N] degraded in latency
    leaf_ratio: np.ndarray  # [leaves] median cross-leaf bandwidth ratio of the leaf's ranks
    leaf: np.ndarray  # bool [leaves] degraded


def _robust_low(x: np.ndarray, value: np.ndarray) -> np.ndarray:
    """How many scaled MADs each value lies below the median of x (NaNs ignored)."""
    v = x[np.isfinite(x)]
    if v.size < 3:
        return np.full(np.shape(value), np.inf)
    med = float(np.median(v))
    mad = 1.4826 * float(np.median(np.abs(v - med)))
    mad = max(mad, 0.005 * abs(med), 1e-12)  # a perfectly even fabric: measure against 0.5%
    return (med - value) / mad


def judge(job: PairsJob, prof: Profile, suspect_ranks: np.ndarray, suspect_leaves: np.ndarray) -> Degraded:
    """Degraded ranks and leaves, with the pairs that named suspects explain set aside."""
    lay, n = job.layout, job.n
    frac = job.criteria.attribution.degraded_fraction
    mid = 0.5 * (1 + frac)
    peers = prof.peers
    rows = np.arange(n)
    valid = peers[None, :] != rows[:, None]
    valid &= lay.host_id[peers][None, :] != lay.host_id[:, None]
    valid &= ~suspect_ranks[peers][None, :]
    n_leaves = len(lay.leaf_names)
    leaf_ratio = np.full(n_leaves, np.nan)
    leaf_bad = np.zeros(n_leaves, dtype=bool)
    cross = np.zeros((n, peers.size), dtype=bool)
    if lay.has_leaves:
        lr, lc = lay.leaf[:, None], lay.leaf[peers][None, :]
        cross = (lr != lc) | (lr < 0) | (lc < 0)
        named = np.zeros(n_leaves + 1, dtype=bool)  # index -1 (no leaf): never named
        named[:n_leaves] = suspect_leaves
        through_named = cross & (named[lay.leaf][:, None] | named[lay.leaf[peers]][None, :])
        l_out, l_in, _ = _normalise(prof, valid & ~through_named)
        # leaves first: their ranks' cross-leaf flows (not through another named leaf's uplinks)
        if n_leaves >= 3:
            m = valid & cross & ~named[lay.leaf[peers]][None, :]
            vals = np.concatenate([np.where(m, l_out, np.nan), np.where(m, l_in, np.nan)], axis=1)
            del m
            judged = (lay.leaf >= 0) & ~named[lay.leaf]  # ranks on a leaf not named (yet)
            per_rank_cross = np.where(judged, stats.nanmedian_rows(vals), np.nan)
            for leaf in np.flatnonzero(~suspect_leaves):
                mine = np.flatnonzero(lay.leaf == leaf)
                if mine.size == 0:
                    continue
                finite = vals[mine]
                finite = finite[np.isfinite(finite)]
                if finite.size >= MIN_PEERS:
                    leaf_ratio[leaf] = float(np.median(finite))
            del vals
            z = _robust_low(leaf_ratio, leaf_ratio)
            for leaf in range(n_leaves):
                mine = lay.leaf == leaf
                low_ranks = int(np.count_nonzero(per_rank_cross[mine] < frac))
                leaf_bad[leaf] = bool(leaf_ratio[leaf] < frac and low_ranks >= 2 and z[leaf] > Z_MIN)
            named[:n_leaves] |= leaf_bad
            through_named = cross & (named[lay.leaf][:, None] | named[lay.leaf[peers]][None, :])
        valid &= ~through_named
    bw_out, bw_in, lat_r = _normalise(prof, valid)
    bw = np.concatenate([np.where(valid, bw_out, np.nan), np.where(valid, bw_in, np.nan)], axis=1)
    lat = np.where(valid, lat_r, np.nan)
    bw_ratio = stats.nanmedian_rows(bw)
    lat_ratio = stats.nanmedian_rows(lat)
    bw_count = np.isfinite(bw).sum(axis=1)
    lat_count = np.isfinite(lat).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        bw_low = (bw < mid).sum(axis=1) / np.maximum(bw_count, 1)
        lat_high = (lat > 1 / mid).sum(axis=1) / np.maximum(lat_count, 1)
        bw_z = _robust_low(bw_ratio, bw_ratio)
        lat_z = -_robust_low(lat_ratio, lat_ratio)
        bw_rank = (bw_ratio < frac) & (bw_low >= EVERY_PAIR) & (bw_z > Z_MIN) & (bw_count >= 2 * MIN_PEERS)
        lat_rank = (lat_ratio > 1 / frac) & (lat_high >= EVERY_PAIR) & (lat_z > Z_MIN) & (lat_count >= MIN_PEERS)
    return Degraded(bw_ratio=bw_ratio, lat_ratio=lat_ratio, clean_pairs=lat_count, bw_low_share=bw_low,
                    lat_high_share=lat_high, bw_rank=bw_rank & ~suspect_ranks, lat_rank=lat_rank & ~suspect_ranks,
                    leaf_ratio=leaf_ratio, leaf=leaf_bad)
