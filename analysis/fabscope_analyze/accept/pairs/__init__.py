"""Acceptance of a pairs run (the criteria's `pairs` section).

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
  its cable: every flow to or from it), leaf-spine cables (every flow whose route crosses them,
  when layout.py knows the routes) and, without routes, a leaf's uplinks (its cross-leaf pairs).
  A candidate qualifies when its counting test says it stands out from the rest of the fabric
  (errors, bandwidth misses, latency misses; binomial, BH) or at least host_fail_fraction /
  link_fail_fraction of its flows fail, and min_pairs fail; a rank whose leaf stands out without
  it must show the fault in its same-leaf pairs. The one explaining most failing flows is taken,
  its flows are set aside, and the search repeats. Then degraded ranks and leaves (warnings);
  what is left are pairs (folded into a named endpoint, grouped by a shared one).

The steps, one module each:

rules.py    the limits of each rule and one check per rule
scan.py     the pass over every cell: failing flows and counts
noise.py    failing flows too noisy to call become inconclusive
stalls.py   the per-host stalled-windows test (and stall_counts, which compare shares)
suspects.py attribution of the failing flows to hosts, cables, leaves, pairs; their re-tests
degraded.py ranks and leaves whose flows sit consistently below the fabric's (warnings)
"""

from __future__ import annotations

import numpy as np

from fabscope_analyze.accept.pairs.flows import (BW_BITS, LAT50_BITS, LAT99_BITS, MAX_FLOWS, MAX_LISTED,
                                                 R_BW_ABS, R_BW_LINK, R_BW_REL, R_BW_STALL, R_CLASS50, R_CLASS99,
                                                 R_ERROR, R_LAT50_ABS, R_LAT99_ABS, R_LAT_RATIO, REASON_NAMES, Flows,
                                                 reason_names)
from fabscope_analyze.accept.pairs.job import PairsJob
from fabscope_analyze.accept.pairs.noise import judge_noise, noise_keys
from fabscope_analyze.accept.pairs.rules import Limits, limits, make_checks, references
from fabscope_analyze.accept.pairs.scan import Scan, scan
from fabscope_analyze.accept.pairs.stalls import (StallCounts, StallTest, judge_stalls, stall_counts, stalls_judged,
                                                  sweep_rows)
from fabscope_analyze.accept.pairs.suspects import attribute
from fabscope_analyze.context import ReportContext
from fabscope_analyze.criteria import Criteria, PairsCriteria
from fabscope_analyze.layout import HOP_CLASSES, Layout
from fabscope_analyze.reader import PairsRun
from fabscope_analyze.verdict import FAIL, INCONCLUSIVE, PASS, SKIPPED, Check, RunVerdict, combine, fmt, round_sig

__all__ = ["PairsJudge", "StallCounts", "judge_pairs", "stall_counts"]


class PairsJudge:
    """The run-kind handler of accept for PairsRun."""

    def judge(self, run: PairsRun, criteria: Criteria, ctx: ReportContext) -> RunVerdict | None:
        if criteria.pairs is None:
            return None
        return judge_pairs(run, ctx.layout, criteria.pairs, criteria)


def judge_pairs(run: PairsRun, layout: Layout, crit: PairsCriteria, criteria: Criteria) -> RunVerdict:
    job = PairsJob.of(run, layout, crit, criteria)
    v = RunVerdict(run=job.name, benchmark="pairs", status=PASS)
    if job.ok_code is None:
        v.notes.append("status_names has no 'ok': nothing judged")
        v.status = INCONCLUSIVE
        return v
    if crit.latency.max_p99_us or any(h.max_p99_us for h in crit.hop_classes.values()):
        run.prefetch("latency_ns_p99")  # with the other views, from one read of a row table
    refs = references(job)
    lim = limits(job, refs, v.notes)
    rule_checks = make_checks(job, lim, refs)
    sc = scan(job, lim, rule_checks)
    flows = sc.flows
    # One pass over a row table serves the stall counts and the noise test's rows (sweep_rows).
    counts, found = None, None
    wanted = noise_keys(run, flows)
    fraction = crit.stalls.window_fraction if crit.stalls is not None and stalls_judged(run) else None
    if wanted is not None or fraction is not None:
        swept = sweep_rows(run, fraction, wanted)
        if swept is not None:
            counts, found = swept
    judge_noise(run, crit, flows, found)
    _rule_outcomes(job, sc, rule_checks, lim)
    checks = list(rule_checks.values())
    # a rule the run's message sizes cannot judge leaves the verdict inconclusive, never a silent pass
    checks += [Check(run=job.name, rule=rule, title=title, status=INCONCLUSIVE, detail=why)
               for rule, title, why in lim.unjudged]
    stalls = StallTest.none(job.n)
    if crit.stalls is not None:
        stall_check, flows, stalls = judge_stalls(job, flows, counts)
        checks.append(stall_check)
    checks.append(_coverage(job, sc))
    v.checks = checks
    if sc.overflow:
        v.notes.append(f"more than {MAX_FLOWS} failing flows: a fabric-wide problem (or criteria that do not fit "
                       "this fabric); suspects are not named")
    else:
        v.suspects = attribute(job, flows, sc, stalls, v.notes)
    v.failing_pairs, v.inconclusive_pairs = _listings(job, flows, lim)
    v.retest = _retest_pairs(job, v, flows)
    v.status = combine(c.status for c in checks)
    return v


