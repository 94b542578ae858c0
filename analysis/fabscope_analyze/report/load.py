"""The "Fabric under load" part of the report: shift and congestion runs (results/SCHEMA.md).

shift: effective throughput per step and the median / slowest flow of each step; the per-flow
bandwidth histogram by hop class (collisions show as a slow mode below the main one); the N x N
loaded / idle bandwidth ratio in topology order (idle: the bw_gbps of a pairs run in the same
file; without one the loaded matrix itself, and the page says so); above FULL_HEATMAP_MAX ranks
worst and median per leaf pair (or block of ranks).

congestion: every victim's impact factors per aggressor pattern (victims grouped by the hop
class to their ring partner), box plots by hop class, the distributions of victim latency and
bandwidth per phase; tables by hop class, the most impacted victims, allreduce and aggressors,
counter totals per phase.

Every text from the file is HTML-escaped (htmlpage.esc); figures go through the report's `save`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from fabscope_analyze import load, plots, stats
from fabscope_analyze.context import ReportContext
from fabscope_analyze.criteria import Criteria
from fabscope_analyze.htmlpage import esc, fmt, table
from fabscope_analyze.layout import HOP_CLASSES, Layout
from fabscope_analyze.reader import VICTIM_IMPACTS, CongestionRun, Counters, Host, PairsRun, ShiftRun
from fabscope_analyze.report.common import FULL_HEATMAP_MAX, ReportKind, Save, axis_labels, leaf_groups

CDF_MAX_SAMPLES = 200_000  # per phase and metric in the victims' distribution figure
WORST_STEPS = 5
WORST_VICTIMS = 10


class ShiftKind(ReportKind):
    under_load = True

    def headline(self, run: ShiftRun, ctx: ReportContext) -> str:
        return shift_headline(run, ctx.layout, ctx.link_rate_gbps, ctx)

    def sizes(self, run: ShiftRun) -> str:
        return plots.format_bytes(run.size_bytes)

    def figures(self, run: ShiftRun, ctx: ReportContext, title: str, save: Save) -> None:
        idle = load.idle_reference(ctx.run_file, run)
        shift_figures(run, ctx.hosts, ctx.layout, title, save, idle, ctx.criteria, ctx)

    def section(self, run: ShiftRun, ctx: ReportContext) -> str:
        idle = load.idle_reference(ctx.run_file, run)
        return shift_html(run, ctx.hosts, ctx.layout, idle, ctx.link_rate_gbps, ctx)


class CongestionKind(ReportKind):
    under_load = True

    def headline(self, run: CongestionRun, ctx: ReportContext) -> str:
        return congestion_headline(run, ctx.layout)

    def sizes(self, run: CongestionRun) -> str:
        return f"lat {plots.format_bytes(run.lat_size_bytes)}, bw {plots.format_bytes(run.bw_size_bytes)}"

    def figures(self, run: CongestionRun, ctx: ReportContext, title: str, save: Save) -> None:
        congestion_figures(run, ctx.hosts, ctx.layout, title, save, ctx.criteria)

    def section(self, run: CongestionRun, ctx: ReportContext) -> str:
        return congestion_html(run, ctx.hosts, ctx.layout)


# --- shift ----------------------------------------------------------------------------------------


@dataclass
class ShiftSummary:
    eff: load.Effective
    flows: load.FlowProfile


def shift_summary(run: ShiftRun, layout: Layout, link_rate_gbps: float | None = None,
                  ctx: ReportContext | None = None) -> ShiftSummary:
    """Effective throughput (at link_rate_gbps, else the file's rates) and the flow profile; once
    per run and link rate in a report (ctx, whose layout `layout` must be)."""
    assert ctx is None or layout is ctx.layout
    return ShiftSummary(shift_effective(run, layout, link_rate_gbps, ctx),
                        ctx.memo(run, "flow_profile", lambda: load.flow_profile(run, layout)) if ctx is not None
                        else load.flow_profile(run, layout))


def shift_effective(run: ShiftRun, layout: Layout, link_rate_gbps: float | None = None,
                    ctx: ReportContext | None = None) -> load.Effective:
    assert ctx is None or layout is ctx.layout

    def compute() -> load.Effective:
        return load.effective_throughput(run, layout, link_rate_gbps)

    return ctx.memo(run, "effective", compute, key=link_rate_gbps) if ctx is not None else compute()


def shift_headline(run: ShiftRun, layout: Layout | None, link_rate_gbps: float | None = None,
                   ctx: ReportContext | None = None) -> str:
    done = run.done()
    agg = run.step_aggregate_gbps[done]
    text = f"{run.pattern}, {plots.format_bytes(run.size_bytes)} B; steps {run.steps_done}/{run.steps_total}"
    if layout is not None:
        eff = shift_effective(run, layout, link_rate_gbps, ctx)
        pct = eff.pct[done]
        if eff.known and np.isfinite(pct).any():
            worst = int(np.nanargmin(pct))
            return (f"{text}; effective throughput median {fmt(stats.nan_median(pct), 3)}%, min "
                    f"{fmt(float(pct[worst]), 3)}% ({run.step_label(int(np.flatnonzero(done)[worst]))})")
    return f"{text}; aggregate median {fmt(stats.nan_median(agg))} Gb/s, min {fmt(stats.nan_min(agg))} Gb/s"


def shift_figures(run: ShiftRun, hosts: Sequence[Host], layout: Layout, title: str, save: Save,
                  idle: PairsRun | None, criteria: Criteria | None = None, ctx: ReportContext | None = None) -> None:
    crit = criteria.shift if criteria is not None else None
    summ = shift_summary(run, layout, criteria.link_rate_gbps if criteria is not None else None, ctx)
    x = load.step_x(run)
    xlabel = load.step_x_label(run)
    if summ.eff.known:
        limit = crit.min_effective_pct if crit is not None else None
        marks = None
        if limit is not None:
            with np.errstate(invalid="ignore"):
                marks = summ.eff.pct < limit
        med = summ.eff.median()
        first = plots.StepPanel(x, xlabel, "effective throughput (% of N x link rate)",
                                [("per step", summ.eff.pct, "o-"), (f"median {fmt(med, 3)}%",
                                                                   np.full(x.size, med), "--")],
                                limit=limit, limit_label=f"limit {fmt(limit or 0)}%", marks=marks)
    else:
        agg = run.step_aggregate_gbps
        first = plots.StepPanel(x, xlabel, "aggregate throughput (Gb/s, sum of the flows)",
                                [("per step", agg, "o-"), ("median", np.full(x.size, stats.nan_median(agg)), "--")])
    second = plots.StepPanel(x, xlabel, "flow bandwidth (Gb/s)",
                             [("median flow", summ.flows.medians, "o-"), ("slowest flow", summ.flows.slowest, "v-")])
    note = "" if summ.eff.known else "; link rate unknown: aggregate shown"
    save(plots.steps_figure([first, second], title=f"{title}\nthroughput per step ({summ.eff.rate_text}){note}"),
         "load-steps", f"effective throughput and flow bandwidth per step, run {run.info.name}")

    hist = summ.flows
    series = [("all flows", hist.counts.sum(axis=0), "#9ecae1")]
    classes = hist.present()
    if len(classes) > 1:
        series += [(HOP_CLASSES[c], hist.counts[c], plots.HOP_CLASS_COLOURS[c]) for c in classes]
    overall = stats.nan_median(hist.medians)
    marks = [(load.SLOW_FLOW_FRACTION * overall, f"{load.SLOW_FLOW_FRACTION:g} x the median flow")] \
        if np.isfinite(overall) else []
    save(plots.histogram_figure(hist.edges, series, title=f"{title}\nper-flow bandwidth, {hist.total:,} flows of "
                                f"{run.steps_done} steps (a slow mode = flows colliding)",
                                xlabel=f"flow bandwidth (Gb/s), {plots.format_bytes(run.size_bytes)} B messages",
                                marks=marks),
         "load-flows", f"per-flow bandwidth histogram by hop class, run {run.info.name}")
    _ratio_figures(run, hosts, layout, title, save, idle)


def _ratio_figures(run: ShiftRun, hosts: Sequence[Host], layout: Layout, title: str, save: Save,
                   idle: PairsRun | None) -> None:
    if idle is not None:
        m = load.loaded_vs_idle(run, idle)
        what = f"loaded / idle bandwidth\n(idle: pairs run {idle.info.name})"
        cbar, cmap, center = "bandwidth under load / idle (1 = as fast as idle)", "RdBu", 1.0
        kind, alt = "load-ratio", f"loaded vs idle bandwidth ratio per pair, run {run.info.name}"
    else:
        m = run.bw_gbps
        what = "bandwidth under load\n(no pairs run in this file: no idle reference)"
        cbar, cmap, center = "bandwidth under load (Gb/s)", "viridis", None
        kind, alt = "load-bw", f"bandwidth under load per pair (no idle reference), run {run.info.name}"
    n = run.n_ranks
    if n <= FULL_HEATMAP_MAX:
        order = layout.order
        arranged = m[np.ix_(order, order)]
        labels = axis_labels(hosts, order)
        save(plots.heatmap_figure(arranged, labels, title=f"{title}\n{what}\nrow sends to column, topology order",
                                  cbar_label=cbar, cmap=cmap, center=center, xlabel="receiver: rank host",
                                  ylabel="sender: rank host", groups=leaf_groups(layout),
                                  value_format="{:.2f}" if center is not None else None), kind, alt)
    else:
        names, bounds = layout.blocks()
        worst, med = stats.block_reduce(m, bounds, layout.order, "min")
        save(plots.block_heatmap_figure([("worst (lowest) per block pair", worst), ("median per block pair", med)],
                                        names, title=f"{title}\n{what}; {len(names)} blocks, row sends to column",
                                        cbar_label=cbar, cmap=cmap if center is None else "RdYlBu"), kind, alt)
    if idle is not None:
        del m


def shift_html(run: ShiftRun, hosts: Sequence[Host], layout: Layout, idle: PairsRun | None,
               link_rate_gbps: float | None = None, ctx: ReportContext | None = None) -> str:
    summ = shift_summary(run, layout, link_rate_gbps, ctx)
    parts = []
    ref = (f"idle reference: pairs run {esc(idle.info.name)} ({esc(plots.format_bytes(idle.bw_size_bytes))} B "
           f"messages{'' if idle.bw_size_bytes == run.size_bytes else ', a different size than this run'})"
           if idle is not None else
           "<strong>no pairs run in this file</strong>: the heatmap shows the loaded bandwidth alone, "
           "not its ratio to idle (run <code>pairs</code> in the same suite for that)")
    parts.append(f"<p>{esc(run.pattern)} pattern, {esc(run.n_ranks)} ranks, {esc(plots.format_bytes(run.size_bytes))} B "
                 f"messages, windows of {esc(run.window)}; effective throughput from {esc(summ.eff.rate_text)}; "
                 f"{ref}.</p>")
    done = np.flatnonzero(run.done())
    if done.size:
        key = summ.eff.pct if summ.eff.known else run.step_aggregate_gbps
        order = done[np.argsort(np.where(np.isfinite(key[done]), key[done], np.inf), kind="stable")][:WORST_STEPS]
        rows = []
        for s in order:
            s = int(s)
            slow = load.slowest_flows(run, s, 1)
            slow_text = f"{layout.rank_name(slow[0][0])} \u2192 {layout.rank_name(slow[0][1])}: {fmt(slow[0][2])}" \
                if slow else "\u2013"
            rows.append([esc(run.step_label(s)), fmt(float(run.step_aggregate_gbps[s])),
                         fmt(float(summ.eff.pct[s]), 3), fmt(float(summ.flows.medians[s])), esc(slow_text),
                         f"{int(summ.flows.slow[s]):,}", fmt(float(run.step_seconds[s]), 3)])
        parts.append(f"<p>The {len(order)} steps with the lowest throughput:</p>" + table(
            ["step", "aggregate (Gb/s)", "effective (%)", "median flow (Gb/s)", "slowest flow (Gb/s)",
             f"flows below {load.SLOW_FLOW_FRACTION:g} x median", "step time (s)"], rows, "load-steps"))
        classes = summ.flows.classes
        if len(classes) > 1:
            rows = [[esc(c), f"{k:,}", fmt(med), fmt(p10), fmt(low)] for c, k, med, p10, low in classes]
            parts.append("<p>Flows by hop class (sender to receiver):</p>" + table(
                ["hop class", "flows", "median (Gb/s)", "p10 (Gb/s)", "min (Gb/s)"], rows, "load-flow-classes"))
    else:
        parts.append('<p class="bad">No step was measured.</p>')
    errors = run.errors
    if errors is not None and errors.step.size:
        rows = [[esc(run.step_label(int(st))), esc(layout.rank_name(int(a))), esc(layout.rank_name(int(b))),
                 f'<span class="bad">{"timeout" if code == 3 else "failed"}</span>', esc(msg)]
                for st, a, b, code, msg in zip(errors.step[:20], errors.rank, errors.peer, errors.status, errors.message)]
        parts.append(f'<p class="bad">{errors.step.size} flow(s) failed or timed out (their bandwidth is not counted)'
                     + (", the first 20:" if errors.step.size > 20 else ":") + "</p>"
                     + table(["step", "sender", "receiver", "status", "message"], rows, "load-errors"))
    return "\n".join(parts)


# --- congestion -----------------------------------------------------------------------------------


def _measured(run: CongestionRun) -> list[int]:
    """Indices q of the aggressor phases measured."""
    return [int(q) for q in np.flatnonzero(load.measured_phases(run))]


def congestion_headline(run: CongestionRun, layout: Layout | None) -> str:
    qs = _measured(run)
    text = (f"{run.victims.size} victims, {run.aggressors.size} aggressors; patterns "
            f"{', '.join(run.loaded_phases[q] for q in qs) or 'none measured'}")
    if qs and run.victims.size:
        text += "; latency p99 impact median / max: " + ", ".join(
            f"{run.loaded_phases[q]} {fmt(stats.nan_median(run.impact_latency_p99[q]), 3)} / "
            f"{fmt(stats.nan_max(run.impact_latency_p99[q]), 3)}" for q in qs)
    return text


def _victim_order(run: CongestionRun, layout: Layout) -> tuple[np.ndarray, list[tuple[str, int, int]]]:
    """Victim indices in display order (by hop class to the partner, then topology position) and
    the (class, start, stop) groups."""
    cls = load.victim_classes(run, layout)
    pos = np.empty(layout.n, dtype=np.int64)
    pos[layout.order] = np.arange(layout.n)
    order = np.lexsort((pos[run.victims], cls)) if run.victims.size else np.empty(0, np.int64)
    groups = []
    sorted_cls = cls[order]
    for c in np.unique(sorted_cls):
        idx = np.flatnonzero(sorted_cls == c)
        groups.append((HOP_CLASSES[int(c)], int(idx[0]), int(idx[-1]) + 1))
    return order, groups


def congestion_figures(run: CongestionRun, hosts: Sequence[Host], layout: Layout, title: str, save: Save,
                       criteria: Criteria | None = None) -> None:
    crit = criteria.congestion if criteria is not None else None
    qs = _measured(run)
    order, groups = _victim_order(run, layout)
    cls = load.victim_classes(run, layout)
    if qs and run.victims.size:
        panels = []
        for k in qs:
            pattern = run.loaded_phases[k]
            series = [(load.IMPACT_TITLES[m], run.impact(m)[k][order]) for m in VICTIM_IMPACTS]
            limits = []
            if crit is not None and (crit.patterns is None or pattern in crit.patterns):
                for m in VICTIM_IMPACTS:
                    lim = np.array([crit.limit(m, HOP_CLASSES[int(c)]) or np.nan for c in cls[order]], dtype=np.float64)
                    if np.isfinite(lim).any():
                        limits.append((f"limit {load.IMPACT_TITLES[m]}", lim))
            panels.append(plots.ImpactPanel(f"under {pattern}", series, groups, limits))
        save(plots.impact_victims_figure(panels, title=f"{title}\nimpact factor of every victim per aggressor pattern "
                                         "(>1 = worse under load; bandwidth: isolated / loaded)"),
             "load-impact-victims", f"congestion impact factor of every victim per aggressor pattern, run {run.info.name}")
        present = [int(c) for c in np.unique(cls)]
        box_panels, limits = [], []
        for m in VICTIM_IMPACTS:
            data = [[run.impact(m)[k][cls == c] for c in present] for k in qs]
            box_panels.append((f"{load.IMPACT_TITLES[m]} impact", [HOP_CLASSES[c] for c in present],
                               [run.loaded_phases[k] for k in qs], data))
            limits.append(crit.impact.get(m) if crit is not None else None)
        save(plots.impact_box_figure(box_panels, title=f"{title}\nimpact factor by hop class (victim to ring partner) "
                                     "and aggressor pattern", limits=limits),
             "load-impact-classes", f"congestion impact factor by hop class and pattern, run {run.info.name}")
    cdfs = _phase_cdfs(run)
    if cdfs:
        save(plots.cdf_figure(cdfs, title=f"{title}\nvictims' samples per phase (isolated, then under each pattern)",
                              ylabel="fraction of samples \u2264 x"),
             "load-phases", f"victim latency and bandwidth distributions per phase, run {run.info.name}")


def _phase_cdfs(run: CongestionRun) -> list[plots.Cdf]:
    rng = np.random.default_rng(7)

    def sample(x: np.ndarray) -> np.ndarray:
        x = np.ravel(x)
        x = x[np.isfinite(x)]
        return x if x.size <= CDF_MAX_SAMPLES else rng.choice(x, CDF_MAX_SAMPLES, replace=False)

    out = []
    if run.latency_ns is not None and run.latency_ns.size:
        out.append(plots.Cdf(f"victim one-way latency (us), {plots.format_bytes(run.lat_size_bytes)} B",
                             [(p, sample(run.latency_ns[k]) / 1e3)
                              for k, p in enumerate(run.phases[:run.phases_done])]))
    if run.bw_gbps is not None and run.bw_gbps.size:
        out.append(plots.Cdf(f"victim window bandwidth (Gb/s), {plots.format_bytes(run.bw_size_bytes)} B",
                             [(p, sample(run.bw_gbps[k])) for k, p in enumerate(run.phases[:run.phases_done])]))
    return out


def congestion_html(run: CongestionRun, hosts: Sequence[Host], layout: Layout) -> str:
    idle = int(np.count_nonzero(run.role == 0))
    parts = [f"<p>{run.victims.size} victims ({esc(run.placement)} placement, victim fraction "
             f"{esc(fmt(run.victim_fraction, 3))}), {run.aggressors.size} aggressors"
             + (f", {idle} idle" if idle else "") + f"; victims measure "
             f"{esc(plots.format_bytes(run.lat_size_bytes))} B latency and {esc(plots.format_bytes(run.bw_size_bytes))} B "
             f"bandwidth to their ring partner and an allreduce among themselves, alone and while the aggressors run "
             f"{esc(', '.join(run.patterns))} ({esc(plots.format_bytes(run.aggressor_size_bytes))} B). Impact factor = "
             "loaded / isolated (bandwidth: isolated / loaded): 1 = no effect, 2 = twice as bad.</p>"]
    qs = _measured(run)
    missing = [p for k, p in enumerate(run.loaded_phases) if k not in qs]
    missing += [p for p in run.patterns if p not in run.loaded_phases]
    if missing:
        parts.append(f'<p class="bad">Patterns not measured (the run stopped): {esc(", ".join(missing))}.</p>')
    if not qs or not run.victims.size:
        return "\n".join(parts)
    rows = []
    measured = {run.loaded_phases[k] for k in qs}
    for r in load.impact_by_class(run, layout, VICTIM_IMPACTS):
        if r.pattern not in measured:
            continue
        rows.append([esc(r.pattern), esc(r.hop_class), f"{r.victims:,}"]
                    + [f"{fmt(r.median[m], 3)} / {fmt(r.worst[m], 3)}" for m in VICTIM_IMPACTS])
    parts.append("<p>Impact factor by hop class (victim to its ring partner), median / max over the victims:</p>"
                 + table(["pattern", "hop class", "victims"] + [f"{esc(load.IMPACT_TITLES[m])}" for m in VICTIM_IMPACTS],
                         rows, "load-impact"))
    worst = load.worst_victims(run, "latency_p99", WORST_VICTIMS)
    cls = load.victim_classes(run, layout)
    partners = run.partners
    rows = [[esc(layout.rank_name(int(run.victims[v]))), esc(layout.rank_name(int(partners[v]))),
             esc(HOP_CLASSES[int(cls[v])]), esc(run.loaded_phases[q])]
            + [fmt(float(run.impact(m)[q, v]), 3) for m in VICTIM_IMPACTS] for v, q in worst]
    if rows:
        parts.append(f"<p>The {len(rows)} victims with the highest latency p99 impact (their worst pattern):</p>"
                     + table(["victim", "ring partner", "hop class", "pattern"]
                             + [esc(load.IMPACT_TITLES[m]) for m in VICTIM_IMPACTS], rows, "load-victims"))
    rows = []
    for k in qs:
        p = run.loaded_phases[k]
        pushed = run.aggressor_gbps[k]
        pushed = pushed[np.isfinite(pushed)]
        rows.append([esc(p), fmt(float(run.impact_allreduce_p50[k]), 3), fmt(float(run.impact_allreduce_p99[k]), 3),
                     f"{pushed.size:,}", fmt(float(pushed.sum())) if pushed.size else "\u2013",
                     fmt(float(np.median(pushed))) if pushed.size else "\u2013"])
    parts.append("<p>Allreduce among the victims, and what the aggressors pushed:</p>" + table(
        ["pattern", "allreduce p50 impact", "allreduce p99 impact", "aggressors", "pushed, total (Gb/s)",
         "pushed, median per aggressor (Gb/s)"], rows, "load-allreduce"))
    if run.phase_counters:
        parts.append(phase_counters_table(run.phase_counters))
    return "\n".join(parts)


def phase_counters_table(counters: dict[str, Counters] | object) -> str:
    """Counter totals over the ranks per phase (isolated, then each pattern): ECN / CNP, out of
    sequence, pause frames... side by side."""
    phases = list(counters)  # type: ignore[arg-type]
    names: list[str] = []
    for c in counters.values():  # type: ignore[attr-defined]
        names += [n for n in c.names if n not in names]
    rows = []
    for name in names:
        cells = [esc(name)]
        for p in phases:
            c = counters[p]  # type: ignore[index]
            if name not in c.names:
                cells.append("\u2013")
                continue
            d = c.delta[:, c.names.index(name)]
            d = d[d >= 0]
            cells.append(f"{int(d.sum()):,}" if d.size else "\u2013")
        rows.append(cells)
    return ("<p>Counter deltas per phase, summed over the ranks reporting them (-1 in the file = absent):</p>"
            + table(["counter"] + [esc(p) for p in phases], rows, "load-counters"))
