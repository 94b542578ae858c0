"""Schema version 2 pairs runs (the pairs/ row table with compact distributions) read like the
version-1 matrices they replace: the same matrices, pseudo-samples within the codes' resolution,
the same verdicts from accept; a file cut short reads up to its last complete round; version-1
files still read."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import REPO_ROOT
from synth import FabricModel, Faults, PairsSpec, SynthTopology, write_synthetic_run

NDR = REPO_ROOT / "configs" / "criteria" / "ndr400.yaml"
MODEL = FabricModel(peak_gbps=395.0, base_latency_ns=1500.0, noise=0.01, per_host_spread=0.005)
TOPO = SynthTopology(hosts_per_leaf=8, leaves_per_pod=4, spines_per_pod=4)
FAULTS = Faults(slow_hosts=(13,), bad_cables=(20,), noisy_pairs=((2, 60), (9, 33)), lossy_hosts=(41,),
                lossy_stall_rate=0.2)
SPEC = PairsSpec(bw_size_bytes=8 << 20, lat_iters=50, bw_windows=8, failed_pairs=((4, 7),))


def pair_files(tmp: Path, keep: str = "all") -> tuple[Path, Path]:
    kw = dict(model=MODEL, faults=FAULTS, topology=TOPO, sweeps=())
    v1 = write_synthetic_run(tmp / "v1.h5", 64, 3, pairs=SPEC, **kw)
    v2 = write_synthetic_run(tmp / "v2.h5", 64, 3, pairs=PairsSpec(**{**SPEC.__dict__, "layout": "rows",
                                                                      "keep_samples": keep}), **kw)
    return v1, v2


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return pair_files(tmp_path_factory.mktemp("rows"))


def test_v2_reads_to_the_v1_matrices(files: tuple[Path, Path]) -> None:
    from fabscope_analyze.reader import read_results

    f1, f2 = read_results(files[0]), read_results(files[1])
    assert (f1.schema_version, f2.schema_version) == (1, 2)
    r1, r2 = f1.pairs[0], f2.pairs[0]
    assert (r1.layout, r2.layout) == ("matrices", "rows")
    for name in ("latency_ns_min", "latency_ns_p50", "latency_ns_p99", "bw_gbps"):
        np.testing.assert_allclose(r2.matrix(name), r1.matrix(name), rtol=1e-6, equal_nan=True, err_msg=name)
    assert np.array_equal(r1.status, r2.status) and np.array_equal(r1.round, r2.round)
    assert r2.status_counts() == r1.status_counts() == {"ok": 64 * 63 // 2 - 1, "failed": 1}
    assert r2.errors is not None and r2.errors.pair.tolist() == [[4, 7]]
    assert r2.n_pair_samples == 64 * 63 // 2 and r2.rounds_done == 63


def test_compact_pseudo_samples_match_the_raw_samples(files: tuple[Path, Path]) -> None:
    from fabscope_analyze.reader import read_results

    r1, r2 = read_results(files[0]).pairs[0], read_results(files[1]).pairs[0]
    assert np.array_equal(r1.sample_pair_index(), r2.sample_pair_index())
    rows = np.arange(0, r2.n_pair_samples, 7)
    raw, compact = r1.load_pair_samples(rows), r2.load_pair_samples(rows)
    ok = np.isfinite(raw.latency_ns).all(axis=1)
    assert compact.latency_ns.shape == (rows.size, 11)
    q_raw = np.percentile(raw.latency_ns[ok], np.arange(0, 101, 10), axis=1).T
    np.testing.assert_allclose(compact.latency_ns[ok], q_raw, rtol=0.011)  # half a 1/32-octave step
    for a, b in ((raw.bw_gbps_fwd, compact.bw_gbps_fwd), (raw.bw_gbps_rev, compact.bw_gbps_rev)):
        best = a[ok].max(axis=1, keepdims=True)
        err = np.abs(b[ok] - np.sort(a[ok], axis=1)[:, ::-1])
        assert np.all(err <= best / 510 * 1.0001)  # half a 1/255-of-best step
    assert np.isnan(compact.latency_ns[~ok]).all()
    # The raw samples themselves, and the row each belongs to.
    idx, kept = r2.raw_samples()
    assert idx.size == r2.n_pair_samples  # keep_samples all
    np.testing.assert_array_equal(kept.latency_ns[rows], r1.load_pair_samples(rows).latency_ns)


def test_accept_gives_the_same_verdict_on_both_layouts(files: tuple[Path, Path], tmp_path: Path) -> None:
    from fabscope_analyze.cli import main

    verdicts = []
    for f in files:
        out = tmp_path / (f.stem + ".json")
        code = main(["accept", str(f), "--criteria", str(NDR), "--json", str(out), "-q"])
        verdicts.append((code, json.loads(out.read_text())))
    (c1, v1), (c2, v2) = verdicts
    assert c1 == c2 == 1
    assert v1["verdict"] == v2["verdict"] == "fail"
    assert sorted((s["kind"], s["name"]) for s in v1["suspects"]) == \
        sorted((s["kind"], s["name"]) for s in v2["suspects"])
    # Every check, count and piece of evidence: the compact form decides as the raw samples do.
    assert v1["suspects"] == v2["suspects"]
    assert v1["runs"] == v2["runs"]
    assert "stalled" in json.dumps(v2["suspects"])


def test_suspect_retention_keeps_the_bad_pairs_raw_samples(tmp_path: Path) -> None:
    from fabscope_analyze.reader import read_results

    _, f = pair_files(tmp_path, keep="suspect")
    r = read_results(f).pairs[0]
    idx, kept = r.raw_samples()
    assert r.keep_samples == "suspect" and 0 < idx.size < r.n_pair_samples // 4
    pairs = {tuple(sorted(p)) for p in kept.pair.tolist()}
    # the failed pair, and the pairs of the slow host, the bad cable and the lossy host
    assert (4, 7) in pairs
    for host in (13, 20, 41):
        assert sum(host in p for p in pairs) >= 60, host
    assert np.array_equal(r.sample_pair_index()[idx], kept.pair)


def test_a_round_cut_short_is_not_read(files: tuple[Path, Path], tmp_path: Path) -> None:
    from fabscope_analyze.reader import read_results

    cut = tmp_path / "cut.h5"
    cut.write_bytes(files[1].read_bytes())
    with h5py.File(cut, "a") as f:
        g = f["runs/00_pairs"]
        per_round = 32
        g.attrs["rounds_done"] = np.int64(10)
        g.attrs["complete"] = np.int8(0)
        # rows_done counts one round too many (a writer killed between its attributes)
        g.attrs["rows_done"] = np.int64(11 * per_round)
    r = read_results(cut).pairs[0]
    assert r.n_pair_samples == 10 * per_round
    assert int((r.status > 0).sum()) // 2 == 10 * per_round
    assert (r.round < 10).all() and int((r.round >= 0).sum()) // 2 == 10 * per_round


def test_v2_file_missing_a_column_is_one_clear_error(files: tuple[Path, Path], tmp_path: Path) -> None:
    from fabscope_analyze.reader import ResultFileError, read_results

    bad = tmp_path / "bad.h5"
    bad.write_bytes(files[1].read_bytes())
    with h5py.File(bad, "a") as f:
        del f["runs/00_pairs/pairs/bw_rev_q"]
    with pytest.raises(ResultFileError, match="bw_rev_q is missing"):
        read_results(bad)
