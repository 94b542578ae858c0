"""Large fabrics and topology: the synthetic generator at scale, the layout read from /topology,
aggregated heatmaps with drill-downs, and what memory the reader keeps."""

from __future__ import annotations

from pathlib import Path

import h5py
import matplotlib.image
import numpy as np
import pytest

from conftest import REPO_ROOT
from fabscope_analyze import report
from fabscope_analyze.layout import CROSS_SPINE, SAME_HOST, SAME_LEAF, SAME_POD, UNKNOWN, build_layout
from fabscope_analyze.reader import LARGE_MATRIX_RANKS, read_results
from fabscope_analyze.stats import summary_stats
from synth import FabricModel, Faults, PairsSpec, SynthTopology, circle_round, circle_rounds, write_synthetic_run

TOPO = SynthTopology(hosts_per_leaf=16, leaves_per_pod=4, spines_per_pod=4)


@pytest.mark.parametrize("n", [2, 3, 4, 5, 8, 9, 16, 33])
def test_closed_form_round_matches_the_schedule(n: int) -> None:
    for r, pairs in enumerate(circle_rounds(n)):
        for a, b in pairs:
            assert circle_round(n, np.array([a]), np.array([b]))[0] == r


def test_layout_from_topology(tmp_path: Path) -> None:
    path = write_synthetic_run(tmp_path / "t.h5", 80, 1, topology=TOPO, sweeps=(), pairs=PairsSpec(lat_iters=5))
    rf = read_results(path)
    lay = build_layout(rf)
    assert lay.has_leaves and lay.has_routes and lay.n_planes == 4 and len(lay.leaf_names) == 5
    assert lay.leaf_names[0] == "leaf0001" and lay.leaf_name(17) == "leaf0002"
    cls = lay.hop_class(np.array([0]), np.array([0, 1, 20, 70]))[0]
    assert cls.tolist() == [SAME_HOST, SAME_LEAF, SAME_POD, CROSS_SPINE]  # leaves 0,1 | pod 0 vs pod 1
    assert lay.classes_present() == ["same_leaf", "same_pod", "cross_spine"]
    up, down = lay.flow_cables(np.array([0, 0]), np.array([1, 21]))
    assert up.tolist() == [-1, 0 * 4 + 1] and down.tolist() == [-1, 1 * 4 + 1]  # 21 % 16 % 4 = 1
    assert lay.cable_name(1) == "leaf0001 <-> spine0002"
    names, bounds = lay.blocks()
    assert names == [f"leaf{i:04d}" for i in range(1, 6)] and bounds.tolist() == [0, 16, 32, 48, 64, 80]
    assert lay.rate_source == "topology" and np.all(lay.rate_gbps == 400)


def test_layout_without_topology_is_flat(tmp_path: Path) -> None:
    path = write_synthetic_run(tmp_path / "f.h5", 6, 1, sweeps=(), pairs=PairsSpec(lat_iters=5))
    with h5py.File(path, "r+") as f:  # two ranks on one host
        f["hosts/hostname"][1] = "node000"
    lay = build_layout(read_results(path))
    assert not lay.has_leaves and not lay.has_routes and lay.order.tolist() == list(range(6))
    assert lay.hop_class(np.array([0]))[0].tolist() == [SAME_HOST, SAME_HOST] + [UNKNOWN] * 4
    assert lay.rank_name(1) == "node000/rank 1" and lay.rank_name(2) == "node002"
    assert lay.rate_source == "rdma_devices" and lay.rate_gbps[0] == 400


def test_generator_subset_mode_is_schema_valid(tmp_path: Path) -> None:
    pairs = PairsSpec(lat_iters=7, bw_windows=4, samples_all_max=50, sample_subset=300, counters=True)
    faults = Faults(slow_hosts=(3,), noisy_pairs=((10, 90),))
    path = write_synthetic_run(tmp_path / "s.h5", 120, 2, sweeps=(), pairs=pairs, faults=faults, topology=TOPO)
    rf = read_results(path, pair_samples=True)
    (run,) = rf.pairs
    ps = run.pair_samples
    assert ps is not None and 300 < ps.pair.shape[0] < 120 * 119 // 2  # a subset
    keys = {frozenset(p) for p in ps.pair.tolist()}
    assert frozenset((10, 90)) in keys and sum(3 in k for k in keys) >= 64
    np.testing.assert_array_equal(ps.round, run.round[ps.pair[:, 0], ps.pair[:, 1]])
    lat = summary_stats(ps.latency_ns)
    np.testing.assert_allclose(run.latency_ns_p50[ps.pair[:, 0], ps.pair[:, 1]], lat["p50"])
    np.testing.assert_allclose(run.bw_gbps[ps.pair[:, 1], ps.pair[:, 0]], np.median(ps.bw_gbps_rev, axis=1))
    off = ~np.eye(120, dtype=bool)
    assert np.all(np.isfinite(run.bw_gbps[off])) and np.all(run.latency_ns_min[off] <= run.latency_ns_p50[off])
    np.testing.assert_array_equal(run.latency_ns_p50, run.latency_ns_p50.T)
    assert run.info.counters is not None and run.info.counters.delta.shape == (120, 6)


