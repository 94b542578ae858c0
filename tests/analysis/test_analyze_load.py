"""Runs under load (results/SCHEMA.md): `shift` and `congestion` through the reader, the
report's "Fabric under load" section, accept (congestion and shift criteria), compare and trend.

Synthetic files (synth.py ShiftSpec / CongestionSpec) carry known effects: a shift step slowed to
about 60% effective throughput, a few colliding flows, victims whose ring partner sits on another
leaf with an impact factor of about 3.3 under alltoall (1.1 elsewhere). Accept must flag exactly
those; partial and broken files must give one clear line.
"""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import pytest

from conftest import N_RANKS, REPO_ROOT, TESTS_DIR, run_cli, run_fabscope
from pages import parse
from fabscope_analyze import load
from fabscope_analyze.criteria import CriteriaError, load_criteria
from fabscope_analyze.layout import build_layout
from fabscope_analyze.reader import CongestionRun, ShiftRun, read_results
from fabscope_analyze.trend import metrics_of
from synth import (HOSTILE, CongestionSpec, FabricModel, HostSpec, PairsSpec, ShiftSpec, SynthTopology,
                   write_synthetic_run)
from test_analyze_report import check_report

MODEL = FabricModel(peak_gbps=395.0, base_latency_ns=1500.0, noise=0.01, per_host_spread=0.005)
TOPO = SynthTopology(hosts_per_leaf=8, leaves_per_pod=4, spines_per_pod=4)  # 64 hosts: 8 leaves, 2 pods
N = 64
BIG = 8 << 20
PAIRS = PairsSpec(bw_size_bytes=BIG, lat_iters=20, bw_windows=5)
SLOW_STEP, SLOW_FACTOR = 9, 0.645  # ~93% x 0.645 = ~60% effective throughput
COLLISIONS = ((3, 5), (3, 17), (3, 40))  # three flows of step 3 at half rate (a slow mode)
SHIFT = ShiftSpec(size_bytes=BIG, slow_steps=((SLOW_STEP, SLOW_FACTOR),), collisions=COLLISIONS)
PERM = ShiftSpec(name="perm", pattern="permutation", steps=8, size_bytes=BIG, seed=21)
CONGESTION = CongestionSpec(placement="leaf", cross_leaf_factor=(("alltoall", 3.0),), counters=True)
CRITERIA = """\
fabscope_criteria: 1
name: load-test
congestion:
  max_impact_latency_p99: 2.0
  max_impact_bw_p50: 2.0
  max_impact_allreduce_p99: 1.5
  hop_classes:
    same_leaf: {max_impact_latency_p99: 1.5}
shift:
  min_effective_pct: 80
  min_median_effective_pct: 85
"""
N_FIGURES = 4 + 3 + 3 + 3  # pairs; shift, perm: steps, flows, ratio; congestion: victims, classes, phases


def fabric(path: Path, *, seed: int = 0, shift=(SHIFT, PERM), congestion: CongestionSpec | None = CONGESTION,
           pairs: PairsSpec | None = PAIRS, topology: SynthTopology | None = TOPO, n: int = N, **kw) -> Path:
    return write_synthetic_run(path, n, seed, fabric_seed=0, model=MODEL, topology=topology, sweeps=(), pairs=pairs,
                               shift=shift, congestion=congestion, **kw)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fabric(tmp_path_factory.mktemp("load") / "loaded.h5")


