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
    data = raw[:]
    if "duration_ms" in g.attrs:
        # --duration: each row is a finite prefix (at least one sample) padded with NaN.
        n = np.isfinite(data).sum(axis=1)
        check(bool(np.all(n >= 1)), f"{raw.name} every size measured")
        check(all(np.all(np.isfinite(row[:k])) and np.all(np.isnan(row[k:])) for row, k in zip(data, n)),
              f"{raw.name} finite prefix then NaN")
        check(finite_positive(data[np.isfinite(data)]), f"{raw.name} positive")
    else:
        check(finite_positive(data), f"{raw.name} finite and positive")
    for st in STATS:
        ds = g[f"summary/{metric}_{st}"]
        check(ds.shape == (len(sizes),), f"{ds.name} shape")
        check(ds.attrs["units"] == units, f"{ds.name} units")
        vals = ds[:]
        check(bool(np.all(np.isfinite(vals))), f"{ds.name} finite")
    p50 = g[f"summary/{metric}_p50"][:]
    check(bool(np.allclose(p50, np.nanpercentile(raw[:], 50, axis=1))), f"{g.name} p50 matches numpy")
    check(bool(np.all(g[f"summary/{metric}_min"][:] <= p50)), f"{g.name} min <= p50")
    check(bool(np.all(p50 <= g[f"summary/{metric}_max"][:])), f"{g.name} p50 <= max")
    if kind != "lat":
        check(int(g.attrs["window"]) == 64, f"{g.name} window 64")
        check(finite_positive(g["summary/bw_gbps_overall"][:]), f"{g.name} bw_gbps_overall")
        check(finite_positive(g["summary/msg_rate_mpps_p50"][:]), f"{g.name} msg_rate_mpps_p50")
        # The formulas tie the metrics to the size: a bandwidth counted in bytes instead of bits, or a
        # rate from the wrong window size, breaks one of these (results/SCHEMA.md, bw.cpp).
        dirs = 2.0 if kind == "bibw" else 1.0
        rate = g["samples/msg_rate_mpps"][:] if "samples/msg_rate_mpps" in g else None
        window_ns = dirs * 64 * sizes[:, None].astype(float) * 8 / data          # from bw_gbps
        if rate is not None:
            ok = np.isfinite(data)
            check(bool(np.allclose((rate * sizes[:, None] * 8 / 1e3)[ok], data[ok], rtol=1e-9)),
                  f"{g.name} bw_gbps = msg_rate_mpps * size * 8 / 1e3 per window")
            check(bool(np.allclose((dirs * 64 / window_ns * 1e3)[ok], rate[ok], rtol=1e-9)),
                  f"{g.name} msg_rate_mpps = directions * 64 / window_ns * 1e3")
        check(bool(np.allclose(g["summary/msg_rate_mpps_p50"][:] * sizes * 8 / 1e3, p50, rtol=1e-9)),
              f"{g.name} msg_rate_mpps_p50 * size * 8 / 1e3 = bw_gbps_p50")
        overall = g["summary/bw_gbps_overall"][:]
        fin = [np.isfinite(r) for r in data]
        want = np.array([dirs * 64 * s * 8 * f.sum() / window_ns[i][f].sum() for i, (s, f) in enumerate(zip(sizes, fin))])
        check(bool(np.allclose(overall, want, rtol=1e-6)), f"{g.name} bw_gbps_overall = all bits / all window time")


