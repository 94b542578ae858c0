"""Metric history across runs (nightly regression runs) and change points.

Runs are ordered by their created_utc (then file name). Each file contributes headline metrics
(`metrics_of`): per size sweep `<run>/<metric>_<stat>@<size>`, per pairs run the median and
extreme over pairs (from the run's
summary/* when the file has one: a few KB per run, not its rows), per collective the bus bandwidth (barrier: time) per size and node count, per
shift run the median and lowest effective throughput of its steps, per congestion run the median
and highest impact factors of the victims per aggressor pattern.

Change points, the method: for every run k with at least `window` runs before it and
`window` runs from it on (fewer at the ends of short series, but at least 2 on each side), the
runs before and from k are compared with Welch's t-test (scipy.stats.ttest_ind, unequal
variances). k is a candidate when p < ALPHA, the medians of the two windows differ by at least
the threshold (relative) and the windows do not overlap (every run after is above, or every run
after is below, every run before: noise between nights rarely does that); of candidates closer than `window` runs to each other the one with the
smallest p is kept. A window without spread on both sides counts as p = 0 when the medians
differ. This finds level shifts that last at least `window` runs, not single outliers.
"""

from __future__ import annotations

import fnmatch
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from scipy import stats as sps

from fabscope_analyze import load, stats
from fabscope_analyze.htmlpage import CSS, FIGURE_DIR, FigureRef, esc, figure_html, slug, table
from fabscope_analyze.layout import build_layout
from fabscope_analyze.reader import CollRun, CongestionRun, PairsRun, RunFile, ShiftRun, SweepRun, check_results

ALPHA = 0.05


class TrendInputError(Exception):
    pass


@dataclass
class ChangePoint:
    index: int  # first run of the new level
    file: str
    created_utc: str
    before: float  # median of the window before
    after: float
    change: float  # after / before - 1
    p_value: float
    worse: bool


@dataclass
class Series:
    metric: str
    unit: str
    higher_is_better: bool
    values: list[float]  # per run (NaN where the run lacks it)
    change_points: list[ChangePoint] = field(default_factory=list)


@dataclass
class Trend:
    files: list[str]
    created: list[str]
    series: list[Series]
    available: list[str]
    threshold: float
    window: int


def _size(n: int) -> str:
    for shift, suffix in ((30, "G"), (20, "M"), (10, "K")):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift}{suffix}"
    return str(n)


