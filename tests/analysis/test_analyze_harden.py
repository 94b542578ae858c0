"""Hostile values in files the schema accepts (issue 18): every command refuses them with one line
and exit 2 instead of judging, drawing or comparing numbers that are not measurements."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import pytest

from conftest import REPO_ROOT, run_cli
from synth import write_synthetic_run

from fabscope_analyze import reader
from fabscope_analyze.reader import ResultFileError, read_results

LOCAL = REPO_ROOT / "configs" / "criteria" / "local.yaml"
PAIRS = "runs/03_pairs"


def _ok_cell(f: h5py.File) -> tuple[int, int]:
    status = f[f"{PAIRS}/status"][()]
    i, j = np.argwhere(status == 1)[0]
    return int(i), int(j)


def _poison(path: Path, name: str, value: float) -> tuple[int, int]:
    """Put `value` into one ok cell of a pairs matrix (both halves of a symmetric latency matrix)."""
    with h5py.File(path, "r+") as f:
        i, j = _ok_cell(f)
        ds = f[f"{PAIRS}/{name}"]
        m = ds[()]
        m[i, j] = value
        if name != "bw_gbps":
            m[j, i] = value
        ds[...] = m
    return i, j


def assert_exit_2_one_line(code: int, out: str, err: str, *needles: str) -> None:
    assert code == 2, (code, out, err)
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


BAD_VALUES = [
    ("bw_gbps", float("nan")), ("bw_gbps", float("inf")), ("bw_gbps", float("-inf")), ("bw_gbps", 1e308),
    ("bw_gbps", -5.0), ("bw_gbps", 2e5),
    ("latency_ns_p50", float("nan")), ("latency_ns_p50", float("inf")), ("latency_ns_min", 0.0),
    ("latency_ns_p99", -3.0),
]


@pytest.mark.parametrize("command", ["accept", "report", "compare", "trend"])
@pytest.mark.parametrize("name,value", BAD_VALUES)
def test_non_measurement_in_ok_pair_is_a_file_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     command: str, name: str, value: float) -> None:
    good = write_synthetic_run(tmp_path / "good.h5", 5, seed=1)
    bad = write_synthetic_run(tmp_path / "bad.h5", 5, seed=1)
    i, j = _poison(bad, name, value)
    args = {"accept": ["accept", bad, "--criteria", LOCAL],
            "report": ["report", bad, "-o", tmp_path / "rep"],
            "compare": ["compare", good, bad],
            "trend": ["trend", good, bad]}[command]
    code, out, err = run_cli(args, capsys)
    assert_exit_2_one_line(code, out, err, str(bad), f"/{PAIRS}/{name}", f"[{min(i, j) if name != 'bw_gbps' else i}, ",
                           "status says that pair is ok")
    assert not (tmp_path / "rep").exists()


def test_nan_in_a_pair_not_measured_is_fine(tmp_path: Path) -> None:
    path = write_synthetic_run(tmp_path / "r.h5", 5, seed=1)
    with h5py.File(path, "r+") as f:
        status = f[f"{PAIRS}/status"][()]
        status[0, 1] = status[1, 0] = 2  # failed: its cells need not hold numbers
        f[f"{PAIRS}/status"][...] = status
        bw = f[f"{PAIRS}/bw_gbps"][()]
        bw[0, 1] = np.inf
        f[f"{PAIRS}/bw_gbps"][...] = bw
    read_results(path)


def test_large_runs_check_values_when_the_matrix_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_synthetic_run(tmp_path / "r.h5", 5, seed=1)
    _poison(path, "bw_gbps", float("nan"))
    monkeypatch.setattr(reader, "LARGE_MATRIX_RANKS", 2)  # read lazily, as for 10,000 ranks
    run = read_results(path).pairs[0]
    assert "bw_gbps" not in run._cache
    with pytest.raises(ResultFileError, match="status says that pair is ok"):
        run.bw_gbps
    run.latency_ns_p50  # a clean matrix still reads


@pytest.mark.parametrize("name,units", [("bw_gbps", "GB/s"), ("latency_ns_p50", "us")])
def test_pairs_matrix_in_other_units_is_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str,
                                                 units: str) -> None:
    path = write_synthetic_run(tmp_path / "r.h5", 4, seed=1)
    with h5py.File(path, "r+") as f:
        f[f"{PAIRS}/{name}"].attrs["units"] = units
    with pytest.raises(ResultFileError, match=f"has units '{units}'"):
        read_results(path)
    code, out, err = run_cli(["accept", path, "--criteria", LOCAL], capsys)
    assert_exit_2_one_line(code, out, err, f"/{PAIRS}/{name}", f"has units '{units}'")


def test_number_formatting_stays_short() -> None:
    from fabscope_analyze import htmlpage, plots, verdict

    for f in (htmlpage.fmt, verdict.fmt):
        assert len(f(1e308)) < 12, f(1e308)
        assert len(f(-1e308)) < 12
        assert f(123456.0).replace(",", "") == "123456"  # ordinary large values keep their digits
        assert f(12.3456) == "12.35"
    assert htmlpage.fmt(float("inf")) == "\u2013" and verdict.fmt(float("nan")) == "n/a"
    for v in (1e308, -1e308, 5e9, float("inf")):
        assert len(plots.compact_number(v)) <= 7, plots.compact_number(v)
    assert plots.compact_number(123456.0) == "123k"
    from fabscope_analyze import compare

    assert len(compare._num(1e308)) < 12 and compare._num(123456.0) == "123,456"
    assert len(compare._pct(1e300)) < 12 and compare._pct(0.123) == "+12.3%"


def test_report_of_huge_sweep_values_has_no_long_numbers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_synthetic_run(tmp_path / "r.h5", 4, seed=1)
    with h5py.File(path, "r+") as f:
        for key in f["runs/01_bw/summary"]:
            ds = f[f"runs/01_bw/summary/{key}"]
            ds[...] = np.full(ds.shape, 1e300)
    code, out, err = run_cli(["report", path, "-o", tmp_path / "rep"], capsys)
    assert code == 0, err
    page = (tmp_path / "rep" / "index.html").read_text()
    assert not re.search(r"\d[\d,]{40,}", page)


def _criteria(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("opener,closer", [("[", "]"), ("{a: ", "}")])
def test_deeply_nested_criteria_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], opener: str,
                                            closer: str) -> None:
    crit = _criteria(tmp_path, "fabscope_criteria: 1\nsweeps: " + opener * 3000 + "1" + closer * 3000 + "\n")
    run = write_synthetic_run(tmp_path / "r.h5", 3, seed=1)
    code, out, err = run_cli(["accept", run, "--criteria", crit], capsys)
    assert_exit_2_one_line(code, out, err, str(crit), "nested too deeply")


@pytest.mark.parametrize("text,size", [("8388608", 8 << 20), ("8M", 8 << 20), ("8MiB", 8 << 20), ("64K", 65536),
                                       ("64k", 65536), ("1G", 1 << 30), ("16B", 16)])
def test_criteria_sizes_accepted(tmp_path: Path, text: str, size: int) -> None:
    from fabscope_analyze.criteria import load_criteria

    crit = load_criteria(_criteria(tmp_path, f"fabscope_criteria: 1\ncoll: {{min_size: {text}}}\n"))
    assert crit.coll is not None and crit.coll.min_size == size


@pytest.mark.parametrize("text,why", [("8Mb", "bits"), ("8mb", "bits"), ("8Kb", "bits"), ("8MB", "ambiguous"),
                                      ("8 M", ""), ("1.5M", ""), ("-8", ""), ("8T", "")])
def test_criteria_sizes_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, why: str) -> None:
    crit = _criteria(tmp_path, f"fabscope_criteria: 1\npairs:\n  bandwidth: {{min_size: {text}}}\n")
    run = write_synthetic_run(tmp_path / "r.h5", 3, seed=1)
    code, out, err = run_cli(["accept", run, "--criteria", crit], capsys)
    assert_exit_2_one_line(code, out, err, str(crit), "pairs.bandwidth.min_size", text, why, "64K or 8M")


def test_duplicate_criteria_key_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    crit = _criteria(tmp_path, "fabscope_criteria: 1\npairs:\n  bandwidth:\n    min_gbps: 10\n"
                               "    min_fabric_fraction: 0.5\n    min_gbps: 20\n")
    run = write_synthetic_run(tmp_path / "r.h5", 3, seed=1)
    code, out, err = run_cli(["accept", run, "--criteria", crit], capsys)
    assert_exit_2_one_line(code, out, err, str(crit), "line 6", "duplicate key 'min_gbps'", "first given on line 4")


def test_duplicate_top_level_key_is_refused(tmp_path: Path) -> None:
    from fabscope_analyze.criteria import CriteriaError, load_criteria

    with pytest.raises(CriteriaError, match="line 3, column 1: duplicate key 'pairs'"):
        load_criteria(_criteria(tmp_path, "fabscope_criteria: 1\npairs: {}\npairs: {}\n"))


# --- compare: what is comparable (issue 18, rows 5 and 6) -------------------------------------------


def test_compare_without_a_run_in_common_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from synth import CollSpec

    sweeps_only = write_synthetic_run(tmp_path / "a.h5", 4, seed=1, pairs=None)
    coll_only = write_synthetic_run(tmp_path / "b.h5", 4, seed=1, sweeps=(), pairs=None, coll=CollSpec())
    code, out, err = run_cli(["compare", sweeps_only, coll_only, "--json", tmp_path / "c.json"], capsys)
    assert_exit_2_one_line(code, out, err, str(sweeps_only), str(coll_only), "no run in common",
                           "benchmarks in base: bibw, bw, lat; in new: coll")
    assert out == "" and not (tmp_path / "c.json").exists()


def test_compare_of_different_host_sets_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from synth import HostSpec

    names = [f"node{i:03d}" for i in range(6)]
    base = write_synthetic_run(tmp_path / "a.h5", 6, seed=1, fabric_seed=9, hosts=HostSpec(hostnames=names))
    moved = ["spare1", "spare0"] + names[2:]  # ranks 0 and 1 (the size sweeps) on other hosts
    new = write_synthetic_run(tmp_path / "b.h5", 6, seed=2, fabric_seed=9, hosts=HostSpec(hostnames=moved))
    code, out, err = run_cli(["compare", base, new, "--json", tmp_path / "c.json"], capsys)
    assert code in (0, 1), err
    assert "the host sets differ (only in base (2): node000, node001; only in new (2): spare1, spare0)" in out
    assert "run lat: measured between node000 and node001 in base but spare1 and spare0 in new: not compared" in out
    rows = json.loads((tmp_path / "c.json").read_text())["rows"]
    assert rows and not any(r["benchmark"] in ("lat", "bw", "bibw") for r in rows)  # sweeps left out
    fabric = next(r for r in rows if r["metric"] == "pair bandwidth, median over pairs")
    assert fabric["key"].startswith("4 hosts")  # pairs: only the hosts in both files
    host_rows = {r["key"] for r in rows if r["metric"] == "pair bandwidth"}
    assert host_rows and not any("node000" in k or "spare" in k for k in host_rows)
    # the same hosts: no note, sweeps compared
    same = write_synthetic_run(tmp_path / "s.h5", 6, seed=2, fabric_seed=9, hosts=HostSpec(hostnames=names))
    code, out, _ = run_cli(["compare", base, same, "--json", tmp_path / "s.json"], capsys)
    assert "host sets differ" not in out
    assert any(r["benchmark"] == "lat" for r in json.loads((tmp_path / "s.json").read_text())["rows"])


def test_change_from_zero_is_not_a_percentage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fabscope_analyze.compare import Row, change_text, relative_change
    from synth import PairsSpec

    assert relative_change(0, 0) == 0 and relative_change(0, 3) == float("inf") and relative_change(2, 3) == 0.5

    def row(base: float, new: float) -> Row:
        return Row("r", "pairs", "m", "k", "x", False, base, new, relative_change(base, new))

    assert change_text(row(0, 0)) == "no change" and change_text(row(0, 5)) == "n/a"
    assert change_text(row(2, 3)) == "+50.0%" and change_text(row(4, 4)) == "no change"
    # no window stalls in either file, but many more windows in BASE: was "+2090.9%"
    base = write_synthetic_run(tmp_path / "a.h5", 6, seed=1, fabric_seed=9, pairs=PairsSpec(bw_windows=40))
    new = write_synthetic_run(tmp_path / "b.h5", 6, seed=2, fabric_seed=9, pairs=PairsSpec(bw_windows=2))
    code, out, _ = run_cli(["compare", base, new, "--json", tmp_path / "c.json", "--rows", "1000"], capsys)
    stall = next(r for r in json.loads((tmp_path / "c.json").read_text())["rows"]
                 if r["metric"] == "stalled bandwidth windows")
    assert stall["base"] == 0 and stall["new"] == 0 and stall["change"] == 0 and not stall["regression"]
    line = next(x for x in out.splitlines() if "stalled bandwidth" in x)
    assert "no change" in line and not re.search(r"[+-][0-9.]+%", line), line
    code, out, _ = run_cli(["compare", base, new, "--rows", "1000", "-o", tmp_path / "html"], capsys)
    page = (tmp_path / "html" / "index.html").read_text()
    assert "+2090" not in page and "no change" in page


# --- benchmarks this version does not analyse (row 7) ------------------------------------------------


def _add_unknown_run(path: Path, group: str, benchmark: str) -> None:
    with h5py.File(path, "r+") as f:
        g = f["runs"].create_group(group)
        for key, value in (("benchmark", benchmark), ("name", benchmark), ("transport", "verbs"), ("label", ""),
                           ("started_utc", "2026-11-28T08:00:01Z"), ("finished_utc", "2026-11-28T08:00:02Z")):
            g.attrs[key] = value
        for key in ("iters", "warmup"):
            g.attrs[key] = np.int64(10)
        g.attrs["complete"] = np.int8(1)
        g.create_dataset("whatever", data=np.arange(3.0))


@pytest.mark.parametrize("command", ["accept", "report", "compare"])
def test_unknown_benchmark_is_a_note_per_run(tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str) -> None:
    plain = write_synthetic_run(tmp_path / "plain.h5", 4, seed=1)
    path = write_synthetic_run(tmp_path / "r.h5", 4, seed=1)
    _add_unknown_run(path, "04_rate", "rate")
    _add_unknown_run(path, "05_quantum", "quantum_foam")
    args = {"accept": ["accept", path, "--criteria", LOCAL],
            "report": ["report", path, "-o", tmp_path / "rep"],
            "compare": ["compare", path, path]}[command]
    code, out, err = run_cli(args, capsys)
    reference = {"accept": ["accept", plain, "--criteria", LOCAL],
                 "report": ["report", plain, "-o", tmp_path / "rep2"],
                 "compare": ["compare", plain, plain]}[command]
    code_plain, _, err_plain = run_cli(reference, capsys)
    assert code == code_plain, err  # a skip is not an error
    assert err_plain == ""
    lines = err.splitlines()
    per_file = 2 if command == "compare" else 1
    assert len(lines) == 2 * per_file, err
    assert f"fabscope-analyze: note: {path}: runs/04_rate: benchmark 'rate' is not analysed by this version; skipped" \
        in lines
    assert any("runs/05_quantum: benchmark 'quantum_foam' is not analysed" in x for x in lines)


# --- planted-bug guards (row 8) ----------------------------------------------------------------------


@pytest.mark.parametrize("failed_peers,named", [(2, False), (7, True), (13, True)])
def test_host_named_only_above_the_default_host_fraction(tmp_path: Path, failed_peers: int, named: bool) -> None:
    """21 hosts: host 0 has 20 peers (40 directed flows); 13 failed pairs are 65% of its flows (above
    the default attribution.host_fail_fraction 0.5, and above the background-adjusted bar: 6% of all
    flows fail, so the bar is ~53%). 7 (35%, below the fraction) are named too since issue 15: no
    other pair fails, so the counting test singles host 0 out; 2 are min_pairs but no outlier among
    21 hosts at the test's false-discovery rate, so they stay pairs."""
    from fabscope_analyze import accept
    from fabscope_analyze.criteria import load_criteria
    from synth import PairsSpec

    path = write_synthetic_run(tmp_path / "r.h5", 21, seed=4, sweeps=(),
                               pairs=PairsSpec(failed_pairs=tuple((0, j) for j in range(1, failed_peers + 1))))
    crit = load_criteria(_criteria(tmp_path, "fabscope_criteria: 1\npairs: {failed_pairs: fail}\n"))
    # the default under test; asserted directly because the background bar (0.5 + background / 2)
    # hides a lower default from the verdict
    assert crit.attribution.host_fail_fraction == 0.5
    verdict = accept.evaluate(read_results(path), crit)
    assert verdict.status == accept.FAIL
    hosts = [s for s in verdict.suspects if s.kind == "host"]
    if named:
        assert [s.name for s in hosts] == ["node000"], verdict.suspects
        assert hosts[0].failing == 2 * failed_peers and hosts[0].judged == 40
    else:
        assert hosts == [], hosts
        assert {s.kind for s in verdict.suspects} <= {"pair"}, verdict.suspects


