"""The one pass over every cell of a pairs run (row block by row block): which directed flows
fail which rule (flows.py bits), how many each check judged and failed, and the per-rank and
per-cable counts of judged flows that attribution needs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fabscope_analyze import parallel
from fabscope_analyze.accept.pairs.flows import (MAX_FLOWS, R_BW_ABS, R_BW_LINK, R_BW_REL, R_CLASS50, R_CLASS99,
                                                 R_ERROR, R_LAT50_ABS, R_LAT99_ABS, R_LAT_RATIO, Flows)
from fabscope_analyze.accept.pairs.job import PairsJob
from fabscope_analyze.accept.pairs.rules import Limits
from fabscope_analyze.reader import row_blocks
from fabscope_analyze.verdict import Check


@dataclass
class Scan:
    flows: Flows  # the failing flows (empty when overflow)
    overflow: bool  # more than MAX_FLOWS failing flows: not kept
    judged_out: np.ndarray  # int64 [N] judged flows each rank sends
    judged_in: np.ndarray  # int64 [N] judged flows each rank receives
    not_run: int  # pairs not measured
    errors: int  # pairs that failed or timed out
    cable_judged: np.ndarray  # int64 [cables] judged flows routed over each leaf-spine cable
    same_leaf_judged: np.ndarray  # int64 [N] judged flows to or from a rank within its leaf


@dataclass
class _Part:
    """What scan() gathers over some row blocks (merged in row order)."""

    counts: dict[int, list[int]]  # rule bit -> [judged, failing]
    judged_out: np.ndarray
    judged_in: np.ndarray
    same_leaf_judged: np.ndarray
    cable_judged: np.ndarray
    not_run: int = 0
    errors: int = 0
    kept: int = 0
    overflow: bool = False
    parts: list[tuple[np.ndarray, ...]] | None = None

    def merge(self, p: "_Part") -> None:
        """Adds the part of the row blocks that follow this one's."""
        for bit, (judged, failing) in p.counts.items():
            self.counts[bit][0] += judged
            self.counts[bit][1] += failing
        self.judged_out += p.judged_out
        self.judged_in += p.judged_in
        self.same_leaf_judged += p.same_leaf_judged
        self.cable_judged += p.cable_judged
        self.not_run += p.not_run
        self.errors += p.errors
        self.overflow |= p.overflow or self.kept + p.kept > MAX_FLOWS
        self.kept += p.kept
        self.parts = (self.parts or []) + (p.parts or [])


def scan(job: PairsJob, lim: Limits, checks: dict[int, Check]) -> Scan:
    """Sets each check's judged and failing counts (before noise) and returns the failing flows.
    A large matrix is scanned by ranges of row blocks in several processes (parallel.map_rows)."""
    n, run = job.n, job.run
    # the views, built here once: the workers inherit them
    _ = run.status, run.bw_gbps, run.latency_ns_p50, (run.latency_ns_p99 if lim.need_p99 else None)
    blocks = list(row_blocks(n, n))
    cells = (blocks[0][1] - blocks[0][0]) * n if blocks else 0
    done = parallel.map_rows(lambda b0, b1: _scan_blocks(job, lim, tuple(checks), blocks[b0:b1]), len(blocks), cells)
    total = done[0] if done else _scan_blocks(job, lim, tuple(checks), [])
    for p in done[1:]:
        total.merge(p)
    counts, parts, overflow = total.counts, ([] if total.overflow else total.parts or []), total.overflow
    judged_out, judged_in, not_run, errors = total.judged_out, total.judged_in, total.not_run, total.errors
    cable_judged, same_leaf_judged = total.cable_judged, total.same_leaf_judged
    for bit, (judged_count, failing) in counts.items():
        checks[bit].judged, checks[bit].failing = judged_count, failing
    if parts:
        cat = [np.concatenate(x) for x in zip(*parts)]
    else:
        cat = [np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.uint16)] + \
              [np.empty(0, np.float32)] * 4
    bw_limit = cat[4]
    bw_limit[~np.isfinite(bw_limit)] = np.nan
    lat_limit = cat[6]
    lat_limit[~np.isfinite(lat_limit)] = np.nan
    flows = Flows(src=cat[0].astype(np.int32), dst=cat[1].astype(np.int32), reasons=cat[2], bw=cat[3],
                  bw_limit=bw_limit, lat=cat[5], lat_limit=lat_limit,
                  inconclusive=np.zeros(cat[0].size, dtype=bool), stalled=np.zeros(cat[0].size, dtype=np.int32))
    return Scan(flows=flows, overflow=overflow, judged_out=judged_out, judged_in=judged_in, not_run=not_run,
                errors=errors, cable_judged=cable_judged, same_leaf_judged=same_leaf_judged)


