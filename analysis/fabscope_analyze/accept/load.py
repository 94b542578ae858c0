"""Acceptance of runs under load (results/SCHEMA.md) against the `congestion` and `shift`
sections of a criteria file (configs/criteria/README.md says the same for users).

congestion: every victim's impact factor under every aggressor pattern judged (`patterns`: only
those) is held against its limit: the limit of the victim's hop class (victim -> ring partner,
from /topology) when `hop_classes` gives one, else the general one. The victims' allreduce impact
is judged per pattern. Suspects: the failing victims, worst (highest impact / limit) first.

shift: every measured step's effective throughput (100 x aggregate / (N x link rate); link rate:
the criteria's link_rate_gbps, else the file's, else the ranks' port rates) must reach
min_effective_pct, their median min_median_effective_pct. Suspects: the failing steps, lowest
first, with their slowest flows (the collisions).

Partial runs: steps or patterns not measured fail `require_all_steps` / `require_all_patterns`
(or are skipped when those are false); what was measured is judged as usual.
"""

from __future__ import annotations

import math

import numpy as np

from fabscope_analyze import load, stats
from fabscope_analyze.context import ReportContext
from fabscope_analyze.criteria import CongestionCriteria, Criteria, ShiftCriteria
from fabscope_analyze.layout import HOP_CLASSES, Layout
from fabscope_analyze.reader import ALLREDUCE_IMPACTS, VICTIM_IMPACTS, CongestionRun, ShiftRun
from fabscope_analyze.verdict import FAIL, PASS, SKIPPED, Check, RunVerdict, Suspect, combine, fmt, round_sig

MAX_EXAMPLES = 10


class CongestionJudge:
    """The run-kind handler of accept for CongestionRun."""

    def judge(self, run: CongestionRun, criteria: Criteria, ctx: ReportContext) -> RunVerdict | None:
        if criteria.congestion is None:
            return None
        return judge_congestion(run, criteria.congestion, ctx.layout, criteria)


class ShiftJudge:
    """The run-kind handler of accept for ShiftRun."""

    def judge(self, run: ShiftRun, criteria: Criteria, ctx: ReportContext) -> RunVerdict | None:
        if criteria.shift is None:
            return None
        return judge_shift(run, criteria.shift, ctx.layout, criteria)


# --- congestion -----------------------------------------------------------------------------------


