"""Unusable input: one line on stderr naming the file, the problem and a fix; exit 2; no traceback."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import pytest

from synth import write_synthetic_run


def assert_one_line_error(proc: subprocess.CompletedProcess[str], path: Path, *needles: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    line = lines[0]
    assert line.startswith(f"fabscope-analyze: {path}: "), line
    for needle in needles:
        assert needle in line, (needle, line)
    assert proc.stdout == ""
    assert not path.with_name(f"{path.stem}-report").exists()


@pytest.fixture
def good_file(tmp_path: Path) -> Path:
    return write_synthetic_run(tmp_path / "good.h5", 4, seed=3)


def test_missing_file(cli: Callable, tmp_path: Path) -> None:
    path = tmp_path / "nope.h5"
    assert_one_line_error(cli(["report", path]), path, "no such file", "check the path")


def test_directory(cli: Callable, tmp_path: Path) -> None:
    path = tmp_path / "dir.h5"
    path.mkdir()
    assert_one_line_error(cli(["report", path]), path, "is a directory")


def test_empty_file(cli: Callable, tmp_path: Path) -> None:
    path = tmp_path / "empty.h5"
    path.touch()
    assert_one_line_error(cli(["report", path]), path, "is empty")


def test_not_hdf5(cli: Callable, tmp_path: Path) -> None:
    path = tmp_path / "notes.h5"
    path.write_text("schema_version: 1\nthis is YAML, not HDF5\n")
    assert_one_line_error(cli(["report", path]), path, "is not an HDF5 file")


@pytest.mark.parametrize("fraction", [0.5, 0.9])
def test_truncated(cli: Callable, good_file: Path, tmp_path: Path, fraction: float) -> None:
    path = tmp_path / "truncated.h5"
    shutil.copyfile(good_file, path)
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.truncate(int(size * fraction))
    assert_one_line_error(cli(["report", path]), path, "truncated", "re-run fabscope")


def test_wrong_schema_version(cli: Callable, good_file: Path) -> None:
    with h5py.File(good_file, "r+") as f:
        f.attrs["schema_version"] = np.int64(7)
    assert_one_line_error(
        cli(["report", good_file]), good_file,
        "schema_version 7 is not supported (this tool reads 1, 2)", "re-run with a matching fabscope",
    )


def test_hdf5_but_not_fabscope(cli: Callable, tmp_path: Path) -> None:
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.arange(3))
    assert_one_line_error(cli(["report", path]), path, "not a fabscope result file")


def _delete(name: str) -> Callable[[h5py.File], None]:
    def mutate(f: h5py.File) -> None:
        del f[name]
    return mutate


def _delete_attr(obj: str, name: str) -> Callable[[h5py.File], None]:
    def mutate(f: h5py.File) -> None:
        del f[obj].attrs[name]
    return mutate


def _set_attr(obj: str, name: str, value: object) -> Callable[[h5py.File], None]:
    def mutate(f: h5py.File) -> None:
        f[obj].attrs[name] = value
    return mutate


def _replace(name: str, data: np.ndarray) -> Callable[[h5py.File], None]:
    def mutate(f: h5py.File) -> None:
        del f[name]
        f.create_dataset(name, data=data)
    return mutate


MUTATIONS: dict[str, tuple[Callable[[h5py.File], None], str]] = {
    "no /hosts/hostname": (_delete("hosts/hostname"), "dataset /hosts/hostname is missing"),
    "no /runs": (_delete("runs"), "/runs is missing"),
    "no /hosts": (_delete("hosts"), "/hosts is missing"),
    "no root complete": (_delete_attr("/", "complete"), "the root group has no attribute 'complete'"),
    "no n_ranks": (_delete_attr("/", "n_ranks"), "the root group has no attribute 'n_ranks'"),
    "no run benchmark": (_delete_attr("runs/00_lat", "benchmark"), "/runs/00_lat has no attribute 'benchmark'"),
    "no bw window": (_delete_attr("runs/01_bw", "window"), "/runs/01_bw has no attribute 'window'"),
    "no pairs rounds_done": (_delete_attr("runs/03_pairs", "rounds_done"), "has no attribute 'rounds_done'"),
    "no lat samples": (_delete("runs/00_lat/samples/latency_ns"), "dataset /runs/00_lat/samples/latency_ns is missing"),
    "no bw p99": (_delete("runs/01_bw/summary/bw_gbps_p99"), "dataset /runs/01_bw/summary/bw_gbps_p99 is missing"),
    "no pair bw": (_delete("runs/03_pairs/bw_gbps"), "dataset /runs/03_pairs/bw_gbps is missing"),
    "no pair_samples": (_delete("runs/03_pairs/pair_samples"), "/runs/03_pairs/pair_samples is missing"),
    "wrong units": (_set_attr("runs/00_lat/samples/latency_ns", "units", "us"), "has units 'us', SCHEMA.md says 'ns'"),
    "n_ranks as text": (_set_attr("/", "n_ranks", "four"), "'n_ranks' of the root group should be an integer"),
    "status 3x3": (_replace("runs/03_pairs/status", np.zeros((3, 3), np.int8)), "has shape [3, 3], expected [4, 4]"),
    "hostname as numbers": (_replace("hosts/hostname", np.arange(4)), "/hosts/hostname should hold strings"),
}


@pytest.mark.parametrize("case", sorted(MUTATIONS))
def test_schema_violation(cli: Callable, good_file: Path, case: str) -> None:
    mutate, needle = MUTATIONS[case]
    with h5py.File(good_file, "r+") as f:
        mutate(f)
    assert_one_line_error(cli(["report", good_file]), good_file, needle, "SCHEMA.md")


@pytest.mark.parametrize(
    "args",
    [[], ["report"], ["frobnicate", "x.h5"], ["report", "x.h5", "--colour", "red"], ["report", "a.h5", "b.h5"]],
)
def test_usage_errors_exit_2(cli: Callable, args: list[str]) -> None:
    proc = cli(args)
    assert proc.returncode == 2
    assert "usage: fabscope-analyze" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unwritable_output_exit_1(cli: Callable, good_file: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the report folder should go")
    proc = cli(["report", good_file, "-o", blocker / "report"])
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("fabscope-analyze: cannot write the report to "), lines[0]
    assert "choose another folder with -o" in lines[0]


def test_file_held_open_by_a_writer(cli: Callable, good_file: Path) -> None:
    holder = subprocess.Popen(
        ["/usr/bin/python3", "-c",
         "import h5py, sys; f = h5py.File(sys.argv[1], 'a'); print('open', flush=True); sys.stdin.read()",
         str(good_file)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        assert_one_line_error(cli(["report", good_file]), good_file, "unable to lock file", "open for writing")
    finally:
        holder.communicate("", timeout=30)
