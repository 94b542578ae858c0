#!/usr/bin/python3
"""The diagnosis benchmark of `fabscope-analyze accept` (issue 15): generated fabrics with known
faults, written as real result files by synth.py and judged by the real `accept` (in-process, the
same code as the command line, criteria configs/criteria/ndr400.yaml); per fault kind, recall and
false alarms.

    diagnosis_bench.py [--cases 240] [--seed 1] [--sizes 64,128,256,512,1000] [--big]
                       [--kinds slow_host,...] [--keep DIR] [-v]

A case: a fabric of N hosts (with a topology: leaves of 8, 16 or 32 hosts, 4 spine planes per pod;
with routes or without them: /topology/ranks/dest_plane left out; or no topology at all), realistic
noise everywhere (0.5-2% window noise, 0.2-0.8% host-to-host spread, a background of stalled windows,
a few noisy pairs, which accept should call inconclusive) and one to three faults, each on its own
host or leaf:

  slow_host      every pair of the host: latency x3, bandwidth x0.4
  trained_down   the host's port trained down: bandwidth x0.5, its port rate on file halved
  flapping       1-10% of the host's pairs (at least 3) failed or timed out, every other pair fine
  latency_host   every pair of the host: latency x1.3-2.0, bandwidth unchanged
  ecmp_cable     a leaf-spine cable at 60%: with routes, the flows routed over it (destination
                 planes); without routes, the flows a per-flow ECMP hash puts on it
  dip            one pair's single measurement at 50% (a transient: nothing else of its hosts)
  healthy        nothing but the noise

Recall: the culprit is among the first TOP suspects (host: a host / host_link entry of its rank;
cable: that cable or, routes unknown, the uplinks of its leaf; dip: the pair is listed, as a pair
suspect, or as a failing or inconclusive pair). A false alarm: a host, host_link, leaf_spine_link or
leaf_uplinks entry (failing or warning) naming anything that is not a culprit. Exit status 1 when
recall is below 100% or any false alarm was raised.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "analysis"))
from synth import FabricModel, Faults, PairsSpec, SynthTopology, write_synthetic_run  # noqa: E402

CRITERIA = HERE.parents[1] / "configs" / "criteria" / "ndr400.yaml"
KINDS = ("slow_host", "trained_down", "flapping", "latency_host", "ecmp_cable", "dip", "healthy")
ENTITY_KINDS = ("host", "host_link", "leaf_spine_link", "leaf_uplinks")
TOP = 5
SIZES = (64, 128, 256, 512, 1000)
BIG_SIZES = (4096, 12500)


@dataclass
class Case:
    seed: int
    n: int
    layout: str  # routes, no_routes, flat
    hosts_per_leaf: int
    kinds: list[str]
    faults: Faults
    pairs: PairsSpec
    model: FabricModel
    culprits: list[tuple[str, object]] = field(default_factory=list)  # (kind, rank / (leaf, plane) / pair)

    @property
    def label(self) -> str:
        return f"seed {self.seed}: {self.n} hosts, {self.layout}, {'+'.join(self.kinds)}"


def make_case(seed: int, n: int, kinds: Sequence[str], layout: str) -> Case:
    """A fabric of n hosts with the faults `kinds` (each on a host / leaf of its own) and noise."""
    rng = np.random.default_rng(seed)
    hpl = int(rng.choice([8, 16, 32])) if layout != "flat" else 16
    hpl = min(hpl, max(4, n // 4))  # at least 4 leaves
    n_leaves = n // hpl
    model = FabricModel(peak_gbps=395.0, base_latency_ns=1500.0, noise=float(rng.uniform(0.005, 0.02)),
                        per_host_spread=float(rng.uniform(0.002, 0.008)))
    used_hosts: set[int] = set()
    used_leaves: set[int] = set()

    def pick_host() -> int:
        while True:
            h = int(rng.integers(0, n))
            if h not in used_hosts and (layout == "flat" or h // hpl not in used_leaves):
                used_hosts.add(h)
                return h

    fields: dict[str, object] = {"background_stall_rate": float(rng.uniform(0.0, 0.003))}
    noisy = []
    for _ in range(int(rng.integers(0, 4))):
        a, b = rng.choice(n, 2, replace=False)
        noisy.append((int(a), int(b)))
    culprits: list[tuple[str, object]] = []
    timeouts: list[tuple[int, int]] = []
    failed: list[tuple[int, int]] = []
    for kind in kinds:
        if kind == "slow_host":
            h = pick_host()
            fields["slow_hosts"] = (*fields.get("slow_hosts", ()), h)  # type: ignore[misc]
            culprits.append(("host", h))
        elif kind == "trained_down":
            h = pick_host()
            fields["bad_cables"] = (*fields.get("bad_cables", ()), h)  # type: ignore[misc]
            culprits.append(("host", h))
        elif kind == "flapping":
            h = pick_host()
            k = max(3, int(round(rng.uniform(0.01, 0.10) * (n - 1))))
            peers = rng.choice(np.delete(np.arange(n), h), k, replace=False)
            for i, p in enumerate(peers):
                (timeouts if i % 2 == 0 else failed).append((h, int(p)))
            culprits.append(("host", h))
        elif kind == "latency_host":
            h = pick_host()
            fields["latency_hosts"] = (*fields.get("latency_hosts", ()), h)  # type: ignore[misc]
            fields["latency_host_factor"] = float(rng.uniform(1.3, 2.0))
            culprits.append(("host", h))
        elif kind == "ecmp_cable":
            leaf = int(rng.integers(0, n_leaves))
            while leaf in used_leaves or any(h // hpl == leaf for h in used_hosts):
                leaf = int(rng.integers(0, n_leaves))
            used_leaves.add(leaf)
            plane = int(rng.integers(0, 4))
            key = "bad_uplinks" if layout == "routes" else "ecmp_uplinks"
            fields[key] = (*fields.get(key, ()), (leaf, plane))  # type: ignore[misc]
            culprits.append(("cable", (leaf, plane)))
        elif kind == "dip":
            a, b = pick_host(), pick_host()
            fields["dip_pairs"] = (*fields.get("dip_pairs", ()), (a, b))  # type: ignore[misc]
            culprits.append(("pair", (min(a, b), max(a, b))))
        elif kind != "healthy":
            raise ValueError(f"unknown fault kind {kind}")
    faulty = {h for k, h in culprits if k == "host"}
    fields["noisy_pairs"] = tuple(p for p in noisy if not set(p) & faulty)
    pairs = PairsSpec(bw_size_bytes=8 << 20, lat_iters=30, bw_windows=8, timeout_pairs=tuple(timeouts),
                      failed_pairs=tuple(failed), samples_all_max=600, sample_subset=5000)
    return Case(seed=seed, n=n, layout=layout, hosts_per_leaf=hpl, kinds=list(kinds), faults=Faults(**fields),
                pairs=pairs, model=model, culprits=culprits)


def write_case(case: Case, path: Path) -> Path:
    topo = None if case.layout == "flat" else SynthTopology(hosts_per_leaf=case.hosts_per_leaf, leaves_per_pod=8,
                                                            spines_per_pod=4)
    write_synthetic_run(path, case.n, case.seed, model=case.model, faults=case.faults, topology=topo, sweeps=(),
                        pairs=case.pairs)
    if case.layout == "no_routes":
        with h5py.File(path, "r+") as f:
            del f["topology/ranks/dest_plane"]
    return path


def judge(case: Case, path: Path) -> dict:
    """Run accept on the file; returns the verdict JSON."""
    from fabscope_analyze.cli import main

    js = path.with_suffix(".json")
    code = main(["accept", str(path), "--criteria", str(CRITERIA), "--json", str(js), "-q"])
    if code not in (0, 1, 3):  # 3: inconclusive (e.g. noisy pairs); the suspects are what is judged
        raise RuntimeError(f"{case.label}: accept exited {code}")
    return json.loads(js.read_text())


def _names(case: Case) -> tuple[list[str], list[str]]:
    width = max(3, len(str(case.n - 1)))
    hosts = [f"node{i:0{width}d}" for i in range(case.n)]
    leaves = [f"leaf{i + 1:04d}" for i in range(case.n // case.hosts_per_leaf + 1)]
    return hosts, leaves


def score(case: Case, v: dict) -> tuple[dict[int, bool], list[str]]:
    """Per culprit (index in case.culprits) found or not, and the false alarms (suspect texts)."""
    hosts, leaves = _names(case)
    sus = [s for s in v["suspects"] if s["run"] == "pairs"]
    run = next((r for r in v["runs"] if r["run"] == "pairs"), {"failing_pairs": [], "inconclusive_pairs": []})

    def matches(s: dict, kind: str, what: object) -> bool:
        if kind == "host":
            return s["kind"] in ("host", "host_link") and s["details"].get("rank") == what
        if kind == "cable":
            leaf, plane = what  # type: ignore[misc]
            if s["kind"] == "leaf_uplinks":
                return leaves[leaf] in s["name"].replace("uplinks of ", "").split(" or ")
            if s["kind"] == "leaf_spine_link":
                spine = f"spine{(leaf // 8) * 4 + plane + 1:04d}"
                return s["name"] == f"{leaves[leaf]} <-> {spine}"
        if kind == "pair":
            a, b = what  # type: ignore[misc]
            return s["kind"] == "pair" and {a, b} <= set(s["details"].get("ranks", []))
        return False

    found: dict[int, bool] = {}
    for i, (kind, what) in enumerate(case.culprits):
        hit = any(matches(s, kind, what) for s in sus[:TOP])
        if kind == "pair" and not hit:
            a, b = what  # type: ignore[misc]
            listed = {frozenset((p["from"], p["to"])) for p in run["failing_pairs"] + run["inconclusive_pairs"]}
            hit = frozenset((hosts[a], hosts[b])) in listed
        found[i] = hit
    false = [f"{s['kind']} {s['name']} ({s['details'].get('severity')})" for s in sus if s["kind"] in ENTITY_KINDS
             and not any(matches(s, k, w) for k, w in case.culprits if k != "pair")]
    return found, false


def cases(count: int, seed: int, sizes: Sequence[int], kinds: Sequence[str]) -> list[Case]:
    """count cases: every kind alone in turn, every fourth case two or three faults combined; sizes
    and layouts (routes, no routes, flat; cables need a topology) in turn."""
    out = []
    rng = np.random.default_rng(seed)
    singles = [k for k in kinds]
    faults_only = [k for k in kinds if k not in ("healthy",)]
    for i in range(count):
        n = sizes[i % len(sizes)]
        if i % 4 == 3 and len(faults_only) >= 2:
            chosen = list(rng.choice(faults_only, int(rng.integers(2, 4)), replace=len(faults_only) < 3))
        else:
            chosen = [singles[(i // 1) % len(singles)]]
        layout = ("routes", "no_routes", "flat")[(i // len(sizes)) % 3]
        if "ecmp_cable" in chosen and layout == "flat":
            layout = "no_routes"
        out.append(make_case(seed * 100_003 + i, n, [str(k) for k in chosen], layout))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", type=int, default=240)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)))
    ap.add_argument("--big", action="store_true", help=f"also one case of each fault at {BIG_SIZES} hosts")
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--keep", help="keep the files and verdicts in this folder")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    kinds = args.kinds.split(",")
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        print(f"diagnosis_bench.py: --kinds: unknown {bad}; use {','.join(KINDS)}", file=sys.stderr)
        return 2
    sizes = [int(x) for x in args.sizes.split(",")]
    todo = cases(args.cases, args.seed, sizes, kinds)
    if args.big:
        for j, n in enumerate(BIG_SIZES):
            for k, kind in enumerate(kinds):
                todo.append(make_case(args.seed * 7919 + 1000 * j + k, n, [kind], ("routes", "no_routes")[k % 2]))
    recall: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # kind -> found, culprits
    alarms: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # kind -> cases with a false alarm, cases
    failures: list[str] = []
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for i, case in enumerate(todo):
            t0 = time.monotonic()
            path = write_case(case, folder / f"case{i:04d}.h5")
            v = judge(case, path)
            found, false = score(case, v)
            for j, (kind, _) in enumerate(case.culprits):
                fk = case.kinds[j]
                recall[fk][0] += int(found[j])
                recall[fk][1] += 1
            for fk in set(case.kinds):
                alarms[fk][0] += int(bool(false))
                alarms[fk][1] += 1
            missed = [case.kinds[j] for j, ok in found.items() if not ok]
            if missed or false:
                top = [(s["kind"], s["name"], s["details"].get("severity")) for s in v["suspects"][:TOP]]
                failures.append(f"{case.label}: missed {missed} {case.culprits}, false alarms {false}; top {top}")
            if args.verbose:
                print(f"[{i + 1}/{len(todo)}] {case.label}: {time.monotonic() - t0:.1f} s"
                      + (f"  MISSED {missed}" if missed else "") + (f"  FALSE {false}" if false else ""), flush=True)
            if not args.keep:
                path.unlink()
    print(f"diagnosis benchmark: {len(todo)} cases (seed {args.seed}, sizes {sizes}{' + ' + str(BIG_SIZES) if args.big else ''}) "
          f"in {time.monotonic() - t_start:.0f} s; criteria {CRITERIA.name}; recall = culprit among the first {TOP} suspects")
    print(f"{'fault kind':<14} {'recall':>14} {'false alarms':>20}")
    total_found = total = total_false = 0
    for kind in kinds:
        f, c = recall.get(kind, [0, 0])
        a, m = alarms.get(kind, [0, 0])
        total_found, total, total_false = total_found + f, total + c, total_false + a
        rec = f"{f}/{c} ({100 * f / c:.0f}%)" if c else "-"
        print(f"{kind:<14} {rec:>14} {f'{a} of {m} cases':>20}")
    alarm_cases = sum(1 for x in failures if "false alarms []" not in x)
    print(f"{'all':<14} {f'{total_found}/{total}':>14} {f'{alarm_cases} of {len(todo)} cases':>20}")
    for line in failures:
        print("  " + line)
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