def judge_congestion(run: CongestionRun, crit: CongestionCriteria, layout: Layout, criteria: Criteria) -> RunVerdict:
    v = RunVerdict(run=run.info.name, benchmark="congestion", status=PASS)
    phases = run.loaded_phases
    asked = list(crit.patterns) if crit.patterns is not None else list(run.patterns)
    not_in_run = [p for p in asked if p not in run.patterns]
    if not_in_run:
        v.notes.append(f"patterns {', '.join(not_in_run)} are not part of this run (it ran "
                       f"{', '.join(run.patterns) or 'none'}): not judged")
    measured = load.measured_phases(run)
    in_run = [p for p in asked if p in run.patterns]
    not_done = [p for p in in_run if p not in phases or not measured[phases.index(p)]]
    cover = Check(run=v.run, rule="congestion.require_all_patterns", title="every aggressor pattern measured",
                  status=PASS, judged=len(in_run), failing=len(not_done), unit="patterns")
    if not_done:
        cover.detail = f"not measured: {', '.join(not_done)}"
        cover.status = FAIL if crit.require_all_patterns else SKIPPED
    judge_q = [q for q, p in enumerate(phases) if p in in_run and measured[q]]
    cls = load.victim_classes(run, layout)
    names = [HOP_CLASSES[int(c)] for c in cls]
    partners = run.partners
    n_v = run.victims.size
    # per victim: (failing, judged, worst severity, what failed)
    failing = np.zeros(n_v, dtype=np.int64)
    judged_v = np.zeros(n_v, dtype=np.int64)
    severity = np.zeros(n_v)
    failures: list[list[tuple[str, str, float, float]]] = [[] for _ in range(n_v)]  # (pattern, metric, value, limit)

    def victim_text(k: int) -> str:
        return (f"{layout.rank_name(int(run.victims[k]))} -> {layout.rank_name(int(partners[k]))} "
                f"({names[k]})")

    for m in VICTIM_IMPACTS:
        lim = np.array([crit.limit(m, names[k]) if crit.limit(m, names[k]) is not None else np.nan
                        for k in range(n_v)], dtype=np.float64)
        general = crit.impact.get(m)
        per_class = {c: crit.hop_classes[c].get(m) for c in crit.hop_classes if crit.hop_classes[c].get(m) is not None}
        if general is None and not per_class:
            continue
        title_title = load.IMPACT_TITLES[m]
        parts = [] if general is None else [fmt(general)]
        parts += [f"{c} {fmt(x)}" for c, x in per_class.items()]
        check = Check(run=v.run, rule=f"congestion.max_impact_{m}",
                      title=f"{title_title} impact factor of every victim <= {', '.join(parts)}",
                      status=PASS, unit="victims x patterns")
        imp = run.impact(m)
        examples: list[tuple[float, str]] = []
        for q in judge_q:
            x = imp[q]
            ok = np.isfinite(x) & np.isfinite(lim)
            bad = ok & (x > lim)
            check.judged += int(ok.sum())
            check.failing += int(bad.sum())
            judged_v += ok
            failing += bad
            with np.errstate(invalid="ignore", divide="ignore"):
                sev = np.where(bad, x / lim, 0.0)
            severity = np.maximum(severity, sev)
            for k in np.flatnonzero(bad):
                failures[k].append((phases[q], m, float(x[k]), float(lim[k])))
                examples.append((float(sev[k]), f"{victim_text(int(k))} under {phases[q]}: {fmt(float(x[k]), 3)} "
                                                f"(limit {fmt(float(lim[k]))})"))
        present = {names[k] for k in range(n_v) if np.isfinite(lim[k])}
        unused = [c for c in per_class if c not in set(names)]
        if unused:
            v.notes.append(f"{m}: hop class limits for {', '.join(unused)} not used: no victim of that class")
        check.examples = [e for _, e in sorted(examples, key=lambda t: -t[0])[:MAX_EXAMPLES]]
        if check.judged == 0:
            check.status = SKIPPED
            check.detail = "no victim to judge" if present else "no victim of a class with a limit"
        elif check.failing:
            check.status = FAIL
        v.checks.append(check)

    for m in ALLREDUCE_IMPACTS:
        lim = getattr(crit, f"max_impact_{m}")
        if lim is None:
            continue
        x = run.impact(m)
        judged = [q for q in judge_q if np.isfinite(x[q])]
        bad = [q for q in judged if x[q] > lim]
        check = Check(run=v.run, rule=f"congestion.max_impact_{m}",
                      title=f"{load.IMPACT_TITLES[m]} impact factor (the victims' allreduce) <= {fmt(lim)} per pattern",
                      status=FAIL if bad else PASS if judged else SKIPPED, judged=len(judged), failing=len(bad),
                      unit="patterns", examples=[f"{phases[q]}: {fmt(float(x[q]), 3)} (limit {fmt(lim)})" for q in bad])
        if not judged:
            check.detail = "no pattern to judge"
        v.checks.append(check)
    v.checks.append(cover)

    # suspects: the failing victims, worst first
    max_s = criteria.attribution.max_suspects
    bad_v = np.flatnonzero(failing > 0)
    bad_v = bad_v[np.argsort(-severity[bad_v], kind="stable")]
    for k in bad_v[:max_s]:
        k = int(k)
        worst = sorted(failures[k], key=lambda t: -t[2] / t[3])
        what = "; ".join(f"{load.IMPACT_TITLES[m]} impact {fmt(val, 3)} under {pat} (limit {fmt(lim)})"
                         for pat, m, val, lim in worst[:4])
        more = f" (+{len(worst) - 4} more)" if len(worst) > 4 else ""
        rank, partner = int(run.victims[k]), int(partners[k])
        v.suspects.append(Suspect(
            run=v.run, kind="victim", name=layout.rank_name(rank), failing=int(failing[k]), judged=int(judged_v[k]),
            evidence=f"victim measuring against {layout.rank_name(partner)} ({names[k]}): {what}{more}",
            details={"rank": rank, "host": layout.hostnames[rank], "partner_rank": partner,
                     "partner_host": layout.hostnames[partner], "hop_class": names[k],
                     "worst_impact_vs_limit": round_sig(float(severity[k])),
                     "failures": [{"pattern": pat, "impact": m, "value": round_sig(val), "limit": lim}
                                  for pat, m, val, lim in worst]},
        ))
    if bad_v.size > max_s:
        v.notes.append(f"{bad_v.size} victims fail; the {max_s} worst are named (attribution.max_suspects)")
    if bad_v.size >= 2:
        bad_classes = {names[int(k)] for k in bad_v}
        judged_ok = [k for k in range(n_v) if judged_v[k] and not failing[k]]
        ok_classes = sorted({names[k] for k in judged_ok} - bad_classes)
        if len(bad_classes) == 1 and ok_classes:
            c = next(iter(bad_classes))
            v.notes.append(f"all {bad_v.size} failing victims reach their ring partner through hop class {c}, and no "
                           f"victim of {', '.join(ok_classes)} fails: the congestion is where that class's traffic goes")
    v.status = combine(c.status for c in v.checks)
    return v


# --- shift -----------------------------------------------------------------------------------------


