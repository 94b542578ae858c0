"""Comparison of two result files: BASE (before, or configuration A) and NEW (after, or B).

What is matched: runs by benchmark and name (else the only run of that benchmark), sweep sizes
(only when ranks 0 and 1, which a sweep measures, are the same hosts in both files), collectives
by (op, node count, size), pairs by host names (hosts present in both files; a host name shared by
several ranks is told apart as name#k). Host sets that differ are named in a note.

Runs under load (results/SCHEMA.md): shift runs compare the effective throughput of their
steps (paired step by step when both ran the same steps) and the per-flow bandwidth of the host
pairs both measured (paired); congestion runs compare, per aggressor pattern in both, each victim
impact factor over the victims (two samples: victims are drawn per run) and the victims'
allreduce time under load.

Per compared row the change is relative: NEW median / BASE median - 1, with a 95% confidence
interval from a seeded bootstrap of that statistic over the raw samples (scipy.stats.bootstrap,
percentile method) and a Mann-Whitney U p-value; p-values of all rows are adjusted for multiple
comparisons (Benjamini-Hochberg). Pairs runs add two fabric-wide rows, the median over all matched
pairs of the per-pair NEW/BASE ratio (bootstrap over pairs; Wilcoxon signed-rank p-value), and a
row per pair and direction where both files hold the pair's raw samples (p-value: Welch's t-test
on log samples, vectorised; see _rows_cheap).

A row is *significant* when its adjusted p-value is below ALPHA and its confidence interval
excludes 0 (per-pair rows outside the MAX_PAIR_ROWS_CI most significant get no interval and are
judged on the adjusted p-value); a *regression* when it is significant and worse than the threshold (lower bandwidth,
or higher latency / time, by more than it). Noise alone gives wide intervals and large p-values,
so it is not called a regression.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
import re
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import h5py
import numpy as np
from scipy import stats as sps

from fabscope_analyze import load, stats
from fabscope_analyze.accept.pairs.stalls import stall_counts
from fabscope_analyze.criteria import StallRule
from fabscope_analyze.htmlpage import CSS, FIGURE_DIR, FigureRef, esc, figure_html, table
from fabscope_analyze.layout import HOP_CLASSES, Layout, build_layout
from fabscope_analyze.reader import (VICTIM_IMPACTS, CollRun, CongestionRun, PairSamples, PairsRun, Run, RunFile,
                                     ShiftRun, SweepRun, row_blocks)

ALPHA = 0.05
N_RESAMPLES = 2000
MAX_FABRIC_SAMPLE = 20_000  # pairs used for the fabric-wide bootstrap and signed-rank test
MAX_PAIR_ROWS_CI = 50  # per-pair rows that get a bootstrap interval (the most significant)
MAX_PAIR_SAMPLE_ROWS = 100_000  # larger (about 450 hosts): per-pair tests left out (one Python Row per pair
# and direction: 1,000 hosts took 106 s, 2,000 hosts minutes; the fabric-wide rows, stalls per host and the
# diff heatmaps remain)


@dataclass
class Row:
    run: str
    benchmark: str
    metric: str
    key: str  # what was compared: "8 B", "allreduce 1M, 4 nodes", "node01 -> node02"
    unit: str
    higher_is_better: bool
    base: float
    new: float
    change: float  # NEW / BASE - 1
    ci_low: float = float("nan")
    ci_high: float = float("nan")
    p_value: float = float("nan")
    q_value: float = float("nan")
    significant: bool = False
    regression: bool = False
    improvement: bool = False
    n_base: int = 0
    n_new: int = 0
    entity: str = ""  # stable name of what was compared (JUnit test name; no counts, no measurements)
    note: str = ""  # why the row could not be judged ("" when it could)

    @property
    def worse(self) -> float:
        """How much worse NEW is (positive = worse), relative."""
        return -self.change if self.higher_is_better else self.change


@dataclass
class PairsDiff:
    run: str
    labels: list[str]  # matched hosts, in BASE's display order
    bw_ratio: np.ndarray  # [M, M] NEW / BASE, row sends to column
    lat_ratio: np.ndarray | None  # [M, M]; None for shift runs (bandwidth under load only)
    block_names: list[str] | None = None
    block_bounds: np.ndarray | None = None


@dataclass
class Comparison:
    base: str
    new: str
    labels: tuple[str, str]
    threshold: float
    metrics: tuple[str, ...] = ()  # METRIC_KINDS judged (--metrics); () = all
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    diffs: list[PairsDiff] = field(default_factory=list)
    runs_compared: int = 0  # matched run pairs of a kind this version compares
    hosts_removed: list[str] = field(default_factory=list)  # in BASE only (host keys)
    hosts_added: list[str] = field(default_factory=list)  # in NEW only
    hosts_common: int = 0
    settings: list[tuple[str, str, str]] = field(default_factory=list)  # (setting, BASE, NEW) that differ

    @property
    def regressions(self) -> list[Row]:
        return [r for r in self.rows if r.regression]


def host_keys(run_file: RunFile) -> list[str]:
    """A name per rank to match hosts across files: the host name, name#k for the k-th rank of a
    host that has several (so that ranks renumbered by an added or removed host still match).
    Outputs spell such a rank `name/rank N` (N: its MPI rank in BASE, for hosts only in NEW in
    NEW), as accept and report do: see display_names."""
    seen: dict[str, int] = {}
    names = [h.hostname for h in run_file.hosts]
    counts = Counter(names)  # (a count per name by names.count was quadratic: 95 s at 40,000 ranks)
    out = []
    for n in names:
        k = seen.get(n, 0)
        seen[n] = k + 1
        out.append(n if counts[n] == 1 else f"{n}#{k}")
    return out


_MULTI_KEY = re.compile(r"(\S+#\d+)")


def display_names(base: RunFile, new: RunFile) -> dict[str, str]:
    """host_keys of several-rank hosts -> `host/rank N` (BASE's rank; NEW's for keys only in NEW)."""
    out: dict[str, str] = {}
    for rf in (new, base):  # BASE last: its rank numbers win
        for rank, (key, h) in enumerate(zip(host_keys(rf), rf.hosts)):
            if key != h.hostname:
                out[key] = f"{h.hostname}/rank {rank}"
    return out


def _spell(text: str, names: dict[str, str]) -> str:
    return _MULTI_KEY.sub(lambda m: names.get(m.group(1), m.group(1)), text) if names and "#" in text else text


def _median_ratio(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(y, axis=axis) / np.median(x, axis=axis) - 1.0


def relative_change(base: float, new: float) -> float:
    """NEW / BASE - 1; 0 when both are 0 (no change), +inf when only BASE is 0 (worse or better
    without bound: shown as "n/a", judged by the row's p-value and direction)."""
    if base == 0:
        return 0.0 if new == 0 else math.copysign(math.inf, new)
    return new / base - 1.0


def _two_sample_rows(base: np.ndarray, new: np.ndarray, seed: int) -> tuple[np.ndarray, ...]:
    """Per row of [K, n_b] and [K, n_n] samples: change, CI low/high, Mann-Whitney p."""
    k = base.shape[0]
    if k == 0:
        e = np.empty(0)
        return e, e, e, e
    change = _median_ratio(base, new)
    rng = np.random.default_rng(seed)
    lo = np.full(k, np.nan)
    hi = np.full(k, np.nan)
    p = np.full(k, np.nan)
    ok = (np.isfinite(base).all(axis=1) & np.isfinite(new).all(axis=1) & (base.shape[1] >= 2) & (new.shape[1] >= 2))
    same = _same_samples(base, new) & ok
    lo[same], hi[same], p[same] = 0.0, 0.0, 1.0
    ok &= ~same
    if ok.any():
        res = sps.bootstrap((base[ok], new[ok]), _median_ratio, vectorized=True, axis=-1, n_resamples=N_RESAMPLES,
                            method="percentile", random_state=rng, batch=max(1, 4_000_000 // (N_RESAMPLES * max(
                                1, base.shape[1] + new.shape[1]))))
        lo[ok], hi[ok] = res.confidence_interval.low, res.confidence_interval.high
        with np.errstate(invalid="ignore", divide="ignore"):
            p[ok] = sps.mannwhitneyu(base[ok], new[ok], axis=-1, alternative="two-sided").pvalue
    return change, lo, hi, p


