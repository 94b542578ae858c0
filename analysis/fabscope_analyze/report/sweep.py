"""Size sweeps (lat, bw, bibw) in the report: the metric over message size with its bands, the
message rate, the distribution of the raw samples at three sizes."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from fabscope_analyze import plots, stats
from fabscope_analyze.context import ReportContext
from fabscope_analyze.htmlpage import fmt
from fabscope_analyze.reader import Host, SweepRun
from fabscope_analyze.report.common import ReportKind, Save, endpoint, sizes_text


class SweepKind(ReportKind):
    def headline(self, run: SweepRun, ctx: ReportContext) -> str:
        return sweep_headline(run)

    def sizes(self, run: SweepRun) -> str:
        return sizes_text(run.size_bytes)

    def title_suffix(self, run: SweepRun, hosts: Sequence[Host]) -> str:
        return f", {endpoint(hosts, 0)} \u2194 {endpoint(hosts, 1)}" if len(hosts) >= 2 else ""

    def figures(self, run: SweepRun, ctx: ReportContext, title: str, save: Save) -> None:
        what = "latency (and its distribution)" if run.metric == "latency_ns" else "bandwidth and message rate"
        cdf = sweep_cdf(run) if run.metric == "latency_ns" else None
        save(plots.sweep_figure(run.size_bytes, sweep_panels(run), title=title, cdf=cdf), "sweep",
             f"{what} over message size, run {run.info.name}")


def sweep_headline(run: SweepRun) -> str:
    if run.size_bytes.size == 0:
        return "no sizes measured"
    if run.metric == "latency_ns":
        return (
            f"{plots.format_bytes(int(run.size_bytes[0]))} B: p50 {fmt(run.stat('p50')[0] / 1e3)} us, "
            f"p99 {fmt(run.stat('p99')[0] / 1e3)} us; {plots.format_bytes(int(run.size_bytes[-1]))} B: "
            f"p50 {fmt(run.stat('p50')[-1] / 1e3)} us"
        )
    p50 = run.stat("p50")
    best = int(np.nanargmax(p50)) if np.isfinite(p50).any() else 0
    return (
        f"peak p50 {fmt(p50[best])} {run.units} at {plots.format_bytes(int(run.size_bytes[best]))} B; "
        f"{plots.format_bytes(int(run.size_bytes[0]))} B: "
        f"{fmt(run.stat('p50', 'msg_rate_mpps')[0])} Mpps"
    )


def sweep_panels(run: SweepRun) -> list[plots.Panel]:
    """The panels of a size sweep: the metric (p50 line, min..p99 and p10..p90 bands) and, for
    bandwidth runs, the message rate."""
    units = run.units

    def bands(metric: str, samples: np.ndarray | None, scale: float = 1.0) -> list[plots.Band]:
        out = [plots.Band("min..p99", run.stat("min", metric) / scale, run.stat("p99", metric) / scale)]
        if samples is not None:
            lo, hi = stats.percentile_band(samples, 10, 90)
            out.append(plots.Band("p10..p90", lo / scale, hi / scale))
        return out

    if run.metric == "latency_ns":  # drawn in us, as every output shows latency
        return [
            plots.Panel(
                ylabel="one-way latency (us)",
                median=run.stat("p50") / 1e3,
                bands=bands(run.metric, run.samples, 1e3),
                lines=[plots.Line("p99.9", run.stat("p999") / 1e3, ":")],
                log_y=True,
            )
        ]
    what = "bidirectional bandwidth, both directions" if run.info.benchmark == "bibw" else "bandwidth"
    return [
        plots.Panel(
            ylabel=f"{what} ({units})",
            median=run.stat("p50"),
            bands=bands(run.metric, run.samples),
            lines=[plots.Line("overall (all bytes / all time)", run.summary[f"{run.metric}_overall"], "--")],
        ),
        plots.Panel(
            ylabel="message rate (Mpps)",
            median=run.stat("p50", "msg_rate_mpps"),
            bands=bands("msg_rate_mpps", None),
            log_y=True,
        ),
    ]


def sweep_cdf(run: SweepRun) -> plots.Cdf | None:
    """The distribution of the raw samples at the smallest, a middle and the largest size."""
    if run.samples is None or run.size_bytes.size == 0:
        return None
    picks = sorted({0, run.size_bytes.size // 2, run.size_bytes.size - 1})
    lat = run.metric == "latency_ns"
    what = "one-way latency" if lat else "window bandwidth"
    return plots.Cdf(
        xlabel=f"{what} ({'us' if lat else run.units})",
        series=[(f"{plots.format_bytes(int(run.size_bytes[i]))} B", run.samples[i] / (1e3 if lat else 1.0))
                for i in picks],
    )
