#!/usr/bin/python3
"""Slurm tier: fabscope launched by a real Slurm (munged, slurmctld, slurmd; tests/slurm/cluster.sh).

usage: slurm_test.py --fabscope BIN --analyze LAUNCHER --outdir DIR [--id ID] pretend|fabric

pretend: 4 pretend nodes n1..n4 on this machine (one slurmd each, one gethostname() for all), a
         topology.conf with leaf1 = n[1-2], leaf2 = n[3-4] under spine1:
  srun-pmix      `srun --mpi=pmix fabscope pairs --slurm-topology`: /hosts/hostname is n1..n4 (the
                 Slurm node names), /hosts/gethostname this machine's name for all, the slurm_*
                 root attributes hold the job, step, node list and partition, /topology has the
                 two leaves and the spine from `scontrol show topology` and maps every rank
  topology-addr  the same without scontrol on PATH: the fabric from the tasks' SLURM_TOPOLOGY_ADDR
  no-pmix        plain srun (MpiDefault=none) and `srun --mpi=pmi2` (kill-on-bad-exit off, so that
                 task 0's line is never cut by the step's termination): exit 2, and the first line on
                 stderr says to use `srun --mpi=pmix`
  bad-topology   `--slurm-topology=FILE` with a bad line: exit 2, one line naming FILE:LINE
  sbatch-mpirun  `sbatch` with `mpirun --bind-to none fabscope pairs`: ranks started by mpirun's
                 daemons (srun) still record n1..n4
fabric:  one slurmd inside each host namespace of the emulated fabric (tests/fabric/rig.sh, 8 hosts,
         4 racks: nodes h1..h8 with their own addresses), slurmctld in the rig's head namespace:
  srun-fault     h3's link capped at 80 Mbit/s; `srun --mpi=pmix fabscope run emulated/acceptance.yaml
                 --slurm-topology`: accept fails and names h3; hosts and leaves as Slurm has them
  sbatch-mpirun  `sbatch` with mpirun over the fabric: h1..h8 recorded, exit 0
  new-rack       configs/slurm/new-rack.sbatch on leaf4 (h7, h8) + reference nodes h1, h2, with h7
                 capped: the job exits 1, its JUnit file and accept JSON name h7
  nightly        configs/slurm/nightly.sbatch twice: healthy (exit 0, becomes the baseline, submits
                 its next night with --begin, which is then cancelled), then with h3 capped (exit 1:
                 accept fails naming h3, compare finds the regression, summary.json/xml say so)

Every daemon started is stopped at the end, also when a scenario fails or this script is killed (a
guard process outside this one's process group stops the cluster and the rig when it dies). Needs
root, slurm-wlm and munge; without them the tier FAILS. Prints set-up, teardown and each scenario's
runtime.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import h5py

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CLUSTER = str(HERE / "cluster.sh")
RIG = str(ROOT / "tests/fabric/rig.sh")
SUITE = str(ROOT / "configs/suites/emulated/acceptance.yaml")  # the rig: MPI over TCP, 200 Mbit/s links
CRITERIA = str(ROOT / "configs/criteria/emulated.yaml")
NEW_RACK = str(ROOT / "configs/slurm/new-rack.sbatch")
NIGHTLY = str(ROOT / "configs/slurm/nightly.sbatch")
PYTHON = "/usr/bin/python3"
PRETEND_TOPOLOGY = "SwitchName=leaf1 Nodes=n[1-2]\nSwitchName=leaf2 Nodes=n[3-4]\nSwitchName=spine1 Switches=leaf[1-2]\n"
FABRIC_TOPOLOGY = ("# the emulated fabric of tests/fabric/rig.sh --hosts 8 --racks 4\n"
                   "SwitchName=leaf1 Nodes=h[1-2]\nSwitchName=leaf2 Nodes=h[3-4]\n"
                   "SwitchName=leaf3 Nodes=h[5-6]\nSwitchName=leaf4 Nodes=h[7-8]\n"
                   "SwitchName=spine1 \\\n  Switches=leaf[1-4]\n")
PAIRS_QUICK = ["--lat-size", "8", "--bw-size", "16K", "--iters", "50", "--bw-iters", "4", "--quiet"]
CAPPED_RATE = "80mbit"


class Failure(Exception):
    pass


def log(msg: str) -> None:
    print(msg, flush=True)


def strs(ds) -> list[str]:  # type: ignore[no-untyped-def]
    return [x.decode() if isinstance(x, bytes) else str(x) for x in ds[()]]


def attr(f: h5py.File, name: str) -> str:
    v = f.attrs[name]
    return v.decode() if isinstance(v, bytes) else str(v)


class Tier:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out = Path(args.outdir).resolve()
        self.out.mkdir(parents=True, exist_ok=True)
        self.dir = str(self.out / "cluster")
        self.mode = args.mode
        self.nodes = [f"n{i}" for i in range(1, 5)] if self.mode == "pretend" else [f"h{i}" for i in range(1, 9)]
        env = dict(os.environ)
        env.update({"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
                    "OMPI_MCA_mpi_yield_when_idle": "1"})
        if self.mode == "fabric":
            # MPI data over the emulated fabric only, launch traffic over the management network.
            env.update({"OMPI_MCA_btl": "tcp,self", "OMPI_MCA_btl_tcp_if_include": "fab0",
                        "OMPI_MCA_oob_tcp_if_include": "mgmt0"})
        self.env = env

    # --- the cluster -----------------------------------------------------------------------------
    def sh(self, argv: list[str], timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        try:
            res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=self.env,
                                 cwd=str(self.out))
        except subprocess.TimeoutExpired as exc:
            raise Failure(f"{' '.join(argv[:6])} did not finish within {timeout:.0f} s") from exc
        if check and res.returncode != 0:
            raise Failure(f"{' '.join(argv[:6])} exited {res.returncode}: {(res.stdout + res.stderr).strip()[-2500:]}")
        return res

    def client(self, argv: list[str], timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        return self.sh([CLUSTER, "run", self.dir] + argv, timeout=timeout, check=check)

    def up(self) -> None:
        t0 = time.monotonic()
        topo = self.out / "topology.conf"
        if self.mode == "fabric":
            self.sh([RIG, "--id", self.args.id, "down"], check=False)
            res = self.sh([RIG, "--id", self.args.id, "up", "--hosts", "8", "--racks", "4"], timeout=300)
            log(res.stdout.strip())
            topo.write_text(FABRIC_TOPOLOGY)
            res = self.sh([CLUSTER, "up", self.dir, "--rig", self.args.id, "--topology", str(topo)], timeout=120)
        else:
            topo.write_text(PRETEND_TOPOLOGY)
            res = self.sh([CLUSTER, "up", self.dir, "--pretend", "4", "--port-base", str(self.args.port_base),
                           "--topology", str(topo)], timeout=120)
        log(res.stdout.strip())
        log(f"slurm tier ({self.mode}): set-up {time.monotonic() - t0:.1f} s")

    def down(self) -> None:
        t0 = time.monotonic()
        res = self.sh([CLUSTER, "down", self.dir], check=False, timeout=120)
        log((res.stdout + res.stderr).strip())
        ok = res.returncode == 0
        if self.mode == "fabric":
            res = self.sh([RIG, "--id", self.args.id, "down"], check=False, timeout=120)
            log((res.stdout + res.stderr).strip())
            ok = ok and res.returncode == 0
        log(f"slurm tier ({self.mode}): teardown {time.monotonic() - t0:.1f} s")
        if not ok:
            raise Failure("teardown failed")

    def srun(self, argv: list[str], n: int, mpi: str | None = "pmix", timeout: float = 300,
             name: str = "srun", kill_on_bad_exit: bool = True) -> subprocess.CompletedProcess:
        kill = "-K" if kill_on_bad_exit else "--kill-on-bad-exit=0"  # slurm.conf: KillOnBadExit=1
        cmd = ["srun", "-N", str(n), "-n", str(n), kill] + ([f"--mpi={mpi}"] if mpi else []) + argv
        t0 = time.monotonic()
        res = self.client(cmd, timeout=timeout, check=False)
        (self.out / f"{name}.log").write_text(res.stdout + res.stderr)
        log(f"  {name}: srun{' --mpi=' + mpi if mpi else ''} exit {res.returncode} in {time.monotonic() - t0:.1f} s")
        return res

    def sbatch(self, argv: list[str], extra_env: dict[str, str], timeout: float, name: str) -> tuple[int, str]:
        """Submits, waits for the job to end (squeue), returns (exit code, output text)."""
        out = self.out / f"{name}.out"
        env_bak = self.env
        self.env = {**self.env, **extra_env}
        try:
            res = self.client(["sbatch", "--parsable", f"--output={out}"] + argv, timeout=60)
        finally:
            self.env = env_bak
        job = res.stdout.strip().split(";")[0]
        if not job.isdigit():
            raise Failure(f"sbatch printed no job id: {res.stdout!r} {res.stderr!r}")
        t0 = time.monotonic()
        while True:
            q = self.client(["squeue", "-h", "-j", job, "-o", "%T"], check=False, timeout=30)
            if not q.stdout.strip():
                break
            if time.monotonic() - t0 > timeout:
                self.client(["scancel", job], check=False)
                raise Failure(f"job {job} ({name}) still {q.stdout.strip()} after {timeout:.0f} s; cancelled")
            time.sleep(0.5)
        show = self.client(["scontrol", "show", "job", job], check=False).stdout
        m = re.search(r"\bExitCode=(\d+):(\d+)", show)
        state = re.search(r"\bJobState=(\S+)", show)
        rc = int(m.group(1)) if m else -1
        text = out.read_text() if out.exists() else ""
        log(f"  {name}: job {job} {state.group(1) if state else '?'} exit {rc} in {time.monotonic() - t0:.1f} s")
        return rc, text

    def rig(self, *argv: str) -> None:
        self.sh([RIG, "--id", self.args.id, *argv])

    def accept_json(self, path: Path) -> dict:
        v = json.loads(path.read_text())
        top = [(s["kind"], s["name"]) for s in v["suspects"][:3]]
        log(f"    {path.name}: verdict {v['verdict']}, top suspects {top}")
        return v

    def accept(self, h5: Path, name: str) -> tuple[int, dict]:
        js = self.out / f"{name}.accept.json"
        res = self.sh([PYTHON, self.args.analyze, "accept", str(h5), "--criteria", CRITERIA, "--json", str(js), "-q"],
                      check=False, timeout=300)
        if res.returncode not in (0, 1) or not js.exists():
            raise Failure(f"accept exited {res.returncode}: {res.stderr.strip()[-2000:]}")
        return res.returncode, self.accept_json(js)

    # --- checks on a results file ----------------------------------------------------------------
    def check_file(self, h5: Path, nodes: list[str], leaves: int, step: bool = True) -> None:
        if not h5.exists():
            raise Failure(f"no results file {h5}")
        with h5py.File(h5, "r") as f:
            names = strs(f["hosts/hostname"])
            sysnames = strs(f["hosts/gethostname"])
            if sorted(names) != sorted(nodes) or len(set(names)) != len(nodes):
                raise Failure(f"/hosts/hostname {names}, expected the Slurm node names {nodes}")
            if self.mode == "pretend":
                me = socket.gethostname()
                if set(sysnames) != {me}:
                    raise Failure(f"/hosts/gethostname {sysnames}, expected this machine's name {me!r} for all")
            elif sysnames != names:
                raise Failure(f"/hosts/gethostname {sysnames} differs from /hosts/hostname {names} on the rig")
            job = attr(f, "slurm_job_id")
            nodelist = attr(f, "slurm_job_nodelist")
            if not job.isdigit():
                raise Failure(f"slurm_job_id {job!r} is not a job id")
            if step and not attr(f, "slurm_step_id").isdigit():
                raise Failure(f"slurm_step_id {attr(f, 'slurm_step_id')!r} is not a step id")
            if attr(f, "slurm_job_partition") != "fab":
                raise Failure(f"slurm_job_partition {attr(f, 'slurm_job_partition')!r}, expected 'fab'")
            if not re.fullmatch(r"[nh]\[?[0-9,\-]+\]?", nodelist):
                raise Failure(f"slurm_job_nodelist {nodelist!r} is not a hostlist of the job's nodes")
            if leaves:
                sw = strs(f["topology/switches/name"])
                level = list(f["topology/switches/level"][()])
                if sorted(s for s, lv in zip(sw, level) if lv == 1) != [f"leaf{i}" for i in range(1, leaves + 1)] \
                        or [s for s, lv in zip(sw, level) if lv == 2] != ["spine1"]:
                    raise Failure(f"/topology/switches {list(zip(sw, level))}, expected leaf1..leaf{leaves} and spine1")
                th = strs(f["topology/hosts/name"])
                ranks_host = list(f["topology/ranks/host"][()])
                mapped = [th[i] for i in ranks_host]
                if mapped != names:
                    raise Failure(f"/topology/ranks maps ranks to {mapped}, the ranks ran on {names}")
            log(f"    {h5.name}: hosts {names}, gethostname {sorted(set(sysnames))}, job {job} step "
                f"{attr(f, 'slurm_step_id')!r} nodes {nodelist}")

    # --- pretend nodes ---------------------------------------------------------------------------
    def s_srun_pmix(self) -> None:
        h5 = self.out / "srun-pmix.h5"
        res = self.srun([self.args.fabscope, "pairs", "--slurm-topology", "--out", str(h5), "--overwrite", *PAIRS_QUICK],
                        4, name="srun-pmix")
        if res.returncode != 0:
            raise Failure(f"exit {res.returncode}: {(res.stdout + res.stderr)[-2000:]}")
        self.check_file(h5, self.nodes, leaves=2)
        with h5py.File(h5, "r") as f:
            if attr(f["topology"], "source") != "slurm:scontrol show topology":
                raise Failure(f"/topology source {attr(f['topology'], 'source')!r}, expected scontrol's")

    def s_topology_addr(self) -> None:
        h5 = self.out / "topology-addr.h5"
        res = self.srun(["/usr/bin/env", "PATH=/nonexistent", self.args.fabscope, "pairs", "--slurm-topology",
                         "--out", str(h5), "--overwrite", *PAIRS_QUICK], 4, name="topology-addr")
        if res.returncode != 0:
            raise Failure(f"exit {res.returncode}: {(res.stdout + res.stderr)[-2000:]}")
        self.check_file(h5, self.nodes, leaves=2)
        with h5py.File(h5, "r") as f:
            if attr(f["topology"], "source") != "slurm:SLURM_TOPOLOGY_ADDR":
                raise Failure(f"/topology source {attr(f['topology'], 'source')!r}, expected SLURM_TOPOLOGY_ADDR")

    def s_no_pmix(self) -> None:
        for mpi in (None, "pmi2"):
            # Every task exits 2 at once, and only task 0 prints the line. With kill-on-bad-exit srun
            # terminates the step when the first task has exited 2, and task 0's line could be cut
            # before it was forwarded (seen in CI under --mpi=pmi2 and, beside two CPU hogs, with
            # MpiDefault=none: exit 143, no line): here srun waits for every task.
            res = self.srun([self.args.fabscope, "lat", "--out", str(self.out / "no-pmix.h5"), "--overwrite"], 2,
                            mpi=mpi, timeout=120, name=f"no-pmix-{mpi or 'default'}", kill_on_bad_exit=False)
            # The first line that is not Slurm's own (srun may say "job N queued", "error: task 0 ...").
            ours = [ln for ln in res.stderr.splitlines() if ln.strip() and not ln.startswith(("srun:", "slurmstepd"))]
            first = ours[0] if ours else ""
            if res.returncode != 2:
                raise Failure(f"srun {mpi or '(MpiDefault=none)'}: exit {res.returncode}, expected 2: {res.stderr[-1500:]}")
            if "OMPI was not built with SLURM" in res.stderr or "MPI_Init" in res.stderr:
                raise Failure(f"srun {mpi or '(MpiDefault=none)'}: Open MPI's own failure reached the user: {res.stderr[-800:]}")
            if not first.startswith("fabscope: launched by srun without PMIx") or "srun --mpi=pmix" not in first:
                raise Failure(f"srun {mpi or '(MpiDefault=none)'}: first line on stderr is {first!r}")
            if res.stderr.count("launched by srun without PMIx") != 1:
                raise Failure(f"the line is printed {res.stderr.count('launched by srun')} times, expected once")
            log(f"    first line: {first}")

    def s_bad_topology(self) -> None:
        bad = self.out / "bad-topology.conf"
        bad.write_text("SwitchName=leaf1 Nodes=n[1-2]\nSwitchName=leaf2 Nodes=n[3-\n")
        res = self.srun([self.args.fabscope, "topo", f"--slurm-topology={bad}", "--out", str(self.out / "bad.h5"),
                         "--overwrite"], 2, timeout=120, name="bad-topology")
        lines = [ln for ln in res.stderr.splitlines() if ln.startswith("fabscope:")]
        if res.returncode != 2 or len(lines) != 1 or f"{bad}:2" not in lines[0] or "'[' without ']'" not in lines[0]:
            raise Failure(f"exit {res.returncode}, lines {lines}; expected exit 2 and one line naming {bad}:2")
        log(f"    {lines[0]}")

    def s_sbatch_mpirun(self) -> None:
        h5 = self.out / "sbatch-mpirun.h5"
        n = len(self.nodes)
        cmd = (f"mpirun --bind-to none -np {n} --map-by node {self.args.fabscope} pairs --slurm-topology "
               f"--out {h5} --overwrite {' '.join(PAIRS_QUICK)}")
        rc, text = self.sbatch(["-N", str(n), "--ntasks-per-node=1", "--wrap", cmd], {}, 300, "sbatch-mpirun")
        if rc != 0:
            raise Failure(f"the job exited {rc}: {text[-2000:]}")
        # rank 0 runs beside mpirun in the batch script, in no step (SCHEMA: slurm_step_id empty)
        self.check_file(h5, self.nodes, leaves=2 if self.mode == "pretend" else 4, step=False)

    # --- the emulated fabric ---------------------------------------------------------------------
    def s_srun_fault(self) -> None:
        self.rig("rate", "h3", CAPPED_RATE)
        h5 = self.out / "srun-fault.h5"
        res = self.srun([self.args.fabscope, "run", SUITE, "--slurm-topology", "--out", str(h5), "--overwrite",
                         "--quiet"], 8, timeout=400, name="srun-fault")
        if res.returncode != 0:
            raise Failure(f"exit {res.returncode}: {(res.stdout + res.stderr)[-2000:]}")
        self.check_file(h5, self.nodes, leaves=4)
        rc, v = self.accept(h5, "srun-fault")
        sus = [s for s in v["suspects"] if s["run"] == "pairs"]
        if rc != 1 or not sus or sus[0]["details"].get("host") != "h3":
            raise Failure(f"h3 capped: accept exit {rc}, top suspect {sus[:1]}, expected fail naming h3")

    def s_new_rack(self) -> None:
        self.rig("rate", "h7", CAPPED_RATE)
        results = self.out / "new-rack"
        shutil.rmtree(results, ignore_errors=True)  # an earlier run of the tier left its jobs here
        env = {"FABSCOPE_BIN": str(Path(self.args.fabscope).parent), "FABSCOPE_NEW_RACK": "leaf4",
               "FABSCOPE_CRITERIA": CRITERIA, "FABSCOPE_RESULTS": str(results),
               "FABSCOPE_PAIRS_ARGS": "--lat-size 8 --bw-size 16K --iters 200 --bw-iters 12 --repeat 3 "
                                      "--pair-timeout 30s --timeout 10s --quiet"}
        rc, text = self.sbatch(["--nodelist=h[1-2,7-8]", "-N", "4", NEW_RACK], env, 400, "new-rack")
        (self.out / "new-rack.out.txt").write_text(text)
        if rc != 1:
            raise Failure(f"new-rack job with h7 capped exited {rc}, expected 1 (rejected): {text[-2500:]}")
        runs = sorted(results.glob("*/accept.xml"))
        if len(runs) != 1:
            raise Failure(f"expected one accept.xml under {results}, found {runs}")
        d = runs[0].parent
        xml = runs[0].read_text()
        if "<failure" not in xml or "h7" not in xml:
            raise Failure(f"{runs[0]} has no failure naming h7")
        v = self.accept_json(d / "accept.json")
        sus = [s for s in v["suspects"] if s["run"] == "pairs"]
        if not sus or sus[0]["details"].get("host") != "h7":
            raise Failure(f"top suspect {sus[:1]}, expected h7")
        self.check_file(d / "pairs.h5", ["h1", "h2", "h7", "h8"], leaves=0)

    def s_nightly(self) -> None:
        results = self.out / "nightly"
        shutil.rmtree(results, ignore_errors=True)  # the nights of an earlier run of the tier
        env = {"FABSCOPE_BIN": str(Path(self.args.fabscope).parent), "FABSCOPE_SUITE": SUITE,
               "FABSCOPE_CRITERIA": CRITERIA, "FABSCOPE_RESULTS": str(results),
               # latency follows the shared cores' load here: judge bandwidth (tests/fabric does too)
               "FABSCOPE_COMPARE_ARGS": "--threshold 30% --metrics bandwidth",
               "FABSCOPE_TREND_ARGS": "--window 2"}
        # night 1: healthy; becomes the baseline; submits night 2 for an hour from now.
        rc, text = self.sbatch(["-N", "8", NIGHTLY], {**env, "FABSCOPE_RESUBMIT_BEGIN": "now+1hour"}, 400, "nightly-1")
        if rc != 0:
            raise Failure(f"healthy night exited {rc}: {text[-2500:]}")
        pending = self.client(["squeue", "-h", "-t", "PENDING", "-n", "fabscope-nightly", "-o", "%i %r"]).stdout.split("\n")
        pending = [p for p in pending if p.strip()]
        if len(pending) != 1 or "BeginTime" not in pending[0]:
            raise Failure(f"the next night was not submitted with --begin: pending jobs {pending}")
        self.client(["scancel", pending[0].split()[0]])
        log(f"    night 1 submitted the next night (job {pending[0]}), cancelled")
        if not (results / "baseline.h5").exists():
            raise Failure("the first healthy night did not become the baseline")
        s1 = json.loads((results / "latest/summary.json").read_text())
        if s1["status"] != "pass":
            raise Failure(f"night 1 summary {s1}")
        # night 2: h3 capped.
        self.rig("rate", "h3", CAPPED_RATE)
        time.sleep(1.1)  # dated folders have one-second resolution
        rc, text = self.sbatch(["-N", "8", NIGHTLY], env, 400, "nightly-2")
        if rc != 1:
            raise Failure(f"night with h3 capped exited {rc}, expected 1: {text[-2500:]}")
        d = (results / "latest").resolve()
        s2 = json.loads((d / "summary.json").read_text())
        steps = s2["steps"]
        if s2["status"] != "fail" or steps["accept"]["ok"] or steps["compare"]["ok"] or "h3" not in s2["suspect_hosts"] \
                or not s2["compare_regression"] or "trend" not in steps:
            raise Failure(f"night 2 summary: {json.dumps(s2)[:2500]}")
        xml = (d / "summary.xml").read_text()
        if xml.count("<testcase") != 4 or xml.count("<failure") < 2:
            raise Failure(f"summary.xml: {xml[:2000]}")
        trend = json.loads((d / "trend.json").read_text())
        if len(trend["files"]) != 2:
            raise Failure(f"trend read {trend['files']}, expected the two nights' run.h5")
        cmp = json.loads((d / "compare.json").read_text())
        worse = [r for r in cmp["rows"] if r.get("regression")]
        log(f"    night 2: {s2['status']}; {len(worse)} compare regressions; steps "
            + ", ".join(f"{k} {'ok' if v['ok'] else 'FAILED'}" for k, v in steps.items()))


SCENARIOS = {
    "pretend": [("srun-pmix", Tier.s_srun_pmix), ("topology-addr", Tier.s_topology_addr), ("no-pmix", Tier.s_no_pmix),
                ("bad-topology", Tier.s_bad_topology), ("sbatch-mpirun", Tier.s_sbatch_mpirun)],
    "fabric": [("srun-fault", Tier.s_srun_fault), ("sbatch-mpirun", Tier.s_sbatch_mpirun),
               ("new-rack", Tier.s_new_rack), ("nightly", Tier.s_nightly)],
}


def start_guard(args: argparse.Namespace, cluster_dir: str) -> None:
    """A process outside this one's process group that stops the cluster (and the rig) once this
    process is gone: its stdin is a pipe only we hold open, so it reads EOF at our exit, however it
    comes (also SIGKILL)."""
    r, w = os.pipe()
    rig = f'; "{RIG}" --id "{args.id}" down' if args.mode == "fabric" else ""
    subprocess.Popen(["/bin/sh", "-c", f'cat >/dev/null; "{CLUSTER}" down "{cluster_dir}"{rig}'],
                     stdin=r, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    os.close(r)
    # w stays open for the life of this process


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fabscope", required=True)
    ap.add_argument("--analyze", required=True)
    ap.add_argument("--outdir", required=True)
    ap.add_argument("--id", default="sl", help="rig id (fabric mode)")
    ap.add_argument("--port-base", type=int, default=17300, help="slurmctld port; slurmd ports follow (pretend mode)")
    ap.add_argument("mode", choices=sorted(SCENARIOS))
    ap.add_argument("only", nargs="*", help="run only these scenarios")
    args = ap.parse_args()
    args.fabscope, args.analyze = os.path.abspath(args.fabscope), os.path.abspath(args.analyze)
    for p in (args.fabscope, args.analyze):
        if not os.path.exists(p):
            print(f"slurm_test.py: {p} does not exist; build first", file=sys.stderr)
            return 2
    if os.geteuid() != 0:
        print("FAIL: the slurm tier needs root (slurmd, munged, namespaces); run ctest as root", flush=True)
        return 1
    missing = [t for t in ("slurmctld", "slurmd", "srun", "munged") if subprocess.run(
        ["sh", "-c", f"command -v {t}"], capture_output=True).returncode != 0]
    if missing:
        print(f"FAIL: {', '.join(missing)} not installed; bash .ci/deps test installs slurm-wlm and munge", flush=True)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tier = Tier(args)
    start_guard(args, tier.dir)
    results: list[tuple[str, bool, float, str]] = []
    t_all = time.monotonic()
    try:
        try:
            tier.up()
        except Exception as exc:  # the cluster is the precondition of everything: fail loudly
            print(f"FAIL: the Slurm cluster could not be started: {exc}", flush=True)
            return 1
        for name, fn in SCENARIOS[args.mode]:
            if args.only and name not in args.only:
                continue
            t0 = time.monotonic()
            log(f"scenario {name}:")
            try:
                fn(tier)
                ok, why = True, ""
            except Failure as exc:
                ok, why = False, str(exc)
            except Exception as exc:  # noqa: BLE001 - a scenario's crash is its failure; the rest still run
                ok, why = False, f"{type(exc).__name__}: {exc}"
            secs = time.monotonic() - t0
            results.append((name, ok, secs, why))
            log(f"scenario {name}: {'PASS' if ok else 'FAIL'} in {secs:.1f} s" + (f": {why}" if why else ""))
            if args.mode == "fabric":
                try:
                    tier.rig("reset")
                except Failure as exc:
                    results.append(("reset", False, 0.0, str(exc)))
                    break
    finally:
        try:
            tier.down()
        except Exception as exc:  # noqa: BLE001
            results.append(("teardown", False, 0.0, str(exc)))
    log("summary: " + ", ".join(f"{n} {'ok' if ok else 'FAIL'} {s:.0f}s" for n, ok, s, _ in results)
        + f"; total {time.monotonic() - t_all:.0f} s")
    return 1 if any(not ok for _, ok, _, _ in results) or not results else 0


if __name__ == "__main__":
    sys.exit(main())