def test_large_pairs_matrices_load_lazily(tmp_path: Path) -> None:
    n = LARGE_MATRIX_RANKS + 8
    path = write_synthetic_run(tmp_path / "big.h5", n, 1, sweeps=(), pairs=PairsSpec(lat_iters=3, bw_windows=2,
                                                                                    samples_all_max=10,
                                                                                    sample_subset=100))
    (run,) = read_results(path).pairs
    assert run._cache == {}  # nothing read yet
    assert run.bw_gbps.dtype == np.float32 and run.bw_gbps.shape == (n, n)
    assert set(run._cache) == {"bw_gbps", "status"}  # status: to check the ok pairs' values
    assert run.status_counts() == {"ok": n * (n - 1) // 2}
    run.release()
    assert run._cache == {}


@pytest.fixture(scope="module")
def big_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = FabricModel(peak_gbps=395.0, noise=0.01, per_host_spread=0.005)
    faults = Faults(slow_hosts=(100,), bad_uplinks=((9, 2),))
    topo = SynthTopology(hosts_per_leaf=16, leaves_per_pod=8, spines_per_pod=4)
    tmp = tmp_path_factory.mktemp("big")
    path = write_synthetic_run(tmp / "big.h5", 320, 1, model=model, faults=faults, topology=topo, sweeps=(),
                               pairs=PairsSpec(bw_size_bytes=8 << 20, lat_iters=10, bw_windows=4, counters=True))
    from fabscope_analyze.cli import main

    assert main(["report", str(path), "-o", str(tmp / "r"), "--criteria",
                 str(REPO_ROOT / "configs" / "criteria" / "ndr400.yaml")]) == 0
    return tmp / "r"


def test_large_report_aggregates_and_drills_down(big_report: Path) -> None:
    figs = sorted(p.name for p in (big_report / "figures").glob("*.png"))
    drills = [f for f in figs if "-drill-" in f]
    assert {"00-00_pairs-bw-blocks.png", "00-00_pairs-latency-blocks.png", "00-00_pairs-status-blocks.png",
            "00-00_pairs-cdf.png"} <= set(figs)
    assert len(drills) == report.MAX_DRILLDOWNS
    assert "00-00_pairs-drill-0006.png" in drills  # the slow host's leaf (rank 100 // 16)
    assert "00-00_pairs-drill-0009.png" in drills  # the leaf of the bad uplink
    for f in figs:
        h, w = matplotlib.image.imread(big_report / "figures" / f).shape[:2]
        assert w <= 2500 and h <= 2500, f  # never a figure that grows with the fabric
    text = (big_report / "index.html").read_text(encoding="utf-8")
    assert "320 ranks: heatmaps show blocks" in text and "Acceptance: FAIL" in text
    assert "<strong>node100</strong>" in text and "<strong>leaf0010 &lt;-&gt; spine0007</strong>" in text
    counters = text.split('class="counters"')[1].split("</table>")[0]
    assert "<td>port_xmit_wait</td><td>319 of 320</td>" in counters  # -1 = absent is not counted


def _groups_by_rescanning(pairs: list[tuple[int, int]], n: int) -> list[tuple[int, list[tuple[int, int]]]]:
    """The grouping as accept first did it (a full rescan per group): the reference."""
    out, remaining = [], list(pairs)
    while remaining:
        ends = np.bincount(np.array(remaining).ravel(), minlength=n)
        e = int(np.argmax(ends))
        if ends[e] < 2:
            out += [(-1, [p]) for p in remaining]
            break
        out.append((e, [p for p in remaining if e in p]))
        remaining = [p for p in remaining if e not in p]
    return out


@pytest.mark.parametrize("seed", range(8))
def test_shared_endpoint_grouping_matches_the_rescan(seed: int) -> None:
    from fabscope_analyze.accept.pairs.suspects import _shared_endpoint_groups

    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 60))
    keys = np.unique(rng.integers(0, n * n, int(rng.integers(1, 3 * n))))
    pairs = [(int(min(k // n, k % n)), int(max(k // n, k % n))) for k in keys if k // n != k % n]
    pairs = list(dict.fromkeys(pairs))
    rng.shuffle(pairs)
    assert _shared_endpoint_groups(pairs, n) == _groups_by_rescanning(pairs, n)


def test_row_percentiles_match_numpy() -> None:
    from fabscope_analyze.stats import nanpercentile_rows

    rng = np.random.default_rng(4)
    x = rng.lognormal(3, 0.5, (500, 12))
    x[rng.random(x.shape) < 0.2] = np.nan
    x[7] = np.nan  # a row without a value
    x[9, :11] = np.nan  # one value
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        ref = np.nanpercentile(x, [10, 50, 90], axis=1).T
    np.testing.assert_allclose(nanpercentile_rows(x, (10, 50, 90)), ref, rtol=1e-12, equal_nan=True)
