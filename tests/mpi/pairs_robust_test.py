#!/usr/bin/python3
"""pairs --repeat and --pair-timeout on the mpi transport, on one host.

usage: pairs_robust_test.py MPIEXEC FABSCOPE OUTDIR
1. --repeat 3 on 4 ranks (--keep-samples all): every pair measured 3 times (pair_samples/repeat
   0,1,2), odd repeats run the schedule in reverse, and the dense views written at the end hold
   each pair's best repeat (lowest latency p50, highest bandwidth p50 per direction).
2. A rank that goes silent for one round (test hook FABSCOPE_TEST_STALL=RANK,ROUND) with
   --pair-timeout 2s: its pair is recorded as timed out in errors/, every other pair of the run is
   ok, the same pair measured again in the next repeat is ok (its late messages never match the
   later connection), the matrix keeps the worst status (timeout) with the good repeat's values,
   and the run finishes instead of hanging.
3. A rank silent beyond --round-timeout between pairs (the same hook, a longer --pair-timeout):
   the job ends with exit 1 and one line naming the round, the limit, what the file holds and the
   --resume command; the file holds the completed round; --resume finishes the run, every pair ok.
4. The harness-only instrument (FABSCOPE_HARNESS_ONLY=1, tests/perf/harness_bench.sh): the run is
   marked harness_only, holds the fixed samples, rank 0 prints its per-round time; a bad value of
   the variable is one line and exit 2.
"""
import os
import subprocess
import sys
import time

import h5py
import numpy as np


def run(mpiexec, binary, n, args, env=None):
    cmd = [mpiexec, "--oversubscribe", "-np", str(n)]
    if env:
        for k in env:
            cmd += ["-x", k]
    cmd += [binary, "pairs", "--quiet"] + args
    if "--out" in args and os.path.exists(args[args.index("--out") + 1]):
        os.remove(args[args.index("--out") + 1])  # a rerun of the test replaces its own file
    t0 = time.monotonic()
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env={**os.environ, **(env or {})})
    return res, time.monotonic() - t0


def check_repeat(mpiexec, binary, outdir):
    failures = []
    out = os.path.join(outdir, "repeat.h5")
    n, k = 4, 3
    # --keep-samples all: every repeat's raw samples, to check the dense views against them
    res, secs = run(mpiexec, binary, n, ["--repeat", str(k), "--iters", "200", "--bw-iters", "5",
                                         "--keep-samples", "all", "--out", out])
    if res.returncode != 0:
        return [f"--repeat run exited {res.returncode}: {res.stderr[-2000:]}"]
    with h5py.File(out, "r") as f:
        r = f["runs/00_pairs"]
        base = n - 1
        if int(r.attrs["repeats"]) != k or int(r.attrs["rounds_total"]) != k * base:
            failures.append(f"repeats {r.attrs['repeats']} rounds_total {r.attrs['rounds_total']}")
        pair = r["pair_samples/pair"][:]
        rep = r["pair_samples/repeat"][:]
        rnd = r["pair_samples/round"][:]
        lat = r["pair_samples/latency_ns"][:]
        fwd = r["pair_samples/bw_gbps_fwd"][:]
        rev = r["pair_samples/bw_gbps_rev"][:]
        for a in range(n):
            for b in range(a + 1, n):
                rows = np.where((pair[:, 0] == a) & (pair[:, 1] == b))[0]
                if sorted(rep[rows].tolist()) != list(range(k)):
                    failures.append(f"pair {a},{b}: repeats {rep[rows].tolist()}")
                    continue
                # Repeat 0 in schedule order, repeat 1 reversed: base rounds i and base-1-i.
                r0 = int(rnd[rows[rep[rows] == 0][0]])
                r1 = int(rnd[rows[rep[rows] == 1][0]])
                if r1 - base != base - 1 - r0:
                    failures.append(f"pair {a},{b}: round {r0} in repeat 0 but {r1} in repeat 1 (not reversed)")
                p50 = np.median(lat[rows], axis=1)
                if not np.isclose(r["latency_ns_p50"][a, b], p50.min()):
                    failures.append(f"pair {a},{b}: latency_ns_p50 {r['latency_ns_p50'][a, b]} != best repeat {p50.min()}")
                if not np.isclose(r["bw_gbps"][a, b], np.median(fwd[rows], axis=1).max()):
                    failures.append(f"pair {a},{b}: bw_gbps[a,b] is not the best repeat's fwd median")
                if not np.isclose(r["bw_gbps"][b, a], np.median(rev[rows], axis=1).max()):
                    failures.append(f"pair {a},{b}: bw_gbps[b,a] is not the best repeat's rev median")
    print(f"repeat: {n} ranks x {k} repeats in {secs:.1f} s: {'ok' if not failures else 'FAILED'}")
    return failures


