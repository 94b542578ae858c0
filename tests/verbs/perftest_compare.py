#!/usr/bin/python3
"""Reads what tests/verbs/perftest_compare.sh brought back from the VM and prints the ratio table.

usage: perftest_compare.py --dir DIR [--markdown FILE] [--json FILE] [--strict]

DIR holds manifest.tsv (one line per run), conditions.txt, pt/*.txt (perftest client output) and
fs/*.h5 (fabscope results files). Per repeat r, op, size:
  latency ratio   = fabscope lat p50 / perftest t_typical   (perftest -C cycles / guest TSC MHz)
  bandwidth ratio = fabscope bw_gbps_overall / perftest BW average (MiB/s -> Gb/s)
The table shows the median ratio over repeats and its min..max, the bar and a verdict: "met" (the
median ratio is within the bar), "MISSED" (outside, and each tool's own results moved less than
1.10x between repeats, so the difference is real), "noise" (outside, but a tool's own repeats
spread more than 1.10x: this run cannot resolve the bar), "tick" (latency: more than half of
one tool's samples sit in the 2-4 ms scheduler-tick mode, so the medians compare ticks). Exit 0 unless a run failed or is missing, or (--strict) a bar is missed.
"""
import argparse
import csv
import json
import math
import re
import statistics
import sys
from pathlib import Path

import h5py
import numpy as np

LAT_BAR = (0.95, 1.05)
BW_BAR = 0.95
TICK_US = 3000.0  # samples above this are in the scheduler-tick mode (HZ 250: 4 ms)


def parse_conditions(path: Path) -> dict:
    out = {}
    for line in path.read_text().splitlines():
        k, _, v = line.partition(" ")
        out[k] = v.strip()
    return out


def perftest_lat(path: Path, mhz: float) -> dict:
    """t_typical (us) from the summary line, plus the raw samples (-U) in us."""
    lines = path.read_text(errors="replace").splitlines()
    raw, summary = [], None
    for i, line in enumerate(lines):
        m = re.match(r"^\d+, ([-+0-9.eE]+)$", line.strip())
        if m:
            raw.append(float(m.group(1)))
        if "t_typical" in line and i + 1 < len(lines):
            f = lines[i + 1].split()
            if len(f) >= 5 and f[0].isdigit():
                summary = f
    if summary is None:
        return {"ok": False}
    typical_cycles = float(summary[4])
    res = {"ok": math.isfinite(typical_cycles) and typical_cycles > 0, "typical_us": typical_cycles / mhz}
    if raw:
        raw_us = np.array(raw) / mhz
        # The raw list is on the same scale as the summary in perftest 6.x (one-way for write/send);
        # rescale if a version prints round trips.
        factor = round(float(np.median(raw_us)) / res["typical_us"]) if res["typical_us"] > 0 else 1
        raw_us = raw_us / max(1, factor)
        res["samples_us"] = raw_us
    return res


def perftest_bw(path: Path) -> dict:
    lines = path.read_text(errors="replace").splitlines()
    for i, line in enumerate(lines):
        if "BW average" in line and i + 1 < len(lines):
            f = lines[i + 1].split()
            if len(f) >= 4 and f[0].isdigit():
                mib_s = float(f[3])
                gbps = mib_s * 1048576 * 8 / 1e9
                # perftest's clock calibration failing gives 0 (cycles_to_units = 0) or inf
                return {"ok": math.isfinite(gbps) and gbps > 0, "gbps": gbps, "mib_s": mib_s}
    return {"ok": False}


def fabscope_file(path: Path, kind: str) -> dict:
    with h5py.File(path, "r") as f:
        run = f[f"runs/00_{kind}"]
        sizes = [int(s) for s in run["size_bytes"][:]]
        if kind == "lat":
            p50 = run["summary/latency_ns_p50"][:] / 1e3
            samples = run["samples/latency_ns"][:] / 1e3
            return {int(s): {"p50_us": float(p50[i]), "samples_us": samples[i]} for i, s in enumerate(sizes)}
        overall = run["summary/bw_gbps_overall"][:]
        p50 = run["summary/bw_gbps_p50"][:]
        return {int(s): {"overall": float(overall[i]), "p50": float(p50[i])} for i, s in enumerate(sizes)}


def fmt_size(n: int) -> str:
    for unit, div in (("M", 1 << 20), ("K", 1 << 10)):
        if n >= div and n % div == 0:
            return f"{n // div}{unit}"
    return str(n)


