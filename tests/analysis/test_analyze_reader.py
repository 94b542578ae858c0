"""fabscope_analyze.reader on synthetic files (synth.py): what it returns and what it tolerates."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from fabscope_analyze.reader import OtherRun, PairsRun, ResultFileError, SweepRun, check_results, read_results
from fabscope_analyze.stats import STAT_NAMES, summary_stats
from synth import HostSpec, PairsSpec, circle_rounds, write_synthetic_run


@pytest.mark.parametrize("n", [2, 3, 4, 5, 8, 9])
def test_circle_schedule_covers_every_pair_once(n: int) -> None:
    rounds = circle_rounds(n)
    assert len(rounds) == (n - 1 if n % 2 == 0 else n)
    seen = [frozenset(p) for r in rounds for p in r]
    assert len(seen) == len(set(seen)) == n * (n - 1) // 2
    for r in rounds:
        ranks = [x for p in r for x in p]
        assert len(ranks) == len(set(ranks))  # nobody twice in a round


def test_reads_what_synth_wrote(tmp_path: Path) -> None:
    hosts = HostSpec(hostnames=["a", "b", "c", "d", "e"], overrides={3: {"kernel": "Linux 5.10"}})
    path = write_synthetic_run(tmp_path / "r.h5", 5, seed=7, hosts=hosts, label="nightly", slow_host=2)
    rf = read_results(path, pair_samples=True)
    assert rf.schema_version == 1 and rf.n_ranks == 5 and rf.complete
    assert [h.hostname for h in rf.hosts] == ["a", "b", "c", "d", "e"]
    assert rf.hosts[3].kernel == "Linux 5.10" and rf.hosts[0].kernel != "Linux 5.10"
    assert rf.hosts[1].label == "1 b"
    assert len(rf.hosts[0].rdma_devices) == 1 and rf.hosts[0].rdma_devices[0].startswith("mlx5_0 port 1")
    assert [type(r) for r in rf.runs] == [SweepRun, SweepRun, SweepRun, PairsRun]
    assert [r.info.benchmark for r in rf.runs] == ["lat", "bw", "bibw", "pairs"]
    assert all(r.info.label == "nightly" for r in rf.runs)
    assert rf.incomplete_reasons() == []

    lat = rf.sweeps[0]
    assert lat.metric == "latency_ns" and lat.units == "ns" and lat.window is None
    assert lat.samples is not None and lat.samples.shape == (lat.size_bytes.size, lat.info.iters)
    expected = summary_stats(lat.samples)
    for stat in STAT_NAMES:
        np.testing.assert_allclose(lat.stat(stat), expected[stat])
    bw = rf.sweeps[1]
    assert bw.window == 64 and set(bw.summary) >= {"bw_gbps_overall", "msg_rate_mpps_p50"}

    pairs = rf.pairs[0]
    assert pairs.n_ranks == 5 and pairs.rounds_total == pairs.rounds_done == 5
    assert pairs.status_counts() == {"ok": 10}
    assert pairs.pair_samples is not None and pairs.pair_samples.pair.shape == (10, 2)
    for (a, b), lat_x, fwd in zip(pairs.pair_samples.pair, pairs.pair_samples.latency_ns,
                                  pairs.pair_samples.bw_gbps_fwd):
        assert pairs.latency_ns_p50[a, b] == pytest.approx(np.median(lat_x))
        assert pairs.bw_gbps[a, b] == pytest.approx(np.median(fwd))
    # the slow host stands out
    row = np.nanmedian(pairs.latency_ns_p50, axis=1)
    assert int(np.argmax(row)) == 2


def test_check_results_skips_samples(tmp_path: Path) -> None:
    rf = check_results(write_synthetic_run(tmp_path / "r.h5", 4))
    assert all(s.samples is None for s in rf.sweeps)
    assert rf.pairs[0].pair_samples is None and rf.pairs[0].n_pair_samples == 6


def test_partial_run(tmp_path: Path) -> None:
    path = write_synthetic_run(tmp_path / "r.h5", 6, pairs=PairsSpec(rounds_done=2, failed_pairs=((0, 5),)),
                               complete=False)
    rf = read_results(path)
    pairs = rf.pairs[0]
    assert (pairs.rounds_done, pairs.rounds_total) == (2, 5)
    counts = pairs.status_counts()
    assert counts["failed"] == 1 and counts["ok"] == 5 and counts["not_run"] == 15 - 6
    reasons = rf.incomplete_reasons()
    assert len(reasons) == 3
    assert "complete = 0" in reasons[0] and "2 of 5 rounds done" in reasons[2]


def test_unknown_benchmark_kind_is_kept(tmp_path: Path) -> None:
    path = write_synthetic_run(tmp_path / "r.h5", 4, pairs=None)
    with h5py.File(path, "r+") as f:
        g = f["runs"].create_group("03_allreduce")
        for key, value in f["runs/00_lat"].attrs.items():
            g.attrs[key] = value
        g.attrs["benchmark"] = "allreduce"
    rf = read_results(path)
    assert isinstance(rf.runs[-1], OtherRun) and rf.runs[-1].info.benchmark == "allreduce"


def test_tolerates_fixed_length_strings_and_one_element_attributes(tmp_path: Path) -> None:
    path = write_synthetic_run(tmp_path / "r.h5", 2, pairs=None)
    with h5py.File(path, "r+") as f:
        f.attrs["fabscope_version"] = np.bytes_("1.2.3")
        f.attrs["n_ranks"] = np.array([2], dtype=np.int64)
        del f["hosts/hostname"]
        f["hosts"].create_dataset("hostname", data=np.array([b"h0", b"h1"], dtype="S2"))
    rf = read_results(path)
    assert rf.fabscope_version == "1.2.3" and rf.n_ranks == 2
    assert [h.hostname for h in rf.hosts] == ["h0", "h1"]


def test_rank_column_must_be_in_order(tmp_path: Path) -> None:
    path = write_synthetic_run(tmp_path / "r.h5", 3, pairs=None)
    with h5py.File(path, "r+") as f:
        f["hosts/rank"][...] = np.array([0, 2, 1], dtype=np.int32)
    with pytest.raises(ResultFileError, match=r"/hosts/rank should be 0\.\.2 in order"):
        read_results(path)


def test_sizes_must_ascend(tmp_path: Path) -> None:
    path = write_synthetic_run(tmp_path / "r.h5", 2, pairs=None)
    with h5py.File(path, "r+") as f:
        sizes = f["runs/00_lat/size_bytes"]
        sizes[...] = sizes[()][::-1]
    with pytest.raises(ResultFileError, match="strictly ascending"):
        read_results(path)


def test_error_message_is_one_line() -> None:
    err = ResultFileError("x.h5", "bad\nthing", "fix\nit")
    assert str(err) == "x.h5: bad thing; fix it"
