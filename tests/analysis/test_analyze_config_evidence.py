"""Configuration evidence (/hosts/ports, accept/config_evidence.py): synthetic fabrics whose hosts
are misconfigured the way real ones are (a port trained down, a NIC on x8 of its x16 PCIe lanes,
odd firmware or MTU), each of which accept must name with that reason; old files without
/hosts/ports still read and judge."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import REPO_ROOT, run_cli
from synth import DEVICE, FabricModel, HostConfigSpec, HostSpec, PairsSpec, SynthTopology, write_synthetic_run

NDR = REPO_ROOT / "configs" / "criteria" / "ndr400.yaml"
TOPO = SynthTopology(hosts_per_leaf=8, leaves_per_pod=4, spines_per_pod=4)  # 32 hosts: 4 leaves
PAIRS = PairsSpec(bw_size_bytes=8 << 20, lat_iters=50, bw_windows=8)
N = 32


def model(slow: tuple[int, ...] = (), bw: float = 1.0) -> FabricModel:
    """Large messages near 395 Gb/s; `slow` ranks move bandwidth x bw with normal latency."""
    return FabricModel(peak_gbps=395.0, base_latency_ns=1500.0, noise=0.01, per_host_spread=0.005,
                       slow_hosts=slow, slow_latency_factor=1.0, slow_bw_factor=bw)


def accept(path: Path, tmp: Path) -> tuple[int, dict]:
    from fabscope_analyze.cli import main

    out = tmp / (path.stem + ".json")
    code = main(["accept", str(path), "--criteria", str(NDR), "--json", str(out), "-q"])
    return code, json.loads(out.read_text())


def suspect_of(verdict: dict, host: str) -> dict:
    found = [s for s in verdict["suspects"] if s["details"].get("host") == host]
    assert len(found) == 1, verdict["suspects"]
    return found[0]


def test_trained_down_port_reports_both_rates(tmp_path: Path) -> None:
    # the case: /hosts says 200 Gb/s (4X HDR), the topology file (and ndr400.yaml) say 400
    r = 11
    hosts = HostSpec(overrides={r: {"rdma_devices": DEVICE.format(rate=200).replace("NDR", "HDR")}})
    path = write_synthetic_run(tmp_path / "down.h5", N, 3, model=model((r,), 0.5), topology=TOPO, sweeps=(),
                               pairs=PAIRS, hosts=hosts,
                               host_config=HostConfigSpec(ports={r: {"rate_gbps": 200.0, "speed": "HDR"}}))
    code, v = accept(path, tmp_path)
    assert code == 1 and v["verdict"] == "fail"
    s = suspect_of(v, "node011")
    assert s["kind"] == "host_link"
    assert s["details"]["port_rate_gbps"] == 200  # negotiated, from /hosts (was the topology's 400)
    assert s["details"]["nominal_rate_gbps"] == 400
    assert "port at 200 of 400 Gb/s (the criteria's link_rate_gbps)" in s["evidence"]
    assert s["details"]["config"] == ["mlx5_0 port 1: port at 200 of 400 Gb/s (the criteria's link_rate_gbps)"]
    assert len(v["suspects"]) == 1, v["suspects"]


def test_trained_down_port_from_rdma_devices_alone(tmp_path: Path) -> None:
    # a file written before /hosts/ports: the rate in /hosts/rdma_devices is the evidence
    r = 5
    hosts = HostSpec(overrides={r: {"rdma_devices": DEVICE.format(rate=200)}})
    path = write_synthetic_run(tmp_path / "old.h5", N, 3, model=model((r,), 0.5), topology=TOPO, sweeps=(),
                               pairs=PAIRS, hosts=hosts)
    with h5py.File(path) as f:
        assert "ports" not in f["hosts"]
    code, v = accept(path, tmp_path)
    assert code == 1
    s = suspect_of(v, "node005")
    assert s["details"]["port_rate_gbps"] == 200 and s["details"]["nominal_rate_gbps"] == 400
    assert "port at 200 of 400 Gb/s" in s["evidence"]


def test_pcie_x8_explains_a_host_at_055(tmp_path: Path) -> None:
    r = 20
    path = write_synthetic_run(tmp_path / "pcie.h5", N, 3, model=model((r,), 0.55), topology=TOPO, sweeps=(),
                               pairs=PAIRS, host_config=HostConfigSpec(ports={r: {"pcie_width": 8}}))
    code, v = accept(path, tmp_path)
    assert code == 1
    s = suspect_of(v, "node020")
    assert s["kind"] == "host_link"
    assert "configuration: mlx5_0 port 1: PCIe x8 of x16" in s["evidence"]
    assert s["details"]["config"] == ["mlx5_0 port 1: PCIe x8 of x16"]
    assert 0.5 < s["details"]["bw_vs_limit_median"] < 0.65
    assert s["details"]["port_rate_gbps"] == 400  # the port itself is fine


def test_firmware_and_mtu_outliers_are_warnings_on_a_passing_fabric(tmp_path: Path) -> None:
    cfg = HostConfigSpec(ports={3: {"fw_ver": "28.39.1002"}, 17: {"active_mtu_bytes": 1024},
                                25: {"pcie_speed_gts": 16.0}})
    path = write_synthetic_run(tmp_path / "cfg.h5", N, 3, model=model(), topology=TOPO, sweeps=(), pairs=PAIRS,
                               host_config=cfg)
    code, v = accept(path, tmp_path)
    assert code == 0 and v["verdict"] == "pass"  # the rules pass; the evidence is a warning
    fw = suspect_of(v, "node003")
    assert fw["kind"] == "host" and fw["details"]["severity"] == "warning" and fw["failing"] == 0
    assert fw["details"]["config"] == ["mlx5_0 port 1: firmware 28.39.1002 (31 of 32 hosts have 28.40.1000)"]
    assert 0.9 < fw["details"]["bw_vs_fabric"] < 1.1
    mtu = suspect_of(v, "node017")
    assert mtu["kind"] == "host_link" and mtu["name"] == "node017 port/cable to leaf0003"
    assert mtu["details"]["config"] == ["mlx5_0 port 1: active MTU 1024 bytes (31 of 32 hosts have 4096)"]
    gen = suspect_of(v, "node025")
    assert gen["details"]["config"] == ["mlx5_0 port 1: PCIe 16 of 32 GT/s"]
    assert len(v["suspects"]) == 3


def test_healthy_fabric_has_no_config_suspects(tmp_path: Path) -> None:
    path = write_synthetic_run(tmp_path / "ok.h5", N, 3, model=model(), topology=TOPO, sweeps=(), pairs=PAIRS,
                               host_config=HostConfigSpec())
    code, v = accept(path, tmp_path)
    assert code == 0 and v["suspects"] == []


def test_reader_exposes_host_config(tmp_path: Path) -> None:
    from fabscope_analyze.reader import read_results as read_run_file

    cfg = HostConfigSpec(ports={2: {"pcie_width": 8, "numa_node": 1}}, problems=("node002 mlx5_0 port 1: PCIe x8 of x16",))
    path = write_synthetic_run(tmp_path / "r.h5", 4, 1, sweeps=(), pairs=None, host_config=cfg)
    rf = read_run_file(path)
    h = rf.hosts[2]
    assert h.has_config and h.memlock_bytes == -1 and h.cpu_numa_nodes == (0,) and h.cap_ipc_lock is False
    (p,) = h.ports
    assert (p.device, p.port, p.pcie_width, p.pcie_max_width, p.numa_node) == ("mlx5_0", 1, 8, 16, 1)
    assert p.rate_gbps == 400 and p.fw_ver == "28.40.1000" and p.active_mtu_bytes == 4096
    assert rf.config_problems == ("node002 mlx5_0 port 1: PCIe x8 of x16",)
    old = read_run_file(write_synthetic_run(tmp_path / "old.h5", 4, 1, sweeps=(), pairs=None))
    assert not old.hosts[0].has_config and old.hosts[0].ports == () and old.config_problems == ()


def test_bad_ports_table_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_synthetic_run(tmp_path / "bad.h5", 4, 1, sweeps=(), pairs=None, host_config=HostConfigSpec())
    with h5py.File(path, "a") as f:
        del f["hosts/ports/rank"]
        f["hosts/ports"].create_dataset("rank", data=np.array([0, 1, 2, 9], dtype=np.int64))
    code, _, err = run_cli(["report", path, "-o", tmp_path / "rep"], capsys)
    assert code == 2
    assert err.strip().count("\n") == 0 and "/hosts/ports/rank" in err, err


@pytest.mark.parametrize("column", ["pcie_width", "fw_ver"])
def test_missing_port_column_is_one_line_exit_2(tmp_path: Path, column: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_synthetic_run(tmp_path / "m.h5", 4, 1, sweeps=(), pairs=None, host_config=HostConfigSpec())
    with h5py.File(path, "a") as f:
        del f[f"hosts/ports/{column}"]
    code, _, err = run_cli(["report", path, "-o", tmp_path / "rep"], capsys)
    assert code == 2 and f"/hosts/ports/{column}" in err, err


def test_expected_rate_from_topology_then_majority(tmp_path: Path) -> None:
    from fabscope_analyze.accept.config_evidence import host_evidence
    from fabscope_analyze.context import ReportContext
    from fabscope_analyze.reader import read_results

    cfg = HostConfigSpec(ports={1: {"rate_gbps": 200.0, "width": "2X"}})
    with_topo = read_results(write_synthetic_run(tmp_path / "t.h5", 8, 1, topology=TOPO, sweeps=(), pairs=None,
                                                 host_config=cfg))
    ev = host_evidence(ReportContext.of(with_topo))  # no criteria: the topology's link rate
    assert ev["node001"].reasons == ["mlx5_0 port 1: port at 200 of 400 Gb/s (the topology's link rate)",
                                     "mlx5_0 port 1: link width 2X (7 of 8 hosts have 4X)"]
    flat = read_results(write_synthetic_run(tmp_path / "f.h5", 8, 1, sweeps=(), pairs=None, host_config=cfg))
    ev = host_evidence(ReportContext.of(flat))  # no topology: the majority of the same port
    assert ev["node001"].reasons[0] == "mlx5_0 port 1: port at 200 of 400 Gb/s (7 of 8 hosts run 400 Gb/s)"
    assert all(not e.reasons for name, e in ev.items() if name != "node001")
    two = read_results(write_synthetic_run(tmp_path / "2.h5", 2, 1, sweeps=(), pairs=None, host_config=cfg))
    assert all(not e.reasons for e in host_evidence(ReportContext.of(two)).values())  # 2 hosts: no majority


def _add_pma(path: Path, rows: list[tuple[int, int, str, str, str, dict[str, int]]], ok: list[bool] | None = None,
             extended: bool = False) -> None:
    """/pma as fabscope --pma writes it: rows of (link, side, end, peer, host, {counter: delta});
    `extended`: with PortCountersExtended's columns and /pma/ok_ext (files before it have neither)."""
    names = ["SymbolErrorCounter", "LinkErrorRecoveryCounter", "LinkDownedCounter", "PortRcvErrors",
             "PortRcvRemotePhysicalErrors", "PortXmitDiscards", "LocalLinkIntegrityErrors",
             "ExcessiveBufferOverrunErrors", "PortXmitWait"]
    if extended:
        names += ["PortXmitData", "PortRcvData", "PortXmitPkts", "PortRcvPkts"]
    s = h5py.string_dtype("utf-8")
    with h5py.File(path, "a") as f:
        g = f.create_group("pma")
        g.create_dataset("names", data=np.array(names, dtype=object), dtype=s)
        g.create_dataset("link", data=np.array([r[0] for r in rows], dtype=np.int64))
        g.create_dataset("side", data=np.array([r[1] for r in rows], dtype=np.int64))
        for k, col in (("end", 2), ("peer", 3), ("host", 4)):
            g.create_dataset(k, data=np.array([r[col] for r in rows], dtype=object), dtype=s)
        g.create_dataset("ok", data=np.array(ok or [True] * len(rows), dtype=np.int64))
        if extended:
            g.create_dataset("ok_ext", data=np.array(ok or [True] * len(rows), dtype=np.int64))
        g.create_dataset("delta", data=np.array([[r[5].get(n, 0) for n in names] for r in rows], dtype=np.int64))


