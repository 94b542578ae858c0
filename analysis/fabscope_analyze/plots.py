"""Figures: pure functions from numpy arrays to matplotlib Figures, rendered with Agg.

No pyplot (no global figure state), no file access except `save_figure`. Text from result files
(host names, labels) is drawn literally: mathtext is off, so `$` or `\\` in a host name stays as is.
"""

from __future__ import annotations

import math
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import BoundaryNorm, ListedColormap, Normalize, TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, MaxNLocator, NullFormatter, NullLocator

NAN_GREY = "#bdbdbd"  # cells not measured; no colormap used here contains this grey
PNG_DPI = 110
MAX_LABELLED_CELLS = 64  # above this many ranks, label every k-th rank only
MAX_TICK_LABELS = 32
MAX_ANNOTATED_CELLS = 12  # write values into cells only up to this many ranks
MAX_LABEL_CHARS = 24
MIN_LOG_SPAN = 20.0  # a panel asking for a log y axis gets one only if its data span this factor
GROUP_LINE_GID = "group-boundary"  # gid of the separator lines between groups (leaves) of ranks
GROUP_LINE_COLOUR = "white"
GROUP_LINE_WIDTH = 1.2
GROUP_FONTSIZE = 8
MAX_GROUP_LABEL_CHARS = 16

# Status colours by name (SCHEMA.md status_names); unknown names take _EXTRA_STATUS_COLOURS.
STATUS_COLOURS: dict[str, str] = {
    "not_run": "#f0f0f0",
    "ok": "#1a9850",
    "failed": "#d73027",
    "timeout": "#f4a52f",
}
_EXTRA_STATUS_COLOURS = ("#7b3294", "#2c7bb6", "#a6611a", "#000000")

_STYLE = {
    "text.parse_math": False,
    "svg.hashsalt": "fabscope",  # stable SVG ids
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.grid": False,
}


@contextmanager
def _style() -> Iterator[None]:
    with matplotlib.rc_context(_STYLE):
        yield


@dataclass(frozen=True)
class Band:
    """A shaded range between two curves, e.g. min..p99."""

    label: str
    low: np.ndarray
    high: np.ndarray


@dataclass(frozen=True)
class Line:
    label: str
    y: np.ndarray
    style: str = "--"


@dataclass(frozen=True)
class Panel:
    """One axes of a sweep figure: a median line, bands around it and extra lines."""

    ylabel: str
    median: np.ndarray
    median_label: str = "p50"
    bands: Sequence[Band] = ()  # drawn widest first: list them outermost first
    lines: Sequence[Line] = ()
    log_y: bool = False


@dataclass(frozen=True)
class Cdf:
    """Empirical distributions of raw samples, one curve per (label, samples) series."""

    xlabel: str
    series: Sequence[tuple[str, np.ndarray]]


def format_bytes(n: int) -> str:
    """Message size as in suites: 1, 512, 1K, 64K, 1M (K = 1024)."""
    for shift, suffix in ((30, "G"), (20, "M"), (10, "K")):
        unit = 1 << shift
        if n >= unit and n % unit == 0:
            return f"{n // unit}{suffix}"
    return str(n)


def tick_step(n: int, max_labelled: int = MAX_LABELLED_CELLS, max_ticks: int = MAX_TICK_LABELS) -> int:
    """Label every cell up to `max_labelled` ranks, else every k-th with k from 1-2-5 steps
    so that at most `max_ticks` labels remain."""
    if n <= max_labelled:
        return 1
    raw = n / max_ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * magnitude >= raw:
            return int(m * magnitude)
    return int(10 * magnitude)


def compact_number(v: float) -> str:
    """A cell value in at most ~5 characters: 0.123, 12.3, 1852, 124k."""
    a = abs(v)
    if not math.isfinite(v) or a >= 1e8:
        return f"{v:.1g}"  # 1e+308, inf: short, never hundreds of digits
    if a >= 1e5:
        return f"{v / 1e3:.0f}k"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"


def _plain_tick(value: float, _pos: object = None) -> str:
    return f"{value:g}"


def use_log_y(panel: Panel) -> bool:
    """Log scale only where the data span at least MIN_LOG_SPAN (else a log axis has no ticks)."""
    if not panel.log_y:
        return False
    values = np.concatenate([np.ravel(panel.median)] + [np.ravel(b.low) for b in panel.bands]
                            + [np.ravel(b.high) for b in panel.bands] + [np.ravel(l.y) for l in panel.lines])
    values = values[np.isfinite(values) & (values > 0)]
    return bool(values.size) and float(values.max() / values.min()) >= MIN_LOG_SPAN


