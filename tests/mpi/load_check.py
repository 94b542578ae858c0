#!/usr/bin/python3
"""Checks a `shift` or `congestion` run in a results file against results/SCHEMA.md.

usage: load_check.py FILE.h5 --ranks N --expect shift|congestion [--run NAME] [--link-rate GBPS]
                     [--placement-leaf-packed] [--placement-spread] [--partial] [--verbs]
Every derived number is recomputed from the raw samples the file holds. Exits 0 when every check
passes, else prints each failure and exits 1.
"""
import argparse
import math
import sys

import h5py
import numpy as np

failures: list[str] = []


def check(cond: bool, what: str) -> None:
    if not cond:
        failures.append(what)


def close(a, b) -> bool:
    return bool(np.allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=1e-9, atol=0, equal_nan=True))


def find_run(f: h5py.File, kind: str, name: str | None) -> h5py.Group:
    for key in f["runs"]:
        g = f["runs"][key]
        if g.attrs["benchmark"] == kind and (name is None or g.attrs["name"] == name):
            return g
    raise SystemExit(f"FAIL: no {kind} run{' named ' + name if name else ''} in {f.filename}")


def is_derangement(row: np.ndarray) -> bool:
    return np.array_equal(np.sort(row), np.arange(row.size)) and not np.any(row == np.arange(row.size))


def check_shift(g: h5py.Group, n: int, link_rate: float | None, partial: bool, verbs: bool) -> None:
    a = g.attrs
    total, done = int(a["steps_total"]), int(a["steps_done"])
    pattern = a["pattern"]
    iters = int(a["iters"])
    check(int(a["window"]) == 64, "window 64")
    check(pattern in ("shift", "permutation"), f"pattern {pattern}")
    if pattern == "shift":
        check(total == n - 1, f"steps_total {total} != N - 1")
    if partial:
        check(int(a["complete"]) == 0, "a killed run is not complete")
        check(0 < done < total, f"steps_done {done} of {total}")
    else:
        check(int(a["complete"]) == 1 and done == total, f"steps_done {done} == steps_total {total}, complete")
    rate = float(a["link_rate_gbps"])
    if verbs and link_rate is None:
        check(math.isfinite(rate) and rate > 0, f"link_rate_gbps {rate}: the verbs port's active rate")
    elif link_rate is None:
        check(math.isnan(rate), f"link_rate_gbps {rate} should be NaN (unknown on mpi)")
    else:
        check(abs(rate - link_rate) < 1e-9, f"link_rate_gbps {rate} != {link_rate}")
    to = g["partner_to"][:]
    check(to.shape == (total, n), f"partner_to shape {to.shape}")
    for s in range(total):
        check(is_derangement(to[s]), f"partner_to[{s}] {to[s].tolist()} is not a derangement")
        if pattern == "shift":
            check(np.array_equal(to[s], (np.arange(n) + s + 1) % n), f"partner_to[{s}] is not rank + {s + 1}")
    units = {"flow_gbps": "Gb/s", "bw_gbps": "Gb/s", "step_aggregate_gbps": "Gb/s", "step_effective_pct": "%",
             "step_seconds": "s", "flow_samples": "Gb/s", "partner_to": "-"}
    for name, u in units.items():
        check(g[name].attrs["units"] == u, f"{name} units")
    samples = g["flow_samples"]
    check(samples.shape == (total, n, iters), f"flow_samples shape {samples.shape}")
    check(samples.compression == "gzip", "flow_samples compressed")
    smp = samples[:]
    flow = g["flow_gbps"][:]
    agg = g["step_aggregate_gbps"][:]
    pct = g["step_effective_pct"][:]
    secs = g["step_seconds"][:]
    check(flow.shape == (total, n), f"flow_gbps shape {flow.shape}")
    # Completed steps are measured everywhere; the others are NaN (a killed run).
    check(bool(np.all(np.isfinite(smp[:done])) and np.all(smp[:done] > 0)), "flow_samples of done steps finite and positive")
    check(bool(np.all(np.isnan(smp[done:]))), "flow_samples of steps not done are NaN")
    check(close(flow[:done], np.percentile(smp[:done], 50, axis=2)), "flow_gbps == p50 of flow_samples")
    check(bool(np.all(np.isnan(flow[done:]))), "flow_gbps of steps not done NaN")
    mean_rate = smp.shape[2] / np.sum(1.0 / smp[:done], axis=2)  # each flow's bits / its windows' time
    check(close(agg[:done], mean_rate.sum(axis=1)), "step_aggregate_gbps == sum of the flows' mean rates")
    expected_pct = 100 * agg[:done] / (n * rate) if not math.isnan(rate) else np.full(done, np.nan)
    check(close(pct[:done], expected_pct), "step_effective_pct == 100 * aggregate / (N * link rate)")
    check(bool(np.all(np.isfinite(secs[:done])) and np.all(secs[:done] > 0)), "step_seconds of done steps positive")
    check(bool(np.all(np.isnan(agg[done:])) and np.all(np.isnan(secs[done:]))), "per-step values of steps not done NaN")
    bw = g["bw_gbps"][:]
    check(bw.shape == (n, n), f"bw_gbps shape {bw.shape}")
    check(bool(np.all(np.isnan(np.diag(bw)))), "bw_gbps diagonal NaN")
    per_pair: dict[tuple[int, int], list[float]] = {}
    for s in range(done):
        for i in range(n):
            per_pair.setdefault((i, int(to[s, i])), []).append(flow[s, i])
    expected = np.full((n, n), np.nan)
    for (i, j), values in per_pair.items():
        expected[i, j] = np.percentile(values, 50)
    check(close(bw, expected), "bw_gbps[i, j] == p50 of flow_gbps over the done steps where i sent to j")
    if pattern == "shift" and not partial:
        off = ~np.eye(n, dtype=bool)
        check(bool(np.all(np.isfinite(bw[off])) and np.all(bw[off] > 0)), "shift: every off-diagonal cell measured")
    check("errors" not in g, "no failed flows")
    if verbs:
        check_counters(g["counters"], n, "shift")


