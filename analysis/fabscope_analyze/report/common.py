"""What the report's run-kind modules share: the ReportKind interface (with its defaults), the
figure-saving callback type, heatmap axis helpers and limits."""

from __future__ import annotations

import re
from collections import Counter
from typing import Callable, Sequence

import numpy as np

from fabscope_analyze import plots
from fabscope_analyze.context import ReportContext
from fabscope_analyze.layout import Layout
from fabscope_analyze.reader import Host, Run

FULL_HEATMAP_MAX = 256  # above this many ranks heatmaps aggregate blocks (leaves, or k ranks)

# save(figure, kind, alt): writes <stem>-<kind>.png/.svg and records it for the page, in order
Save = Callable[..., None]


class ReportKind:
    """What the report needs of a run kind. A kind overrides what it shows; the defaults show
    nothing. write_report asks, per run: figures (drawn first), then headline and sizes (summary
    table and section head) and section (the HTML between the headline and the figures)."""

    under_load = False  # its section goes under "Fabric under load" rather than "Runs"

    def headline(self, run: Run, ctx: ReportContext) -> str:
        """One line of the run's key numbers (plain text, escaped by the page)."""
        return "benchmark kind not known to this version of fabscope-analyze; not shown"

    def sizes(self, run: Run) -> str:
        """The message sizes for the summary table (plain text)."""
        return ""

    def title_suffix(self, run: Run, hosts: Sequence[Host]) -> str:
        """Added to the figure titles after "<benchmark> over <transport>"."""
        return ""

    def figures(self, run: Run, ctx: ReportContext, title: str, save: Save) -> None:
        """Draw the run's figures and save each with save(fig, kind, alt)."""

    def section(self, run: Run, ctx: ReportContext) -> str:
        """HTML tables and notes of the run (escaped)."""
        return ""


def endpoint(hosts: Sequence[Host], rank: int) -> str:
    """One spelling of an endpoint in every output: the host name, `host/rank N` when several
    ranks share the host (as accept's and compare's)."""
    name = hosts[rank].hostname
    shared = sum(1 for h in hosts if h.hostname == name) > 1
    return f"{name}/rank {rank}" if shared else name


def axis_label(hosts: Sequence[Host], rank: int, shared: bool | None = None) -> str:
    """The endpoint's one spelling (`endpoint`) on a heatmap axis, a domain name cut to its first
    label (the hosts table has the full name; a numeric address is kept whole). `shared`: whether
    several ranks share the host, when the caller has counted it (else counted here)."""
    name = hosts[rank].hostname
    first = name.split(".", 1)[0]
    short = first if re.search(r"[A-Za-z]", first) else name
    if shared is None:
        shared = sum(1 for h in hosts if h.hostname == name) > 1
    return f"{short}/rank {rank}" if shared else short


def axis_labels(hosts: Sequence[Host], order: Sequence[int]) -> list[str]:
    """`axis_label` of each rank of `order` (display order), hosts counted once."""
    count = Counter(h.hostname for h in hosts)
    return [axis_label(hosts, int(r), count[hosts[int(r)].hostname] > 1) for r in order]


def leaf_groups(lay: Layout) -> list[tuple[str, int, int]] | None:
    """(leaf name, start, stop) over display positions for the full heatmaps; None without leaves."""
    if not lay.has_leaves:
        return None
    names, bounds = lay.blocks()
    return [(name, int(a), int(b)) for name, a, b in zip(names, bounds[:-1], bounds[1:])]


def sizes_text(sizes: np.ndarray) -> str:
    if sizes.size == 0:
        return "none"
    first, last = plots.format_bytes(int(sizes[0])), plots.format_bytes(int(sizes[-1]))
    return f"{first}..{last} ({sizes.size} sizes)" if sizes.size > 1 else first
