"""The rules of the criteria's `pairs` section as limits, and one check (JUnit test case) per rule.

references: the fabric's median best bandwidth and, per hop class, the median best latency p50;
limits: each rule's limit, or why it is not judged (a note); checks: one Check per rule bit of
flows.py, counted by scan.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fabscope_analyze import stats
from fabscope_analyze.accept.pairs.flows import (R_BW_ABS, R_BW_LINK, R_BW_REL, R_CLASS50, R_CLASS99, R_ERROR,
                                                 R_LAT50_ABS, R_LAT99_ABS, R_LAT_RATIO)
from fabscope_analyze.accept.pairs.job import PairsJob
from fabscope_analyze.layout import HOP_CLASSES
from fabscope_analyze.reader import row_blocks
from fabscope_analyze.verdict import PASS, Check, fmt, size_text


@dataclass(frozen=True)
class References:
    bw_ref: float  # median over ranks of each rank's best bandwidth, sending or receiving
    lat_ref: np.ndarray  # [hop class] median over ranks of each rank's lowest p50 to a peer of that class


def references(job: PairsJob) -> References:
    n, run, lay = job.n, job.run, job.layout
    best_bw = np.full(n, np.nan)
    col_best = np.full(n, -np.inf, dtype=np.float64)
    best_lat = np.full((len(HOP_CLASSES), n), np.inf)
    bw_m, lat_m, status = run.bw_gbps, run.latency_ns_p50, run.status
    present = [HOP_CLASSES.index(c) for c in lay.classes_present()]
    for r0, r1 in row_blocks(n, n):
        measured = status[r0:r1] == job.ok_code
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
    best_lat[~np.isfinite(best_lat)] = np.nan
    return References(bw_ref=stats.nan_median(host_best),
                      lat_ref=np.array([stats.nan_median(best_lat[c]) for c in range(len(HOP_CLASSES))]))


@dataclass(frozen=True)
class Limits:
    """Each rule's limit; None / NaN: not judged."""

    bw_abs: float | None  # Gb/s
    bw_link_scalar: float | None  # Gb/s, from the criteria's link rate
    bw_link_rate: np.ndarray | None  # [N] port rates (Gb/s) when the criteria give none
    bw_rel: float | None  # Gb/s
    lat50_abs: float | None  # ns
    lat99_abs: float | None  # ns
    ratio_limit: np.ndarray  # [hop class] ns
    class50: np.ndarray  # [hop class] ns
    class99: np.ndarray  # [hop class] ns
    # (rule, title, why) of the rules the run's message sizes cannot judge: inconclusive checks
    unjudged: tuple[tuple[str, str, str], ...] = ()

    @property
    def need_p99(self) -> bool:
        return self.lat99_abs is not None or bool(np.isfinite(self.class99).any())


def limits(job: PairsJob, refs: References, notes: list[str]) -> Limits:
    """The limits of the rules that apply to this run; a note for each rule that does not."""
    c, run, crit = job.crit, job.run, job.criteria
    unjudged: list[tuple[str, str, str]] = []
    small = (f"not judged: the run's {size_text(run.bw_size_bytes)} B bandwidth messages are below the rule's "
             f"min_size {size_text(c.bw_min_size)} B; measure at >= {size_text(c.bw_min_size)} B")
    bw_abs = c.min_gbps if c.min_gbps is not None and run.bw_size_bytes >= c.bw_min_size else None
    if c.min_gbps is not None and bw_abs is None:
        unjudged.append(("pairs.bandwidth.min_gbps", f"bandwidth >= {fmt(c.min_gbps)} Gb/s", small))
    bw_link_scalar: float | None = None
    bw_link_rate: np.ndarray | None = None
    if c.min_link_fraction is not None:
        if run.bw_size_bytes < c.bw_min_size:
            unjudged.append(("pairs.bandwidth.min_link_fraction",
                             f"bandwidth >= {fmt(c.min_link_fraction * 100)}% of the link rate", small))
        elif crit.link_rate_gbps is not None:
            bw_link_scalar = c.min_link_fraction * crit.link_rate_gbps
        elif np.isfinite(job.layout.rate_gbps).any():
            bw_link_rate = job.layout.rate_gbps.astype(np.float32)
        else:
            notes.append("link-rate rule not judged: no link rate in the criteria (link_rate_gbps) "
                         "or in the file (/topology, /hosts/rdma_devices)")
    bw_rel = (c.min_fabric_fraction * refs.bw_ref
              if c.min_fabric_fraction is not None and math.isfinite(refs.bw_ref) else None)
    lat_applies = c.lat_max_size is None or run.lat_size_bytes <= c.lat_max_size
    big = (f"not judged: the run's {size_text(run.lat_size_bytes)} B latency messages are above the rule's "
           f"max_size {size_text(c.lat_max_size or 0)} B; measure at <= {size_text(c.lat_max_size or 0)} B")
    if not lat_applies and c.latency.max_p50_us:
        unjudged.append(("pairs.latency.max_p50_us", f"latency p50 <= {fmt(c.latency.max_p50_us)} us", big))
    if not lat_applies and c.latency.max_p99_us:
        unjudged.append(("pairs.latency.max_p99_us", f"latency p99 <= {fmt(c.latency.max_p99_us)} us", big))
    k = len(HOP_CLASSES)
    ratio_limit = np.full(k, np.nan)
    if c.max_class_ratio is not None:
        ratio_limit = c.max_class_ratio * refs.lat_ref
    class50 = np.full(k, np.nan)
    class99 = np.full(k, np.nan)
    present = set(job.layout.classes_present())
    for name, lim in c.hop_classes.items():
        i = HOP_CLASSES.index(name)
        if name not in present:
            notes.append(f"hop class {name} limits not judged: no pair of that class in this fabric")
            continue
        if lim.max_p50_us:
            class50[i] = lim.max_p50_us * 1e3
        if lim.max_p99_us:
            class99[i] = lim.max_p99_us * 1e3
    return Limits(bw_abs=bw_abs, bw_link_scalar=bw_link_scalar, bw_link_rate=bw_link_rate, bw_rel=bw_rel,
                  lat50_abs=c.latency.max_p50_us * 1e3 if c.latency.max_p50_us and lat_applies else None,
                  lat99_abs=c.latency.max_p99_us * 1e3 if c.latency.max_p99_us and lat_applies else None,
                  ratio_limit=ratio_limit, class50=class50, class99=class99, unjudged=tuple(unjudged))