def check_stall(mpiexec, binary, outdir):
    failures = []
    out = os.path.join(outdir, "stall.h5")
    n = 4
    # Rank 3 goes silent in round 1 (circle schedule: its partner there is rank 1).
    res, secs = run(mpiexec, binary, n, ["--repeat", "2", "--pair-timeout", "2s", "--keep-samples", "all",
                                         "--iters", "200", "--bw-iters", "5",
                                         "--out", out], env={"FABSCOPE_TEST_STALL": "3,1"})
    if res.returncode != 0:
        return [f"stalled run exited {res.returncode} (a timed-out pair must not fail the job): {res.stderr[-2000:]}"]
    with h5py.File(out, "r") as f:
        r = f["runs/00_pairs"]
        if int(r.attrs["rounds_done"]) != int(r.attrs["rounds_total"]):
            failures.append("run did not finish every round")
        ep = r["errors/pair"][:].tolist()
        es = r["errors/status"][:].tolist()
        er = r["errors/round"][:].tolist()
        msg = [m.decode() for m in r["errors/message"][:]]
        if ep != [[1, 3]] or es != [3] or er != [1]:
            failures.append(f"errors/: pairs {ep} status {es} rounds {er}; expected [[1, 3]] timeout in round 1")
        elif "--pair-timeout" not in msg[0]:
            failures.append(f"error message does not name the deadline: {msg[0]}")
        pair = r["pair_samples/pair"][:]
        rep = r["pair_samples/repeat"][:]
        lat = r["pair_samples/latency_ns"][:]
        rows = np.where((pair[:, 0] == 1) & (pair[:, 1] == 3))[0]
        first = rows[rep[rows] == 0]
        second = rows[rep[rows] == 1]
        if not np.all(np.isnan(lat[first])):
            failures.append("the timed-out measurement has latency samples")
        if not np.all(np.isfinite(lat[second])):
            failures.append("the same pair in the next repeat was not measured cleanly")
        status = r["status"][:]
        expected = np.ones((n, n), dtype=int) - np.eye(n, dtype=int)
        expected[1, 3] = expected[3, 1] = 3
        if not np.array_equal(status, expected):
            failures.append(f"matrix status should be ok except 1-3 timeout: {status.tolist()}")
        if not np.isclose(r["latency_ns_p50"][1, 3], np.median(lat[second])):
            failures.append("the timed-out pair's latency cell is not its good repeat's median")
    if secs > 60:
        failures.append(f"stalled run took {secs:.0f} s")
    print(f"stall: pair 1-3 timed out in round 1 and was fine in its next repeat; run took {secs:.1f} s: "
          f"{'ok' if not failures else 'FAILED'}")
    return failures