def _scan_blocks(job: PairsJob, lim: Limits, bits: tuple[int, ...], blocks: list[tuple[int, int]]) -> _Part:
    """scan() over the given row blocks."""
    n, run, lay = job.n, job.run, job.layout
    bw_m, lat_m, status = run.bw_gbps, run.latency_ns_p50, run.status
    lat99_m = run.latency_ns_p99 if lim.need_p99 else None
    acc = _Part(counts={bit: [0, 0] for bit in bits}, judged_out=np.zeros(n, dtype=np.int64),
                judged_in=np.zeros(n, dtype=np.int64), same_leaf_judged=np.zeros(n, dtype=np.int64),
                cable_judged=np.zeros(lay.n_cables, dtype=np.int64), parts=[])
    counts, judged_out, judged_in = acc.counts, acc.judged_out, acc.judged_in
    same_leaf_judged, cable_judged, n_cables = acc.same_leaf_judged, acc.cable_judged, lay.n_cables
    cols = np.arange(n)
    for r0, r1 in blocks:
        rows = np.arange(r0, r1)
        st = status[r0:r1]
        offdiag = rows[:, None] != cols[None, :]
        upper = cols[None, :] > rows[:, None]
        ok = st == job.ok_code
        err = np.isin(st, job.error_codes) & offdiag
        acc.not_run += int(np.count_nonzero((~ok & ~err & upper)))
        acc.errors += int(np.count_nonzero(err & upper))
        judged = ok | err
        judged_out[r0:r1] += judged.sum(axis=1)
        judged_in += judged.sum(axis=0)
        if lay.has_leaves:
            same = judged & (lay.leaf[rows][:, None] == lay.leaf[None, :]) & (lay.leaf[rows][:, None] >= 0)
            same_leaf_judged[r0:r1] += same.sum(axis=1)
            same_leaf_judged += same.sum(axis=0)
        if n_cables:
            up = lay.leaf[rows][:, None].astype(np.int64) * lay.n_planes + lay.dest_plane[None, :]
            cross = (lay.leaf[rows][:, None] != lay.leaf[None, :]) & (lay.leaf[rows][:, None] >= 0) & \
                    (lay.leaf[None, :] >= 0) & (lay.dest_plane[None, :] >= 0) & judged
            cable_judged += np.bincount(up[cross], minlength=n_cables)
            down = lay.leaf.astype(np.int64) * lay.n_planes + lay.dest_plane
            col_counts = cross.sum(axis=0)
            has = (lay.leaf >= 0) & (lay.dest_plane >= 0)
            cable_judged += np.bincount(down[has], weights=col_counts[has], minlength=n_cables).astype(np.int64)
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
            if lim.bw_abs is not None:
                rule(R_BW_ABS, bw_ok, bw < lim.bw_abs, False)
                np.maximum(bw_limit, np.float32(lim.bw_abs), out=bw_limit)
            if lim.bw_link_scalar is not None:
                rule(R_BW_LINK, bw_ok, bw < lim.bw_link_scalar, False)
                np.maximum(bw_limit, np.float32(lim.bw_link_scalar), out=bw_limit)
            elif lim.bw_link_rate is not None:
                rate = np.fmin(lim.bw_link_rate[rows][:, None], lim.bw_link_rate[None, :])
                link = (job.crit.min_link_fraction * rate).astype(np.float32)
                rule(R_BW_LINK, bw_ok & np.isfinite(link), bw < link, False)
                np.fmax(bw_limit, link, out=bw_limit)
            if lim.bw_rel is not None:
                rule(R_BW_REL, bw_ok, bw < lim.bw_rel, False)
                np.maximum(bw_limit, np.float32(lim.bw_rel), out=bw_limit)
            lat_limit = np.full(st.shape, np.inf, dtype=np.float32)
            if lim.lat50_abs is not None:
                rule(R_LAT50_ABS, lat_ok, lat > lim.lat50_abs, True)
                np.minimum(lat_limit, np.float32(lim.lat50_abs), out=lat_limit)
            if R_LAT_RATIO in counts:
                per_class = lim.ratio_limit.astype(np.float32)[cls]
                rule(R_LAT_RATIO, lat_ok & np.isfinite(per_class), lat > per_class, True)
                np.fmin(lat_limit, per_class, out=lat_limit)
            if R_CLASS50 in counts:
                per_class = lim.class50.astype(np.float32)[cls]
                rule(R_CLASS50, lat_ok & np.isfinite(per_class), lat > per_class, True)
                np.fmin(lat_limit, per_class, out=lat_limit)
            if lat99_m is not None:
                lat99 = lat99_m[r0:r1]
                ok99 = ok & np.isfinite(lat99)
                if lim.lat99_abs is not None:
                    rule(R_LAT99_ABS, ok99, lat99 > lim.lat99_abs, True)
                if R_CLASS99 in counts:
                    per_class = lim.class99.astype(np.float32)[cls]
                    rule(R_CLASS99, ok99 & np.isfinite(per_class), lat99 > per_class, True)
            if R_ERROR in counts:
                rule(R_ERROR, ok | err, err, True)
        fi, fj = np.nonzero(reasons)
        if fi.size and not acc.overflow:
            if acc.kept + fi.size > MAX_FLOWS:
                acc.overflow = True
            else:
                acc.kept += fi.size
                acc.parts.append((fi + r0, fj, reasons[fi, fj], bw[fi, fj].astype(np.float32),
                              bw_limit[fi, fj], lat[fi, fj].astype(np.float32), lat_limit[fi, fj]))
    return acc
