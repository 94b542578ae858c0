#!/usr/bin/python3
"""The congestion judgement of tests/fabric/load_test.sh, and its summary over repeated runs
(tests/fabric/congestion_spread.sh).

    congestion_check.py F1.h5 [F2.h5 ...]  every run's victims, and the rule judged on the median
                                           over the runs (load_test.sh passes three); exit 0 if it holds
    congestion_check.py --summary F1 F2..  medians, ranges and per-run separations over the files

Victims form a ring (victim k measures against victim k+1). On the load rig the uplinks are the
shared, capped resource: a victim whose partner is in the other rack crosses them, one whose
partner is in its own rack does not. See RULE below for what is judged and tests/README.md
("fabric.load under CPU contention") for the measurements behind it.
"""

from __future__ import annotations

import sys

import h5py
import numpy as np

# The rule, in added p99 latency: ADDED_P99_MS(victim) = p99(loaded) - p99(isolated) in ms, and per
# run GAP = min over cross-rack victims - max over same-rack victims. Over the runs given (three in
# load_test.sh): median(GAP) > GAP_MS and median(min over cross-rack victims) >= GAP_MS.
# Why a difference and not the ratio p99(loaded) / p99(isolated) (the impact factor fabscope stores):
# CPU contention (8 ranks, the forwarders and the TCP stacks on 2 shared cores) adds scheduling
# delay to both phases of every victim, so under load the isolated p99 grows from ~0.3 ms to 2-6 ms
# and every ratio shrinks toward 1 (cross-rack p99 impact 36-42 on a quiet host, 3.4-6.8 beside two
# CPU hogs), while the same-rack victims' ratio can rise (10.95-13.44 in the failing CI runs). The
# difference cancels what both phases share; what is left for a cross-rack victim is the queueing
# in the capped uplinks: rig.sh's tbf queues hold 10 ms each (burst 32kb, latency 10ms). GAP_MS is
# half of one such queue.
# Why the median of three runs: p99 of 300 round trips is the third worst; one CPU starvation
# episode on a same-rack victim (1 run in 15 measured, at load average 36) lifts it as far as the
# uplink queue does. Measurements: tests/README.md, "fabric.load under CPU contention".
GAP_MS = 5.0
# The rule before (kept printed for comparison): min(cross p99 impact) > 3 x max(same) and > 3.
OLD_SEPARATION = 3.0


def victims(path: str) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        run = f["runs/00_congestion"]
        v = run["victims"][:]
        leaf = f["topology/hosts/leaf"][:][f["topology/ranks/host"][:]]
        lat_ms = run["latency_ns"][:] / 1e6  # [isolated, loaded..., victim, iteration]
        n = len(v)
        cross = np.array([leaf[v[k]] != leaf[v[(k + 1) % n]] for k in range(n)])
        return {
            "victims": v, "cross": cross,
            "lat99": run["impact_latency_p99"][0], "lat50": run["impact_latency_p50"][0],
            "bw50": run["impact_bw_p50"][0],
            "added99": np.percentile(lat_ms[1], 99, axis=-1) - np.percentile(lat_ms[0], 99, axis=-1),
            "iso99": np.percentile(lat_ms[0], 99, axis=-1),
        }


def gap(d: dict[str, np.ndarray]) -> tuple[float, float, float]:
    """(min cross-rack added p99, max same-rack added p99, their difference), ms."""
    c, i = float(d["added99"][d["cross"]].min()), float(d["added99"][~d["cross"]].max())
    return c, i, c - i


def describe(d: dict[str, np.ndarray]) -> str:
    c, i, g = gap(d)
    old_c, old_i = d["lat99"][d["cross"]].min(), d["lat99"][~d["cross"]].max()
    return (f"added p99 latency: min cross-rack {c:.2f} ms vs max same-rack {i:.2f} ms, gap {g:.2f} ms "
            f"[p99 impact factors: {old_c:.2f} vs {old_i:.2f}, separation {old_c / old_i:.2f}]")


def mixed(d: dict[str, np.ndarray]) -> bool:
    return bool(d["cross"].any() and not d["cross"].all())


