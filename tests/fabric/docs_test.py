#!/usr/bin/python3
"""The README's commands, run as written on the emulated fabric, so the docs cannot drift from the
binaries.

usage: docs_test.py --bin DIR --outdir DIR [--id ID] [--readme README.md]

Every ```sh block of the README runs, in order, in one scratch folder that looks like a site's
working folder: `configs/` (the project's), `fabric.yaml` (the rig's topology), and the hostfiles
the recipes name (`hosts.txt`: every emulated host; `rack12-and-refs.txt`, here r4-and-refs.txt: the new rack and the
reference hosts). A block fails the test when any of its commands exits non-zero, except where
the block itself reads the exit code (`echo "exit $?"`): then the printed code must be one the
block's comment allows for that recipe (EXPECTED_EXIT below). The differences between a real
fabric and the rig are the only rewrites, applied to the block's text before it runs:

  mpirun ...                        a shell function: `rig.sh mpirun --hostfile F` (one rank per
                                    host line; `-np` and `--map-by` are the hostfile's)
  --transport verbs                 --transport mpi (the rig has no RDMA device)
  configs/suites/X.yaml             configs/suites/emulated/X.yaml where the rig has a variant
  configs/criteria/ndr400.yaml      configs/criteria/emulated.yaml (200 Mbit/s links)
  rack12                            r4 (the rig's last rack)
  --sizes 64K:8M                    --sizes 64K:256K (an 8 MiB window of 64 messages takes 21 s on a
                                    200 Mbit/s link)
  D=$(date -u +%F)                  D=night1, night2 (the nightly block runs twice, the first night
                                    the first copied into baseline/ by the block itself)

Blocks that cannot run here are listed in SKIP with the reason (the README's two front-door
commands are what CI itself runs); ```text blocks (synopses and sample output) are not run. Needs root for the rig; without it the test FAILS.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
RIG = str(HERE / "rig.sh")

# First line of a block -> why it does not run here.
SKIP = {
    "bash .ci/quickstart": "the front door: CI runs .ci/test (.ci/run), the mpi tier runs the quick suite",
}
# Recipe -> exit codes its `echo "exit $?"` may print on the rig (healthy fabric).
EXPECTED_EXIT = {
    "new-rack": {0},
    "doctor": {77},
    # The rig changes nothing between A and B: bandwidth stays, latency follows the two shared
    # cores' load, so compare may flag latency rows (exit 1); 2 (bad input) fails the test.
    "ab": {0, 1},  # the rig has no RDMA device: the doctor says so and exits 77
    "nightly-1": {0},  # the first night: accept, then kept as the baseline
    # Night 2 against night 1: bandwidth holds on the rig, but latency follows the two shared cores'
    # load, so compare may flag a latency row and nightly alert (1); 2 (bad input) fails the test.
    "nightly-2": {0, 1},
}


def blocks(readme: Path) -> list[tuple[int, str]]:
    out, cur, start, fence = [], None, 0, False
    for n, line in enumerate(readme.read_text().splitlines(), 1):
        if line.startswith("```"):
            if not fence:
                fence, cur, start = True, ([] if line.strip() == "```sh" else None), n
            else:
                if cur is not None:
                    out.append((start, "\n".join(cur)))
                fence, cur = False, None
        elif fence and cur is not None:
            cur.append(line)
    return out


def rewrite(text: str) -> str:
    text = text.replace("--transport verbs", "--transport mpi")
    for name in ("acceptance", "nightly"):
        text = text.replace(f"configs/suites/{name}.yaml", f"configs/suites/emulated/{name}.yaml")
    text = text.replace("configs/criteria/ndr400.yaml", "configs/criteria/emulated.yaml")
    text = re.sub(r"\brack12\b", "r4", text)
    text = text.replace("--sizes 64K:8M", "--sizes 64K:256K")
    return text


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--outdir", required=True)
    ap.add_argument("--id", default="docs")
    ap.add_argument("--readme", default=str(ROOT / "README.md"))
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("docs_test: FAIL: the emulated fabric needs root", flush=True)
        return 1
    out = Path(args.outdir)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    subprocess.run([RIG, "--id", args.id, "down"], capture_output=True)
    t0 = time.monotonic()
    up = subprocess.run([RIG, "--id", args.id, "up", "--hosts", "8", "--racks", "4"], capture_output=True, text=True)
    if up.returncode != 0:
        print(f"docs_test: FAIL: rig.sh up: {up.stderr.strip()}", flush=True)
        return 1
    print(f"rig up in {time.monotonic() - t0:.1f} s", flush=True)
    failures = []
    try:
        topo = subprocess.run([RIG, "--id", args.id, "topology"], capture_output=True, text=True, check=True).stdout.strip()
        site = out / "site"
        site.mkdir()
        os.symlink(ROOT / "configs", site / "configs")
        shutil.copy(topo, site / "fabric.yaml")
        (site / "hosts.txt").write_text("".join(f"h{i}\n" for i in range(1, 9)))
        (site / "two-hosts.txt").write_text("h1\nh8\n")
        # r4 = h7, h8 (new); one reference host per other rack.
        (site / "r4-and-refs.txt").write_text("h7\nh8\nh1\nh3\nh5\n")  # the README's rack12-and-refs.txt
        prelude = "\n".join([
            "set -e",
            f'export PATH="{args.bin}:$PATH"',
            f'mpirun() {{ local hf="" a=(); while [ $# -gt 0 ]; do case "$1" in '
            f'--hostfile) hf=$2; shift 2;; -np|--map-by) shift 2;; *) a+=("$1"); shift;; esac; done; '
            f'"{RIG}" --id {args.id} mpirun ${{hf:+--hostfile "$hf"}} "${{a[@]}}"; }}',
        ])
        for start, text in blocks(Path(args.readme)):
            first = text.strip().splitlines()[0] if text.strip() else ""
            if any(first.startswith(k) for k in SKIP):
                print(f"README:{start}: skipped: {next(v for k, v in SKIP.items() if first.startswith(k))}", flush=True)
                continue
            runs = [("", rewrite(text))]
            recipe = ("new-rack" if "--plan new-rack" in text else "doctor" if "fabscope doctor" in text
                      else "ab" if "fabscope-analyze compare" in text else "")
            if "fabscope-analyze nightly" in text:
                body = rewrite(text).replace("D=$(date -u +%F)", "D=$NIGHT")
                runs = [("nightly-1", "NIGHT=night1\n" + body), ("nightly-2", "NIGHT=night2\n" + body)]
            for tag, body in runs:
                tag = tag or recipe
                t1 = time.monotonic()
                # A block that prints its own exit code runs without `set -e`: that code is checked.
                pre = prelude.replace("set -e", "") if 'echo "exit $?"' in body else prelude
                res = subprocess.run(["bash", "-c", pre + "\n" + body], cwd=site, capture_output=True, text=True,
                                     timeout=600)
                secs = time.monotonic() - t1
                log = out / f"block-{start}{('-' + tag) if tag else ''}.log"
                log.write_text(f"$ {body}\n--- stdout\n{res.stdout}\n--- stderr\n{res.stderr}")
                codes = [int(c) for c in re.findall(r"^exit (\d+)$", res.stdout, re.M)]
                ok = res.returncode == 0
                why = f"exit {res.returncode}"
                if ok and tag in EXPECTED_EXIT:
                    ok = bool(codes) and all(c in EXPECTED_EXIT[tag] for c in codes)
                    why = f"printed exit {codes}, expected one of {sorted(EXPECTED_EXIT[tag])}"
                print(f"README:{start}{(' ' + tag) if tag else ''}: {'ok' if ok else 'FAIL'} in {secs:.1f} s"
                      f"{'' if ok else ' (' + why + '; ' + str(log) + ')'}", flush=True)
                if not ok:
                    failures.append(start)
                    print("\n".join((res.stdout + res.stderr).strip().splitlines()[-15:]), flush=True)
    finally:
        subprocess.run([RIG, "--id", args.id, "down"], capture_output=True)
    if failures:
        print(f"docs_test: FAIL: README blocks at lines {failures}", flush=True)
        return 1
    print("docs_test: every README command ran", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
