"""Pairs runs in the report: latency, bandwidth and status heatmaps in topology order (above
FULL_HEATMAP_MAX ranks worst and median per block pair, with drill-downs of the blocks whose
ranks stand out), the distribution over pairs, the slowest hosts and a summary by hop class."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from fabscope_analyze import parallel, plots, stats
from fabscope_analyze.context import ReportContext
from fabscope_analyze.htmlpage import esc, fmt, table
from fabscope_analyze.layout import HOP_CLASSES, Layout
from fabscope_analyze.reader import Host, PairsRun
from fabscope_analyze.report.common import FULL_HEATMAP_MAX, ReportKind, Save, axis_labels, endpoint, leaf_groups

N_OUTLIER_HOSTS = 5
MAX_DRILLDOWNS = 6  # drill-down figures for the worst blocks of a large fabric
CDF_MAX_VALUES = 1_000_000  # CDFs of larger fabrics use a seeded random sample of the pairs
OUTLIER_PEERS = 1024  # large fabrics: per-host medians over this many random peers


class PairsKind(ReportKind):
    def headline(self, run: PairsRun, ctx: ReportContext) -> str:
        return ctx.memo(run, "headline", lambda: pairs_headline(run))  # the page shows it twice

    def sizes(self, run: PairsRun) -> str:
        return f"lat {plots.format_bytes(run.lat_size_bytes)}, bw {plots.format_bytes(run.bw_size_bytes)}"

    def figures(self, run: PairsRun, ctx: ReportContext, title: str, save: Save) -> None:
        if _cdf_from_views(run):
            run.prefetch("latency_ns_p99")  # the CDF's: with the other views, from one read of a row table
        if run.n_ranks <= FULL_HEATMAP_MAX:
            _pairs_full_figures(run, ctx.hosts, ctx.layout, title, save)
        else:
            _pairs_block_figures(run, ctx.layout, title, save, ctx)
        save(pairs_cdf_figure(run, title), "cdf",
             f"distribution (CDF) of pair bandwidth and latency, run {run.info.name}")

    def section(self, run: PairsRun, ctx: ReportContext) -> str:
        parts = [outlier_hosts_table(run, ctx.hosts, ctx), hop_class_table(run, ctx.layout)]
        if run.n_ranks > FULL_HEATMAP_MAX:
            parts.append(f"<p>{run.n_ranks} ranks: heatmaps show blocks (worst and median of each block pair) and "
                         f"drill-downs of the {MAX_DRILLDOWNS} blocks whose ranks stand out most (lowest median "
                         "bandwidth or highest median latency against the fabric's).</p>")
        return "\n".join(p for p in parts if p)


def pairs_headline(run: PairsRun) -> str:
    n = run.n_ranks
    total = n * (n - 1) // 2
    counts = ", ".join(f"{k} {v}" for k, v in run.status_counts().items())
    lat, cells = stats.offdiag_sample(run.latency_ns_p50, CDF_MAX_VALUES, seed=2)
    bw, _ = stats.offdiag_sample(run.bw_gbps, CDF_MAX_VALUES, seed=1)
    sampled = " (medians of a random sample)" if cells > CDF_MAX_VALUES else ""
    with np.errstate(invalid="ignore"):
        lat_max = float(np.fmax.reduce(run.latency_ns_p50, axis=None))
        bw_min = float(np.fmin.reduce(run.bw_gbps, axis=None))
    return (
        f"{total} pairs ({counts}); rounds {run.rounds_done}/{run.rounds_total}; latency p50 median "
        f"{fmt(stats.nan_median(lat) / 1e3)} us, max {fmt(lat_max / 1e3)} us; bandwidth median "
        f"{fmt(stats.nan_median(bw))} Gb/s, min {fmt(bw_min)} Gb/s{sampled}"
    )


def _pairs_full_figures(run: PairsRun, hosts: Sequence[Host], lay: Layout, title: str, save: Save) -> None:
    order = lay.order
    identity = bool(np.array_equal(order, np.arange(run.n_ranks)))

    def arranged(m: np.ndarray) -> np.ndarray:
        return m if identity else m[np.ix_(order, order)]

    labels = axis_labels(hosts, order)
    by = "" if identity else ", ranks in topology order"
    groups = leaf_groups(lay)
    save(
        plots.heatmap_figure(
            arranged(run.latency_ns_p50) / 1e3, labels,
            title=f"{title}\none-way latency p50, {plots.format_bytes(run.lat_size_bytes)} B messages{by}",
            cbar_label="one-way latency p50 (us)", cmap="viridis_r", groups=groups,
        ),
        "latency_p50", f"pair latency p50 heatmap, run {run.info.name}",
    )
    save(
        plots.heatmap_figure(
            arranged(run.bw_gbps), labels,
            title=f"{title}\nbandwidth (p50 of windows), {plots.format_bytes(run.bw_size_bytes)} B messages,"
            f" row sends to column{by}",
            cbar_label="bandwidth, p50 of windows (Gb/s)", cmap="viridis",
            xlabel="receiver: rank host", ylabel="sender: rank host", groups=groups,
        ),
        "bw", f"pair bandwidth heatmap, run {run.info.name}",
    )
    save(
        plots.status_figure(arranged(run.status), run.status_names, labels, title=f"{title}\npair status{by}",
                            groups=groups),
        "status", f"pair status matrix, run {run.info.name}",
    )


def _pairs_block_figures(run: PairsRun, lay: Layout, title: str, save: Save, ctx: ReportContext | None = None) -> None:
    """Large fabrics: worst and median per block pair (leaf pair, or block of k ranks), the share
    of pairs not ok per block pair, and drill-downs of the worst blocks."""
    names, bounds = lay.blocks()
    what = "leaf" if lay.has_leaves and len(names) - 1 <= len(lay.leaf_names) else f"block of {int(bounds[1])} ranks"
    unit = "leaves" if what == "leaf" else "rank blocks"
    bw_worst, bw_med = stats.block_reduce(run.bw_gbps, bounds, lay.order, "min")
    save(plots.block_heatmap_figure(
        [("worst (lowest) per block pair", bw_worst), ("median per block pair", bw_med)], names,
        title=f"{title}\nbandwidth, {plots.format_bytes(run.bw_size_bytes)} B, row block sends to column block; "
        f"{len(names)} {unit}", cbar_label="bandwidth, p50 of windows (Gb/s)", axis_label=what),
        "bw-blocks", f"pair bandwidth per {what} pair (worst and median), run {run.info.name}")
    lat_worst, lat_med = stats.block_reduce(run.latency_ns_p50, bounds, lay.order, "max")
    save(plots.block_heatmap_figure(
        [("worst (highest) per block pair", lat_worst / 1e3), ("median per block pair", lat_med / 1e3)], names,
        title=f"{title}\none-way latency p50, {plots.format_bytes(run.lat_size_bytes)} B; {len(names)} {unit}",
        cbar_label="one-way latency p50 (us)", cmap="viridis_r", axis_label=what),
        "latency-blocks", f"pair latency per {what} pair (worst and median), run {run.info.name}")
    ok = run.status_code("ok")
    not_ok = (run.status != ok).astype(np.float32)
    np.fill_diagonal(not_ok, np.nan)
    frac = _block_mean(not_ok, bounds, lay.order)
    del not_ok
    save(plots.block_heatmap_figure(
        [("share of pairs not ok (failed, timed out, not run)", frac)], names,
        title=f"{title}\npair status per {what} pair", cbar_label="share of pairs not ok", cmap="Reds",
        axis_label=what), "status-blocks", f"share of pairs not ok per {what} pair, run {run.info.name}")
    # drill-downs: the blocks holding the ranks that stand out most: per rank, its median
    # bandwidth / the fabric's, or the fabric's median latency / its own, whichever is lower
    lat_med, bw_med_host = host_medians(run, ctx)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.fmin(bw_med_host / stats.nan_median(bw_med_host), stats.nan_median(lat_med) / lat_med)
    score = np.where(np.isfinite(score), score, np.inf)[lay.order]
    block_score = np.array([score[a:b].min() if b > a else np.inf for a, b in zip(bounds[:-1], bounds[1:])])
    picks = [int(b) for b in np.argsort(block_score, kind="stable")[:MAX_DRILLDOWNS]]
    for b in picks:
        rows = (bounds[b:b + 2], lay.order)
        bw_rw, _ = stats.block_reduce(run.bw_gbps, bounds, lay.order, "min", rows=rows)
        lat_rw, _ = stats.block_reduce(run.latency_ns_p50, bounds, lay.order, "max", rows=rows)
        members = lay.order[bounds[b]:bounds[b + 1]]
        row_names = [lay.rank_name(int(r)) for r in members]
        save(plots.block_heatmap_figure(
            [("bandwidth: worst (lowest) to each block, Gb/s", bw_rw), ("latency p50: worst (highest) to each block, us",
                                                                         lat_rw / 1e3)],
            names, row_names=row_names, shared_scale=False,
            title=f"{title}\ndrill-down: {names[b]} ({members.size} ranks) against every {what}",
            cbar_label="Gb/s | us", axis_label=what),
            f"drill-{b:04d}", f"drill-down of {names[b]}: each of its ranks against every {what}, run {run.info.name}")


def _block_mean(m: np.ndarray, bounds: np.ndarray, order: np.ndarray) -> np.ndarray:
    nb = len(bounds) - 1
    out = np.full((nb, nb), np.nan)
    for b in range(nb):
        block = m[order[bounds[b]:bounds[b + 1]]][:, order]
        sums = np.add.reduceat(np.nan_to_num(block), bounds[:-1], axis=1).sum(axis=0)
        counts = np.add.reduceat(np.isfinite(block), bounds[:-1], axis=1).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[b] = sums / counts
    return out


def pairs_cdf_figure(run: PairsRun, title: str) -> Figure:
    bw, lat50, lat99, note = _cdf_values(run)
    return plots.cdf_figure(
        [plots.Cdf(f"bandwidth, p50 of windows (Gb/s), {plots.format_bytes(run.bw_size_bytes)} B",
                   [("directed pairs", bw)]),
         plots.Cdf(f"one-way latency (us), {plots.format_bytes(run.lat_size_bytes)} B",
                   [("p50 of each pair", lat50 / 1e3), ("p99 of each pair", lat99 / 1e3)])],
        title=f"{title}\ndistribution over pairs{note}")


def _cdf_from_views(run: PairsRun) -> bool:
    src = run.row_source()
    return src is None or src.repeated or 2 * src.rows <= CDF_MAX_VALUES


CDF_SPAN_ROWS = 8192  # a large row table's CDFs: rows read from random spans of this many rows


def _cdf_values(run: PairsRun) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(bandwidth of directed pairs, latency p50 and p99 of pairs, note) for the CDFs: every pair
    when there are at most CDF_MAX_VALUES directed pairs; above, a seeded random sample: of the
    matrix cells, or for a row table measured once per pair, of its rows (random spans of rows,
    read without building the p99 view)."""
    src = run.row_source()
    if src is None or _cdf_from_views(run):
        bw, total = stats.offdiag_sample(run.bw_gbps, CDF_MAX_VALUES, seed=1)
        lat50, _ = stats.offdiag_sample(run.latency_ns_p50, CDF_MAX_VALUES, seed=2)
        lat99, _ = stats.offdiag_sample(run.latency_ns_p99, CDF_MAX_VALUES, seed=2)
        note = "" if total <= CDF_MAX_VALUES else f" (a random {CDF_MAX_VALUES:,} of {total:,} directed pairs)"
        return bw, lat50, lat99, note
    spans = min(src.rows // CDF_SPAN_ROWS, -(-CDF_MAX_VALUES // (2 * CDF_SPAN_ROWS)))
    starts = np.sort(np.random.default_rng(4).choice(src.rows // CDF_SPAN_ROWS, spans, replace=False)) * CDF_SPAN_ROWS
    names = ("status", "bw_gbps_fwd", "bw_gbps_rev", "latency_ns_p50", "latency_ns_p99")
    cols: dict[str, list[np.ndarray]] = {k: [] for k in names}
    for r0 in starts.tolist():
        for b in src.blocks(names, rows_per_block=CDF_SPAN_ROWS, rows=(r0, r0 + CDF_SPAN_ROWS)):
            for k in names:
                cols[k].append(np.asarray(b[k]))
    good = np.concatenate(cols.pop("status")) == 1

    def values(*keys: str) -> np.ndarray:
        v = np.concatenate([np.concatenate(cols[k])[good] for k in keys]).astype(np.float64)
        return v[np.isfinite(v)]

    rows = int(good.size)
    note = f" (the pairs of {spans} random spans of rows: {rows:,} of {src.rows:,} pairs)"
    return values("bw_gbps_fwd", "bw_gbps_rev"), values("latency_ns_p50"), values("latency_ns_p99"), note


def host_medians(run: PairsRun, ctx: ReportContext | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per rank, the median latency p50 and bandwidth over its pairs (both directions); large
    fabrics: over the same random OUTLIER_PEERS peers of every rank."""
    def compute() -> tuple[np.ndarray, np.ndarray]:
        if run.n_ranks <= FULL_HEATMAP_MAX:
            return stats.per_host_median(run.latency_ns_p50), stats.per_host_median(run.bw_gbps)
        return (stats.per_host_median_blocks(run.latency_ns_p50, OUTLIER_PEERS),
                stats.per_host_median_blocks(run.bw_gbps, OUTLIER_PEERS))

    return ctx.memo(run, "host_medians", compute) if ctx is not None else compute()


def outlier_hosts_table(run: PairsRun, hosts: Sequence[Host], ctx: ReportContext | None = None) -> str:
    """The hosts whose pairs are slowest: highest median latency p50, lowest median bandwidth."""
    lat, bw = host_medians(run, ctx)
    if run.n_ranks < 3 or not np.isfinite(lat).any():
        return ""
    fabric_lat, fabric_bw = stats.nan_median(lat), stats.nan_median(bw)
    order = np.argsort(np.where(np.isnan(lat), -np.inf, lat))[::-1][:N_OUTLIER_HOSTS]
    rows = [
        [esc(endpoint(hosts, int(i))), fmt(lat[i] / 1e3), fmt(lat[i] / fabric_lat, 3), fmt(bw[i]),
         fmt(bw[i] / fabric_bw, 3)]
        for i in order
    ]
    return (
        f"<p>Hosts with the highest median pair latency (fabric median of host medians: {fmt(fabric_lat / 1e3)} us, "
        f"{fmt(fabric_bw)} Gb/s):</p>\n"
        + table(["host", "median latency p50 (us)", "x fabric", "median bandwidth (Gb/s)", "x fabric"],
                 rows, "outliers")
    )


HOP_ROWS_PER_CHUNK_CELLS = 4_000_000  # hop-class summary: matrix cells handled at a time


def hop_class_table(run: PairsRun, lay: Layout) -> str:
    """Per hop class present: measured pairs, latency p50 median and p99 (us), bandwidth median and
    minimum (Gb/s, both directions). Empty when the layout knows at most one hop class. Counts
    and minima are exact; above CDF_MAX_VALUES directed cells the medians and p99 come from a
    seeded random sample of the cells."""
    if len(lay.classes_present()) < 2 or run.n_ranks < 2:
        return ""
    n = run.n_ranks
    n_cls = len(HOP_CLASSES)
    keep = min(1.0, CDF_MAX_VALUES / (n * (n - 1)))
    lat_m, bw_m = run.latency_ns_p50, run.bw_gbps
    step = max(1, HOP_ROWS_PER_CHUNK_CELLS // n)
    cols = np.arange(n)
    starts = list(range(0, n, step))

    def chunks(c0: int, c1: int) -> tuple[np.ndarray, np.ndarray, list[list[np.ndarray]], list[list[np.ndarray]]]:
        """The chunks of rows starts[c0:c1]: counts, minima and the sampled values per class (each
        chunk draws its own sample, seeded by its first row: the same whatever the processes)."""
        pairs = np.zeros(n_cls, dtype=np.int64)
        bw_min = np.full(n_cls, np.inf)
        lat_vals: list[list[np.ndarray]] = [[] for _ in range(n_cls)]
        bw_vals: list[list[np.ndarray]] = [[] for _ in range(n_cls)]
        for r0 in starts[c0:c1]:
            r1 = min(n, r0 + step)
            rows = np.arange(r0, r1)
            cls = lay.hop_class(rows)
            upper = cols[None, :] > rows[:, None]  # each unordered pair once
            # the views' own dtype (float32 above 2,000 ranks): minima are exact, and the picked
            # values are widened before any median is taken
            lat = np.asarray(lat_m[r0:r1])
            fwd = np.asarray(bw_m[r0:r1])
            rev = np.ascontiguousarray(np.asarray(bw_m[:, r0:r1]).T)
            measured = upper & (np.isfinite(lat) | np.isfinite(fwd) | np.isfinite(rev))
            sample = upper if keep >= 1.0 else upper & (np.random.default_rng([3, r0]).random(upper.shape) < keep)
            for c in np.flatnonzero(np.bincount(cls.reshape(-1).view(np.uint8), minlength=n_cls)):
                in_c = cls == c
                pairs[c] += int(np.count_nonzero(in_c & measured))
                mine = in_c & upper
                both = np.concatenate([fwd[mine], rev[mine]])
                both = both[np.isfinite(both)]
                if both.size:
                    bw_min[c] = min(bw_min[c], float(both.min()))
                pick = in_c & sample
                lat_vals[c].append(lat[pick].astype(np.float64))
                bw_vals[c].append(np.concatenate([fwd[pick], rev[pick]]).astype(np.float64))
        return pairs, bw_min, lat_vals, bw_vals

    parts = parallel.map_rows(chunks, len(starts), step * n)
    pairs = np.sum([p[0] for p in parts], axis=0)
    bw_min = np.min([p[1] for p in parts], axis=0)
    lat_vals = [[v for p in parts for v in p[2][c]] for c in range(n_cls)]
    bw_vals = [[v for p in parts for v in p[3][c]] for c in range(n_cls)]
    rows_html = []
    for c, name in enumerate(HOP_CLASSES):
        if pairs[c] == 0:
            continue
        lat = np.concatenate(lat_vals[c])
        lat = lat[np.isfinite(lat)] / 1e3
        bw = np.concatenate(bw_vals[c])
        bw = bw[np.isfinite(bw)]
        rows_html.append([
            esc(name), f"{int(pairs[c]):,}",
            fmt(float(np.median(lat))) if lat.size else fmt(float("nan")),
            fmt(float(np.percentile(lat, 99))) if lat.size else fmt(float("nan")),
            fmt(float(np.median(bw))) if bw.size else fmt(float("nan")),
            fmt(float(bw_min[c])) if np.isfinite(bw_min[c]) else fmt(float("nan")),
        ])
    if not rows_html:
        return ""
    note = "" if keep >= 1.0 else " (medians and p99 of a random sample of the pairs; counts and minima of all)"
    return (f"<p>Summary by hop class{note}; {esc(lay.source)}:</p>\n"
            + table(["hop class", "measured pairs", "latency p50: median (us)", "latency p50: p99 (us)",
                      "bandwidth: median (Gb/s)", "bandwidth: min (Gb/s)"], rows_html, "hop-classes"))
