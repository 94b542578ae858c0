"""Acceptance: a result file against a criteria file -> verdict, suspects, re-test plan.

How a pairs run is judged (configs/criteria/README.md says the same for users):

* Every measured pair is held against each rule that applies to it. Bandwidth rules judge each
  direction (bw_gbps[i, j], i sending); latency rules judge the pair (the matrices are symmetric).
  - absolute: bw >= min_gbps (only when bw_size_bytes >= min_size); latency p50 <= max_p50_us,
    p99 <= max_p99_us (only when lat_size_bytes <= max_size);
  - physics: bw >= min_link_fraction x link rate (the criteria's link_rate_gbps, else the lower
    of the two ranks' port rates recorded in /topology or /hosts/rdma_devices);
  - relative: bw >= min_fabric_fraction x the fabric's median best (median over ranks of each
    rank's best bandwidth, sending or receiving: robust to one freak fast pair), and latency p50 <=
    max_class_ratio x the best of its hop class (median over ranks of each rank's lowest p50 to a
    peer of that class);
  - per hop class: the latency limits of `hop_classes.<class>` for pairs of that class.
  - pairs that failed or timed out (status) fail, unless failed_pairs: ignore.
* Stalled windows (bandwidth.stalls, per host): a window below window_fraction x the best window
  of its flow in the same repeat stalled (a retransmission time-out); a host whose pairs hold more
  stalled windows than the rest of the fabric's rate explains (one-sided binomial, BH-adjusted over
  hosts) fails, and its flows with stalled windows join the failing flows.
* Noise: a pair that misses a limit is *inconclusive* instead of failed when its raw samples
  (pair_samples) are too spread ((p90 - p10) / p50 above max_bw_spread / max_lat_spread) and its
  optimistic decile still meets the limit (p90 of the windows for bandwidth, p10 of the
  iterations for latency), or when repeated measurements of it disagree. Pairs without raw
  samples are judged on their matrix value.
* Attribution (greedy, most failures explained first): candidates are ranks (a host, its NIC or
  its cable: every flow to or from it) and leaf-spine cables (every flow whose route crosses
  them, when layout.py knows the routes). A candidate qualifies when at least
  host_fail_fraction / link_fail_fraction of its judged flows fail and min_pairs fail; the one
  explaining most failing flows is taken, its flows are set aside, and the search repeats. Without
  routes but with leaves, failures left that concentrate on one leaf's cross-leaf traffic name
  "uplinks of leaf L". What is left are single pairs.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from scipy import stats as sps

from fabscope_analyze import stats
from fabscope_analyze.criteria import Criteria, PairsCriteria, SweepRule
from fabscope_analyze.layout import HOP_CLASSES, Layout, build_layout
from fabscope_analyze.reader import CollRun, CongestionRun, PairsRun, RunFile, ShiftRun, SweepRun, row_blocks
from fabscope_analyze.verdict import (FAIL, INCONCLUSIVE, PASS, SKIPPED, Check, RunVerdict, Suspect, Verdict, combine, fmt,
                                      round_sig, size_text)

# Why a directed flow fails: bits of `reasons`.
R_BW_ABS, R_BW_LINK, R_BW_REL = 1, 2, 4
R_LAT50_ABS, R_LAT99_ABS, R_LAT_RATIO, R_CLASS50, R_CLASS99 = 8, 16, 32, 64, 128
R_ERROR = 256
R_BW_STALL = 512  # a flow with stalled windows, of a host the stall test singled out
BW_BITS = R_BW_ABS | R_BW_LINK | R_BW_REL
LAT50_BITS = R_LAT50_ABS | R_LAT_RATIO | R_CLASS50
LAT99_BITS = R_LAT99_ABS | R_CLASS99
MAX_FLOWS = 5_000_000  # failing flows kept for attribution; beyond, the failure is fabric-wide
MAX_LISTED = 1000  # failing / inconclusive pairs listed in JSON


# --- pairs --------------------------------------------------------------------------------------


@dataclass
class _Flows:
    """Failing directed flows (i -> j) of a pairs run, with what failed and by how much."""

    src: np.ndarray
    dst: np.ndarray
    reasons: np.ndarray  # uint16 bits
    bw: np.ndarray  # float32 measured
    bw_limit: np.ndarray  # float32, the highest bandwidth limit of the flow (NaN: none)
    lat: np.ndarray
    lat_limit: np.ndarray  # float32, the lowest p50 latency limit (NaN: none)
    inconclusive: np.ndarray  # bool
    stalled: np.ndarray  # int32, its stalled bandwidth windows (counted for hosts the stall test flags)

    @property
    def severity(self) -> np.ndarray:
        """measured / limit for bandwidth, limit / measured for latency: < 1 fails; errors 0."""
        with np.errstate(divide="ignore", invalid="ignore"):
            b = np.where((self.reasons & BW_BITS) != 0, self.bw / self.bw_limit, np.inf)
            lt = np.where((self.reasons & LAT50_BITS) != 0, self.lat_limit / self.lat, np.inf)
        s = np.minimum(b, lt)
        s = np.where((self.reasons & R_ERROR) != 0, 0.0, s)
        return np.where(np.isfinite(s), s, 1.0)



def _limit_inconclusive(rows: np.ndarray, limit: float, max_spread: float, min_samples: int, *,
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

class _PairsJudge:
    def __init__(self, run: PairsRun, layout: Layout, crit: PairsCriteria, criteria: Criteria) -> None:
        self.run, self.layout, self.crit, self.criteria = run, layout, crit, criteria
        self.n = run.n_ranks
        self.name = run.info.name
        self.ok_code = run.status_code("ok")
        self.error_codes = [c for c, name in enumerate(run.status_names) if name not in ("not_run", "ok")]
        self.verdict = RunVerdict(run=self.name, benchmark="pairs", status=PASS)
        self.checks: dict[int, Check] = {}
        self.stall_flagged = np.zeros(self.n, dtype=bool)  # hosts the stall test singled out

    # references ---------------------------------------------------------------------------------
    def references(self) -> None:
        n, run, lay = self.n, self.run, self.layout
        best_bw = np.full(n, np.nan)
        col_best = np.full(n, -np.inf, dtype=np.float64)
        best_lat = np.full((len(HOP_CLASSES), n), np.inf)
        bw_m, lat_m, status = run.bw_gbps, run.latency_ns_p50, run.status
        present = [HOP_CLASSES.index(c) for c in lay.classes_present()]
        for r0, r1 in row_blocks(n, n):
            measured = status[r0:r1] == self.ok_code
            bw = np.where(measured, bw_m[r0:r1], np.nan)
            with np.errstate(invalid="ignore"):
                best_bw[r0:r1] = np.fmax.reduce(bw, axis=1)
                col_best = np.fmax(col_best, np.fmax.reduce(bw, axis=0))
            lat = np.where(measured, lat_m[r0:r1], np.inf)
            lat[np.isnan(lat)] = np.inf
            cls = lay.hop_class(np.arange(r0, r1))
            for c in present:
                best_lat[c, r0:r1] = np.where(cls == c, lat, np.inf).min(axis=1)
        col_best[~np.isfinite(col_best)] = np.nan
        host_best = np.fmax(best_bw, col_best)
        self.bw_ref = stats.nan_median(host_best)
        best_lat[~np.isfinite(best_lat)] = np.nan
        self.lat_ref = np.array([stats.nan_median(best_lat[c]) for c in range(len(HOP_CLASSES))])

    # limits -------------------------------------------------------------------------------------
    def limits(self) -> None:
        c, run, crit = self.crit, self.run, self.criteria
        notes = self.verdict.notes
        self.bw_abs = c.min_gbps if c.min_gbps is not None and run.bw_size_bytes >= c.bw_min_size else None
        if c.min_gbps is not None and self.bw_abs is None:
            notes.append(f"bandwidth >= {fmt(c.min_gbps)} Gb/s not judged: the run's {size_text(run.bw_size_bytes)} B "
                         f"messages are below the rule's min_size {size_text(c.bw_min_size)} B")
        self.bw_link_scalar: float | None = None
        self.bw_link_rate: np.ndarray | None = None
        if c.min_link_fraction is not None:
            if run.bw_size_bytes < c.bw_min_size:
                notes.append(f"link-rate rule not judged: messages {size_text(run.bw_size_bytes)} B below min_size "
                             f"{size_text(c.bw_min_size)} B")
            elif crit.link_rate_gbps is not None:
                self.bw_link_scalar = c.min_link_fraction * crit.link_rate_gbps
            elif np.isfinite(self.layout.rate_gbps).any():
                self.bw_link_rate = self.layout.rate_gbps.astype(np.float32)
            else:
                notes.append("link-rate rule not judged: no link rate in the criteria (link_rate_gbps) "
                             "or in the file (/topology, /hosts/rdma_devices)")
        self.bw_rel = (c.min_fabric_fraction * self.bw_ref
                       if c.min_fabric_fraction is not None and math.isfinite(self.bw_ref) else None)
        lat_applies = c.lat_max_size is None or run.lat_size_bytes <= c.lat_max_size
        if not lat_applies and (c.latency.max_p50_us or c.latency.max_p99_us):
            notes.append(f"absolute latency limits not judged: {size_text(run.lat_size_bytes)} B messages above "
                         f"max_size {size_text(c.lat_max_size or 0)} B")
        self.lat50_abs = c.latency.max_p50_us * 1e3 if c.latency.max_p50_us and lat_applies else None
        self.lat99_abs = c.latency.max_p99_us * 1e3 if c.latency.max_p99_us and lat_applies else None
        k = len(HOP_CLASSES)
        self.ratio_limit = np.full(k, np.nan)
        if c.max_class_ratio is not None:
            self.ratio_limit = c.max_class_ratio * self.lat_ref
        self.class50 = np.full(k, np.nan)
        self.class99 = np.full(k, np.nan)
        present = set(self.layout.classes_present())
        for name, lim in c.hop_classes.items():
            i = HOP_CLASSES.index(name)
            if name not in present:
                notes.append(f"hop class {name} limits not judged: no pair of that class in this fabric")
                continue
            if lim.max_p50_us:
                self.class50[i] = lim.max_p50_us * 1e3
            if lim.max_p99_us:
                self.class99[i] = lim.max_p99_us * 1e3
        self.need_p99 = self.lat99_abs is not None or np.isfinite(self.class99).any()

    def _check(self, bit: int, rule: str, title: str, unit: str) -> None:
        self.checks[bit] = Check(run=self.name, rule=rule, title=title, status=PASS, unit=unit)

    def make_checks(self) -> None:
        c = self.crit
        dp, pp = "directed pairs", "pairs"
        if self.bw_abs is not None:
            self._check(R_BW_ABS, "pairs.bandwidth.min_gbps", f"bandwidth >= {fmt(self.bw_abs)} Gb/s", dp)
        if self.bw_link_scalar is not None:
            self._check(R_BW_LINK, "pairs.bandwidth.min_link_fraction",
                        f"bandwidth >= {fmt(c.min_link_fraction * 100)}% of the {fmt(self.criteria.link_rate_gbps)} "
                        f"Gb/s link rate ({fmt(self.bw_link_scalar)} Gb/s)", dp)
        elif self.bw_link_rate is not None:
            self._check(R_BW_LINK, "pairs.bandwidth.min_link_fraction",
                        f"bandwidth >= {fmt(c.min_link_fraction * 100)}% of the pair's link rate "
                        f"(from {self.layout.rate_source})", dp)
        if self.bw_rel is not None:
            self._check(R_BW_REL, "pairs.bandwidth.min_fabric_fraction",
                        f"bandwidth >= {fmt(c.min_fabric_fraction * 100)}% of the fabric's median best "
                        f"{fmt(self.bw_ref)} Gb/s ({fmt(self.bw_rel)} Gb/s)", dp)
        if self.lat50_abs is not None:
            self._check(R_LAT50_ABS, "pairs.latency.max_p50_us", f"latency p50 <= {fmt(self.lat50_abs / 1e3)} us", pp)
        if self.lat99_abs is not None:
            self._check(R_LAT99_ABS, "pairs.latency.max_p99_us", f"latency p99 <= {fmt(self.lat99_abs / 1e3)} us", pp)
        if np.isfinite(self.ratio_limit).any():
            refs = ", ".join(f"{HOP_CLASSES[i]} {fmt(self.lat_ref[i] / 1e3)} us"
                             for i in range(len(HOP_CLASSES)) if math.isfinite(self.lat_ref[i]))
            self._check(R_LAT_RATIO, "pairs.latency.max_class_ratio",
                        f"latency p50 <= {fmt(c.max_class_ratio)} x the best of its hop class ({refs})", pp)
        if np.isfinite(self.class50).any():
            lims = ", ".join(f"{HOP_CLASSES[i]} {fmt(self.class50[i] / 1e3)} us" for i in range(len(HOP_CLASSES))
                             if math.isfinite(self.class50[i]))
            self._check(R_CLASS50, "pairs.hop_classes.max_p50_us", f"latency p50 per hop class <= {lims}", pp)
        if np.isfinite(self.class99).any():
            lims = ", ".join(f"{HOP_CLASSES[i]} {fmt(self.class99[i] / 1e3)} us" for i in range(len(HOP_CLASSES))
                             if math.isfinite(self.class99[i]))
            self._check(R_CLASS99, "pairs.hop_classes.max_p99_us", f"latency p99 per hop class <= {lims}", pp)
        if c.failed_pairs == "fail":
            self._check(R_ERROR, "pairs.status", "no pair failed or timed out", pp)

    # the pass over all cells ----------------------------------------------------------------------
    def scan(self) -> _Flows:
        n, run, lay = self.n, self.run, self.layout
        bw_m, lat_m, status = run.bw_gbps, run.latency_ns_p50, run.status
        lat99_m = run.latency_ns_p99 if self.need_p99 else None
        parts: list[tuple[np.ndarray, ...]] = []
        kept = 0
        self.overflow = False
        self.judged_out = np.zeros(n, dtype=np.int64)
        self.judged_in = np.zeros(n, dtype=np.int64)
        self.not_run = 0
        self.errors = 0
        n_cables = lay.n_cables
        self.cable_judged = np.zeros(n_cables, dtype=np.int64)
        self.same_leaf_judged = np.zeros(n, dtype=np.int64)  # flows to or from a rank within its leaf
        cols = np.arange(n)
        counts = {bit: [0, 0] for bit in self.checks}  # judged, failing (raw, before noise)
        for r0, r1 in row_blocks(n, n):
            rows = np.arange(r0, r1)
            st = status[r0:r1]
            offdiag = rows[:, None] != cols[None, :]
            upper = cols[None, :] > rows[:, None]
            ok = st == self.ok_code
            err = np.isin(st, self.error_codes) & offdiag
            self.not_run += int(np.count_nonzero((~ok & ~err & upper)))
            self.errors += int(np.count_nonzero(err & upper))
            judged = ok | err
            self.judged_out[r0:r1] += judged.sum(axis=1)
            self.judged_in += judged.sum(axis=0)
            if lay.has_leaves:
                same = judged & (lay.leaf[rows][:, None] == lay.leaf[None, :]) & (lay.leaf[rows][:, None] >= 0)
                self.same_leaf_judged[r0:r1] += same.sum(axis=1)
                self.same_leaf_judged += same.sum(axis=0)
            if n_cables:
                up = lay.leaf[rows][:, None].astype(np.int64) * lay.n_planes + lay.dest_plane[None, :]
                cross = (lay.leaf[rows][:, None] != lay.leaf[None, :]) & (lay.leaf[rows][:, None] >= 0) & \
                        (lay.leaf[None, :] >= 0) & (lay.dest_plane[None, :] >= 0) & judged
                self.cable_judged += np.bincount(up[cross], minlength=n_cables)
                down = lay.leaf.astype(np.int64) * lay.n_planes + lay.dest_plane
                col_counts = cross.sum(axis=0)
                has = (lay.leaf >= 0) & (lay.dest_plane >= 0)
                self.cable_judged += np.bincount(down[has], weights=col_counts[has], minlength=n_cables).astype(np.int64)
            bw = bw_m[r0:r1]
            lat = lat_m[r0:r1]
            bw_ok = ok & np.isfinite(bw)
            lat_ok = ok & np.isfinite(lat)
            reasons = np.zeros(st.shape, dtype=np.uint16)
            bw_limit = np.full(st.shape, -np.inf, dtype=np.float32)
            cls = lay.hop_class(rows)

            def rule(bit: int, judged_mask: np.ndarray, fail_mask: np.ndarray, per_pair: bool) -> None:
                if bit not in counts:
                    return
                scope = judged_mask & upper if per_pair else judged_mask
                counts[bit][0] += int(np.count_nonzero(scope))
                f = fail_mask & judged_mask
                counts[bit][1] += int(np.count_nonzero(f & upper if per_pair else f))
                reasons[f] |= np.uint16(bit)

            with np.errstate(invalid="ignore"):
                if self.bw_abs is not None:
                    rule(R_BW_ABS, bw_ok, bw < self.bw_abs, False)
                    np.maximum(bw_limit, np.float32(self.bw_abs), out=bw_limit)
                if self.bw_link_scalar is not None:
                    rule(R_BW_LINK, bw_ok, bw < self.bw_link_scalar, False)
                    np.maximum(bw_limit, np.float32(self.bw_link_scalar), out=bw_limit)
                elif self.bw_link_rate is not None:
                    rate = np.fmin(self.bw_link_rate[rows][:, None], self.bw_link_rate[None, :])
                    lim = (self.crit.min_link_fraction * rate).astype(np.float32)
                    rule(R_BW_LINK, bw_ok & np.isfinite(lim), bw < lim, False)
                    np.fmax(bw_limit, lim, out=bw_limit)
                if self.bw_rel is not None:
                    rule(R_BW_REL, bw_ok, bw < self.bw_rel, False)
                    np.maximum(bw_limit, np.float32(self.bw_rel), out=bw_limit)
                lat_limit = np.full(st.shape, np.inf, dtype=np.float32)
                if self.lat50_abs is not None:
                    rule(R_LAT50_ABS, lat_ok, lat > self.lat50_abs, True)
                    np.minimum(lat_limit, np.float32(self.lat50_abs), out=lat_limit)
                if R_LAT_RATIO in counts:
                    lim = self.ratio_limit.astype(np.float32)[cls]
                    rule(R_LAT_RATIO, lat_ok & np.isfinite(lim), lat > lim, True)
                    np.fmin(lat_limit, lim, out=lat_limit)
                if R_CLASS50 in counts:
                    lim = self.class50.astype(np.float32)[cls]
                    rule(R_CLASS50, lat_ok & np.isfinite(lim), lat > lim, True)
                    np.fmin(lat_limit, lim, out=lat_limit)
                if lat99_m is not None:
                    lat99 = lat99_m[r0:r1]
                    ok99 = ok & np.isfinite(lat99)
                    if self.lat99_abs is not None:
                        rule(R_LAT99_ABS, ok99, lat99 > self.lat99_abs, True)
                    if R_CLASS99 in counts:
                        lim = self.class99.astype(np.float32)[cls]
                        rule(R_CLASS99, ok99 & np.isfinite(lim), lat99 > lim, True)
                if R_ERROR in counts:
                    rule(R_ERROR, ok | err, err, True)
            fi, fj = np.nonzero(reasons)
            if fi.size and not self.overflow:
                if kept + fi.size > MAX_FLOWS:
                    self.overflow = True
                else:
                    kept += fi.size
                    parts.append((fi + r0, fj, reasons[fi, fj], bw[fi, fj].astype(np.float32),
                                  bw_limit[fi, fj], lat[fi, fj].astype(np.float32), lat_limit[fi, fj]))
        for bit, (judged, failing) in counts.items():
            self.checks[bit].judged, self.checks[bit].failing = judged, failing
        if parts:
            cat = [np.concatenate(x) for x in zip(*parts)]
        else:
            cat = [np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.uint16)] + \
                  [np.empty(0, np.float32)] * 4
        bw_limit = cat[4]
        bw_limit[~np.isfinite(bw_limit)] = np.nan
        lat_limit = cat[6]
        lat_limit[~np.isfinite(lat_limit)] = np.nan
        return _Flows(src=cat[0].astype(np.int32), dst=cat[1].astype(np.int32), reasons=cat[2], bw=cat[3],
                      bw_limit=bw_limit, lat=cat[5], lat_limit=lat_limit,
                      inconclusive=np.zeros(cat[0].size, dtype=bool), stalled=np.zeros(cat[0].size, dtype=np.int32))

    # noise --------------------------------------------------------------------------------------
    def judge_noise(self, flows: _Flows) -> None:
        run = self.run
        candidates = np.flatnonzero((flows.reasons & R_ERROR) == 0)
        if candidates.size == 0 or run.n_pair_samples == 0:
            return
        n = self.n
        index = run.sample_pair_index().astype(np.int64)
        keys = np.minimum(index[:, 0], index[:, 1]) * n + np.maximum(index[:, 0], index[:, 1])
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        s, d = flows.src[candidates].astype(np.int64), flows.dst[candidates].astype(np.int64)
        fkey = np.minimum(s, d) * n + np.maximum(s, d)
        left = np.searchsorted(sorted_keys, fkey, "left")
        right = np.searchsorted(sorted_keys, fkey, "right")
        have = right > left
        if not have.any():
            return
        candidates, left, right, s = candidates[have], left[have], right[have], s[have]
        rows_needed = np.unique(np.concatenate([order[left], order[np.maximum(left, right - 1)]] +
                                               [order[a:b] for a, b in zip(left, right) if b - a > 1]))
        samples = run.load_pair_samples(rows_needed)
        single = right - left == 1
        # one measurement of the pair (the usual case): vectorised
        k1 = candidates[single]
        pos = np.searchsorted(rows_needed, order[left[single]])
        fwd = samples.pair[pos, 0] == s[single]
        bw = np.where(fwd[:, None], samples.bw_gbps_fwd[pos], samples.bw_gbps_rev[pos])
        flows.inconclusive[k1] = self._noisy_rows(flows, k1, bw, samples.latency_ns[pos])
        # repeated measurements: one by one
        for flow, a, b, src in zip(candidates[~single], left[~single], right[~single], s[~single]):
            rows = np.searchsorted(rows_needed, order[a:b])
            fwd = samples.pair[rows, 0] == src
            bw_rows = np.where(fwd[:, None], samples.bw_gbps_fwd[rows], samples.bw_gbps_rev[rows])
            flows.inconclusive[flow] = self._noisy(flows, int(flow), bw_rows, samples.latency_ns[rows])

    def _noisy_rows(self, flows: _Flows, k: np.ndarray, bw: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Inconclusive or not, for flows with one measurement each: [F] bool. Every metric the
        flow fails must be noisy: bandwidth / latency p50 too spread with the optimistic decile
        meeting the limit; latency p99 too spread."""
        c = self.crit
        reasons = flows.reasons[k]
        out = np.ones(k.size, dtype=bool)

        def quantiles(x: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            q = np.full((k.size, 3), np.nan)
            enough = np.isfinite(x).sum(axis=1) >= c.min_samples
            rows = rows & enough
            if rows.any():
                q[rows] = np.nanpercentile(x[rows], [10, 50, 90], axis=1).T
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

    def _noisy(self, flows: _Flows, k: int, bw_rows: np.ndarray, lat_rows: np.ndarray) -> bool:
        c = self.crit
        reasons = int(flows.reasons[k])
        bw_lim, lat_lim = float(flows.bw_limit[k]), float(flows.lat_limit[k])
        verdicts = []  # per failing metric: inconclusive?
        if reasons & BW_BITS and math.isfinite(bw_lim):
            verdicts.extend(_limit_inconclusive(bw_rows, bw_lim, c.max_bw_spread, c.min_samples, higher_is_better=True))
        if reasons & LAT99_BITS:
            x = lat_rows[np.isfinite(lat_rows)]
            if x.size >= c.min_samples:
                p10, p50, p90 = np.percentile(x, [10, 50, 90])
                verdicts.append(bool((p90 - p10) / p50 > c.max_lat_spread))
            else:
                verdicts.append(False)
        if reasons & LAT50_BITS and math.isfinite(lat_lim):
            verdicts.extend(_limit_inconclusive(lat_rows, lat_lim, c.max_lat_spread, c.min_samples, higher_is_better=False))
        return bool(verdicts) and all(verdicts)

    # stalled windows -------------------------------------------------------------------------------
    def judge_stalls(self, flows: _Flows) -> tuple[Check, _Flows]:
        """The host-level stall test (criteria pairs.bandwidth.stalls, StallRule): counts, per host,
        the windows of its pairs (every repeat, both directions) and those that stalled; a host
        whose count is improbable at the rest of the fabric's rate fails, and its flows with
        stalled windows join the failing flows (R_BW_STALL) for attribution and listings: returns
        the check and the flows with them."""
        rule, n, lay = self.crit.stalls, self.n, self.layout
        assert rule is not None
        pct = fmt(rule.window_fraction * 100)
        check = Check(run=self.name, rule="pairs.bandwidth.stalls",
                      title=f"no host's bandwidth windows stall (below {pct}% of the flow's best window in the same "
                            f"repeat) more often than the rest of the fabric's (false-discovery rate "
                            f"{fmt(rule.significance)}, at least {rule.min_windows} windows)",
                      status=PASS, unit="hosts")
        if self.run.n_pair_samples == 0 or self.run.bw_windows < 2:
            check.status = SKIPPED
            check.detail = ("no window samples (pair_samples) in the file" if self.run.n_pair_samples == 0 else
                            "one bandwidth window per direction: nothing to compare a window with (--bw-iters 2+)")
            return check, flows
        counts = stall_counts(self.run, rule.window_fraction)
        windows, stalled = counts.windows, counts.stalled
        total_s, total_w = counts.total
        has = windows > 0
        p = np.full(n, np.nan)
        p[has] = sps.binom.sf(stalled[has] - 1, windows[has], counts.rest_rate()[has])
        q = stats.bh_adjust(p)
        with np.errstate(invalid="ignore"):
            flagged = has & (stalled >= rule.min_windows) & (q < rule.significance)
        self.stall_flagged = flagged
        self.stall_host = (windows, stalled, total_w - windows, total_s - stalled, q)
        check.judged, check.failing = int(has.sum()), int(flagged.sum())
        check.status = FAIL if flagged.any() else PASS if has.any() else SKIPPED
        check.detail = f"{total_s} of {total_w} windows stalled fabric-wide ({fmt(100 * total_s / max(1, total_w), 2)}%)"
        worst = np.flatnonzero(flagged)
        worst = worst[np.argsort(q[worst], kind="stable")]
        check.examples = [f"{lay.rank_name(int(h))}: {self._stall_text(int(h))}" for h in worst[:10]]
        if flagged.any():
            flows = self._with_stall_flows(flows, counts.src, counts.dst, counts.count)
        return check, flows

    def _with_stall_flows(self, flows: _Flows, src: np.ndarray, dst: np.ndarray, count: np.ndarray) -> _Flows:
        """flows plus the flagged hosts' flows with stalled windows (bit R_BW_STALL, count in `stalled`)."""
        n = self.n
        mine = self.stall_flagged[src] | self.stall_flagged[dst]
        uniq, inv = np.unique(src[mine].astype(np.int64) * n + dst[mine], return_inverse=True)
        per_flow = np.bincount(inv, weights=count[mine]).astype(np.int32)
        have = flows.src.astype(np.int64) * n + flows.dst
        where = np.searchsorted(uniq, have)
        hit = np.flatnonzero((where < uniq.size) & (uniq[np.minimum(where, uniq.size - 1)] == have))
        reasons, stalled = flows.reasons.copy(), flows.stalled.copy()
        reasons[hit] |= np.uint16(R_BW_STALL)
        stalled[hit] = per_flow[where[hit]]
        new = np.ones(uniq.size, dtype=bool)
        new[where[hit]] = False
        a, b = (uniq[new] // n).astype(np.int32), (uniq[new] % n).astype(np.int32)
        nan = np.full(a.size, np.nan, dtype=np.float32)
        return _Flows(
            src=np.concatenate([flows.src, a]), dst=np.concatenate([flows.dst, b]),
            reasons=np.concatenate([reasons, np.full(a.size, R_BW_STALL, dtype=np.uint16)]),
            bw=np.concatenate([flows.bw, self.run.bw_gbps[a, b].astype(np.float32)]),
            bw_limit=np.concatenate([flows.bw_limit, nan]),
            lat=np.concatenate([flows.lat, self.run.latency_ns_p50[a, b].astype(np.float32)]),
            lat_limit=np.concatenate([flows.lat_limit, nan]),
            inconclusive=np.concatenate([flows.inconclusive, np.zeros(a.size, dtype=bool)]),
            stalled=np.concatenate([stalled, per_flow[new]]))

    def _stall_text(self, h: int) -> str:
        windows, stalled, rest_w, rest_s, q = self.stall_host
        return (f"{int(stalled[h])} of the {int(windows[h])} bandwidth windows in its pairs stalled, the rest of "
                f"the fabric {int(rest_s[h])} of {int(rest_w[h])} (q = {fmt(float(q[h]), 2)})")

    # attribution ----------------------------------------------------------------------------------
    def attribute(self, flows: _Flows) -> None:
        lay, att = self.layout, self.criteria.attribution
        n = self.n
        decisive = ~flows.inconclusive
        src, dst = flows.src[decisive], flows.dst[decisive]
        reasons, severity = flows.reasons[decisive], flows.severity[decisive]
        stalled = flows.stalled[decisive]
        bw_ratio = np.where((reasons & BW_BITS) != 0, flows.bw[decisive] / flows.bw_limit[decisive], np.nan)
        lat_ratio = np.where((reasons & LAT50_BITS) != 0, flows.lat[decisive] / flows.lat_limit[decisive], np.nan)
        alive = np.ones(src.size, dtype=bool)
        judged_host = self.judged_out + self.judged_in
        up, down = lay.flow_cables(src, dst)
        same_leaf = (lay.leaf[src] == lay.leaf[dst]) & (lay.leaf[src] >= 0)
        out: list[Suspect] = []

        def explain(mask: np.ndarray) -> dict[str, Any]:
            sel = mask & alive
            k = int(sel.sum())
            r = reasons[sel]
            return {
                "bw_flows": int(np.count_nonzero(r & BW_BITS)),
                "latency_flows": int(np.count_nonzero(r & (LAT50_BITS | LAT99_BITS))),
                "error_flows": int(np.count_nonzero(r & R_ERROR)),
                "stall_flows": int(np.count_nonzero(r & R_BW_STALL)),
                "stalled_windows": int(stalled[sel].sum()),
                "bw_vs_limit_median": round_sig(stats.nan_median(bw_ratio[sel])),
                "latency_vs_limit_median": round_sig(stats.nan_median(lat_ratio[sel])),
                "flows": k,
            }

        def bw_lat_text(d: dict[str, Any]) -> str:
            parts = []
            if d["stall_flows"]:
                parts.append(f"bandwidth stalled ({d['stalled_windows']} windows in {d['stall_flows']} flows)")
            if d["bw_flows"]:
                parts.append(f"bandwidth at {fmt(d['bw_vs_limit_median'], 2)} x its limit (median)")
            if d["latency_flows"]:
                ratio = d["latency_vs_limit_median"]
                parts.append(f"latency at {fmt(ratio, 2)} x its limit" if ratio is not None
                             else "latency p99 above its limit")
            if d["error_flows"]:
                parts.append(f"{d['error_flows']} flows failed or timed out")
            return "; ".join(parts)

        # A candidate must stand out from the fabric's background failure rate: its share of
        # failing flows must be at least the configured fraction and at least halfway between the
        # background rate and 1 (with 40% of all flows failing, a host needs 70%).
        judged_total = max(1, int(self.judged_out.sum()))
        background = src.size / judged_total
        host_fraction = max(att.host_fail_fraction, background + 0.5 * (1 - background))
        link_fraction = max(att.link_fail_fraction, background + 0.5 * (1 - background))
        if background > 0.05:
            self.verdict.notes.append(f"{100 * background:.1f}% of all directed flows fail: suspects must fail at "
                                      f"least {100 * host_fraction:.0f}% of their flows to stand out")
        while len(out) < att.max_suspects and alive.any():
            s_alive, d_alive = src[alive], dst[alive]
            host_fail = np.bincount(s_alive, minlength=n) + np.bincount(d_alive, minlength=n)
            with np.errstate(divide="ignore", invalid="ignore"):
                host_ok = (host_fail >= att.min_pairs) & (host_fail >= host_fraction * judged_host)
            # a host the stall test singled out is a candidate on that evidence alone ...
            host_ok |= self.stall_flagged & (host_fail > 0)
            if lay.has_leaves:
                # ... but a host, its NIC or its cable slows its traffic within its leaf as well: a rank
                # whose failures are all beyond its leaf is a victim of the leaf's uplinks, not a suspect
                sl = alive & same_leaf
                sl_fail = np.bincount(src[sl], minlength=n) + np.bincount(dst[sl], minlength=n)
                host_ok &= (self.same_leaf_judged == 0) | (sl_fail >= 0.5 * host_fraction * self.same_leaf_judged)
            best_host = int(np.argmax(np.where(host_ok, host_fail, -1))) if host_ok.any() else -1
            best_cable, cable_count = -1, -1
            if lay.n_cables:
                u, dn = up[alive], down[alive]
                cable_fail = np.bincount(u[u >= 0], minlength=lay.n_cables) + \
                    np.bincount(dn[dn >= 0], minlength=lay.n_cables)
                cable_ok = (cable_fail >= att.min_pairs) & (cable_fail >= link_fraction * self.cable_judged)
                if cable_ok.any():
                    best_cable = int(np.argmax(np.where(cable_ok, cable_fail, -1)))
                    cable_count = int(cable_fail[best_cable])
            host_count = int(host_fail[best_host]) if best_host >= 0 else -1
            if best_host < 0 and best_cable < 0:
                break
            if cable_count > host_count:
                mask = (up == best_cable) | (down == best_cable)
                d = explain(mask)
                judged = int(self.cable_judged[best_cable])
                name = lay.cable_name(best_cable)
                hosts = np.unique(np.concatenate([src[mask & alive], dst[mask & alive]]))
                out.append(Suspect(
                    run=self.name, kind="leaf_spine_link", name=name, failing=d["flows"], judged=judged,
                    evidence=f"{d['flows']} of the {judged} directed flows routed over this cable fail, "
                             f"among {hosts.size} ranks; " + bw_lat_text(d),
                    details={**d, "ranks_involved": int(hosts.size), "cable": best_cable},
                ))
            else:
                h = best_host
                mask = (src == h) | (dst == h)
                d = explain(mask)
                sends = int(np.count_nonzero(mask & alive & (src == h)))
                receives = int(np.count_nonzero(mask & alive & (dst == h)))
                rate = float(lay.rate_gbps[h])
                fabric_rate = self.criteria.link_rate_gbps or stats.nan_median(lay.rate_gbps)
                degraded = math.isfinite(rate) and math.isfinite(fabric_rate) and rate < 0.99 * fabric_rate
                link_like = degraded or ((d["bw_flows"] + d["stall_flows"]) > 0 and d["latency_flows"] == 0
                                         and d["error_flows"] == 0)
                leaf = lay.leaf_name(h)
                host = lay.rank_name(h)
                kind = "host_link" if link_like else "host"
                name = (f"{host} port/cable" + (f" to {leaf}" if leaf else "")) if link_like else host
                why = []
                if degraded:
                    why.append(f"its port runs at {fmt(rate)} Gb/s, the fabric at {fmt(fabric_rate)} Gb/s")
                elif link_like:
                    why.append("bandwidth fails while latency is normal (a link, not the host, is the usual cause)")
                if self.stall_flagged[h]:
                    why.append(self._stall_text(h))
                out.append(Suspect(
                    run=self.name, kind=kind, name=name, failing=d["flows"], judged=int(judged_host[h]),
                    evidence=f"fails with {_peers(src, dst, mask & alive, h)} of {self.n - 1} peers "
                             f"({sends} flows sending, {receives} receiving); " + bw_lat_text(d)
                             + ("; " + "; ".join(why) if why else ""),
                    details={**d, "rank": h, "host": lay.hostnames[h], "leaf": leaf, "sending": sends,
                             "receiving": receives, "port_rate_gbps": round_sig(rate)},
                ))
            alive &= ~mask
        if lay.has_leaves and not lay.has_routes:
            self._leaf_uplinks(src, dst, alive, out, explain, bw_lat_text)
        # what is left: single pairs, worst first
        if alive.any() and len(out) < att.max_suspects:
            a, b = np.minimum(src[alive], dst[alive]), np.maximum(src[alive], dst[alive])
            key = a.astype(np.int64) * n + b
            sev = severity[alive]
            order = np.lexsort((sev, key))
            key_sorted = key[order]
            first = np.concatenate([[True], key_sorted[1:] != key_sorted[:-1]])
            uniq = order[first]  # the worst flow of each pair
            uniq = uniq[np.argsort(sev[uniq], kind="stable")]
            for k in uniq[: att.max_suspects - len(out)]:
                i, j = int(a[k]), int(b[k])
                mask = ((src == i) & (dst == j)) | ((src == j) & (dst == i))
                d = explain(mask)
                out.append(Suspect(
                    run=self.name, kind="pair", name=f"{lay.rank_name(i)} <-> {lay.rank_name(j)}",
                    failing=d["flows"], judged=2,
                    evidence="an isolated failing pair (the cable path between them, or either end); "
                             + bw_lat_text(d),
                    details={**d, "ranks": [i, j]}, retest=[(i, j)],
                ))
        # re-test pairs, once every suspect is known (peers are chosen among the others)
        fail_count = np.bincount(src, minlength=n) + np.bincount(dst, minlength=n)
        self._fail_count = fail_count
        self._suspect_ranks = np.array([x.details["rank"] for x in out if "rank" in x.details], dtype=np.int64)
        for x in out:
            if "rank" in x.details:
                x.retest = self._host_retest(int(x.details["rank"]))
            elif "cable" in x.details:
                x.retest = self._link_retest(int(x.details.pop("cable")))
            elif "leaf" in x.details:
                x.retest = self._leaf_retest(int(x.details.pop("leaf")))
        self.verdict.suspects = out

    def _leaf_uplinks(self, src, dst, alive, out, explain, bw_lat_text) -> None:
        lay, att = self.layout, self.criteria.attribution
        while len(out) < att.max_suspects:
            ls, ld = lay.leaf[src], lay.leaf[dst]
            cross = alive & (ls >= 0) & (ld >= 0) & (ls != ld)
            total = int(cross.sum())
            if total < att.min_pairs:
                return
            nl = len(lay.leaf_names)
            touch = np.bincount(ls[cross], minlength=nl) + np.bincount(ld[cross], minlength=nl)
            leaf = int(np.argmax(touch))
            mask = cross & ((ls == leaf) | (ld == leaf))
            on_leaf = np.unique(np.concatenate([src[mask][ls[mask] == leaf], dst[mask][ld[mask] == leaf]]))
            if touch[leaf] < max(att.min_pairs, 0.5 * total) or on_leaf.size < 2:
                return
            # Leaves that every one of these flows also touches (two leaves whose only failing flows
            # run between each other): their uplinks cannot be told apart, so name them together.
            twins = [int(o) for o in np.flatnonzero(touch == touch[leaf]) if o != leaf
                     and np.array_equal(mask, cross & ((ls == o) | (ld == o)))]
            names = [lay.leaf_names[x] for x in [leaf] + twins]
            d = explain(mask)
            why = ("" if not twins else
                   f"every one of these flows runs between {' and '.join(names)}, so which side's uplinks are at "
                   "fault cannot be told from these pairs; ")
            out.append(Suspect(
                run=self.name, kind="leaf_uplinks", name="uplinks of " + " or ".join(names),
                failing=d["flows"], judged=0,
                evidence=f"{d['flows']} of the {total} failing cross-leaf flows left involve this leaf, spread over "
                         f"{on_leaf.size} of its ranks (routes not recorded: which spine cable cannot be told); "
                         + why + bw_lat_text(d),
                details={**d, "ranks_on_leaf": int(on_leaf.size), "leaf": leaf, "leaves": [leaf] + twins},
            ))
            alive &= ~mask

    # re-test pairs ---------------------------------------------------------------------------------
    def _healthy_peers(self, exclude: np.ndarray) -> np.ndarray:
        """Peers for re-tests, in display order: not a suspect host, not sharing a host with the
        excluded ranks, and among the quarter of ranks with the fewest failing flows."""
        lay = self.layout
        bad = np.zeros(self.n, dtype=bool)
        bad[exclude] = True
        bad[self._suspect_ranks] = True
        bad |= np.isin(lay.host_id, lay.host_id[np.asarray(exclude, dtype=np.int64)])
        cand = lay.order[~bad[lay.order]]
        if cand.size == 0:
            return cand
        counts = self._fail_count[cand]
        return cand[counts <= np.percentile(counts, 25)]

    def _host_retest(self, h: int) -> list[tuple[int, int]]:
        k = self.criteria.retest.peers_per_host
        cand = self._healthy_peers(np.array([h]))
        if cand.size == 0:
            return []
        picks = cand[np.linspace(0, cand.size - 1, min(k, cand.size)).round().astype(int)]
        return [(h, int(p)) for p in picks]

    def _link_retest(self, cable: int) -> list[tuple[int, int]]:
        lay, k = self.layout, self.criteria.retest.pairs_per_link
        leaf, plane = divmod(cable, lay.n_planes)
        assert lay.dest_plane is not None
        ranks = lay.order[~np.isin(lay.order, self._suspect_ranks)]
        on = ranks[lay.leaf[ranks] == leaf]
        off = ranks[(lay.leaf[ranks] != leaf) & (lay.dest_plane[ranks] == plane) & (lay.leaf[ranks] >= 0)]
        pairs = [(int(a), int(b)) for a, b in zip(on[:k], off[np.linspace(0, max(0, off.size - 1), k).round()
                                                               .astype(int)] if off.size else [])]
        return pairs

    def _leaf_retest(self, leaf: int) -> list[tuple[int, int]]:
        lay, k = self.layout, self.criteria.retest.pairs_per_link
        ranks = lay.order[~np.isin(lay.order, self._suspect_ranks)]
        on = ranks[lay.leaf[ranks] == leaf]
        off = ranks[(lay.leaf[ranks] != leaf) & (lay.leaf[ranks] >= 0)]
        if not on.size or not off.size:
            return []
        picks = off[np.linspace(0, off.size - 1, k).round().astype(int)]
        return [(int(on[i % on.size]), int(p)) for i, p in enumerate(picks)]

    # all together ---------------------------------------------------------------------------------
    def judge(self) -> RunVerdict:
        v = self.verdict
        if self.ok_code is None:
            v.notes.append("status_names has no 'ok': nothing judged")
            v.status = INCONCLUSIVE
            return v
        self.references()
        self.limits()
        self.make_checks()
        flows = self.scan()
        self.judge_noise(flows)
        failing_rank = np.zeros(self.n, dtype=bool)
        failing_rank[flows.src] = True
        failing_rank[flows.dst] = True
        self._failing_rank = failing_rank
        # per-rule outcome after noise
        incon = flows.inconclusive
        upper = flows.src < flows.dst
        for bit, check in self.checks.items():
            has = (flows.reasons & bit) != 0
            scope = has if check.unit == "directed pairs" else has & upper
            check.inconclusive = int(np.count_nonzero(scope & incon))
            check.failing -= check.inconclusive if not self.overflow else 0
            check.status = FAIL if check.failing > 0 else INCONCLUSIVE if check.inconclusive else PASS
            if check.judged == 0:
                check.status = SKIPPED
                check.detail = "no pair to judge"
            check.examples = self._examples(flows, bit, check.unit == "directed pairs")
        if self.errors and self.run.errors is not None and R_ERROR in self.checks:
            self.checks[R_ERROR].examples = [
                f"{self.layout.rank_name(int(a))} <-> {self.layout.rank_name(int(b))}: {m}"
                for (a, b), m in zip(self.run.errors.pair.tolist()[:20], self.run.errors.message[:20])]
        checks = list(self.checks.values())
        if self.crit.stalls is not None:
            stall_check, flows = self.judge_stalls(flows)
            checks.append(stall_check)
        total = self.n * (self.n - 1) // 2
        run = self.run
        every_pair = run.schedule == "circle"
        cover = Check(run=self.name, rule="pairs.require_all_pairs",
                      title="every pair measured" if every_pair else f"every round of the {run.schedule} plan measured",
                      status=PASS, judged=total, failing=self.not_run if every_pair else 0, unit="pairs")
        short = run.rounds_done < run.rounds_total
        if every_pair and self.not_run or short:
            cover.detail = (f"{self.not_run} of {total} pairs not measured "
                            f"(rounds {run.rounds_done}/{run.rounds_total})")
            cover.status = FAIL if self.crit.require_all_pairs else SKIPPED
        elif not every_pair:
            cover.detail = f"the {run.schedule} plan leaves {self.not_run} of {total} pairs out by design"
        checks.append(cover)
        v.checks = checks
        if self.overflow:
            v.notes.append(f"more than {MAX_FLOWS} failing flows: a fabric-wide problem (or criteria that do not fit "
                           "this fabric); suspects are not named")
        else:
            self.attribute(flows)
        self._listings(flows)
        v.retest = self._retest_pairs(flows)
        v.status = combine(c.status for c in checks)
        return v

    def _examples(self, flows: _Flows, bit: int, directed: bool, limit: int = 10) -> list[str]:
        sel = np.flatnonzero(((flows.reasons & bit) != 0) & ~flows.inconclusive &
                             (True if directed else flows.src < flows.dst))
        if not sel.size:
            return []
        sel = sel[np.argsort(flows.severity[sel], kind="stable")[:limit]]
        out = []
        for k in sel:
            i, j = int(flows.src[k]), int(flows.dst[k])
            a, b = self.layout.rank_name(i), self.layout.rank_name(j)
            if bit & BW_BITS:
                out.append(f"{a} -> {b}: {fmt(float(flows.bw[k]))} Gb/s (limit {fmt(float(flows.bw_limit[k]))})")
            elif bit & LAT50_BITS:
                out.append(f"{a} <-> {b}: p50 {fmt(float(flows.lat[k]))} ns (limit {fmt(float(flows.lat_limit[k]))})")
            elif bit & LAT99_BITS:
                out.append(f"{a} <-> {b}: p99 above the limit (p50 {fmt(float(flows.lat[k]))} ns)")
            else:
                out.append(f"{a} <-> {b}: {self.run.status_name(int(self.run.status[i, j]))}")
        return out

    def _listings(self, flows: _Flows) -> None:
        lay = self.layout
        for target, mask in ((self.verdict.failing_pairs, ~flows.inconclusive),
                             (self.verdict.inconclusive_pairs, flows.inconclusive)):
            sel = np.flatnonzero(mask)
            sel = sel[np.argsort(flows.severity[sel], kind="stable")][:MAX_LISTED]
            for k in sel:
                i, j, r = int(flows.src[k]), int(flows.dst[k]), int(flows.reasons[k])
                target.append({
                    "from": lay.rank_name(i), "to": lay.rank_name(j), "ranks": [i, j],
                    "hop_class": HOP_CLASSES[int(lay.hop_class(np.array([i]), np.array([j]))[0, 0])],
                    "failed": _reason_names(r),
                    "bw_gbps": round_sig(float(flows.bw[k])), "bw_limit_gbps": round_sig(float(flows.bw_limit[k])),
                    "latency_ns_p50": round_sig(float(flows.lat[k])),
                    "latency_limit_ns": round_sig(float(flows.lat_limit[k])),
                    "stalled_windows": int(flows.stalled[k]),
                })

    def _retest_pairs(self, flows: _Flows) -> list[tuple[int, int]]:
        pairs: list[tuple[int, int]] = []
        for s in self.verdict.suspects:
            pairs.extend(s.retest)
        sel = np.flatnonzero(flows.inconclusive)
        sel = sel[np.argsort(flows.severity[sel], kind="stable")]
        pairs.extend((int(flows.src[k]), int(flows.dst[k])) for k in sel[: self.criteria.retest.max_pairs])
        return pairs


@dataclass
class StallCounts:
    """Stalled bandwidth windows of a pairs run (criteria.StallRule): per rank, the windows of the
    pairs it is in (both directions, every repeat; rows with at least two windows per direction)
    and how many stalled; per directed flow with stalls, how many (src, dst, count)."""

    windows: np.ndarray  # int64 [N]
    stalled: np.ndarray  # int64 [N]
    src: np.ndarray
    dst: np.ndarray
    count: np.ndarray

    @property
    def total(self) -> tuple[int, int]:
        """(stalled, windows) over the run, each window counted once."""
        return int(self.stalled.sum()) // 2, int(self.windows.sum()) // 2

    def rest_rate(self) -> np.ndarray:
        """Per rank, the stall rate of the rest of the fabric (the windows of the pairs without the
        rank), Laplace-smoothed so that it is never 0: (stalled + 1) / (windows + 2)."""
        total_s, total_w = self.total
        return (total_s - self.stalled + 1) / (total_w - self.windows + 2)


def stall_counts(run: PairsRun, window_fraction: float) -> StallCounts:
    """A window stalled when it ran below window_fraction x the best window of the same flow
    (direction) in the same pair_samples row (repeat); read in row blocks."""
    n = run.n_ranks
    windows = np.zeros(n, dtype=np.int64)
    stalled = np.zeros(n, dtype=np.int64)
    f_src, f_dst, f_count = [np.empty(0, np.int32)], [np.empty(0, np.int32)], [np.empty(0, np.int64)]
    if run.n_pair_samples:
        for pair, fwd, rev in run.window_blocks():
            for x, s, d in ((fwd, pair[:, 0], pair[:, 1]), (rev, pair[:, 1], pair[:, 0])):
                finite = np.isfinite(x)
                usable = finite.sum(axis=1) >= 2  # a window needs a sibling to stall against
                best = np.fmax.reduce(np.where(finite, x, -np.inf), axis=1)
                with np.errstate(invalid="ignore"):
                    k = (finite & (x < window_fraction * best[:, None])).sum(axis=1)
                w = np.where(usable, finite.sum(axis=1), 0)
                k = np.where(usable, k, 0)
                for ranks in (s, d):
                    windows += np.bincount(ranks, weights=w, minlength=n).astype(np.int64)
                    stalled += np.bincount(ranks, weights=k, minlength=n).astype(np.int64)
                some = k > 0
                f_src.append(s[some])
                f_dst.append(d[some])
                f_count.append(k[some])
    return StallCounts(windows, stalled, *(np.concatenate(x) for x in (f_src, f_dst, f_count)))


def _peers(src: np.ndarray, dst: np.ndarray, mask: np.ndarray, h: int) -> int:
    other = np.where(src[mask] == h, dst[mask], src[mask])
    return int(np.unique(other).size)


def _reason_names(bits: int) -> list[str]:
    names = {R_BW_ABS: "bandwidth.min_gbps", R_BW_LINK: "bandwidth.min_link_fraction",
             R_BW_REL: "bandwidth.min_fabric_fraction", R_LAT50_ABS: "latency.max_p50_us",
             R_LAT99_ABS: "latency.max_p99_us", R_LAT_RATIO: "latency.max_class_ratio",
             R_CLASS50: "hop_classes.max_p50_us", R_CLASS99: "hop_classes.max_p99_us", R_ERROR: "status",
             R_BW_STALL: "bandwidth.stalls"}
    return [name for bit, name in names.items() if bits & bit]


# --- sweeps and collectives -------------------------------------------------------------------------


def judge_sweep(run: SweepRun, rules: Sequence[SweepRule], layout: Layout, criteria: Criteria) -> RunVerdict:
    v = RunVerdict(run=run.info.name, benchmark=run.info.benchmark, status=PASS)
    sizes = run.size_bytes.tolist()
    directions = 2 if run.info.benchmark == "bibw" else 1
    for rule in rules:
        where = f"sweeps.{run.info.benchmark}[size {size_text(rule.size)}]"
        if rule.size not in sizes:
            v.checks.append(Check(run=v.run, rule=where, title=f"{size_text(rule.size)} B", status=SKIPPED,
                                  unit="sizes", detail=f"size {size_text(rule.size)} not measured in this run "
                                  f"(sizes {size_text(sizes[0]) if sizes else '-'}..{size_text(sizes[-1]) if sizes else '-'})"))
            continue
        k = sizes.index(rule.size)
        x = run.samples[k] if run.samples is not None else None
        wide = None
        if x is not None and x.size >= 3:
            p10, p50, p90 = np.percentile(x, [10, 50, 90])
            wide = (p10, p90, (p90 - p10) / p50)
        tests: list[tuple[str, float, float, bool]] = []  # (title, value, limit, higher_is_better)
        if rule.max_p50_us is not None:
            tests.append((f"latency p50 at {size_text(rule.size)} B <= {fmt(rule.max_p50_us)} us",
                          float(run.stat("p50")[k]) / 1e3, rule.max_p50_us, False))
        if rule.max_p99_us is not None:
            tests.append((f"latency p99 at {size_text(rule.size)} B <= {fmt(rule.max_p99_us)} us",
                          float(run.stat("p99")[k]) / 1e3, rule.max_p99_us, False))
        if rule.min_gbps is not None:
            tests.append((f"bandwidth p50 at {size_text(rule.size)} B >= {fmt(rule.min_gbps)} Gb/s",
                          float(run.stat("p50")[k]), rule.min_gbps, True))
        if rule.min_link_fraction is not None:
            rate = criteria.link_rate_gbps or float("nan")
            if not math.isfinite(rate) and layout.n >= 2 and np.isfinite(layout.rate_gbps[:2]).any():
                rate = float(np.nanmin(layout.rate_gbps[:2]))  # the lower port rate of ranks 0 and 1
            if math.isfinite(rate):
                lim = rule.min_link_fraction * rate * directions
                tests.append((f"bandwidth p50 at {size_text(rule.size)} B >= {fmt(rule.min_link_fraction * 100)}% "
                              f"of {fmt(rate * directions)} Gb/s", float(run.stat("p50")[k]), lim, True))
            else:
                v.checks.append(Check(run=v.run, rule=where + ".min_link_fraction", title="link-rate rule",
                                      status=SKIPPED, unit="sizes", detail="no link rate known"))
        noise = criteria.pairs or PairsCriteria()  # the noise limits of the pairs section, or the defaults
        for title, value, limit, higher in tests:
            failed = value < limit if higher else value > limit
            status = PASS
            detail = f"measured {fmt(value)} {'Gb/s' if higher else 'us'}"
            if failed:
                status = FAIL
                if wide is not None:  # samples too spread, and the optimistic decile meets the limit
                    optimistic = wide[1] if higher else wide[0] / 1e3
                    spread_max = noise.max_bw_spread if higher else noise.max_lat_spread
                    if wide[2] > spread_max and (optimistic >= limit if higher else optimistic <= limit):
                        status = INCONCLUSIVE
                        detail += f"; samples too spread ((p90-p10)/p50 = {fmt(wide[2], 2)})"
            v.checks.append(Check(run=v.run, rule=where, title=title, status=status, judged=1,
                                  failing=int(status == FAIL), inconclusive=int(status == INCONCLUSIVE),
                                  unit="sizes", detail=detail))
    v.status = combine(c.status for c in v.checks)
    return v


def judge_coll(run: CollRun, criteria: Criteria, layout: Layout) -> RunVerdict:
    v = RunVerdict(run=run.info.name, benchmark="coll", status=PASS)
    c = criteria.coll
    for name, op in run.ops.items():
        failed_code = op.status_code("failed")
        bad = np.zeros(op.status.shape, dtype=bool)
        if failed_code is not None:
            bad |= op.status == failed_code
        if op.check_errors is not None:
            bad |= op.check_errors > 0
        if c is None or c.check_errors == "fail":
            examples = [f"{int(run.node_counts[g])} nodes, {size_text(int(op.size_bytes[s]))} B"
                        + (f": {int(op.check_errors[g, s])} wrong elements" if op.check_errors is not None else "")
                        for g, s in zip(*np.nonzero(bad))][:20]
            v.checks.append(Check(
                run=v.run, rule=f"coll.{name}.check", title=f"{name}: every measurement ran and (with --check) "
                "gave correct results", status=FAIL if bad.any() else PASS, judged=int(op.status.size),
                failing=int(bad.sum()), unit="measurements", examples=examples,
                detail="" if run.check else "run without --check: only failures to run are judged"))
        if c is not None and c.min_scaling_efficiency is not None and op.has_bandwidth:
            eff = op.summary["scaling_efficiency"]
            sizes = op.size_bytes >= c.min_size
            scope = np.zeros(eff.shape, dtype=bool)
            scope[run.node_counts > 2] = True
            scope &= sizes[None, :] & np.isfinite(eff)
            low = scope & (eff < c.min_scaling_efficiency)
            examples = [f"{int(run.node_counts[g])} nodes, {size_text(int(op.size_bytes[s]))} B: {fmt(float(eff[g, s]), 3)}"
                        for g, s in zip(*np.nonzero(low))][:20]
            v.checks.append(Check(
                run=v.run, rule=f"coll.{name}.min_scaling_efficiency",
                title=f"{name}: scaling efficiency >= {fmt(c.min_scaling_efficiency)} (sizes >= {size_text(c.min_size)} B)",
                status=SKIPPED if not scope.any() else FAIL if low.any() else PASS,
                judged=int(scope.sum()), failing=int(low.sum()), unit="measurements", examples=examples))
    v.status = combine(ch.status for ch in v.checks)
    return v


# --- the whole file ------------------------------------------------------------------------------


def evaluate(run_file: RunFile, criteria: Criteria, layout: Layout | None = None) -> Verdict:
    layout = layout or build_layout(run_file)
    runs: list[RunVerdict] = []
    for run in run_file.runs:
        if isinstance(run, PairsRun) and criteria.pairs is not None:
            runs.append(_PairsJudge(run, layout, criteria.pairs, criteria).judge())
        elif isinstance(run, SweepRun) and criteria.sweeps.get(run.info.benchmark):
            runs.append(judge_sweep(run, criteria.sweeps[run.info.benchmark], layout, criteria))
        elif isinstance(run, CollRun):
            runs.append(judge_coll(run, criteria, layout))
        elif isinstance(run, CongestionRun) and criteria.congestion is not None:
            from fabscope_analyze.accept_load import judge_congestion

            runs.append(judge_congestion(run, criteria.congestion, layout, criteria))
        elif isinstance(run, ShiftRun) and criteria.shift is not None:
            from fabscope_analyze.accept_load import judge_shift

            runs.append(judge_shift(run, criteria.shift, layout, criteria))
    status = combine(r.status for r in runs)
    verdict = Verdict(file=str(run_file.path), criteria=criteria.name, criteria_path=str(criteria.path),
                      status=status, runs=runs, layout=layout.source)
    if not runs:
        verdict.status = INCONCLUSIVE
    return verdict


# --- re-test plan --------------------------------------------------------------------------------


def schedule_rounds(pairs: Sequence[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """Rounds of disjoint pairs (no name twice in a round), pairs in order, first fit."""
    rounds: list[list[tuple[str, str]]] = []
    busy: list[set[str]] = []
    for a, b in pairs:
        for r, used in enumerate(busy):
            if a not in used and b not in used:
                rounds[r].append((a, b))
                used.update((a, b))
                break
        else:
            rounds.append([(a, b)])
            busy.append({a, b})
    return rounds


def retest_plan(verdict: Verdict, run_file: RunFile, criteria: Criteria) -> dict[str, Any]:
    """The pairs to measure again, by host name, in rounds of disjoint pairs."""
    names = [h.hostname for h in run_file.hosts]
    seen: set[frozenset[str]] = set()
    pairs: list[tuple[str, str]] = []
    skipped_same_host = 0
    for rv in verdict.runs:
        for i, j in rv.retest:
            a, b = names[i], names[j]
            if a == b:
                skipped_same_host += 1
                continue
            key = frozenset((a, b))
            if key in seen:
                continue
            seen.add(key)
            pairs.append((a, b))
            if len(pairs) >= criteria.retest.max_pairs:
                break
    rounds = schedule_rounds(pairs)
    return {"pairs": len(pairs), "rounds": rounds, "skipped_same_host": skipped_same_host}


def write_retest_plan(path: Path, plan: dict[str, Any], verdict: Verdict) -> None:
    """YAML (`rounds: [[[a, b], ...], ...]`) for *.yaml / *.yml, else the `fabscope-plan 1` text
    that `fabscope pairs --plan-file` reads (topology/plan_file.hpp)."""
    head = ["re-test plan written by fabscope-analyze accept", f"result file: {verdict.file}",
            f"criteria: {verdict.criteria} ({verdict.criteria_path}); verdict {verdict.status}",
            f"{plan['pairs']} pairs in {len(plan['rounds'])} rounds; the pairs of a round run at the same time"]
    if plan["skipped_same_host"]:
        head.append(f"{plan['skipped_same_host']} pairs of ranks on one host left out (a plan names hosts)")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        doc = {"fabscope_retest": 1, "source": verdict.file, "criteria": verdict.criteria, "endpoints": "host",
               "rounds": [[list(p) for p in r] for r in plan["rounds"]]}
        text = "".join(f"# {line}\n" for line in head) + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None)
    else:
        lines = [f"# {line}" for line in head] + ["fabscope-plan 1", f"plan retest {verdict.criteria}",
                                                   "endpoints host"]
        for r, pairs in enumerate(plan["rounds"]):
            lines.append(f"round {r}")
            lines.extend(f"{a} {b}" for a, b in pairs)
        text = "\n".join(lines) + "\n"
    path.write_text(text, encoding="utf-8")


# --- outputs -------------------------------------------------------------------------------------


def to_json(verdict: Verdict) -> dict[str, Any]:
    def run_dict(rv: RunVerdict) -> dict[str, Any]:
        d = asdict(rv)
        d.pop("retest")
        for s in d["suspects"]:
            s.pop("retest")
        return d

    return {
        "fabscope_accept": 1,
        "file": verdict.file,
        "criteria": verdict.criteria,
        "criteria_path": verdict.criteria_path,
        "verdict": verdict.status,
        "layout": verdict.layout,
        "suspects": [{k: v for k, v in asdict(s).items() if k != "retest"} for s in verdict.suspects],
        "runs": [run_dict(r) for r in verdict.runs],
        "retest_plan": verdict.retest_plan,
    }


def write_json(path: Path, verdict: Verdict) -> None:
    path.write_text(json.dumps(to_json(verdict), indent=2, allow_nan=False) + "\n", encoding="utf-8")


def write_junit(path: Path, verdict: Verdict) -> None:
    root = ET.Element("testsuites", name=f"fabscope accept {verdict.criteria}")
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    for rv in verdict.runs:
        cases: list[ET.Element] = []
        for c in rv.checks:
            case = ET.Element("testcase", classname=f"{rv.benchmark}.{rv.run}", name=f"{c.rule}: {c.title}")
            text = "\n".join(([c.detail] if c.detail else []) + c.examples)
            if c.status == FAIL:
                el = ET.SubElement(case, "failure", message=f"{c.failing} of {c.judged} {c.unit} fail",
                                   type="criteria")
                el.text = text
            elif c.status in (INCONCLUSIVE, SKIPPED):
                msg = (f"{c.inconclusive} of {c.judged} {c.unit} inconclusive (too noisy): re-test"
                       if c.status == INCONCLUSIVE else (c.detail or "not judged"))
                ET.SubElement(case, "skipped", message=msg)
            cases.append(case)
        for s in rv.suspects:
            case = ET.Element("testcase", classname=f"{rv.benchmark}.{rv.run}.suspects", name=f"{s.kind} {s.name}")
            el = ET.SubElement(case, "failure", message=f"suspect {s.kind} {s.name}", type="suspect")
            el.text = s.evidence
            cases.append(case)
        suite = ET.SubElement(root, "testsuite", name=rv.run, tests=str(len(cases)),
                              failures=str(sum(1 for c in cases if c.find("failure") is not None)),
                              skipped=str(sum(1 for c in cases if c.find("skipped") is not None)), errors="0")
        suite.extend(cases)
        for k in totals:
            totals[k] += int(suite.get(k, "0"))
    root.set("tests", str(totals["tests"]))
    root.set("failures", str(totals["failures"]))
    root.set("skipped", str(totals["skipped"]))
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def summary_text(verdict: Verdict, max_suspects: int = 20) -> str:
    lines = [f"fabscope accept: {verdict.status.upper()}  {verdict.file} against {verdict.criteria} "
             f"({verdict.criteria_path})", f"layout: {verdict.layout}"]
    for rv in verdict.runs:
        lines.append("")
        lines.append(f"run {rv.run} ({rv.benchmark}): {rv.status.upper()}")
        for c in rv.checks:
            count = f"{c.failing} of {c.judged} {c.unit} fail" if c.judged else ""
            if c.inconclusive:
                count += f", {c.inconclusive} inconclusive"
            lines.append(f"  [{c.status.upper():>12}] {c.title}" + (f": {count}" if count else "")
                         + (f" ({c.detail})" if c.detail else ""))
            for e in c.examples[:3] if c.status in (FAIL, INCONCLUSIVE) else []:
                lines.append(f"                   e.g. {e}")
        for note in rv.notes:
            lines.append(f"  note: {note}")
    suspects = verdict.suspects
    if suspects:
        lines.append("")
        lines.append("suspects (most failures explained first):")
        for k, s in enumerate(suspects[:max_suspects], 1):
            lines.append(f"  {k}. {s.kind} {s.name}: {s.evidence}")
        if len(suspects) > max_suspects:
            lines.append(f"  ... {len(suspects) - max_suspects} more in the JSON output")
    if verdict.retest_plan is not None:
        plan = verdict.retest_plan
        lines.append("")
        lines.append(f"re-test plan: {plan.get('path', '(not written)')}: {plan['pairs']} pairs in "
                     f"{len(plan['rounds'])} rounds")
    return "\n".join(lines) + "\n"
