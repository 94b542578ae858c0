"""Criteria files and the bad input of accept / compare / trend: one line on stderr, exit 2."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import pytest

from conftest import REPO_ROOT, run_cli
from fabscope_analyze.criteria import load_criteria
from synth import write_synthetic_run

CRITERIA_DIR = REPO_ROOT / "configs" / "criteria"
SHIPPED = sorted(CRITERIA_DIR.glob("*.yaml"))


def assert_one_line(code: int, out: str, err: str, *needles: str) -> str:
    assert code == 2, (code, out, err)
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("fabscope-analyze: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_run(tmp_path_factory.mktemp("crit") / "good.h5", 6, seed=2)


def test_shipped_criteria_load() -> None:
    names = {p.stem for p in SHIPPED}
    assert {"hdr200", "ndr400", "roce400", "local"} <= names
    for path in SHIPPED:
        c = load_criteria(path)
        assert c.name == path.stem and c.pairs is not None
        assert c.pairs.min_fabric_fraction is not None  # every file has the relative rules
    assert load_criteria(CRITERIA_DIR / "ndr400.yaml").link_rate_gbps == 400
    assert load_criteria(CRITERIA_DIR / "hdr200.yaml").link_rate_gbps == 200
    assert load_criteria(CRITERIA_DIR / "local.yaml").link_rate_gbps is None


BAD = {
    "not yaml": ("pairs: [unclosed\n", "line 2", "fix the YAML syntax"),
    "a list": ("- 1\n- 2\n", "expected a YAML mapping", "fabscope_criteria: 1"),
    "no version": ("name: x\n", "has no `fabscope_criteria` key", "fabscope_criteria: 1"),
    "version 9": ("fabscope_criteria: 9\n", "fabscope_criteria 9 is not supported", "this tool reads 1"),
    "typo": ("fabscope_criteria: 1\npairs:\n  bandwith: {min_gbps: 1}\n", "pairs.bandwith: unknown key",
             "known keys here: bandwidth, latency"),
    "top typo": ("fabscope_criteria: 1\nlink_rate: 400\n", "link_rate: unknown key", "link_rate_gbps"),
    "text number": ("fabscope_criteria: 1\npairs:\n  bandwidth: {min_gbps: fast}\n",
                    "pairs.bandwidth.min_gbps: expected a positive number, found 'fast'", "fix the value"),
    "negative": ("fabscope_criteria: 1\npairs:\n  latency: {max_p50_us: -3}\n",
                 "pairs.latency.max_p50_us: expected a positive number", "fix the value"),
    "fraction": ("fabscope_criteria: 1\npairs:\n  bandwidth: {min_fabric_fraction: 93}\n",
                 "pairs.bandwidth.min_fabric_fraction: expected a fraction in (0, 1], found 93", "0.9 for 90%"),
    "size": ("fabscope_criteria: 1\npairs:\n  bandwidth: {min_size: 8 megabytes}\n",
             "pairs.bandwidth.min_size: expected a message size", "64K or 8M"),
    "ratio": ("fabscope_criteria: 1\npairs:\n  latency: {max_class_ratio: 0.5}\n",
              "pairs.latency.max_class_ratio: expected at least 1", "e.g. 2.0"),
    "class": ("fabscope_criteria: 1\npairs:\n  hop_classes: {same_rack: {max_p50_us: 2}}\n",
              "pairs.hop_classes.same_rack: unknown key", "same_leaf"),
    "sweeps": ("fabscope_criteria: 1\nsweeps:\n  lat: {size: 8}\n", "sweeps.lat: expected a list of rules",
               "- {size: 8"),
    "sweep size": ("fabscope_criteria: 1\nsweeps:\n  bw: [{min_gbps: 3}]\n", "sweeps.bw[0].size: missing",
                   "names the message size"),
    "choice": ("fabscope_criteria: 1\npairs: {failed_pairs: maybe}\n",
               "pairs.failed_pairs: expected one of fail, ignore", "fix the value"),
    "flag": ("fabscope_criteria: 1\npairs: {require_all_pairs: 3}\n", "pairs.require_all_pairs: expected true or false",
             "fix the value"),
    "int": ("fabscope_criteria: 1\nattribution: {min_pairs: 2.5}\n", "attribution.min_pairs: expected a whole number",
            "fix the value"),
    "stalls typo": ("fabscope_criteria: 1\npairs:\n  bandwidth: {stalls: {fraction: 0.2}}\n",
                    "pairs.bandwidth.stalls.fraction: unknown key", "window_fraction, min_windows, significance"),
    "stalls fraction": ("fabscope_criteria: 1\npairs:\n  bandwidth: {stalls: {window_fraction: 25}}\n",
                        "pairs.bandwidth.stalls.window_fraction: expected a fraction in (0, 1]", "0.9 for 90%"),
    "stalls significance": ("fabscope_criteria: 1\npairs:\n  bandwidth: {stalls: {significance: 0.9}}\n",
                            "pairs.bandwidth.stalls.significance: expected a small probability", "e.g. 0.001"),
    "stalls not a mapping": ("fabscope_criteria: 1\npairs:\n  bandwidth: {stalls: yes}\n",
                             "pairs.bandwidth.stalls: expected a mapping", "indented under it"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_criteria(case: str, good: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text, problem, hint = BAD[case]
    path = tmp_path / "c.yaml"
    path.write_text(text)
    for cmd in (["accept", good, "--criteria", path], ["report", good, "--criteria", path, "-o", tmp_path / "r"]):
        code, out, err = run_cli(cmd, capsys)
        line = assert_one_line(code, out, err, str(path), problem, hint)
        assert line.startswith(f"fabscope-analyze: {path}: ")
    assert not (tmp_path / "r").exists()


def test_missing_and_directory_criteria(good: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert_one_line(*run_cli(["accept", good, "--criteria", tmp_path / "nope.yaml"], capsys),
                    "no such criteria file", "configs/criteria")
    assert_one_line(*run_cli(["accept", good, "--criteria", tmp_path], capsys), "is a directory")


@pytest.mark.parametrize("mutation", ["missing file", "schema 3", "no bw_gbps", "coll without busbw"])
def test_bad_result_files(mutation: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from synth import CollSpec

    path = write_synthetic_run(tmp_path / "r.h5", 4, seed=1, coll=CollSpec(sizes=(8, 64)))
    needle = {"missing file": "no such file", "schema 3": "schema_version 3 is not supported",
              "no bw_gbps": "dataset /runs/03_pairs/bw_gbps is missing",
              "coll without busbw": "dataset /runs/04_coll/allreduce/summary/busbw_gbps is missing"}[mutation]
    if mutation == "missing file":
        path = tmp_path / "gone.h5"
    else:
        with h5py.File(path, "r+") as f:
            if mutation == "schema 3":
                f.attrs["schema_version"] = np.int64(3)
            elif mutation == "no bw_gbps":
                del f["runs/03_pairs/bw_gbps"]
            else:
                del f["runs/04_coll/allreduce/summary/busbw_gbps"]
    other = write_synthetic_run(tmp_path / "other.h5", 4, seed=2)
    for cmd in (["accept", path, "--criteria", CRITERIA_DIR / "local.yaml"], ["compare", other, path],
                ["compare", path, other], ["trend", other, path]):
        assert_one_line(*run_cli(cmd, capsys), f"{path}: ", needle)


def test_unwritable_outputs_exit_2(good: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for flag in ("--json", "--junit", "--retest-plan"):
        assert_one_line(*run_cli(["accept", good, "--criteria", CRITERIA_DIR / "local.yaml", flag, blocker / "x"],
                                 capsys), "cannot write", "choose another path")
    assert_one_line(*run_cli(["compare", good, good, "-o", blocker / "d"], capsys), "cannot write")


def test_trend_inputs(good: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line(*run_cli(["trend", empty], capsys), "no result files (*.h5) in this folder")
    assert_one_line(*run_cli(["trend", good, "--metric", "nothing*"], capsys), "no metric matches", "--metric list")
    assert_one_line(*run_cli(["trend", good, "--window", "1"], capsys), "--window 1")


@pytest.mark.parametrize("args", [["accept", "x.h5"], ["compare", "a.h5"], ["compare", "a.h5", "b.h5", "--threshold", "lots"],
                                  ["trend"], ["accept", "x.h5", "--criteria"]])
def test_usage_errors(cli: Callable[..., subprocess.CompletedProcess[str]], args: list[str]) -> None:
    proc = cli(args)
    assert proc.returncode == 2 and "usage: fabscope-analyze" in proc.stderr and "Traceback" not in proc.stderr
