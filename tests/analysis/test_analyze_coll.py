"""Collective scaling (coll runs): the reader on the real fabscope file, the metric definitions of
SCHEMA.md recomputed, and the report's scaling plots, drop table and failed --check flags."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import N_RANKS, REPO_ROOT, run_cli
from fabscope_analyze import coll
from fabscope_analyze.reader import COLL_OPS, CollRun, RunFile, read_results
from fabscope_analyze.stats import STAT_NAMES, summary_stats
from pages import parse
from synth import CollSpec, write_synthetic_run

# bus bandwidth factors of SCHEMA.md, by hand for the group sizes of a 4-rank run
FACTORS = {"allreduce": {2: 1.0, 4: 1.5}, "allgather": {2: 0.5, 4: 0.75}, "reduce_scatter": {2: 0.5, 4: 0.75},
           "alltoall": {2: 0.5, 4: 0.75}, "bcast": {2: 1.0, 4: 1.0}}


@pytest.fixture(scope="module")
def real(real_results: Path) -> CollRun:
    rf = read_results(real_results)
    (run,) = rf.colls
    return run


def test_real_coll_run_structure(real: CollRun) -> None:
    assert list(real.ops) == list(COLL_OPS)
    assert real.node_by == "rank" and real.check and real.ranks_per_node == 1 and real.n_nodes == N_RANKS
    assert real.node_counts.tolist() == [2, 4] and real.group_size_ranks.tolist() == [2, 4]
    assert real.members(0).tolist() == [0, 1] and real.members(1).tolist() == [0, 1, 2, 3]
    assert real.node_of_rank.tolist() == list(range(N_RANKS))
    sizes = real.ops["allreduce"].size_bytes
    assert sizes[0] == 8 and sizes[-1] == 64 << 10 and np.all(np.diff(sizes) > 0)
    assert real.ops["barrier"].size_bytes.tolist() == [0] and not real.ops["barrier"].has_bandwidth


@pytest.mark.parametrize("op", COLL_OPS)
def test_real_coll_metrics_follow_schema(real: CollRun, op: str) -> None:
    o = real.ops[op]
    g, s = o.status.shape
    assert o.samples is not None and o.samples.shape == (g, s, real.info.iters)
    ok = o.status == o.status_code("ok")
    # not_run only where a size is below one element per peer (allgather, reduce_scatter and
    # alltoall split 8 B among 4 ranks); those cells are NaN
    not_run = o.status == o.status_code("not_run")
    assert np.all(ok | not_run) and o.check_errors is not None and np.all(o.check_errors == 0)
    groups, sizes = np.nonzero(not_run)
    assert np.all(o.size_bytes[sizes] < 4 * real.group_size_ranks[groups])  # 4 = one float (dtype float)
    assert np.all(np.isnan(o.samples[not_run])) and np.all(np.isfinite(o.samples[ok])) and np.all(o.samples[ok] > 0)
    expected = summary_stats(o.samples[ok])
    for stat in STAT_NAMES:
        np.testing.assert_allclose(o.time(stat)[ok], expected[stat], rtol=1e-9, err_msg=f"{op} {stat}")
    if not o.has_bandwidth:
        return
    algbw = o.bytes * 8.0 / o.time("p50")
    np.testing.assert_allclose(o.summary["algbw_gbps"][ok], algbw[ok], rtol=1e-9)
    factor = np.array([FACTORS[op][int(n)] for n in real.group_size_ranks])[:, None]
    np.testing.assert_allclose(o.summary["busbw_gbps"][ok], (algbw * factor)[ok], rtol=1e-9)
    eff = o.summary["busbw_gbps"] / o.summary["busbw_gbps"][0]
    np.testing.assert_allclose(o.summary["scaling_efficiency"][ok], eff[ok], rtol=1e-9)


def test_real_report_has_scaling_plots(real_report: Path) -> None:
    figs = sorted(p.name for p in (real_report / "figures").glob("*coll*.png"))
    assert figs == sorted(f"04-04_coll-coll-{op}.png" for op in COLL_OPS)
    text = (real_report / "index.html").read_text(encoding="utf-8")
    section = text.split('id="run-04"')[1]
    assert "Largest scaling drops" in section or "No scaling drop" in section
    assert "failed or gave wrong results" not in section


@pytest.fixture(scope="module")
def faulty_coll(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = CollSpec(slow_from_nodes=8, check_failures=(("allreduce", 1, 2), ("bcast", 3, 5)))
    return write_synthetic_run(tmp_path_factory.mktemp("coll") / "c.h5", 16, 3, sweeps=(), pairs=None, coll=spec)


def test_drops_and_failures(faulty_coll: Path) -> None:
    rf: RunFile = read_results(faulty_coll)
    (run,) = rf.colls
    assert run.node_counts.tolist() == [2, 4, 8, 16]
    largest, below = coll.scaling_drops(run, rf.hosts)
    assert largest and all(d.nodes_from == 4 and d.nodes_to == 8 for d in largest[:5])
    assert largest[0].added_hosts == ("node004", "node005", "node006", "node007")
    assert largest[0].drop == pytest.approx(largest[0].efficiency_from - largest[0].efficiency_to)
    assert below and all(d.efficiency_to < coll.DEFAULT_EFFICIENCY_THRESHOLD for d in below)
    assert coll.failed(run) == [("allreduce", 4, 128, "failed", 17), ("bcast", 16, 8 << 10, "failed", 17)]


def test_report_flags_failed_checks(faulty_coll: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["report", faulty_coll, "-o", tmp_path / "r"], capsys)
    assert code == 0 and err == "", err
    text = (tmp_path / "r" / "index.html").read_text(encoding="utf-8")
    assert "2 measurement(s) failed or gave wrong results (--check)" in text
    failed_table = text.split('class="coll-failed"')[1].split("</table>")[0]
    assert "<td>allreduce</td><td>4</td><td>128</td>" in failed_table and '<span class="bad">17</span>' in failed_table
    drops = text.split('class="coll-drops"')[1].split("</table>")[0]
    assert "4 \u2192 8" in drops and "node004, node005, node006, node007" in drops
    assert len(parse(tmp_path / "r" / "index.html").images) == len(COLL_OPS)


def test_accept_fails_wrong_results(faulty_coll: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    crit = REPO_ROOT / "configs" / "criteria" / "local.yaml"
    code, out, _ = run_cli(["accept", faulty_coll, "--criteria", crit, "--json", tmp_path / "v.json"], capsys)
    assert code == 1
    checks = {c["rule"]: c for c in json.loads((tmp_path / "v.json").read_text())["runs"][0]["checks"]}
    assert checks["coll.allreduce.check"]["status"] == "fail" and checks["coll.allgather.check"]["status"] == "pass"
    assert checks["coll.allreduce.check"]["examples"] == ["4 nodes, 128 B: 17 wrong elements"]


@pytest.mark.parametrize(("n", "k", "picks"), [(3, 6, [0, 1, 2]), (14, 6, [0, 3, 5, 8, 10, 13]), (25, 4, [0, 8, 16, 24])])
def test_pick_sizes(n: int, k: int, picks: list[int]) -> None:
    assert coll.pick_sizes(np.arange(n), k) == picks
