#!/usr/bin/python3
"""Scale benchmark of fabscope-analyze: accept + report on a synthetic 10,000-host fabric.

    /usr/bin/python3 tests/analysis/scale_bench.py [--hosts 10000] [--workdir DIR] [--keep]

Writes a synthetic result file (synth.py: 10,000 hosts, a 3-tier fat tree in /topology, every
pair in the matrices, raw samples for a subset of pairs) with four injected faults: a slow host, a
bad host cable (link trained down to half rate), a bad leaf-spine uplink and noisy pairs. Then it
runs, as a user would, `fabscope-analyze accept` (JSON, JUnit and re-test plan) and
`fabscope-analyze report --criteria`, each under /usr/bin/time, and prints wall time and peak RSS.

Pass (exit 0) when accept + report together take under 60 s, neither process peaks above 4 GiB,
and the three faults are the three top suspects (the noisy pairs inconclusive, not suspects).
Generating the file is not part of the bar (about 30 s and 3.7 GB of disk for 10,000 hosts).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(REPO / "analysis"), str(HERE)]

from synth import FabricModel, Faults, PairsSpec, SynthTopology, write_synthetic_run  # noqa: E402

LAUNCHER = REPO / "analysis" / "fabscope-analyze"
CRITERIA = REPO / "configs" / "criteria" / "ndr400.yaml"
WALL_BAR_S = 60.0
RSS_BAR_BYTES = 4 << 30


def faults_for(n: int, topo: SynthTopology) -> tuple[Faults, dict[str, tuple[str, str]]]:
    """Faults placed across the fabric, and the suspects they must come out as."""
    slow, cable = int(n * 0.42), int(n * 0.08)
    leaves = (n + topo.hosts_per_leaf - 1) // topo.hosts_per_leaf
    leaf, plane = int(leaves * 0.6), topo.spines_per_pod - 3
    pod = leaf // topo.leaves_per_pod
    width = max(3, len(str(n - 1)))
    spine = pod * topo.spines_per_pod + plane + 1
    expected = {
        "slow host": ("host", f"node{slow:0{width}d}"),
        "bad cable": ("host_link", f"node{cable:0{width}d} port/cable to leaf{cable // topo.hosts_per_leaf + 1:04d}"),
        "bad uplink": ("leaf_spine_link", f"leaf{leaf + 1:04d} <-> spine{spine:04d}"),
    }
    noisy = ((3, n - 7), (n // 3, n // 2 + 1), (n // 5, 2 * n // 3))
    return Faults(slow_hosts=(slow,), bad_cables=(cable,), bad_uplinks=((leaf, plane),), noisy_pairs=noisy), expected


def timed(cmd: list[str]) -> tuple[int, float, int, str]:
    """Run cmd; (exit code, wall seconds, peak RSS bytes, stdout)."""
    time_bin = shutil.which("time", path="/usr/bin")
    t0 = time.perf_counter()
    if time_bin:
        with tempfile.NamedTemporaryFile("r") as stats:
            proc = subprocess.run([time_bin, "-f", "%e %M", "-o", stats.name, *cmd], capture_output=True, text=True)
            wall_s, rss_kb = stats.read().split()[-2:]
        return proc.returncode, float(wall_s), int(rss_kb) * 1024, proc.stdout + proc.stderr
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run(cmd, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # max over children so far
    return proc.returncode, time.perf_counter() - t0, max(before, after) * 1024, proc.stdout + proc.stderr


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--workdir", type=Path, default=None, help="where the file and outputs go (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="fabscope-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        return run(args.hosts, work)
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


def run(n: int, work: Path) -> int:
    topo = SynthTopology(hosts_per_leaf=32, leaves_per_pod=16, spines_per_pod=8)
    model = FabricModel(peak_gbps=395.0, base_latency_ns=1500.0, noise=0.01, per_host_spread=0.005)
    faults, expected = faults_for(n, topo)
    path = work / f"synthetic-{n}.h5"
    t0 = time.perf_counter()
    write_synthetic_run(path, n, 1, model=model, faults=faults, topology=topo, sweeps=(),
                        pairs=PairsSpec(bw_size_bytes=8 << 20, lat_iters=20, bw_windows=8, counters=True))
    gen_s = time.perf_counter() - t0
    print(f"generated {path.name}: {n} hosts, {path.stat().st_size / 1e9:.2f} GB in {gen_s:.1f} s (not timed)")

    verdict_json = work / "verdict.json"
    accept_cmd = [str(LAUNCHER), "accept", str(path), "--criteria", str(CRITERIA), "--json", str(verdict_json),
                  "--junit", str(work / "verdict.xml"), "--retest-plan", str(work / "retest.plan"), "-q"]
    code_a, wall_a, rss_a, out_a = timed(accept_cmd)
    report_cmd = [str(LAUNCHER), "report", str(path), "--criteria", str(CRITERIA), "-o", str(work / "report")]
    code_r, wall_r, rss_r, out_r = timed(report_cmd)

    print(f"accept: {wall_a:6.1f} s, peak RSS {rss_a / 2**30:.2f} GiB, exit {code_a}")
    print(f"report: {wall_r:6.1f} s, peak RSS {rss_r / 2**30:.2f} GiB, exit {code_r}")
    total = wall_a + wall_r
    print(f"accept + report: {total:.1f} s (bar {WALL_BAR_S:.0f} s), peak RSS {max(rss_a, rss_r) / 2**30:.2f} GiB "
          f"(bar {RSS_BAR_BYTES / 2**30:.0f} GiB)")

    problems = []
    if code_a != 1:
        problems.append(f"accept exited {code_a}, expected 1 (faults injected): {out_a.strip()[-400:]}")
    if code_r != 0:
        problems.append(f"report exited {code_r}: {out_r.strip()[-400:]}")
    if total >= WALL_BAR_S:
        problems.append(f"accept + report took {total:.1f} s, over {WALL_BAR_S:.0f} s")
    if max(rss_a, rss_r) >= RSS_BAR_BYTES:
        problems.append(f"peak RSS {max(rss_a, rss_r) / 2**30:.2f} GiB, over 4 GiB")
    if verdict_json.is_file():
        v = json.loads(verdict_json.read_text())
        top = [(s["kind"], s["name"]) for s in v["suspects"][:3]]
        print("top suspects:")
        for k, s in enumerate(v["suspects"][:5], 1):
            print(f"  {k}. {s['kind']} {s['name']}: {s['failing']} of {s['judged']} flows fail")
        for fault, suspect in expected.items():
            if suspect not in top:
                problems.append(f"{fault}: expected suspect {suspect} not among the top 3 {top}")
        noisy = {frozenset((f"node{a:0{max(3, len(str(n - 1)))}d}", f"node{b:0{max(3, len(str(n - 1)))}d}"))
                 for a, b in faults.noisy_pairs}
        inconclusive = {frozenset((p["from"], p["to"])) for r in v["runs"] for p in r["inconclusive_pairs"]}
        print(f"noisy pairs inconclusive: {len(noisy & inconclusive)} of {len(noisy)}")
        if not noisy & inconclusive:
            problems.append("no noisy pair came out inconclusive")
        named = {x for s in v["suspects"] for x in s["name"].replace(" <-> ", " ").split()}
        if any(set(p) <= named for p in map(tuple, noisy)):
            problems.append("a noisy pair was named as a suspect")
    else:
        problems.append("accept wrote no JSON")
    for p in problems:
        print(f"FAIL: {p}")
    print("PASS" if not problems else "FAIL")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
