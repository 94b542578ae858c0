"""`fabscope-analyze nightly`: accept + compare against a baseline + trend, one JSON, one JUnit.

Three synthetic nights of the same fabric (fabric_seed fixed, measurement noise differs); the
third has 15% less bandwidth everywhere. The first two are quiet (exit 0), the third alerts
(exit 1), and the JUnit test names are the same every night.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import run_cli
from synth import CollSpec, FabricModel, HostSpec, write_synthetic_run

MODEL = FabricModel(noise=0.02)
N = 8
CRITERIA = """fabscope_criteria: 1
name: nightly-test
pairs:
  bandwidth: {min_gbps: 5, min_fabric_fraction: 0.5}
  latency: {max_p50_us: 50, max_class_ratio: 2}
  noise: {max_bw_spread: 0.5, max_lat_spread: 2.0, min_samples: 3}
  failed_pairs: fail
  require_all_pairs: true
sweeps:
  lat:
    - {size: 8, max_p50_us: 50}
"""


def night(folder: Path, day: int, model: FabricModel = MODEL, n: int = N, **kw: object) -> Path:
    folder.mkdir(exist_ok=True)
    return write_synthetic_run(folder / f"night-{day:02d}.h5", n, 100 + day, model=model, fabric_seed=5,
                               coll=CollSpec(sizes=(8, 1 << 20), iters=9),
                               created_utc=f"2026-11-{10 + day:02d}T02:00:00Z", **kw)


@pytest.fixture
def criteria(tmp_path: Path) -> Path:
    p = tmp_path / "criteria.yaml"
    p.write_text(CRITERIA)
    return p


def junit(path: Path) -> tuple[ET.Element, list[tuple[str, str]]]:
    """The parsed file (well-formed, totals that add up) and its (classname, name) pairs."""
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    cases = list(root.iter("testcase"))
    assert int(root.get("tests")) == len(cases)
    assert int(root.get("failures")) == sum(c.find("failure") is not None for c in cases)
    for suite in root.findall("testsuite"):
        assert int(suite.get("tests")) == len(suite.findall("testcase"))
    names = [(c.get("classname"), c.get("name")) for c in cases]
    assert len(names) == len(set(names)), "duplicate test names"
    return root, names


def failed(root: ET.Element) -> set[tuple[str, str]]:
    return {(c.get("classname"), c.get("name")) for c in root.iter("testcase") if c.find("failure") is not None}


def test_three_nights_regression_in_the_third(tmp_path: Path, criteria: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    nights = tmp_path / "nights"
    files = [night(nights, 0), night(nights, 1), night(nights, 2, replace(MODEL, peak_gbps=85.0))]
    outcomes = []
    for k, new in enumerate(files):
        # the first night is its own baseline (nothing earlier); later nights pick from the folder
        baseline = files[0] if k == 0 else nights
        code, out, err = run_cli(["nightly", new, "--baseline", baseline, "--criteria", criteria,
                                  "--json", tmp_path / f"n{k}.json", "--junit", tmp_path / f"n{k}.xml"], capsys)
        assert err == "", err
        outcomes.append((code, out, json.loads((tmp_path / f"n{k}.json").read_text()), *junit(tmp_path / f"n{k}.xml")))
    (c0, out0, j0, x0, n0), (c1, out1, j1, x1, n1), (c2, out2, j2, x2, n2) = outcomes
    assert (c0, c1, c2) == (0, 0, 1), (out0, out1, out2)
    assert out0.startswith("fabscope nightly: OK") and out2.startswith("fabscope nightly: ALERT")
    assert j0["status"] == j1["status"] == "ok" and j2["status"] == "alert"
    # the baseline of the third night: the newest earlier run that passes, night 1
    assert Path(j2["baseline"]["path"]).name == "night-01.h5"
    assert [Path(t["path"]).name for t in j2["baseline"]["tried"]] == ["night-01.h5"]
    assert j2["accept"]["verdict"] == "pass" and j2["compare"]["regression"]
    assert any(a.startswith("compare:") for a in j2["alerts"]) and len(j2["trend"]["files"]) == 3
    fabric = [r for r in j2["compare"]["rows"] if r["metric"] == "pair bandwidth, median over pairs"]
    assert fabric[0]["regression"] and -0.2 < fabric[0]["change"] < -0.1 and fabric[0]["entity"] == "fabric"
    # stable JUnit names: the same tests every night, numbers only in messages
    assert n0 == n1 == n2
    for cls, name in n2:
        assert not re.search(r"\d+\.\d", name), name  # no measured value in a name
    assert not failed(x0) and not failed(x1)
    bad = failed(x2)
    assert ("fabscope.nightly", "regressions against the baseline") in bad
    assert ("fabscope.compare.pairs", "pair bandwidth, median over pairs: fabric") in bad
    assert ("fabscope.nightly", "accept verdict") not in bad and ("fabscope.nightly", "hosts removed") not in bad
    msg = next(c for c in x2.iter("testcase") if c.get("name") == "pair bandwidth, median over pairs: fabric"
               ).find("failure").get("message")
    assert "Gb/s" in msg and "%" in msg  # the night's numbers are in the message
    assert {"accept", "compare", "trend", "nightly"} == {s.get("name") for s in x2.findall("testsuite")}


def test_baseline_folder_skips_runs_that_fail(tmp_path: Path, criteria: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    nights = tmp_path / "nights"
    night(nights, 0)
    night(nights, 1, slow_host=3)  # fails accept: not a baseline
    new = night(tmp_path / "new", 2)
    code, out, err = run_cli(["nightly", new, "--baseline", nights, "--criteria", criteria, "--json",
                              tmp_path / "n.json"], capsys)
    j = json.loads((tmp_path / "n.json").read_text())
    assert code == 0 and err == "", out + err
    assert [(Path(t["path"]).name, t["verdict"]) for t in j["baseline"]["tried"]] == \
        [("night-01.h5", "fail"), ("night-00.h5", "pass")]
    assert Path(j["baseline"]["path"]).name == "night-00.h5"
    assert "night-00.h5" in out and "2 tried" in out
    # without criteria: the newest earlier run, judged by nothing
    code, out, _ = run_cli(["nightly", new, "--baseline", nights, "--json", tmp_path / "n2.json"], capsys)
    j = json.loads((tmp_path / "n2.json").read_text())
    assert Path(j["baseline"]["path"]).name == "night-01.h5" and j["accept"] is None
    assert code == 0 and j["alerts"] == [], out  # the slow host is healthy again: improvements do not alert
    assert any(r["improvement"] for r in j["compare"]["rows"])


def hosts(n: int, extra: int = 0) -> HostSpec:
    return HostSpec(hostnames=[f"node{i:03d}" for i in range(n)] + [f"new{i:03d}" for i in range(extra)])


def test_hosts_added_are_listed_and_do_not_alert(tmp_path: Path, criteria: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    base = night(tmp_path / "b", 0)
    new = night(tmp_path / "n", 1, n=N + 2, hosts=hosts(N, 2))
    code, out, err = run_cli(["nightly", new, "--baseline", base, "--criteria", criteria, "--json", tmp_path / "n.json",
                              "--junit", tmp_path / "n.xml"], capsys)
    j = json.loads((tmp_path / "n.json").read_text())
    assert code == 0 and err == "", out + err
    assert j["hosts"] == {"common": N, "removed": [], "added": ["new000", "new001"], "removed_alert": False}
    assert "added (judged by accept, not compared): new000, new001" in out
    root, names = junit(tmp_path / "n.xml")
    added = next(c for c in root.iter("testcase") if c.get("name") == "hosts added")
    assert added.find("failure") is None and "new000, new001" in added.find("system-out").text
    # the new hosts are judged by accept (N + 2 hosts), compared on the N common ones
    assert j["accept"]["verdict"] == "pass"
    pairs = [r for r in j["compare"]["rows"] if r["metric"] == "pair bandwidth, median over pairs"]
    assert pairs and pairs[0]["key"].startswith(f"{N} hosts")


def test_hosts_removed_alert_unless_allowed(tmp_path: Path, criteria: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = night(tmp_path / "b", 0)
    new = night(tmp_path / "n", 1, n=N - 1)  # node007 is missing tonight
    args = ["nightly", new, "--baseline", base, "--criteria", criteria, "--json", tmp_path / "n.json",
            "--junit", tmp_path / "n.xml"]
    code, out, err = run_cli(args, capsys)
    j = json.loads((tmp_path / "n.json").read_text())
    assert code == 1 and err == "", out + err
    assert j["hosts"]["removed"] == ["node007"] and j["hosts"]["removed_alert"]
    assert j["alerts"] == ["hosts: 1 host(s) of the baseline missing from NEW: node007"], j["alerts"]
    root, _ = junit(tmp_path / "n.xml")
    assert failed(root) == {("fabscope.nightly", "hosts removed")}
    code, out, _ = run_cli(args + ["--allow-removed-hosts"], capsys)
    j = json.loads((tmp_path / "n.json").read_text())
    assert code == 0 and j["hosts"]["removed"] == ["node007"] and not j["hosts"]["removed_alert"], out


def test_inconclusive_verdict_alerts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the criteria's absolute bandwidth rule needs 1M messages; the nightly run measures 64K
    crit = tmp_path / "c.yaml"
    crit.write_text("fabscope_criteria: 1\nname: big\npairs:\n  bandwidth: {min_gbps: 5, min_size: 1M}\n")
    base = night(tmp_path / "b", 0)
    new = night(tmp_path / "n", 1)
    code, out, _ = run_cli(["nightly", new, "--baseline", base, "--criteria", crit, "--junit", tmp_path / "n.xml"],
                           capsys)
    assert code == 1 and "alert: accept: INCONCLUSIVE" in out, out
    assert "inconclusive: pairs: bandwidth >= 5 Gb/s: not judged: the run's 64K B bandwidth messages are below " \
           "the rule's min_size 1M B" in out
    root, _ = junit(tmp_path / "n.xml")
    assert ("fabscope.nightly", "accept verdict") in failed(root)


def test_recent_change_point_alerts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # six nights at one level, then two 15% lower: the trend sees a level shift, two nights old
    hist = tmp_path / "hist"
    slow = replace(MODEL, peak_gbps=85.0)
    files = [night(hist, d, MODEL if d < 6 else slow) for d in range(8)]
    code, out, err = run_cli(["nightly", files[-1], "--baseline", files[-2], "--history", hist, "--json",
                              tmp_path / "n.json", "--junit", tmp_path / "n.xml"], capsys)
    j = json.loads((tmp_path / "n.json").read_text())
    assert code == 1 and err == "", out + err
    assert not j["compare"]["regression"]  # tonight is like last night: only the trend sees it
    assert j["trend"]["alert"] and any(a.startswith("trend: pairs/bw_gbps_median changed for the worse from "
                                                    "night-06.h5") for a in j["alerts"]), j["alerts"]
    root, _ = junit(tmp_path / "n.xml")
    assert ("fabscope.trend", "pairs/bw_gbps_median") in failed(root)


@pytest.mark.parametrize("case", ["no earlier run", "missing baseline", "no criteria pass"])
def test_bad_baseline_is_one_line_exit_2(tmp_path: Path, criteria: Path, capsys: pytest.CaptureFixture[str],
                                         case: str) -> None:
    folder = tmp_path / "runs"
    new = night(folder, 5)
    if case == "no earlier run":
        night(folder, 7)  # newer than NEW: not a baseline
        args, expect = ["--baseline", folder], "no result file (*.h5) created before"
    elif case == "missing baseline":
        args, expect = ["--baseline", tmp_path / "nope"], "no such file or folder"
    else:
        night(folder, 1, slow_host=2)
        args, expect = ["--baseline", folder, "--criteria", criteria], "none of the 1 runs created before"
    code, out, err = run_cli(["nightly", new, *args], capsys)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and expect in err, err
