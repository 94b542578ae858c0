#!/usr/bin/python3
"""A `shift` run killed mid-way leaves a readable file holding exactly the steps that completed.

usage: load_kill_test.py MPIEXEC FABSCOPE CHECKER OUT.h5
Starts 6 ranks on 12 permutation steps, waits for rank 0 to report step 2 done, then SIGKILLs
mpirun and every process it started (by process id). The file must open, say incomplete, and
pass load_check.py --partial: steps below steps_done measured, the others NaN.
"""
import os
import signal
import subprocess
import sys
import time


def descendants(root: int) -> list[int]:
    """Every process below `root`, from /proc (parent links)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        for c in children.get(pid, []):
            out.append(c)
            todo.append(c)
    return out


def main() -> int:
    mpiexec, binary, checker, out = sys.argv[1:5]
    if os.path.exists(out):
        os.remove(out)
    n = 6
    cmd = [mpiexec, "--oversubscribe", "-np", str(n), binary, "shift", "--pattern", "permutation", "--steps", "12",
           "--seed", "5", "--size", "256K", "--iters", "20", "--warmup", "1", "--out", out]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    seen = []
    killed_after = None
    deadline = time.monotonic() + 240
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line.rstrip())
        if line.startswith("shift: step 2 of"):
            killed_after = 2
            break
        if time.monotonic() > deadline:
            break
    victims = descendants(proc.pid)
    for pid in [proc.pid] + victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    time.sleep(0.5)
    if killed_after is None:
        print("FAIL: never saw step 2 complete; output:\n" + "\n".join(seen))
        return 1
    print(f"killed mpirun and {len(victims)} processes it started after rank 0 reported step {killed_after}")
    return subprocess.run(["/usr/bin/python3", checker, out, "--ranks", str(n), "--expect", "shift", "--partial"]).returncode


if __name__ == "__main__":
    sys.exit(main())
