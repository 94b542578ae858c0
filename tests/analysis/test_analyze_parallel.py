"""The analysis in several processes (fabscope_analyze/parallel.py) gives exactly what it gives in
one: the [N, N] views, the stall counts, the noise test's rows, accept's verdict and the report,
on a version-2 file with every fault the synthetic fabric has (a slow host, a bad cable, noisy
pairs, a lossy host with stalled windows, a failed pair). FABSCOPE_ANALYZE_WORKERS forces the
process count at any size (large files only go parallel by themselves). Also: the one-pass
stall counts equal the decoded windows' comparison, worker errors come back, figures written in
the background are all there, and `accept --report` writes what `accept` and `report` write."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO_ROOT, run_launcher
from synth import FabricModel, Faults, PairsSpec, SynthTopology, write_synthetic_run

NDR = REPO_ROOT / "configs" / "criteria" / "ndr400.yaml"
MODEL = FabricModel(peak_gbps=395.0, base_latency_ns=1500.0, noise=0.01, per_host_spread=0.005)
TOPO = SynthTopology(hosts_per_leaf=8, leaves_per_pod=4, spines_per_pod=4)
FAULTS = Faults(slow_hosts=(13,), bad_cables=(20,), noisy_pairs=((2, 60), (9, 33)), lossy_hosts=(41,),
                lossy_stall_rate=0.2)
SPEC = PairsSpec(bw_size_bytes=8 << 20, lat_iters=50, bw_windows=8, failed_pairs=((4, 7),), layout="rows",
                 keep_samples="suspect")
WORKERS = "FABSCOPE_ANALYZE_WORKERS"


@pytest.fixture(scope="module")
def v2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_run(tmp_path_factory.mktemp("par") / "v2.h5", 64, 3, model=MODEL, faults=FAULTS,
                               topology=TOPO, sweeps=(), pairs=SPEC)


def _pairs(path: Path):  # noqa: ANN202
    from fabscope_analyze.reader import read_results

    return read_results(path).pairs[0]


def test_views_are_the_same_in_one_process_and_in_three(v2: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    names = ("status", "bw_gbps", "latency_ns_p50", "latency_ns_p99", "latency_ns_min", "round")
    views = {}
    for w in ("1", "3"):
        monkeypatch.setenv(WORKERS, w)
        run = _pairs(v2)
        assert run.layout == "rows" and run.row_source() is not None
        run.prefetch("latency_ns_p99")
        views[w] = {k: np.array(run.matrix(k)) for k in names}
    for k in names:
        np.testing.assert_array_equal(views["1"][k], views["3"][k], err_msg=k)
    ok = views["1"]["status"] == 1
    assert ok.sum() == 64 * 63 - 2 and np.isfinite(views["1"]["bw_gbps"][ok]).all()


def test_stall_counts_in_one_pass_equal_the_decoded_windows_comparison(v2: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The sweep compares window codes with a limit per code; counted again here from the decoded
    windows (window < fraction x best), as the rule is written, they must agree exactly."""
    from fabscope_analyze.accept.pairs.stalls import stall_counts

    fraction = 0.25
    for w in ("1", "3"):
        monkeypatch.setenv(WORKERS, w)
        run = _pairs(v2)
        c = stall_counts(run, fraction)
        n = run.n_ranks
        windows, stalled = np.zeros(n, np.int64), np.zeros(n, np.int64)
        flows: dict[tuple[int, int], int] = {}
        for pair, fwd, rev in run.window_blocks():
            for x, s, d in ((fwd, pair[:, 0], pair[:, 1]), (rev, pair[:, 1], pair[:, 0])):
                finite = np.isfinite(x)
                usable = finite.sum(axis=1) >= 2
                best = np.fmax.reduce(np.where(finite, x, -np.inf), axis=1)
                with np.errstate(invalid="ignore"):
                    k = np.where(usable, (finite & (x < fraction * best[:, None])).sum(axis=1), 0)
                wn = np.where(usable, finite.sum(axis=1), 0)
                for ranks in (s, d):
                    np.add.at(windows, ranks, wn)
                    np.add.at(stalled, ranks, k)
                for a, b, kk in zip(s[k > 0], d[k > 0], k[k > 0]):
                    flows[(int(a), int(b))] = flows.get((int(a), int(b)), 0) + int(kk)
        np.testing.assert_array_equal(c.windows, windows)
        np.testing.assert_array_equal(c.stalled, stalled)
        got: dict[tuple[int, int], int] = {}
        for a, b, kk in zip(c.src.tolist(), c.dst.tolist(), c.count.tolist()):
            got[(a, b)] = got.get((a, b), 0) + kk
        assert got == flows
        assert stalled[41] > 10 * np.median(stalled), "the lossy host's windows stall"


