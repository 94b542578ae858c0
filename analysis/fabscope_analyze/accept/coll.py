"""Acceptance of a collectives run against the criteria's `coll` section: every measurement ran
and (with --check) gave correct results; scaling efficiency above a limit from 3 nodes on."""

from __future__ import annotations

import numpy as np

from fabscope_analyze.context import ReportContext
from fabscope_analyze.criteria import Criteria
from fabscope_analyze.layout import Layout
from fabscope_analyze.reader import CollRun
from fabscope_analyze.verdict import FAIL, PASS, SKIPPED, Check, RunVerdict, combine, fmt, size_text


class CollJudge:
    """The run-kind handler of accept for CollRun (judged with or without a `coll` section)."""

    def judge(self, run: CollRun, criteria: Criteria, ctx: ReportContext) -> RunVerdict | None:
        return judge_coll(run, criteria, ctx.layout)


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