def _add_links(path: Path, rate: float = 400.0, max_rate: dict[int, tuple[float, float]] | None = None
               ) -> tuple[list[str], list[int], list[int]]:
    """/topology/links as fabscope writes it: every host cable (NIC i, a end) to its leaf, every
    leaf to every spine of its pod; `max_rate` {nic: (rate, max_rate_gbps)} for some host cables
    (the others: `rate`, and an unknown maximum, 0). Returns (a_kind, a_index, b_index)."""
    with h5py.File(path, "a") as f:
        level, pod = f["topology/switches/level"][()], f["topology/switches/pod"][()]
        nic_leaf = f["topology/nics/leaf"][()]
        cables = [("nic", i, int(leaf)) for i, leaf in enumerate(nic_leaf)]
        cables += [("switch", int(l), int(s)) for l in np.flatnonzero(level == 1) for s in np.flatnonzero(level == 2)
                   if pod[s] == pod[l]]
        speeds = [(max_rate or {}).get(c[1], (rate, 0.0)) if c[0] == "nic" else (rate, 0.0) for c in cables]
        g = f.create_group("topology/links")
        g.create_dataset("a_kind", data=np.array([c[0] for c in cables], dtype=object), dtype=h5py.string_dtype())
        g.create_dataset("b_kind", data=np.array(["switch"] * len(cables), dtype=object), dtype=h5py.string_dtype())
        g.create_dataset("a_index", data=np.array([c[1] for c in cables], dtype=np.int64))
        g.create_dataset("b_index", data=np.array([c[2] for c in cables], dtype=np.int64))
        g.create_dataset("rate_gbps", data=np.array([x[0] for x in speeds], dtype=np.float64))
        g.create_dataset("max_rate_gbps", data=np.array([x[1] for x in speeds], dtype=np.float64))
    return [c[0] for c in cables], [c[1] for c in cables], [c[2] for c in cables]