def find_files(inputs: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for p in inputs:
        if p.is_dir():
            found = sorted(p.rglob("*.h5"))
            if not found:
                raise TrendInputError(f"{p}: no result files (*.h5) in this folder; pass folders or files that "
                                      "fabscope wrote")
            files += found
        else:
            files.append(p)  # read_results reports a missing or bad file
    return files


Metrics = dict[str, tuple[float, str, bool, bool]]  # metric -> (value, unit, higher_is_better, shown by default)


def metrics_of(rf: RunFile) -> Metrics:
    """metric -> (value, unit, higher_is_better, shown by default)."""
    out: Metrics = {}
    for run in rf.runs:
        add = METRICS.get(type(run))
        if add is not None:
            add(run, rf, run.info.name, out)
    return out


def _sweep_metrics(run: SweepRun, rf: RunFile, name: str, out: Metrics) -> None:
    higher = run.metric != "latency_ns"
    stats_ = ("p50", "p99") if not higher else ("p50",)
    default_size = 0 if not higher else run.size_bytes.size - 1
    for k, size in enumerate(run.size_bytes.tolist()):
        for st in stats_:
            out[f"{name}/{run.metric}_{st}@{_size(size)}"] = (
                float(run.stat(st)[k]), run.units, higher, k == default_size and st == "p50")


def _pairs_metrics(run: PairsRun, rf: RunFile, name: str, out: Metrics) -> None:
    sm = run.summary
    if sm is not None:  # the run's summary (version 2): a few KB, not every row
        out[f"{name}/bw_gbps_median"] = (sm.bw_gbps_median(), "Gb/s", True, True)
        out[f"{name}/bw_gbps_min"] = (sm.bw_gbps_min, "Gb/s", True, False)
        out[f"{name}/latency_ns_p50_median"] = (sm.latency_ns_p50_median(), "ns", False, True)
        out[f"{name}/latency_ns_p50_max"] = (sm.latency_ns_p50_max, "ns", False, False)
        bad = [c for c in (run.status_code("failed"), run.status_code("timeout")) if c is not None]
        out[f"{name}/pairs_not_ok"] = (float(sum(int(sm.status_rows[c]) for c in bad if c < sm.status_rows.size)),
                                       "pairs", False, False)
        return
    bw, _ = stats.offdiag_sample(run.bw_gbps, 1_000_000, seed=1)
    lat, _ = stats.offdiag_sample(run.latency_ns_p50, 1_000_000, seed=2)
    out[f"{name}/bw_gbps_median"] = (stats.nan_median(bw), "Gb/s", True, True)
    out[f"{name}/bw_gbps_min"] = (stats.nan_min(bw), "Gb/s", True, False)
    out[f"{name}/latency_ns_p50_median"] = (stats.nan_median(lat), "ns", False, True)
    out[f"{name}/latency_ns_p50_max"] = (stats.nan_max(lat), "ns", False, False)
    counts = run.status_counts()
    # failed or timed out (pairs a plan never scheduled, or rounds not yet run, are not counted)
    out[f"{name}/pairs_not_ok"] = (float(sum(v for k, v in counts.items() if k in ("failed", "timeout"))), "pairs",
                                   False, False)
    run.release()


def _coll_metrics(run: CollRun, rf: RunFile, name: str, out: Metrics) -> None:
    last = len(run.node_counts) - 1
    for op_name, op in run.ops.items():
        for g, nodes in enumerate(run.node_counts.tolist()):
            for s, size in enumerate(op.size_bytes.tolist()):
                default = g == last and s == op.size_bytes.size - 1
                if op.has_bandwidth:
                    out[f"{name}/{op_name}/busbw_gbps@{_size(size)}/n{nodes}"] = (
                        float(op.summary["busbw_gbps"][g, s]), "Gb/s", True, default)
                else:
                    out[f"{name}/{op_name}/time_ns_p50/n{nodes}"] = (
                        float(op.time("p50")[g, s]), "ns", False, default)


def _shift_metrics(run: ShiftRun, rf: RunFile, name: str, out: Metrics) -> None:
    eff = load.effective_throughput(run, build_layout(rf))
    if eff.known:
        out[f"{name}/effective_pct_median"] = (eff.median(), "%", True, True)
        out[f"{name}/effective_pct_min"] = (stats.nan_min(eff.pct), "%", True, False)
    out[f"{name}/aggregate_gbps_median"] = (stats.nan_median(run.step_aggregate_gbps), "Gb/s", True,
                                            not eff.known)
    run.release()


def _congestion_metrics(run: CongestionRun, rf: RunFile, name: str, out: Metrics) -> None:
    for q, pattern in enumerate(run.loaded_phases):
        if pattern not in run.measured_patterns:
            continue
        for m in ("latency_p50", "latency_p99", "bw_p50"):
            x = run.impact(m)[q]
            out[f"{name}/impact_{m}_median@{pattern}"] = (stats.nan_median(x), "x", False, m == "latency_p99")
            out[f"{name}/impact_{m}_max@{pattern}"] = (stats.nan_max(x), "x", False, False)
        out[f"{name}/impact_allreduce_p99@{pattern}"] = (float(run.impact_allreduce_p99[q]), "x", False, False)


# the metrics of a run, per run kind (name: the run's name, the metrics' prefix)
METRICS: dict[type, Callable[[Any, RunFile, str, Metrics], None]] = {
    SweepRun: _sweep_metrics,
    PairsRun: _pairs_metrics,
    CollRun: _coll_metrics,
    ShiftRun: _shift_metrics,
    CongestionRun: _congestion_metrics,
}


def change_points(values: Sequence[float], window: int, threshold: float, higher_is_better: bool,
                  files: Sequence[str], created: Sequence[str]) -> list[ChangePoint]:
    v = np.asarray(values, dtype=np.float64)
    idx = np.flatnonzero(np.isfinite(v))
    x = v[idx]
    cands: list[ChangePoint] = []
    n = x.size
    for k in range(2, n - 1):
        w = min(window, k, n - k)
        if w < 2:
            continue
        before, after = x[k - w:k], x[k:k + w]
        mb, ma = float(np.median(before)), float(np.median(after))
        if mb == 0:
            continue
        change = ma / mb - 1.0
        if abs(change) < threshold:
            continue
        if not (after.min() > before.max() or after.max() < before.min()):
            continue  # the two windows overlap: not a clean level shift
        if np.ptp(before) == 0 and np.ptp(after) == 0:
            p = 0.0 if ma != mb else 1.0
        else:
            p = float(sps.ttest_ind(before, after, equal_var=False).pvalue)
        if not math.isfinite(p) or p >= ALPHA:
            continue
        j = int(idx[k])
        cands.append(ChangePoint(index=j, file=files[j], created_utc=created[j], before=mb, after=ma, change=change,
                                 p_value=p, worse=(change < 0) if higher_is_better else (change > 0)))
    kept: list[ChangePoint] = []
    for c in sorted(cands, key=lambda c: (c.p_value, -abs(c.change))):
        if all(abs(c.index - k.index) >= window for k in kept):
            kept.append(c)
    return sorted(kept, key=lambda c: c.index)


def trend(files: Sequence[Path], *, patterns: Sequence[str] | None, threshold: float, window: int) -> Trend:
    loaded: list[tuple[str, str, dict[str, tuple[float, str, bool, bool]]]] = []
    for f in files:
        rf = check_results(f)
        loaded.append((rf.created_utc, str(f), metrics_of(rf)))
    loaded.sort(key=lambda t: (t[0], t[1]))
    created = [c for c, _, _ in loaded]
    names = [f for _, f, _ in loaded]
    available: dict[str, tuple[str, bool, bool]] = {}
    for _, _, m in loaded:
        for k, (_, unit, higher, default) in m.items():
            prev = available.get(k)
            available[k] = (unit, higher, default or (prev[2] if prev else False))
    if patterns and patterns != ["list"]:
        chosen = [k for k in available if any(fnmatch.fnmatchcase(k, p) for p in patterns)]
        if not chosen:
            some = ", ".join(sorted(available)[:8])
            raise TrendInputError(f"--metric {' '.join(patterns)}: no metric matches; "
                                  f"`--metric list` lists them (e.g. {some})")
    else:
        chosen = [k for k, (_, _, default) in available.items() if default]
    series = []
    for k in chosen:
        unit, higher, _ = available[k]
        values = [m[k][0] if k in m else float("nan") for _, _, m in loaded]
        series.append(Series(metric=k, unit=unit, higher_is_better=higher, values=values,
                             change_points=change_points(values, window, threshold, higher, names, created)))
    return Trend(files=names, created=created, series=series, available=sorted(available), threshold=threshold,
                 window=window)


def recent(t: Trend, c: ChangePoint) -> bool:
    """A change point among the newest `window` runs: news of the last nights. A level shift is
    found once at least 2 runs show the new level, so it is recent on the nights that first see
    it (window - 1 of them) and history afterwards."""
    return c.index >= len(t.files) - t.window


def alerts(t: Trend) -> list[tuple[Series, ChangePoint]]:
    """The recent change points for the worse: what makes `trend` (and `nightly`) exit 1. A change
    for the better is reported, not alerted (as compare alerts on regressions only)."""
    return [(s, c) for s in t.series for c in s.change_points if c.worse and recent(t, c)]


def summary_text(t: Trend) -> str:
    lines = [f"fabscope trend: {len(t.files)} runs ({t.created[0] if t.created else '-'} .. "
             f"{t.created[-1] if t.created else '-'}), {len(t.series)} metrics, "
             f"{sum(len(s.change_points) for s in t.series)} change points "
             f"(window {t.window}, threshold {100 * t.threshold:g}%)"]
    for s in t.series:
        v = np.asarray(s.values, dtype=np.float64)
        finite = v[np.isfinite(v)]
        last = f"{finite[-1]:.4g} {s.unit}" if finite.size else "n/a"
        lines.append(f"  {s.metric}: latest {last}, {finite.size} runs")
        for c in s.change_points:
            lines.append(f"    change point at run {c.index + 1} ({c.created_utc}, {Path(c.file).name}): "
                         f"{c.before:.4g} -> {c.after:.4g} {s.unit} ({100 * c.change:+.1f}%, p {c.p_value:.2g}, "
                         f"{'worse' if c.worse else 'better'}{', recent: ALERT' if c.worse and recent(t, c) else ''})")
    n_alerts = len(alerts(t))
    lines.append(f"{n_alerts} recent change point(s) for the worse: ALERT" if n_alerts else
                 "no recent change point for the worse")
    return "\n".join(lines) + "\n"


def to_json(t: Trend) -> dict[str, Any]:
    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, list):
            return [clean(x) for x in v]
        return v

    return {"fabscope_trend": 1, "files": t.files, "created_utc": t.created, "threshold": t.threshold,
            "window": t.window, "alert": bool(alerts(t)),
            "alerts": [{"metric": s.metric, "unit": s.unit, **{k: clean(v) for k, v in asdict(c).items()}}
                       for s, c in alerts(t)],
            "series": [{k: clean(v) for k, v in asdict(s).items()} for s in t.series]}


