"""`fabscope-analyze compare`: regressions found, noise not flagged, diff heatmaps; on real files."""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import run_cli
from fabscope_analyze.compare import compare
from fabscope_analyze.reader import read_results
from pages import parse
from synth import CollSpec, FabricModel, Faults, PairsSpec, write_synthetic_run

MODEL = FabricModel()
COLL = CollSpec(sizes=(8, 1024, 65536, 1 << 20))
N = 12


def run(path: Path, seed: int, model: FabricModel = MODEL, **kw: object) -> Path:
    """Same fabric (fabric_seed) every time: files differ by measurement noise and the model only."""
    return write_synthetic_run(path, N, seed, model=model, coll=COLL, fabric_seed=99, **kw)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run(tmp_path_factory.mktemp("cmp") / "base.h5", 1)


def test_injected_10_percent_regression(base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = run(tmp_path / "new.h5", 2, replace(MODEL, peak_gbps=MODEL.peak_gbps * 0.9))
    code, out, err = run_cli(["compare", base, new, "--json", tmp_path / "c.json", "-o", tmp_path / "html",
                              "--labels", "fw-22", "fw-23"], capsys)
    assert code == 1 and err == "", err
    assert out.startswith("fabscope compare: REGRESSION (threshold 5%)")
    c = json.loads((tmp_path / "c.json").read_text())
    assert c["regression"] and c["labels"] == ["fw-22", "fw-23"]
    regs = [r for r in c["rows"] if r["regression"]]
    kinds = {(r["run"], r["metric"]) for r in regs}
    assert ("bw", "bandwidth p50") in kinds and ("pairs", "pair bandwidth, median over pairs") in kinds
    fabric = next(r for r in regs if r["metric"] == "pair bandwidth, median over pairs")
    assert -0.12 < fabric["change"] < -0.08 and fabric["ci_high"] < -0.05
    for r in regs:  # every regression is about bandwidth or time, worse by more than 5%, and significant
        assert r["q_value"] < 0.05
        if r["ci_low"] is not None:  # per-pair rows beyond the 50 most significant carry no interval
            assert r["ci_high"] < 0 if r["higher_is_better"] else r["ci_low"] > 0
        assert (r["change"] < -0.05) if r["higher_is_better"] else (r["change"] > 0.05)
    assert not any(r["regression"] for r in c["rows"] if r["metric"].startswith(("latency", "pair latency")))
    assert c["rows"][0]["regression"]  # sorted by significance: regressions first
    page = parse(tmp_path / "html" / "index.html")
    assert page.alerts == 1 and len(page.images) == 2  # bandwidth and latency ratio heatmaps
    for src in page.images:
        assert (tmp_path / "html" / src).is_file()


@pytest.mark.parametrize("seed", [2, 3])
def test_pure_noise_is_not_a_regression(base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        seed: int) -> None:
    new = run(tmp_path / "new.h5", seed)
    code, out, _ = run_cli(["compare", base, new, "--json", tmp_path / "c.json"], capsys)
    c = json.loads((tmp_path / "c.json").read_text())
    assert code == 0 and not c["regression"], out
    assert out.startswith("fabscope compare: no significant regression")
    assert len(c["rows"]) > 100  # sweeps, collectives, fabric and per-pair rows were all compared


def test_slow_host_in_new_run(base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = run(tmp_path / "new.h5", 4, slow_host=7)
    code, _, _ = run_cli(["compare", base, new, "--json", tmp_path / "c.json"], capsys)
    c = json.loads((tmp_path / "c.json").read_text())
    regs = [r for r in c["rows"] if r["regression"] and r["run"] == "pairs" and r["metric"] == "pair latency p50"]
    assert code == 1 and len(regs) == N - 1  # every pair of the slow host, and no other
    assert all("node007" in r["key"] for r in regs)


def test_metrics_limit_what_is_judged(base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Latency 50% higher everywhere (a busy machine), bandwidth as before: a latency regression by
    # default; with --metrics bandwidth only bandwidth rows are compared and nothing regressed.
    new = run(tmp_path / "new.h5", 5, replace(MODEL, base_latency_ns=MODEL.base_latency_ns * 1.5))
    code, _, _ = run_cli(["compare", base, new, "--json", tmp_path / "all.json"], capsys)
    every = json.loads((tmp_path / "all.json").read_text())
    assert code == 1 and any(r["regression"] and "latency" in r["metric"] for r in every["rows"])
    code, out, _ = run_cli(["compare", base, new, "--json", tmp_path / "bw.json", "--metrics", "bandwidth"], capsys)
    c = json.loads((tmp_path / "bw.json").read_text())
    assert code == 0 and not c["regression"] and c["metrics"] == ["bandwidth"], out
    assert c["rows"] and {r["unit"] for r in c["rows"]} == {"Gb/s", "% of windows"}
    left = len(every["rows"]) - len(c["rows"])
    assert f"only bandwidth metrics compared (--metrics): {left} other rows left out" in c["notes"]
    code, _, _ = run_cli(["compare", base, new, "--json", tmp_path / "lt.json", "--metrics", "time, latency"], capsys)
    c = json.loads((tmp_path / "lt.json").read_text())
    assert code == 1 and c["metrics"] == ["latency", "time"] and "Gb/s" not in {r["unit"] for r in c["rows"]}
    code, _, err = run_cli(["compare", base, new, "--metrics", "bw"], capsys)
    assert code == 2 and "--metrics: 'bw': name one or more of bandwidth, latency, time" in err


def test_a_newly_lossy_host_regresses_in_stalled_windows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # 6% of host 5's windows stall (retransmission time-outs): its medians stay put, so only the
    # stalled-window rows can show it, for the fabric and for node005, not for its peers.
    spec = PairsSpec(bw_windows=16)
    base = run(tmp_path / "base.h5", 1, pairs=spec)
    new = run(tmp_path / "new.h5", 6, pairs=spec, faults=Faults(lossy_hosts=(5,), lossy_stall_rate=0.06))
    code, out, _ = run_cli(["compare", base, new, "--json", tmp_path / "c.json", "--metrics", "bandwidth",
                            "--junit", tmp_path / "lossy.xml"], capsys)
    c = json.loads((tmp_path / "c.json").read_text())
    regs = {r["key"] for r in c["rows"] if r["regression"]}
    assert code == 1 and regs == {f"fabric, {N} vs {N} ranks", "node005"}, out
    host = next(r for r in c["rows"] if r["key"] == "node005")
    assert host["metric"] == "stalled bandwidth windows" and host["base"] == 0 and host["new"] > 2
    assert host["n_new"] == (N - 1) * 2 * spec.bw_windows  # every window of its pairs, both directions
    peers = [r for r in c["rows"] if r["metric"] == "stalled bandwidth windows" and r["key"] not in regs]
    assert peers and not any(r["significant"] for r in peers)  # they stalled only with node005
    code, _, _ = run_cli(["compare", base, run(tmp_path / "again.h5", 7, pairs=spec), "--metrics", "bandwidth",
                          "--junit", tmp_path / "again.xml"], capsys)
    assert code == 0
    # the JUnit tests are the same whether a host stalled or not (per-host rows fold into one case)
    names = [[(x.get("classname"), x.get("name")) for x in ET.parse(tmp_path / f).getroot().iter("testcase")]
             for f in ("lossy.xml", "again.xml")]
    assert names[0] == names[1] and ("fabscope.compare.pairs", "stalled bandwidth windows: each host") in names[0]


def test_a_file_against_itself(base: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["compare", base, base, "--rows", "3"], capsys)
    assert code == 0 and "0 significant, 0 regressions" in out
    c = compare(read_results(base), read_results(base))
    assert c.rows and all(r.change == 0 and not r.significant for r in c.rows)
    # the same samples: no uncertainty to invent (an unpaired bootstrap gave [-60.7%, +154.6%])
    with_ci = [r for r in c.rows if math.isfinite(r.ci_low)]
    assert with_ci and all(r.ci_low == 0 and r.ci_high == 0 for r in with_ci)
    assert "[+0.0%, +0.0%]" in out and "settings: the same in both files" in out


def test_units_column_and_rows_that_cannot_be_compared(base: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    new = run(tmp_path / "new.h5", 2)
    with h5py.File(new, "r+") as f:  # size 8 B of the latency sweep lost its samples in NEW
        g = next(f["runs"][k] for k in f["runs"] if f["runs"][k].attrs["benchmark"] == "lat")
        s = g["samples/latency_ns"]
        s[3, :] = np.nan
    code, out, _ = run_cli(["compare", base, new, "--json", tmp_path / "c.json", "--rows", "1000"], capsys)
    c = json.loads((tmp_path / "c.json").read_text())
    header = next(line for line in out.splitlines() if line.startswith("run "))
    assert header.split()[:4] == ["run", "metric", "what", "unit"]
    units = {(r["metric"], r["unit"]) for r in c["rows"]}
    assert ("latency p50", "us") in units and ("bandwidth p50", "Gb/s") in units and ("time p50", "us") in units
    assert not any(r["unit"] == "ns" for r in c["rows"])  # latency and time in us, as accept and fabscope print
    lat8 = next(r for r in c["rows"] if r["run"] == "lat" and r["key"] == "8 B")
    assert 1.0 < lat8["base"] < 3.0  # us
    assert lat8["note"].startswith("not") and not lat8["regression"]
    assert "note: run lat, latency p50, 8 B: not" in out
    assert f"{lat8['key']}" in out and "not judged" in out


def test_junit_names_are_stable(base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    names = []
    for seed, model in ((2, MODEL), (3, replace(MODEL, peak_gbps=MODEL.peak_gbps * 0.85))):
        new = run(tmp_path / f"new{seed}.h5", seed, model)
        code, _, err = run_cli(["compare", base, new, "--junit", tmp_path / f"c{seed}.xml"], capsys)
        assert err == "" and code == (0 if seed == 2 else 1)
        root = ET.parse(tmp_path / f"c{seed}.xml").getroot()
        cases = list(root.iter("testcase"))
        assert int(root.get("tests")) == len(cases) and int(root.get("failures")) == sum(
            c.find("failure") is not None for c in cases)
        names.append([(c.get("classname"), c.get("name")) for c in cases])
        if seed == 3:
            failed = {c.get("name"): c.find("failure").get("message") for c in cases if c.find("failure") is not None}
            assert "pair bandwidth, median over pairs: fabric" in failed and "pair bandwidth: each pair" in failed
            assert "Gb/s" in failed["pair bandwidth, median over pairs: fabric"]
    assert names[0] == names[1] and len(set(names[0])) == len(names[0])
    assert ("fabscope.compare.bw", "bandwidth p50: 1M B") in names[0] or any(
        c == "fabscope.compare.bw" for c, _ in names[0])


def test_settings_that_differ_are_shown(base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = run(tmp_path / "a.h5", 2), run(tmp_path / "b.h5", 3)
    text = h5py.string_dtype()
    for path, mtu, ar in ((a, "1500", "off"), (b, "9000", "on")):
        with h5py.File(path, "r+") as f:
            f.create_dataset("config", data=[f"adaptive_routing={ar}", "firmware=28.39"], dtype=text)
            for k in f["runs"]:
                f["runs"][k].create_dataset("parameters", data=[f"mtu={mtu}", "gid_index=-1"], dtype=text)
    code, out, _ = run_cli(["compare", a, b, "--labels", "mtu1500", "mtu9000", "--json", tmp_path / "c.json"], capsys)
    assert "settings that differ (mtu1500 / mtu9000):" in out
    assert re.search(r"config adaptive_routing\s+off  /  on", out) and re.search(r"bw: mtu\s+1500  /  9000", out)
    assert "firmware" not in out and "gid_index" not in out  # the same in both: not listed
    c = json.loads((tmp_path / "c.json").read_text())
    assert {"setting": "config adaptive_routing", "base": "off", "new": "on"} in c["settings_differ"]


def test_hosts_and_runs_that_differ(base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = write_synthetic_run(tmp_path / "o.h5", N + 4, 5, sweeps=(), fabric_seed=99)
    code, out, _ = run_cli(["compare", base, other], capsys)
    assert code in (0, 1)
    assert "run lat (lat) only in the base file" in out and "run coll (coll) only in the base file" in out
    assert f"{N} hosts in both files ({N} in base, {N + 4} in new)" in out


def test_large_fabric_diff_heatmaps_aggregate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pairs = PairsSpec(lat_iters=30, bw_windows=3)  # enough latency samples to single out a pair
    a = write_synthetic_run(tmp_path / "a.h5", 300, 1, sweeps=(), pairs=pairs, fabric_seed=4)
    b = write_synthetic_run(tmp_path / "b.h5", 300, 2, sweeps=(), pairs=pairs, fabric_seed=4, slow_host=120)
    code, _, _ = run_cli(["compare", a, b, "-o", tmp_path / "html"], capsys)
    assert code == 1
    figs = sorted(p.name for p in (tmp_path / "html" / "figures").glob("*.png"))
    assert figs == ["00-bw-ratio.png", "00-lat-ratio.png"]
    text = (tmp_path / "html" / "index.html").read_text()
    assert "per block pair" in text


def test_real_runs(real_results: Path, real_results_2: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["compare", real_results, real_results_2, "--json", tmp_path / "c.json", "-o",
                              tmp_path / "html"], capsys)
    assert code in (0, 1) and err == "", err  # two runs on a busy VM may well differ
    c = json.loads((tmp_path / "c.json").read_text())
    runs = {r["run"] for r in c["rows"]}
    assert runs == {"lat", "bw", "bibw", "pairs", "coll"}
    a = read_results(real_results)
    lat_rows = [r for r in c["rows"] if r["run"] == "lat"]
    assert len(lat_rows) == a.sweeps[0].size_bytes.size  # every size matched
    assert any(r["metric"] == "pair bandwidth, median over pairs" for r in c["rows"])
    assert (tmp_path / "html" / "index.html").is_file()
    code, out, _ = run_cli(["compare", real_results, real_results], capsys)
    assert code == 0 and ", 0 regressions," in out


def test_repeats_are_pooled_per_pair(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # --repeat 2: pair_samples hold a row per repeat; the second of node002 <-> node009 was slow.
    # Compared with itself, nothing may change; the pair is one row per direction, its repeats pooled.
    path = run(tmp_path / "r.h5", 1)
    with h5py.File(path, "r+") as f:
        g = next(f["runs"][k] for k in f["runs"] if f["runs"][k].attrs["benchmark"] == "pairs")
        ps = g["pair_samples"]
        k = next(i for i, (a, b) in enumerate(ps["pair"][()].tolist()) if {a, b} == {2, 9})
        for name in [x for x in ps if isinstance(ps[x], h5py.Dataset)]:
            ds = ps[name]
            row = ds[k] * (0.5 if name.startswith("bw_") else 1)
            if name == "pair":
                row = ds[k][::-1]  # the other end initiated the second repeat
            ds.resize(ds.shape[0] + 1, axis=0)
            ds[-1] = row
    code, out, _ = run_cli(["compare", path, path, "--json", tmp_path / "c.json"], capsys)
    c = json.loads((tmp_path / "c.json").read_text())
    assert code == 0 and not c["regression"], out
    rows = [r for r in c["rows"] if r["metric"] == "pair bandwidth" and "node002" in r["key"] and "node009" in r["key"]]
    assert sorted(r["key"] for r in rows) == ["node002 -> node009", "node009 -> node002"]
    assert all(r["change"] == 0 and r["n_base"] == 2 * PairsSpec().bw_windows for r in rows)
    assert any("a pair's rows pool the samples of its repeats" in n for n in c["notes"])
    # against a file that measured every pair once: the first repeats are compared (k = the
    # smaller number of repeats), both healthy
    other = run(tmp_path / "o.h5", 1)
    code, out, _ = run_cli(["compare", other, path, "--json", tmp_path / "c2.json"], capsys)
    c2 = json.loads((tmp_path / "c2.json").read_text())
    assert not any("node002" in r["key"] and "node009" in r["key"] and r["regression"] for r in c2["rows"]), out


def test_one_slow_host_of_a_fabric_too_large_for_per_pair_tests(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Above 100,000 pair rows compare leaves out the per-pair tests, and one slow host moves no
    fabric median: the per-host rows must name it, and only it (the same fabric measured again
    without it: no host row is a regression)."""
    from fabscope_analyze.compare import HOST_METRIC_SUFFIX

    pairs = PairsSpec(lat_iters=8, bw_windows=2)
    hosts = 460  # 105,570 pairs: past MAX_PAIR_SAMPLE_ROWS
    a = write_synthetic_run(tmp_path / "a.h5", hosts, 1, sweeps=(), pairs=pairs, fabric_seed=4)
    b = write_synthetic_run(tmp_path / "b.h5", hosts, 2, sweeps=(), pairs=pairs, fabric_seed=4)
    c = write_synthetic_run(tmp_path / "c.h5", hosts, 3, sweeps=(), pairs=pairs, fabric_seed=4, slow_host=321)
    code, out, _ = run_cli(["compare", a, c, "--json", tmp_path / "c.json", "--junit", tmp_path / "c.xml"], capsys)
    rows = json.loads((tmp_path / "c.json").read_text())["rows"]
    assert "per-pair tests left out" in out
    host_rows = [r for r in rows if r["metric"].endswith(HOST_METRIC_SUFFIX)]
    regs = [r for r in host_rows if r["regression"]]
    assert code == 1 and regs and {r["key"] for r in regs} == {"node321"}, [(r["key"], r["change"]) for r in host_rows]
    bw = [r for r in regs if r["metric"].startswith("pair bandwidth")]
    assert bw and bw[0]["change"] < -0.05 and bw[0]["new"] < bw[0]["base"]
    assert not any(r["regression"] and r["metric"].endswith("median over pairs") for r in rows)  # the fabric did not move
    code, out, _ = run_cli(["compare", a, b, "--json", tmp_path / "ab.json", "--junit", tmp_path / "ab.xml"], capsys)
    rows = json.loads((tmp_path / "ab.json").read_text())["rows"]
    assert code == 0 and not [r for r in rows if r["regression"]], out
    # JUnit: the per-host cases exist whether or not a host moved (a nightly job's test names stay)
    cases = {x: {c.get("name"): c for c in ET.parse(tmp_path / f"{x}.xml").getroot().iter("testcase")}
             for x in ("c", "ab")}
    assert set(cases["c"]) == set(cases["ab"])
    host_case = f"pair bandwidth {HOST_METRIC_SUFFIX}: each host"
    assert cases["c"][host_case].find("failure") is not None and "node321" in cases["c"][host_case].find("failure").text
    assert cases["ab"][host_case].find("failure") is None