def _rule_outcomes(job: PairsJob, sc: Scan, checks: dict[int, Check], lim: Limits) -> None:
    """Each rule's status after noise: its inconclusive flows leave its failing ones; examples."""
    flows = sc.flows
    incon = flows.inconclusive
    upper = flows.src < flows.dst
    for bit, check in checks.items():
        has = (flows.reasons & bit) != 0
        scope = has if check.unit == "directed pairs" else has & upper
        check.inconclusive = int(np.count_nonzero(scope & incon))
        check.failing -= check.inconclusive if not sc.overflow else 0
        check.status = FAIL if check.failing > 0 else INCONCLUSIVE if check.inconclusive else PASS
        if check.judged == 0:
            check.status = SKIPPED
            check.detail = "no pair to judge"
        check.examples = _examples(job, flows, bit, check.unit == "directed pairs", lim)
    if sc.errors and job.run.errors is not None and R_ERROR in checks:
        checks[R_ERROR].examples = [
            f"{job.layout.rank_name(int(a))} <-> {job.layout.rank_name(int(b))}: {m}"
            for (a, b), m in zip(job.run.errors.pair.tolist()[:20], job.run.errors.message[:20])]


def _coverage(job: PairsJob, sc: Scan) -> Check:
    """pairs.require_all_pairs: every pair (circle schedule) or every round of the plan measured."""
    run = job.run
    total = job.n * (job.n - 1) // 2
    every_pair = run.schedule == "circle"
    cover = Check(run=job.name, rule="pairs.require_all_pairs",
                  title="every pair measured" if every_pair else f"every round of the {run.schedule} plan measured",
                  status=PASS, judged=total, failing=sc.not_run if every_pair else 0, unit="pairs")
    short = run.rounds_done < run.rounds_total
    if every_pair and sc.not_run or short:
        cover.detail = (f"{sc.not_run} of {total} pairs not measured "
                        f"(rounds {run.rounds_done}/{run.rounds_total})")
        cover.status = FAIL if job.crit.require_all_pairs else SKIPPED
    elif not every_pair:
        cover.detail = f"the {run.schedule} plan leaves {sc.not_run} of {total} pairs out by design"
    return cover


def rule_limit(job: PairsJob, lim: Limits, bit: int, i: int, j: int) -> float:
    """The limit of one rule (a flows.py bit) for the flow i -> j: Gb/s for bandwidth rules, ns
    for latency rules; NaN when the rule has none for it."""
    if bit & (R_LAT_RATIO | R_CLASS50 | R_CLASS99):
        cls = int(job.layout.hop_class(np.array([i]), np.array([j]))[0, 0])
        table = lim.ratio_limit if bit == R_LAT_RATIO else lim.class50 if bit == R_CLASS50 else lim.class99
        return float(table[cls])
    if bit == R_BW_LINK:
        if lim.bw_link_scalar is not None:
            return float(lim.bw_link_scalar)
        if lim.bw_link_rate is not None and job.crit.min_link_fraction is not None:
            return float(job.crit.min_link_fraction * np.fmin(lim.bw_link_rate[i], lim.bw_link_rate[j]))
        return float("nan")
    scalar = {R_BW_ABS: lim.bw_abs, R_BW_REL: lim.bw_rel, R_LAT50_ABS: lim.lat50_abs, R_LAT99_ABS: lim.lat99_abs}
    value = scalar.get(bit)
    return float(value) if value is not None else float("nan")


def _p99(job: PairsJob, i: int, j: int) -> float:
    return float(job.run.latency_ns_p99[i, j]) if job.run.latency_ns_p99 is not None else float("nan")


