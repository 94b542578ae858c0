"""The HTML report: one self-contained folder with index.html and figures/ (PNG + SVG).

The page needs no network and no JavaScript and uses relative paths only, so it opens from disk
or from an artifact store. Every piece of text that comes from the result file is HTML-escaped.

One module per run kind (sweep, pairs, coll, load: shift and congestion), each a ReportKind
(common.py) registered in page.KINDS; page.py lays the page out around them. One
ReportContext per report holds the layout, the criteria and what several parts of a run's
section compute once.
"""

from __future__ import annotations

from pathlib import Path

from fabscope_analyze import parallel, plots
from fabscope_analyze.accept import evaluate
from fabscope_analyze.context import ReportContext
from fabscope_analyze.criteria import Criteria
from fabscope_analyze.htmlpage import FIGURE_DIR, FigureRef, esc, figure_html, fmt, slug
from fabscope_analyze.reader import RunFile
from fabscope_analyze.verdict import Verdict
from fabscope_analyze.report.common import FULL_HEATMAP_MAX, ReportKind, axis_label, leaf_groups, sizes_text
from fabscope_analyze.report import fabric_counters
from fabscope_analyze.report.page import KINDS, headline, kind_of, render_html, run_figures, run_section, save_figure_ref
from fabscope_analyze.report.pairs import CDF_MAX_VALUES, MAX_DRILLDOWNS, host_medians

__all__ = ["CDF_MAX_VALUES", "FIGURE_DIR", "FULL_HEATMAP_MAX", "KINDS", "MAX_DRILLDOWNS", "FigureRef", "ReportKind",
           "axis_label", "default_out_dir", "esc", "fmt", "headline", "host_medians", "kind_of", "leaf_groups",
           "render_html", "run_figures", "run_section", "sizes_text", "slug", "write_report"]


def write_report(run_file: RunFile, out_dir: Path, criteria: Criteria | None = None, *,
                 verdict: Verdict | None = None, ctx: ReportContext | None = None) -> Path:
    """Write `out_dir`/index.html and `out_dir`/figures/*; returns the path of index.html.
    With `criteria` the acceptance verdict heads the page (`verdict`: already judged, with `ctx`,
    the context that judged it: `accept --report` reuses both)."""
    ctx = ctx if ctx is not None else ReportContext.of(run_file, criteria)
    if verdict is None and criteria is not None:
        verdict = evaluate(run_file, criteria, ctx=ctx)
    fig_dir = out_dir / FIGURE_DIR
    fig_dir.mkdir(parents=True, exist_ok=True)
    # figures are drawn into files by forked processes while this one computes the next ones and
    # the tables (up to two per CPU at a time: drawing a large fabric's figures takes longer than
    # computing them; none when FABSCOPE_ANALYZE_WORKERS=1)
    cpus = parallel.workers(1, 1)
    with plots.background_saves(2 * cpus if cpus > 1 else 0):
        figures = [run_figures(run, ctx, fig_dir, f"{i:02d}-{slug(run.info.group)}")
                   for i, run in enumerate(run_file.runs)]
        counters = ""
        cables = fabric_counters.cables_of(run_file)
        if cables is not None:
            fig = fabric_counters.counters_figure(cables, f"fabric counters: {run_file.path.name}")
            ref = save_figure_ref(fig, fig_dir, "fabric-counters",
                                  "PMA error counters, PortXmitWait and data per cable, grouped by leaf")
            counters = fabric_counters.section_html(cables, figure_html(ref))
        page = render_html(ctx, figures, verdict, counters)
    index = out_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def default_out_dir(result_path: Path) -> Path:
    """`<dir>/<stem>-report/` next to the result file."""
    return result_path.with_name(f"{result_path.stem}-report")