def _same_samples(base: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Per row: the two sets of samples are the same values (in any order), e.g. a file compared
    with itself. Their change is exactly 0 and so is its interval: resampling the two sides
    independently would invent an uncertainty ([-60%, +150%] for a few spread samples) that
    the same measurements do not have."""
    if base.shape != new.shape or base.size == 0:
        return np.zeros(base.shape[0], dtype=bool)
    return (np.sort(base, axis=-1) == np.sort(new, axis=-1)).all(axis=-1)


def _rows_from_samples(run: str, bench: str, metric: str, unit: str, higher: bool, keys: Sequence[str],
                       base: np.ndarray, new: np.ndarray, seed: int) -> list[Row]:
    change, lo, hi, p = _two_sample_rows(base, new, seed)
    return [Row(run=run, benchmark=bench, metric=metric, key=key, unit=unit, higher_is_better=higher,
                base=float(np.median(base[i])), new=float(np.median(new[i])), change=float(change[i]),
                ci_low=float(lo[i]), ci_high=float(hi[i]), p_value=float(p[i]), n_base=base.shape[1],
                n_new=new.shape[1]) for i, key in enumerate(keys)]


def _size(n: int) -> str:
    for shift, suffix in ((30, "G"), (20, "M"), (10, "K")):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift}{suffix}"
    return str(n)


def compare_sweeps(b: SweepRun, n: SweepRun, seed: int, notes: list[str]) -> list[Row]:
    if b.samples is None or n.samples is None:
        return []
    common = np.intersect1d(b.size_bytes, n.size_bytes)
    missing = sorted(set(b.size_bytes.tolist()) ^ set(n.size_bytes.tolist()))
    if missing:
        notes.append(f"run {b.info.name}: sizes in one file only, not compared: {', '.join(_size(s) for s in missing)}")
    ib = np.searchsorted(b.size_bytes, common)
    inn = np.searchsorted(n.size_bytes, common)
    higher = b.metric != "latency_ns"
    metric = "latency p50" if not higher else ("bidirectional bandwidth p50" if b.info.benchmark == "bibw"
                                               else "bandwidth p50")
    return _rows_from_samples(b.info.name, b.info.benchmark, metric, b.units, higher,
                              [f"{_size(int(s))} B" for s in common], b.samples[ib], n.samples[inn], seed)


def compare_colls(b: CollRun, n: CollRun, seed: int, notes: list[str]) -> list[Row]:
    rows: list[Row] = []
    counts = np.intersect1d(b.node_counts, n.node_counts)
    for op in b.ops:
        if op not in n.ops:
            notes.append(f"run {b.info.name}: {op} only in the base file")
            continue
        ob, on = b.ops[op], n.ops[op]
        if ob.samples is None or on.samples is None:
            continue
        sizes = np.intersect1d(ob.size_bytes, on.size_bytes)
        gb, gn = np.searchsorted(b.node_counts, counts), np.searchsorted(n.node_counts, counts)
        sb, sn = np.searchsorted(ob.size_bytes, sizes), np.searchsorted(on.size_bytes, sizes)
        xb = ob.samples[np.ix_(gb, sb)].reshape(counts.size * sizes.size, -1)
        xn = on.samples[np.ix_(gn, sn)].reshape(counts.size * sizes.size, -1)
        keys = [f"{op} {_size(int(s)) + ' B' if op != 'barrier' else ''}, {int(c)} nodes".replace(" ,", ",")
                for c in counts for s in sizes]
        rows += _rows_from_samples(b.info.name, "coll", "time p50", "ns", False, keys, xb, xn, seed)
    return rows


def compare_pairs(b: PairsRun, n: PairsRun, base_file: RunFile, new_file: RunFile, seed: int,
                  notes: list[str], diffs: list[PairsDiff], threshold: float) -> list[Row]:
    kb, kn = host_keys(base_file), host_keys(new_file)
    index_n = {k: i for i, k in enumerate(kn)}
    layout = build_layout(base_file)
    order = [int(i) for i in layout.order if kb[int(i)] in index_n]
    if len(order) < 2:
        notes.append(f"run {b.info.name}: fewer than two hosts in both files; pairs not compared")
        return []
    mb = np.array(order, dtype=np.int64)
    mn = np.array([index_n[kb[i]] for i in order], dtype=np.int64)
    if len(order) < b.n_ranks or len(order) < n.n_ranks:
        notes.append(f"run {b.info.name}: {len(order)} hosts in both files ({b.n_ranks} in base, {n.n_ranks} in new)")
    if b.bw_size_bytes != n.bw_size_bytes or b.lat_size_bytes != n.lat_size_bytes:
        notes.append(f"run {b.info.name}: message sizes differ (bw {_size(b.bw_size_bytes)} vs {_size(n.bw_size_bytes)}, "
                     f"lat {_size(b.lat_size_bytes)} vs {_size(n.lat_size_bytes)}): changes include that")
    rows: list[Row] = []
    rng = np.random.default_rng(seed)
    m = mb.size
    bw_ratio = _ratio(n.bw_gbps, b.bw_gbps, mn, mb)
    lat_ratio = _ratio(n.latency_ns_p50, b.latency_ns_p50, mn, mb)
    for metric, ratio, higher, unit, bm, nm in (
            ("pair bandwidth, median over pairs", bw_ratio, True, "Gb/s", b.bw_gbps, n.bw_gbps),
            ("pair latency p50, median over pairs", lat_ratio, False, "ns", b.latency_ns_p50, n.latency_ns_p50)):
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.log(stats.offdiag_sample(ratio, MAX_FABRIC_SAMPLE, seed=seed)[0])
        values = values[np.isfinite(values)]
        if values.size < 2:
            continue
        res = sps.bootstrap((values,), np.median, vectorized=True, axis=-1, n_resamples=N_RESAMPLES,
                            method="percentile", random_state=rng, batch=100)
        p = float(sps.wilcoxon(values).pvalue) if np.any(values != 0) else 1.0
        base_v, _ = stats.offdiag_sample(bm, MAX_FABRIC_SAMPLE, seed=seed)
        new_v, _ = stats.offdiag_sample(nm, MAX_FABRIC_SAMPLE, seed=seed)
        rows.append(Row(run=b.info.name, benchmark="pairs", metric=metric, key=f"{m} hosts, {values.size} pairs",
                        unit=unit, higher_is_better=higher, base=stats.nan_median(base_v),
                        new=stats.nan_median(new_v), change=float(np.expm1(np.median(values))),
                        ci_low=float(np.expm1(res.confidence_interval.low)),
                        ci_high=float(np.expm1(res.confidence_interval.high)), p_value=p,
                        n_base=values.size, n_new=values.size))
    rows += _host_rows(b, n, [kb[int(i)] for i in mb], mb, mn, bw_ratio, lat_ratio, threshold, seed)
    rows += _pair_sample_rows(b, n, kb, kn, seed, notes)
    rows += _stall_rows(b, n, kb, kn)
    diffs.append(_diff(b.info.name, layout, kb, mb, bw_ratio, lat_ratio))
    return rows


HOST_PEERS = 1024  # per-host rows of a larger fabric: over the same seeded random peers of every host
HOST_METRIC_SUFFIX = "of a host, median over its pairs"


def _host_rows(b: PairsRun, n: PairsRun, keys: list[str], mb: np.ndarray, mn: np.ndarray, bw_ratio: np.ndarray,
               lat_ratio: np.ndarray, threshold: float, seed: int) -> list[Row]:
    """Per host, the NEW / BASE ratios of its pairs (bandwidth both directions, latency p50): a
    row for each host whose median ratio differs from the fabric's median ratio by more than the
    threshold (the hosts that moved apart from the fabric: one slow host among 12,500 moves no
    fabric median). change: the host's median ratio - 1; p-value: a one-sample t-test of its log
    ratios against the fabric's median log ratio (vectorised over hosts). Above HOST_PEERS + 1
    hosts, each host's pairs are those with the same seeded random HOST_PEERS peers. No interval:
    judged on the q-value, like the per-pair rows. base and new: the host's median over the same
    pairs in each file."""
    m = len(keys)
    if m < 3:
        return []
    peers = np.arange(m)
    if m > HOST_PEERS + 1:
        peers = np.sort(np.random.default_rng(seed).choice(m, HOST_PEERS, replace=False))
    rows: list[Row] = []
    for metric, ratio, both, higher, unit, bm, nm in (
            ("pair bandwidth", bw_ratio, True, True, "Gb/s", b.bw_gbps, n.bw_gbps),
            ("pair latency p50", lat_ratio, False, False, "ns", b.latency_ns_p50, n.latency_ns_p50)):
        x = np.asarray(ratio[:, peers], dtype=np.float64)
        if both:
            x = np.concatenate([x, np.asarray(ratio[peers, :], dtype=np.float64).T], axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.log(x)
        x[~np.isfinite(x)] = np.nan  # the diagonal, unmeasured pairs, 0 on one side
        fabric = stats.nan_median(x[np.isfinite(x)][:4_000_000])
        if not math.isfinite(fabric):
            continue
        med = stats.nanmedian_rows(x)
        apart = np.flatnonzero(np.abs(med - fabric) > math.log1p(threshold))
        if apart.size == 0:
            continue
        d = x[apart] - fabric
        k = np.isfinite(d).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.nanmean(d, axis=1)
            sd = np.nanstd(d, axis=1, ddof=1)
            t = mean / (sd / np.sqrt(k))
            p = np.where(k >= 2, 2 * sps.t.sf(np.abs(t), np.maximum(k - 1, 1)), np.nan)
        p = np.where((k >= 2) & (sd == 0) & (mean != 0), 0.0, p)  # every pair moved by the same factor
        def host_median(mat: np.ndarray, ranks: np.ndarray, h: int) -> float:
            v = np.asarray(mat[ranks[h], ranks[peers]], dtype=np.float64)
            if both:
                v = np.concatenate([v, np.asarray(mat[ranks[peers], ranks[h]], dtype=np.float64)])
            return stats.nan_median(np.where(np.isfinite(x[h]), v, np.nan))  # the pairs of the ratios

        for i, h in enumerate(apart.tolist()):
            rows.append(Row(run=b.info.name, benchmark="pairs", metric=f"{metric} {HOST_METRIC_SUFFIX}",
                            key=keys[h], unit=unit, higher_is_better=higher, base=host_median(bm, mb, h),
                            new=host_median(nm, mn, h), change=float(np.expm1(med[h])), p_value=float(p[i]),
                            n_base=int(k[i]), n_new=int(k[i])))
    return rows


def _ratio(new: np.ndarray, base: np.ndarray, mn: np.ndarray, mb: np.ndarray) -> np.ndarray:
    """new[mn][:, mn] / base[mb][:, mb] as float32, built a block of rows at a time (a 12,500-host
    run: no full-size copies of either matrix beside the result)."""
    m = mb.size
    out = np.empty((m, m), dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        for r0, r1 in row_blocks(m, m):
            out[r0:r1] = (np.asarray(new[mn[r0:r1]][:, mn], dtype=np.float32)
                          / np.asarray(base[mb[r0:r1]][:, mb], dtype=np.float32))
    return out


def _diff(run: str, layout: Layout, keys: list[str], mb: np.ndarray, bw_ratio: np.ndarray,
          lat_ratio: np.ndarray | None) -> PairsDiff:
    """The diff heatmap data of the matched hosts mb (BASE ranks in display order); above 256
    hosts aggregated by the topology's blocks, or by blocks of consecutive hosts."""
    m = mb.size
    labels = [keys[int(i)] for i in mb]
    diff = PairsDiff(run=run, labels=labels, bw_ratio=bw_ratio, lat_ratio=lat_ratio)
    if m > 256:
        names, bounds = layout.blocks()
        if np.isin(layout.order, mb).all():
            diff.block_names, diff.block_bounds = names, bounds
        else:  # hosts missing from NEW: blocks of consecutive matched hosts
            k = math.ceil(m / 100)
            diff.block_bounds = np.concatenate([np.arange(0, m, k), [m]])
            diff.block_names = [f"{labels[a]}.." for a in diff.block_bounds[:-1]]
    return diff


STALL_METRIC = "stalled bandwidth windows"


def _stall_rows(b: PairsRun, n: PairsRun, kb: list[str], kn: list[str]) -> list[Row]:
    """Stalled bandwidth windows (accept's pairs.bandwidth.stalls: below 25% of the best window of
    the same flow and repeat), as % of the windows: fabric-wide, and per host that stalled in
    either file. A loss repaired by retransmission time-outs leaves medians where they were, so
    this is how a newly lossy link shows. p-value: one-sided binomial of NEW's count at BASE's
    rate ((stalled + 1) / (windows + 2)); for a host also at the rate of the rest of NEW's fabric
    (the windows of the pairs without it), the larger p-value of the two: a host stalls more than
    before AND more than the others now, so the peers of a lossy host (whose pairs with it stall
    too) are not flagged. change: NEW / BASE - 1 of the fractions (relative_change: 0 -> 0 is no
    change, 0 -> more is +inf, printed "n/a"). No interval: judged on the q-value."""
    if b.n_pair_samples == 0 or n.n_pair_samples == 0:
        return []
    fraction = StallRule().window_fraction
    cb, cn = stall_counts(b, fraction), stall_counts(n, fraction)
    index_n = {k: i for i, k in enumerate(kn)}

    rest_n = cn.rest_rate()

    def row(key: str, sb: int, wb: int, sn: int, wn: int, rank_new: int = -1) -> Row | None:
        if wb == 0 or wn == 0:
            return None
        p = float(sps.binom.sf(sn - 1, wn, (sb + 1) / (wb + 2))) if sn > 0 else 1.0
        if rank_new >= 0 and sn > 0:
            p = max(p, float(sps.binom.sf(sn - 1, wn, rest_n[rank_new])))
        change = relative_change(sb / wb, sn / wn)
        return Row(run=b.info.name, benchmark="pairs", metric=STALL_METRIC, key=key, unit="% of windows",
                   higher_is_better=False, base=100 * sb / wb, new=100 * sn / wn, change=change, p_value=p,
                   n_base=wb, n_new=wn)

    out = [row(f"fabric, {b.n_ranks} vs {n.n_ranks} ranks", *cb.total, *cn.total)]
    for i, key in enumerate(kb):
        j = index_n.get(key)
        if j is not None and (cb.stalled[i] > 0 or cn.stalled[j] > 0):
            out.append(row(key, int(cb.stalled[i]), int(cb.windows[i]), int(cn.stalled[j]), int(cn.windows[j]), j))
    return [r for r in out if r is not None]


def _pair_sample_rows(b: PairsRun, n: PairsRun, kb: list[str], kn: list[str], seed: int,
                      notes: list[str]) -> list[Row]:
    if b.n_pair_samples == 0 or n.n_pair_samples == 0:
        return []
    if max(b.n_pair_samples, n.n_pair_samples) > MAX_PAIR_SAMPLE_ROWS:
        notes.append(f"run {b.info.name}: more than {MAX_PAIR_SAMPLE_ROWS:,} pair_samples rows; per-pair tests "
                     "left out (the fabric-wide rows and the diff heatmaps remain)")
        return []
    sb, sn = b.load_pair_samples(), n.load_pair_samples()
    # the rows of each pair (host keys, either orientation), in measuring order: with --repeat a pair
    # has a row per repeat. A pair's samples are those of its first k repeats pooled, k the smaller
    # number of repeats of the two files: one slow repeat among several moves the pooled median
    # little (accept judges the best repeat), a pair slow in every repeat moves it all the way.
    def by_pair(pair: np.ndarray, keys: list[str]) -> dict[frozenset[str], list[int]]:
        out: dict[frozenset[str], list[int]] = {}
        for r, (x, y) in enumerate(pair.tolist()):
            out.setdefault(frozenset((keys[x], keys[y])), []).append(r)
        return out

    rows_b, rows_n = by_pair(sb.pair, kb), by_pair(sn.pair, kn)
    groups: dict[int, list[tuple[str, str, list[int], list[int]]]] = {}
    for key, rb in rows_b.items():
        rn = rows_n.get(key)
        if not rn:
            continue
        k = min(len(rb), len(rn))
        x, y = sb.pair[rb[0]].tolist()
        groups.setdefault(k, []).append((kb[x], kb[y], rb[:k], rn[:k]))
    if any(k > 1 for k in groups):
        notes.append(f"run {b.info.name}: pairs measured more than once (--repeat): a pair's rows pool the samples "
                     "of its repeats")
    rows: list[Row] = []
    lat_ok = sb.latency_ns.shape[1] >= 2 and sn.latency_ns.shape[1] >= 2
    for k, members in sorted(groups.items()):
        g = len(members)
        ib = np.array([m[2] for m in members], dtype=np.int64)  # [G, k]
        inn = np.array([m[3] for m in members], dtype=np.int64)
        first = [m[0] for m in members]
        # orientation of every row against the pair's (a, c): True where c was the initiator
        swb = np.array([[kb[int(sb.pair[r, 0])] != a for r in m[2]] for a, m in zip(first, members)])
        swn = np.array([[kn[int(sn.pair[r, 0])] != a for r in m[3]] for a, m in zip(first, members)])

        def pooled(ps: PairSamples, idx: np.ndarray, sw: np.ndarray, forward: bool) -> np.ndarray:
            f, r = ps.bw_gbps_fwd[idx], ps.bw_gbps_rev[idx]  # [G, k, W]
            chosen = np.where(sw[..., None], r, f) if forward else np.where(sw[..., None], f, r)
            return chosen.reshape(g, -1)

        names = [(m[0], m[1]) for m in members]
        if lat_ok:
            rows += _rows_cheap("pair latency p50", "ns", False, [f"{a} <-> {c}" for a, c in names],
                                sb.latency_ns[ib].reshape(g, -1), sn.latency_ns[inn].reshape(g, -1), b.info.name)
        rows += _rows_cheap("pair bandwidth", "Gb/s", True, [f"{a} -> {c}" for a, c in names],
                            pooled(sb, ib, swb, True), pooled(sn, inn, swn, True), b.info.name)
        rows += _rows_cheap("pair bandwidth", "Gb/s", True, [f"{c} -> {a}" for a, c in names],
                            pooled(sb, ib, swb, False), pooled(sn, inn, swn, False), b.info.name)
    return rows


def _rows_cheap(metric: str, unit: str, higher: bool, keys: list[str], base: np.ndarray, new: np.ndarray,
                run: str) -> list[Row]:
    """Per-pair rows: change and a p-value for all; intervals are added later for the rows shown
    (bootstrapping thousands of pairs would be slow and is not needed). The p-value is Welch's
    t-test on the logarithm of the samples (scipy.stats.ttest_ind, vectorised over pairs):
    scipy 1.10's Mann-Whitney U loops over rows in Python, minutes for a large fabric."""
    ok = np.isfinite(base).all(axis=1) & np.isfinite(new).all(axis=1) & (base > 0).all(axis=1) & (new > 0).all(axis=1)
    base, new = base[ok], new[ok]
    keys = [k for k, good in zip(keys, ok) if good]
    if not keys:
        return []
    with np.errstate(invalid="ignore", divide="ignore"):
        p = sps.ttest_ind(np.log(base), np.log(new), axis=-1, equal_var=False).pvalue
    p = np.where(np.isnan(p), 1.0, p)  # identical samples on both sides
    mb, mn = np.median(base, axis=1), np.median(new, axis=1)
    change = mn / mb - 1.0
    rows = [Row(run=run, benchmark="pairs", metric=metric, key=k, unit=unit, higher_is_better=higher,
                base=float(mb[i]), new=float(mn[i]), change=float(change[i]), p_value=float(p[i]),
                n_base=base.shape[1], n_new=new.shape[1]) for i, k in enumerate(keys)]
    for r, xb, xn in zip(rows, base, new):
        r._samples = (xb, xn)  # type: ignore[attr-defined]
    return rows


# --- runs under load ---------------------------------------------------------------------------------


def _ratio_row(run: str, bench: str, metric: str, key: str, unit: str, higher: bool, base_v: np.ndarray,
               new_v: np.ndarray, seed: int) -> Row | None:
    """A fabric-wide row from paired values (the same step, the same host pair in both files):
    change = exp(median of log(NEW / BASE)) - 1, bootstrap interval over the pairs, Wilcoxon
    signed-rank p-value (as the pairs fabric rows)."""
    ok = np.isfinite(base_v) & np.isfinite(new_v) & (base_v > 0) & (new_v > 0)
    b, n = base_v[ok].astype(np.float64), new_v[ok].astype(np.float64)
    if b.size < 2:
        return None
    if b.size > MAX_FABRIC_SAMPLE:
        pick = np.random.default_rng(seed).choice(b.size, MAX_FABRIC_SAMPLE, replace=False)
        b, n = b[pick], n[pick]
    logs = np.log(n / b)
    res = sps.bootstrap((logs,), np.median, vectorized=True, axis=-1, n_resamples=N_RESAMPLES, method="percentile",
                        random_state=np.random.default_rng(seed), batch=100)
    with warnings.catch_warnings():  # a handful of steps: scipy warns about its normal approximation
        warnings.simplefilter("ignore", UserWarning)
        p = float(sps.wilcoxon(logs).pvalue) if np.any(logs != 0) else 1.0
    return Row(run=run, benchmark=bench, metric=metric, key=key, unit=unit, higher_is_better=higher,
               base=float(np.median(b)), new=float(np.median(n)), change=float(np.expm1(np.median(logs))),
               ci_low=float(np.expm1(res.confidence_interval.low)), ci_high=float(np.expm1(res.confidence_interval.high)),
               p_value=p, n_base=int(b.size), n_new=int(n.size))


def compare_shift(b: ShiftRun, n: ShiftRun, base_file: RunFile, new_file: RunFile, seed: int,
                  notes: list[str], diffs: list[PairsDiff] | None = None) -> list[Row]:
    """Effective throughput per step (aggregate Gb/s when a link rate is unknown on either side):
    paired step by step when both runs ran the same steps (same pattern and rank count; a
    permutation also the same seed), else the two sets of steps as samples; and the per-flow
    bandwidth of the host pairs both runs measured (paired)."""
    rows: list[Row] = []
    eb = load.effective_throughput(b, build_layout(base_file))
    en = load.effective_throughput(n, build_layout(new_file))
    use_pct = eb.known and en.known
    xb = np.where(b.done(), eb.pct if use_pct else b.step_aggregate_gbps, np.nan)
    xn = np.where(n.done(), en.pct if use_pct else n.step_aggregate_gbps, np.nan)
    metric = "effective throughput per step" if use_pct else "aggregate throughput per step"
    unit = "%" if use_pct else "Gb/s"
    if not use_pct:
        notes.append(f"run {b.info.name}: a link rate is unknown in one file: aggregate Gb/s compared, not %")
    if b.n_ranks != n.n_ranks:
        notes.append(f"run {b.info.name}: {b.n_ranks} ranks in base, {n.n_ranks} in new: steps compared as samples")
    if b.size_bytes != n.size_bytes:
        notes.append(f"run {b.info.name}: message sizes differ ({_size(b.size_bytes)} vs {_size(n.size_bytes)}): "
                     "changes include that")
    same_steps = (b.pattern == n.pattern and b.n_ranks == n.n_ranks
                  and (b.pattern == "shift" or b.seed == n.seed))
    if same_steps:
        k = min(xb.size, xn.size)
        row = _ratio_row(b.info.name, "shift", metric, f"{int(np.sum(np.isfinite(xb[:k]) & np.isfinite(xn[:k])))} "
                         "steps, paired", unit, True, xb[:k], xn[:k], seed)
        if row is not None:
            rows.append(row)
    else:
        fb, fn = xb[np.isfinite(xb)], xn[np.isfinite(xn)]
        if b.pattern != n.pattern or b.seed != n.seed:
            notes.append(f"run {b.info.name}: different steps ({b.pattern} seed {b.seed} vs {n.pattern} seed {n.seed}): "
                         "the steps are compared as two samples")
        if fb.size >= 2 and fn.size >= 2:
            rows += _rows_from_samples(b.info.name, "shift", metric, unit, True, [f"{fb.size} vs {fn.size} steps"],
                                       fb[None, :], fn[None, :], seed)
    if same_steps:
        rows += _step_rows(b, n, notes)
    # the flows of host pairs measured in both (paired by host names)
    kb, kn = host_keys(base_file), host_keys(new_file)
    index_n = {k: i for i, k in enumerate(kn)}
    mb = np.array([i for i, k in enumerate(kb) if k in index_n], dtype=np.int64)
    if mb.size >= 2:
        mn = np.array([index_n[kb[i]] for i in mb], dtype=np.int64)
        pb = b.partner_to
        src = np.broadcast_to(np.arange(b.n_ranks), pb.shape)
        ok = (pb >= 0) & np.isin(src, mb) & np.isin(pb, mb)
        s_b, d_b = src[ok], pb[ok]
        to_new = np.full(b.n_ranks, -1, dtype=np.int64)
        to_new[mb] = mn
        vb = np.asarray(b.bw_gbps[s_b, d_b], dtype=np.float64)
        vn = np.asarray(n.bw_gbps[to_new[s_b], to_new[d_b]], dtype=np.float64)
        row = _ratio_row(b.info.name, "shift", "flow bandwidth under load, median over flows",
                         f"{int(np.sum(np.isfinite(vb) & np.isfinite(vn)))} host pairs in both", "Gb/s", True, vb, vn,
                         seed)
        if row is not None:
            rows.append(row)
        if diffs is not None:  # the loaded matrix, NEW / BASE, hosts in BASE's display order
            layout = build_layout(base_file)
            shown = np.array([int(i) for i in layout.order if to_new[int(i)] >= 0], dtype=np.int64)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = (np.asarray(n.bw_gbps[np.ix_(to_new[shown], to_new[shown])], dtype=np.float32)
                         / np.asarray(b.bw_gbps[np.ix_(shown, shown)], dtype=np.float32))
            diffs.append(_diff(b.info.name, layout, kb, shown, ratio, None))
    b.release()
    n.release()
    return rows


STEP_METRIC = "flow bandwidth per step, median over flows"
MAX_STEP_CELLS = 20_000_000  # steps x ranks above which per-step rows are left out


def _step_rows(b: ShiftRun, n: ShiftRun, notes: list[str]) -> list[Row]:
    """A row per step both runs measured (same steps): its flows as the samples (Welch's t-test on
    log bandwidth, as the per-pair rows), so that one slow step stands out even when the median
    over steps does not move."""
    k = min(b.steps_done, n.steps_done, b.n_steps, n.n_steps)
    if k == 0:
        return []
    if k * b.n_ranks > MAX_STEP_CELLS:
        notes.append(f"run {b.info.name}: {k} steps x {b.n_ranks} ranks: per-step rows left out (the fabric-wide "
                     "rows remain)")
        return []
    fb = np.asarray(b.flow_gbps[:k], dtype=np.float64)
    fn = np.asarray(n.flow_gbps[:k], dtype=np.float64)
    rows = _rows_cheap(STEP_METRIC, "Gb/s", True, [b.step_label(s) for s in range(k)], fb, fn, b.info.name)
    for r in rows:
        r.benchmark = "shift"
    return rows


def compare_congestion(b: CongestionRun, n: CongestionRun, base_file: RunFile, new_file: RunFile, seed: int,
                       notes: list[str]) -> list[Row]:
    """Per aggressor pattern in both runs: each victim impact factor over the victims (two samples:
    victims are drawn per run, so they are not paired), also per hop class (victim to ring
    partner) when the victims fall in several, and the victims' allreduce time under load."""
    cb = load.victim_classes(b, build_layout(base_file))
    cn = load.victim_classes(n, build_layout(new_file))
    classes = sorted(set(cb.tolist()) & set(cn.tolist()))
    groups = [("", None)] + ([(HOP_CLASSES[c], c) for c in classes]
                             if len(set(cb.tolist()) | set(cn.tolist())) > 1 else [])
    rows: list[Row] = []
    if (b.placement, b.victim_fraction) != (n.placement, n.victim_fraction):
        notes.append(f"run {b.info.name}: victims placed differently ({b.placement} {b.victim_fraction:g} vs "
                     f"{n.placement} {n.victim_fraction:g}): changes include that")
    for q, pattern in enumerate(b.loaded_phases):
        if pattern not in b.measured_patterns:
            continue
        if pattern not in n.measured_patterns:
            notes.append(f"run {b.info.name}: pattern {pattern} only in the base file")
            continue
        qn = n.loaded_phases.index(pattern)
        for m in VICTIM_IMPACTS:
            for cname, c in groups:
                xb = b.impact(m)[q][cb == c] if c is not None else b.impact(m)[q]
                xn = n.impact(m)[qn][cn == c] if c is not None else n.impact(m)[qn]
                xb, xn = xb[np.isfinite(xb)], xn[np.isfinite(xn)]
                if xb.size >= 2 and xn.size >= 2:
                    where = f", {cname}" if cname else ""
                    rows += _rows_from_samples(b.info.name, "congestion", f"{load.IMPACT_TITLES[m]} impact factor", "x",
                                               False, [f"under {pattern}{where}, {xb.size} vs {xn.size} victims"],
                                               xb[None, :], xn[None, :], seed)
        if b.allreduce_ns is not None and n.allreduce_ns is not None:
            ab, an = b.allreduce_ns[q + 1], n.allreduce_ns[qn + 1]
            ab, an = ab[np.isfinite(ab)], an[np.isfinite(an)]
            if ab.size >= 2 and an.size >= 2:
                rows += _rows_from_samples(b.info.name, "congestion", "victims' allreduce time p50", "ns", False,
                                           [f"under {pattern}"], ab[None, :], an[None, :], seed)
    for pattern in n.measured_patterns:
        if pattern not in b.measured_patterns:
            notes.append(f"run {b.info.name}: pattern {pattern} only in the new file")
    return rows


def match_runs(base: RunFile, new: RunFile) -> tuple[list[tuple[Run, Run]], list[str]]:
    pairs, notes = [], []
    used: set[int] = set()
    for rb in base.runs:
        cand = [i for i, rn in enumerate(new.runs) if i not in used and rn.info.benchmark == rb.info.benchmark
                and rn.info.name == rb.info.name]
        if not cand:
            same = [i for i, rn in enumerate(new.runs) if i not in used and rn.info.benchmark == rb.info.benchmark]
            cand = same if len(same) == 1 and sum(r.info.benchmark == rb.info.benchmark for r in base.runs) == 1 else []
        if cand:
            used.add(cand[0])
            pairs.append((rb, new.runs[cand[0]]))
        else:
            notes.append(f"run {rb.info.name} ({rb.info.benchmark}) only in the base file")
    notes += [f"run {rn.info.name} ({rn.info.benchmark}) only in the new file" for i, rn in enumerate(new.runs)
              if i not in used]
    return pairs, notes


METRIC_KINDS = ("bandwidth", "latency", "time")


def metric_kind(metric: str) -> str:
    """What a row measures, for --metrics: latency (any latency, also its impact factor), bandwidth
    (bandwidth and throughput), time (collective and allreduce times)."""
    if "latency" in metric:
        return "latency"
    if "bandwidth" in metric or "throughput" in metric:
        return "bandwidth"
    return "time"


def _same_sweep_hosts(b: SweepRun, base: RunFile, new: RunFile, notes: list[str]) -> bool:
    """A size sweep measures ranks 0 and 1: comparable only when they are the same hosts in both files."""
    kb, kn = host_keys(base)[:2], host_keys(new)[:2]
    if kb == kn:
        return True
    notes.append(f"run {b.info.name}: measured between {' and '.join(kb)} in base but {' and '.join(kn)} in new: "
                 "not compared")
    return False


def _host_names(keys: Sequence[str], most: int = 10) -> str:
    shown = ", ".join(keys[:most])
    return shown + (f" and {len(keys) - most} more" if len(keys) > most else "")


def _text(v: Any) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def settings_of(rf: RunFile) -> dict[str, str]:
    """What a file records of how it was run (results/SCHEMA.md): the `/config` lines given with
    `fabscope --config KEY=VALUE` (as `config KEY`), and per run its transport and its
    `parameters` (as `<run>: <name>`)."""
    out: dict[str, str] = {}
    try:
        with h5py.File(rf.path, "r") as f:
            if "config" in f:
                for line in f["config"][()].tolist():
                    key, _, value = _text(line).partition("=")
                    out[f"config {key.strip()}"] = value.strip()
            for run in rf.runs:
                out[f"{run.info.name}: transport"] = run.info.transport
                g = f.get(f"runs/{run.info.group}")
                if g is not None and "parameters" in g:
                    for line in g["parameters"][()].tolist():
                        key, _, value = _text(line).partition("=")
                        out[f"{run.info.name}: {key.strip()}"] = value.strip()
    except OSError:
        pass  # read_results opened it a moment ago; settings are extra information
    return out


def settings_diff(base: RunFile, new: RunFile, runs: Sequence[tuple[Run, Run]] = ()) -> list[tuple[str, str, str]]:
    """(setting, BASE value, NEW value) of every setting that differs ("-": not recorded), /config
    first; run settings of the matched runs only (by run name)."""
    sb, sn = settings_of(base), settings_of(new)
    names = {rb.info.name for rb, _ in runs} if runs else None
    keys = list(dict.fromkeys([*sb, *sn]))
    keys.sort(key=lambda k: (not k.startswith("config "), k.split(":")[0] if ":" in k else ""))
    out = []
    for k in keys:
        if names is not None and not k.startswith("config ") and k.split(":")[0] not in names:
            continue
        a, b = sb.get(k, "-"), sn.get(k, "-")
        if a != b:
            out.append((k, a, b))
    return out


def host_diff(base: RunFile, new: RunFile) -> tuple[list[str], list[str], int]:
    """(hosts only in BASE, hosts only in NEW, hosts in both), by host_keys."""
    kb, kn = host_keys(base), host_keys(new)
    sb, sn = set(kb), set(kn)
    return [k for k in kb if k not in sn], [k for k in kn if k not in sb], len(sb & sn)


def hosts_json(c: Comparison) -> dict[str, Any]:
    return {"common": c.hosts_common, "removed": c.hosts_removed, "added": c.hosts_added}


def host_set_note(base: RunFile, new: RunFile) -> str | None:
    """What differs between the two files' host sets, and what is compared then; None when equal."""
    only_b, only_n, _ = host_diff(base, new)
    if not only_b and not only_n:
        return None
    parts = [f"only in base ({len(only_b)}): {_host_names(only_b)}" if only_b else "",
             f"only in new ({len(only_n)}): {_host_names(only_n)}" if only_n else ""]
    return (f"the host sets differ ({'; '.join(p for p in parts if p)}): compared are the host pairs in both files "
            "(pairs, shift flows), size sweeps only where ranks 0 and 1 are the same hosts, and the fabric-wide "
            "figures of coll, shift steps and congestion as measured")


# compare(base run, new run, base file, new file, the comparison so far (notes, diffs, threshold), seed)
# -> rows, per run kind; runs of other kinds are matched but not compared
Comparer = Callable[[Any, Any, RunFile, RunFile, Comparison, int], list[Row]]
COMPARERS: dict[type, Comparer] = {
    SweepRun: lambda b, n, base, new, c, seed: (compare_sweeps(b, n, seed, c.notes)
                                                if _same_sweep_hosts(b, base, new, c.notes) else []),
    CollRun: lambda b, n, base, new, c, seed: compare_colls(b, n, seed, c.notes),
    PairsRun: lambda b, n, base, new, c, seed: compare_pairs(b, n, base, new, seed, c.notes, c.diffs, c.threshold),
    ShiftRun: lambda b, n, base, new, c, seed: compare_shift(b, n, base, new, seed, c.notes, c.diffs),
    CongestionRun: lambda b, n, base, new, c, seed: compare_congestion(b, n, base, new, seed, c.notes),
}


def compare(base: RunFile, new: RunFile, *, threshold: float = 0.05, labels: tuple[str, str] = ("base", "new"),
            seed: int = 1, metrics: Sequence[str] = ()) -> Comparison:
    result = Comparison(base=str(base.path), new=str(new.path), labels=labels, threshold=threshold,
                        metrics=tuple(metrics))
    matched, result.notes = match_runs(base, new)
    result.settings = settings_diff(base, new, matched)
    result.hosts_removed, result.hosts_added, result.hosts_common = host_diff(base, new)
    hosts = host_set_note(base, new)
    if hosts is not None:
        result.notes.insert(0, hosts)
    for rb, rn in matched:
        comparer = COMPARERS.get(type(rb))
        if comparer is not None and type(rn) is type(rb):
            result.runs_compared += 1
            result.rows += comparer(rb, rn, base, new, result, seed)
    if not result.runs_compared:
        result.notes.append("no run in common: nothing compared")
    if metrics:
        kept = [r for r in result.rows if metric_kind(r.metric) in metrics]
        left = len(result.rows) - len(kept)
        result.rows = kept
        result.notes.append(f"only {' and '.join(metrics)} metrics compared (--metrics): {left} other rows left out")
    judge(result.rows, threshold, seed)
    for r in result.rows:
        _finish_row(r)
    names = display_names(base, new)
    if names:
        for r in result.rows:
            r.key, r.entity = _spell(r.key, names), _spell(r.entity, names)
        result.notes = [_spell(x, names) for x in result.notes]
        result.hosts_removed = [_spell(x, names) for x in result.hosts_removed]
        result.hosts_added = [_spell(x, names) for x in result.hosts_added]
        for d in result.diffs:
            d.labels = [_spell(x, names) for x in d.labels]
    return result


_VICTIM_COUNT = re.compile(r", \d+ vs \d+ victims$")


def row_entity(r: Row) -> str:
    """What a row compares, without the counts that change from run to run (hosts, pairs, steps,
    victims): the JUnit test name of fabric-wide rows is `<metric>: fabric`, of a size `<metric>:
    1M B`, of a pair `<metric>: a -> b`."""
    if r.metric.endswith("median over pairs") or r.metric.endswith("median over flows") and r.metric != STEP_METRIC:
        return "fabric"
    if r.metric == STALL_METRIC and r.key.startswith("fabric"):
        return "fabric"
    if r.benchmark == "shift" and r.metric != STEP_METRIC:
        return "steps"
    if r.benchmark == "congestion":
        return _VICTIM_COUNT.sub("", r.key)
    return r.key


def _finish_row(r: Row) -> None:
    """Latency and time in us (one unit per quantity across the outputs), the stable entity, and
    why a row could not be judged."""
    if r.unit == "ns":
        r.base, r.new, r.unit = r.base / 1e3, r.new / 1e3, "us"
    r.entity = row_entity(r)
    if not (math.isfinite(r.base) and math.isfinite(r.new)):
        r.note = "not compared: no finite value on one side"
    elif not math.isfinite(r.p_value):
        r.note = "not judged: fewer than 2 usable samples on one side"
    elif r.base == 0 and r.new != 0:
        r.note = "base is 0: no relative change (judged on the p-value)"


LOAD_BENCHMARKS = ("shift", "congestion")


def judge(rows: list[Row], threshold: float, seed: int) -> None:
    """q-values, intervals for the per-pair rows shown, verdict of each row, order.

    q-values are Benjamini-Hochberg within two families: the rows of runs under load (a few
    dozen) and all others (which hold thousands of per-pair rows that would otherwise drown a
    clear change of a fabric-wide load figure)."""
    p_all = np.array([r.p_value for r in rows])
    q = np.full(len(rows), np.nan)
    family = np.array([r.benchmark in LOAD_BENCHMARKS for r in rows], dtype=bool)
    for mask in (family, ~family):
        if mask.any():
            q[mask] = stats.bh_adjust(p_all[mask])
    for r, qv in zip(rows, q):
        r.q_value = float(qv)
    # bootstrap intervals for the most significant per-pair rows
    pending = sorted((r for r in rows if hasattr(r, "_samples")), key=lambda r: (_nan_last(r.q_value), -abs(r.change)))
    top = pending[:MAX_PAIR_ROWS_CI]
    by_shape: dict[tuple[int, int], list[Row]] = {}
    for r in top:
        xb, xn = r._samples  # type: ignore[attr-defined]
        by_shape.setdefault((xb.size, xn.size), []).append(r)
    for group in by_shape.values():
        xb = np.stack([r._samples[0] for r in group])  # type: ignore[attr-defined]
        xn = np.stack([r._samples[1] for r in group])  # type: ignore[attr-defined]
        _, lo, hi, _ = _two_sample_rows(xb, xn, seed)
        for r, a, c in zip(group, lo, hi):
            r.ci_low, r.ci_high = float(a), float(c)
    for r in pending:
        del r._samples  # type: ignore[attr-defined]
    for r in rows:
        # rows without an interval (per-pair rows beyond the MAX_PAIR_ROWS_CI most significant)
        # are judged on their q-value alone
        excludes_zero = (r.ci_low > 0 or r.ci_high < 0) if math.isfinite(r.ci_low) else per_pair(r)
        r.significant = bool(math.isfinite(r.q_value) and r.q_value < ALPHA and excludes_zero)
        r.regression = r.significant and r.worse > threshold
        r.improvement = r.significant and -r.worse > threshold
    rows.sort(key=lambda r: (not r.regression, not r.significant, _nan_last(r.q_value), -abs(r.change)))


def per_pair(r: Row) -> bool:
    """Rows of one pair or one step among thousands: judged on the q-value when they got no interval."""
    return (r.benchmark == "pairs" and not r.metric.endswith("median over pairs")) or r.metric == STEP_METRIC


def _nan_last(v: float) -> float:
    return v if math.isfinite(v) else float("inf")


# --- outputs ---------------------------------------------------------------------------------------


def _pct(v: float) -> str:
    if not math.isfinite(v):
        return "n/a"
    return f"{100 * v:+.1f}%" if abs(v) < 1e4 else f"{100 * v:+.3g}%"  # never hundreds of digits


def change_text(r: Row) -> str:
    """The change column: "no change" when BASE and NEW are equal (0 -> 0 included), "n/a" when
    BASE is 0 (no percentage of nothing), else the signed percentage."""
    if r.base == r.new:
        return "no change"
    if r.base == 0 or not math.isfinite(r.change):
        return "n/a"
    return _pct(r.change)


def _num(v: float) -> str:
    if not math.isfinite(v):
        return "n/a"
    return f"{v:,.0f}" if 1e4 <= abs(v) < 1e12 else f"{v:.4g}"


def _p(v: float) -> str:
    return "n/a" if not math.isfinite(v) else f"{v:.2g}"


def verdict_of(r: Row) -> str:
    if r.note.startswith("not "):
        return "not judged"
    return "REGRESSION" if r.regression else "improvement" if r.improvement else \
        "significant" if r.significant else "-"


def summary_text(c: Comparison, rows: int = 25) -> str:
    a, b = c.labels
    reg = c.regressions
    head = (f"fabscope compare: {'REGRESSION' if reg else 'no significant regression'} "
            f"(threshold {100 * c.threshold:g}%)\n  base {a}: {c.base}\n  new  {b}: {c.new}\n")
    lines = [head]
    if c.settings:
        w = max(len(k) for k, _, _ in c.settings)
        lines.append(f"settings that differ ({a} / {b}):")
        lines += [f"  {k.ljust(w)}  {x}  /  {y}" for k, x, y in c.settings]
    else:
        lines.append("settings: the same in both files (/config, transports, run parameters)")
    lines += [f"{len(c.rows)} rows compared, {sum(r.significant for r in c.rows)} significant, "
             f"{len(reg)} regressions, {sum(r.improvement for r in c.rows)} improvements"]
    widths = (10, 34, 28, 12, 11, 11, 9, 19, 8, 11)
    header = ("run", "metric", "what", "unit", a[:11], b[:11], "change", "95% CI", "q", "verdict")
    lines.append("  ".join(h.ljust(w)[:w] for h, w in zip(header, widths)))
    shown = c.rows[:rows]
    for r in shown:
        cells = (r.run, r.metric, r.key, r.unit, _num(r.base), _num(r.new), change_text(r),
                 f"[{_pct(r.ci_low)}, {_pct(r.ci_high)}]" if math.isfinite(r.ci_low) else "n/a", _p(r.q_value),
                 verdict_of(r))
        lines.append("  ".join(str(x).ljust(w) if i == 2 else str(x).ljust(w)[:w]
                               for i, (x, w) in enumerate(zip(cells, widths))).rstrip())
    if len(c.rows) > rows:
        lines.append(f"... {len(c.rows) - rows} more rows (--rows N, --json OUT)")
    for r in shown:
        if r.note:
            lines.append(f"note: run {r.run}, {r.metric}, {r.key}: {r.note}")
    unjudged = sum(1 for r in c.rows[rows:] if r.note.startswith("not "))
    if unjudged:
        lines.append(f"note: {unjudged} more rows not judged (their note in --json OUT)")
    for note in c.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines) + "\n"