def check_pairs(g: h5py.Group, n: int) -> None:
    rounds = int(g.attrs["rounds_total"])
    check(rounds == (n - 1 if n % 2 == 0 else n), f"{g.name} rounds_total {rounds} for {n} ranks")
    check(int(g.attrs["rounds_done"]) == rounds, f"{g.name} rounds_done")
    check(g.attrs["schedule"] == "circle", f"{g.name} schedule")
    check(g["pairs/round"].shape == (n * (n - 1) // 2,), f"{g.name} pairs/round shape (a row per pair)")
    check(int(g.attrs["rows_done"]) == n * (n - 1) // 2, f"{g.name} rows_done")
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
    pairs = g["pairs/pair"][:]
    check(pairs.shape == (n * (n - 1) // 2, 2), f"{g.name} pairs/ rows {pairs.shape}")
    seen = {tuple(sorted(p)) for p in pairs.tolist()}
    check(len(seen) == n * (n - 1) // 2, f"{g.name} every pair measured exactly once")
    rnd = g["round"][:]
    for a, b in pairs.tolist():
        check(rnd[a, b] == rnd[b, a] and 0 <= rnd[a, b] < rounds, f"{g.name} round of ({a},{b})")
    # Within one round a rank is in at most one pair.
    for r in range(rounds):
        members = [x for a, b in pairs.tolist() if rnd[a, b] == r for x in (a, b)]
        check(len(members) == len(set(members)), f"{g.name} round {r} has disjoint pairs")
    # The row table's values and compact distributions (schema version 2).
    for d in ("latency_ns_min", "latency_ns_p50", "latency_ns_p99", "bw_gbps_fwd", "bw_gbps_rev"):
        check(finite_positive(g["pairs/" + d][:]), f"{g.name}/pairs/{d} finite positive")
    lq = g["pairs/latency_q"][:]
    check(lq.shape == (len(pairs), 11) and bool(np.all(lq[:, 5] == 128)) and bool(np.all(lq > 0)),
          f"{g.name}/pairs/latency_q: 11 codes per row, p50 = 128")
    codes = min(int(g.attrs["bw_windows"]), 32)
    for d in ("bw_fwd_q", "bw_rev_q"):
        q = g["pairs/" + d][:]
        check(q.shape == (len(pairs), codes) and bool(np.all(q[:, 0] == 255)), f"{g.name}/pairs/{d}: best first")
    # The raw samples kept (--keep-samples, default suspect): whole rows of the right width.
    kept = int(g.attrs["samples_done"])
    lat = g["pair_samples/latency_ns"]
    check(lat.shape == (kept, int(g.attrs["lat_iters"])), f"{lat.name} shape")
    check(kept == 0 or finite_positive(lat[:]), f"{lat.name} finite positive")
    for d in ("bw_gbps_fwd", "bw_gbps_rev"):
        ds = g["pair_samples/" + d]
        check(ds.shape == (kept, int(g.attrs["bw_windows"])), f"{ds.name} shape")
        check(kept == 0 or finite_positive(ds[:]), f"{ds.name} finite positive")
    rows = g["pair_samples/row"][:]
    check(rows.shape == (kept,) and bool(np.all((rows >= 0) & (rows < len(pairs)))), f"{g.name}/pair_samples/row")
    # The raw samples belong to their row (sent to rank 0 by the pair's two ranks in phase 2): the
    # row's p50s are the medians of its samples, the initiator's latency and windows, the peer's
    # reverse windows.
    if kept:
        check(np.array_equal(g["pair_samples/pair"][:], pairs[rows]), f"{g.name}/pair_samples/pair = its row's pair")
        for raw, col in (("latency_ns", "latency_ns_p50"), ("bw_gbps_fwd", "bw_gbps_fwd"), ("bw_gbps_rev", "bw_gbps_rev")):
            med = np.median(g["pair_samples/" + raw][:], axis=1)
            check(bool(np.allclose(med, g["pairs/" + col][:][rows], rtol=1e-6, equal_nan=True)),
                  f"{g.name}/pair_samples/{raw}: medians match pairs/{col} of their rows")
    check(finite_positive(g["round_seconds"][:]), f"{g.name}/round_seconds")


# busbw / algbw by hand (nccl-tests' definitions), keyed by op and ranks in the group.
BUSBW_FACTOR = {
    "allreduce": {2: 1.0, 3: 4 / 3, 4: 1.5, 5: 1.6, 8: 1.75},
    "allgather": {2: 0.5, 3: 2 / 3, 4: 0.75, 5: 0.8, 8: 0.875},
    "reduce_scatter": {2: 0.5, 3: 2 / 3, 4: 0.75, 5: 0.8, 8: 0.875},
    "alltoall": {2: 0.5, 3: 2 / 3, 4: 0.75, 5: 0.8, 8: 0.875},
    "bcast": {2: 1.0, 3: 1.0, 4: 1.0, 5: 1.0, 8: 1.0},
}


def expected_groups(n: int) -> list[int]:
    g, k = [], 2
    while k < n:
        g.append(k)
        k *= 2
    return g + [n]


def check_coll(g: h5py.Group, n: int, expect_failed: bool) -> None:
    groups = expected_groups(n)
    check(list(g["node_counts"][:]) == groups, f"{g.name} node_counts {list(g['node_counts'][:])} != {groups}")
    check(list(g["group_size_ranks"][:]) == groups, f"{g.name} group_size_ranks (1 rank per node)")
    members = g["group_ranks"][:]
    check(members.shape == (len(groups), n), f"{g.name} group_ranks shape")
    for i, k in enumerate(groups):
        check(list(members[i][members[i] >= 0]) == list(range(k)), f"{g.name} group {k} members")
    iters = int(g.attrs["iters"])
    ops = [k for k in g.keys() if isinstance(g[k], h5py.Group)]
    check(len(ops) > 0, f"{g.name} has operations")
    for op in ops:
        o = g[op]
        status = o["status"][:]
        ns = 1 if op == "barrier" else len(o["size_bytes"])
        check(status.shape == (len(groups), ns), f"{o.name}/status shape")
        ran = status > 0
        check(bool(ran.any()), f"{o.name} measured something")
        if expect_failed:
            if op != "barrier":
                check(bool(np.all(status[ran] == 2)), f"{o.name} every checked measurement failed")
                check(bool(np.all(o["check_errors"][:][ran] > 0)), f"{o.name} check_errors counted")
            continue
        check(bool(np.all(status[ran] == 1)), f"{o.name} every measurement ok")
        if "check_errors" in o:
            check(int(o["check_errors"][:].sum()) == 0, f"{o.name} no check errors")
        t = o["samples/time_ns"]
        check(t.shape == (len(groups), ns, iters), f"{t.name} shape {t.shape}")
        check(t.attrs["units"] == "ns", f"{t.name} units")
        check(finite_positive(t[:][ran]), f"{t.name} finite positive where run")
        p50 = o["summary/time_ns_p50"][:]
        check(bool(np.allclose(p50[ran], np.percentile(t[:], 50, axis=2)[ran])), f"{o.name} p50 matches numpy")
        if op == "barrier":
            continue
        alg, bus, eff = o["summary/algbw_gbps"][:], o["summary/busbw_gbps"][:], o["summary/scaling_efficiency"][:]
        check(o["summary/busbw_gbps"].attrs["units"] == "Gb/s", f"{o.name} busbw units")
        nbytes = o["bytes"][:]
        check(bool(np.allclose(alg[ran], (nbytes * 8 / p50)[ran])), f"{o.name} algbw = bytes*8/p50")
        for i, k in enumerate(groups):
            row = ran[i]
            check(bool(np.allclose(bus[i][row] / alg[i][row], BUSBW_FACTOR[op][k])),
                  f"{o.name} busbw factor at {k} ranks")
        check(bool(np.allclose(eff[0][ran[0]], 1.0)), f"{o.name} scaling efficiency 1 for the 2-node group")


def check_rate(g: h5py.Group) -> None:
    """rate: every (qps, post_list, size) point has its windows, and the two metrics agree with each
    other and the size (msg_rate_mpps * size * 8 / 1e3 == bw_gbps for every window)."""
    q, l, s = len(g["qps"]), len(g["post_list"]), len(g["size_bytes"])
    rate, bw = g["samples/msg_rate_mpps"][:], g["samples/bw_gbps"][:]
    check(rate.shape[:3] == (q, l, s) and rate.shape[3] == int(g.attrs["iters"]), f"{g.name} samples shape {rate.shape}")
    check(finite_positive(rate) and finite_positive(bw), f"{g.name} samples finite and positive")
    size = g["size_bytes"][:].astype(float)[None, None, :, None]
    check(np.allclose(rate * size * 8 / 1e3, bw, rtol=1e-9), f"{g.name} bw_gbps = msg_rate_mpps * size * 8 / 1e3")
    check(np.allclose(g["summary/msg_rate_mpps_p50"][:], np.median(rate, axis=3)), f"{g.name} p50 of the samples")
    check(g["samples/msg_rate_mpps"].attrs["units"] == "Mpps", f"{g.name} units")
    check(list(g["qps"][:]) == sorted(set(g["qps"][:])) and (g.attrs["transport"] != "mpi" or list(g["qps"][:]) == [1]),
          f"{g.name} qps {list(g['qps'][:])}")
    params = [p.decode() for p in g["parameters"][:]]
    check(f"iters={int(g.attrs['iters'])}" in params, f"{g.name} parameters record iters: {params}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--ranks", type=int, required=True)
    ap.add_argument("--expect", required=True, help="comma-separated benchmark kinds, in run order")
    ap.add_argument("--transport", default="mpi")
    ap.add_argument("--expect-failed", action="store_true", help="coll: every checked measurement must have failed")
    a = ap.parse_args()
    with h5py.File(a.file, "r") as f:
        check(int(f.attrs["schema_version"]) == 2, "schema_version 2")
        check(int(f.attrs["complete"]) == 1, "file complete")
        check(int(f.attrs["schema_version"]) == 2, "schema")
        check(int(f.attrs["n_ranks"]) == a.ranks, "n_ranks")
        for key in ("fabscope_version", "created_utc", "command_line", "suite_text"):
            check(key in f.attrs, f"root attribute {key}")
        hosts = f["hosts"]
        check(list(hosts["rank"][:]) == list(range(a.ranks)), "/hosts/rank")
        for col in ("hostname", "kernel", "cpu_model", "mpi_library", "rdma_core_version", "rdma_devices",
                    "gethostname"):
            check(hosts[col].shape == (a.ranks,), f"/hosts/{col} shape")
        check(all(len(h) > 0 for h in hosts["hostname"].asstr()[:]), "hostnames present")
        # outside Slurm the recorded host is gethostname() (under Slurm: SLURMD_NODENAME, tests/slurm)
        if "slurm_job_id" not in f.attrs:
            check(list(hosts["gethostname"].asstr()[:]) == list(hosts["hostname"].asstr()[:]),
                  "/hosts/gethostname equals /hosts/hostname outside Slurm")
        check(all("MPI" in m for m in hosts["mpi_library"].asstr()[:]), "mpi_library recorded")
        runs = [f["runs"][k] for k in sorted(f["runs"])]
        kinds = a.expect.split(",")
        check([r.attrs["benchmark"] for r in runs] == kinds, f"runs {[r.attrs['benchmark'] for r in runs]} != {kinds}")
        for g in runs:
            check(int(g.attrs["complete"]) == 1, f"{g.name} complete")
            check(g.attrs["transport"] == a.transport, f"{g.name} transport")
            if g.attrs["benchmark"] == "pairs":
                check_pairs(g, a.ranks)
            elif g.attrs["benchmark"] == "coll":
                check_coll(g, a.ranks, a.expect_failed)
            elif g.attrs["benchmark"] == "rate":
                check_rate(g)
            else:
                check_sweep(g, g.attrs["benchmark"])
    for msg in failures:
        print("FAIL:", msg)
    print(f"check_results: {a.file}: {'ok' if not failures else f'{len(failures)} failures'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
