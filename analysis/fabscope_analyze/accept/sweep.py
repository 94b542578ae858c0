"""Acceptance of a size sweep (lat, bw, bibw) against the criteria's `sweeps.<benchmark>` rules:
per listed size, latency p50 / p99 limits, bandwidth p50 >= min_gbps and >= min_link_fraction x
the link rate (both directions for bibw). A failing size whose samples are too spread (the pairs
section's noise limits) with the optimistic decile meeting the limit is inconclusive."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from fabscope_analyze.context import ReportContext
from fabscope_analyze.criteria import Criteria, PairsCriteria, SweepRule
from fabscope_analyze.layout import Layout
from fabscope_analyze.reader import SweepRun
from fabscope_analyze.verdict import FAIL, INCONCLUSIVE, PASS, SKIPPED, Check, RunVerdict, combine, fmt, size_text


class SweepJudge:
    """The run-kind handler of accept for SweepRun."""

    def judge(self, run: SweepRun, criteria: Criteria, ctx: ReportContext) -> RunVerdict | None:
        rules = criteria.sweeps.get(run.info.benchmark)
        return judge_sweep(run, rules, ctx.layout, criteria) if rules else None


def judge_sweep(run: SweepRun, rules: Sequence[SweepRule], layout: Layout, criteria: Criteria) -> RunVerdict:
    v = RunVerdict(run=run.info.name, benchmark=run.info.benchmark, status=PASS)
    sizes = run.size_bytes.tolist()
    directions = 2 if run.info.benchmark == "bibw" else 1
    for rule in rules:
        where = f"sweeps.{run.info.benchmark}[size {size_text(rule.size)}]"
        if rule.size not in sizes:
            v.checks.append(Check(run=v.run, rule=where, title=f"the rules at {size_text(rule.size)} B",
                                  status=INCONCLUSIVE, unit="sizes",
                                  detail=f"not judged: size {size_text(rule.size)} not measured in this run "
                                  f"(sizes {size_text(sizes[0]) if sizes else '-'}..{size_text(sizes[-1]) if sizes else '-'})"))
            continue
        k = sizes.index(rule.size)
        x = run.samples[k] if run.samples is not None else None
        wide = None
        if x is not None and x.size >= 3:
            p10, p50, p90 = np.percentile(x, [10, 50, 90])
            wide = (p10, p90, (p90 - p10) / p50)
        tests: list[tuple[str, str, float, float, bool]] = []  # (key, title, value, limit, higher_is_better)
        if rule.max_p50_us is not None:
            tests.append(("max_p50_us", f"latency p50 at {size_text(rule.size)} B <= {fmt(rule.max_p50_us)} us",
                          float(run.stat("p50")[k]) / 1e3, rule.max_p50_us, False))
        if rule.max_p99_us is not None:
            tests.append(("max_p99_us", f"latency p99 at {size_text(rule.size)} B <= {fmt(rule.max_p99_us)} us",
                          float(run.stat("p99")[k]) / 1e3, rule.max_p99_us, False))
        if rule.min_gbps is not None:
            tests.append(("min_gbps", f"bandwidth p50 at {size_text(rule.size)} B >= {fmt(rule.min_gbps)} Gb/s",
                          float(run.stat("p50")[k]), rule.min_gbps, True))
        if rule.min_link_fraction is not None:
            rate = criteria.link_rate_gbps or float("nan")
            if not math.isfinite(rate) and layout.n >= 2 and np.isfinite(layout.rate_gbps[:2]).any():
                rate = float(np.nanmin(layout.rate_gbps[:2]))  # the lower port rate of ranks 0 and 1
            if math.isfinite(rate):
                lim = rule.min_link_fraction * rate * directions
                tests.append(("min_link_fraction", f"bandwidth p50 at {size_text(rule.size)} B >= "
                              f"{fmt(rule.min_link_fraction * 100)}% "
                              f"of {fmt(rate * directions)} Gb/s", float(run.stat("p50")[k]), lim, True))
            else:
                v.checks.append(Check(run=v.run, rule=where + ".min_link_fraction", title="link-rate rule",
                                      status=SKIPPED, unit="sizes", detail="no link rate known"))
        noise = criteria.pairs or PairsCriteria()  # the noise limits of the pairs section, or the defaults
        for key, title, value, limit, higher in tests:
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
            v.checks.append(Check(run=v.run, rule=f"{where}.{key}", title=title, status=status, judged=1,
                                  failing=int(status == FAIL), inconclusive=int(status == INCONCLUSIVE),
                                  unit="sizes", detail=detail))
    v.status = combine(c.status for c in v.checks)
    return v