def to_json(c: Comparison) -> dict[str, Any]:
    def clean(v: Any) -> Any:
        return None if isinstance(v, float) and not math.isfinite(v) else v

    return {
        "fabscope_compare": 1, "base": c.base, "new": c.new, "labels": list(c.labels), "threshold": c.threshold,
        "metrics": list(c.metrics or METRIC_KINDS), "regression": bool(c.regressions), "notes": c.notes,
        "hosts": hosts_json(c),
        "settings_differ": [{"setting": k, "base": x, "new": y} for k, x, y in c.settings],
        "rows": [{k: clean(v) for k, v in asdict(r).items()} for r in c.rows],
    }


def write_json(path: Path, c: Comparison) -> None:
    path.write_text(json.dumps(to_json(c), indent=2, allow_nan=False) + "\n", encoding="utf-8")


def junit_group(r: Row) -> str:
    """The JUnit test a row belongs to: its entity, or for the rows of one pair, step or host among
    many (whose set changes with the fabric) one test per metric: `each pair`, `each step`,
    `each host`."""
    if r.entity not in ("fabric", "steps") and per_pair(r):
        if r.metric == STEP_METRIC:
            return "each step"
        return "each host" if r.metric == STALL_METRIC or r.metric.endswith(HOST_METRIC_SUFFIX) else "each pair"
    return r.entity or r.key


