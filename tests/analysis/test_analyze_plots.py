"""Unit tests of the pure figure functions (fabscope_analyze.plots) on synthetic arrays."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from fabscope_analyze import plots


def render(fig: Figure) -> np.ndarray:
    """RGB pixels [H, W, 3] in 0..1, row 0 at the top."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[:, :, :3] / 255.0


def cell_pixel(fig: Figure, rgb: np.ndarray, row: int, col: int) -> np.ndarray:
    """The colour at the centre of matrix cell [row, col] of the figure's first axes."""
    x, y = fig.axes[0].transData.transform((col, row))
    return rgb[int(round(rgb.shape[0] - y)), int(round(x))]


def labels(n: int) -> list[str]:
    return [f"{i} node{i:03d}" for i in range(n)]


@pytest.mark.parametrize(("n", "text"), [(1, "1"), (512, "512"), (1024, "1K"), (65536, "64K"),
                                         (1 << 20, "1M"), (1536, "1536"), (1 << 30, "1G")])
def test_format_bytes(n: int, text: str) -> None:
    assert plots.format_bytes(n) == text


@pytest.mark.parametrize(("n", "step"), [(2, 1), (64, 1), (65, 5), (100, 5), (640, 20), (1000, 50), (100_000, 5000)])
def test_tick_step(n: int, step: int) -> None:
    assert plots.tick_step(n) == step
    assert len(range(0, n, step)) <= max(plots.MAX_LABELLED_CELLS, plots.MAX_TICK_LABELS)


def test_heatmap_small_labels_units_values_and_grey_nan() -> None:
    m = np.array([[np.nan, 1500.0, 1600.0], [1500.0, np.nan, np.nan], [1600.0, np.nan, np.nan]])
    fig = plots.heatmap_figure(m, labels(3), title="t", cbar_label="one-way latency p50 (ns)")
    ax, cbar_ax = fig.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == labels(3)
    assert [t.get_text() for t in ax.get_yticklabels()] == labels(3)
    assert cbar_ax.get_ylabel() == "one-way latency p50 (ns)"
    assert sorted(t.get_text() for t in ax.texts) == ["1500", "1500", "1600", "1600"]
    assert "grey: not measured (2 off-diagonal cells)" in ax.get_title()
    rgb = render(fig)
    grey = np.array(to_rgb(plots.NAN_GREY))
    assert np.allclose(cell_pixel(fig, rgb, 1, 2), grey, atol=0.02)
    assert np.allclose(cell_pixel(fig, rgb, 0, 0), grey, atol=0.02)
    measured = cell_pixel(fig, rgb, 0, 1)
    assert not np.allclose(measured, grey, atol=0.1)
    # the two extremes of the colour scale differ
    assert not np.allclose(measured, cell_pixel(fig, rgb, 0, 2), atol=0.1)


def test_heatmap_large_matrix_is_not_annotated_and_labels_every_kth() -> None:
    n = 300
    rng = np.random.default_rng(0)
    m = rng.uniform(10, 100, (n, n))
    np.fill_diagonal(m, np.nan)
    fig = plots.heatmap_figure(m, labels(n), title="big", cbar_label="bandwidth (Gb/s)")
    ax = fig.axes[0]
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert 1 < len(ticks) <= plots.MAX_TICK_LABELS
    assert ticks[1] == labels(n)[plots.tick_step(n)]
    assert len(ax.texts) == 0
    assert "one label every 10 ranks" in ax.get_xlabel()
    rgb = render(fig)
    assert rgb.shape[0] * rgb.shape[1] < 2500 * 2500  # the figure does not grow with N


def test_heatmap_all_nan_and_constant() -> None:
    fig = plots.heatmap_figure(np.full((2, 2), np.nan), labels(2), title="t", cbar_label="x (ns)")
    assert "no measured cells" in fig.axes[0].get_title()
    render(fig)
    fig = plots.heatmap_figure(np.array([[np.nan, 5.0], [5.0, np.nan]]), labels(2), title="t", cbar_label="x")
    render(fig)


def test_heatmap_rejects_mismatched_labels() -> None:
    with pytest.raises(ValueError):
        plots.heatmap_figure(np.zeros((3, 3)), labels(2), title="t", cbar_label="x")


def test_text_from_files_is_drawn_literally() -> None:
    names = ["0 $x^2$", "1 a\\b_c", "2 <b>&"]
    fig = plots.heatmap_figure(np.ones((3, 3)), names, title="label $5 & 10$", cbar_label="x (ns)")
    render(fig)  # mathtext would fail on "\b" or render "$x^2$" as math
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == names
    assert all(not t.get_parse_math() for t in ax.get_yticklabels())
    assert "label $5 & 10$" in ax.get_title()