def judge(runs: list[dict[str, np.ndarray]]) -> tuple[bool, str]:
    if not runs or not all(mixed(d) for d in runs):
        return False, "the seed gave no mix of cross-rack and same-rack victims; choose another --seed"
    gaps = [gap(d) for d in runs]
    med_gap = float(np.median([g[2] for g in gaps]))
    med_cross = float(np.median([g[0] for g in gaps]))
    ok = med_gap > GAP_MS and med_cross >= GAP_MS
    return ok, (f"median over {len(runs)} runs: gap {med_gap:.2f} ms (need > {GAP_MS:g}), cross-rack added p99 "
                f"{med_cross:.2f} ms (need >= {GAP_MS:g})")


def old_rule(d: dict[str, np.ndarray]) -> bool:
    old_c, old_i = d["lat99"][d["cross"]].min(), d["lat99"][~d["cross"]].max()
    return bool(old_c > OLD_SEPARATION * old_i and old_c > 3)


def table(d: dict[str, np.ndarray]) -> None:
    v = d["victims"]
    for k in range(len(v)):
        print(f"    victim rank {v[k]} -> rank {v[(k + 1) % len(v)]}: {'cross-rack' if d['cross'][k] else 'same rack '}  "
              f"added p99 {d['added99'][k]:6.2f} ms (isolated p99 {d['iso99'][k]:5.2f} ms)  impact latency p99 "
              f"{d['lat99'][k]:6.2f}  p50 {d['lat50'][k]:6.2f}  bandwidth p50 {d['bw50'][k]:5.2f}")


def summary(paths: list[str]) -> None:
    runs = [victims(p) for p in paths]
    if not runs:
        print("summary: no run")
        return
    print(f"summary over {len(runs)} runs (median [min .. max] of every victim of the class):")
    for metric, name in (("added99", "added p99 latency, ms"), ("iso99", "isolated p99, ms"),
                         ("lat99", "latency p99 impact"), ("lat50", "latency p50 impact"),
                         ("bw50", "bandwidth p50 impact")):
        for cls, mask in (("cross-rack", True), ("same-rack ", False)):
            x = np.concatenate([r[metric][r["cross"] == mask] for r in runs])
            print(f"  {name:22s} {cls}: {np.median(x):8.2f} [{x.min():.2f} .. {x.max():.2f}]")
    gaps = [gap(r)[2] for r in runs]
    sep = [r["lat99"][r["cross"]].min() / r["lat99"][~r["cross"]].max() for r in runs]
    print("  gap min(cross) - max(same), added p99 latency (ms) per run: " + ", ".join(f"{g:.2f}" for g in gaps)
          + f"; median {np.median(gaps):.2f}, min {min(gaps):.2f} (rule: median of 3 runs > {GAP_MS:g})")
    print("  separation min(cross) / max(same), p99 impact factor per run: " + ", ".join(f"{s:.2f}" for s in sep)
          + f"; median {np.median(sep):.2f} (old rule: every run > {OLD_SEPARATION:g})")
    print(f"  single runs with gap > {GAP_MS:g} ms: {sum(g > GAP_MS for g in gaps)} of {len(runs)}; "
          f"the old rule held in {sum(old_rule(r) for r in runs)}")
    triples = [runs[k:k + 3] for k in range(0, len(runs) - 2, 3)]
    if triples:
        print(f"  consecutive triples judged as load_test.sh judges them: {sum(judge(t)[0] for t in triples)} of "
              f"{len(triples)} hold")


def main(argv: list[str]) -> int:
    if argv[:1] == ["--summary"]:
        summary(argv[1:])
        return 0
    if not argv or any(a.startswith("-") for a in argv):
        print("usage: congestion_check.py FILE.h5... | --summary FILE.h5...", file=sys.stderr)
        return 2
    runs = [victims(p) for p in argv]
    for p, d in zip(argv, runs):
        print(f"  {p}:")
        table(d)
        print(f"    {describe(d)}")
    ok, text = judge(runs)
    print(f"  {text}: {'holds' if ok else 'FAILS'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
