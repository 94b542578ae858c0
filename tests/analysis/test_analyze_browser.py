"""The report as a person sees it: headless Chromium renders index.html from disk.

Chromium is required (Debian package `chromium`); its absence fails these tests.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Callable

import matplotlib
import matplotlib.image
import numpy as np

from pages import Links
from synth import write_hostile_run

WIDTH = 1400
HEIGHT = 9000  # tall enough for the whole report of the analysis suite
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
]


def run_chromium(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=180, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def screenshot(chromium: str, index: Path, tmp_path: Path) -> np.ndarray:
    png = tmp_path / "screenshot.png"
    run_chromium(chromium, tmp_path / "profile", f"--window-size={WIDTH},{HEIGHT}", f"--screenshot={png}",
                 index.as_uri())
    return matplotlib.image.imread(png)[:, :, :3]


def dump_dom(chromium: str, index: Path, tmp_path: Path) -> str:
    return run_chromium(chromium, tmp_path / "profile", "--dump-dom", index.as_uri()).stdout


def colour_counts(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct colours of an image (0..1, [K, 3]) and how many pixels have each."""
    q = (rgb.reshape(-1, 3) * 255).round().astype(np.uint32)
    packed, counts = np.unique((q[:, 0] << 16) | (q[:, 1] << 8) | q[:, 2], return_counts=True)
    colours = np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], axis=1)
    return colours / 255.0, counts


def colourful(colours: np.ndarray) -> np.ndarray:
    """Colours with clear hue (not white, grey or black text)."""
    return (colours.max(axis=1) - colours.min(axis=1)) > 0.25


def near_viridis(colours: np.ndarray) -> np.ndarray:
    """Colours within a small distance of a viridis colour: heatmap cells."""
    lut = matplotlib.colormaps["viridis"](np.linspace(0, 1, 256))[:, :3]
    distance = np.abs(colours[:, None, :] - lut[None, :, :]).sum(axis=2).min(axis=1)
    return (distance < 0.06) & colourful(colours)


def test_screenshot_shows_the_figures(chromium: str, real_report: Path, tmp_path: Path) -> None:
    rgb = screenshot(chromium, real_report / "index.html", tmp_path)
    assert rgb.shape[:2] == (HEIGHT, WIDTH)
    rows = np.flatnonzero((rgb < 0.95).any(axis=(1, 2)))
    assert rows.size and rows[-1] > HEIGHT * 0.5, "the page rendered almost nothing"
    colours, counts = colour_counts(rgb)
    n_colourful = int(counts[colourful(colours)].sum())
    n_viridis = int(counts[near_viridis(colours)].sum())
    n_colours = len(colours)
    # Text, tables and links alone give a few thousand coloured pixels; the heatmaps and the
    # sweep bands give hundreds of thousands.
    assert n_colourful > 150_000, n_colourful
    assert n_viridis > 60_000, n_viridis  # latency and bandwidth heatmaps
    assert n_colours > 2_000, n_colours


def test_dom_has_every_figure(chromium: str, real_report: Path, tmp_path: Path) -> None:
    dom = dump_dom(chromium, real_report / "index.html", tmp_path)
    page = Links()
    page.feed(dom)
    pngs = sorted(p.name for p in (real_report / "figures").glob("*.png"))
    assert sorted(Path(src).name for src in page.images) == pngs and len(pngs) == 13
    assert "script" not in page.tags
    for heading in ("Summary", "Runs", "Provenance", "Hosts"):
        assert f">{heading}</h" in dom


def test_browser_sees_data_as_text(chromium: str, cli: Callable, tmp_path: Path) -> None:
    path = write_hostile_run(tmp_path / "hostile.h5")
    out = tmp_path / "out"
    assert cli(["report", path, "-o", out]).returncode == 0
    dom = dump_dom(chromium, out / "index.html", tmp_path)
    page = Links()
    page.feed(dom)
    assert "script" not in page.tags and "b" not in page.tags and "i" not in page.tags
    assert "<script" not in dom.lower()
    assert dom.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 7
    assert len(page.images) == 7


def test_load_section_renders(chromium: str, cli: Callable, tmp_path: Path) -> None:
    """A file with only runs under load (shift without a pairs run: the loaded bandwidth heatmap in
    viridis; congestion): every figure of the Fabric under load section is in the DOM and draws."""
    from synth import CongestionSpec, ShiftSpec, SynthTopology, write_synthetic_run

    topo = SynthTopology(hosts_per_leaf=4, leaves_per_pod=2, spines_per_pod=2)
    path = write_synthetic_run(tmp_path / "load.h5", 16, topology=topo, sweeps=(), pairs=None,
                               shift=ShiftSpec(slow_steps=((3, 0.6),)),
                               congestion=CongestionSpec(placement="leaf", cross_leaf_factor=(("alltoall", 3.0),)))
    out = tmp_path / "out"
    assert cli(["report", path, "-o", out]).returncode == 0
    dom = dump_dom(chromium, out / "index.html", tmp_path)
    page = Links()
    page.feed(dom)
    pngs = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert sorted(Path(src).name for src in page.images) == pngs and len(pngs) == 6
    assert '<h2 id="load">Fabric under load</h2>' in dom
    rgb = screenshot(chromium, out / "index.html", tmp_path)
    colours, counts = colour_counts(rgb)
    n_colourful = int(counts[colourful(colours)].sum())
    n_viridis = int(counts[near_viridis(colours)].sum())
    # measured: ~200,000 viridis pixels (the loaded-bandwidth heatmap) and ~260,000 coloured ones
    # (with the step, histogram, impact and distribution figures); text and tables give a few thousand
    assert n_viridis > 100_000, n_viridis
    assert n_colourful > 150_000, n_colourful