def test_status_figure_categories() -> None:
    s = np.array([[0, 1, 2], [1, 0, 3], [2, 3, 0]], dtype=np.int8)
    fig = plots.status_figure(s, ["not_run", "ok", "failed", "timeout"], labels(3), title="status")
    cbar = fig.axes[1]
    assert [t.get_text() for t in cbar.get_yticklabels()] == ["not_run (0)", "ok (1)", "failed (1)", "timeout (1)"]
    rgb = render(fig)
    assert np.allclose(cell_pixel(fig, rgb, 0, 1), to_rgb(plots.STATUS_COLOURS["ok"]), atol=0.02)
    assert np.allclose(cell_pixel(fig, rgb, 0, 2), to_rgb(plots.STATUS_COLOURS["failed"]), atol=0.02)
    assert np.allclose(cell_pixel(fig, rgb, 1, 2), to_rgb(plots.STATUS_COLOURS["timeout"]), atol=0.02)


def test_status_figure_unknown_code() -> None:
    s = np.array([[0, 7], [7, 0]], dtype=np.int8)
    fig = plots.status_figure(s, ["not_run", "ok"], labels(2), title="status")
    assert "status 7 (1)" in [t.get_text() for t in fig.axes[1].get_yticklabels()]


def test_sweep_figure_bands_log_axis_and_size_labels() -> None:
    sizes = np.array([2**k for k in range(10, 19)])
    p50 = np.linspace(1.0, 90.0, sizes.size)
    panel = plots.Panel(
        ylabel="bandwidth (Gb/s)", median=p50,
        bands=[plots.Band("min..p99", p50 * 0.8, p50 * 1.1), plots.Band("p10..p90", p50 * 0.9, p50 * 1.05)],
        lines=[plots.Line("overall", p50 * 0.97)],
    )
    rate = plots.Panel(ylabel="message rate (Mpps)", median=np.geomspace(2.0, 0.01, sizes.size), log_y=True)
    fig = plots.sweep_figure(sizes, [panel, rate], title="bw")
    render(fig)
    left, right = fig.axes
    assert left.get_yscale() == "linear" and right.get_yscale() == "log"
    for ax in (left, right):
        assert [t.get_text() for t in ax.get_xticklabels()] == [plots.format_bytes(int(s)) for s in sizes]
        assert ax.get_xlabel().startswith("message size")
    assert left.get_ylabel() == "bandwidth (Gb/s)" and right.get_ylabel() == "message rate (Mpps)"
    legend = [t.get_text() for t in left.get_legend().get_texts()]
    assert legend == ["min..p99", "p10..p90", "p50", "overall"]
    for ax in fig.axes:
        for t in ax.get_yticklabels():
            assert "$" not in t.get_text() and "mathdefault" not in t.get_text()
    assert any(t.get_text() for t in right.get_yticklabels())


def test_sweep_figure_with_distribution() -> None:
    rng = np.random.default_rng(1)
    sizes = np.array([1, 64, 4096])
    samples = 1800.0 * rng.lognormal(0, 0.3, (3, 200)) * np.array([1.0, 1.5, 30.0])[:, None]
    panel = plots.Panel(ylabel="one-way latency (ns)", median=np.median(samples, axis=1), log_y=True)
    cdf = plots.Cdf("one-way latency (ns)", [(f"{s} B", x) for s, x in zip(sizes, samples)])
    fig = plots.sweep_figure(sizes, [panel], title="lat", cdf=cdf)
    render(fig)
    sweep_ax, cdf_ax = fig.axes
    assert sweep_ax.get_yscale() == "log" and cdf_ax.get_xscale() == "log"
    assert len(cdf_ax.lines) == 3
    assert [t.get_text() for t in cdf_ax.get_legend().get_texts()] == ["1 B", "64 B", "4096 B"]
    ys = cdf_ax.lines[0].get_ydata()
    assert ys[0] == pytest.approx(1 / 200) and ys[-1] == pytest.approx(1.0)


def test_sweep_figure_without_sizes() -> None:
    panel = plots.Panel(ylabel="x", median=np.array([]))
    fig = plots.sweep_figure(np.array([]), [panel], title="empty", cdf=plots.Cdf("x", []))
    render(fig)
    assert all("no data" in [t.get_text() for t in ax.texts] for ax in fig.axes)


