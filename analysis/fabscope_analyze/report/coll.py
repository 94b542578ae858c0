"""Collective runs in the report: scaling with node count and message size per collective,
failed measurements, the largest scaling drops and the steps below the efficiency threshold."""

from __future__ import annotations

from typing import Sequence

from fabscope_analyze import coll, plots
from fabscope_analyze.context import ReportContext
from fabscope_analyze.htmlpage import esc, fmt, table
from fabscope_analyze.reader import CollRun, Host
from fabscope_analyze.report.common import ReportKind, Save, sizes_text


class CollKind(ReportKind):
    def headline(self, run: CollRun, ctx: ReportContext) -> str:
        return coll.headline(run)

    def sizes(self, run: CollRun) -> str:
        return _coll_sizes(run)

    def figures(self, run: CollRun, ctx: ReportContext, title: str, save: Save) -> None:
        for name, op in run.ops.items():
            save(plots.lines_figure(coll.op_panels(run, op), title=f"{title}\n{name}"), f"coll-{name}",
                 f"{name}: scaling with node count and message size, run {run.info.name}")

    def section(self, run: CollRun, ctx: ReportContext) -> str:
        return coll_tables(run, ctx.hosts)


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


def _coll_sizes(run: CollRun) -> str:
    sizes = [op.size_bytes for op in run.ops.values() if op.has_bandwidth]
    nodes = ", ".join(str(int(c)) for c in run.node_counts)
    return (sizes_text(sizes[0]) if sizes else "") + f"; nodes {nodes}"
