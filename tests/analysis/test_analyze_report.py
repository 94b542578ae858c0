"""`fabscope-analyze report`: the page and its figures, on the real fabscope file and on synthetic ones."""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Callable

import h5py
import matplotlib.image
import numpy as np
import pytest

from fabscope_analyze.reader import Host, read_results
from fabscope_analyze.report import axis_label
from pages import Links, parse
from synth import HOSTILE, HostSpec, PairsSpec, write_hostile_run, write_synthetic_run


def check_png(path: Path) -> None:
    assert path.stat().st_size > 10_000, path
    img = matplotlib.image.imread(path)
    h, w = img.shape[:2]
    assert 400 <= w <= 2500 and 300 <= h <= 2500, (path, img.shape)
    rgb = img[:, :, :3].reshape(-1, 3)
    assert rgb.std() > 0.05, path
    assert len(np.unique((rgb * 255).astype(np.uint8), axis=0)) > 100, path  # not blank, not text only


def check_report(out_dir: Path, expected_figures: int) -> Links:
    index = out_dir / "index.html"
    assert index.is_file()
    page = parse(index)
    assert len(page.images) == expected_figures
    assert "script" not in page.tags
    for ref in page.images + [l for l in page.links if not l.startswith("#")]:
        assert "://" not in ref and not ref.startswith("/"), ref  # relative, nothing from the network
        assert (out_dir / ref).is_file(), ref
    for src in page.images:
        check_png(out_dir / src)
        svg = (out_dir / src).with_suffix(".svg")
        assert ET.parse(svg).getroot().tag == "{http://www.w3.org/2000/svg}svg"
        assert src.replace(".png", ".svg") in page.links
    return page


def test_report_of_real_run(real_report: Path, real_results: Path) -> None:
    # lat, bw, bibw sweeps; pairs: lat, bw, status heatmaps and the CDF; coll: one figure per collective
    page = check_report(real_report, expected_figures=3 + 4 + 6)
    text = (real_report / "index.html").read_text(encoding="utf-8")
    assert page.alerts == 0 and "Incomplete results" not in text
    rf = read_results(real_results)
    for h in rf.hosts:
        assert html.escape(h.hostname) in text and html.escape(h.kernel) in text
    for run in rf.runs:
        assert f">{html.escape(run.info.name)}</a>" in text
    assert html.escape(rf.command_line) in text and html.escape(rf.fabscope_version) in text


def test_default_output_folder(cli: Callable, tmp_path: Path) -> None:
    path = write_synthetic_run(tmp_path / "night.h5", 3, pairs=PairsSpec(rounds_done=1), complete=False)
    proc = cli(["report", path])
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    out = tmp_path / "night-report"
    assert proc.stdout.strip() == str(out / "index.html")
    page = check_report(out, expected_figures=7)
    assert page.alerts == 1
    text = (out / "index.html").read_text(encoding="utf-8")
    assert text.index("Incomplete results") < text.index("<h2>Summary</h2>")
    assert "1 of 3 rounds done" in text
    # running it again over the same folder works
    assert cli(["report", path]).returncode == 0


def test_pairs_only_large_fabric(cli: Callable, tmp_path: Path) -> None:
    path = write_synthetic_run(tmp_path / "big.h5", 150, sweeps=(), pairs=PairsSpec(lat_iters=5, bw_windows=2),
                               slow_host=42)
    proc = cli(["report", path, "-o", tmp_path / "out"])
    assert proc.returncode == 0, proc.stderr
    check_report(tmp_path / "out", expected_figures=4)
    text = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert "<details><summary>150 ranks" in text  # the long host table starts folded
    first_outlier = text.split('class="outliers"')[1].split("<tbody>")[1].split("</td>")[0]
    assert first_outlier.endswith("42 node042")


def test_unknown_benchmark_and_differing_hosts(cli: Callable, tmp_path: Path) -> None:
    hosts = HostSpec(overrides={1: {"kernel": "Linux 5.10.0-odd"}})
    path = write_synthetic_run(tmp_path / "r.h5", 4, hosts=hosts, pairs=None)
    with h5py.File(path, "r+") as f:
        g = f["runs"].create_group("03_coll")
        for key, value in f["runs/00_lat"].attrs.items():
            g.attrs[key] = value
        g.attrs["benchmark"] = "allreduce"
    proc = cli(["report", path, "-o", tmp_path / "out"])
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert "benchmark kind not known to this version" in text
    assert '<span class="odd">Linux 5.10.0-odd</span>' in text and "2 different kernel values" in text


def test_text_from_the_file_is_escaped(cli: Callable, tmp_path: Path) -> None:
    path = write_hostile_run(tmp_path / "hostile.h5")
    out = tmp_path / "out"
    proc = cli(["report", path, "-o", out])
    assert proc.returncode == 0, proc.stderr
    text = (out / "index.html").read_text(encoding="utf-8")
    assert "<script" not in text.lower() and "<b>bold" not in text and "<i>x" not in text
    escaped = html.escape(HOSTILE)
    assert text.count(escaped) >= 7  # host, cpu, devices, label, command line, suite, run name
    assert "a&amp;b" in text and "mlx5_1 &amp; &lt;i&gt;x&lt;/i&gt;" in text and "q&quot;uote&#x27;s" in text
    check_report(out, expected_figures=7)


@pytest.mark.parametrize(
    ("hostname", "label"),
    [("gpu-node-0001.rack3.example.com", "7 gpu-node-0001"), ("10.1.2.3", "7 10.1.2.3"), ("vm", "7 vm")],
)
def test_axis_labels_cut_domain_names(hostname: str, label: str) -> None:
    host = Host(rank=7, hostname=hostname, kernel="", cpu_model="", mpi_library="", rdma_core_version="",
                rdma_devices=())
    assert axis_label(host) == label