def shorten(text: str, limit: int = MAX_LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _label_fontsize(n: int) -> float:
    return 9 if n <= 16 else 7 if n <= 32 else 5.5 if n <= MAX_LABELLED_CELLS else 7


def _matrix_ticks(ax: matplotlib.axes.Axes, labels: Sequence[str], xlabel: str, ylabel: str) -> None:
    n = len(labels)
    step = tick_step(n)
    positions = np.arange(0, n, step)
    texts = [shorten(labels[i]) for i in positions]
    fontsize = _label_fontsize(n)
    ax.xaxis.set_major_locator(FixedLocator(positions))
    ax.yaxis.set_major_locator(FixedLocator(positions))
    ax.set_xticklabels(texts, rotation=90, fontsize=fontsize)
    ax.set_yticklabels(texts, fontsize=fontsize)
    ax.xaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_minor_locator(NullLocator())
    ax.set_xlabel(xlabel if step == 1 else f"{xlabel} (one label every {step} ranks)")
    ax.set_ylabel(ylabel)


def _matrix_inches(n: int, annotated: bool) -> float:
    return min(max(n * (0.5 if annotated else 0.2), 3.4), 10.0)


def _heatmap_size(labels: Sequence[str], annotated: bool, legend_in: float = 1.4,
                  groups: Sequence[tuple[str, int, int]] | None = None) -> tuple[float, float]:
    """Figure inches: a matrix with room for its cell values, plus the tick labels (which grow
    with the longest label), the colour bar (`legend_in`), the title and the group labels on the
    top and right edges (when `groups`)."""
    n = len(labels)
    matrix_in = _matrix_inches(n, annotated)
    longest = max((len(shorten(label)) for label in labels), default=1)
    label_in = 0.35 + longest * _label_fontsize(n) * 0.6 / 72
    group_in = 0.0
    if groups:
        longest_group = max(len(shorten(name, MAX_GROUP_LABEL_CHARS)) for name, _, _ in groups)
        group_in = 0.3 + longest_group * GROUP_FONTSIZE * 0.6 / 72
    return matrix_in + label_in + legend_in + group_in, matrix_in + label_in + 0.9 + group_in


def _check_groups(groups: Sequence[tuple[str, int, int]], n: int) -> list[tuple[str, int, int]]:
    out = [(str(name), int(a), int(b)) for name, a, b in groups]
    prev = 0
    for name, a, b in out:
        if not (0 <= a < b <= n) or a < prev:
            raise ValueError(f"group {name!r} [{a}, {b}) is not an ordered, non-empty range of 0..{n}")
        prev = b
    return out


def _draw_groups(ax: matplotlib.axes.Axes, groups: Sequence[tuple[str, int, int]], n: int, matrix_in: float,
                 colour: str = GROUP_LINE_COLOUR) -> None:
    """Separator lines at the group boundaries on both axes (gid GROUP_LINE_GID) and the group
    names centred on their ranges on a secondary top and right axis; names that would not fit
    their range are thinned out (every k-th group labelled)."""
    groups = _check_groups(groups, n)
    cuts = sorted(({a for _, a, _ in groups} | {b for _, _, b in groups}) - {0, n})
    for c in cuts:
        for line in (ax.axhline(c - 0.5, color=colour, linewidth=GROUP_LINE_WIDTH),
                     ax.axvline(c - 0.5, color=colour, linewidth=GROUP_LINE_WIDTH)):
            line.set_gid(GROUP_LINE_GID)
    names = [shorten(name, MAX_GROUP_LABEL_CHARS) for name, _, _ in groups]
    centres = [(a + b - 1) / 2 for _, a, b in groups]
    cell_in = matrix_in / max(n, 1)
    line_in = GROUP_FONTSIZE * 1.3 / 72  # height of one line of label text
    narrowest = min(b - a for _, a, b in groups) * cell_in
    longest = max(len(name) for name in names) * GROUP_FONTSIZE * 0.6 / 72
    rotate = longest > narrowest  # top labels: vertical when they do not fit across their range
    need = line_in if rotate else longest
    step = max(1, math.ceil(need / narrowest)) if narrowest > 0 else 1
    shown = list(range(0, len(groups), step))
    top = ax.secondary_xaxis("top")
    right = ax.secondary_yaxis("right")
    for axis in (top.xaxis, right.yaxis):
        axis.set_major_locator(FixedLocator([centres[k] for k in shown]))
        axis.set_minor_locator(NullLocator())
    top.set_xticklabels([names[k] for k in shown], fontsize=GROUP_FONTSIZE, rotation=90 if rotate else 0)
    right.set_yticklabels([names[k] for k in shown], fontsize=GROUP_FONTSIZE)
    for sec in (top, right):
        sec.tick_params(length=0, pad=2)
        for spine in sec.spines.values():
            spine.set_visible(False)


def _text_colour(rgb: tuple[float, float, float]) -> str:
    r, g, b = rgb[:3]
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def heatmap_figure(
    matrix: np.ndarray,
    labels: Sequence[str],
    *,
    title: str,
    cbar_label: str,
    cmap: str = "viridis",
    xlabel: str = "rank host",
    ylabel: str = "rank host",
    annotate: bool | None = None,
    value_format: str | None = None,
    center: float | None = None,
    groups: Sequence[tuple[str, int, int]] | None = None,
) -> Figure:
    """An [N, N] matrix as a heatmap; NaN cells (not measured) in NAN_GREY.

    `labels[i]` names rank i on both axes. Cells carry their values when N <= MAX_ANNOTATED_CELLS
    (or `annotate` says so); above MAX_LABELLED_CELLS ranks only every k-th rank is labelled.
    `center`: a diverging scale with this value in the middle (e.g. 1.0 for NEW/BASE ratios).
    `groups`: (name, start, stop) ranges of display positions (e.g. the ranks of each leaf):
    separator lines at their boundaries and their names along the top and right edges.
    """
    m = np.asarray(matrix, dtype=np.float64)
    n = m.shape[0]
    if m.shape != (n, n) or len(labels) != n:
        raise ValueError(f"matrix {m.shape} and {len(labels)} labels do not match")
    if annotate is None:
        annotate = n <= MAX_ANNOTATED_CELLS
    with _style():
        fig = Figure(figsize=_heatmap_size(labels, annotate, groups=groups), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        colours = matplotlib.colormaps[cmap].copy()
        colours.set_bad(NAN_GREY)
        finite = m[np.isfinite(m)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if lo == hi:
            pad = abs(lo) * 0.05 or 1.0
            lo, hi = lo - pad, hi + pad
        norm = Normalize(lo, hi)
        if center is not None:
            half = max(abs(hi - center), abs(center - lo), 1e-9)
            norm = TwoSlopeNorm(vcenter=center, vmin=center - half, vmax=center + half)
        image = ax.imshow(np.ma.masked_invalid(m), cmap=colours, norm=norm, interpolation="nearest")
        cbar = fig.colorbar(image, ax=ax, shrink=0.85, pad=0.02)
        cbar.set_label(cbar_label)
        _matrix_ticks(ax, labels, xlabel, ylabel)
        missing = int(np.isnan(m).sum() - np.isnan(np.diag(m)).sum())
        note = f"grey: not measured ({missing} off-diagonal cells)" if missing else "grey: not measured"
        if not finite.size:
            note = "no measured cells"
        ax.set_title(f"{title}\n{note}")
        if annotate:
            for (i, j), v in np.ndenumerate(m):
                if np.isfinite(v):
                    text = value_format.format(v) if value_format else compact_number(v)
                    ax.text(j, i, text, ha="center", va="center", fontsize=8,
                            color=_text_colour(colours(norm(v))))
        if groups:
            _draw_groups(ax, groups, n, _matrix_inches(n, annotate))
    return fig


def status_figure(status: np.ndarray, names: Sequence[str], labels: Sequence[str], *, title: str,
                  groups: Sequence[tuple[str, int, int]] | None = None) -> Figure:
    """The per-pair status matrix [N, N] (codes index `names`) as a categorical heatmap;
    `groups` as in heatmap_figure."""
    s = np.asarray(status, dtype=np.int64)
    n = s.shape[0]
    codes = sorted(set(range(len(names))) | set(np.unique(s).tolist()))
    code_names = [names[c] if 0 <= c < len(names) else f"status {c}" for c in codes]
    extra = iter(_EXTRA_STATUS_COLOURS * (1 + len(codes)))
    colours = [STATUS_COLOURS.get(name) or next(extra) for name in code_names]
    index = np.searchsorted(codes, s)  # category index of every cell
    with _style():
        longest_name = max(len(name) for name in code_names)
        fig = Figure(figsize=_heatmap_size(labels, False, legend_in=1.2 + 0.07 * longest_name, groups=groups),
                     layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        cmap = ListedColormap(colours)
        norm = BoundaryNorm(np.arange(len(codes) + 1) - 0.5, len(codes))
        image = ax.imshow(index, cmap=cmap, norm=norm, interpolation="nearest")
        cbar = fig.colorbar(image, ax=ax, shrink=0.85, pad=0.02, ticks=np.arange(len(codes)))
        counts = [int((s[np.triu_indices(n, k=1)] == c).sum()) for c in codes]
        cbar.ax.set_yticklabels([f"{name} ({count})" for name, count in zip(code_names, counts)])
        cbar.set_label("pair status (pairs)")
        _matrix_ticks(ax, labels, "rank host", "rank host")
        ax.set_title(title)
        if groups:
            _draw_groups(ax, groups, n, _matrix_inches(n, False), colour="black")
    return fig


def _log_axis(axis: matplotlib.axis.Axis) -> None:
    """Log scale with plain-number labels (mathtext is off, so 10^k labels would print raw)."""
    axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(_plain_tick))
    axis.set_minor_formatter(NullFormatter())


def _size_axis(ax: matplotlib.axes.Axes, sizes: np.ndarray) -> None:
    if sizes.size:
        ax.set_xscale("log", base=2)
        ticks = sizes[:: max(1, math.ceil(sizes.size / 14))]
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([format_bytes(int(t)) for t in ticks], rotation=45 if sizes.size > 9 else 0)
    ax.set_xlabel("message size (bytes, K = 1024)")


def _draw_panel(ax: matplotlib.axes.Axes, sizes: np.ndarray, panel: Panel) -> None:
    alphas = np.linspace(0.18, 0.38, max(len(panel.bands), 1))
    for band, alpha in zip(panel.bands, alphas):
        ax.fill_between(sizes, band.low, band.high, color="C0", alpha=float(alpha), linewidth=0, label=band.label)
    ax.plot(sizes, panel.median, "o-", color="C0", markersize=3.5, linewidth=1.6, label=panel.median_label)
    for k, line in enumerate(panel.lines):
        ax.plot(sizes, line.y, line.style, color=f"C{k + 1}", linewidth=1.2, label=line.label)
    if use_log_y(panel):
        ax.set_yscale("log")
        _log_axis(ax.yaxis)
    else:
        ax.set_ylim(bottom=0)
    ax.set_ylabel(panel.ylabel)
    ax.grid(True, which="major", alpha=0.3)
    _size_axis(ax, sizes)
    if sizes.size == 0:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center")
    else:
        ax.legend(loc="best", fontsize=8)


def _draw_cdf(ax: matplotlib.axes.Axes, cdf: Cdf) -> None:
    everything = np.concatenate([np.ravel(x) for _, x in cdf.series]) if cdf.series else np.array([])
    everything = everything[np.isfinite(everything)]
    for k, (label, samples) in enumerate(cdf.series):
        x = np.sort(np.asarray(samples, dtype=np.float64)[np.isfinite(samples)])
        if x.size:
            ax.step(x, np.arange(1, x.size + 1) / x.size, where="post", color=f"C{k}", linewidth=1.4, label=label)
    positive = everything[everything > 0]
    if positive.size and positive.max() / positive.min() >= MIN_LOG_SPAN:
        ax.set_xscale("log")
        _log_axis(ax.xaxis)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(cdf.xlabel)
    ax.set_ylabel("fraction of samples ≤ x")
    ax.grid(True, alpha=0.3)
    if everything.size:
        ax.legend(loc="lower right", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center")


def sweep_figure(size_bytes: np.ndarray, panels: Sequence[Panel], *, title: str, cdf: Cdf | None = None) -> Figure:
    """Metrics over message size, one axes per panel side by side, and optionally the
    distribution (empirical CDF) of the raw samples of a few sizes."""
    sizes = np.asarray(size_bytes, dtype=np.float64)
    n_axes = len(panels) + (cdf is not None)
    with _style():
        fig = Figure(figsize=(0.6 + 5.2 * n_axes, 4.4), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(1, n_axes, squeeze=False)[0]
        for ax, panel in zip(axes, panels):
            _draw_panel(ax, sizes, panel)
        if cdf is not None:
            _draw_cdf(axes[-1], cdf)
        fig.suptitle(title)
    return fig


def save_figure(fig: Figure, directory: Path, stem: str) -> tuple[Path, Path]:
    """Write `stem`.png and `stem`.svg into `directory`; returns both paths. Inside
    background_saves(), a forked process writes them while this one goes on."""
    png, svg = directory / f"{stem}.png", directory / f"{stem}.svg"
    if _SAVER is not None:
        _SAVER.start(fig, png, svg)
    else:
        _write_figure(fig, png, svg)
    return png, svg


def _write_figure(fig: Figure, png: Path, svg: Path) -> None:
    with _style():
        fig.savefig(png, dpi=PNG_DPI, facecolor="white")
        fig.savefig(svg, facecolor="white", metadata={"Date": None})


class _Saver:
    """Figures written by forked processes, at most `processes` at a time (drawing a figure of a
    12,500-host report takes about a second, while this process computes the next one)."""

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self.pending: dict[int, Path] = {}
        self.failed: list[str] = []

    def start(self, fig: Figure, png: Path, svg: Path) -> None:
        while len(self.pending) >= self.processes:
            self._reap()
        pid = os.fork()
        if pid == 0:  # the child: write both files and leave without running anything else
            code = 0
            try:
                _write_figure(fig, png, svg)
            except BaseException as exc:  # noqa: BLE001 - reported by the parent
                sys.stderr.write(f"{png}: {exc}\n")
                code = 1
            finally:
                os._exit(code)
        self.pending[pid] = png

    def _reap(self) -> None:
        """Wait for the oldest figure's process (only our own: never another child)."""
        pid = next(iter(self.pending))
        _, status = os.waitpid(pid, 0)
        png = self.pending.pop(pid)
        if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
            self.failed.append(png.name)

    def finish(self) -> None:
        while self.pending:
            self._reap()
        if self.failed:
            raise OSError(f"could not write the figure(s) {', '.join(self.failed)}")


_SAVER: _Saver | None = None


@contextmanager
def background_saves(processes: int) -> Iterator[None]:
    """save_figure() inside writes in up to `processes` forked processes (none: processes < 1);
    every figure is written when the block ends (OSError naming those that could not be)."""
    global _SAVER
    if processes < 1 or _SAVER is not None:
        yield
        return
    _SAVER = saver = _Saver(processes)
    try:
        yield
    except BaseException:
        _SAVER = None
        saver.failed.clear()
        saver.finish()  # every child waited for; the error in this process is the one to report
        raise
    _SAVER = None
    saver.finish()



# --- line plots (collectives, trends) ------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """One line: y over the panel's x, with optional highlighted points (e.g. failed checks)."""

    label: str
    y: np.ndarray
    marks: np.ndarray | None = None  # bool [len(x)]: draw a red cross there


@dataclass(frozen=True)
class LinePanel:
    title: str
    x: np.ndarray
    xlabel: str
    ylabel: str
    series: Sequence[Series]
    x_is_size: bool = False  # message sizes: log2 axis with 1K/1M labels
    x_ticks: Sequence[int] | None = None  # e.g. the node counts
    log_y: bool = False
    mark_label: str = "failed --check"


def _draw_lines(ax: matplotlib.axes.Axes, panel: LinePanel) -> None:
    x = np.asarray(panel.x, dtype=np.float64)
    marked = False
    for k, s in enumerate(panel.series):
        y = np.asarray(s.y, dtype=np.float64)
        ax.plot(x, y, "o-", color=f"C{k % 10}", markersize=3, linewidth=1.3, label=s.label)
        if s.marks is not None and np.any(s.marks):
            ax.plot(x[s.marks], np.where(np.isfinite(y[s.marks]), y[s.marks], np.nanmax(y) if np.isfinite(y).any()
                                         else 0.0), "x", color="#d00000", markersize=9, markeredgewidth=2,
                    label=panel.mark_label if not marked else None)
            marked = True
    values = np.concatenate([np.ravel(s.y) for s in panel.series]) if panel.series else np.array([])
    positive = values[np.isfinite(values) & (values > 0)]
    if panel.log_y and positive.size and positive.max() / positive.min() >= MIN_LOG_SPAN:
        ax.set_yscale("log")
        _log_axis(ax.yaxis)
    elif positive.size:
        ax.set_ylim(bottom=0)
    if panel.x_is_size:
        _size_axis(ax, np.asarray(panel.x))
    else:
        if x.size and x.min() > 0 and x.max() / x.min() >= 4:
            ax.set_xscale("log", base=2)
        ticks = panel.x_ticks if panel.x_ticks is not None else x
        ax.xaxis.set_major_locator(FixedLocator(list(ticks)))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(_plain_tick))
        ax.set_xlabel(panel.xlabel)
    ax.set_ylabel(panel.ylabel)
    ax.set_title(panel.title)
    ax.grid(True, alpha=0.3)
    if not values.size or not np.isfinite(values).any():
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center")
    else:
        ax.legend(loc="best", fontsize=7, ncol=2 if len(panel.series) > 6 else 1)


def lines_figure(panels: Sequence[LinePanel], *, title: str) -> Figure:
    """Panels of lines side by side (collective scaling: a line per node count or per size)."""
    with _style():
        fig = Figure(figsize=(0.6 + 5.0 * len(panels), 4.4), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        for ax, panel in zip(axes, panels):
            _draw_lines(ax, panel)
        fig.suptitle(title)
    return fig


def cdf_figure(cdfs: Sequence[Cdf], *, title: str, ylabel: str = "fraction of pairs \u2264 x") -> Figure:
    """Empirical distributions side by side (pair bandwidth, pair latency)."""
    with _style():
        fig = Figure(figsize=(0.6 + 5.0 * len(cdfs), 4.2), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(1, len(cdfs), squeeze=False)[0]
        for ax, cdf in zip(axes, cdfs):
            _draw_cdf(ax, cdf)
            ax.set_ylabel(ylabel)
        fig.suptitle(title)
    return fig


def block_heatmap_figure(
    panels: Sequence[tuple[str, np.ndarray]],
    names: Sequence[str],
    *,
    title: str,
    cbar_label: str,
    cmap: str = "viridis",
    axis_label: str = "block",
    row_names: Sequence[str] | None = None,
    shared_scale: bool = True,
) -> Figure:
    """Aggregated matrices side by side (e.g. worst and median per leaf pair); `names` label the
    columns (and the rows unless `row_names`). One colour scale for all panels when shared."""
    rows = list(row_names) if row_names is not None else list(names)
    with _style():
        n_c = len(names)
        width = min(max(n_c * 0.12, 4.0), 8.0)
        fig = Figure(figsize=(1.8 + (width + 1.2) * len(panels), min(max(len(rows) * 0.12, 4.0), 8.0) + 2.0),
                     layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        finite = np.concatenate([m[np.isfinite(m)] for _, m in panels]) if panels else np.array([])
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if lo == hi:
            lo, hi = lo - (abs(lo) * 0.05 or 1.0), hi + (abs(hi) * 0.05 or 1.0)
        colours = matplotlib.colormaps[cmap].copy()
        colours.set_bad(NAN_GREY)
        for ax, (sub, m) in zip(axes, panels):
            f = m[np.isfinite(m)]
            norm = Normalize(lo, hi) if shared_scale or not f.size else Normalize(float(f.min()), float(f.max()))
            # "none": SVG embeds the array as is instead of a resampled, figure-sized raster
            image = ax.imshow(np.ma.masked_invalid(m), cmap=colours, norm=norm, interpolation="none",
                              aspect="auto")
            fig.colorbar(image, ax=ax, shrink=0.85, pad=0.02).set_label(cbar_label)
            for axis, labels in ((ax.xaxis, names), (ax.yaxis, rows)):
                step = tick_step(len(labels), 40, 24)
                pos = np.arange(0, len(labels), step)
                axis.set_major_locator(FixedLocator(pos))
                axis.set_minor_locator(NullLocator())
                axis.set_ticklabels([shorten(labels[i]) for i in pos], fontsize=6 if len(labels) > 24 else 8)
            for t in ax.get_xticklabels():
                t.set_rotation(90)
            ax.set_xlabel(axis_label)
            ax.set_ylabel(axis_label if row_names is None else "host")
            ax.set_title(sub)
        fig.suptitle(title)
    return fig


def trend_figure(labels: Sequence[str], values: np.ndarray, *, title: str, ylabel: str,
                 change_points: Sequence[int] = (), levels: Sequence[tuple[int, int, float]] = ()) -> Figure:
    """A metric over runs (x = run order, labelled by date); change points as vertical lines,
    `levels` (start, stop, value) as the segment medians."""
    x = np.arange(len(values))
    with _style():
        fig = Figure(figsize=(max(6.0, min(14.0, 0.35 * len(values) + 4)), 4.0), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        ax.plot(x, values, "o-", color="C0", markersize=4, linewidth=1.3, label="run")
        for start, stop, level in levels:
            ax.hlines(level, start - 0.4, stop - 0.6, colors="C2", linewidth=2, label=None)
        for k, cp in enumerate(change_points):
            ax.axvline(cp - 0.5, color="#d00000", linestyle="--", linewidth=1.2,
                       label="change point" if k == 0 else None)
        step = max(1, math.ceil(len(labels) / 20))
        ax.xaxis.set_major_locator(FixedLocator(x[::step]))
        ax.set_xticklabels([shorten(labels[i], 20) for i in x[::step]], rotation=60, ha="right", fontsize=7)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    return fig


# --- runs under load (shift, congestion) ------------------------------------------------------------

HOP_CLASS_COLOURS = ("#7b3294", "#1b9e77", "#377eb8", "#e6550d", "#636363")  # same_host .. unknown
LIMIT_COLOUR = "#d00000"


@dataclass(frozen=True)
class StepPanel:
    """One axes over the steps of a shift run: lines of (label, y, style), an optional limit line
    and steps to mark (e.g. those failing a criterion)."""

    x: np.ndarray
    xlabel: str
    ylabel: str
    lines: Sequence[tuple[str, np.ndarray, str]]
    limit: float | None = None
    limit_label: str = ""
    marks: np.ndarray | None = None  # bool [len(x)]
    mark_label: str = "below the limit"
    bottom_zero: bool = True


def _draw_steps(ax: matplotlib.axes.Axes, panel: StepPanel) -> None:
    x = np.asarray(panel.x, dtype=np.float64)
    dense = x.size > 60
    finite = False
    for k, (label, y, style) in enumerate(panel.lines):
        y = np.asarray(y, dtype=np.float64)
        finite |= bool(np.isfinite(y).any())
        ax.plot(x, y, style if not dense else style.replace("o", ""), color=f"C{k}", markersize=3, linewidth=1.2,
                label=label)
    if panel.limit is not None:
        ax.axhline(panel.limit, color=LIMIT_COLOUR, linestyle="--", linewidth=1.0, label=panel.limit_label or "limit")
    if panel.marks is not None and np.any(panel.marks) and panel.lines:
        y0 = np.asarray(panel.lines[0][1], dtype=np.float64)
        ax.plot(x[panel.marks], y0[panel.marks], "x", color=LIMIT_COLOUR, markersize=8, markeredgewidth=2,
                label=panel.mark_label)
    if panel.bottom_zero and finite:
        ax.set_ylim(bottom=0)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(panel.xlabel)
    ax.set_ylabel(panel.ylabel)
    ax.grid(True, alpha=0.3)
    if finite:
        ax.legend(loc="lower right", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center")


def steps_figure(panels: Sequence[StepPanel], *, title: str) -> Figure:
    """Per-step series of a shift run side by side (effective throughput, flow bandwidth)."""
    with _style():
        fig = Figure(figsize=(0.6 + 5.4 * len(panels), 4.2), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        for ax, panel in zip(axes, panels):
            _draw_steps(ax, panel)
        fig.suptitle(title)
    return fig


def histogram_figure(edges: np.ndarray, series: Sequence[tuple[str, np.ndarray, str]], *, title: str,
                     xlabel: str, ylabel: str = "flows", marks: Sequence[tuple[float, str]] = ()) -> Figure:
    """Counts over bins (`edges` [B + 1]) as step outlines, one per (label, counts [B], colour),
    the first filled; vertical lines at `marks` (x, label). Log counts when they span MIN_LOG_SPAN,
    so that a small slow mode stays visible next to a large main mode."""
    e = np.asarray(edges, dtype=np.float64)
    with _style():
        fig = Figure(figsize=(7.0, 4.2), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        positive = np.concatenate([np.asarray(c)[np.asarray(c) > 0] for _, c, _ in series]) if series else np.array([])
        for k, (label, counts, colour) in enumerate(series):
            c = np.asarray(counts, dtype=np.float64)
            if k == 0:
                ax.stairs(c, e, fill=True, color=colour, alpha=0.35, label=label)
            else:
                ax.stairs(c, e, color=colour, linewidth=1.5, label=label)
        for x, label in marks:
            ax.axvline(x, color=LIMIT_COLOUR, linestyle="--", linewidth=1.0, label=label)
        if positive.size and positive.max() / positive.min() >= MIN_LOG_SPAN:
            ax.set_yscale("log")
            _log_axis(ax.yaxis)
            ax.set_ylim(bottom=0.7)
        ax.set_xlim(e[0], e[-1])
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if positive.size:
            ax.legend(loc="upper left", fontsize=8)
        else:
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center")
        ax.set_title(title)
    return fig


@dataclass(frozen=True)
class ImpactPanel:
    """Impact factors of every victim under one aggressor pattern: victims in display order
    (grouped by hop class), one marker series per metric."""

    title: str
    series: Sequence[tuple[str, np.ndarray]]  # (metric label, impact [V] in display order)
    groups: Sequence[tuple[str, int, int]]  # (hop class, start, stop) over display positions
    limits: Sequence[tuple[str, np.ndarray]] = ()  # (label, limit [V] in display order; NaN = none)


_IMPACT_MARKERS = ("o", "^", "s", "D", "v")


def impact_victims_figure(panels: Sequence[ImpactPanel], *, title: str, ylabel: str = "impact factor (loaded / isolated)"
                          ) -> Figure:
    """Per pattern, the impact factor of every victim (x: victims grouped by hop class to their
    ring partner); 1 = no impact; limits as dashed steps."""
    with _style():
        fig = Figure(figsize=(0.6 + 5.0 * max(1, len(panels)), 4.4), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(1, max(1, len(panels)), squeeze=False, sharey=True)[0]
        values = np.concatenate([np.ravel(y) for p in panels for _, y in p.series] +
                                [np.ravel(l) for p in panels for _, l in p.limits] + [np.array([1.0])])
        values = values[np.isfinite(values) & (values > 0)]
        for ax, panel in zip(axes, panels):
            v = max((np.asarray(y).size for _, y in panel.series), default=0)
            x = np.arange(v)
            for k, (label, y) in enumerate(panel.series):
                ax.plot(x, y, _IMPACT_MARKERS[k % len(_IMPACT_MARKERS)], color=f"C{k}", markersize=4 if v <= 200 else 2,
                        alpha=0.85, label=label, linestyle="none")
            for k, (label, lim) in enumerate(panel.limits):
                lim = np.asarray(lim, dtype=np.float64)
                if np.isfinite(lim).any():
                    ax.stairs(lim, np.arange(v + 1) - 0.5, color=LIMIT_COLOUR, linestyle=("--", ":", "-.")[k % 3],
                              linewidth=1.0, label=label, baseline=None)
            ax.axhline(1.0, color="#555555", linewidth=0.8)
            for name, a, b in panel.groups:
                if a > 0:
                    ax.axvline(a - 0.5, color="#999999", linewidth=0.8)
                ax.text((a + b - 1) / 2, 1.0, shorten(name, MAX_GROUP_LABEL_CHARS), transform=ax.get_xaxis_transform(),
                        ha="center", va="bottom", fontsize=7, color="#444444")
            ax.set_xlim(-0.5, max(v, 1) - 0.5)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("victims, grouped by hop class to their ring partner")
            ax.set_title(panel.title, pad=14)
            ax.grid(True, axis="y", alpha=0.3)
            if v:
                ax.legend(loc="upper left", fontsize=7)
            else:
                ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center")
        axes[0].set_ylabel(ylabel)
        if values.size and values.max() / values.min() >= MIN_LOG_SPAN / 2:
            axes[0].set_yscale("log")
            _log_axis(axes[0].yaxis)
        fig.suptitle(title)
    return fig


def impact_box_figure(panels: Sequence[tuple[str, Sequence[str], Sequence[str], Sequence[Sequence[np.ndarray]]]], *,
                      title: str, limits: Sequence[float | None] = ()) -> Figure:
    """Box plots of impact factors: per panel (metric title, group names on x (hop classes),
    series names (patterns), values[series][group]); optional limit line per panel."""
    with _style():
        fig = Figure(figsize=(0.6 + 4.6 * max(1, len(panels)), 4.4), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(1, max(1, len(panels)), squeeze=False)[0]
        for pi, (ax, (metric, groups, names, data)) in enumerate(zip(axes, panels)):
            k = max(1, len(names))
            width = 0.8 / k
            everything = []
            for si, name in enumerate(names):
                pos, vals = [], []
                for gi in range(len(groups)):
                    v = np.asarray(data[si][gi], dtype=np.float64)
                    v = v[np.isfinite(v)]
                    if v.size:
                        pos.append(gi - 0.4 + width * (si + 0.5))
                        vals.append(v)
                        everything.append(v)
                if vals:
                    bp = ax.boxplot(vals, positions=pos, widths=width * 0.85, patch_artist=True, manage_ticks=False,
                                    flierprops={"markersize": 2}, medianprops={"color": "black"})
                    for box in bp["boxes"]:
                        box.set_facecolor(f"C{si % 10}")
                        box.set_alpha(0.6)
                    ax.plot([], [], "s", color=f"C{si % 10}", alpha=0.6, label=name)
            limit = limits[pi] if pi < len(limits) else None
            if limit is not None:
                ax.axhline(limit, color=LIMIT_COLOUR, linestyle="--", linewidth=1.0, label="limit")
            ax.axhline(1.0, color="#555555", linewidth=0.8)
            ax.xaxis.set_major_locator(FixedLocator(list(range(len(groups)))))
            ax.set_xticklabels(list(groups), rotation=0 if len(groups) <= 3 else 30)
            ax.set_xlim(-0.6, len(groups) - 0.4)
            ax.set_title(metric)
            ax.set_ylabel("impact factor")
            ax.grid(True, axis="y", alpha=0.3)
            allv = np.concatenate(everything) if everything else np.array([])
            allv = allv[allv > 0]
            if allv.size and allv.max() / allv.min() >= MIN_LOG_SPAN:
                ax.set_yscale("log")
                _log_axis(ax.yaxis)
            if everything:
                ax.legend(loc="upper left", fontsize=7)
            else:
                ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center")
        fig.suptitle(title)
    return fig


# --- the fabric's own counters per cable (/pma) --------------------------------------------------


@dataclass(frozen=True)
class CablePanel:
    """One bar per cable (x: cables grouped by leaf); `marks` [K]: bars drawn in the alarm colour."""

    ylabel: str
    values: np.ndarray  # [K]
    colour: str
    marks: np.ndarray | None = None  # bool [K]


def cable_counters_figure(panels: Sequence[CablePanel], groups: Sequence[tuple[str, int, int]],
                          notes: Sequence[tuple[int, str]], *, title: str) -> Figure:
    """Counters per cable in topology order: every leaf's host cables then its uplinks, leaves
    separated and named on the x axis; `notes` (cable position, text) name the cables that stand
    out. Log y where a panel's values span MIN_LOG_SPAN (a 0 count stays an empty bar)."""
    k = len(panels[0].values) if panels else 0
    width = min(16.0, max(7.0, 0.09 * k + 2.0))
    with _style():
        fig = Figure(figsize=(width, 1.0 + 2.1 * max(1, len(panels))), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(max(1, len(panels)), 1, squeeze=False, sharex=True)[:, 0]
        x = np.arange(k)
        for ax, panel in zip(axes, panels):
            v = np.asarray(panel.values, dtype=np.float64)
            colours = np.full(k, panel.colour, dtype=object)
            if panel.marks is not None:
                colours[np.asarray(panel.marks, dtype=bool)] = LIMIT_COLOUR
            ax.bar(x, v, width=0.85, color=list(colours))
            positive = v[v > 0]
            if positive.size and positive.max() / positive.min() >= MIN_LOG_SPAN:
                ax.set_yscale("log")
                _log_axis(ax.yaxis)
                ax.set_ylim(bottom=0.7 * positive.min())
            if not positive.size:
                ax.text(0.5, 0.5, "0 on every cable", transform=ax.transAxes, ha="center", va="center",
                        fontsize=9, color="#555555")
            ax.set_ylabel(panel.ylabel)
            ax.grid(True, axis="y", alpha=0.3)
            if len(groups) < k:  # one bar per group needs no separators
                for _, start, _stop in groups[1:]:
                    ax.axvline(start - 0.5, color="#555555", linewidth=0.8, gid=GROUP_LINE_GID)
        for pos, text in notes:
            axes[0].annotate(shorten(text, 40), (pos, 1.0), xycoords=("data", "axes fraction"), xytext=(0, 2),
                             textcoords="offset points", ha="center", va="bottom", fontsize=7, color=LIMIT_COLOUR,
                             rotation=20)
        axes[-1].set_xlim(-0.6, k - 0.4)
        named = [(name, a, b) for name, a, b in groups if name]
        axes[-1].set_xticks([(a + b - 1) / 2 for _, a, b in named])
        axes[-1].set_xticklabels([shorten(name, MAX_GROUP_LABEL_CHARS) for name, _, _ in named],
                                 rotation=90 if len(named) > 12 else 0, fontsize=GROUP_FONTSIZE)
        axes[-1].set_xlabel("cables by leaf: its host cables, then its uplinks")
        fig.suptitle(title)
    return fig
