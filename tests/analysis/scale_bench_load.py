#!/usr/bin/python3
"""Scale benchmark of the load analysis: accept + report on a synthetic 10,000-rank shift and
congestion run (results/SCHEMA.md).

    /usr/bin/python3 tests/analysis/scale_bench_load.py [--hosts 10000] [--steps N] [--pairs] [--workdir DIR] [--keep]

Writes a synthetic file (synth.py: a 3-tier fat tree in /topology; a full shift of N - 1 steps by
default, so flow_gbps is [N - 1, N] and bw_gbps [N, N]; a congestion run with a fifth of the ranks
as victims), with a step slowed to ~60% and cross-leaf victims at ~3x under alltoall. With
--pairs it adds the pairs run the loaded / idle ratio needs (another ~4 GB and a minute). Then it
runs `fabscope-analyze accept --json` and `report --criteria`, each under /usr/bin/time, and
prints wall time and peak RSS.

Pass (exit 0) when accept + report together take under 60 s, neither peaks above 4 GiB, the slowed
step is the only step suspect and every victim suspect reaches its partner across leaves.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(REPO / "analysis"), str(HERE)]

from scale_bench import RSS_BAR_BYTES, WALL_BAR_S, timed  # noqa: E402
from synth import (CongestionSpec, FabricModel, PairsSpec, ShiftSpec, SynthTopology,  # noqa: E402
                   write_synthetic_run)

LAUNCHER = REPO / "analysis" / "fabscope-analyze"
CRITERIA = """\
fabscope_criteria: 1
name: load-scale
congestion:
  max_impact_latency_p99: 2.0
shift:
  min_effective_pct: 80
  min_median_effective_pct: 85
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=10_000)
    ap.add_argument("--steps", type=int, default=None, help="shift steps (default N - 1: the full shift)")
    ap.add_argument("--pairs", action="store_true", help="add a pairs run (the idle reference)")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    n = args.hosts
    work = args.workdir or Path(tempfile.mkdtemp(prefix="fabscope-load-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    topo = SynthTopology(hosts_per_leaf=32, leaves_per_pod=16, spines_per_pod=8)
    model = FabricModel(peak_gbps=395.0, base_latency_ns=1500.0, noise=0.01, per_host_spread=0.005)
    slow = min(7, (args.steps or n - 1) - 1)
    shift = ShiftSpec(size_bytes=8 << 20, iters=2, steps=args.steps, pattern="shift" if args.steps is None else "permutation",
                      slow_steps=((slow, 0.645),), flow_samples=False)
    congestion = CongestionSpec(victim_fraction=0.2, placement="leaf", iters=100, bw_iters=5,
                                cross_leaf_factor=(("alltoall", 3.0),))
    path = work / "load.h5"
    t0 = time.monotonic()
    write_synthetic_run(path, n, 1, model=model, topology=topo, sweeps=(),
                        pairs=PairsSpec(bw_size_bytes=8 << 20, lat_iters=5, bw_windows=2) if args.pairs else None,
                        shift=shift, congestion=congestion)
    print(f"generated {path} ({path.stat().st_size / 1e9:.1f} GB) in {time.monotonic() - t0:.0f} s")
    crit = work / "criteria.yaml"
    crit.write_text(CRITERIA, encoding="utf-8")
    code_a, wall_a, rss_a, _ = timed([str(LAUNCHER), "accept", str(path), "--criteria", str(crit), "--json",
                                      str(work / "verdict.json"), "-q"])
    code_r, wall_r, rss_r, _ = timed([str(LAUNCHER), "report", str(path), "-o", str(work / "report"),
                                      "--criteria", str(crit)])
    print(f"accept: exit {code_a}, {wall_a:.1f} s, peak RSS {rss_a / 2**30:.2f} GiB")
    print(f"report: exit {code_r}, {wall_r:.1f} s, peak RSS {rss_r / 2**30:.2f} GiB")
    ok = code_a == 1 and code_r == 0 and wall_a + wall_r < WALL_BAR_S and max(rss_a, rss_r) < RSS_BAR_BYTES
    v = json.loads((work / "verdict.json").read_text())
    steps = [s["details"]["step"] for s in v["suspects"] if s["kind"] == "step"]
    victims = [s for s in v["suspects"] if s["kind"] == "victim"]
    print(f"step suspects {steps}; {len(victims)} victim suspects, hop classes "
          f"{sorted({s['details']['hop_class'] for s in victims})}")
    ok = ok and steps == [slow] and victims and all(s["details"]["hop_class"] != "same_leaf" for s in victims)
    print(f"{'PASS' if ok else 'FAIL'}: accept + report {wall_a + wall_r:.1f} s (bar {WALL_BAR_S:.0f} s), "
          f"peak {max(rss_a, rss_r) / 2**30:.2f} GiB (bar {RSS_BAR_BYTES / 2**30:.0f} GiB)")
    if not args.keep and args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