def check_counters(c: h5py.Group, n: int, what: str) -> None:
    names = list(c["names"].asstr()[:])
    delta = c["delta"][:]
    check(delta.shape == (n, len(names)), f"{what} counters/delta shape {delta.shape}")
    for name in ("hw_counters/sent_pkts", "hw_counters/rcvd_pkts"):
        check(name in names, f"{what} counters: {name} read")
    check(all(n_.startswith(("counters/", "hw_counters/", "netdev/")) for n_ in names), f"{what} counter names {names}")


def victim_count(n: int, fraction: float) -> int:
    v = int(math.floor(fraction * n + 0.5))  # std::lround
    return min(max(v, 2), max(2, n - 2))


def check_congestion(g: h5py.Group, f: h5py.File, n: int, leaf_packed: bool, spread: bool, verbs: bool) -> None:
    a = g.attrs
    fraction = float(a["victim_fraction"])
    patterns = [p for p in a["patterns"].split(",") if p]
    iters, bw_iters = int(a["iters"]), int(a["bw_iters"])
    check(int(a["complete"]) == 1, "complete")
    check(int(a["phases_done"]) == int(a["phases_total"]) == len(patterns) + 1, "phases_done == phases_total")
    role = g["role"][:]
    victims = g["victims"][:]
    v, q = victim_count(n, fraction), len(patterns)
    check(role.shape == (n,) and set(role.tolist()) <= {1, 2}, f"role {role.tolist()}")
    check(victims.shape == (v,), f"victims shape {victims.shape}, expected ({v},) for fraction {fraction}")
    check(np.array_equal(np.sort(victims), np.flatnonzero(role == 1)), "victims are exactly the ranks of role 1")
    phases = [p.decode() if isinstance(p, bytes) else p for p in g["phases"][:]]
    check(phases == ["isolated"] + patterns, f"phases {phases}")
    lat, bw, ar = g["latency_ns"][:], g["bw_gbps"][:], g["allreduce_ns"][:]
    check(lat.shape == (q + 1, v, iters), f"latency_ns shape {lat.shape}")
    check(bw.shape == (q + 1, v, bw_iters), f"bw_gbps shape {bw.shape}")
    check(ar.shape == (q + 1, iters), f"allreduce_ns shape {ar.shape}")
    for name, x in (("latency_ns", lat), ("bw_gbps", bw), ("allreduce_ns", ar)):
        check(bool(np.all(np.isfinite(x)) and np.all(x > 0)), f"{name} finite and positive")
    p = np.percentile
    expect = {
        "impact_latency_p50": p(lat[1:], 50, axis=2) / p(lat[:1], 50, axis=2),
        "impact_latency_p99": p(lat[1:], 99, axis=2) / p(lat[:1], 99, axis=2),
        "impact_bw_p50": p(bw[:1], 50, axis=2) / p(bw[1:], 50, axis=2),
        "impact_allreduce_p50": p(ar[1:], 50, axis=1) / p(ar[0], 50),
        "impact_allreduce_p99": p(ar[1:], 99, axis=1) / p(ar[0], 99),
    }
    for name, want in expect.items():
        got = g[name][:]
        check(got.shape == want.shape, f"{name} shape {got.shape} != {want.shape}")
        check(bool(np.all(np.isfinite(got)) and np.all(got > 0)), f"{name} finite and positive")
        check(close(got, want), f"{name} == its definition from the samples")
    agg = g["aggressor_gbps"][:]
    check(agg.shape == (q, n), f"aggressor_gbps shape {agg.shape}")
    aggressors = role == 2
    check(bool(np.all(np.isnan(agg[:, ~aggressors]))), "aggressor_gbps NaN for victims")
    target = int(a["incast_target"])
    check(bool(role[target] == 2), "incast_target is an aggressor")
    for k, pattern in enumerate(patterns):
        row = agg[k].copy()
        if pattern == "incast":
            check(row[target] == 0, "incast target sends nothing")
            row[target] = np.nan
        senders = aggressors & ~np.isnan(row)
        check(bool(np.all(row[senders] > 0)), f"{pattern}: every sending aggressor moved data")
    for name in ("latency_ns", "bw_gbps", "allreduce_ns", "impact_latency_p50", "aggressor_gbps"):
        check("units" in g[name].attrs, f"{name} has units")
    if verbs:
        # Counters of the loaded phases only.
        check("isolated" not in g["counters"], "no counters for the isolated phase")
        for pattern in patterns:
            check(pattern in g["counters"], f"counters/{pattern} written")
            if pattern in g["counters"]:
                check_counters(g["counters"][pattern], n, pattern)
    if leaf_packed or spread:
        host = f["topology/ranks/host"][:]
        leaf_of = f["topology/hosts/leaf"][:][host]
        per_leaf: dict[int, int] = {}
        for r in victims:
            per_leaf[int(leaf_of[r])] = per_leaf.get(int(leaf_of[r]), 0) + 1
        leaf_size = {int(l): int(np.sum(leaf_of == l)) for l in set(leaf_of.tolist())}
        if leaf_packed:
            partial = [l for l, c in per_leaf.items() if c < leaf_size[l]]
            check(len(partial) <= 1, f"leaf placement: victims fill whole leaves, per leaf {per_leaf}")
        if spread:
            counts = [per_leaf.get(l, 0) for l in leaf_size]
            check(max(counts) - min(counts) <= 1, f"spread placement: victims even over leaves, per leaf {per_leaf}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--ranks", type=int, required=True)
    ap.add_argument("--expect", choices=["shift", "congestion"], required=True)
    ap.add_argument("--run")
    ap.add_argument("--link-rate", type=float)
    ap.add_argument("--placement-leaf-packed", action="store_true")
    ap.add_argument("--placement-spread", action="store_true")
    ap.add_argument("--partial", action="store_true", help="a killed shift run")
    ap.add_argument("--verbs", action="store_true", help="verbs transport: port rate and counters")
    args = ap.parse_args()
    with h5py.File(args.file, "r") as f:
        g = find_run(f, args.expect, args.run)
        if args.expect == "shift":
            check_shift(g, args.ranks, args.link_rate, args.partial, args.verbs)
        else:
            check_congestion(g, f, args.ranks, args.placement_leaf_packed, args.placement_spread, args.verbs)
    for msg in failures:
        print(f"FAIL: {args.file} {args.expect}: {msg}")
    print(f"{args.expect} check: {args.file}:", "ok" if not failures else f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
