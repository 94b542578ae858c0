"""Diagnosis by `accept` (issue 15): counting tests, upstream causes, degraded hosts, folded pairs,
ranking; and a fast subset of the diagnosis benchmark (diagnosis_bench.py: generated fabrics with
known faults, real result files, the real accept) asserting recall and no false alarm.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

import diagnosis_bench as bench
from conftest import REPO_ROOT, run_cli
from synth import FabricModel, Faults, PairsSpec, SynthTopology, write_synthetic_run

NDR = REPO_ROOT / "configs" / "criteria" / "ndr400.yaml"
MODEL = FabricModel(peak_gbps=395.0, base_latency_ns=1500.0, noise=0.01, per_host_spread=0.005)
PAIRS = PairsSpec(bw_size_bytes=8 << 20, lat_iters=30, bw_windows=8)


def accept(path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    code, _, _ = run_cli(["accept", path, "--criteria", NDR, "--json", tmp_path / "v.json"], capsys)
    return code, json.loads((tmp_path / "v.json").read_text())


def test_a_flapping_host_is_named_and_its_pairs_fold_into_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the case, smaller: 24 of a host's 255 pairs time out, every other pair is fine
    n, h = 256, 77
    rng = np.random.default_rng(5)
    peers = [int(p) for p in rng.choice(np.delete(np.arange(n), h), 24, replace=False)]
    pairs = PairsSpec(bw_size_bytes=8 << 20, lat_iters=20, bw_windows=4, timeout_pairs=tuple((h, p) for p in peers))
    path = write_synthetic_run(tmp_path / "f.h5", n, 5, model=MODEL, topology=SynthTopology(), sweeps=(), pairs=pairs)
    with h5py.File(path, "r+") as f:
        del f["topology/ranks/dest_plane"]  # routes unknown, as on the RoCE fabric
    code, v = accept(path, tmp_path, capsys)
    assert code == 1
    top, *rest = v["suspects"]
    assert top["kind"] == "host" and top["details"]["rank"] == h and top["details"]["severity"] == "fail", top
    assert top["details"]["error_flows"] == 48 and top["details"]["q"] < 1e-10
    assert "24 of its 255 pairs failed or timed out" in top["evidence"]
    assert not [s for s in rest if s["kind"] == "pair" and h in s["details"].get("ranks", [])], rest


def test_a_host_at_70_percent_is_degraded_not_failed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # every pair of node010 at ~0.7 x: below no absolute limit of these criteria (min_gbps 200 here),
    # yet a fabric engineer calls it degraded
    crit = tmp_path / "c.yaml"
    crit.write_text("fabscope_criteria: 1\nname: loose\npairs:\n  bandwidth: {min_gbps: 200}\n")
    path = write_synthetic_run(tmp_path / "f.h5", 64, 3, model=MODEL, faults=Faults(bad_cables=(10,), bad_cable_bw_factor=0.7),
                               topology=SynthTopology(hosts_per_leaf=8, leaves_per_pod=4), sweeps=(), pairs=PAIRS)
    code, _, _ = run_cli(["accept", path, "--criteria", crit, "--json", tmp_path / "v.json"], capsys)
    v = json.loads((tmp_path / "v.json").read_text())
    assert code == 0 and v["verdict"] == "pass", v["runs"][0]["checks"]
    (s,) = v["suspects"]
    assert (s["kind"], s["details"]["rank"], s["details"]["severity"]) == ("host_link", 10, "warning")
    assert 0.65 < s["details"]["ratio_to_fabric"] < 0.75 and "degraded" in s["evidence"]


def test_a_degraded_leaf_is_not_charged_to_its_hosts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # all of leaf 2's uplinks at 0.75 (every plane; routes unknown): a warning for the leaf, none for its hosts
    crit = tmp_path / "c.yaml"
    crit.write_text("fabscope_criteria: 1\nname: loose\npairs:\n  bandwidth: {min_gbps: 200}\n")
    faults = Faults(bad_uplinks=tuple((2, k) for k in range(4)), bad_uplink_bw_factor=0.75)
    path = write_synthetic_run(tmp_path / "f.h5", 64, 4, model=MODEL, faults=faults,
                               topology=SynthTopology(hosts_per_leaf=8, leaves_per_pod=4), sweeps=(), pairs=PAIRS)
    with h5py.File(path, "r+") as f:
        del f["topology/ranks/dest_plane"]
    code, _, _ = run_cli(["accept", path, "--criteria", crit, "--json", tmp_path / "v.json"], capsys)
    v = json.loads((tmp_path / "v.json").read_text())
    assert [(s["kind"], s["name"], s["details"]["severity"]) for s in v["suspects"]] == [
        ("leaf_uplinks", "uplinks of leaf0003", "warning")], v["suspects"]


def test_victims_of_a_bad_uplink_are_not_charged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # leaf 1's uplinks at 40% and a host behind them whose windows stall more than the rest's (the
    # congested uplink's doing: only its cross-leaf flows); a lossy host elsewhere
    faults = Faults(bad_uplinks=tuple((1, k) for k in range(4)), bad_uplink_bw_factor=0.4, lossy_hosts=(40,),
                    lossy_stall_rate=0.05, background_stall_rate=0.002)
    path = write_synthetic_run(tmp_path / "f.h5", 64, 6, model=MODEL, faults=faults,
                               topology=SynthTopology(hosts_per_leaf=8, leaves_per_pod=4), sweeps=(), pairs=PAIRS)
    with h5py.File(path, "r+") as f:
        del f["topology/ranks/dest_plane"]
    code, v = accept(path, tmp_path, capsys)
    named = [(s["kind"], s["name"]) for s in v["suspects"] if s["kind"] != "pair"]
    assert code == 1 and named == [("leaf_uplinks", "uplinks of leaf0002"), ("host_link", "node040 port/cable to leaf0006")], named


def test_pairs_never_crowd_out_causes() -> None:
    from fabscope_analyze.accept.pairs.suspects import extend_suspects
    from fabscope_analyze.verdict import Suspect

    pairs = [Suspect(run="p", kind="pair", name=f"a{i} <-> b{i}", failing=100, judged=2, evidence="",
                     details={"severity": "fail", "clear_flows": 2}) for i in range(30)]
    host = Suspect(run="p", kind="host", name="h1", failing=3, judged=100, evidence="timeouts",
                   details={"severity": "fail", "host": "h1", "rank": 1})
    extra = [Suspect(run="p", kind="host_link", name="h1 port", failing=0, judged=0, evidence="PCIe x8 of x16",
                     details={"severity": "warning", "host": "h1"}),
             Suspect(run="p", kind="host_link", name="h2 port", failing=0, judged=0, evidence="MTU 1024 of 4096",
                     details={"severity": "warning", "host": "h2"})]
    out = extend_suspects(pairs + [host], extra, cap=5)
    assert [s.name for s in out[:2]] == ["h1", "h2 port"] and len(out) == 5
    assert "PCIe x8 of x16" in out[0].evidence and out[0].details["also"] == ["PCIe x8 of x16"]


def test_counting_test_needs_an_outlier() -> None:
    from fabscope_analyze.accept.pairs.suspects import counting_test

    n = np.full(100, 99.0)
    k = np.zeros((3, 100))
    k[1] = np.random.default_rng(1).binomial(99, 0.05, 100)  # every host misses 5%: nobody stands out
    k[0, 7] = 5  # one host's 5 timeouts where nobody else has any (its peers' counts left out)
    t = counting_test(k, n, np.array([5.0, k[1].sum() / 2, 0.0]), 99 * 100 / 2)
    assert np.flatnonzero(t.q < 0.001).tolist() == [7] and t.cat[7] == 0


# the fast subset of the benchmark: every fault kind, 64 and 128 hosts, the three layouts
@pytest.mark.parametrize("case", bench.cases(14, 7, (64, 128), bench.KINDS), ids=lambda c: c.label)
def test_benchmark_subset(case: bench.Case, tmp_path: Path) -> None:
    path = bench.write_case(case, tmp_path / "case.h5")
    found, false = bench.score(case, bench.judge(case, path))
    assert all(found.values()) and not false, (found, false, case.culprits)
