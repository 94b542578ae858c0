"""The HTML report: one self-contained folder with index.html and figures/ (PNG + SVG).

The page needs no network and no JavaScript and uses relative paths only, so it opens from disk
or from an artifact store. Every piece of text that comes from the result file is HTML-escaped.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from fabscope_analyze import __version__, coll, plots, stats
from fabscope_analyze.htmlpage import CSS, FIGURE_DIR, FigureRef, esc, figure_html, fmt, slug, table
from fabscope_analyze.layout import HOP_CLASSES, Layout, build_layout
from fabscope_analyze.reader import CollRun, CongestionRun, Counters, Host, PairsRun, Run, RunFile, ShiftRun, SweepRun

MAX_OPEN_HOST_ROWS = 64  # larger host tables start folded
N_OUTLIER_HOSTS = 5
FULL_HEATMAP_MAX = 256  # above this many ranks heatmaps aggregate blocks (leaves, or k ranks)
MAX_DRILLDOWNS = 6  # drill-down figures for the worst blocks of a large fabric
CDF_MAX_VALUES = 1_000_000  # CDFs of larger fabrics use a seeded random sample of the pairs
OUTLIER_PEERS = 1024  # large fabrics: per-host medians over this many random peers

_KNOWN_ROOT_ATTRS = (
    "schema_version",
    "fabscope_version",
    "created_utc",
    "n_ranks",
    "complete",
    "command_line",
    "suite_text",
)
_HOST_COLUMNS: tuple[tuple[str, str], ...] = (
    ("hostname", "hostname"),
    ("kernel", "kernel"),
    ("cpu_model", "CPU"),
    ("mpi_library", "MPI library"),
    ("rdma_core_version", "rdma-core"),
)


def anchor(index: int) -> str:
    """The id of a run's section in the page."""
    return f"run-{index:02d}"


# --- figures ------------------------------------------------------------------------------------


