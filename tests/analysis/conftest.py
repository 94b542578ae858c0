"""Fixtures of the fabscope-analyze tests.

The report tests run on a result file that the real C++ `fabscope` writes in this test session
(`real_results`); a missing binary, mpirun or chromium is a test failure, not a skip. Synthetic
files (synth.py) serve the tests that need control over the data.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Sequence

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parents[1]
ANALYSIS_DIR = REPO_ROOT / "analysis"
LAUNCHER = ANALYSIS_DIR / "fabscope-analyze"
SUITE = TESTS_DIR / "data" / "analysis-suite.yaml"
N_RANKS = 4
FABSCOPE_TIMEOUT_S = 300

for p in (ANALYSIS_DIR, TESTS_DIR):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))


def fabscope_bin() -> Path:
    return Path(os.environ.get("FABSCOPE_BIN", REPO_ROOT / "build" / "release" / "bin" / "fabscope"))


def run_launcher(args: Sequence[str | os.PathLike[str]], timeout: float = 180,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run analysis/fabscope-analyze as a user would (env: its whole environment, default ours)."""
    return subprocess.run(
        [str(LAUNCHER), *map(str, args)], capture_output=True, text=True, timeout=timeout, check=False, env=env
    )


@pytest.fixture(scope="session")
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_launcher


def run_fabscope(out: Path, suite: Path = SUITE) -> Path:
    """`mpirun -np 4 fabscope run SUITE --out OUT` (default analysis-suite.yaml); a failure fails the test."""
    binary = fabscope_bin()
    if not binary.is_file() or not os.access(binary, os.X_OK):
        pytest.fail(
            f"fabscope binary not found at {binary}: build the C++ side into build/release "
            "(see README.md) or point FABSCOPE_BIN at the binary"
        )
    mpirun = shutil.which("mpirun")
    if mpirun is None:
        pytest.fail("mpirun not found on PATH: install openmpi-bin")
    env = {
        **os.environ,
        "OMPI_ALLOW_RUN_AS_ROOT": "1",
        "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
        "OMPI_MCA_rmaps_base_oversubscribe": "1",
    }
    cmd = [mpirun, "--oversubscribe", "-np", str(N_RANKS), str(binary), "run", str(suite), "--out", str(out)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=FABSCOPE_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"fabscope did not finish within {FABSCOPE_TIMEOUT_S} s: {' '.join(cmd)}")
    if proc.returncode != 0 or not out.is_file():
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        pytest.fail(f"{' '.join(cmd)} exited {proc.returncode} (output file present: {out.is_file()}):\n{tail}")
    return out


@pytest.fixture(scope="session")
def real_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A result file written by the real fabscope: `mpirun -np 4 fabscope run analysis-suite.yaml`."""
    return run_fabscope(tmp_path_factory.mktemp("fabscope-run") / "run.h5")


@pytest.fixture(scope="session")
def real_results_2(real_results: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second run of the same suite (for compare and trend on real files); written after the first."""
    return run_fabscope(tmp_path_factory.mktemp("fabscope-run-2") / "run2.h5")


def run_cli(args: Sequence[str | os.PathLike[str]], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """fabscope_analyze.cli.main in this process (faster than the launcher): (exit, stdout, stderr)."""
    from fabscope_analyze.cli import main

    capsys.readouterr()
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:  # argparse usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="session")
def real_report(real_results: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report folder of the real result file, written by the launcher."""
    out_dir = tmp_path_factory.mktemp("report") / "report"
    proc = run_launcher(["report", real_results, "-o", out_dir])
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr
    return out_dir


@pytest.fixture(scope="session")
def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("chromium not found: install the Debian package chromium (the browser tests need it)")
