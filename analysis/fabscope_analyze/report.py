"""The HTML report: one self-contained folder with index.html and figures/ (PNG + SVG).

The page needs no network and no JavaScript and uses relative paths only, so it opens from disk
or from an artifact store. Every piece of text that comes from the result file is HTML-escaped.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from fabscope_analyze import __version__, plots, stats
from fabscope_analyze.reader import Host, PairsRun, Run, RunFile, SweepRun

FIGURE_DIR = "figures"
MAX_OPEN_HOST_ROWS = 64  # larger host tables start folded
N_OUTLIER_HOSTS = 5

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


@dataclass(frozen=True)
class FigureRef:
    """A figure written to disk; paths relative to the report folder."""

    png: str
    svg: str
    alt: str
    width: int  # PNG size in pixels, so the page lays figures out at their natural size
    height: int


def esc(value: object) -> str:
    """Text for HTML content or attribute values."""
    return html.escape(str(value), quote=True)


def fmt(value: float, digits: int = 4) -> str:
    """A number for a table: `digits` significant digits (all integer digits of large values),
    an en dash for NaN."""
    if value is None or not np.isfinite(value):
        return "\u2013"
    return f"{value:.0f}" if abs(value) >= 10 ** digits else f"{value:.{digits}g}"


def anchor(index: int) -> str:
    """The id of a run's section in the page."""
    return f"run-{index:02d}"


def slug(text: str) -> str:
    """A file-name-safe form of a group name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.") or "run"


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


def run_figures(run: Run, hosts: Sequence[Host], fig_dir: Path, stem: str) -> list[FigureRef]:
    """Draw and save the figures of one run; returns them in display order."""
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
        labels = [axis_label(h) for h in hosts]
        save(
            plots.heatmap_figure(
                run.latency_ns_p50, labels,
                title=f"{title}\none-way latency p50, {plots.format_bytes(run.lat_size_bytes)} B messages",
                cbar_label="one-way latency p50 (ns)", cmap="viridis_r",
            ),
            "latency_p50", f"pair latency p50 heatmap, run {run.info.name}",
        )
        save(
            plots.heatmap_figure(
                run.bw_gbps, labels,
                title=f"{title}\nbandwidth (p50 of windows), {plots.format_bytes(run.bw_size_bytes)} B messages,"
                " row sends to column",
                cbar_label="bandwidth, p50 of windows (Gb/s)", cmap="viridis",
                xlabel="receiver: rank host", ylabel="sender: rank host",
            ),
            "bw", f"pair bandwidth heatmap, run {run.info.name}",
        )
        save(
            plots.status_figure(run.status, run.status_names, labels, title=f"{title}\npair status"),
            "status", f"pair status matrix, run {run.info.name}",
        )
    return refs


# --- tables -------------------------------------------------------------------------------------


def sizes_text(sizes: np.ndarray) -> str:
    if sizes.size == 0:
        return "none"
    first, last = plots.format_bytes(int(sizes[0])), plots.format_bytes(int(sizes[-1]))
    return f"{first}..{last} ({sizes.size} sizes)" if sizes.size > 1 else first


def headline(run: Run) -> str:
    """One line of the key numbers of a run (plain text, to be escaped)."""
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
        lat = stats.offdiag(run.latency_ns_p50)
        bw = stats.offdiag(run.bw_gbps)
        return (
            f"{total} pairs ({counts}); rounds {run.rounds_done}/{run.rounds_total}; latency p50 median "
            f"{fmt(stats.nan_median(lat))} ns, max {fmt(stats.nan_max(lat))} ns; bandwidth median "
            f"{fmt(stats.nan_median(bw))} Gb/s, min {fmt(stats.nan_min(bw))} Gb/s"
        )
    return "benchmark kind not known to this version of fabscope-analyze; not shown"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    """A table from already-escaped cells."""
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "\n".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}">\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>'


def summary_table(run_file: RunFile) -> str:
    rows = []
    for i, run in enumerate(run_file.runs):
        info = run.info
        sizes = sizes_text(run.size_bytes) if isinstance(run, SweepRun) else (
            f"lat {plots.format_bytes(run.lat_size_bytes)}, bw {plots.format_bytes(run.bw_size_bytes)}"
            if isinstance(run, PairsRun) else "")
        done = "yes" if info.complete else '<span class="bad">no</span>'
        rows.append([
            f'<a href="#{anchor(i)}">{esc(info.name)}</a>', esc(info.benchmark), esc(info.transport),
            esc(info.label), esc(f"{info.iters} / {info.warmup}"), esc(sizes), esc(headline(run)),
            esc(info.started_utc), esc(info.finished_utc), done,
        ])
    return _table(
        ["run", "benchmark", "transport", "label", "iters / warmup", "sizes", "result", "started", "finished",
         "complete"],
        rows, "runs",
    )


def outlier_hosts_table(run: PairsRun, hosts: Sequence[Host]) -> str:
    """The hosts whose pairs are slowest: highest median latency p50, lowest median bandwidth."""
    lat = stats.per_host_median(run.latency_ns_p50)
    bw = stats.per_host_median(run.bw_gbps)
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
        + _table(["rank host", "median latency p50 (ns)", "x fabric", "median bandwidth (Gb/s)", "x fabric"],
                 rows, "outliers")
    )


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
    return _table(["attribute", "value"], rows, "provenance")


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
    table = _table(["rank"] + [t for _, t in _HOST_COLUMNS] + ["RDMA devices"], rows, "hosts")
    n_hosts = len({h.hostname for h in hosts})
    summary = f"{len(hosts)} ranks on {n_hosts} host{'s' if n_hosts != 1 else ''}"
    if notes:
        summary += ": " + ", ".join(notes) + " (marked)"
    opened = " open" if len(hosts) <= MAX_OPEN_HOST_ROWS else ""
    return f"<details{opened}><summary>{summary}</summary>\n{table}\n</details>"


# --- page ---------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5rem 2rem; color: #1b1b1b;
       max-width: 1500px; }
h1 { font-size: 1.5rem; margin-bottom: 0.2rem; } h2 { font-size: 1.2rem; margin-top: 2rem;
       border-bottom: 1px solid #ccc; padding-bottom: 0.2rem; } h3 { font-size: 1.05rem; }
.sub { color: #555; margin-top: 0; }
.warning { background: #fde8e6; border: 2px solid #c62828; color: #7f1212; padding: 0.6rem 1rem;
           margin: 1rem 0; border-radius: 4px; }
.warning ul { margin: 0.3rem 0 0 0; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0 1rem 0; }
th, td { border: 1px solid #d0d0d0; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td code, pre { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 0.8rem; }
td code { word-break: break-all; }
pre { background: #f7f7f7; border: 1px solid #ddd; padding: 0.6rem; overflow-x: auto; }
.figures { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
figure { margin: 0; border: 1px solid #e0e0e0; padding: 0.4rem; background: #fff; flex: 0 1 auto; }
figure img { max-width: 100%; height: auto; display: block; }
figcaption { font-size: 0.8rem; color: #444; margin-top: 0.3rem; }
.bad { color: #b71c1c; font-weight: bold; } .odd { background: #fff3c4; } .muted { color: #888; }
footer { margin-top: 2rem; font-size: 0.8rem; color: #666; }
"""