def write_json(path: Path, t: Trend) -> None:
    path.write_text(json.dumps(to_json(t), indent=2, allow_nan=False) + "\n", encoding="utf-8")


def write_html(out_dir: Path, t: Trend) -> Path:
    from fabscope_analyze import plots  # matplotlib loads only when a page is drawn

    fig_dir = out_dir / FIGURE_DIR
    fig_dir.mkdir(parents=True, exist_ok=True)
    labels = [f"{c[:10]} {Path(f).stem}" if c else Path(f).stem for c, f in zip(t.created, t.files)]
    figs = []
    for k, s in enumerate(t.series):
        v = np.asarray(s.values, dtype=np.float64)
        cuts = [0] + [c.index for c in s.change_points] + [len(v)]
        levels = [(a, b, float(np.nanmedian(v[a:b]))) for a, b in zip(cuts[:-1], cuts[1:])
                  if np.isfinite(v[a:b]).any()]
        fig = plots.trend_figure(labels, v, title=s.metric, ylabel=f"{s.metric.rsplit('/', 1)[-1]} ({s.unit})",
                                 change_points=[c.index for c in s.change_points], levels=levels)
        w, h = (fig.get_size_inches() * plots.PNG_DPI).round().astype(int)
        png, svg = plots.save_figure(fig, fig_dir, f"{k:02d}-{slug(s.metric)}")
        figs.append(FigureRef(f"{FIGURE_DIR}/{png.name}", f"{FIGURE_DIR}/{svg.name}", f"history of {s.metric}",
                              int(w), int(h)))
    rows = [[esc(s.metric), esc(c.created_utc), esc(Path(c.file).name), esc(f"{c.before:.4g} {s.unit}"),
             esc(f"{c.after:.4g} {s.unit}"), esc(f"{100 * c.change:+.1f}%"), esc(f"{c.p_value:.2g}"),
             '<span class="bad">worse</span>' if c.worse else "better"] for s in t.series for c in s.change_points]
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>fabscope trend</title><style>{CSS}</style></head><body>
<h1>fabscope trend: {len(t.files)} runs</h1>
<p class="sub">{esc(t.created[0] if t.created else "")} .. {esc(t.created[-1] if t.created else "")}.
Change points: Welch t-test between the {t.window} runs before and from a run, p &lt; {ALPHA}, and a change of at
least {100 * t.threshold:g}% of the median.</p>
<h2>Change points</h2>
{table(["metric", "run created", "file", "before", "after", "change", "p", ""], rows, "changes") if rows
   else "<p>None.</p>"}
<h2>History</h2>
<div class="figures">{"".join(figure_html(f) for f in figs)}</div>
</body></html>
"""
    index = out_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