def spread(vals):
    vals = [v for v in vals if v is not None and math.isfinite(v)]
    if not vals:
        return None, None, None
    return statistics.median(vals), min(vals), max(vals)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True, type=Path)
    ap.add_argument("--markdown", type=Path)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--strict", action="store_true")
    a = ap.parse_args()
    cond = parse_conditions(a.dir / "conditions.txt")
    mhz = float(cond.get("cpu_mhz", "nan"))
    if not math.isfinite(mhz) or mhz <= 0:
        print("perftest_compare.py: no cpu_mhz in conditions.txt", file=sys.stderr)
        return 1
    problems: list[str] = []
    # data[(op, kind, size)][repeat][tool] = value (lat: us; bw: Gb/s); extra per-run details too
    data: dict = {}
    tick: dict = {}
    fs_p50bw: dict = {}
    runs_seconds: dict = {}
    retrans: dict = {}  # (op, kind, tool) -> [retries, duplicates, packets] summed over repeats
    with open(a.dir / "manifest.tsv") as mf:
        rows = list(csv.DictReader(mf, delimiter="\t"))
    for row in rows:
        r, op, kind, tool, path = int(row["repeat"]), row["op"], row["kind"], row["tool"], a.dir / row["file"]
        runs_seconds.setdefault((tool, kind), []).append(float(row["seconds"]))
        if row.get("retries") not in (None, ""):
            acc = retrans.setdefault((op, kind, tool), [0, 0, 0])
            for i, col in enumerate(("retries", "duplicates", "packets")):
                acc[i] += int(float(row[col]))
        if row["rc"] != "0" or not path.exists():
            problems.append(f"repeat {r} {op} {kind} {tool}: rc {row['rc']} ({row['file']})")
            continue
        try:
            if tool == "perftest":
                size = int(re.search(r"-(\d+)\.txt$", row["file"]).group(1))
                if kind == "lat":
                    res = perftest_lat(path, mhz)
                    if not res["ok"]:
                        problems.append(f"repeat {r} {op} lat perftest {size}: no usable result ({row['file']})")
                        continue
                    data.setdefault((op, kind, size), {}).setdefault(r, {})["perftest"] = res["typical_us"]
                    if "samples_us" in res:
                        tick.setdefault((op, size, "perftest"), []).append(float(np.mean(res["samples_us"] > TICK_US)))
                else:
                    res = perftest_bw(path)
                    if not res["ok"]:
                        problems.append(f"repeat {r} {op} bw perftest {size}: no usable result ({row['file']})")
                        continue
                    data.setdefault((op, kind, size), {}).setdefault(r, {})["perftest"] = res["gbps"]
            else:
                for size, v in fabscope_file(path, kind).items():
                    if kind == "lat":
                        data.setdefault((op, kind, size), {}).setdefault(r, {})["fabscope"] = v["p50_us"]
                        tick.setdefault((op, size, "fabscope"), []).append(float(np.mean(v["samples_us"] > TICK_US)))
                    else:
                        data.setdefault((op, kind, size), {}).setdefault(r, {})["fabscope"] = v["overall"]
                        fs_p50bw.setdefault((op, size), {})[r] = v["p50"]
        except (OSError, KeyError, ValueError, AttributeError) as e:
            problems.append(f"repeat {r} {op} {kind} {tool}: unreadable {row['file']}: {e}")

    ops = []
    for row in rows:
        if row["op"] not in ops:
            ops.append(row["op"])
    table = []
    misses = 0
    for kind in ("lat", "bw"):
        for op in ops:
            for size in sorted(s for (o, k, s) in data if o == op and k == kind):
                reps = data[(op, kind, size)]
                ratios = [v["fabscope"] / v["perftest"] for v in reps.values() if "fabscope" in v and "perftest" in v]
                pt_med, _, _ = spread([v.get("perftest") for v in reps.values()])
                fs_med, _, _ = spread([v.get("fabscope") for v in reps.values()])
                r_med, r_min, r_max = spread(ratios)
                # Noise floor: how far the same tool's own results move between repeats (max/min).
                pt_vals = [v["perftest"] for v in reps.values() if "perftest" in v]
                fs_vals = [v["fabscope"] for v in reps.values() if "fabscope" in v]
                pt_spread = max(pt_vals) / min(pt_vals) if len(pt_vals) > 1 else None
                fs_spread = max(fs_vals) / min(fs_vals) if len(fs_vals) > 1 else None
                if kind == "lat":
                    ok = r_med is not None and LAT_BAR[0] <= r_med <= LAT_BAR[1]
                    bar = "0.95..1.05"
                else:
                    ok = r_med is not None and r_med >= BW_BAR
                    bar = ">= 0.95"
                misses += 0 if ok else 1
                # A miss is only evidence against fabscope when each tool repeats itself more tightly
                # than the bar's width; otherwise the verdict is "noise".
                width = 0.05
                noisy = any(x is not None and x > 1 + 2 * width for x in (pt_spread, fs_spread))
                verdict = "met" if ok else ("noise" if noisy else "MISSED")
                if kind == "lat":
                    ticks = [spread(tick.get((op, size, t), []))[0] for t in ("fabscope", "perftest")]
                    if any(x is not None and x > 0.5 for x in ticks):
                        verdict = "tick"  # the medians measure the scheduler tick, not the transport
                entry = {
                    "op": op, "kind": kind, "size": size, "n": len(ratios),
                    "perftest": pt_med, "fabscope": fs_med,
                    "ratio_median": r_med, "ratio_min": r_min, "ratio_max": r_max,
                    "ratios": ratios, "bar": bar, "met": ok, "verdict": verdict,
                    "perftest_spread": pt_spread, "fabscope_spread": fs_spread,
                }
                if kind == "lat":
                    entry["tick_frac_fabscope"] = spread(tick.get((op, size, "fabscope"), []))[0]
                    entry["tick_frac_perftest"] = spread(tick.get((op, size, "perftest"), []))[0]
                else:
                    p50s = fs_p50bw.get((op, size), {})
                    p50_ratios = [p50s[r] / v["perftest"] for r, v in reps.items() if r in p50s and "perftest" in v]
                    entry["ratio_p50_median"] = spread(p50_ratios)[0]
                table.append(entry)

    def f(v, spec):
        return "n/a" if v is None else format(v, spec)

    head = (f"{'op':<6} {'metric':<22} {'size':>6} {'n':>2} {'perftest':>10} {'fabscope':>10} "
            f"{'ratio':>6} {'min..max':>12} {'bar':>10} {'verdict':>7} {'pt_mx/mn':>8} {'fs_mx/mn':>8}  notes")
    print("# fabscope / perftest, same rxe0, one VM boot (lat: us one-way, read: us round trip; bw: Gb/s)")
    print(head)
    md = ["| op | metric | size | n | perftest | fabscope | ratio (median) | ratio min..max | bar | verdict | perftest max/min | fabscope max/min | notes |",
          "|---|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---|"]
    for e in table:
        metric = "lat p50/typical (us)" if e["kind"] == "lat" else "bw overall/avg (Gb/s)"
        if e["kind"] == "lat":
            notes = f"tick-mode samples fs {f(e['tick_frac_fabscope'], '.0%')} pt {f(e['tick_frac_perftest'], '.0%')}"
            vfmt = ".2f"
        else:
            notes = f"fabscope p50/avg {f(e['ratio_p50_median'], '.3f')}"
            vfmt = ".3f"
        mm = f"{f(e['ratio_min'], '.3f')}..{f(e['ratio_max'], '.3f')}"
        ps, fsp = f(e["perftest_spread"], ".2f"), f(e["fabscope_spread"], ".2f")
        print(f"{e['op']:<6} {metric:<22} {fmt_size(e['size']):>6} {e['n']:>2} {f(e['perftest'], vfmt):>10} "
              f"{f(e['fabscope'], vfmt):>10} {f(e['ratio_median'], '.3f'):>6} {mm:>12} {e['bar']:>10} {e['verdict']:>7} "
              f"{ps:>8} {fsp:>8}  {notes}")
        md.append(f"| {e['op']} | {metric} | {fmt_size(e['size'])} | {e['n']} | {f(e['perftest'], vfmt)} | "
                  f"{f(e['fabscope'], vfmt)} | {f(e['ratio_median'], '.3f')} | {mm} | {e['bar']} | {e['verdict']} | "
                  f"{ps} | {fsp} | {notes} |")
    secs = {f"{t}/{k}": round(sum(v), 1) for (t, k), v in sorted(runs_seconds.items())}
    print(f"# conditions: {cond.get('model', '?')}, {cond.get('nproc', '?')} vCPUs, kernel {cond.get('kernel', '?')}, "
          f"clocksource {cond.get('clocksource', '?')}, TSC {mhz} MHz (1 s check: {cond.get('tsc_mhz_1s', 'n/a')}), "
          f"clock_gettime {cond.get('clock_gettime_ns', 'n/a')} ns, rdtsc {cond.get('rdtsc_ns', 'n/a')} ns, "
          f"perftest {cond.get('perftest', '?')}")
    print(f"# {cond.get('settings', '')}")
    if cond.get("clocksource", "tsc") != "tsc":
        print(f"# WARNING: the guest's clocksource is {cond.get('clocksource')}: every clock_gettime is a system call and an "
              f"emulated timer read ({cond.get('clock_gettime_ns', '?')} ns here), which fabscope's timed loops pay several "
              "times per iteration and perftest (rdtsc) does not; boot the guest with tsc=reliable (see PERF.md)")
    print(f"# seconds spent per tool/kind (incl. setup): {secs}")
    if retrans:
        print("# rxe retransmits (completer_retry_err) / duplicates seen (duplicate_request) / packets, all repeats:")
        for (op, kind, tool), (rt, dup, pk) in sorted(retrans.items()):
            print(f"#   {op:<5} {kind:<3} {tool:<8} retries {rt:>5}  duplicates {dup:>6}  packets {pk:>8}")
    verdicts = [e["verdict"] for e in table]
    print(f"# bars met: {verdicts.count('met')} of {len(table)}; missed beyond the noise floor: {verdicts.count('MISSED')}; "
          f"inconclusive (a tool's own repeats spread > 1.10x): {verdicts.count('noise')}; "
          f"in the tick mode: {verdicts.count('tick')}")
    for p in problems:
        print("PROBLEM:", p)
    if a.markdown:
        a.markdown.write_text("\n".join(md) + "\n")
    if a.json:
        a.json.write_text(json.dumps({"conditions": cond, "table": table, "problems": problems,
                                      "retransmits": {"/".join(k): v for k, v in retrans.items()}},
                                     indent=1, default=float))
    if problems:
        return 1
    if a.strict and misses:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
