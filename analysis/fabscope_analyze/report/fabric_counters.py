"""The fabric's own counters in the report (/pma, `fabscope --pma`): per cable, summed over both
ends, the error counters, PortXmitWait and the data that crossed it, drawn in topology order
(every leaf's host cables, then its uplinks) with the cables whose error counters rose named,
and a table of those cables."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from fabscope_analyze import plots
from fabscope_analyze.accept.port_counters import ERROR_COUNTERS
from fabscope_analyze.htmlpage import esc, table
from fabscope_analyze.reader import PmaDeltas, RunFile

MAX_NAMED = 6  # cables named on the figure
MAX_ROWS = 30  # rows of the table of cables with errors
MAX_CABLE_BARS = 1500  # above this many cables, one bar per leaf


@dataclass(frozen=True)
class Cables:
    """One entry per cable (/topology/links row) of /pma, in display order."""

    names: list[str]  # "END <-> PEER"
    errors: np.ndarray  # int64 [K]: error counters summed over both ends
    rose: list[str]  # per cable: "at END: SymbolErrorCounter +42, ..." or ""
    xmit_wait: np.ndarray  # int64 [K]
    data_gb: np.ndarray  # float64 [K]: PortXmitData of both ends x 4 bytes, GB; NaN unread
    unread: np.ndarray  # bool [K]: an end did not answer its PortCounters query
    groups: list[tuple[str, int, int]]  # (leaf, start, stop)


def _column(pma: PmaDeltas, name: str) -> np.ndarray | None:
    return pma.delta[:, pma.names.index(name)] if name in pma.names else None


def cables_of(run_file: RunFile) -> Cables | None:
    pma = run_file.pma
    if pma is None or not len(pma.link):
        return None
    topo = run_file.topology
    a_kind = topo.column("links", "a_kind") if topo else None
    a_idx = topo.column("links", "a_index") if topo else None
    b_idx = topo.column("links", "b_index") if topo else None
    sw_name = topo.column("switches", "name") if topo else None
    sw_level = topo.column("switches", "level") if topo else None

    def leaf_of(link: int) -> tuple[int, int, str]:
        """(level, switch index, name) of the cable's lower switch: a host cable's leaf, an
        uplink's leaf (the `a` end is the lower one)."""
        if a_kind is None or a_idx is None or b_idx is None or sw_name is None or not 0 <= link < len(a_kind):
            return (0, 0, "cables")
        s = int(b_idx[link]) if str(a_kind[link]) == "nic" else int(a_idx[link])
        if not 0 <= s < len(sw_name):
            return (0, 0, "cables")
        level = int(sw_level[s]) if sw_level is not None else 1
        return (level, s, str(sw_name[s]))

    errors_cols = [k for k, n in enumerate(pma.names) if n in ERROR_COUNTERS]
    wait, data = _column(pma, "PortXmitWait"), _column(pma, "PortXmitData")
    by_link: dict[int, list[int]] = {}
    for e, link in enumerate(pma.link.tolist()):
        by_link.setdefault(int(link), []).append(e)
    # Leaf, then host cables before uplinks (an uplink's `a` end is a switch), then link order.
    order = sorted(by_link, key=lambda l: (leaf_of(l), a_kind is not None and 0 <= l < len(a_kind)
                                           and str(a_kind[l]) != "nic", l))
    names, rose, groups = [], [], []
    errors = np.zeros(len(order), dtype=np.int64)
    xmit_wait = np.zeros(len(order), dtype=np.int64)
    data_gb = np.full(len(order), np.nan)
    unread = np.zeros(len(order), dtype=bool)
    for k, link in enumerate(order):
        ends = by_link[link]
        first = ends[0]
        names.append(f"{pma.end[first]} <-> {pma.peer[first]}")
        parts = []
        for e in ends:
            unread[k] |= not bool(pma.ok[e])
            up = [f"{pma.names[c]} +{int(pma.delta[e, c])}" for c in errors_cols if pma.delta[e, c] > 0]
            errors[k] += int(sum(int(pma.delta[e, c]) for c in errors_cols))
            if up:
                parts.append(f"at {pma.end[e]}: " + ", ".join(up))
            if wait is not None:
                xmit_wait[k] += int(wait[e])
        rose.append("; ".join(parts))
        ext = [e for e in ends if bool(pma.ok_ext[e])]
        if data is not None and ext:
            data_gb[k] = float(sum(int(data[e]) for e in ext)) * 4 / 1e9
        leaf = leaf_of(link)[2]
        if not groups or groups[-1][0] != leaf:
            groups.append((leaf, k, k + 1))
        else:
            groups[-1] = (leaf, groups[-1][1], k + 1)
    return Cables(names, errors, rose, xmit_wait, data_gb, unread, groups)


def counters_figure(c: Cables, title: str) -> Figure:
    """One bar per cable; above MAX_CABLE_BARS cables (a large fabric) one bar per leaf, the sums
    of its cables, so the figure stays readable and small."""
    errors, wait, data = c.errors, c.xmit_wait, np.nan_to_num(c.data_gb)
    groups, where = c.groups, np.arange(len(c.names))
    if len(c.names) > MAX_CABLE_BARS:
        starts = np.array([a for _, a, _ in c.groups], dtype=np.int64)
        errors, wait, data = (np.add.reduceat(v, starts) for v in (errors, wait, data))
        where = np.repeat(np.arange(len(c.groups)), [b - a for _, a, b in c.groups])
        step = plots.tick_step(len(c.groups))
        groups = [(name if k % step == 0 else "", k, k + 1) for k, (name, _, _) in enumerate(c.groups)]
        title += f" ({len(c.names):,} cables, summed per leaf)"
    panels = [plots.CablePanel("error counters\n(sum, both ends)", errors, "#4c72b0", errors > 0),
              plots.CablePanel("PortXmitWait\n(ticks, both ends)", wait, "#8172b2")]
    if np.isfinite(c.data_gb).any():
        panels.append(plots.CablePanel("data sent\n(GB, both ends)", data, "#55a868"))
    worst = [int(k) for k in np.argsort(-c.errors, kind="stable")[:MAX_NAMED] if c.errors[k] > 0]
    notes = [(int(where[k]), c.names[k]) for k in sorted(worst, key=lambda k: where[k])]
    return plots.cable_counters_figure(panels, groups, notes, title=title)


def section_html(c: Cables, figure_html: str) -> str:
    """The page's section: what was read, the cables whose error counters rose, the figure."""
    bad = [k for k in np.argsort(-c.errors, kind="stable").tolist() if c.errors[k] > 0]
    read = f"{len(c.names) - int(c.unread.sum())} of {len(c.names)} cables read at both ends"
    wait = int(c.xmit_wait.sum())
    parts = ['<h2 id="fabric-counters">Fabric counters</h2>',
             f"<p>PMA port counters of both ends of every cable, after - before the runs ({esc(read)}); "
             f"{len(bad)} cable{'s' if len(bad) != 1 else ''} with rising error counters; PortXmitWait "
             f"{esc(f'{wait:,}')} ticks in all.</p>"]
    if bad:
        rows = [[esc(c.names[k]), esc(f"{int(c.errors[k]):,}"), esc(c.rose[k])] for k in bad[:MAX_ROWS]]
        parts.append(table(["cable", "errors", "counters that rose"], rows, "pma-errors"))
        if len(bad) > MAX_ROWS:
            parts.append(f"<p>... and {len(bad) - MAX_ROWS} more cables (the file's /pma has every one).</p>")
    parts.append(figure_html)
    return "\n".join(parts)
