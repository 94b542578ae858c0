#!/usr/bin/python3
"""Summary table of tests/perf/scale_bench.sh: reads fabscope-scale-bench's key=value lines on
stdin; prints one row per (ranks, layout), the v1/v2 ratios, and last a line
`SCALE <ranks> <write ms> <peak MiB> <file GB> <cpu ms>` for the largest v2 size."""

from __future__ import annotations

import statistics
import sys


def main() -> int:
    rows = [dict(kv.split("=", 1) for kv in line.split()) for line in sys.stdin if line.startswith("layout=")]
    by: dict[tuple[int, str], list[dict[str, str]]] = {}
    for r in rows:
        by.setdefault((int(r["ranks"]), r["layout"]), []).append(r)
    head = ("ranks", "layout", "reps", "wall ms/round: median (min..max of reps)", "cpu ms/round", "rank0 MiB",
            "init s", "B/row", "kept %", "file GB, all pairs", "writing, all rounds")
    print(" | ".join(head))
    last: dict[tuple[int, str], tuple[float, float, float, float]] = {}
    for n, layout in sorted(by, key=lambda k: (k[0], k[1] != "v2")):
        rs = by[(n, layout)]
        med = [float(r["write_ms_median"]) for r in rs]
        m = statistics.median(med)
        cpu = statistics.median(float(r["cpu_ms_median"]) for r in rs)
        peak = max(float(r["rank0_peak_mib"]) for r in rs)
        bpr = statistics.median(float(r["bytes_per_row"]) for r in rs)
        kept = 100 * sum(int(r["kept"]) for r in rs) / sum(int(r["rows"]) for r in rs)
        gb = statistics.median(float(r["projected_file_gb"]) for r in rs)
        mins = statistics.median(float(r["projected_write_min"]) for r in rs)
        init = statistics.median(float(r["init_s"]) for r in rs)
        last[(n, layout)] = (m, peak, gb, cpu)
        print(f"{n} | {layout} | {len(rs)} | {m:.2f} ({min(med):.2f}..{max(med):.2f}) | {cpu:.2f} | {peak:.0f} | "
              f"{init:.2f} | {bpr:.1f} | {kept:.3f} | {gb:.2f} | {mins:.1f} min")
    for n in sorted({k[0] for k in last}):
        if (n, "v1") in last and (n, "v2") in last:
            v1, v2 = last[(n, "v1")], last[(n, "v2")]
            print(f"ratio v1/v2 at {n} ranks: wall time per round {v1[0] / v2[0]:.0f}x, cpu time per round "
                  f"{v1[3] / v2[3]:.0f}x, file {v1[2] / v2[2]:.1f}x, rank 0 memory {v1[1] / v2[1]:.1f}x")
    v2_sizes = [k[0] for k in last if k[1] == "v2"]
    if not v2_sizes:
        print("SCALE 0 nan nan nan nan")
        return 1
    big = max(v2_sizes)
    m, peak, gb, cpu = last[(big, "v2")]
    print(f"SCALE {big} {m:.2f} {peak:.0f} {gb:.2f} {cpu:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