def _figure_html(ref: FigureRef) -> str:
    return (
        f'<figure><a href="{esc(ref.svg)}"><img src="{esc(ref.png)}" alt="{esc(ref.alt)}" '
        f'width="{ref.width}" height="{ref.height}"></a>'
        f'<figcaption>{esc(ref.alt)} \u2013 <a href="{esc(ref.png)}">PNG</a> | '
        f'<a href="{esc(ref.svg)}">SVG</a></figcaption></figure>'
    )


def run_section(index: int, run: Run, hosts: Sequence[Host], figures: Sequence[FigureRef]) -> str:
    info = run.info
    parts = [f'<h3 id="{anchor(index)}">{esc(info.name)} <span class="sub">({esc(info.benchmark)}, '
             f"group {esc(info.group)})</span></h3>"]
    if not info.complete:
        parts.append('<p class="bad">This run did not finish.</p>')
    parts.append(f"<p>{esc(headline(run))}</p>")
    if isinstance(run, PairsRun):
        parts.append(outlier_hosts_table(run, hosts))
    if figures:
        parts.append('<div class="figures">' + "\n".join(_figure_html(f) for f in figures) + "</div>")
    return "\n".join(p for p in parts if p)


def render_html(run_file: RunFile, figures: Sequence[Sequence[FigureRef]]) -> str:
    """The whole page; `figures[i]` belongs to `run_file.runs[i]`."""
    name = run_file.path.name
    reasons = run_file.incomplete_reasons()
    warning = ""
    if reasons:
        items = "".join(f"<li>{esc(r)}</li>" for r in reasons)
        warning = f'<div class="warning" role="alert"><strong>Incomplete results.</strong><ul>{items}</ul></div>'
    runs = "\n".join(
        run_section(i, r, run_file.hosts, f) for i, (r, f) in enumerate(zip(run_file.runs, figures))
    )
    suite = (f"<details><summary>suite</summary><pre>{esc(run_file.suite_text)}</pre></details>"
             if run_file.suite_text else "")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fabscope report: {esc(name)}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>fabscope report: {esc(name)}</h1>
<p class="sub">created {esc(run_file.created_utc)} by fabscope {esc(run_file.fabscope_version)},
{esc(run_file.n_ranks)} ranks, {len(run_file.runs)} runs</p>
{warning}
<h2>Summary</h2>
{summary_table(run_file) if run_file.runs else "<p>The file holds no runs.</p>"}
<h2>Runs</h2>
{runs}
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


def write_report(run_file: RunFile, out_dir: Path) -> Path:
    """Write `out_dir`/index.html and `out_dir`/figures/*; returns the path of index.html."""
    fig_dir = out_dir / FIGURE_DIR
    fig_dir.mkdir(parents=True, exist_ok=True)
    figures = [
        run_figures(run, run_file.hosts, fig_dir, f"{i:02d}-{slug(run.info.group)}")
        for i, run in enumerate(run_file.runs)
    ]
    index = out_dir / "index.html"
    index.write_text(render_html(run_file, figures), encoding="utf-8")
    return index


def default_out_dir(result_path: Path) -> Path:
    """`<dir>/<stem>-report/` next to the result file."""
    return result_path.with_name(f"{result_path.stem}-report")