def test_bh_q_values() -> None:
    from fabscope_analyze.stats import bh_adjust

    np.testing.assert_allclose(bh_adjust(np.array([0.04, 0.041])), [0.041, 0.041])
    np.testing.assert_allclose(bh_adjust(np.array([0.041, 0.04])), [0.041, 0.041])
    np.testing.assert_allclose(bh_adjust(np.array([0.01, 0.02, 0.03, 0.5])), [0.04, 0.04, 0.04, 0.5])
    np.testing.assert_allclose(bh_adjust(np.array([0.9, np.nan, 0.5])), [0.9, np.nan, 0.9])
    assert bh_adjust(np.array([0.9, 0.95]))[1] <= 1.0
    rng = np.random.default_rng(5)
    for _ in range(50):
        p = rng.uniform(0, 1, rng.integers(1, 200)) ** 3
        q = bh_adjust(p)
        order = np.argsort(p, kind="stable")
        assert np.all(np.diff(q[order]) >= -1e-15)  # monotone in p
        assert np.all(q >= p - 1e-15) and np.all(q <= 1)
        m = p.size  # the textbook definition: q_(i) = min over j >= i of p_(j) m / j
        ranked = p[order] * m / np.arange(1, m + 1)
        expect = np.minimum(1, np.minimum.accumulate(ranked[::-1])[::-1])
        np.testing.assert_allclose(q[order], expect)


