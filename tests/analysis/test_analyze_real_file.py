"""The result file of the real fabscope (conftest.real_results) against results/SCHEMA.md.

These check the C++ side's output as the analysis reads it: structure (via the reader), the
suite's parameters, and the metric definitions of SCHEMA.md recomputed from the raw samples.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import N_RANKS, SUITE
from fabscope_analyze.reader import PairsRun, RunFile, read_results
from fabscope_analyze.stats import STAT_NAMES, summary_stats

RTOL = 1e-9


def suite_entries() -> list[dict]:
    return yaml.safe_load(SUITE.read_text())["benchmarks"]


def parse_size(text: str | int) -> int:
    m = re.fullmatch(r"(\d+)([KMG]?)", str(text).strip())
    assert m, text
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2)]


@pytest.fixture(scope="module")
def rf(real_results: Path) -> RunFile:
    return read_results(real_results, pair_samples=True)


def entry(name: str) -> dict:
    return next(e for e in suite_entries() if e["name"] == name)


def test_root_and_hosts(rf: RunFile) -> None:
    assert rf.schema_version == 2
    assert rf.n_ranks == N_RANKS and len(rf.hosts) == N_RANKS
    assert rf.complete and rf.incomplete_reasons() == []
    assert rf.fabscope_version and rf.created_utc.endswith("Z")
    assert "run" in rf.command_line.split() and str(SUITE.name) in rf.command_line
    assert yaml.safe_load(rf.suite_text) == yaml.safe_load(SUITE.read_text())
    for h in rf.hosts:
        assert h.hostname and h.kernel and h.cpu_model and h.mpi_library and h.rdma_core_version, h


def test_runs_follow_the_suite(rf: RunFile) -> None:
    entries = suite_entries()
    assert [(r.info.name, r.info.benchmark) for r in rf.runs] == [(e["name"], e["kind"]) for e in entries]
    for run, e in zip(rf.runs, entries):
        assert run.info.complete and run.info.finished_utc, run.info
        assert run.info.transport == "mpi"
        assert run.info.warmup == e["warmup"]
        assert run.info.group.endswith(e["name"])


@pytest.mark.parametrize("name", ["lat", "bw", "bibw"])
def test_sweep_summaries_match_samples(rf: RunFile, name: str) -> None:
    run = next(r for r in rf.sweeps if r.info.name == name)
    e = entry(name)
    first, last = (parse_size(s) for s in e["sizes"].split(":"))
    assert run.size_bytes[0] == first and run.size_bytes[-1] == last
    assert run.info.iters == e["iters"]
    x = run.samples
    assert x is not None and x.shape == (run.size_bytes.size, e["iters"])
    assert np.all(np.isfinite(x)) and np.all(x > 0)
    expected = summary_stats(x)
    for stat in STAT_NAMES:
        np.testing.assert_allclose(run.stat(stat), expected[stat], rtol=RTOL, err_msg=f"{name} {stat}")
    if run.info.benchmark == "lat":
        return
    assert run.window == 64
    # overall = all bits / all time; every window carries the same bits, so it is the harmonic mean.
    hmean = x.shape[1] / np.sum(1.0 / x, axis=1)
    np.testing.assert_allclose(run.summary["bw_gbps_overall"], hmean, rtol=1e-6)
    # msg rate = messages / window_time_us = bw_gbps * 1000 / (8 * size), a linear map of each sample.
    rate = summary_stats(x * 1000.0 / (8.0 * run.size_bytes[:, None]))
    for stat in STAT_NAMES:
        np.testing.assert_allclose(run.stat(stat, "msg_rate_mpps"), rate[stat], rtol=1e-6,
                                   err_msg=f"{name} msg_rate {stat}")


def test_pairs_matrices(rf: RunFile) -> None:
    (run,) = rf.pairs
    e = entry("pairs")
    n = N_RANKS
    assert isinstance(run, PairsRun) and run.n_ranks == n
    assert run.schedule == "circle"
    assert run.lat_size_bytes == parse_size(e["lat_size"]) and run.bw_size_bytes == parse_size(e["bw_size"])
    assert run.lat_iters == e["iters"] and run.bw_windows == e["bw_iters"] and run.window == 64
    assert run.rounds_total == run.rounds_done == n - 1
    assert run.status_names[:4] == ("not_run", "ok", "failed", "timeout")
    off = ~np.eye(n, dtype=bool)
    assert np.all(np.diag(run.status) == 0) and np.all(run.status[off] == 1)
    assert np.all(np.diag(run.round) == -1)
    assert np.array_equal(run.round, run.round.T)
    for i in range(n):  # every rank meets every other rank once, one per round
        assert sorted(run.round[i][off[i]].tolist()) == list(range(n - 1))
    for m in (run.latency_ns_min, run.latency_ns_p50, run.latency_ns_p99):
        assert np.all(np.isnan(np.diag(m))) and np.all(np.isfinite(m[off]) & (m[off] > 0))
        np.testing.assert_array_equal(m, m.T)
    assert np.all(run.latency_ns_min[off] <= run.latency_ns_p50[off])
    assert np.all(run.latency_ns_p50[off] <= run.latency_ns_p99[off])
    assert np.all(np.isnan(np.diag(run.bw_gbps))) and np.all(run.bw_gbps[off] > 0)


def test_pair_samples_match_matrices(rf: RunFile) -> None:
    """The raw samples the C++ writer kept (keep_samples: all in the suite) give the row table's and
    the matrices' statistics, and the compact distribution decodes to their deciles and windows."""
    (run,) = rf.pairs
    assert run.layout == "rows" and run.keep_samples == "all"
    idx, ps = run.raw_samples()
    n = N_RANKS
    assert ps.pair.shape == (n * (n - 1) // 2, 2) and idx.tolist() == list(range(ps.pair.shape[0]))
    assert {frozenset(p) for p in ps.pair.tolist()} == {frozenset((i, j)) for i in range(n) for j in range(i)}
    assert np.array_equal(run.sample_pair_index(), ps.pair)
    assert ps.latency_ns.shape == (ps.pair.shape[0], run.lat_iters)
    assert ps.bw_gbps_fwd.shape == ps.bw_gbps_rev.shape == (ps.pair.shape[0], run.bw_windows)
    compact = run.load_pair_samples()
    rtol = 1e-6  # the row table holds float32
    for k, (a, b) in enumerate(ps.pair.tolist()):
        assert ps.round[k] == run.round[a, b]
        lat = summary_stats(ps.latency_ns[k][None, :])
        assert run.latency_ns_min[a, b] == pytest.approx(lat["min"][0], rel=rtol)
        assert run.latency_ns_p50[a, b] == pytest.approx(lat["p50"][0], rel=rtol)
        assert run.latency_ns_p99[a, b] == pytest.approx(lat["p99"][0], rel=rtol)
        assert run.bw_gbps[a, b] == pytest.approx(np.median(ps.bw_gbps_fwd[k]), rel=rtol)
        assert run.bw_gbps[b, a] == pytest.approx(np.median(ps.bw_gbps_rev[k]), rel=rtol)
        deciles = np.percentile(ps.latency_ns[k], np.arange(0, 101, 10))
        # codes span p50 x 2^(+-127/32); a tail beyond (a descheduled ping-pong) reads as that bound
        p50 = run.latency_ns_p50[a, b]
        expected = np.clip(deciles, p50 * 2 ** (-127 / 32), p50 * 2 ** (127 / 32))
        np.testing.assert_allclose(compact.latency_ns[k], expected, rtol=0.011)
        for raw, dec in ((ps.bw_gbps_fwd[k], compact.bw_gbps_fwd[k]), (ps.bw_gbps_rev[k], compact.bw_gbps_rev[k])):
            assert np.all(np.abs(dec - np.sort(raw)[::-1]) <= raw.max() / 510 * 1.0001)