# Cases whose rows exist only for some hosts: always written beside their run's fabric row, so that
# the set of test names stays the same from night to night (case name -> text when it has no row).
_ALWAYS_CASES = {
    f"{STALL_METRIC}: fabric": (f"{STALL_METRIC}: each host", "no host stalled in either file"),
    "pair bandwidth, median over pairs: fabric": (f"pair bandwidth {HOST_METRIC_SUFFIX}: each host",
                                                  "no host's pairs moved apart from the fabric's"),
    "pair latency p50, median over pairs: fabric": (f"pair latency p50 {HOST_METRIC_SUFFIX}: each host",
                                                    "no host's pairs moved apart from the fabric's"),
}


def row_text(r: Row) -> str:
    """One line with a row's numbers, for messages: what, values, change, interval, q."""
    ci = f", 95% CI [{_pct(r.ci_low)}, {_pct(r.ci_high)}]" if math.isfinite(r.ci_low) else ""
    return (f"{r.key}: {_num(r.base)} -> {_num(r.new)} {r.unit} ({change_text(r)}{ci}, q {_p(r.q_value)})"
            + (f"; {r.note}" if r.note else ""))


def junit_cases(c: Comparison, prefix: str = "fabscope.compare") -> list[ET.Element]:
    """One test case per compared row (classname `<prefix>.<run>`, name `<metric>: <entity>`), the
    rows of single pairs, steps and hosts folded into one case per metric. Names carry no
    measurement, so a nightly job's tests keep their history; the numbers are in the message."""
    groups: dict[tuple[str, str], list[Row]] = {}
    for r in c.rows:
        groups.setdefault((r.run, f"{r.metric}: {junit_group(r)}"), []).append(r)
    for run, name in list(groups):  # per-host rows exist only for some hosts: the case always
        if name in _ALWAYS_CASES:
            groups.setdefault((run, _ALWAYS_CASES[name][0]), [])
    empty_text = {case: text for case, text in _ALWAYS_CASES.values()}
    cases = []
    for (run, name), rows in sorted(groups.items()):
        case = ET.Element("testcase", classname=f"{prefix}.{run}", name=name)
        bad = [r for r in rows if r.regression]
        if bad:
            worst = bad[0]
            msg = (row_text(worst) if len(rows) == 1 else
                   f"{len(bad)} of {len(rows)} regressed beyond {100 * c.threshold:g}%, e.g. {row_text(worst)}")
            el = ET.SubElement(case, "failure", message=msg, type="regression")
            more = f"\n... {len(bad) - 50} more" if len(bad) > 50 else ""
            el.text = "\n".join(row_text(r) for r in bad[:50]) + more
        elif not rows:
            ET.SubElement(case, "system-out").text = empty_text.get(name, "nothing to compare")
        elif all(r.note.startswith("not ") for r in rows):
            ET.SubElement(case, "skipped", message=rows[0].note)
        else:
            out = ET.SubElement(case, "system-out")
            out.text = "\n".join(row_text(r) for r in rows[:20]) + (f"\n... {len(rows) - 20} more"
                                                                       if len(rows) > 20 else "")
        cases.append(case)
    return cases


