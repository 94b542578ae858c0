#!/usr/bin/python3
"""A `pairs` run killed mid-way leaves a readable file holding exactly the rounds that completed,
and `pairs --resume FILE` finishes it: every pair measured exactly once, the file complete.

usage: kill_test.py MPIEXEC FABSCOPE OUT.h5
Starts 6 ranks (5 rounds), waits for rank 0 to report round 2 done, then SIGKILLs mpirun and
every rank at once. The file must open, say incomplete, and its row table (pairs/, schema
version 2) hold exactly the pairs of the rounds it counts as done, one row each, with no N x N
dataset written during the run.
"""
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np


def main() -> int:
    mpiexec, binary, out = sys.argv[1:4]
    if os.path.exists(out):
        os.remove(out)
    n = 6
    cmd = [mpiexec, "--oversubscribe", "-np", str(n), binary, "pairs", "--out", out,
           "--lat-size", "8", "--bw-size", "1M", "--iters", "3000", "--bw-iters", "30", "--warmup", "10"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    seen = []
    deadline = time.monotonic() + 240
    killed_after = None
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line.rstrip())
        if line.startswith("pairs: round 2 of"):
            killed_after = 2
            break
        if time.monotonic() > deadline:
            break
    # Kill mpirun's process group and every rank (ranks carry the unique output path in argv).
    os.killpg(proc.pid, signal.SIGKILL)
    subprocess.run(["pkill", "-KILL", "-f", "pairs --out " + out], check=False)
    proc.wait()
    time.sleep(0.5)
    if killed_after is None:
        print("FAIL: never saw round 2 complete; output:\n" + "\n".join(seen))
        return 1
    failures = []
    with h5py.File(out, "r") as f:
        run = f["runs/00_pairs"]
        done = int(run.attrs["rounds_done"])
        total = int(run.attrs["rounds_total"])
        print(f"killed after rank 0 reported round {killed_after}; file says rounds_done={done} of {total}")
        if int(f.attrs["complete"]) != 0 or int(run.attrs["complete"]) != 0:
            failures.append("file or run marked complete after a kill")
        if not (killed_after <= done < total):
            failures.append(f"rounds_done {done} not in [{killed_after}, {total})")
        rows_done = int(run.attrs["rows_done"])
        pair = run["pairs/pair"][:rows_done]
        rnd = run["pairs/round"][:rows_done]
        status = run["pairs/status"][:rows_done]
        if rows_done != done * (n // 2):
            failures.append(f"rows_done {rows_done}, expected {done * (n // 2)} (the completed rounds' pairs)")
        if not np.all(status == 1):
            failures.append(f"a row of a completed round is not ok: {status.tolist()}")
        if sorted(rnd.tolist()) != sorted(list(range(done)) * (n // 2)):
            failures.append(f"row rounds {sorted(rnd.tolist())} are not the completed rounds, n/2 each")
        keys = {tuple(sorted(p)) for p in pair.tolist()}
        if len(keys) != rows_done:
            failures.append("a pair has two rows")
        if not np.all(np.isfinite(run["pairs/bw_gbps_fwd"][:rows_done])) or \
                not np.all(np.isfinite(run["pairs/latency_ns_p50"][:rows_done])):
            failures.append("a completed row has no bandwidth or latency")
        for name in ("status", "latency_ns_p50", "bw_gbps", "round"):
            if name in run:
                failures.append(f"dense dataset {name} written during the run (N x N work per round)")
        secs = run["round_seconds"][:]
        if not (np.all(np.isfinite(secs[:done])) and np.all(np.isnan(secs[done:]))):
            failures.append("round_seconds filled exactly for the completed rounds")
    if not failures:
        failures += check_resume(mpiexec, binary, out, n, done)
    for msg in failures:
        print("FAIL:", msg)
    print("kill test:", "ok" if not failures else f"{len(failures)} failures")
    return 1 if failures else 0


def check_resume(mpiexec: str, binary: str, out: str, n: int, done_before: int) -> list[str]:
    """Resumes the killed run and checks the finished file."""
    failures = []
    cmd = [mpiexec, "--oversubscribe", "-np", str(n), binary, "pairs", "--resume", out]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    print(f"resume: exit {res.returncode}; " + res.stdout.strip().splitlines()[0] if res.stdout.strip() else "")
    if res.returncode != 0:
        return [f"--resume exited {res.returncode}: {res.stdout[-2000:]} {res.stderr[-2000:]}"]
    with h5py.File(out, "r") as f:
        run = f["runs/00_pairs"]
        total = int(run.attrs["rounds_total"])
        if int(f.attrs["complete"]) != 1 or int(run.attrs["complete"]) != 1:
            failures.append("resumed file or run not marked complete")
        if int(run.attrs["rounds_done"]) != total:
            failures.append(f"rounds_done {int(run.attrs['rounds_done'])} != rounds_total {total}")
        if int(run.attrs.get("resumed", 0)) != 1:
            failures.append("run attribute resumed is not 1")
        status = run["status"][:]
        off = ~np.eye(n, dtype=bool)
        if not np.all(status[off] == 1):
            failures.append(f"not every pair ok after resume: {status.tolist()}")
        rows_done = int(run.attrs["rows_done"])
        pairs = [tuple(sorted(p)) for p in run["pairs/pair"][:rows_done].tolist()]
        if len(pairs) != n * (n - 1) // 2 or len(set(pairs)) != len(pairs):
            failures.append(f"pairs/ holds {len(pairs)} rows ({len(set(pairs))} distinct), expected each of "
                            f"{n * (n - 1) // 2} pairs once")
        if run["pairs/pair"].shape[0] != rows_done:
            failures.append(f"pairs/pair has {run['pairs/pair'].shape[0]} rows, rows_done says {rows_done}")
        rounds = sorted(run["pairs/round"][:rows_done].tolist())
        if rounds != sorted(list(range(total)) * (n // 2)):
            failures.append(f"pairs/round {rounds} do not cover every round once per pair slot")
        if not np.all(np.isfinite(run["round_seconds"][:])):
            failures.append("round_seconds has gaps after resume")
        if not np.all(np.isfinite(run["bw_gbps"][:][off])):
            failures.append("bw_gbps has gaps after resume")
        print(f"resume: rounds {done_before}..{total} measured; matrix complete: {not failures}")
    # Resuming a complete file is a usage error (exit 2, one line).
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    lines = [l for l in (res.stdout + res.stderr).splitlines() if l.startswith("fabscope:")]
    if res.returncode != 2 or len(lines) != 1 or "nothing to resume" not in lines[0]:
        failures.append(f"resuming a complete file: exit {res.returncode}, lines {lines}")
    return failures


if __name__ == "__main__":
    sys.exit(main())