def test_log_axis_only_for_wide_ranges() -> None:
    narrow = plots.Panel(ylabel="latency (ns)", median=np.array([1800.0, 1900.0, 2100.0]), log_y=True)
    wide = plots.Panel(ylabel="latency (ns)", median=np.array([1800.0, 9000.0, 90000.0]), log_y=True)
    assert not plots.use_log_y(narrow)
    assert plots.use_log_y(wide)


def test_save_figure_writes_png_and_svg(tmp_path) -> None:
    fig = plots.heatmap_figure(np.ones((2, 2)), labels(2), title="t", cbar_label="x")
    png, svg = plots.save_figure(fig, tmp_path, "fig")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert svg.read_text().lstrip().startswith("<?xml")


def group_lines(fig: Figure) -> list:
    return [line for line in fig.axes[0].lines if line.get_gid() == plots.GROUP_LINE_GID]


def group_label_texts(fig: Figure) -> list[str]:
    """The tick labels of the secondary (group) axes on the top and right of the matrix."""
    ax = fig.axes[0]
    texts = []
    for child in ax.child_axes:
        texts += [t.get_text() for t in child.get_xticklabels() + child.get_yticklabels() if t.get_text()]
    return texts


LEAVES = [(f"leaf{k + 1:04d}", 8 * k, 8 * (k + 1)) for k in range(6)]  # 6 leaves x 8 hosts


def test_heatmap_groups_draw_boundaries_and_leaf_names() -> None:
    rng = np.random.default_rng(2)
    m = rng.uniform(1800, 2600, (48, 48))
    np.fill_diagonal(m, np.nan)
    plain = plots.heatmap_figure(m, labels(48), title="t", cbar_label="x (ns)")
    grouped = plots.heatmap_figure(m, labels(48), title="t", cbar_label="x (ns)", groups=LEAVES)
    assert group_lines(plain) == [] and group_label_texts(plain) == []
    lines = group_lines(grouped)
    assert len(lines) == 2 * 5  # 5 inner boundaries, one horizontal and one vertical line each
    positions = sorted({float(np.ravel(line.get_ydata())[0]) for line in lines if np.ptp(line.get_xdata()) > 0}
                       | {float(np.ravel(line.get_xdata())[0]) for line in lines if np.ptp(line.get_ydata()) > 0})
    assert positions == [8 * k - 0.5 for k in range(1, 6)]
    names = group_label_texts(grouped)
    assert sorted(names) == sorted([name for name, _, _ in LEAVES] * 2)  # top and right
    # the matrix tick labels are still every rank
    assert [t.get_text() for t in grouped.axes[0].get_yticklabels()] == labels(48)
    a, b = render(plain), render(grouped)
    assert a.shape != b.shape or not np.array_equal(a, b)
    # a boundary pixel between two cells is the line colour
    ax = grouped.axes[0]
    x, y = ax.transData.transform((7.5, 20.0))
    row, col = int(round(b.shape[0] - y)), int(round(x))
    near = b[row, col - 2:col + 3]  # the antialiased line spans a pixel or two
    assert np.abs(near - to_rgb(plots.GROUP_LINE_COLOUR)).max(axis=1).min() < 0.2


def test_status_figure_groups_and_png_differs(tmp_path) -> None:
    s = np.ones((48, 48), dtype=np.int8)
    np.fill_diagonal(s, 0)
    names = ["not_run", "ok", "failed", "timeout"]
    plain = plots.status_figure(s, names, labels(48), title="status")
    grouped = plots.status_figure(s, names, labels(48), title="status", groups=LEAVES)
    assert len(group_lines(grouped)) == 10 and len(group_label_texts(grouped)) == 12
    png_a, _ = plots.save_figure(plain, tmp_path, "plain")
    png_b, _ = plots.save_figure(grouped, tmp_path, "grouped")
    assert png_a.read_bytes() != png_b.read_bytes()


def test_many_narrow_groups_are_thinned_and_checked() -> None:
    n = 240
    groups = [(f"leaf{k:04d}", 2 * k, 2 * k + 2) for k in range(n // 2)]
    fig = plots.heatmap_figure(np.ones((n, n)), labels(n), title="t", cbar_label="x", groups=groups)
    render(fig)
    assert len(group_lines(fig)) == 2 * (len(groups) - 1)
    shown = group_label_texts(fig)
    assert 0 < len(shown) < 2 * len(groups)
    with pytest.raises(ValueError):
        plots.heatmap_figure(np.ones((4, 4)), labels(4), title="t", cbar_label="x", groups=[("a", 0, 5)])