def write_junit(path: Path, c: Comparison) -> None:
    """JUnit XML of `compare --junit`: one testsuite per run."""
    root = ET.Element("testsuites", name="fabscope compare")
    by_run: dict[str, list[ET.Element]] = {}
    for case in junit_cases(c):
        by_run.setdefault(case.get("classname", ""), []).append(case)
    for classname, cases in by_run.items():
        suite = ET.SubElement(root, "testsuite", name=classname, tests=str(len(cases)),
                              failures=str(sum(x.find("failure") is not None for x in cases)),
                              skipped=str(sum(x.find("skipped") is not None for x in cases)), errors="0")
        suite.extend(cases)
    finish_junit(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def finish_junit(root: ET.Element) -> None:
    """The totals of a <testsuites> element from its suites."""
    for k in ("tests", "failures", "skipped", "errors"):
        root.set(k, str(sum(int(s.get(k, "0")) for s in root.findall("testsuite"))))


def write_html(out_dir: Path, c: Comparison, base: RunFile, new: RunFile, max_rows: int = 200) -> Path:
    """DIR/index.html: the table (most significant first) and NEW/BASE diff heatmaps per pairs run."""
    from fabscope_analyze import plots  # matplotlib loads only when a page is drawn

    fig_dir = out_dir / FIGURE_DIR
    fig_dir.mkdir(parents=True, exist_ok=True)
    a, b = c.labels
    figs: list[FigureRef] = []

    def save(fig, stem: str, alt: str) -> None:  # type: ignore[no-untyped-def]
        w, h = (fig.get_size_inches() * plots.PNG_DPI).round().astype(int)
        png, svg = plots.save_figure(fig, fig_dir, stem)
        figs.append(FigureRef(f"{FIGURE_DIR}/{png.name}", f"{FIGURE_DIR}/{svg.name}", alt, int(w), int(h)))

    for k, d in enumerate(c.diffs):
        title = f"{d.run}: {b} / {a}"
        what = "bandwidth" if d.lat_ratio is not None else "bandwidth under load (shift)"
        if d.block_bounds is None:
            save(plots.heatmap_figure(d.bw_ratio, d.labels, title=f"{title}, {what} (row sends to column)",
                                      cbar_label=f"bandwidth ratio {b} / {a} (>1 better)", cmap="RdBu",
                                      center=1.0, xlabel="receiver", ylabel="sender", value_format="{:.2f}"),
                 f"{k:02d}-bw-ratio", f"{what} ratio {b}/{a} per pair, run {d.run}")
            if d.lat_ratio is not None:
                save(plots.heatmap_figure(d.lat_ratio, d.labels, title=f"{title}, latency p50",
                                          cbar_label=f"latency ratio {b} / {a} (<1 better)", cmap="RdBu_r",
                                          center=1.0, value_format="{:.2f}"),
                     f"{k:02d}-lat-ratio", f"latency ratio {b}/{a} per pair, run {d.run}")
        else:
            order = np.arange(len(d.labels))
            worst, med = stats.block_reduce(d.bw_ratio, d.block_bounds, order, "min")
            save(plots.block_heatmap_figure([("worst (lowest) ratio per block pair", worst),
                                             ("median ratio per block pair", med)], d.block_names or [],
                                            title=f"{title}, {what}", cbar_label=f"{b} / {a}", cmap="RdBu"),
                 f"{k:02d}-bw-ratio", f"{what} ratio {b}/{a} per block pair, run {d.run}")
            if d.lat_ratio is None:
                continue
            worst, med = stats.block_reduce(d.lat_ratio, d.block_bounds, order, "max")
            save(plots.block_heatmap_figure([("worst (highest) ratio per block pair", worst),
                                             ("median ratio per block pair", med)], d.block_names or [],
                                            title=f"{title}, latency p50", cbar_label=f"{b} / {a}", cmap="RdBu_r"),
                 f"{k:02d}-lat-ratio", f"latency ratio {b}/{a} per block pair, run {d.run}")
    rows = []
    for r in c.rows[:max_rows]:
        v = verdict_of(r)
        cell = f'<span class="bad">{v}</span>' if r.regression else esc(v)
        ci = f"[{_pct(r.ci_low)}, {_pct(r.ci_high)}]" if math.isfinite(r.ci_low) else "n/a"
        rows.append([esc(r.run), esc(r.metric), esc(r.key), esc(r.unit), esc(_num(r.base)), esc(_num(r.new)),
                     esc(change_text(r)), esc(ci), esc(_p(r.p_value)), esc(_p(r.q_value)),
                     cell + (f"<br>{esc(r.note)}" if r.note else "")])
    verdict = (f'<div class="warning" role="alert"><strong>{len(c.regressions)} significant regression(s)</strong> '
               f"beyond {100 * c.threshold:g}%.</div>" if c.regressions else
               f'<div class="pass" role="status">No significant regression beyond {100 * c.threshold:g}%.</div>')
    notes = "".join(f"<li>{esc(n)}</li>" for n in c.notes)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>fabscope compare: {esc(a)} vs {esc(b)}</title>
<style>{CSS}</style></head><body>
<h1>fabscope compare: {esc(a)} vs {esc(b)}</h1>
<p class="sub">base {esc(a)}: {esc(c.base)}<br>new {esc(b)}: {esc(c.new)}</p>
{table(["setting", esc(a), esc(b)], [[esc(k), esc(x), esc(y)] for k, x, y in c.settings], "settings")
 if c.settings else "<p>Settings: the same in both files.</p>"}
{verdict}
<p>Change = {esc(b)} median / {esc(a)} median - 1; 95% interval from a seeded bootstrap of the raw samples;
q = Mann-Whitney (pairs fabric rows: Wilcoxon) p adjusted over all rows (Benjamini-Hochberg).
A regression is significant (q &lt; {ALPHA}, interval excludes 0) and worse than the threshold.</p>
<h2>Changes, most significant first</h2>
{table(["run", "metric", "what", "unit", esc(a), esc(b), "change", "95% CI", "p", "q", "verdict"], rows, "compare")}
{f"<p>{len(c.rows) - max_rows} more rows in the JSON output.</p>" if len(c.rows) > max_rows else ""}
{f"<ul>{notes}</ul>" if notes else ""}
<h2>Diff heatmaps</h2>
<div class="figures">{"".join(figure_html(f) for f in figs) or "<p>No pairs or shift run in both files.</p>"}</div>
</body></html>
"""
    index = out_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
