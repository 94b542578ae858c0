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

from fabscope_analyze import plots
from fabscope_analyze.layout import build_layout
from fabscope_analyze.reader import Host, read_results
from fabscope_analyze.report import axis_label, leaf_groups
from pages import Links, parse
from synth import HOSTILE, HostSpec, PairsSpec, SynthTopology, write_hostile_run, write_synthetic_run


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
    assert first_outlier.endswith("<td>node042")  # one endpoint spelling: the host


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
    [("gpu-node-0001.rack3.example.com", "gpu-node-0001"), ("10.1.2.3", "10.1.2.3"), ("vm", "vm")],
)
def test_axis_labels_cut_domain_names(hostname: str, label: str) -> None:
    def host(rank: int, name: str) -> Host:
        return Host(rank=rank, hostname=name, kernel="", cpu_model="", mpi_library="", rdma_core_version="",
                    rdma_devices=())

    hosts = [host(0, "other"), host(1, hostname)]
    assert axis_label(hosts, 1) == label
    # Several ranks on one host: `host/rank N`, as accept and compare spell an endpoint.
    assert axis_label([host(0, hostname), host(1, hostname)], 1) == f"{label}/rank 1"


def hop_class_rows(text: str) -> dict[str, list[str]]:
    """The rows of the summary-by-hop-class table: class -> the other cells."""
    body = text.split('class="hop-classes"')[1].split("<tbody>")[1].split("</tbody>")[0]
    rows = {}
    for tr in body.strip().split("</tr>"):
        cells = [c.split("</td>")[0] for c in tr.split("<td>")[1:]]
        if cells:
            rows[cells[0]] = cells[1:]
    return rows


def test_topology_report_has_hop_class_table_and_leaf_groups(cli: Callable, tmp_path: Path) -> None:
    # 48 hosts: 6 leaves of 8 hosts, pods of 4 leaves (leaves 1-4 and 5-6); synth adds
    # hop_latency_ns per tier climbed, so same_leaf < same_pod < cross_spine in latency
    topo = SynthTopology(hosts_per_leaf=8, leaves_per_pod=4, spines_per_pod=4)
    path = write_synthetic_run(tmp_path / "topo.h5", 48, 1, topology=topo, sweeps=(), pairs=PairsSpec(lat_iters=5))
    out = tmp_path / "out"
    proc = cli(["report", path, "-o", out])
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    check_report(out, expected_figures=4)
    text = (out / "index.html").read_text(encoding="utf-8")
    assert "Summary by hop class" in text
    rows = hop_class_rows(text)
    assert list(rows) == ["same_leaf", "same_pod", "cross_spine"]
    assert [int(r[0].replace(",", "")) for r in rows.values()] == [6 * 28, 6 * 64 + 64, 32 * 16]
    lat_med = {k: float(r[1]) for k, r in rows.items()}
    lat_p99 = {k: float(r[2]) for k, r in rows.items()}
    bw_med = {k: float(r[3]) for k, r in rows.items()}
    bw_min = {k: float(r[4]) for k, r in rows.items()}
    assert 1.0 < lat_med["same_leaf"] < lat_med["same_pod"] < lat_med["cross_spine"] < 5.0  # us
    for k in rows:
        assert lat_p99[k] >= lat_med[k] and 0 < bw_min[k] <= bw_med[k] < 200
    # the full heatmaps carry the leaf groups: a grouped PNG is larger than a plain one would be
    groups = leaf_groups(build_layout(read_results(path)))
    assert groups == [(f"leaf{k + 1:04d}", 8 * k, 8 * k + 8) for k in range(6)]
    img = matplotlib.image.imread(out / "figures" / "00-00_pairs-latency_p50.png")
    plain = plots._heatmap_size([f"{i} node{i:03d}" for i in range(48)], False)
    assert img.shape[1] > plain[0] * plots.PNG_DPI + 10  # room for the leaf names on the right


def test_no_hop_class_table_for_a_flat_fabric(cli: Callable, tmp_path: Path) -> None:
    path = write_synthetic_run(tmp_path / "flat.h5", 6, sweeps=(), pairs=PairsSpec(lat_iters=5))
    out = tmp_path / "out"
    assert cli(["report", path, "-o", out]).returncode == 0
    assert "hop-classes" not in (out / "index.html").read_text(encoding="utf-8")
    # two ranks on one host: same_host and unknown, so the table appears
    with h5py.File(path, "r+") as f:
        f["hosts/hostname"][1] = f["hosts/hostname"][0]
    assert cli(["report", path, "-o", out]).returncode == 0
    rows = hop_class_rows((out / "index.html").read_text(encoding="utf-8"))
    assert list(rows) == ["same_host", "unknown"] and rows["same_host"][0] == "1" and rows["unknown"][0] == "14"