def test_a_cable_trained_below_its_portinfo_maximum_names_the_host(tmp_path: Path) -> None:
    """/topology/links/max_rate_gbps (PortInfo, live discovery): node005's cable runs at 200 of the
    400 Gb/s both its ends enable; its traffic is slow too; node009's cable is at its maximum."""
    path = write_synthetic_run(tmp_path / "t.h5", N, 3, model=model((5,), 0.5), topology=TOPO, sweeps=(), pairs=PAIRS)
    with h5py.File(path, "r") as f:
        nic_of = f["topology/ranks/nic"][()]
    _add_links(path, max_rate={int(nic_of[5]): (200.0, 400.0), int(nic_of[9]): (400.0, 400.0)})
    code, v = accept(path, tmp_path)
    assert code == 1
    s = suspect_of(v, "node005")
    assert "cable of rank 5: trained to 200 of 400 Gb/s (the topology's PortInfo" in s["evidence"], s["evidence"]
    assert s["details"]["nominal_rate_gbps"] == 400 and s["details"]["port_rate_gbps"] == 200
    assert not any("trained to" in x["evidence"] for x in v["suspects"] if x is not s)


def test_cable_error_counters_fail_and_name_the_cable(tmp_path: Path) -> None:
    path = write_synthetic_run(tmp_path / "pma.h5", N, 3, model=model(), topology=TOPO, sweeps=(), pairs=PAIRS)
    _add_pma(path, [(0, 0, "leaf0001[9]", "spine0001[1]", "", {"SymbolErrorCounter": 42, "PortXmitWait": 900}),
                    (0, 1, "spine0001[1]", "leaf0001[9]", "", {}),
                    (1, 0, "node004 mlx5_0[1]", "leaf0001[5]", "node004", {"PortXmitWait": 10**6}),
                    (2, 0, "node009 mlx5_0[1]", "leaf0002[2]", "node009", {}),
                    (3, 0, "leaf0002[9]", "spine0002[2]", "", {"LinkDownedCounter": 1})], ok=[True] * 4 + [False])
    code, v = accept(path, tmp_path)
    assert code == 1 and v["verdict"] == "fail"
    check = next(c for c in v["runs"][0]["checks"] if c["rule"] == "fabric.port_errors")
    assert check["status"] == "fail" and check["failing"] == 1 and check["judged"] == 4
    (s,) = v["suspects"]  # congestion (PortXmitWait) and an unread end are not errors
    assert s["kind"] == "leaf_spine_link" and s["name"] == "leaf0001[9] <-> spine0001[1]"
    assert "at leaf0001[9]: SymbolErrorCounter +42" in s["evidence"]
    assert any("1 of 5 cable ends did not answer" in n for n in v["runs"][0]["notes"])