def _examples(job: PairsJob, flows: Flows, bit: int, directed: bool, lim: Limits, limit: int = 10) -> list[str]:
    """The worst flows failing rule `bit`, each with the statistic that rule judges (p99 for the
    p99 rules) and that rule's own limit for it; latency in us, bandwidth in Gb/s."""
    sel = np.flatnonzero(((flows.reasons & bit) != 0) & ~flows.inconclusive &
                        (True if directed else flows.src < flows.dst))
    if not sel.size:
        return []
    sel = sel[np.argsort(flows.severity[sel], kind="stable")[:limit]]
    out = []
    for k in sel:
        i, j = int(flows.src[k]), int(flows.dst[k])
        a, b = job.layout.rank_name(i), job.layout.rank_name(j)
        rl = rule_limit(job, lim, bit, i, j)
        if bit & BW_BITS:
            out.append(f"{a} -> {b}: {fmt(float(flows.bw[k]))} Gb/s (limit {fmt(rl)} Gb/s)")
        elif bit & LAT50_BITS:
            out.append(f"{a} <-> {b}: p50 {fmt(float(flows.lat[k]) / 1e3)} us (limit {fmt(rl / 1e3)} us)")
        elif bit & LAT99_BITS:
            out.append(f"{a} <-> {b}: p99 {fmt(_p99(job, i, j) / 1e3)} us (limit {fmt(rl / 1e3)} us)")
        else:
            out.append(f"{a} <-> {b}: {job.run.status_name(int(job.run.status[i, j]))}")
    return out


def _listings(job: PairsJob, flows: Flows, lim: Limits) -> tuple[list[dict], list[dict]]:
    """The failing and the inconclusive pairs for JSON, worst first, MAX_LISTED of each. The limits
    are those of the rules the flow fails: bw_limit_gbps the highest of its failed bandwidth
    rules, latency_limit_ns the lowest of its failed p50 rules, latency_p99_limit_ns of its
    failed p99 rules (null when it fails none of that kind); `limits` each failed rule's own."""
    lay = job.layout
    failing: list[dict] = []
    inconclusive: list[dict] = []
    for target, mask in ((failing, ~flows.inconclusive), (inconclusive, flows.inconclusive)):
        sel = np.flatnonzero(mask)
        sel = sel[np.argsort(flows.severity[sel], kind="stable")][:MAX_LISTED]
        for k in sel:
            i, j, r = int(flows.src[k]), int(flows.dst[k]), int(flows.reasons[k])
            own = {bit: rule_limit(job, lim, bit, i, j) for bit in REASON_NAMES if r & bit and bit not in
                   (R_ERROR, R_BW_STALL)}
            bw_lims = [v for b, v in own.items() if b & BW_BITS and np.isfinite(v)]
            lat_lims = [v for b, v in own.items() if b & LAT50_BITS and np.isfinite(v)]
            p99_lims = [v for b, v in own.items() if b & LAT99_BITS and np.isfinite(v)]
            target.append({
                "from": lay.rank_name(i), "to": lay.rank_name(j), "ranks": [i, j],
                "hop_class": HOP_CLASSES[int(lay.hop_class(np.array([i]), np.array([j]))[0, 0])],
                "failed": reason_names(r),
                "bw_gbps": round_sig(float(flows.bw[k])),
                "bw_limit_gbps": round_sig(max(bw_lims)) if bw_lims else None,
                "latency_ns_p50": round_sig(float(flows.lat[k])),
                "latency_limit_ns": round_sig(min(lat_lims)) if lat_lims else None,
                "latency_ns_p99": round_sig(_p99(job, i, j)) if p99_lims else None,
                "latency_p99_limit_ns": round_sig(min(p99_lims)) if p99_lims else None,
                "limits": {REASON_NAMES[b]: round_sig(v) for b, v in own.items()},
                "stalled_windows": int(flows.stalled[k]),
            })
    return failing, inconclusive


def _retest_pairs(job: PairsJob, v: RunVerdict, flows: Flows) -> list[tuple[int, int]]:
    """The suspects' re-test pairs, then the inconclusive flows, worst first."""
    pairs: list[tuple[int, int]] = []
    for s in v.suspects:
        pairs.extend(s.retest)
    sel = np.flatnonzero(flows.inconclusive)
    sel = sel[np.argsort(flows.severity[sel], kind="stable")]
    pairs.extend((int(flows.src[k]), int(flows.dst[k])) for k in sel[: job.criteria.retest.max_pairs])
    return pairs