def check_cut_off(mpiexec, binary, outdir):
    """A rank the others cannot reach between pairs (here: silent past --round-timeout) ends the job
    with one line saying what is kept, instead of hanging it; --resume then finishes the run."""
    failures = []
    out = os.path.join(outdir, "cut.h5")
    n = 4
    # Rank 3 stays silent for 12 s in round 2; its partner gives up after the 2 s pair timeout, and
    # rank 0 waits 4 s at most for rank 3 at the round's gather (the round limit must exceed the pair's).
    res, secs = run(mpiexec, binary, n, ["--pair-timeout", "2s", "--round-timeout", "4s", "--iters", "200",
                                         "--bw-iters", "5", "--out", out], env={"FABSCOPE_TEST_STALL": "3,1,12"})
    line = f"pairs round 2 of 3: not every rank reached the gather within 4 s (--round-timeout 4 s): a rank is stuck " \
           f"or cut off from the others; round 1 is in {out}: once every rank reaches the others again, finish the " \
           f"run with `fabscope pairs --resume {out}`"
    if res.returncode != 1 or line not in res.stderr:
        failures.append(f"cut-off run: exit {res.returncode} (expected 1), stderr without the expected line:\n"
                        f"{res.stderr[-2000:]}")
    if secs > 30:
        failures.append(f"cut-off run took {secs:.0f} s to end")
    with h5py.File(out, "r") as f:
        r = f["runs/00_pairs"]
        if int(r.attrs["rounds_done"]) != 1 or int(r.attrs["round_timeout_ms"]) != 4000:
            failures.append(f"cut-off file: rounds_done {r.attrs['rounds_done']}, round_timeout_ms "
                            f"{r.attrs['round_timeout_ms']}; expected 1 and 4000")
    res2, secs2 = run(mpiexec, binary, n, ["--resume", out])
    if res2.returncode != 0:
        failures.append(f"--resume after the cut-off exited {res2.returncode}: {res2.stderr[-2000:]}")
    else:
        with h5py.File(out, "r") as f:
            r = f["runs/00_pairs"]
            status = r["status"][:]
            if int(r.attrs["rounds_done"]) != 3 or not np.array_equal(status, np.ones((n, n), int) - np.eye(n, dtype=int)):
                failures.append(f"after --resume: rounds_done {r.attrs['rounds_done']}, status {status.tolist()}")
    print(f"cut-off: job ended {secs:.1f} s after start with exit {res.returncode}, resumed in {secs2:.1f} s: "
          f"{'ok' if not failures else 'FAILED'}")
    return failures


def check_harness_only(mpiexec, binary, outdir):
    """The instrument of tests/perf/harness_bench.sh: FABSCOPE_HARNESS_ONLY=1 measures nothing, the
    file says so, rank 0 prints its per-round time; a bad value is one line and exit 2."""
    failures = []
    out = os.path.join(outdir, "harness.h5")
    res, secs = run(mpiexec, binary, 4, ["--iters", "100", "--bw-iters", "4", "--warmup", "0", "--out", out],
                    env={"FABSCOPE_HARNESS_ONLY": "1"})
    lines = [x for x in res.stdout.splitlines() if x.startswith("# harness-only: ranks=4 rounds=3 ms_per_round_median=")]
    if res.returncode != 0 or len(lines) != 1:
        failures.append(f"harness-only: exit {res.returncode}, lines {lines}: {res.stdout[-800:]} {res.stderr[-800:]}")
    else:
        with h5py.File(out, "r") as f:
            r = f["runs/00_pairs"]
            if int(r.attrs.get("harness_only", 0)) != 1 or r.attrs["rounds_done"] != 3:
                failures.append(f"harness-only: the run is not marked harness_only or incomplete: {dict(r.attrs)}")
            if not np.all(r["pairs/latency_ns_min"][()] == 1000.0):
                failures.append("harness-only: the fixed samples (1 us minimum) are not what the rows hold")
    res, _ = run(mpiexec, binary, 2, ["--out", os.path.join(outdir, "bad.h5")], env={"FABSCOPE_HARNESS_ONLY": "yes"})
    err = [x for x in res.stderr.splitlines() if "FABSCOPE_HARNESS_ONLY" in x]
    if res.returncode != 2 or len(err) != 1 or "give 1 (or 0)" not in err[0]:
        failures.append(f"FABSCOPE_HARNESS_ONLY=yes: exit {res.returncode}, {res.stderr[-500:]}")
    print(f"harness-only instrument: {'ok' if not failures else 'FAILED'}")
    return failures


def main() -> int:
    mpiexec, binary, outdir = sys.argv[1:4]
    os.makedirs(outdir, exist_ok=True)
    failures = check_repeat(mpiexec, binary, outdir) + check_stall(mpiexec, binary, outdir) + \
        check_cut_off(mpiexec, binary, outdir) + check_harness_only(mpiexec, binary, outdir)
    for m in failures:
        print("FAIL:", m)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
