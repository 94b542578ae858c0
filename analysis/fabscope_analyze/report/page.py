"""The report page: the run kinds' handlers (KINDS), the figures of a run, the section of a run,
and the page around them (verdict, summary, runs, runs under load, provenance, hosts).

Every piece of text that comes from the result file is HTML-escaped.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from fabscope_analyze import __version__, plots
from fabscope_analyze.context import ReportContext
from fabscope_analyze.htmlpage import CSS, FIGURE_DIR, FigureRef, esc, figure_html, table
from fabscope_analyze.reader import CollRun, CongestionRun, Counters, Host, PairsRun, Run, RunFile, ShiftRun, SweepRun
from fabscope_analyze.report.coll import CollKind
from fabscope_analyze.report.common import ReportKind, endpoint
from fabscope_analyze.report.load import CongestionKind, ShiftKind
from fabscope_analyze.report.pairs import PairsKind
from fabscope_analyze.report.sweep import SweepKind
from fabscope_analyze.verdict import FAIL, Verdict

MAX_OPEN_HOST_ROWS = 64  # larger host tables start folded

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

# the handler of each run kind (reader's run classes); any other kind gets the ReportKind defaults
KINDS: dict[type, ReportKind] = {
    SweepRun: SweepKind(),
    PairsRun: PairsKind(),
    CollRun: CollKind(),
    ShiftRun: ShiftKind(),
    CongestionRun: CongestionKind(),
}
_UNKNOWN = ReportKind()


def kind_of(run: Run) -> ReportKind:
    return KINDS.get(type(run), _UNKNOWN)


def anchor(index: int) -> str:
    """The id of a run's section in the page."""
    return f"run-{index:02d}"


def headline(run: Run, ctx: ReportContext) -> str:
    """One line of the key numbers of a run (plain text, to be escaped)."""
    return kind_of(run).headline(run, ctx)


def run_title(run: Run, hosts: Sequence[Host]) -> str:
    info = run.info
    what = info.benchmark if info.name == info.benchmark else f"{info.name} ({info.benchmark})"
    title = f"{what} over {info.transport}" + kind_of(run).title_suffix(run, hosts)
    if info.label:
        title += f" [{info.label}]"
    return title


def save_figure_ref(fig: Figure, fig_dir: Path, stem: str, alt: str) -> FigureRef:
    """Save `fig` as stem.png and stem.svg under fig_dir; its reference for the page."""
    width, height = (fig.get_size_inches() * plots.PNG_DPI).round().astype(int)
    png, svg = plots.save_figure(fig, fig_dir, stem)
    return FigureRef(f"{FIGURE_DIR}/{png.name}", f"{FIGURE_DIR}/{svg.name}", alt, int(width), int(height))


def run_figures(run: Run, ctx: ReportContext, fig_dir: Path, stem: str) -> list[FigureRef]:
    """Draw and save the figures of one run; returns them in display order."""
    refs: list[FigureRef] = []

    def save(fig: Figure, kind: str, alt: str) -> None:
        refs.append(save_figure_ref(fig, fig_dir, f"{stem}-{kind}", alt))

    kind_of(run).figures(run, ctx, run_title(run, ctx.hosts), save)
    return refs


def run_section(index: int, run: Run, figures: Sequence[FigureRef], ctx: ReportContext) -> str:
    info = run.info
    parts = [f'<h3 id="{anchor(index)}">{esc(info.name)} <span class="sub">({esc(info.benchmark)}, '
             f"group {esc(info.group)})</span></h3>"]
    if not info.complete:
        parts.append('<p class="bad">This run did not finish.</p>')
    parts.append(f"<p>{esc(headline(run, ctx))}</p>")
    parts.append(kind_of(run).section(run, ctx))
    if info.counters is not None:
        parts.append(counters_table(info.counters, ctx.hosts))
    if figures:
        parts.append('<div class="figures">' + "\n".join(figure_html(f) for f in figures) + "</div>")
    return "\n".join(p for p in parts if p)


def summary_table(ctx: ReportContext) -> str:
    rows = []
    for i, run in enumerate(ctx.run_file.runs):
        info = run.info
        sizes = kind_of(run).sizes(run)
        done = "yes" if info.complete else '<span class="bad">no</span>'
        rows.append([
            f'<a href="#{anchor(i)}">{esc(info.name)}</a>', esc(info.benchmark), esc(info.transport),
            esc(info.label), esc(f"{info.iters} / {info.warmup}"), esc(sizes), esc(headline(run, ctx)),
            esc(info.started_utc), esc(info.finished_utc), done,
        ])
    return table(
        ["run", "benchmark", "transport", "label", "iters / warmup", "sizes", "result", "started", "finished",
         "complete"],
        rows, "runs",
    )


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
                     esc(", ".join(f"{endpoint(hosts, r)}: {int(d[r]):,}" for r in top)) or "\u2013"])
    return ("<p>Counter deltas over the run (-1 in the file = absent on that rank, not counted):</p>"
            + table(["counter", "ranks", "total", "median", "largest"], rows, "counters"))


def verdict_section(verdict: Verdict) -> str:
    """The acceptance verdict as the first thing on the page."""
    cls = {"pass": "pass", "fail": "warning", "inconclusive": "inconclusive"}.get(verdict.status, "warning")
    rows = []
    for rv in verdict.runs:
        for c in rv.checks:
            status = c.status.upper()
            cell = f'<span class="bad">{status}</span>' if c.status == FAIL else esc(status)
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


def render_html(ctx: ReportContext, figures: Sequence[Sequence[FigureRef]], verdict: Verdict | None = None,
                fabric_counters: str = "") -> str:
    """The whole page; `figures[i]` belongs to `ctx.run_file.runs[i]`; `verdict` on top;
    `fabric_counters`: the section of /pma (report/fabric_counters.py), after the runs."""
    run_file = ctx.run_file
    name = run_file.path.name
    reasons = run_file.incomplete_reasons()
    warning = ""
    if reasons:
        items = "".join(f"<li>{esc(r)}</li>" for r in reasons)
        warning = f'<div class="warning" role="alert"><strong>Incomplete results.</strong><ul>{items}</ul></div>'
    runs = "\n".join(
        run_section(i, r, f, ctx) for i, (r, f) in enumerate(zip(run_file.runs, figures)) if not kind_of(r).under_load
    )
    if not runs and any(kind_of(r).under_load for r in run_file.runs):
        runs = '<p>Only runs under load: see <a href="#load">Fabric under load</a>.</p>'
    loaded = "\n".join(
        run_section(i, r, f, ctx) for i, (r, f) in enumerate(zip(run_file.runs, figures)) if kind_of(r).under_load
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
{summary_table(ctx) if run_file.runs else "<p>The file holds no runs.</p>"}
<h2>Runs</h2>
{runs}
{loaded}
{fabric_counters}
<h2>Provenance</h2>
{provenance_table(run_file)}
{suite}
<h3>Hosts</h3>
{hosts_section(run_file.hosts)}
<footer>Generated by fabscope-analyze {esc(__version__)} from {esc(name)}. Figures: click for SVG.
Units: us = microseconds (latency and times), Gb/s = 1e9 bits per second, Mpps = 1e6 messages per second, K = 1024 bytes.</footer>
</body>
</html>
"""