def judge_shift(run: ShiftRun, crit: ShiftCriteria, layout: Layout, criteria: Criteria) -> RunVerdict:
    v = RunVerdict(run=run.info.name, benchmark="shift", status=PASS)
    eff = load.effective_throughput(run, layout, criteria.link_rate_gbps)
    done = run.done()
    pct = np.where(done, eff.pct, np.nan)
    measured = done & np.isfinite(pct)
    failing_steps = np.empty(0, dtype=np.int64)
    if crit.min_effective_pct is not None:
        lim = crit.min_effective_pct
        check = Check(run=v.run, rule="shift.min_effective_pct",
                      title=f"effective throughput of every step >= {fmt(lim)}% ({eff.rate_text})", status=PASS,
                      unit="steps")
        if not eff.known:
            check.status, check.detail = SKIPPED, eff.rate_text
        else:
            with np.errstate(invalid="ignore"):
                bad = measured & (pct < lim)
            failing_steps = np.flatnonzero(bad)
            failing_steps = failing_steps[np.argsort(pct[failing_steps], kind="stable")]
            check.judged, check.failing = int(measured.sum()), int(bad.sum())
            check.status = FAIL if check.failing else PASS if check.judged else SKIPPED
            check.examples = [f"{run.step_label(int(s))}: {fmt(float(pct[s]), 3)}%" for s in failing_steps[:MAX_EXAMPLES]]
            if not check.judged:
                check.detail = "no step measured"
        v.checks.append(check)
    median = stats.nan_median(pct[measured])
    if crit.min_median_effective_pct is not None:
        lim = crit.min_median_effective_pct
        check = Check(run=v.run, rule="shift.min_median_effective_pct",
                      title=f"median effective throughput over the steps >= {fmt(lim)}% ({eff.rate_text})",
                      status=PASS, judged=1 if math.isfinite(median) else 0, unit="runs")
        if not eff.known:
            check.status, check.detail, check.judged = SKIPPED, eff.rate_text, 0
        elif not math.isfinite(median):
            check.status, check.detail = SKIPPED, "no step measured"
        else:
            check.detail = f"median {fmt(median, 3)}% over {int(measured.sum())} steps"
            if median < lim:
                check.status, check.failing = FAIL, 1
        v.checks.append(check)
    if crit.failed_flows == "fail":
        errors = run.errors
        count = 0 if errors is None else int(errors.step.size)
        check = Check(run=v.run, rule="shift.failed_flows", title="no flow failed or timed out",
                      status=FAIL if count else PASS, judged=int(done.sum()) * run.n_ranks, failing=count, unit="flows")
        if errors is not None:
            check.examples = [f"{run.step_label(int(st))}: {layout.rank_name(int(a))} -> {layout.rank_name(int(b))}: "
                              f"{'timeout' if code == 3 else 'failed'}: {msg}"
                              for st, a, b, code, msg in zip(errors.step[:MAX_EXAMPLES], errors.rank, errors.peer,
                                                             errors.status, errors.message)]
        v.checks.append(check)
    cover = Check(run=v.run, rule="shift.require_all_steps", title="every step measured", status=PASS,
                  judged=run.steps_total, failing=run.steps_total - run.steps_done, unit="steps")
    if run.steps_done < run.steps_total:
        cover.detail = f"{run.steps_done} of {run.steps_total} steps done (the run stopped)"
        cover.status = FAIL if crit.require_all_steps else SKIPPED
    v.checks.append(cover)

    max_s = criteria.attribution.max_suspects
    for s in failing_steps[:max_s]:
        s = int(s)
        flows = np.asarray(run.flow_gbps[s], dtype=np.float64)
        med = stats.nan_median(flows)
        with np.errstate(invalid="ignore"):
            slow = int(np.count_nonzero(flows < load.SLOW_FLOW_FRACTION * med))
        slowest = load.slowest_flows(run, s, 3)
        flows_text = ", ".join(f"{layout.rank_name(a)} -> {layout.rank_name(b)} {fmt(g, 3)} Gb/s" for a, b, g in slowest)
        v.suspects.append(Suspect(
            run=v.run, kind="step", name=f"{run.step_label(s)[len('step '):]} of {run.info.name}", failing=1, judged=1,
            evidence=f"effective throughput {fmt(float(pct[s]), 3)}% (limit {fmt(crit.min_effective_pct or 0)}%, "
                     f"median of the steps {fmt(median, 3)}%); {slow} of {int(np.isfinite(flows).sum())} flows below "
                     f"{load.SLOW_FLOW_FRACTION:g} x the step's median flow {fmt(med, 3)} Gb/s; slowest: {flows_text}",
            details={"step": s, "distance": s + 1 if run.pattern == "shift" else None,
                     "effective_pct": round_sig(float(pct[s])),
                     "aggregate_gbps": round_sig(float(run.step_aggregate_gbps[s])),
                     "median_flow_gbps": round_sig(med), "slow_flows": slow,
                     "slowest_flows": [{"from": layout.rank_name(a), "to": layout.rank_name(b), "ranks": [a, b],
                                        "gbps": round_sig(g)} for a, b, g in slowest]},
        ))
    if failing_steps.size > max_s:
        v.notes.append(f"{failing_steps.size} steps fail; the {max_s} lowest are named (attribution.max_suspects)")
    v.status = combine(c.status for c in v.checks)
    return v