def make_checks(job: PairsJob, lim: Limits, refs: References) -> dict[int, Check]:
    """One check per rule judged, keyed by its reason bit; counts are filled in by the scan."""
    c = job.crit
    checks: dict[int, Check] = {}

    def check(bit: int, rule: str, title: str, unit: str) -> None:
        checks[bit] = Check(run=job.name, rule=rule, title=title, status=PASS, unit=unit)

    dp, pp = "directed pairs", "pairs"
    if lim.bw_abs is not None:
        check(R_BW_ABS, "pairs.bandwidth.min_gbps", f"bandwidth >= {fmt(lim.bw_abs)} Gb/s", dp)
    if lim.bw_link_scalar is not None:
        check(R_BW_LINK, "pairs.bandwidth.min_link_fraction",
              f"bandwidth >= {fmt(c.min_link_fraction * 100)}% of the {fmt(job.criteria.link_rate_gbps)} "
              f"Gb/s link rate ({fmt(lim.bw_link_scalar)} Gb/s)", dp)
    elif lim.bw_link_rate is not None:
        check(R_BW_LINK, "pairs.bandwidth.min_link_fraction",
              f"bandwidth >= {fmt(c.min_link_fraction * 100)}% of the pair's link rate "
              f"(from {job.layout.rate_source})", dp)
    if lim.bw_rel is not None:
        check(R_BW_REL, "pairs.bandwidth.min_fabric_fraction",
              f"bandwidth >= {fmt(c.min_fabric_fraction * 100)}% of the fabric's median best "
              f"{fmt(refs.bw_ref)} Gb/s ({fmt(lim.bw_rel)} Gb/s)", dp)
    if lim.lat50_abs is not None:
        check(R_LAT50_ABS, "pairs.latency.max_p50_us", f"latency p50 <= {fmt(lim.lat50_abs / 1e3)} us", pp)
    if lim.lat99_abs is not None:
        check(R_LAT99_ABS, "pairs.latency.max_p99_us", f"latency p99 <= {fmt(lim.lat99_abs / 1e3)} us", pp)
    if np.isfinite(lim.ratio_limit).any():
        refs_text = ", ".join(f"{HOP_CLASSES[i]} {fmt(refs.lat_ref[i] / 1e3)} us"
                              for i in range(len(HOP_CLASSES)) if math.isfinite(refs.lat_ref[i]))
        check(R_LAT_RATIO, "pairs.latency.max_class_ratio",
              f"latency p50 <= {fmt(c.max_class_ratio)} x the best of its hop class ({refs_text})", pp)
    if np.isfinite(lim.class50).any():
        lims = ", ".join(f"{HOP_CLASSES[i]} {fmt(lim.class50[i] / 1e3)} us" for i in range(len(HOP_CLASSES))
                         if math.isfinite(lim.class50[i]))
        check(R_CLASS50, "pairs.hop_classes.max_p50_us", f"latency p50 per hop class <= {lims}", pp)
    if np.isfinite(lim.class99).any():
        lims = ", ".join(f"{HOP_CLASSES[i]} {fmt(lim.class99[i] / 1e3)} us" for i in range(len(HOP_CLASSES))
                         if math.isfinite(lim.class99[i]))
        check(R_CLASS99, "pairs.hop_classes.max_p99_us", f"latency p99 per hop class <= {lims}", pp)
    if c.failed_pairs == "fail":
        check(R_ERROR, "pairs.status", "no pair failed or timed out", pp)
    return checks