def test_cable_errors_join_the_hosts_traffic_suspect(tmp_path: Path) -> None:
    r = 6
    path = write_synthetic_run(tmp_path / "j.h5", N, 3, model=model((r,), 0.5), topology=TOPO, sweeps=(), pairs=PAIRS)
    _add_pma(path, [(r, 1, "leaf0001[7]", "node006 mlx5_0[1]", "node006", {"SymbolErrorCounter": 5000})])
    code, v = accept(path, tmp_path)
    assert code == 1
    s = suspect_of(v, "node006")
    assert s["kind"] == "host_link" and s["failing"] > 0
    assert "error counters rose during the run: at leaf0001[7]: SymbolErrorCounter +5000" in s["evidence"]
    assert len(v["suspects"]) == 1


def test_clean_counters_pass_and_negative_delta_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_synthetic_run(tmp_path / "c.h5", N, 3, model=model(), topology=TOPO, sweeps=(), pairs=PAIRS)
    _add_pma(path, [(0, 0, "leaf0001[9]", "spine0001[1]", "", {"PortXmitWait": 5})])
    code, v = accept(path, tmp_path)
    assert code == 0
    assert next(c for c in v["runs"][0]["checks"] if c["rule"] == "fabric.port_errors")["status"] == "pass"
    with h5py.File(path, "a") as f:
        f["pma/delta"][0, 0] = -3
    code, _, err = run_cli(["accept", path, "--criteria", NDR], capsys)
    assert code == 2 and "/pma/delta" in err and err.strip().count("\n") == 0, err