def test_report_rows_follow_topo_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ranks spread over the leaves (leaf = rank % 3): the heatmaps show the hosts of a leaf
    together, in /topology/hosts/topo_order, not in rank order."""
    from fabscope_analyze import plots
    from fabscope_analyze.report import write_report
    from synth import SynthTopology

    n = 12
    path = write_synthetic_run(tmp_path / "r.h5", n, seed=1, sweeps=(), topology=SynthTopology(hosts_per_leaf=4))
    leaf = np.arange(n) % 3
    position = np.empty(n, dtype=np.int64)
    position[np.lexsort((np.arange(n), leaf))] = np.arange(n)
    with h5py.File(path, "r+") as f:
        for name in ("hosts/leaf", "hosts/rack", "nics/leaf"):
            f[f"topology/{name}"][...] = leaf
        f["topology/hosts/topo_order"][...] = position
        del f["topology/hosts/leaf_name"]
    seen: list[tuple[np.ndarray, list[str], object]] = []
    real = plots.heatmap_figure

    def spy(matrix, labels, *args, **kw):  # type: ignore[no-untyped-def]
        seen.append((np.array(matrix), list(labels), kw.get("groups")))
        return real(matrix, labels, *args, **kw)

    monkeypatch.setattr(plots, "heatmap_figure", spy)
    run_file = read_results(path)
    write_report(run_file, tmp_path / "rep")
    assert len(seen) >= 2
    matrix, labels, groups = seen[0]
    names = [h.hostname for h in run_file.hosts]  # one rank per host: the label is the host
    ranks = [names.index(x) for x in labels]
    assert ranks != sorted(ranks)
    assert ranks == [0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11]
    assert [int(leaf[r]) for r in ranks] == sorted(leaf.tolist())  # grouped by leaf
    assert groups is not None and [(a, b) for _, a, b in groups] == [(0, 4), (4, 8), (8, 12)]
    lat = run_file.pairs[0].latency_ns_p50
    # the rows moved with their labels (the heatmap shows latency in us)
    np.testing.assert_allclose(matrix, lat[np.ix_(ranks, ranks)] / 1e3, rtol=1e-12)
