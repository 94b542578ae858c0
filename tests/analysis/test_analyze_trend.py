"""`fabscope-analyze trend`: history across runs, change points where the level shifts."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import run_cli
from fabscope_analyze.trend import change_points
from synth import CollSpec, FabricModel, write_synthetic_run

MODEL = FabricModel(noise=0.02)  # night-to-night noise well under the 5% threshold


def nightly(folder: Path, n_runs: int, step_at: int | None) -> list[Path]:
    """Runs a day apart, written in shuffled order (trend sorts by created_utc); from run
    `step_at` on, bandwidth is 12% lower and latency 11% higher."""
    folder.mkdir()
    paths = []
    for d in np.random.default_rng(0).permutation(n_runs):
        model = MODEL if step_at is None or d < step_at else replace(MODEL, peak_gbps=88.0, base_latency_ns=2000.0)
        paths.append(write_synthetic_run(folder / f"night-{(d * 7) % n_runs:02d}.h5", 6, 100 + int(d), model=model,
                                         coll=CollSpec(sizes=(8, 1 << 20), iters=9), fabric_seed=5,
                                         created_utc=f"2026-11-{10 + d:02d}T02:00:00Z"))
    return paths


def test_step_is_found_at_its_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nightly(tmp_path / "n", 10, step_at=6)
    code, out, err = run_cli(["trend", tmp_path / "n", "-o", tmp_path / "html", "--json", tmp_path / "t.json"], capsys)
    assert code == 0 and err == "", err
    t = json.loads((tmp_path / "t.json").read_text())
    assert t["created_utc"] == sorted(t["created_utc"])
    metrics = {s["metric"]: s for s in t["series"]}
    for name in ("lat/latency_ns_p50@1", "bw/bw_gbps_p50@256K", "pairs/bw_gbps_median", "pairs/latency_ns_p50_median",
                 "coll/allreduce/busbw_gbps@1M/n6"):
        cps = metrics[name]["change_points"]
        assert [c["created_utc"] for c in cps] == ["2026-11-16T02:00:00Z"], (name, cps)
        assert cps[0]["worse"]
    assert "change point at run 7 (2026-11-16T02:00:00Z" in out
    figs = list((tmp_path / "html" / "figures").glob("*.png"))
    assert len(figs) == len(t["series"]) and (tmp_path / "html" / "index.html").is_file()


def test_noise_only_has_no_change_points(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = nightly(tmp_path / "n", 8, step_at=None)
    code, out, _ = run_cli(["trend", *files, "--json", tmp_path / "t.json"], capsys)
    t = json.loads((tmp_path / "t.json").read_text())
    assert code == 0 and all(s["change_points"] == [] for s in t["series"]), out
    assert " 0 change points" in out


def test_metric_selection(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = nightly(tmp_path / "n", 4, step_at=None)
    code, out, _ = run_cli(["trend", *files, "--metric", "list"], capsys)
    assert code == 0 and "pairs/bw_gbps_min" in out.splitlines() and "coll/barrier/time_ns_p50/n6" in out.splitlines()
    code, out, _ = run_cli(["trend", *files, "--metric", "bw/*@1K", "--metric", "pairs/bw_gbps_min",
                            "--json", tmp_path / "t.json"], capsys)
    t = json.loads((tmp_path / "t.json").read_text())
    assert code == 0 and [s["metric"] for s in t["series"]] == ["bw/bw_gbps_p50@1K", "pairs/bw_gbps_min"]


def test_change_point_method() -> None:
    files = [f"f{i}" for i in range(12)]
    level = [100.0, 101, 99, 100, 100.5, 99.5, 90, 91, 89, 90, 90.5, 89.5]
    cps = change_points(level, 3, 0.05, True, files, files)
    assert [c.index for c in cps] == [6] and cps[0].worse and cps[0].change == pytest.approx(-0.1, abs=0.01)
    spike = [100.0, 101, 99, 100, 60, 100, 99, 101, 100, 100]  # one bad night is not a level shift
    assert change_points(spike, 3, 0.05, True, files, files) == []
    small = [100.0, 101, 99, 100, 98, 97, 98, 97.5, 97, 98]  # a real but small shift, under 5%
    assert change_points(small, 3, 0.05, True, files, files) == []
    assert change_points([1.0, 2.0], 3, 0.05, True, files, files) == []


def test_real_runs(real_results: Path, real_results_2: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["trend", real_results, real_results_2, "-o", tmp_path / "html", "--json",
                              tmp_path / "t.json"], capsys)
    assert code == 0 and err == "", err
    t = json.loads((tmp_path / "t.json").read_text())
    assert len(t["files"]) == 2 and {"pairs/bw_gbps_median", "coll/allreduce/busbw_gbps@64K/n4"} <= \
        {s["metric"] for s in t["series"]}
    assert all(len(s["values"]) == 2 for s in t["series"])


def by_date(files: list[Path]) -> list[Path]:
    def created(p: Path) -> str:
        with h5py.File(p, "r") as f:
            return str(f.attrs["created_utc"])
    return sorted(files, key=created)


def test_recent_change_point_for_the_worse_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # by created_utc: nights 0..9; the shift at night 6 is news while it is among the newest 3 runs
    by_day = by_date(nightly(tmp_path / "n", 10, step_at=6))
    code, out, _ = run_cli(["trend", *by_day[:8], "--json", tmp_path / "t.json"], capsys)
    t = json.loads((tmp_path / "t.json").read_text())
    assert code == 1 and t["alert"] and "recent: ALERT" in out, out
    assert {a["created_utc"] for a in t["alerts"]} == {"2026-11-16T02:00:00Z"}
    assert run_cli(["trend", *by_day[:8], "--alert", "none"], capsys)[0] == 0
    # ten runs: the shift is four runs old, history: reported, no alert unless --alert any
    code, out, _ = run_cli(["trend", *by_day], capsys)
    assert code == 0 and "change point at run 7" in out and "no recent change point for the worse" in out
    assert run_cli(["trend", *by_day, "--alert", "any"], capsys)[0] == 1


def test_change_point_for_the_better_does_not_alert(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    by_day = by_date(nightly(tmp_path / "n", 8, step_at=6))
    code, out, _ = run_cli(["trend", *reversed(by_day)], capsys)  # order is by created_utc, not argv
    assert code == 1
    # the same runs with the dates reversed: the level rises at the end (an improvement)
    for k, p in enumerate(by_day):
        with h5py.File(p, "r+") as f:
            f.attrs["created_utc"] = f"2026-12-{20 - k:02d}T02:00:00Z"
    code, out, _ = run_cli(["trend", *by_day, "--json", tmp_path / "t.json"], capsys)
    t = json.loads((tmp_path / "t.json").read_text())
    cps = [c for s in t["series"] for c in s["change_points"]]
    assert cps and not any(c["worse"] for c in cps) and code == 0, out


def _scale_bench_file(path: Path, ranks: int = 64) -> Path:
    """A whole pairs run of `ranks` ranks through fabscope's own writer (fabscope-scale-bench, built
    beside the fabscope binary), with one slow host."""
    import subprocess

    from conftest import fabscope_bin

    bench = fabscope_bin().parent / "fabscope-scale-bench"
    if not bench.is_file():
        pytest.fail(f"{bench} not found: build the C++ side (bash .ci/build release)")
    proc = subprocess.run([str(bench), "--ranks", str(ranks), "--rounds", str(ranks - 1), "--pool", "16",
                           "--slow-rank", "5", "--complete", "1", "--lat-iters", "200", "--out", str(path)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return path


def test_trend_reads_the_run_summary_and_it_agrees_with_the_rows(tmp_path: Path) -> None:
    from fabscope_analyze.reader import PairsRun, read_results
    from fabscope_analyze.trend import METRICS, metrics_of

    path = _scale_bench_file(tmp_path / "run.h5")
    rf = read_results(path)
    run = rf.pairs[0]
    assert run.summary is not None and run.summary.rows == 64 * 63 // 2
    assert int(run.summary.status_rows.sum()) == run.summary.rows
    from_summary = metrics_of(rf)
    rf2 = read_results(path)  # the same metrics from every row
    from_rows: dict = {}
    METRICS[PairsRun](replace(rf2.pairs[0], summary=None), rf2, run.info.name, from_rows)
    assert from_summary.keys() == from_rows.keys()
    for key, (value, unit, _, _) in from_rows.items():
        got = from_summary[key][0]
        if key.endswith("_median"):
            assert got == pytest.approx(value, rel=0.011), key  # within one bin (1.09 %)
        else:
            assert got == pytest.approx(value, rel=1e-6), key  # extremes and counts: exact


def test_a_summary_that_lags_its_rows_is_not_used_and_a_damaged_one_is_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fabscope_analyze.reader import read_results

    path = _scale_bench_file(tmp_path / "run.h5", ranks=16)
    with h5py.File(path, "r+") as f:
        g = f["runs"][next(iter(f["runs"]))]["summary"]
        g.attrs["rows"] = np.int64(g.attrs["rows"] + 8)  # a writer killed between summary and counts
    assert read_results(path).pairs[0].summary is None
    with h5py.File(path, "r+") as f:
        g = f["runs"][next(iter(f["runs"]))]["summary"]
        g.attrs["rows"] = np.int64(g.attrs["rows"] - 8)
        g["status_rows"][1] = -3
    code, _, err = run_cli(["trend", path], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "summary" in lines[0] and str(path) in lines[0], err