def sweep_panels(run: SweepRun) -> list[plots.Panel]:
    """The panels of a size sweep: the metric (p50 line, min..p99 and p10..p90 bands) and, for
    bandwidth runs, the message rate."""
    units = run.units

    def bands(metric: str, samples: np.ndarray | None) -> list[plots.Band]:
        out = [plots.Band("min..p99", run.stat("min", metric), run.stat("p99", metric))]
        if samples is not None:
            out.append(plots.Band("p10..p90", *stats.percentile_band(samples, 10, 90)))
        return out

    if run.metric == "latency_ns":
        return [
            plots.Panel(
                ylabel=f"one-way latency ({units})",
                median=run.stat("p50"),
                bands=bands(run.metric, run.samples),
                lines=[plots.Line("p99.9", run.stat("p999"), ":")],
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
    what = "one-way latency" if run.metric == "latency_ns" else "window bandwidth"
    return plots.Cdf(
        xlabel=f"{what} ({run.units})",
        series=[(f"{plots.format_bytes(int(run.size_bytes[i]))} B", run.samples[i]) for i in picks],
    )


def axis_label(host: Host) -> str:
    """`<rank> <host>` for heatmap axes; a domain name is cut to its first label (the hosts
    table has the full name), a numeric address is kept whole."""
    first = host.hostname.split(".", 1)[0]
    short = first if re.search(r"[A-Za-z]", first) else host.hostname
    return f"{host.rank} {short}"


def _run_title(run: Run, hosts: Sequence[Host]) -> str:
    info = run.info
    what = info.benchmark if info.name == info.benchmark else f"{info.name} ({info.benchmark})"
    title = f"{what} over {info.transport}"
    if isinstance(run, SweepRun) and len(hosts) >= 2:
        title += f", rank {hosts[0].label} \u2194 rank {hosts[1].label}"
    if info.label:
        title += f" [{info.label}]"
    return title


def run_figures(run: Run, hosts: Sequence[Host], fig_dir: Path, stem: str,
                layout: Layout | None = None, *, run_file: RunFile | None = None,
                criteria=None) -> list[FigureRef]:  # type: ignore[no-untyped-def]
    """Draw and save the figures of one run; returns them in display order. `run_file` gives a
    shift run its idle reference (a pairs run); `criteria` draws limits on the load figures."""
    refs: list[FigureRef] = []

    def save(fig: Figure, kind: str, alt: str) -> None:
        width, height = (fig.get_size_inches() * plots.PNG_DPI).round().astype(int)
        png, svg = plots.save_figure(fig, fig_dir, f"{stem}-{kind}")
        refs.append(FigureRef(f"{FIGURE_DIR}/{png.name}", f"{FIGURE_DIR}/{svg.name}", alt, int(width), int(height)))

    title = _run_title(run, hosts)
    if isinstance(run, SweepRun):
        what = "latency (and its distribution)" if run.metric == "latency_ns" else "bandwidth and message rate"
        cdf = sweep_cdf(run) if run.metric == "latency_ns" else None
        save(plots.sweep_figure(run.size_bytes, sweep_panels(run), title=title, cdf=cdf), "sweep",
             f"{what} over message size, run {run.info.name}")
    elif isinstance(run, PairsRun):
        lay = layout or _flat_layout(hosts)
        if run.n_ranks <= FULL_HEATMAP_MAX:
            _pairs_full_figures(run, hosts, lay, title, save)
        else:
            _pairs_block_figures(run, lay, title, save)
        save(pairs_cdf_figure(run, title), "cdf", f"distribution (CDF) of pair bandwidth and latency, run {run.info.name}")
    elif isinstance(run, CollRun):
        for name, op in run.ops.items():
            save(plots.lines_figure(coll.op_panels(run, op), title=f"{title}\n{name}"), f"coll-{name}",
                 f"{name}: scaling with node count and message size, run {run.info.name}")
    elif isinstance(run, ShiftRun):
        from fabscope_analyze import load, report_load

        idle = load.idle_reference(run_file, run) if run_file is not None else None
        report_load.shift_figures(run, hosts, layout or _flat_layout(hosts), title, save, idle, criteria)
    elif isinstance(run, CongestionRun):
        from fabscope_analyze import report_load

        report_load.congestion_figures(run, hosts, layout or _flat_layout(hosts), title, save, criteria)
    return refs


def _flat_layout(hosts: Sequence[Host]) -> Layout:
    rf = RunFile(path=Path("."), schema_version=1, fabscope_version="", created_utc="", command_line="",
                 suite_text="", n_ranks=len(hosts), complete=True, hosts=tuple(hosts), runs=())
    return build_layout(rf)


def _pairs_full_figures(run: PairsRun, hosts: Sequence[Host], lay: Layout, title: str, save) -> None:  # type: ignore[no-untyped-def]
    order = lay.order
    identity = bool(np.array_equal(order, np.arange(run.n_ranks)))

    def arranged(m: np.ndarray) -> np.ndarray:
        return m if identity else m[np.ix_(order, order)]

    labels = [axis_label(hosts[i]) for i in order]
    by = "" if identity else ", ranks in topology order"
    groups = leaf_groups(lay)
    save(
        plots.heatmap_figure(
            arranged(run.latency_ns_p50), labels,
            title=f"{title}\none-way latency p50, {plots.format_bytes(run.lat_size_bytes)} B messages{by}",
            cbar_label="one-way latency p50 (ns)", cmap="viridis_r", groups=groups,
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


def leaf_groups(lay: Layout) -> list[tuple[str, int, int]] | None:
    """(leaf name, start, stop) over display positions for the full heatmaps; None without leaves."""
    if not lay.has_leaves:
        return None
    names, bounds = lay.blocks()
    return [(name, int(a), int(b)) for name, a, b in zip(names, bounds[:-1], bounds[1:])]


def _pairs_block_figures(run: PairsRun, lay: Layout, title: str, save) -> None:  # type: ignore[no-untyped-def]
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
        [("worst (highest) per block pair", lat_worst), ("median per block pair", lat_med)], names,
        title=f"{title}\none-way latency p50, {plots.format_bytes(run.lat_size_bytes)} B; {len(names)} {unit}",
        cbar_label="one-way latency p50 (ns)", cmap="viridis_r", axis_label=what),
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
    lat_med, bw_med_host = host_medians(run)
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
            [("bandwidth: worst (lowest) to each block, Gb/s", bw_rw), ("latency p50: worst (highest) to each block, ns",
                                                                         lat_rw)],
            names, row_names=row_names, shared_scale=False,
            title=f"{title}\ndrill-down: {names[b]} ({members.size} ranks) against every {what}",
            cbar_label="Gb/s | ns", axis_label=what),
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
    bw, total = stats.offdiag_sample(run.bw_gbps, CDF_MAX_VALUES, seed=1)
    lat50, _ = stats.offdiag_sample(run.latency_ns_p50, CDF_MAX_VALUES, seed=2)
    lat99, _ = stats.offdiag_sample(run.latency_ns_p99, CDF_MAX_VALUES, seed=2)
    note = "" if total <= CDF_MAX_VALUES else f" (a random {CDF_MAX_VALUES:,} of {total:,} directed pairs)"
    return plots.cdf_figure(
        [plots.Cdf(f"bandwidth, p50 of windows (Gb/s), {plots.format_bytes(run.bw_size_bytes)} B",
                   [("directed pairs", bw)]),
         plots.Cdf(f"one-way latency (ns), {plots.format_bytes(run.lat_size_bytes)} B",
                   [("p50 of each pair", lat50), ("p99 of each pair", lat99)])],
        title=f"{title}\ndistribution over pairs{note}")


# --- tables -------------------------------------------------------------------------------------


def sizes_text(sizes: np.ndarray) -> str:
    if sizes.size == 0:
        return "none"
    first, last = plots.format_bytes(int(sizes[0])), plots.format_bytes(int(sizes[-1]))
    return f"{first}..{last} ({sizes.size} sizes)" if sizes.size > 1 else first


def headline(run: Run, layout: Layout | None = None) -> str:
    """One line of the key numbers of a run (plain text, to be escaped); `layout` gives shift runs
    a link rate when the file has none."""
    if isinstance(run, SweepRun):
        if run.size_bytes.size == 0:
            return "no sizes measured"
        if run.metric == "latency_ns":
            return (
                f"{plots.format_bytes(int(run.size_bytes[0]))} B: p50 {fmt(run.stat('p50')[0])} ns, "
                f"p99 {fmt(run.stat('p99')[0])} ns; {plots.format_bytes(int(run.size_bytes[-1]))} B: "
                f"p50 {fmt(run.stat('p50')[-1])} ns"
            )
        p50 = run.stat("p50")
        best = int(np.nanargmax(p50)) if np.isfinite(p50).any() else 0
        return (
            f"peak p50 {fmt(p50[best])} {run.units} at {plots.format_bytes(int(run.size_bytes[best]))} B; "
            f"{plots.format_bytes(int(run.size_bytes[0]))} B: "
            f"{fmt(run.stat('p50', 'msg_rate_mpps')[0])} Mpps"
        )
    if isinstance(run, PairsRun):
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
            f"{fmt(stats.nan_median(lat))} ns, max {fmt(lat_max)} ns; bandwidth median "
            f"{fmt(stats.nan_median(bw))} Gb/s, min {fmt(bw_min)} Gb/s{sampled}"
        )
    if isinstance(run, CollRun):
        return coll.headline(run)
    if isinstance(run, ShiftRun):
        from fabscope_analyze import report_load

        return report_load.shift_headline(run, layout)
    if isinstance(run, CongestionRun):
        from fabscope_analyze import report_load

        return report_load.congestion_headline(run, layout)
    return "benchmark kind not known to this version of fabscope-analyze; not shown"


def summary_table(run_file: RunFile, layout: Layout | None = None) -> str:
    rows = []
    for i, run in enumerate(run_file.runs):
        info = run.info
        sizes = sizes_text(run.size_bytes) if isinstance(run, SweepRun) else (
            f"lat {plots.format_bytes(run.lat_size_bytes)}, bw {plots.format_bytes(run.bw_size_bytes)}"
            if isinstance(run, (PairsRun, CongestionRun)) else _coll_sizes(run) if isinstance(run, CollRun)
            else plots.format_bytes(run.size_bytes) if isinstance(run, ShiftRun) else "")
        done = "yes" if info.complete else '<span class="bad">no</span>'
        rows.append([
            f'<a href="#{anchor(i)}">{esc(info.name)}</a>', esc(info.benchmark), esc(info.transport),
            esc(info.label), esc(f"{info.iters} / {info.warmup}"), esc(sizes), esc(headline(run, layout)),
            esc(info.started_utc), esc(info.finished_utc), done,
        ])
    return table(
        ["run", "benchmark", "transport", "label", "iters / warmup", "sizes", "result", "started", "finished",
         "complete"],
        rows, "runs",
    )


def _coll_sizes(run: CollRun) -> str:
    sizes = [op.size_bytes for op in run.ops.values() if op.has_bandwidth]
    nodes = ", ".join(str(int(c)) for c in run.node_counts)
    return (sizes_text(sizes[0]) if sizes else "") + f"; nodes {nodes}"


_HOST_MEDIANS: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # id(run) -> (latency, bandwidth), per report


def host_medians(run: PairsRun) -> tuple[np.ndarray, np.ndarray]:
    """Per rank, the median latency p50 and bandwidth over its pairs (both directions); large
    fabrics: over the same random OUTLIER_PEERS peers of every rank."""
    got = _HOST_MEDIANS.get(id(run))
    if got is None:
        if run.n_ranks <= FULL_HEATMAP_MAX:
            got = stats.per_host_median(run.latency_ns_p50), stats.per_host_median(run.bw_gbps)
        else:
            got = (stats.per_host_median_blocks(run.latency_ns_p50, OUTLIER_PEERS),
                   stats.per_host_median_blocks(run.bw_gbps, OUTLIER_PEERS))
        _HOST_MEDIANS[id(run)] = got
    return got


def outlier_hosts_table(run: PairsRun, hosts: Sequence[Host]) -> str:
    """The hosts whose pairs are slowest: highest median latency p50, lowest median bandwidth."""
    lat, bw = host_medians(run)
    if run.n_ranks < 3 or not np.isfinite(lat).any():
        return ""
    fabric_lat, fabric_bw = stats.nan_median(lat), stats.nan_median(bw)
    order = np.argsort(np.where(np.isnan(lat), -np.inf, lat))[::-1][:N_OUTLIER_HOSTS]
    rows = [
        [esc(hosts[i].label), fmt(lat[i]), fmt(lat[i] / fabric_lat, 3), fmt(bw[i]), fmt(bw[i] / fabric_bw, 3)]
        for i in order
    ]
    return (
        f"<p>Hosts with the highest median pair latency (fabric median of host medians: {fmt(fabric_lat)} ns, "
        f"{fmt(fabric_bw)} Gb/s):</p>\n"
        + table(["rank host", "median latency p50 (ns)", "x fabric", "median bandwidth (Gb/s)", "x fabric"],
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
    rng = np.random.default_rng(3)
    pairs = np.zeros(n_cls, dtype=np.int64)
    bw_min = np.full(n_cls, np.inf)
    lat_vals: list[list[np.ndarray]] = [[] for _ in range(n_cls)]
    bw_vals: list[list[np.ndarray]] = [[] for _ in range(n_cls)]
    lat_m, bw_m = run.latency_ns_p50, run.bw_gbps
    step = max(1, HOP_ROWS_PER_CHUNK_CELLS // n)
    cols = np.arange(n)
    for r0 in range(0, n, step):
        r1 = min(n, r0 + step)
        rows = np.arange(r0, r1)
        cls = lay.hop_class(rows)
        upper = cols[None, :] > rows[:, None]  # each unordered pair once
        lat = np.asarray(lat_m[r0:r1], dtype=np.float64)
        fwd = np.asarray(bw_m[r0:r1], dtype=np.float64)
        rev = np.asarray(bw_m[:, r0:r1], dtype=np.float64).T
        measured = upper & (np.isfinite(lat) | np.isfinite(fwd) | np.isfinite(rev))
        sample = np.ones_like(upper) if keep >= 1.0 else rng.random(upper.shape) < keep
        for c in np.unique(cls):
            in_c = cls == c
            pairs[c] += int(np.count_nonzero(in_c & measured))
            both = np.concatenate([fwd[in_c & upper], rev[in_c & upper]])
            both = both[np.isfinite(both)]
            if both.size:
                bw_min[c] = min(bw_min[c], float(both.min()))
            pick = in_c & upper & sample
            lat_vals[c].append(lat[pick])
            bw_vals[c].append(np.concatenate([fwd[pick], rev[pick]]))
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


def coll_tables(run: CollRun, hosts: Sequence[Host], threshold: float = coll.DEFAULT_EFFICIENCY_THRESHOLD) -> str:
    """Failed measurements (flagged), the largest scaling drops, and steps ending below the
    efficiency threshold."""
    parts = []
    bad = coll.failed(run)
    if bad:
        rows = [[esc(op), esc(n), esc(plots.format_bytes(size)), f'<span class="bad">{esc(status)}</span>',
                 f'<span class="bad">{errors}</span>' if errors else "0"] for op, n, size, status, errors in bad]
        parts.append(f'<p class="bad">{len(bad)} measurement(s) failed or gave wrong results (--check):</p>'
                     + table(["collective", "nodes", "size", "status", "wrong elements"], rows, "coll-failed"))
    largest, below = coll.scaling_drops(run, hosts, threshold=threshold)

    def drop_rows(drops: Sequence[coll.Drop]) -> list[list[str]]:
        return [[esc(d.op), esc(plots.format_bytes(d.size_bytes)), f"{d.nodes_from} \u2192 {d.nodes_to}",
                 f"{fmt(d.efficiency_from, 3)} \u2192 {fmt(d.efficiency_to, 3)}", fmt(d.drop, 3),
                 f"{fmt(d.busbw_from_gbps, 3)} \u2192 {fmt(d.busbw_to_gbps, 3)}",
                 esc(", ".join(d.added_hosts[:8]) + (f" (+{len(d.added_hosts) - 8})" if len(d.added_hosts) > 8 else ""))]
                for d in drops]

    headers = ["collective", "size", "nodes", "scaling efficiency", "drop", "busbw (Gb/s)", "nodes added"]
    if largest:
        parts.append("<p>Largest scaling drops (fall of busbw / busbw(2 nodes) from one node count to the next):</p>"
                     + table(headers, drop_rows(largest), "coll-drops"))
    elif any(op.has_bandwidth for op in run.ops.values()):
        parts.append("<p>No scaling drop: efficiency never falls from one node count to the next.</p>")
    if below:
        shown = below[:20]
        parts.append(f"<p>{len(below)} step(s) end below scaling efficiency {fmt(threshold, 2)}"
                     + (f" (worst {len(shown)} shown)" if len(below) > len(shown) else "") + ":</p>"
                     + table(headers, drop_rows(shown), "coll-below"))
    return "\n".join(parts)


def counters_table(counters: Counters, hosts: Sequence[Host]) -> str:
    """Per counter: ranks reporting it, total, median and the ranks with the largest deltas
    (-1 = the counter is absent on that rank)."""
    rows = []
    for c, name in enumerate(counters.names):
        d = counters.delta[:, c]
        present = d >= 0
        if not present.any():
            rows.append([esc(name), "0", "\u2013", "\u2013", "\u2013"])
            continue
        v = d[present]
        top = np.argsort(np.where(present, d, -1))[::-1][:3]
        top = [int(r) for r in top if d[r] > 0]
        rows.append([esc(name), f"{int(present.sum())} of {d.size}", f"{int(v.sum()):,}", f"{float(np.median(v)):,.0f}",
                     esc(", ".join(f"{hosts[r].label}: {int(d[r]):,}" for r in top)) or "\u2013"])
    return ("<p>Counter deltas over the run (-1 in the file = absent on that rank, not counted):</p>"
            + table(["counter", "ranks", "total", "median", "largest"], rows, "counters"))


def verdict_section(verdict) -> str:  # type: ignore[no-untyped-def]
    """The acceptance verdict (fabscope_analyze.accept.Verdict) as the first thing on the page."""
    from fabscope_analyze import accept

    cls = {"pass": "pass", "fail": "warning", "inconclusive": "inconclusive"}.get(verdict.status, "warning")
    rows = []
    for rv in verdict.runs:
        for c in rv.checks:
            status = c.status.upper()
            cell = f'<span class="bad">{status}</span>' if c.status == accept.FAIL else esc(status)
            count = f"{c.failing:,} of {c.judged:,} {c.unit}" if c.judged else ""
            if c.inconclusive:
                count += f", {c.inconclusive:,} inconclusive"
            rows.append([esc(rv.run), cell, esc(c.title), esc(count), esc(c.detail)])
    suspects = verdict.suspects
    srows = [[str(k), esc(s.kind), f"<strong>{esc(s.name)}</strong>", esc(s.evidence)] for k, s in enumerate(suspects, 1)]
    notes = [f"<li>{esc(rv.run)}: {esc(n)}</li>" for rv in verdict.runs for n in rv.notes]
    return (f'<div class="{cls}" id="verdict" role="status"><strong>Acceptance: {esc(verdict.status.upper())}</strong> '
            f"against criteria {esc(verdict.criteria)} ({esc(verdict.criteria_path)}). Layout: {esc(verdict.layout)}."
            + (table(["#", "suspect", "name", "evidence"], srows, "suspects") if srows else "")
            + "</div>\n<details" + (" open" if verdict.status != "pass" else "") + "><summary>criteria checks</summary>"
            + table(["run", "result", "rule", "failing", "detail"], rows, "checks")
            + (f"<ul>{''.join(notes)}</ul>" if notes else "") + "</details>")


def provenance_table(run_file: RunFile) -> str:
    rows = [
        ["file", esc(run_file.path.name)],
        ["schema_version", esc(run_file.schema_version)],
        ["fabscope_version", esc(run_file.fabscope_version)],
        ["created_utc", esc(run_file.created_utc)],
        ["n_ranks", esc(run_file.n_ranks)],
        ["complete", "1" if run_file.complete else '<span class="bad">0</span>'],
        ["command_line", f"<code>{esc(run_file.command_line)}</code>"],
    ]
    rows += [[esc(k), esc(v)] for k, v in run_file.attrs.items() if k not in _KNOWN_ROOT_ATTRS]
    return table(["attribute", "value"], rows, "provenance")


def hosts_section(hosts: Sequence[Host]) -> str:
    """The per-host provenance table; values that differ from the most common one are marked."""
    common = {attr: Counter(getattr(h, attr) for h in hosts).most_common(1)[0][0] for attr, _ in _HOST_COLUMNS[1:]}
    common_devices = Counter(len(h.rdma_devices) for h in hosts).most_common(1)[0][0] if hosts else 0
    notes = []
    for attr, title in _HOST_COLUMNS[1:]:
        distinct = len({getattr(h, attr) for h in hosts})
        if distinct > 1:
            notes.append(f"{distinct} different {esc(title)} values")
    rows = []
    for h in hosts:
        cells = [esc(h.rank), esc(h.hostname)]
        for attr, _ in _HOST_COLUMNS[1:]:
            value = getattr(h, attr)
            cells.append(esc(value) if value == common[attr] else f'<span class="odd">{esc(value)}</span>')
        devices = "<br>".join(esc(d) for d in h.rdma_devices) or '<span class="muted">none</span>'
        cells.append(devices if len(h.rdma_devices) == common_devices else f'<span class="odd">{devices}</span>')
        rows.append(cells)
    hosts_table = table(["rank"] + [t for _, t in _HOST_COLUMNS] + ["RDMA devices"], rows, "hosts")
    n_hosts = len({h.hostname for h in hosts})
    summary = f"{len(hosts)} ranks on {n_hosts} host{'s' if n_hosts != 1 else ''}"
    if notes:
        summary += ": " + ", ".join(notes) + " (marked)"
    opened = " open" if len(hosts) <= MAX_OPEN_HOST_ROWS else ""
    return f"<details{opened}><summary>{summary}</summary>\n{hosts_table}\n</details>"


# --- page ---------------------------------------------------------------------------------------

def run_section(index: int, run: Run, hosts: Sequence[Host], figures: Sequence[FigureRef],
                layout: Layout | None = None, run_file: RunFile | None = None) -> str:
    info = run.info
    parts = [f'<h3 id="{anchor(index)}">{esc(info.name)} <span class="sub">({esc(info.benchmark)}, '
             f"group {esc(info.group)})</span></h3>"]
    if not info.complete:
        parts.append('<p class="bad">This run did not finish.</p>')
    parts.append(f"<p>{esc(headline(run, layout))}</p>")
    if isinstance(run, PairsRun):
        parts.append(outlier_hosts_table(run, hosts))
        parts.append(hop_class_table(run, layout or _flat_layout(hosts)))
        if run.n_ranks > FULL_HEATMAP_MAX:
            parts.append(f"<p>{run.n_ranks} ranks: heatmaps show blocks (worst and median of each block pair) and "
                         f"drill-downs of the {MAX_DRILLDOWNS} blocks whose ranks stand out most (lowest median "
                         "bandwidth or highest median latency against the fabric's).</p>")
    if isinstance(run, CollRun):
        parts.append(coll_tables(run, hosts))
    if isinstance(run, ShiftRun):
        from fabscope_analyze import load, report_load

        idle = load.idle_reference(run_file, run) if run_file is not None else None
        parts.append(report_load.shift_html(run, hosts, layout or _flat_layout(hosts), idle))
    if isinstance(run, CongestionRun):
        from fabscope_analyze import report_load

        parts.append(report_load.congestion_html(run, hosts, layout or _flat_layout(hosts)))
    if info.counters is not None:
        parts.append(counters_table(info.counters, hosts))
    if figures:
        parts.append('<div class="figures">' + "\n".join(figure_html(f) for f in figures) + "</div>")
    return "\n".join(p for p in parts if p)


def render_html(run_file: RunFile, figures: Sequence[Sequence[FigureRef]], verdict=None,  # type: ignore[no-untyped-def]
                layout: Layout | None = None) -> str:
    """The whole page; `figures[i]` belongs to `run_file.runs[i]`; `verdict` (accept.Verdict) on top;
    `layout` (default: built from the file) for the hop-class tables."""
    layout = layout or build_layout(run_file)
    name = run_file.path.name
    reasons = run_file.incomplete_reasons()
    warning = ""
    if reasons:
        items = "".join(f"<li>{esc(r)}</li>" for r in reasons)
        warning = f'<div class="warning" role="alert"><strong>Incomplete results.</strong><ul>{items}</ul></div>'
    load_kinds = (ShiftRun, CongestionRun)
    runs = "\n".join(
        run_section(i, r, run_file.hosts, f, layout, run_file) for i, (r, f) in enumerate(zip(run_file.runs, figures))
        if not isinstance(r, load_kinds)
    )
    if not runs and any(isinstance(r, load_kinds) for r in run_file.runs):
        runs = '<p>Only runs under load: see <a href="#load">Fabric under load</a>.</p>'
    loaded = "\n".join(
        run_section(i, r, run_file.hosts, f, layout, run_file) for i, (r, f) in enumerate(zip(run_file.runs, figures))
        if isinstance(r, load_kinds)
    )
    if loaded:
        loaded = ('<h2 id="load">Fabric under load</h2>\n<p>shift: every rank sends at once (mpiGraph); '
                  "congestion: victims measured alone and while aggressors load the fabric (GPCNeT).</p>\n" + loaded)
    suite = (f"<details><summary>suite</summary><pre>{esc(run_file.suite_text)}</pre></details>"
             if run_file.suite_text else "")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fabscope report: {esc(name)}</title>
<style>{CSS}</style>
</head>
<body>
<h1>fabscope report: {esc(name)}</h1>
<p class="sub">created {esc(run_file.created_utc)} by fabscope {esc(run_file.fabscope_version)},
{esc(run_file.n_ranks)} ranks, {len(run_file.runs)} runs</p>
{verdict_section(verdict) if verdict is not None else ""}
{warning}
<h2>Summary</h2>
{summary_table(run_file, layout) if run_file.runs else "<p>The file holds no runs.</p>"}
<h2>Runs</h2>
{runs}
{loaded}
<h2>Provenance</h2>
{provenance_table(run_file)}
{suite}
<h3>Hosts</h3>
{hosts_section(run_file.hosts)}
<footer>Generated by fabscope-analyze {esc(__version__)} from {esc(name)}. Figures: click for SVG.
Units: ns = nanoseconds, Gb/s = 1e9 bits per second, Mpps = 1e6 messages per second, K = 1024 bytes.</footer>
</body>
</html>
"""


def write_report(run_file: RunFile, out_dir: Path, criteria=None) -> Path:  # type: ignore[no-untyped-def]
    """Write `out_dir`/index.html and `out_dir`/figures/*; returns the path of index.html.
    With `criteria` (criteria.Criteria) the acceptance verdict heads the page."""
    layout = build_layout(run_file)
    verdict = None
    if criteria is not None:
        from fabscope_analyze.accept import evaluate

        verdict = evaluate(run_file, criteria, layout)
    fig_dir = out_dir / FIGURE_DIR
    fig_dir.mkdir(parents=True, exist_ok=True)
    figures = []
    try:
        for i, run in enumerate(run_file.runs):
            figures.append(run_figures(run, run_file.hosts, fig_dir, f"{i:02d}-{slug(run.info.group)}", layout,
                                       run_file=run_file, criteria=criteria))
        page = render_html(run_file, figures, verdict, layout)
    finally:
        _HOST_MEDIANS.clear()
        from fabscope_analyze import report_load

        report_load.clear()
    index = out_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def default_out_dir(result_path: Path) -> Path:
    """`<dir>/<stem>-report/` next to the result file."""
    return result_path.with_name(f"{result_path.stem}-report")