def test_the_sweep_finds_every_row_of_the_wanted_pairs(v2: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fabscope_analyze.accept.pairs.stalls import sweep_rows

    monkeypatch.setenv(WORKERS, "3")
    run = _pairs(v2)
    n = run.n_ranks
    pair = run.sample_pair_index().astype(np.int64)
    keys_all = np.minimum(pair[:, 0], pair[:, 1]) * n + np.maximum(pair[:, 0], pair[:, 1])
    wanted = np.unique(keys_all[np.isin(pair, [13, 41]).any(axis=1)])
    for fraction in (0.25, None):
        swept = sweep_rows(run, fraction, wanted)
        assert swept is not None
        counts, found = swept
        assert (counts is None) == (fraction is None) and found is not None
        expect = np.flatnonzero(np.isin(keys_all, wanted))
        np.testing.assert_array_equal(found.rows, expect)
        np.testing.assert_array_equal(found.keys, keys_all[expect])
        direct = run.load_pair_samples(expect)
        for field in ("pair", "round", "latency_ns", "bw_gbps_fwd", "bw_gbps_rev"):
            np.testing.assert_array_equal(getattr(found.samples, field), getattr(direct, field), err_msg=field)


def test_accept_and_report_are_the_same_in_one_process_and_in_three(v2: Path, tmp_path: Path) -> None:
    out = {}
    for w in ("1", "3"):
        env = {**os.environ, WORKERS: w}
        proc = run_launcher(["accept", v2, "--criteria", NDR, "--json", tmp_path / f"v{w}.json", "-q"], env=env)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        proc = run_launcher(["report", v2, "-o", tmp_path / f"r{w}"], env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        out[w] = (json.loads((tmp_path / f"v{w}.json").read_text()),
                  (tmp_path / f"r{w}" / "index.html").read_text(),
                  sorted(p.name for p in (tmp_path / f"r{w}" / "figures").iterdir()))
    assert out["1"] == out["3"]
    verdict, page, figures = out["1"]
    assert [s["name"] for s in verdict["suspects"]][:1] and figures and all(
        (tmp_path / "r3" / "figures" / f).stat().st_size > 1000 for f in figures)
    assert 'src="figures/' in page


def test_accept_report_writes_the_verdict_and_the_report_of_the_two_commands(v2: Path, tmp_path: Path) -> None:
    proc = run_launcher(["accept", v2, "--criteria", NDR, "--json", tmp_path / "a.json", "-q"])
    assert proc.returncode == 1, proc.stderr
    proc = run_launcher(["report", v2, "--criteria", NDR, "-o", tmp_path / "separate"])
    assert proc.returncode == 0, proc.stderr
    proc = run_launcher(["accept", v2, "--criteria", NDR, "--json", tmp_path / "b.json", "--report", tmp_path / "one"])
    assert proc.returncode == 1, proc.stderr
    assert f"report: {tmp_path / 'one' / 'index.html'}" in proc.stdout
    assert json.loads((tmp_path / "a.json").read_text()) == json.loads((tmp_path / "b.json").read_text())
    assert (tmp_path / "one" / "index.html").read_text() == (tmp_path / "separate" / "index.html").read_text()
    assert 'id="verdict"' in (tmp_path / "one" / "index.html").read_text()
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    proc = run_launcher(["accept", v2, "--criteria", NDR, "--report", blocked / "r", "-q"])
    assert proc.returncode == 2 and "--report" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, \
        proc.stderr


def test_a_bad_workers_setting_is_one_line_and_exit_2(v2: Path) -> None:
    proc = run_launcher(["accept", v2, "--criteria", NDR, "-q"], env={**os.environ, WORKERS: "two"})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert WORKERS in proc.stderr and "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_count_rows_counts_like_a_sum() -> None:
    from fabscope_analyze.accept.pairs.stalls import count_rows

    rng = np.random.default_rng(7)
    for k in (1, 2, 3, 4, 5, 8, 12, 13, 31, 32):
        mask = rng.random((1000, k)) < 0.6
        np.testing.assert_array_equal(count_rows(mask), mask.sum(axis=1), err_msg=str(k))
    assert count_rows(np.ones((3, 32), dtype=bool)).tolist() == [32, 32, 32]


def _raise_value_error(x: int) -> int:
    if x == 3:
        raise ValueError(f"item {x} is bad")
    return x


def _die(x: int) -> int:
    if x == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return x


def test_fork_map_keeps_order_and_brings_errors_back() -> None:
    from fabscope_analyze import parallel
    from fabscope_analyze.reader import ResultFileError

    big = np.arange(1_000_000)  # inherited by the workers, not sent to them
    assert parallel.fork_map(lambda i: int(big[i * 1000]), list(range(7)), 3) == [i * 1000 for i in range(7)]
    with pytest.raises(ValueError, match="item 3 is bad"):
        parallel.fork_map(_raise_value_error, list(range(5)), 2)

    def bad_file(i: int) -> int:
        raise ResultFileError("/x.h5", f"dataset {i} is short", "re-run fabscope")

    with pytest.raises(ResultFileError) as err:
        parallel.fork_map(bad_file, [1, 2], 2)
    assert str(err.value).startswith("/x.h5: dataset ") and err.value.hint == "re-run fabscope"
    with pytest.raises(parallel.WorkerError, match=parallel.WORKERS_ENV):
        parallel.fork_map(_die, [0, 1, 2], 2)
    assert parallel.split(10, 3) == [(0, 3), (3, 6), (6, 10)] and parallel.split(2, 5) == [(0, 1), (1, 2)]


def test_figures_saved_in_the_background_are_all_written(tmp_path: Path) -> None:
    from fabscope_analyze import plots

    def fig(k: int):  # noqa: ANN202
        return plots.cdf_figure([plots.Cdf("x", [("values", np.arange(10.0 + k))])], title=f"figure {k}")

    with plots.background_saves(2):
        paths = [plots.save_figure(fig(k), tmp_path, f"f{k}") for k in range(5)]
    for png, svg in paths:
        assert png.stat().st_size > 1000 and svg.read_text().lstrip().startswith("<?xml")
    with pytest.raises(OSError, match="g0.png"):
        with plots.background_saves(2):
            plots.save_figure(fig(0), tmp_path / "missing", "g0")


def test_a_run_too_large_for_views_is_refused_in_one_line_and_trend_still_reads_it(tmp_path: Path) -> None:
    """Above MAX_VIEW_RANKS ranks accept, report and compare would need [N, N] views of several GB
    each (40,000 ranks took 23.7 GB): one line, exit 2, in about a second; trend reads the run's
    summary and works. The file comes from fabscope's own writer (fabscope-scale-bench)."""
    import subprocess

    from conftest import fabscope_bin
    from fabscope_analyze.reader import MAX_VIEW_RANKS

    bench = fabscope_bin().parent / "fabscope-scale-bench"
    if not bench.is_file():
        pytest.fail(f"{bench} not found: build the C++ side (bash .ci/build release)")
    ranks = MAX_VIEW_RANKS + 2
    path = tmp_path / "wide.h5"
    proc = subprocess.run([str(bench), "--ranks", str(ranks), "--rounds", "1", "--pool", "8", "--lat-iters", "20",
                           "--out", str(path)], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for args in (["accept", path, "--criteria", NDR, "-q"], ["report", path, "-o", tmp_path / "r"],
                 ["compare", path, path]):
        proc = run_launcher(args, timeout=60)
        assert proc.returncode == 2, (args[0], proc.stdout, proc.stderr)
        err = proc.stderr.strip()
        assert len(err.splitlines()) == 1 and f"{ranks:,} ranks" in err and f"{MAX_VIEW_RANKS:,}" in err, err
        assert "Traceback" not in err
    proc = run_launcher(["trend", path, path], timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "latency_ns_p50_median" in proc.stdout
