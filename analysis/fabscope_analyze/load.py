"""Runs under load (results/SCHEMA.md): the numbers report, accept, compare and trend take
from `shift` and `congestion` runs.

Pure functions from runs (and a Layout) to arrays; no plotting, no HTML. Everything over the
[S, N] flows of a shift run works step block by step block, so a 10,000-rank shift (S = 9,999)
stays within a few hundred MB beyond the run's own arrays.

Effective throughput of a step = 100 x the step's aggregate / (N x link rate). The link rate is,
in this order: the criteria's `link_rate_gbps` (acceptance: a port that trained down must not
lower its own bar), the file's (`link_rate_gbps` / `step_effective_pct`), the ranks' port rates
(/topology or /hosts/rdma_devices, via Layout; the sum of the senders' rates).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from fabscope_analyze import stats
from fabscope_analyze.layout import HOP_CLASSES, Layout
from fabscope_analyze.reader import CongestionRun, PairsRun, RunFile, ShiftRun

BLOCK_CELLS = 4_000_000  # flows handled at a time
HIST_BINS = 60
SLOW_FLOW_FRACTION = 0.5  # a flow below this x its step's median flow is "slow" (a collision)

# What each victim impact factor is, for tables and figures.
IMPACT_TITLES: dict[str, str] = {
    "latency_p50": "latency p50",
    "latency_p99": "latency p99",
    "bw_p50": "bandwidth p50",
    "allreduce_p50": "allreduce p50",
    "allreduce_p99": "allreduce p99",
}


def step_blocks(n_steps: int, n_ranks: int) -> list[tuple[int, int]]:
    step = max(1, BLOCK_CELLS // max(1, n_ranks))
    return [(s0, min(n_steps, s0 + step)) for s0 in range(0, n_steps, step)]


# --- shift: effective throughput -----------------------------------------------------------------


@dataclass(frozen=True)
class Effective:
    """Effective throughput per step (%, NaN where unknown or not measured) and where the link
    rate came from."""

    pct: np.ndarray  # float64 [S]
    rate_text: str  # e.g. "link rate 400 Gb/s from the file"
    known: bool

    def median(self) -> float:
        return stats.nan_median(self.pct)


def effective_throughput(run: ShiftRun, layout: Layout, link_rate_gbps: float | None = None) -> Effective:
    agg = run.step_aggregate_gbps
    n = run.n_ranks
    if link_rate_gbps is not None:
        return Effective(100.0 * agg / (n * link_rate_gbps), f"link rate {_num(link_rate_gbps)} Gb/s from the criteria",
                         True)
    file_pct = run.step_effective_pct
    if np.isfinite(file_pct).any():
        rate = f" {_num(run.link_rate_gbps)} Gb/s" if math.isfinite(run.link_rate_gbps) else ""
        return Effective(file_pct, f"link rate{rate} from the file", True)
    if math.isfinite(run.link_rate_gbps) and run.link_rate_gbps > 0:
        return Effective(100.0 * agg / (n * run.link_rate_gbps),
                         f"link rate {_num(run.link_rate_gbps)} Gb/s from the file", True)
    rates = layout.rate_gbps
    if rates.size == n and np.isfinite(rates).all() and (rates > 0).all():
        return Effective(100.0 * agg / float(rates.sum()),
                         f"the senders' port rates from {layout.rate_source} (sum {_num(float(rates.sum()))} Gb/s)",
                         True)
    return Effective(np.full(agg.shape, np.nan), "no link rate known (fabscope shift --link-rate, or "
                     "link_rate_gbps in the criteria)", False)


def _num(v: float) -> str:
    return f"{v:g}" if math.isfinite(v) else "n/a"


def step_x(run: ShiftRun) -> np.ndarray:
    """The x of each step in figures: the shift distance (s + 1), or the step number."""
    s = np.arange(run.n_steps)
    return s + 1 if run.pattern == "shift" else s


def step_x_label(run: ShiftRun) -> str:
    return "shift distance d (rank i sends to i + d)" if run.pattern == "shift" else f"{run.pattern} step"


# --- shift: flows ---------------------------------------------------------------------------------


def slowest_flows(run: ShiftRun, step: int, k: int = 5) -> list[tuple[int, int, float]]:
    """The k slowest flows of a step: (sender, receiver, Gb/s)."""
    f = np.asarray(run.flow_gbps[step], dtype=np.float64)
    p = run.partner_to[step]
    ok = np.flatnonzero(np.isfinite(f) & (p >= 0))
    pick = ok[np.argsort(f[ok], kind="stable")[:k]]
    return [(int(i), int(p[i]), float(f[i])) for i in pick]


@dataclass(frozen=True)
class FlowProfile:
    """Everything the report shows about the flows of a shift run, from one pass over them."""

    medians: np.ndarray  # float64 [S]: the median flow of each step (NaN: not measured)
    slowest: np.ndarray  # float64 [S]: the slowest flow of each step
    slow: np.ndarray  # int64 [S]: flows below SLOW_FLOW_FRACTION x the step's median
    edges: np.ndarray  # [B + 1] Gb/s: histogram bins
    counts: np.ndarray  # int64 [len(HOP_CLASSES), B]: flows per hop class (sender -> receiver) and bin
    classes: list[tuple[str, int, float, float, float]]  # (hop class, flows, median, p10, min Gb/s)

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def present(self) -> list[int]:
        return [c for c in range(len(HOP_CLASSES)) if self.counts[c].sum() > 0]


def flow_profile(run: ShiftRun, layout: Layout, bins: int = HIST_BINS, max_sample: int = 1_000_000) -> FlowProfile:
    """Per step the median and slowest flow and the slow flows; the per-flow bandwidth histogram
    by hop class; per hop class the flows, median, p10 (of a seeded sample of at most
    `max_sample` flows) and minimum. Step block by step block."""
    flows, partners = run.flow_gbps, run.partner_to
    s_total, n = run.n_steps, run.n_ranks
    blocks = step_blocks(s_total, n)
    hi = 0.0
    for s0, s1 in blocks:
        with np.errstate(invalid="ignore"):
            m = np.fmax.reduce(flows[s0:s1], axis=None) if s1 > s0 else np.nan
        if np.isfinite(m):
            hi = max(hi, float(m))
    edges = np.linspace(0.0, hi * 1.02 if hi > 0 else 1.0, bins + 1)
    k = len(HOP_CLASSES)
    counts = np.zeros((k, bins), dtype=np.int64)
    low = np.full(k, np.inf)
    medians = np.full(s_total, np.nan)
    slowest = np.full(s_total, np.nan)
    slow = np.zeros(s_total, dtype=np.int64)
    keep = min(1.0, max_sample / max(1, min(run.steps_done, s_total) * n))
    rng = np.random.default_rng(5)
    values: list[list[np.ndarray]] = [[] for _ in range(k)]
    src = np.arange(n)
    for s0, s1 in blocks:
        f = flows[s0:s1]
        p = partners[s0:s1]
        medians[s0:s1] = stats.nanmedian_rows(f)
        with np.errstate(invalid="ignore"):
            slowest[s0:s1] = np.fmin.reduce(f, axis=1) if n else np.nan
            slow[s0:s1] = (f < SLOW_FLOW_FRACTION * medians[s0:s1, None]).sum(axis=1)
        ok = np.isfinite(f) & (p >= 0)
        if not ok.any():
            continue
        v = f[ok]
        cls = layout.pair_hop_class(np.broadcast_to(src, p.shape)[ok], p[ok]).astype(np.int64)
        b = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, bins - 1)
        counts += np.bincount(cls * bins + b, minlength=k * bins).reshape(k, bins)
        pick = np.ones(v.size, dtype=bool) if keep >= 1.0 else rng.random(v.size) < keep
        for c in np.unique(cls):
            in_c = cls == c
            low[c] = min(low[c], float(v[in_c].min()))
            values[c].append(v[in_c & pick])
    classes = []
    for c in range(k):
        total = int(counts[c].sum())
        if total:
            x = np.concatenate(values[c]).astype(np.float64) if values[c] else np.array([np.nan])
            classes.append((HOP_CLASSES[c], total, float(np.median(x)), float(np.percentile(x, 10)), float(low[c])))
    return FlowProfile(medians, slowest, slow, edges, counts, classes)


# --- shift: loaded vs idle ------------------------------------------------------------------------


def idle_reference(run_file: RunFile, run: ShiftRun) -> PairsRun | None:
    """The pairs run whose bw_gbps is the idle reference of a shift run: one with the same message
    size if there is one, else the one with the most rounds done."""
    pairs = [p for p in run_file.pairs if p.n_ranks == run.n_ranks and p.rounds_done > 0]
    if not pairs:
        return None
    same = [p for p in pairs if p.bw_size_bytes == run.size_bytes]
    return max(same or pairs, key=lambda p: p.rounds_done)


def loaded_vs_idle(run: ShiftRun, idle: PairsRun) -> np.ndarray:
    """[N, N] loaded / idle bandwidth per directed pair (row sends to column), NaN where either is
    missing; float32 for large fabrics (the type the matrices are read in)."""
    loaded, base = run.bw_gbps, idle.bw_gbps
    dtype = np.result_type(loaded.dtype, base.dtype)
    out = np.empty(loaded.shape, dtype=dtype)
    n = run.n_ranks
    step = max(1, BLOCK_CELLS // max(1, n))
    for r0 in range(0, n, step):
        r1 = min(n, r0 + step)
        with np.errstate(invalid="ignore", divide="ignore"):
            np.divide(loaded[r0:r1], base[r0:r1], out=out[r0:r1])
        block = out[r0:r1]
        block[~np.isfinite(block)] = np.nan
    return out


# --- congestion -----------------------------------------------------------------------------------


def victim_classes(run: CongestionRun, layout: Layout) -> np.ndarray:
    """int8 [V]: the hop class between each victim and its ring partner."""
    if run.victims.size == 0:
        return np.empty(0, dtype=np.int8)
    return layout.pair_hop_class(run.victims, run.partners)


@dataclass(frozen=True)
class ClassImpact:
    pattern: str
    hop_class: str
    victims: int
    median: dict[str, float]  # metric -> median impact over the victims of the class
    worst: dict[str, float]  # metric -> highest impact


def impact_by_class(run: CongestionRun, layout: Layout, metrics: Sequence[str]) -> list[ClassImpact]:
    """Per loaded phase and hop class present: victims, median and highest impact of each metric.
    A class row "all" heads each phase when the victims fall in more than one class."""
    cls = victim_classes(run, layout)
    present = [int(c) for c in np.unique(cls)]
    out = []
    for q, pattern in enumerate(run.loaded_phases):
        groups: list[tuple[str, np.ndarray]] = []
        if len(present) > 1:
            groups.append(("all", np.ones(cls.size, dtype=bool)))
        groups += [(HOP_CLASSES[c], cls == c) for c in present]
        for name, mask in groups:
            med, worst = {}, {}
            for m in metrics:
                v = run.impact(m)[q][mask]
                med[m] = stats.nan_median(v)
                worst[m] = stats.nan_max(v)
            out.append(ClassImpact(pattern, name, int(mask.sum()), med, worst))
    return out


def worst_victims(run: CongestionRun, metric: str = "latency_p99", k: int = 10) -> list[tuple[int, int]]:
    """(victim index, phase index q) of the k highest impact factors of `metric`, one row per
    victim (its worst pattern), highest first."""
    imp = run.impact(metric)
    if imp.size == 0:
        return []
    filled = np.where(np.isfinite(imp), imp, -np.inf)
    worst_q = filled.argmax(axis=0)
    worst = filled.max(axis=0)
    order = np.argsort(-worst, kind="stable")
    return [(int(v), int(worst_q[v])) for v in order[:k] if np.isfinite(worst[v])]


def measured_phases(run: CongestionRun) -> np.ndarray:
    """bool [Q]: loaded phases measured (before phases_done) with at least one finite impact factor."""
    q = len(run.loaded_phases)
    out = np.zeros(q, dtype=bool)
    if run.phases_done >= 0 and run.phases_done - 1 < q:
        q_done = max(0, run.phases_done - 1)
    else:
        q_done = q
    for m in ("latency_p50", "latency_p99", "bw_p50"):
        imp = run.impact(m)
        if imp.size:
            out |= np.isfinite(imp).any(axis=1)
    for m in ("allreduce_p50", "allreduce_p99"):
        out |= np.isfinite(run.impact(m))
    out[q_done:] = False
    return out
