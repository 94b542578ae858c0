#!/usr/bin/python3
"""Checks a results file written by `fabscope` against results/SCHEMA.md, the way a reader sees it.

usage: check_results.py FILE.h5 --ranks N --expect KIND[,KIND...]
Exits 0 when every check passes, else prints each failure and exits 1.
"""
import argparse
import sys

import h5py
import numpy as np

STATS = ["min", "p50", "p90", "p99", "p999", "max", "mean", "stddev"]
failures: list[str] = []


def check(cond: bool, what: str) -> None:
    if not cond:
        failures.append(what)


def finite_positive(a: np.ndarray) -> bool:
    return a.size > 0 and bool(np.all(np.isfinite(a))) and bool(np.all(a > 0))


def check_sweep(g: h5py.Group, kind: str) -> None:
    sizes = g["size_bytes"][:]
    check(g["size_bytes"].attrs["units"] == "bytes", f"{g.name}/size_bytes units")
    check(bool(np.all(np.diff(sizes) > 0)), f"{g.name} sizes ascending")
    iters = int(g.attrs["iters"])
    metric = "latency_ns" if kind == "lat" else "bw_gbps"
    units = "ns" if kind == "lat" else "Gb/s"
    raw = g["samples/" + metric]
    check(raw.shape == (len(sizes), iters), f"{raw.name} shape {raw.shape} != {(len(sizes), iters)}")
    check(raw.attrs["units"] == units, f"{raw.name} units")
    check(raw.compression == "gzip", f"{raw.name} is compressed")
    check(finite_positive(raw[:]), f"{raw.name} finite and positive")
    for st in STATS:
        ds = g[f"summary/{metric}_{st}"]
        check(ds.shape == (len(sizes),), f"{ds.name} shape")
        check(ds.attrs["units"] == units, f"{ds.name} units")
        vals = ds[:]
        check(bool(np.all(np.isfinite(vals))), f"{ds.name} finite")
    p50 = g[f"summary/{metric}_p50"][:]
    check(bool(np.allclose(p50, np.percentile(raw[:], 50, axis=1))), f"{g.name} p50 matches numpy")
    check(bool(np.all(g[f"summary/{metric}_min"][:] <= p50)), f"{g.name} min <= p50")
    check(bool(np.all(p50 <= g[f"summary/{metric}_max"][:])), f"{g.name} p50 <= max")
    if kind != "lat":
        check(int(g.attrs["window"]) == 64, f"{g.name} window 64")
        check(finite_positive(g["summary/bw_gbps_overall"][:]), f"{g.name} bw_gbps_overall")
        check(finite_positive(g["summary/msg_rate_mpps_p50"][:]), f"{g.name} msg_rate_mpps_p50")


def check_pairs(g: h5py.Group, n: int) -> None:
    rounds = int(g.attrs["rounds_total"])
    check(rounds == (n - 1 if n % 2 == 0 else n), f"{g.name} rounds_total {rounds} for {n} ranks")
    check(int(g.attrs["rounds_done"]) == rounds, f"{g.name} rounds_done")
    status = g["status"][:]
    check(status.shape == (n, n), f"{g.name}/status shape")
    off = ~np.eye(n, dtype=bool)
    check(bool(np.all(status[off] == 1)), f"{g.name} every pair ok")
    check(bool(np.all(np.diag(status) == 0)), f"{g.name} diagonal not_run")
    for name, units in [("latency_ns_min", "ns"), ("latency_ns_p50", "ns"), ("latency_ns_p99", "ns"), ("bw_gbps", "Gb/s")]:
        m = g[name][:]
        check(m.shape == (n, n), f"{g.name}/{name} shape")
        check(g[name].attrs["units"] == units, f"{g.name}/{name} units")
        check(finite_positive(m[off]), f"{g.name}/{name} off-diagonal finite positive")
        check(bool(np.all(np.isnan(np.diag(m)))), f"{g.name}/{name} diagonal NaN")
        if name.startswith("latency"):
            check(bool(np.allclose(m, m.T, equal_nan=True)), f"{g.name}/{name} symmetric")
    pairs = g["pair_samples/pair"][:]
    check(pairs.shape == (n * (n - 1) // 2, 2), f"{g.name} pair_samples rows {pairs.shape}")
    seen = {tuple(sorted(p)) for p in pairs.tolist()}
    check(len(seen) == n * (n - 1) // 2, f"{g.name} every pair measured exactly once")
    rnd = g["round"][:]
    for a, b in pairs.tolist():
        check(rnd[a, b] == rnd[b, a] and 0 <= rnd[a, b] < rounds, f"{g.name} round of ({a},{b})")
    # Within one round a rank is in at most one pair.
    for r in range(rounds):
        members = [x for a, b in pairs.tolist() if rnd[a, b] == r for x in (a, b)]
        check(len(members) == len(set(members)), f"{g.name} round {r} has disjoint pairs")
    lat = g["pair_samples/latency_ns"]
    check(lat.shape == (len(pairs), int(g.attrs["lat_iters"])), f"{lat.name} shape")
    check(finite_positive(lat[:]), f"{lat.name} finite positive")
    for d in ("bw_gbps_fwd", "bw_gbps_rev"):
        ds = g["pair_samples/" + d]
        check(ds.shape == (len(pairs), int(g.attrs["bw_windows"])), f"{ds.name} shape")
        check(finite_positive(ds[:]), f"{ds.name} finite positive")
    check(finite_positive(g["round_seconds"][:]), f"{g.name}/round_seconds")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--ranks", type=int, required=True)
    ap.add_argument("--expect", required=True, help="comma-separated benchmark kinds, in run order")
    a = ap.parse_args()
    with h5py.File(a.file, "r") as f:
        check(int(f.attrs["schema_version"]) == 1, "schema_version 1")
        check(int(f.attrs["complete"]) == 1, "file complete")
        check(int(f.attrs["n_ranks"]) == a.ranks, "n_ranks")
        for key in ("fabscope_version", "created_utc", "command_line", "suite_text"):
            check(key in f.attrs, f"root attribute {key}")
        hosts = f["hosts"]
        check(list(hosts["rank"][:]) == list(range(a.ranks)), "/hosts/rank")
        for col in ("hostname", "kernel", "cpu_model", "mpi_library", "rdma_core_version", "rdma_devices"):
            check(hosts[col].shape == (a.ranks,), f"/hosts/{col} shape")
        check(all(len(h) > 0 for h in hosts["hostname"].asstr()[:]), "hostnames present")
        check(all("MPI" in m for m in hosts["mpi_library"].asstr()[:]), "mpi_library recorded")
        runs = [f["runs"][k] for k in sorted(f["runs"])]
        kinds = a.expect.split(",")
        check([r.attrs["benchmark"] for r in runs] == kinds, f"runs {[r.attrs['benchmark'] for r in runs]} != {kinds}")
        for g in runs:
            check(int(g.attrs["complete"]) == 1, f"{g.name} complete")
            check(g.attrs["transport"] == "mpi", f"{g.name} transport")
            if g.attrs["benchmark"] == "pairs":
                check_pairs(g, a.ranks)
            else:
                check_sweep(g, g.attrs["benchmark"])
    for msg in failures:
        print("FAIL:", msg)
    print(f"check_results: {a.file}: {'ok' if not failures else f'{len(failures)} failures'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