@pytest.fixture(scope="module")
def criteria_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("crit") / "load.yaml"
    path.write_text(CRITERIA, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def report_dir(loaded: Path, criteria_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fabscope_analyze.cli import main

    out = tmp_path_factory.mktemp("load-report") / "report"
    assert main(["report", str(loaded), "-o", str(out), "--criteria", str(criteria_file)]) == 0
    return out


@pytest.fixture(scope="module")
def verdict(loaded: Path, criteria_file: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    from fabscope_analyze.cli import main

    out = tmp_path_factory.mktemp("load-accept")
    code = main(["accept", str(loaded), "--criteria", str(criteria_file), "--json", str(out / "v.json"),
                 "--junit", str(out / "v.xml"), "-q"])
    return {"code": code, "json": json.loads((out / "v.json").read_text()), "junit": ET.parse(out / "v.xml")}


def cross_leaf_victims(path: Path) -> set[str]:
    """Host names of the victims whose ring partner sits on another leaf (from the file itself)."""
    rf = read_results(path)
    run = rf.congestions[0]
    leaf = TOPO.leaf(run.victims), TOPO.leaf(run.partners)
    return {rf.hosts[int(v)].hostname for v in run.victims[leaf[0] != leaf[1]]}


# --- reader ---------------------------------------------------------------------------------------


def test_reader_reads_shift_and_congestion(loaded: Path) -> None:
    rf = read_results(loaded)
    assert [type(r).__name__ for r in rf.runs] == ["PairsRun", "ShiftRun", "ShiftRun", "CongestionRun"]
    shift, perm = rf.shifts
    assert isinstance(shift, ShiftRun) and shift.pattern == "shift" and shift.steps_done == shift.steps_total == N - 1
    assert shift.partner_to.shape == (N - 1, N) and shift.flow_gbps.shape == (N - 1, N)
    assert np.array_equal(shift.partner_to[4], (np.arange(N) + 5) % N)  # step 4 = distance 5
    assert np.isfinite(shift.bw_gbps[~np.eye(N, dtype=bool)]).all()  # shift covers every ordered pair
    assert shift.link_rate_gbps == 400 and shift.has_flow_samples and shift.flow_samples(0).shape == (N, SHIFT.iters)
    assert perm.pattern == "permutation" and perm.n_steps == 8
    assert all(np.all(np.sort(p) == np.arange(N)) and np.all(p != np.arange(N)) for p in perm.partner_to)
    c = rf.congestions[0]
    assert isinstance(c, CongestionRun) and c.phases == ("isolated", "incast", "alltoall", "flood")
    v = c.victims.size
    assert v == 16 and c.impact_latency_p99.shape == (3, v) and c.latency_ns.shape == (4, v, CONGESTION.iters)
    assert set(c.phase_counters) == set(c.loaded_phases) and np.array_equal(c.partners, np.roll(c.victims, -1))
    assert c.phases_done == 4 and c.measured_patterns == c.loaded_phases
    assert rf.incomplete_reasons() == []


def test_files_without_load_runs_read_as_before(tmp_path: Path) -> None:
    rf = read_results(fabric(tmp_path / "plain.h5", shift=(), congestion=None))
    assert rf.shifts == () and rf.congestions == () and len(rf.runs) == 1


def test_large_shift_reads_lazily(tmp_path: Path) -> None:
    from fabscope_analyze import reader

    n = reader.LARGE_MATRIX_RANKS + 8
    path = fabric(tmp_path / "big.h5", n=n, pairs=None, congestion=None, topology=None,
                  shift=(ShiftSpec(pattern="permutation", steps=2, iters=2, flow_samples=False),))
    run = read_results(path).shifts[0]
    assert run._cache == {}  # nothing read yet
    assert run.bw_gbps.dtype == np.float32 and run.partner_to.shape == (2, n)
    run.release()
    assert run._cache == {}


# --- report ---------------------------------------------------------------------------------------


def test_report_has_the_fabric_under_load_section(report_dir: Path, loaded: Path) -> None:
    page = check_report(report_dir, N_FIGURES)
    text = (report_dir / "index.html").read_text(encoding="utf-8")
    assert '<h2 id="load">Fabric under load</h2>' in text
    load_part = text[text.index('<h2 id="load">'):text.index("<h2>Provenance</h2>")]
    names = sorted(Path(src).name for src in page.images)
    for kind in ("load-steps", "load-flows", "load-ratio"):
        assert sum(kind in n for n in names) == 2, (kind, names)  # shift and perm
    for kind in ("load-impact-victims", "load-impact-classes", "load-phases"):
        assert sum(kind in n for n in names) == 1, (kind, names)
    for src in page.images:
        if "load-" in src:
            assert src in load_part  # the load figures sit in the load section
    # tables: the slowest steps (the slowed step first), flows by hop class, impact by hop class
    assert 'class="load-steps"' in load_part and 'class="load-impact"' in load_part
    steps = load_part[load_part.index('class="load-steps"'):]
    assert steps.index(f"step {SLOW_STEP} (distance {SLOW_STEP + 1})") < steps.index("</table>")
    assert "idle reference: pairs run pairs" in load_part and "no pairs run in this file" not in load_part
    assert "same_leaf" in load_part and "same_pod" in load_part
    assert "hw_counters/np_cnp_sent" in load_part  # counters per phase
    # the verdict heads the page and names the slowed step and the cross-leaf victims
    assert text.index('id="verdict"') < text.index("<h2>Summary</h2>")
    for host in cross_leaf_victims(loaded):
        assert f"<strong>{host}</strong>" in text


def test_report_without_pairs_shows_loaded_matrix_and_says_so(tmp_path: Path, cli: Callable) -> None:
    path = fabric(tmp_path / "nopairs.h5", pairs=None, shift=(ShiftSpec(size_bytes=BIG),), congestion=None, n=16)
    out = tmp_path / "out"
    proc = cli(["report", path, "-o", out])
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    check_report(out, 3)
    text = (out / "index.html").read_text(encoding="utf-8")
    assert "no pairs run in this file" in text
    assert list((out / "figures").glob("*load-bw.png")) and not list((out / "figures").glob("*load-ratio*"))
    assert "Only runs under load" in text  # the Runs section points at the load section


def test_large_shift_ratio_aggregates_blocks(tmp_path: Path) -> None:
    """Above FULL_HEATMAP_MAX ranks the loaded / idle ratio is worst and median per leaf pair (the
    shift figures alone: the pairs run's own large-fabric figures are test_analyze_large's)."""
    from fabscope_analyze.report import load as report_load
    from fabscope_analyze.report import FULL_HEATMAP_MAX

    n = FULL_HEATMAP_MAX + 44
    topo = SynthTopology(hosts_per_leaf=20, leaves_per_pod=8, spines_per_pod=4)
    path = fabric(tmp_path / "wide.h5", n=n, topology=topo, pairs=PairsSpec(bw_size_bytes=BIG, lat_iters=3, bw_windows=2),
                  shift=(ShiftSpec(pattern="permutation", steps=6, iters=2, size_bytes=BIG, cross_leaf_factor=0.5),),
                  congestion=None)
    rf = read_results(path)
    run, lay = rf.shifts[0], build_layout(rf)
    idle = load.idle_reference(rf, run)
    assert idle is rf.pairs[0]
    ratio = load.loaded_vs_idle(run, idle)
    cross = lay.pair_hop_class(*np.nonzero(np.isfinite(ratio))) > 1  # same_pod or cross_spine
    values = ratio[np.isfinite(ratio)]
    assert 5 * n < values.size <= 6 * n and np.all(values[cross] < 0.55) and np.all(values[~cross] > 0.85)
    saved: dict[str, object] = {}
    report_load.shift_figures(run, rf.hosts, lay, "wide", lambda fig, kind, alt: saved.setdefault(kind, fig), idle)
    assert sorted(saved) == ["load-flows", "load-ratio", "load-steps"]
    titles = [ax.get_title() for ax in saved["load-ratio"].axes]
    assert "worst (lowest) per block pair" in titles and "median per block pair" in titles


def test_load_report_escapes_file_text(tmp_path: Path, cli: Callable) -> None:
    hosts = HostSpec(hostnames=[HOSTILE, "a&b", 'q"uote', "$x^2$"] + [f"n{i}" for i in range(4, 8)])
    path = fabric(tmp_path / "hostile.h5", n=8, topology=None, hosts=hosts, label=f"{HOSTILE} & <b>", pairs=None,
                  shift=(ShiftSpec(size_bytes=BIG),),
                  congestion=CongestionSpec(iters=20, bw_iters=3, patterns=("incast", HOSTILE)))
    with h5py.File(path, "r+") as f:  # run names are free text (group names are not)
        f["runs/00_shift"].attrs["name"] = f"shift{HOSTILE}"
        f["runs/01_congestion"].attrs["name"] = f"cong{HOSTILE}"
    out = tmp_path / "out"
    proc = cli(["report", path, "-o", out])
    assert proc.returncode == 0, proc.stderr
    page = check_report(out, 3 + 3)
    assert "script" not in page.tags and "b" not in page.tags
    text = (out / "index.html").read_text(encoding="utf-8")
    assert "<script>" not in text and html.escape(HOSTILE) in text


def test_unknown_link_rate_shows_aggregate(tmp_path: Path) -> None:
    from fabscope_analyze.report import write_report

    path = fabric(tmp_path / "norate.h5", n=8, topology=None, hosts=HostSpec(rdma_devices=""), pairs=None,
                  congestion=None, shift=(ShiftSpec(link_rate_gbps=None, size_bytes=BIG),))
    rf = read_results(path)
    eff = load.effective_throughput(rf.shifts[0], build_layout(rf))
    assert not eff.known and np.isnan(eff.pct).all()
    text = write_report(rf, tmp_path / "rep").read_text(encoding="utf-8")
    assert "no link rate known" in text and "aggregate median" in text
    # with port rates in /topology the effective throughput comes from them
    path = fabric(tmp_path / "toporate.h5", n=16, hosts=HostSpec(rdma_devices=""), pairs=None, congestion=None,
                  shift=(ShiftSpec(link_rate_gbps=None, size_bytes=BIG),))
    rf = read_results(path)
    eff = load.effective_throughput(rf.shifts[0], build_layout(rf))
    assert eff.known and "port rates from topology" in eff.rate_text and 85 < eff.median() < 96


# --- accept ---------------------------------------------------------------------------------------


def test_accept_flags_exactly_the_injected_effects(verdict: dict, loaded: Path) -> None:
    assert verdict["code"] == 1
    v = verdict["json"]
    assert v["verdict"] == "fail"
    by_run = {r["run"]: r for r in v["runs"]}
    assert set(by_run) == {"shift", "perm", "congestion"}  # the pairs run has no pairs criteria here
    checks = {(r["run"], c["rule"]): c for r in v["runs"] for c in r["checks"]}
    step_check = checks[("shift", "shift.min_effective_pct")]
    assert step_check["status"] == "fail" and step_check["failing"] == 1 and step_check["judged"] == N - 1
    assert checks[("shift", "shift.min_median_effective_pct")]["status"] == "pass"
    assert checks[("shift", "shift.require_all_steps")]["status"] == "pass"
    assert by_run["perm"]["status"] == "pass"
    steps = [s for s in v["suspects"] if s["kind"] == "step"]
    assert [s["details"]["step"] for s in steps] == [SLOW_STEP]
    assert 55 < steps[0]["details"]["effective_pct"] < 65 and steps[0]["name"] == f"{SLOW_STEP} (distance {SLOW_STEP + 1}) of shift"
    expected = cross_leaf_victims(loaded)
    assert 3 <= len(expected) < 16  # both kinds of victims are present
    victims = [s for s in v["suspects"] if s["kind"] == "victim"]
    assert {s["name"] for s in victims} == expected
    for s in victims:
        assert s["details"]["hop_class"] == "same_pod"
        assert {f["pattern"] for f in s["details"]["failures"]} == {"alltoall"}
        assert 3.0 < s["details"]["failures"][0]["value"] < 3.6
    lat99 = checks[("congestion", "congestion.max_impact_latency_p99")]
    assert lat99["failing"] == len(expected) and lat99["judged"] == 3 * 16
    assert checks[("congestion", "congestion.max_impact_allreduce_p99")]["status"] == "pass"
    assert checks[("congestion", "congestion.require_all_patterns")]["status"] == "pass"
    assert any("reach their ring partner through hop class same_pod, and no victim of same_leaf fails" in n
               for n in by_run["congestion"]["notes"])
    # JUnit: a failing case per failing rule, and per run a `suspects` case listing them
    root = verdict["junit"].getroot()
    failed = {(c.get("classname"), c.get("name")): c.find("failure") for c in root.iter("testcase")
              if c.find("failure") is not None}
    assert ("fabscope.accept.shift", "shift.min_effective_pct") in failed
    assert ("fabscope.accept.congestion", "congestion.max_impact_latency_p99") in failed
    victims = failed[("fabscope.accept.congestion", "suspects")].text.splitlines()
    assert {re.match(r"\d+\. (victim \S+):", x).group(1) for x in victims} == {f"victim {h}" for h in expected}
    assert f"step {SLOW_STEP} (distance {SLOW_STEP + 1}) of shift:" in failed[("fabscope.accept.shift", "suspects")].text


def test_healthy_fabric_passes(tmp_path: Path, criteria_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = fabric(tmp_path / "healthy.h5", shift=(ShiftSpec(size_bytes=BIG),), congestion=CongestionSpec(placement="leaf"),
                  pairs=None)
    code, out, _ = run_cli(["accept", path, "--criteria", criteria_file], capsys)
    assert code == 0 and out.startswith("fabscope accept: PASS"), out
    assert "suspects" not in out


def test_killed_shift_is_partial_not_broken(tmp_path: Path, criteria_file: Path, cli: Callable,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    for rows in ("total", "done"):
        spec = ShiftSpec(size_bytes=BIG, steps_done=20, rows_written=rows)
        path = fabric(tmp_path / f"killed-{rows}.h5", shift=(spec,), congestion=None, complete=False, pairs=None)
        run = read_results(path).shifts[0]
        assert run.n_steps == (N - 1 if rows == "total" else 20) and run.done().sum() == 20
        assert np.isnan(run.flow_gbps[20:]).all() and (run.partner_to[20:] == -1).all()
        out = tmp_path / f"rep-{rows}"
        proc = cli(["report", path, "-o", out])
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
        text = (out / "index.html").read_text(encoding="utf-8")
        assert "20 of 63 steps done" in text and "Incomplete results" in text
        code, summary, _ = run_cli(["accept", path, "--criteria", criteria_file], capsys)
        assert code == 1 and "every step measured: 43 of 63 steps fail" in summary, summary
    relaxed = tmp_path / "relaxed.yaml"
    relaxed.write_text(CRITERIA.replace("min_median_effective_pct: 85", "min_median_effective_pct: 85\n"
                                        "  require_all_steps: false"), encoding="utf-8")
    code, summary, _ = run_cli(["accept", path, "--criteria", relaxed, "-q", "--json", tmp_path / "v.json"], capsys)
    v = json.loads((tmp_path / "v.json").read_text())
    checks = {c["rule"]: c for c in v["runs"][0]["checks"]}
    assert code == 0 and checks["shift.require_all_steps"]["status"] == "skipped"
    assert checks["shift.min_effective_pct"]["judged"] == 20


def test_failed_flows_are_findings(tmp_path: Path, criteria_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fabscope_analyze.report import write_report

    path = fabric(tmp_path / "failed.h5", pairs=None, congestion=None,
                  shift=(ShiftSpec(size_bytes=BIG, failed_flows=((2, 5),)),))
    rf = read_results(path)
    run = rf.shifts[0]
    assert run.errors is not None and run.errors.step.tolist() == [2] and run.errors.peer.tolist() == [8]
    assert np.isnan(run.flow_gbps[2, 5]) and np.isfinite(run.flow_gbps[2, :5]).all()
    text = write_report(rf, tmp_path / "rep").read_text(encoding="utf-8")
    assert "1 flow(s) failed or timed out" in text and html.escape(HOSTILE) in text and HOSTILE not in text
    code, out, _ = run_cli(["accept", path, "--criteria", criteria_file], capsys)
    assert code == 1 and "no flow failed or timed out: 1 of 4032 flows fail" in out, out
    assert "node005 -> node008: failed" in out
    ignore = tmp_path / "ignore.yaml"
    ignore.write_text(CRITERIA.replace("min_median_effective_pct: 85", "min_median_effective_pct: 85\n"
                                       "  failed_flows: ignore"), encoding="utf-8")
    code, out, _ = run_cli(["accept", path, "--criteria", ignore], capsys)
    assert code == 0 and "no flow failed" not in out, out


def test_killed_congestion_is_partial(tmp_path: Path, criteria_file: Path, cli: Callable,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = fabric(tmp_path / "killed.h5", shift=(), congestion=CongestionSpec(placement="leaf", phases_done=1),
                  complete=False, pairs=None)
    run = read_results(path).congestions[0]
    assert run.loaded_phases == ("incast", "alltoall", "flood") and run.measured_patterns == ("incast",)
    assert run.phases_done == 2 and np.isnan(run.impact_latency_p99[1:]).all()
    out = tmp_path / "rep"
    proc = cli(["report", path, "-o", out])
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    text = (out / "index.html").read_text(encoding="utf-8")
    assert "aggressor patterns not measured: alltoall, flood" in text
    code, summary, _ = run_cli(["accept", path, "--criteria", criteria_file], capsys)
    assert code == 1 and "every aggressor pattern measured: 2 of 3 patterns fail" in summary, summary
    # no loaded phase at all: the report still renders (the isolated distributions)
    path = fabric(tmp_path / "killed0.h5", shift=(), congestion=CongestionSpec(phases_done=0), complete=False,
                  pairs=None, n=16)
    proc = cli(["report", path, "-o", tmp_path / "rep0"])
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def _broken(tmp_path: Path, name: str, edit: Callable[[h5py.File], None]) -> Path:
    path = fabric(tmp_path / f"{name}.h5", n=8, topology=None, pairs=None,
                  shift=(ShiftSpec(size_bytes=BIG),), congestion=CongestionSpec(iters=20, bw_iters=3))
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def _set(group: str, attr: str, value: object) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        f[group].attrs[attr] = value
    return edit


def _replace(where: str, data: np.ndarray, units: str | None = None) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        old_units = f[where].attrs.get("units")
        del f[where]
        ds = f.create_dataset(where, data=data)
        if units or old_units is not None:
            ds.attrs["units"] = units or old_units
    return edit


BROKEN = {
    "missing flow_gbps": (lambda f: f.__delitem__("runs/00_shift/flow_gbps"), "dataset /runs/00_shift/flow_gbps is missing"),
    "missing impact": (lambda f: f.__delitem__("runs/01_congestion/impact_latency_p99"),
                       "dataset /runs/01_congestion/impact_latency_p99 is missing"),
    "steps_done too big": (_set("runs/00_shift", "steps_done", np.int64(99)), "attribute 'steps_done'"),
    "no link rate attribute": (lambda f: f["runs/00_shift"].attrs.__delitem__("link_rate_gbps"),
                               "has no attribute 'link_rate_gbps'"),
    "partner out of range": (_replace("runs/00_shift/partner_to", np.full((7, 8), 9, dtype=np.int32)),
                             "holds ranks outside -1..7"),
    "wrong flow shape": (_replace("runs/00_shift/flow_gbps", np.zeros((3, 8)), "Gb/s"), "has shape [3, 8], expected [7, 8]"),
    "phases": (_replace("runs/01_congestion/phases", np.array(["incast", "isolated", "alltoall", "flood"], dtype=object)),
               "should start with 'isolated'"),
    "victims vs roles": (_replace("runs/01_congestion/role", np.full(8, 2, dtype=np.int8)),
                         "should list every rank whose role is 1"),
    "impact units": (_replace("runs/01_congestion/impact_bw_p50", np.ones((3, 2)), "Gb/s"), "has units 'Gb/s'"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_load_files_give_one_line(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit, message = BROKEN[case]
    path = _broken(tmp_path, case.replace(" ", "-"), edit)
    for args in (["report", path, "-o", tmp_path / "out"], ["accept", path, "--criteria", REPO_ROOT / "configs" /
                                                            "criteria" / "local.yaml"]):
        code, out, err = run_cli(args, capsys)
        assert code == 2, (case, out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and message in lines[0] and str(path) in lines[0], (case, err)
        assert "Traceback" not in err


# --- criteria -------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, message", [
    ("congestion: {max_impact_latency_p99: 0.5}", "congestion.max_impact_latency_p99: expected at least 1"),
    ("congestion: {hop_classes: {same_leaf: {max_impact_bw_p50: 0.9}}}", "congestion.hop_classes.same_leaf.max_impact_bw_p50"),
    ("congestion: {hop_classes: {rack: {max_impact_bw_p50: 2}}}", "congestion.hop_classes.rack: unknown key"),
    ("congestion: {max_impact_latency: 2}", "congestion.max_impact_latency: unknown key"),
    ("congestion: {patterns: 3}", "congestion.patterns: expected a list"),
    ("shift: {min_effective_pct: 120}", "shift.min_effective_pct: expected a percentage"),
    ("shift: {min_effective: 80}", "shift.min_effective: unknown key"),
    ("shift: {require_all_steps: maybe}", "shift.require_all_steps: expected true or false"),
])
def test_load_criteria_errors(text: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(f"fabscope_criteria: 1\n{text}\n", encoding="utf-8")
    with pytest.raises(CriteriaError) as err:
        load_criteria(path)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_class_limit_replaces_the_general_one(criteria_file: Path) -> None:
    c = load_criteria(criteria_file).congestion
    assert c is not None
    assert c.limit("latency_p99", "same_leaf") == 1.5 and c.limit("latency_p99", "same_pod") == 2.0
    assert c.limit("bw_p50", "same_leaf") == 2.0 and c.limit("latency_p50", "cross_spine") is None


def test_shipped_criteria_have_load_rules() -> None:
    for name in ("ndr400", "hdr200", "roce400"):
        c = load_criteria(REPO_ROOT / "configs" / "criteria" / f"{name}.yaml")
        assert c.shift is not None and c.shift.min_median_effective_pct is not None, name
        assert c.congestion is not None and c.congestion.impact.max_impact_latency_p99 is not None, name
    local = load_criteria(REPO_ROOT / "configs" / "criteria" / "local.yaml")
    assert local.shift is not None and local.shift.require_all_steps
    assert local.congestion is not None and local.congestion.require_all_patterns


def test_patterns_filter(tmp_path: Path, loaded: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("fabscope_criteria: 1\ncongestion:\n  max_impact_latency_p99: 2\n  patterns: [incast, flood, "
                    "storm]\n", encoding="utf-8")
    code, out, _ = run_cli(["accept", loaded, "--criteria", path], capsys)
    assert code == 0, out  # alltoall, where the victims suffer, is not judged
    assert "patterns storm are not part of this run" in out


# --- compare and trend ------------------------------------------------------------------------------


def test_compare_finds_the_load_regressions(tmp_path: Path, loaded: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = fabric(tmp_path / "base.h5", seed=1, shift=(ShiftSpec(size_bytes=BIG), PERM),
                  congestion=CongestionSpec(placement="leaf", counters=True), pairs=None)
    again = fabric(tmp_path / "again.h5", seed=2, shift=(ShiftSpec(size_bytes=BIG), PERM),
                   congestion=CongestionSpec(placement="leaf", counters=True), pairs=None)
    code, out, _ = run_cli(["compare", base, again, "--json", tmp_path / "same.json"], capsys)
    rows = json.loads((tmp_path / "same.json").read_text())["rows"]
    load_rows = [r for r in rows if r["benchmark"] in ("shift", "congestion")]
    assert load_rows and not any(r["regression"] for r in load_rows), [r for r in load_rows if r["regression"]]
    assert {r["metric"] for r in load_rows} >= {"effective throughput per step", "flow bandwidth per step, median over flows",
                                                "flow bandwidth under load, median over flows",
                                                "latency p99 impact factor", "victims' allreduce time p50"}
    code, out, _ = run_cli(["compare", base, loaded, "--json", tmp_path / "worse.json", "-o", tmp_path / "html"], capsys)
    assert code == 1
    # one NEW / BASE heatmap of the loaded matrix per shift run in both files, hosts in topology order
    page = parse(tmp_path / "html" / "index.html")
    shift_figs = [alt for alt in page.alts if "bandwidth under load (shift) ratio" in alt]
    assert sorted(shift_figs) == [f"bandwidth under load (shift) ratio {loaded.name}/base.h5 per pair, run {r}"
                                  for r in ("perm", "shift")], page.alts
    for src in page.images:
        assert (tmp_path / "html" / src).is_file()
    rows = json.loads((tmp_path / "worse.json").read_text())["rows"]
    regressions = {(r["run"], r["metric"], r["key"]) for r in rows if r["regression"]}
    # one slowed step: its own row regresses, the medians over steps and flows do not move
    assert {key for run, metric, key in regressions if run == "shift"} == {f"step {SLOW_STEP} (distance {SLOW_STEP + 1})"}
    assert any(run == "congestion" and metric == "latency p99 impact factor" and "alltoall, same_pod" in key
               for run, metric, key in regressions), regressions
    assert not any("incast" in key or "flood" in key for run, _, key in regressions if run == "congestion")
    assert not any(run == "perm" for run, _, _ in regressions)


def test_compare_different_permutations_are_unpaired(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = fabric(tmp_path / "a.h5", pairs=None, congestion=None, shift=(ShiftSpec(pattern="permutation", steps=6, seed=1),))
    b = fabric(tmp_path / "b.h5", pairs=None, congestion=None, shift=(ShiftSpec(pattern="permutation", steps=6, seed=2),))
    code, out, _ = run_cli(["compare", a, b, "--json", tmp_path / "c.json"], capsys)
    c = json.loads((tmp_path / "c.json").read_text())
    assert code == 0 and any("compared as two samples" in n for n in c["notes"])
    assert any(r["key"] == "6 vs 6 steps" for r in c["rows"])


def test_trend_metrics_of_load_runs(loaded: Path) -> None:
    m = metrics_of(read_results(loaded, samples=False))
    value, unit, higher, shown = m["shift/effective_pct_median"]
    assert unit == "%" and higher and shown and 88 < value < 96
    assert m["shift/effective_pct_min"][0] < 65
    value, unit, higher, shown = m["congestion/impact_latency_p99_median@alltoall"]
    assert unit == "x" and not higher and shown
    assert 3.0 < m["congestion/impact_latency_p99_max@alltoall"][0] < 3.6


# --- the real fabscope ---------------------------------------------------------------------------------

LOAD_SUITE = TESTS_DIR / "data" / "load-suite.yaml"


@pytest.fixture(scope="module")
def real_load(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`mpirun -np 4 fabscope run load-suite.yaml`: pairs, shift, permutation and congestion runs."""
    return run_fabscope(tmp_path_factory.mktemp("fabscope-load") / "load.h5", LOAD_SUITE)


def test_real_load_runs_are_read(real_load: Path) -> None:
    rf = read_results(real_load)
    assert [r.info.benchmark for r in rf.runs] == ["pairs", "shift", "shift", "congestion"]
    shift, perm = rf.shifts
    n = N_RANKS
    assert shift.steps_done == shift.steps_total == n - 1 and shift.link_rate_gbps == 100
    for s in range(n - 1):
        assert np.array_equal(shift.partner_to[s], (np.arange(n) + s + 1) % n)
    assert np.isfinite(shift.flow_gbps).all() and (shift.flow_gbps > 0).all()
    assert np.isfinite(shift.bw_gbps[~np.eye(n, dtype=bool)]).all()  # the shift matrix is complete
    # aggregate = the sum of each flow's mean rate (bits / time: the harmonic mean of its windows)
    mean_rate = np.array([[x.size / np.sum(1.0 / x) for x in shift.flow_samples(s)] for s in range(n - 1)])
    np.testing.assert_allclose(shift.step_aggregate_gbps, mean_rate.sum(axis=1), rtol=1e-9)
    np.testing.assert_allclose(shift.step_effective_pct, 100 * shift.step_aggregate_gbps / (n * 100), rtol=1e-9)
    assert perm.pattern == "permutation" and perm.steps_done == 2 and perm.seed == 7
    assert all(np.all(np.sort(p) == np.arange(n)) and np.all(p != np.arange(n)) for p in perm.partner_to)
    c = rf.congestions[0]
    assert c.victims.size == 2 and c.aggressors.size == 2 and c.measured_patterns == ("incast", "alltoall", "flood")
    assert np.isfinite(c.impact_latency_p50).all() and np.isfinite(c.impact_bw_p50).all()
    # the impact factors are what SCHEMA.md defines, from the samples in the file
    lat = c.latency_ns
    np.testing.assert_allclose(c.impact_latency_p50, np.percentile(lat[1:], 50, axis=2) / np.percentile(lat[:1], 50, axis=2),
                               rtol=1e-6)
    bw = c.bw_gbps
    np.testing.assert_allclose(c.impact_bw_p50, np.median(bw[:1], axis=2) / np.median(bw[1:], axis=2), rtol=1e-6)
    assert rf.incomplete_reasons() == []


def test_real_load_report_and_verdict(real_load: Path, cli: Callable, tmp_path: Path) -> None:
    out = tmp_path / "report"
    proc = cli(["report", real_load, "-o", out])
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    check_report(out, N_FIGURES)
    text = (out / "index.html").read_text(encoding="utf-8")
    assert '<h2 id="load">Fabric under load</h2>' in text and "idle reference: pairs run pairs" in text
    assert "link rate 100 Gb/s from the file" in text
    proc = cli(["accept", real_load, "--criteria", REPO_ROOT / "configs" / "criteria" / "local.yaml",
                "--json", tmp_path / "v.json"])
    v = json.loads((tmp_path / "v.json").read_text())
    runs = {r["run"]: r for r in v["runs"]}
    for name in ("shift", "perm"):
        checks = {c["rule"]: c["status"] for c in runs[name]["checks"]}
        assert checks["shift.require_all_steps"] == "pass" and checks["shift.failed_flows"] == "pass", runs[name]
    checks = {c["rule"]: c["status"] for c in runs["congestion"]["checks"]}
    assert checks == {"congestion.require_all_patterns": "pass"}
    assert proc.returncode in (0, 1, 3), proc.stderr  # the pairs verdict on an oversubscribed host is its own business