def test_report_draws_the_fabric_counters_by_leaf(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Every cable of /topology/links at both ends, the extended traffic counters too; errors on one
    uplink and on one host cable (an end name with markup: escaped on the page)."""
    from test_analyze_report import check_report

    path = write_synthetic_run(tmp_path / "r.h5", N, 3, model=model(), topology=TOPO, sweeps=(), pairs=PAIRS)
    a_kind, a_idx, b_idx = _add_links(path)
    with h5py.File(path, "r") as f:
        sw = f["topology/switches/name"].asstr()[()]
        host_of_nic = f["topology/nics/host"][()]
        hosts = f["topology/hosts/name"].asstr()[()]
    rows = []
    bad_uplink = bad_host = None
    for link, (ak, a, b) in enumerate(zip(a_kind, a_idx, b_idx)):
        lo = f"{hosts[host_of_nic[a]]} mlx5_0[1]" if ak == "nic" else f"{sw[a]}[{link}]"
        hi = f"{sw[b]}[{link}]"
        host = hosts[host_of_nic[a]] if ak == "nic" else ""
        counters = {"PortXmitData": 250_000_000 * (1 + link % 3), "PortXmitPkts": 1000, "PortXmitWait": 10 * link}
        errs: dict[str, int] = {}
        if ak == "switch" and bad_uplink is None:
            bad_uplink, errs = link, {"SymbolErrorCounter": 4200}
        elif ak == "nic" and bad_host is None and link > 3:
            bad_host, errs = link, {"LinkDownedCounter": 2}
            lo = f"{hosts[host_of_nic[a]]} <b>mlx5_0</b>[1]"
        rows.append((link, 0, lo, hi, host, {**counters, **errs}))
        rows.append((link, 1, hi, lo, host, counters))
    assert bad_uplink is not None and bad_host is not None
    _add_pma(path, rows, extended=True)
    code, out, err = run_cli(["report", path, "-o", tmp_path / "rep"], capsys)
    assert code == 0 and err == "", err
    page = check_report(tmp_path / "rep", expected_figures=5)  # the pairs figures + fabric counters
    text = (tmp_path / "rep" / "index.html").read_text(encoding="utf-8")
    assert '<h2 id="fabric-counters">Fabric counters</h2>' in text
    assert f"{len(a_kind)} of {len(a_kind)} cables read at both ends" in text and "2 cables with rising error" in text
    rows_html = text.split('class="pma-errors"')[1].split("</table>")[0]
    assert rows_html.index("SymbolErrorCounter +4200") < rows_html.index("LinkDownedCounter +2")  # worst first
    assert "&lt;b&gt;mlx5_0&lt;/b&gt;" in rows_html and "<b>mlx5_0</b>" not in text
    assert any("fabric-counters" in img for img in page.images)
    svg = (tmp_path / "rep" / "figures" / "fabric-counters.svg").read_text(encoding="utf-8")
    assert "data sent" in svg and "leaf0001" in svg  # the traffic panel; leaves name the groups
    # A file before PortCountersExtended (no ok_ext, 9 counters): the figure without the data panel.
    old = write_synthetic_run(tmp_path / "o.h5", N, 3, model=model(), topology=TOPO, sweeps=(), pairs=PAIRS)
    _add_pma(old, [(r[0], r[1], r[2], r[3], r[4], {k: v for k, v in r[5].items() if not k.startswith("PortXmitD")
                                                   and k != "PortXmitPkts"}) for r in rows])
    code, _, err = run_cli(["report", old, "-o", tmp_path / "old"], capsys)
    assert code == 0 and err == "", err
    svg = (tmp_path / "old" / "figures" / "fabric-counters.svg").read_text(encoding="utf-8")
    assert "data sent" not in svg and "PortXmitWait" in svg
    # A large fabric (here: more cables than the limit): one bar per leaf, the sums of its cables.
    import fabscope_analyze.report.fabric_counters as fc

    monkeypatch.setattr(fc, "MAX_CABLE_BARS", 10)
    code, _, err = run_cli(["report", path, "-o", tmp_path / "big"], capsys)
    assert code == 0 and err == "", err
    svg = (tmp_path / "big" / "figures" / "fabric-counters.svg").read_text(encoding="utf-8")
    assert f"({len(a_kind)} cables, summed per leaf)" in svg and "leaf0004" in svg
