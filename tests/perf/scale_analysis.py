#!/usr/bin/python3
"""Issue 14's analysis bars on whole 12,500-host pairs runs written by fabscope's own writer.

    /usr/bin/python3 tests/perf/scale_analysis.py NIGHT1.h5 NIGHT2.h5 [--nights 30] [--slow-rank R]
        [--workdir DIR]

NIGHT1 and NIGHT2 are complete pairs runs of the same fabric (tests/perf/scale_bench.sh writes
them with fabscope-scale-bench --rounds N-1 --complete 1: the real suites::assemble_round and
io::ResultsWriter, every round of the circle schedule, schema version 2 with --keep-samples
suspect and the per-run summary); NIGHT1 has one slow host (--slow-rank). This script adds to
each file what a real run takes from its topology source and the generator does not write: a
3-tier fat tree in /topology (tests/analysis/synth.py's tables: 32 hosts per leaf, 16 leaves and
8 spines per pod), once. Then, each under /usr/bin/time as a user runs them:

  accept NIGHT1 --criteria configs/criteria/ndr400.yaml --json V --report DIR (the verdict and the
      report from one reading of the file): bar: under 60 s, not above 4 GiB; the slow host is the
      first suspect. Also timed: accept and then report as two commands (accept_then_report_s).
  compare NIGHT2 NIGHT1:                               bar: under 120 s
  trend over NIGHTS files (hard links, alternating NIGHT1 / NIGHT2: a disk of 66 GB does not
  hold 30 distinct 2.9 GB nights, and writing each takes minutes):    bar: under 120 s

Last line, for scripts: `analysis: accept_report_s=S peak_gib=G compare_s=C trend_s=T ...`.
Exit 0 when every bar is met, 1 otherwise, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "analysis"), str(REPO / "tests" / "analysis")]

from synth import Faults, SynthTopology, _write_topology  # noqa: E402

LAUNCHER = REPO / "analysis" / "fabscope-analyze"
CRITERIA = REPO / "configs" / "criteria" / "ndr400.yaml"
TOPOLOGY = SynthTopology(hosts_per_leaf=32, leaves_per_pod=16, spines_per_pod=8, name="12,500-host fat tree")
BARS = {"accept_report_s": 60.0, "peak_gib": 4.0, "compare_s": 120.0, "trend_s": 120.0}


def prepare(path: Path) -> int:
    """Adds /topology once; returns the number of ranks."""
    with h5py.File(path, "r+") as f:
        n = int(f.attrs["n_ranks"])
        if "topology" not in f:
            _write_topology(f.create_group("topology"), n, TOPOLOGY, Faults())
    return n


def timed(cmd: list[str]) -> tuple[int, float, float, str]:
    """(exit code, wall s, peak RSS GiB, output) of cmd under GNU time."""
    time_bin = shutil.which("time", path="/usr/bin")
    if time_bin is None:
        sys.exit("scale_analysis: /usr/bin/time not found: apt-get install time")
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        proc = subprocess.run([time_bin, "-f", "%e %M", "-o", tf.name, *cmd], capture_output=True, text=True,
                              check=False)
        wall, rss_kib = tf.read().split()[-2:]
    return proc.returncode, float(wall), float(rss_kib) / 2**20, proc.stdout + proc.stderr


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("night1", type=Path)
    ap.add_argument("night2", type=Path)
    ap.add_argument("--nights", type=int, default=30)
    ap.add_argument("--slow-rank", type=int, default=5250)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args(argv)
    for p in (args.night1, args.night2):
        if not p.is_file():
            print(f"scale_analysis: {p}: no such file; write it with tests/perf/scale_bench.sh", file=sys.stderr)
            return 2
    work = Path(tempfile.mkdtemp(prefix="fabscope-scale-analysis.", dir=args.workdir))
    try:
        return run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> int:
    n = prepare(args.night1)
    if prepare(args.night2) != n:
        print("scale_analysis: the two nights have different rank counts", file=sys.stderr)
        return 2
    with h5py.File(args.night1, "r") as f:
        g = f["runs"][next(iter(f["runs"]))]
        rows = int(g.attrs["rows_done"])
    sizes = [p.stat().st_size / 1e9 for p in (args.night1, args.night2)]
    print(f"files: {n} ranks, {rows:,} rows each, {sizes[0]:.2f} GB and {sizes[1]:.2f} GB")
    launcher = [sys.executable, str(LAUNCHER)]
    verdict = work / "verdict.json"
    problems: list[str] = []
    figures: dict[str, float] = {}

    # The two commands one after the other, then the one command that writes both from one reading
    # of the file (accept --report: the verdict JSON and exit code of accept, the page of report
    # --criteria). The bar is held against the one command; both are printed.
    code_a, wall_a, rss_a, out_a = timed([*launcher, "accept", str(args.night1), "--criteria", str(CRITERIA),
                                          "--json", str(work / "verdict-alone.json"), "-q"])
    print(f"accept:  {wall_a:7.1f} s  peak {rss_a:5.2f} GiB  exit {code_a}")
    code_r, wall_r, rss_r, out_r = timed([*launcher, "report", str(args.night1), "-o", str(work / "report-alone")])
    print(f"report:  {wall_r:7.1f} s  peak {rss_r:5.2f} GiB  exit {code_r}")
    code_b, wall_b, rss_b, out_b = timed([*launcher, "accept", str(args.night1), "--criteria", str(CRITERIA),
                                          "--json", str(verdict), "--report", str(work / "report"), "-q"])
    print(f"accept --report: {wall_b:7.1f} s  peak {rss_b:5.2f} GiB  exit {code_b}  "
          f"(accept, then report: {wall_a + wall_r:.1f} s)")
    figures["accept_report_s"], figures["peak_gib"] = wall_b, max(rss_a, rss_r, rss_b)
    figures["accept_then_report_s"] = wall_a + wall_r
    for what, code, out in (("accept", code_a, out_a), ("accept --report", code_b, out_b)):
        if code not in (0, 1, 3):
            problems.append(f"{what} exited {code}: {out.strip()[-600:]}")
    if code_r != 0:
        problems.append(f"report exited {code_r}: {out_r.strip()[-600:]}")
    alone = work / "verdict-alone.json"
    if verdict.is_file() and alone.is_file() and json.loads(alone.read_text()) != json.loads(verdict.read_text()):
        problems.append("accept --report gave another verdict than accept")
    if verdict.is_file():
        v = json.loads(verdict.read_text())
        width = max(3, len(str(n - 1)))
        slow = f"node{args.slow_rank:0{width}d}"
        top = [(s["kind"], s["name"]) for s in v["suspects"][:3]]
        print(f"verdict {v['verdict']}; top suspects: {top}")
        if not top or top[0] != ("host", slow):
            problems.append(f"the slow host {slow} is not the first suspect: {top}")
    else:
        problems.append("accept wrote no JSON verdict")
    html = work / "report" / "index.html"
    if code_b in (0, 1, 3) and (not html.is_file() or "<img" not in html.read_text()):
        problems.append("report wrote no page with figures")

    code_c, wall_c, rss_c, out_c = timed([*launcher, "compare", str(args.night2), str(args.night1)])
    print(f"compare: {wall_c:7.1f} s  peak {rss_c:5.2f} GiB  exit {code_c}")
    figures["compare_s"] = wall_c
    if code_c not in (0, 1):
        problems.append(f"compare exited {code_c}: {out_c.strip()[-600:]}")

    nights = work / "nights"
    nights.mkdir()
    for k in range(args.nights):
        (nights / f"night-{k:02d}.h5").hardlink_to(args.night1 if k % 2 else args.night2)
    code_t, wall_t, rss_t, out_t = timed([*launcher, "trend", str(nights)])
    print(f"trend:   {wall_t:7.1f} s  peak {rss_t:5.2f} GiB  exit {code_t}  ({args.nights} files)")
    figures["trend_s"] = wall_t
    if code_t not in (0, 1):
        problems.append(f"trend exited {code_t}: {out_t.strip()[-600:]}")

    for key, bar in BARS.items():
        if figures[key] >= bar:
            problems.append(f"BAR: {key} = {figures[key]:.1f}, bar {bar:g}")
    for p in problems:
        print(p)
    print("analysis: " + " ".join(f"{k}={v:.1f}" if k != "peak_gib" else f"{k}={v:.2f}" for k, v in figures.items())
          + f" compare_peak_gib={rss_c:.2f} trend_peak_gib={rss_t:.2f}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
