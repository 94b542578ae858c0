#!/usr/bin/python3
"""Synthetic fabscope result files that follow results/SCHEMA.md (schema version 1).

For tests of fabscope-analyze that need control over the data (bad input, escaping, plots, faults,
scale). The numbers come from a simple model (`FabricModel`) plus log-normal noise; summaries are
computed from the samples exactly as SCHEMA.md defines them.

Any size: the pairs matrices are written row block by row block, so 10,000 hosts take about a
minute and little memory. Up to `PairsSpec.samples_all_max` hosts every measured pair has its raw
samples (pair_samples, as fabscope writes them); above, pair_samples holds a subset (every noisy
pair, the failed pairs, pairs touching a fault (capped) and a random sample) and the matrix cells
of the other pairs are drawn from the distribution of their statistic directly.

Faults (`Faults`):
  slow host      every pair of the host: latency x slow_latency_factor, bandwidth x slow_bw_factor
  bad cable      the host's link to its leaf: bandwidth x bad_cable_bw_factor both ways, latency
                 unchanged, and its port rate in /hosts/rdma_devices (and /topology) trained down
  bad uplink     (leaf, plane): the cable between that leaf and the spine of that plane: bandwidth
                 of every flow routed over it x bad_uplink_bw_factor (needs a topology)
  noisy pairs    windows intermittently slow (half the windows at 30..85%), so the median is low but
                 the spread is wide: acceptance should call them inconclusive, not failed
  latency host   every pair of the host: latency x latency_host_factor, bandwidth unchanged
  dip pairs      a transient dip of one pair: every window of its one measurement x dip_factor (tight)
  ECMP uplink    (leaf, plane) under per-flow ECMP: the flows to or from the leaf's other-leaf peers
                 that the flow hash (of the directed pair) puts on that plane: bandwidth x
                 bad_uplink_bw_factor; /topology's dest_plane does not describe these routes, so
                 leave it out of the file (routes unknown)

Synthetic topology (`SynthTopology`), written as /topology in the tables layout that
topology/tables.hpp writes and fabscope_analyze/layout.py reads (the one place that layout is
described): host i sits on leaf i // hosts_per_leaf, leaves form pods of leaves_per_pod, each pod
has spines_per_pod spines, and routes are destination based: traffic to host i crosses spine
plane (i % hosts_per_leaf) % spines_per_pod (/topology/ranks/dest_plane).

    synth.py OUT.h5 --hosts N [--slow-host K] [--bad-cable K] [--bad-uplink LEAF:PLANE]
             [--noisy-pairs K] [--topology] [--seed S]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np
from scipy.special import ndtri

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "analysis"))
from fabscope_analyze.stats import summary_stats  # noqa: E402

SCHEMA_VERSION = 1
STATUS_NAMES = "not_run,ok,failed,timeout"
STATUS_NOT_RUN, STATUS_OK, STATUS_FAILED, STATUS_TIMEOUT = 0, 1, 2, 3
WINDOW = 64
HOSTILE = "<script>alert(1)</script>"  # markup that a report must show as text
_STR = h5py.string_dtype("utf-8")
DEVICE = "mlx5_0 port 1: fw 28.39.1002, link_layer InfiniBand, state ACTIVE, rate {rate:g} Gb/sec (4X NDR)"


@dataclass(frozen=True)
class FabricModel:
    """What the synthetic fabric measures: latency grows linearly with size, bandwidth saturates."""

    base_latency_ns: float = 1800.0
    latency_ns_per_byte: float = 0.08
    peak_gbps: float = 100.0
    half_bw_size_bytes: float = 8192.0  # size at which bandwidth reaches half the peak
    noise: float = 0.05  # sigma of the log-normal noise of one sample
    tail_fraction: float = 0.01  # share of latency samples hit by a tail event
    tail_factor: float = 3.0
    slow_hosts: tuple[int, ...] = ()
    slow_latency_factor: float = 3.0
    slow_bw_factor: float = 0.4
    per_host_spread: float = 0.02  # host-to-host variation of the healthy hosts
    hop_latency_ns: float = 300.0  # with a topology: extra one-way latency per tier climbed

    def latency_ns(self, size: int) -> float:
        return self.base_latency_ns + self.latency_ns_per_byte * size

    def bw_gbps(self, size: int) -> float:
        return self.peak_gbps * size / (size + self.half_bw_size_bytes)


@dataclass(frozen=True)
class Faults:
    slow_hosts: tuple[int, ...] = ()
    bad_cables: tuple[int, ...] = ()
    bad_uplinks: tuple[tuple[int, int], ...] = ()  # (leaf index, spine plane)
    noisy_pairs: tuple[tuple[int, int], ...] = ()
    bad_cable_bw_factor: float = 0.5
    bad_uplink_bw_factor: float = 0.6
    # lossy links: a bandwidth window of a lossy host's pairs stalls (runs at 10-20% of its rate, as
    # after a retransmission time-out) with this probability; every other window with the background's
    lossy_hosts: tuple[int, ...] = ()
    lossy_stall_rate: float = 0.05
    background_stall_rate: float = 0.0
    latency_hosts: tuple[int, ...] = ()
    latency_host_factor: float = 1.5
    dip_pairs: tuple[tuple[int, int], ...] = ()
    dip_factor: float = 0.5
    ecmp_uplinks: tuple[tuple[int, int], ...] = ()  # (leaf index, plane), per-flow hash


@dataclass(frozen=True)
class SynthTopology:
    hosts_per_leaf: int = 16
    leaves_per_pod: int = 8
    spines_per_pod: int = 4
    rate_gbps: float = 400.0
    name: str = "synthetic fat tree"

    def leaf(self, ranks: np.ndarray) -> np.ndarray:
        return np.asarray(ranks) // self.hosts_per_leaf

    def pod(self, ranks: np.ndarray) -> np.ndarray:
        return self.leaf(ranks) // self.leaves_per_pod

    def plane(self, ranks: np.ndarray) -> np.ndarray:
        return (np.asarray(ranks) % self.hosts_per_leaf) % self.spines_per_pod


@dataclass(frozen=True)
class SweepSpec:
    name: str
    benchmark: str  # lat, bw or bibw
    sizes: tuple[int, ...]
    iters: int
    warmup: int


DEFAULT_SWEEPS: tuple[SweepSpec, ...] = (
    SweepSpec("lat", "lat", tuple(2**k for k in range(0, 13)), 200, 20),
    SweepSpec("bw", "bw", tuple(2**k for k in range(10, 19)), 10, 2),
    SweepSpec("bibw", "bibw", tuple(2**k for k in range(10, 17)), 5, 1),
)


@dataclass(frozen=True)
class PairsSpec:
    name: str = "pairs"
    lat_size_bytes: int = 8
    bw_size_bytes: int = 65536
    lat_iters: int = 100
    bw_windows: int = 5
    warmup: int = 5
    rounds_done: int | None = None  # None: all rounds
    failed_pairs: tuple[tuple[int, int], ...] = ()
    timeout_pairs: tuple[tuple[int, int], ...] = ()
    samples_all_max: int = 600  # up to this many hosts every pair has raw samples
    sample_subset: int = 20_000  # above: random healthy pairs with samples
    counters: bool = False
    layout: str = "matrices"  # "rows": schema version 2 (pairs/ row table), up to samples_all_max hosts
    keep_samples: str = "all"  # layout rows: all, suspect or none


@dataclass(frozen=True)
class CollSpec:
    name: str = "coll"
    ops: tuple[str, ...] = ("allreduce", "allgather", "reduce_scatter", "alltoall", "bcast", "barrier")
    sizes: tuple[int, ...] = tuple(8 << (2 * k) for k in range(10))  # 8 B .. 2 MiB
    iters: int = 5
    warmup: int = 1
    check: bool = True
    slow_from_nodes: int | None = None  # groups of at least this many nodes run 3x slower (a scaling drop)
    check_failures: tuple[tuple[str, int, int], ...] = ()  # (op, group index, size index) with wrong results


@dataclass(frozen=True)
class ShiftSpec:
    """A `shift` run (results/SCHEMA.md). A flow i -> j moves at the pairs model's bandwidth
    of that pair (FabricModel.bw_gbps(size_bytes) x the pair's factors) x load_fraction, x
    cross_leaf_factor when it leaves its leaf (with a topology: an oversubscribed spine tier),
    x the factor of its step in slow_steps, and x collision_factor for the flows in collisions
    (a slow mode in the per-flow histogram)."""

    name: str = "shift"
    pattern: str = "shift"  # or "permutation"
    size_bytes: int = 1 << 20
    iters: int = 5
    warmup: int = 1
    steps: int | None = None  # None: N - 1
    steps_done: int | None = None  # None: all; fewer = a run killed after that many steps
    rows_written: str = "total"  # a killed run's per-step datasets: "total" rows (NaN after) or "done" rows
    link_rate_gbps: float | None = 400.0  # None: unknown (NaN attribute, NaN effective throughput)
    load_fraction: float = 0.95
    cross_leaf_factor: float = 1.0
    slow_steps: tuple[tuple[int, float], ...] = ()  # (step, factor applied to every flow of the step)
    collisions: tuple[tuple[int, int], ...] = ()  # (step, sending rank) flows slowed by collision_factor
    collision_factor: float = 0.5
    failed_flows: tuple[tuple[int, int], ...] = ()  # (step, sending rank): a failed flow (NaN, errors/*)
    flow_samples: bool = True
    counters: bool = False
    seed: int = 11


@dataclass(frozen=True)
class CongestionSpec:
    """A `congestion` run (results/SCHEMA.md). Victim k measures against its ring partner;
    under pattern q its latency is x factor (and its bandwidth / factor), factor =
    pattern_factor[q] (default 1.1), x cross_leaf_factor[q] when the partner sits on another leaf
    (needs a topology), x the factor of (victim rank, pattern) in hot_victims."""

    name: str = "congestion"
    victim_fraction: float = 0.25
    placement: str = "random"  # random | leaf (victims fill leaves in rank order) | spread
    seed: int = 5
    patterns: tuple[str, ...] = ("incast", "alltoall", "flood")
    phases_done: int | None = None  # loaded phases measured (None: all): a killed run
    iters: int = 200
    bw_iters: int = 10
    warmup: int = 10
    lat_size_bytes: int = 8
    bw_size_bytes: int = 1 << 16
    aggressor_size_bytes: int = 1 << 20
    pattern_factor: tuple[tuple[str, float], ...] = ()
    cross_leaf_factor: tuple[tuple[str, float], ...] = ()
    hot_victims: tuple[tuple[int, str, float], ...] = ()
    allreduce_factor: float = 1.2
    idle_ranks: tuple[int, ...] = ()
    counters: bool = False


@dataclass
class HostSpec:
    hostnames: Sequence[str] | None = None
    kernel: str = "Linux 6.1.0-28-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22)"
    cpu_model: str = "Intel(R) Xeon(R) Platinum 8480+"
    mpi_library: str = "Open MPI v4.1.4, package: Debian OpenMPI, ident: 4.1.4, repo rev: v4.1.4, May 26, 2022"
    rdma_core_version: str = "44.0"
    rdma_devices: str = DEVICE.format(rate=400)
    overrides: dict[int, dict[str, str]] = field(default_factory=dict)  # rank -> {field: value}


@dataclass(frozen=True)
class HostConfigSpec:
    """The configuration evidence of /hosts (results/SCHEMA.md: /hosts/ports, cpu_numa_nodes,
    memlock_bytes, cap_ipc_lock, config_problems), one mlx5_0 port 1 per host. Bad cables (Faults)
    train the port down to half the rate at width 2X; `ports` overrides fields per rank, e.g.
    {7: {"pcie_width": 8}}."""

    fw_ver: str = "28.40.1000"
    rate_gbps: float | None = None  # None: the fabric's rate
    active_mtu_bytes: int = 4096
    pcie_speed_gts: float = 32.0
    pcie_width: int = 16
    numa_node: int = 0
    ports: dict[int, dict[str, object]] = field(default_factory=dict)
    problems: tuple[str, ...] = ()


def circle_rounds(n: int) -> list[list[tuple[int, int]]]:
    """The circle-method schedule of SCHEMA.md: N-1 rounds (N odd: N), every unordered pair once;
    within a pair the lower-position rank comes first (the initiator)."""
    m = n + (n % 2)  # an odd N gets a sit-out slot, numbered n
    others = list(range(1, m))
    rounds: list[list[tuple[int, int]]] = []
    for r in range(m - 1):
        order = [0] + others[r:] + others[:r]
        pairs = [(order[i], order[m - 1 - i]) for i in range(m // 2)]
        rounds.append([(a, b) for a, b in pairs if a < n and b < n])
    return rounds


def circle_round(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The round of pair (a, b) in circle_rounds(n), in closed form (vectorised): with m = n
    rounded up to even, pairs (0, b) meet in round b mod (m - 1), others where
    a + b = 2 r (mod m - 1)."""
    m = n + (n % 2)
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    return np.where(lo == 0, hi % (m - 1), ((lo + hi) * (m // 2)) % (m - 1))


def _hash01(keys: np.ndarray, salt: int) -> np.ndarray:
    """Deterministic uniforms in (0, 1) from integer keys (splitmix64): the same pair gets the
    same noise whichever row block draws it, so symmetric matrices can be written by blocks."""
    with np.errstate(over="ignore"):
        z = keys.astype(np.uint64) + np.uint64((salt * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return ((z >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)


def _normal(keys: np.ndarray, salt: int) -> np.ndarray:
    return ndtri(_hash01(keys, salt))


def write_synthetic_run(
    path: str | Path,
    n_hosts: int,
    seed: int = 0,
    *,
    model: FabricModel | None = None,
    slow_host: int | None = None,
    faults: Faults | None = None,
    topology: SynthTopology | None = None,
    hosts: HostSpec | None = None,
    host_config: HostConfigSpec | None = None,
    sweeps: Sequence[SweepSpec] = DEFAULT_SWEEPS,
    pairs: PairsSpec | None = PairsSpec(),
    coll: CollSpec | None = None,
    shift: ShiftSpec | Sequence[ShiftSpec] | None = None,
    congestion: CongestionSpec | None = None,
    label: str = "",
    complete: bool = True,
    schema_version: int = SCHEMA_VERSION,
    command_line: str | None = None,
    created_utc: str = "2026-11-28T08:00:00Z",
    fabric_seed: int | None = None,
) -> Path:
    """Write a schema-valid result file for `n_hosts` ranks (one rank per host) and return its path.

    `slow_host` adds that rank to the slow hosts (higher latency, lower bandwidth to it).
    `fabric_seed` (default: `seed`) fixes the host-to-host differences, so that two files with the
    same fabric_seed and different seeds differ by measurement noise only.
    `pairs=None` leaves the pairs run out, `sweeps=()` the size sweeps (which need n_hosts >= 2).
    """
    if n_hosts < 1:
        raise ValueError("n_hosts must be at least 1")
    model = model or FabricModel()
    faults = faults or Faults()
    slow = set(model.slow_hosts) | set(faults.slow_hosts) | ({slow_host} if slow_host is not None else set())
    for h in slow | set(faults.bad_cables):
        if not 0 <= h < n_hosts:
            raise ValueError(f"host {h} is not a rank of {n_hosts}")
    if (faults.bad_uplinks or faults.ecmp_uplinks) and topology is None:
        raise ValueError("bad uplinks need a topology")
    model = replace(model, slow_hosts=tuple(sorted(slow)))
    rng = np.random.default_rng(seed)
    path = Path(path)
    host_spec = hosts or HostSpec()
    rate = topology.rate_gbps if topology else 400.0
    if pairs is not None and pairs.layout == "rows" and schema_version == 1:
        schema_version = 2
    with h5py.File(path, "w") as f:
        f.attrs["schema_version"] = np.int64(schema_version)
        f.attrs["fabscope_version"] = "0.0.0-synthetic"
        f.attrs["created_utc"] = created_utc
        f.attrs["command_line"] = command_line or f"synth.py --hosts {n_hosts} --seed {seed}"
        f.attrs["suite_text"] = _suite_text(sweeps, pairs, coll)
        f.attrs["n_ranks"] = np.int64(n_hosts)
        f.attrs["complete"] = np.int8(1 if complete else 0)
        _write_hosts(f.create_group("hosts"), n_hosts, host_spec, faults, rate)
        if host_config is not None:
            _write_host_config(f["hosts"], n_hosts, host_config, faults, rate)
        if topology is not None:
            _write_topology(f.create_group("topology"), n_hosts, topology, faults)
        runs = f.create_group("runs")
        index = 0
        if n_hosts >= 2:
            for spec in sweeps:
                _write_sweep(runs.create_group(f"{index:02d}_{spec.name}"), spec, model, rng, label)
                index += 1
        if pairs is not None:
            _write_pairs(runs.create_group(f"{index:02d}_{pairs.name}"), n_hosts, pairs, model, faults, topology,
                         rng, label, seed, seed if fabric_seed is None else fabric_seed)
            index += 1
        if coll is not None and n_hosts >= 2:
            _write_coll(runs.create_group(f"{index:02d}_{coll.name}"), n_hosts, coll, model, rng, label)
            index += 1
        shifts = () if shift is None else (shift,) if isinstance(shift, ShiftSpec) else tuple(shift)
        for spec in shifts:
            _write_shift(runs.create_group(f"{index:02d}_{spec.name}"), n_hosts, spec, model, faults, topology, label,
                         seed if fabric_seed is None else fabric_seed, seed)
            index += 1
        if congestion is not None:
            _write_congestion(runs.create_group(f"{index:02d}_{congestion.name}"), n_hosts, congestion, model,
                              topology, label, seed)
    return path


def _suite_text(sweeps: Sequence[SweepSpec], pairs: PairsSpec | None, coll: CollSpec | None = None) -> str:
    lines = ["name: synthetic", "benchmarks:"]
    for s in sweeps:
        lines.append(f"  - {{name: {s.name}, kind: {s.benchmark}, iters: {s.iters}, warmup: {s.warmup}}}")
    if pairs is not None:
        lines.append(f"  - {{name: {pairs.name}, kind: pairs, iters: {pairs.lat_iters}}}")
    if coll is not None:
        lines.append(f"  - {{name: {coll.name}, kind: coll, iters: {coll.iters}}}")
    return "\n".join(lines) + "\n"


def _write_hosts(g: h5py.Group, n: int, spec: HostSpec, faults: Faults, rate: float) -> None:
    width = max(3, len(str(n - 1)))
    names = list(spec.hostnames) if spec.hostnames is not None else [f"node{i:0{width}d}" for i in range(n)]
    if len(names) != n:
        raise ValueError(f"{len(names)} host names for {n} hosts")
    g.create_dataset("rank", data=np.arange(n, dtype=np.int32))
    devices = [spec.rdma_devices if spec.rdma_devices != DEVICE.format(rate=400) else DEVICE.format(rate=rate)] * n
    for h in faults.bad_cables:
        devices[h] = DEVICE.format(rate=rate / 2).replace("4X", "2X")
    columns = {
        "hostname": names,
        "kernel": [spec.kernel] * n,
        "cpu_model": [spec.cpu_model] * n,
        "mpi_library": [spec.mpi_library] * n,
        "rdma_core_version": [spec.rdma_core_version] * n,
        "rdma_devices": devices,
    }
    for rank, values in spec.overrides.items():
        for key, value in values.items():
            columns[key][rank] = value
    for key, values in columns.items():
        g.create_dataset(key, data=np.array(values, dtype=object), dtype=_STR)


def _write_host_config(g: h5py.Group, n: int, spec: HostConfigSpec, faults: Faults, rate: float) -> None:
    """/hosts/ports and the per-rank configuration columns, as fabscope writes them."""
    base: dict[str, object] = {
        "device": "mlx5_0", "port": 1, "link_layer": "InfiniBand", "state": "ACTIVE",
        "rate_gbps": spec.rate_gbps or rate, "width": "4X", "speed": "NDR",
        "active_mtu_bytes": spec.active_mtu_bytes, "max_mtu_bytes": 4096, "fw_ver": spec.fw_ver,
        "driver": "mlx5_core", "pcie_speed_gts": spec.pcie_speed_gts, "pcie_max_speed_gts": 32.0,
        "pcie_width": spec.pcie_width, "pcie_max_width": 16, "numa_node": spec.numa_node,
    }
    rows = []
    for r in range(n):
        row = dict(base, rank=r)
        if r in faults.bad_cables:
            row.update(rate_gbps=float(row["rate_gbps"]) / 2, width="2X")
        row.update(spec.ports.get(r, {}))
        rows.append(row)
    pg = g.create_group("ports")
    units = {"rate_gbps": "Gb/s", "active_mtu_bytes": "bytes", "max_mtu_bytes": "bytes", "pcie_speed_gts": "GT/s",
             "pcie_max_speed_gts": "GT/s", "pcie_width": "lanes", "pcie_max_width": "lanes"}
    for key in ["rank", *base]:
        values = [row[key] for row in rows]
        if isinstance(base.get(key, 0), str):
            _strings(pg, key, [str(v) for v in values])
        else:
            is_float = key in ("rate_gbps", "pcie_speed_gts", "pcie_max_speed_gts")
            ds = pg.create_dataset(key, data=np.array(values, dtype=np.float64 if is_float else np.int64))
            ds.attrs["units"] = units.get(key, "1")
    _strings(g, "cpu_numa_nodes", ["0"] * n)
    g.create_dataset("memlock_bytes", data=np.full(n, -1, dtype=np.int64)).attrs["units"] = "bytes"
    g.create_dataset("cap_ipc_lock", data=np.zeros(n, dtype=np.int64)).attrs["units"] = "1"
    _strings(g, "config_problems", list(spec.problems))


def _strings(g: h5py.Group, name: str, values: Sequence[str]) -> None:
    g.create_dataset(name, data=np.array(list(values), dtype=object), dtype=_STR)


def _write_topology(g: h5py.Group, n: int, t: SynthTopology, faults: Faults) -> None:
    """/topology in the tables layout (see the module doc and fabscope_analyze/layout.py)."""
    ranks = np.arange(n)
    leaf = t.leaf(ranks)
    n_leaves = int(leaf.max()) + 1
    n_pods = (n_leaves + t.leaves_per_pod - 1) // t.leaves_per_pod
    width = max(3, len(str(n - 1)))
    g.attrs["source"] = "synth.py"
    g.attrs["name"] = t.name
    g.attrs["routes_known"] = "1"
    g.attrs["hop_class_names"] = "same_host,same_leaf,same_pod,cross_spine,unknown"
    sw_names = [f"leaf{i + 1:04d}" for i in range(n_leaves)] + \
        [f"spine{p * t.spines_per_pod + k + 1:04d}" for p in range(n_pods) for k in range(t.spines_per_pod)]
    sw_level = [1] * n_leaves + [2] * (n_pods * t.spines_per_pod)
    sw_pod = [i // t.leaves_per_pod for i in range(n_leaves)] + \
        [p for p in range(n_pods) for _ in range(t.spines_per_pod)]
    sw = g.create_group("switches")
    _strings(sw, "name", sw_names)
    sw.create_dataset("level", data=np.array(sw_level, dtype=np.int64))
    sw.create_dataset("pod", data=np.array(sw_pod, dtype=np.int64))
    hosts = g.create_group("hosts")
    _strings(hosts, "name", [f"node{i:0{width}d}" for i in range(n)])
    hosts.create_dataset("leaf", data=leaf.astype(np.int64))
    hosts.create_dataset("pod", data=t.pod(ranks).astype(np.int64))
    hosts.create_dataset("rack", data=leaf.astype(np.int64))
    _strings(hosts, "leaf_name", [sw_names[x] for x in leaf])
    hosts.create_dataset("topo_order", data=ranks.astype(np.int64))
    hosts.create_dataset("first_nic", data=ranks.astype(np.int64))
    hosts.create_dataset("nic_count", data=np.ones(n, dtype=np.int64))
    nics = g.create_group("nics")
    nics.create_dataset("host", data=ranks.astype(np.int64))
    _strings(nics, "device", ["mlx5_0"] * n)
    rate = np.full(n, t.rate_gbps)
    rate[list(faults.bad_cables)] = t.rate_gbps / 2
    ds = nics.create_dataset("rate_gbps", data=rate)
    ds.attrs["units"] = "Gb/s"
    nics.create_dataset("leaf", data=leaf.astype(np.int64))
    nics.create_dataset("rail", data=np.zeros(n, dtype=np.int64))
    rk = g.create_group("ranks")
    rk.create_dataset("host", data=ranks.astype(np.int64))
    rk.create_dataset("nic", data=ranks.astype(np.int64))
    rk.create_dataset("dest_plane", data=t.plane(ranks).astype(np.int64))
    pods = g.create_group("pods")
    _strings(pods, "name", [f"pod{p + 1}" for p in range(n_pods)])


def _common_attrs(g: h5py.Group, benchmark: str, name: str, iters: int, warmup: int, label: str) -> None:
    g.attrs["benchmark"] = benchmark
    g.attrs["name"] = name
    g.attrs["transport"] = "mpi"
    g.attrs["label"] = label
    g.attrs["iters"] = np.int64(iters)
    g.attrs["warmup"] = np.int64(warmup)
    g.attrs["started_utc"] = "2026-11-28T08:00:01Z"
    g.attrs["finished_utc"] = "2026-11-28T08:00:02Z"
    g.attrs["complete"] = np.int8(1)
    g.attrs["wall_seconds"] = np.float64(1.0)


def _quantity(g: h5py.Group, name: str, data: np.ndarray, units: str, **kwargs: object) -> h5py.Dataset:
    ds = g.create_dataset(name, data=data, **kwargs)
    ds.attrs["units"] = units
    return ds


def _noise(rng: np.random.Generator, sigma: float, shape: tuple[int, ...]) -> np.ndarray:
    return rng.lognormal(0.0, sigma, shape)


def _latency_samples(
    rng: np.random.Generator, model: FabricModel, sizes: Sequence[int], n: int, factor: float | np.ndarray
) -> np.ndarray:
    """[len(sizes), n] one-way latencies; `factor` scales each row (scalar or [len(sizes)])."""
    base = np.array([model.latency_ns(s) for s in sizes]) * factor
    x = base[:, None] * _noise(rng, model.noise, (len(sizes), n))
    tail = rng.random(x.shape) < model.tail_fraction
    return np.where(tail, x * model.tail_factor, x)


def _bw_samples(
    rng: np.random.Generator, model: FabricModel, sizes: Sequence[int], n: int, factor: float | np.ndarray
) -> np.ndarray:
    """[len(sizes), n] window bandwidths; `factor` scales each row (scalar or [len(sizes)])."""
    base = np.array([model.bw_gbps(s) for s in sizes]) * factor
    return base[:, None] * _noise(rng, model.noise, (len(sizes), n))


def _write_summary(g: h5py.Group, metric: str, samples: np.ndarray, units: str) -> None:
    for stat, values in summary_stats(samples).items():
        _quantity(g, f"{metric}_{stat}", values, units)


def _write_sweep(g: h5py.Group, spec: SweepSpec, model: FabricModel, rng: np.random.Generator, label: str) -> None:
    _common_attrs(g, spec.benchmark, spec.name, spec.iters, spec.warmup, label)
    sizes = np.array(spec.sizes, dtype=np.int64)
    _quantity(g, "size_bytes", sizes, "bytes")
    slow = 0 in model.slow_hosts or 1 in model.slow_hosts
    chunked = {"chunks": (1, spec.iters), "compression": "gzip"}
    summary = g.create_group("summary")
    if spec.benchmark == "lat":
        x = _latency_samples(rng, model, spec.sizes, spec.iters, model.slow_latency_factor if slow else 1.0)
        _quantity(g.create_group("samples"), "latency_ns", x, "ns", **chunked)
        _write_summary(summary, "latency_ns", x, "ns")
        return
    g.attrs["window"] = np.int64(WINDOW)
    directions = 2 if spec.benchmark == "bibw" else 1
    x = _bw_samples(rng, model, spec.sizes, spec.iters, model.slow_bw_factor if slow else 1.0) * directions
    _quantity(g.create_group("samples"), "bw_gbps", x, "Gb/s", **chunked)
    _write_summary(summary, "bw_gbps", x, "Gb/s")
    bits = directions * WINDOW * sizes[:, None].astype(np.float64) * 8
    window_ns = bits / x
    _quantity(summary, "bw_gbps_overall", bits[:, 0] * spec.iters / window_ns.sum(axis=1), "Gb/s")
    _write_summary(summary, "msg_rate_mpps", directions * WINDOW / (window_ns / 1000.0), "Mpps")


# --- pairs ----------------------------------------------------------------------------------------


class _PairModel:
    """Per-pair factors of latency and bandwidth for blocks of rows (vectorised)."""

    def __init__(self, n: int, model: FabricModel, faults: Faults, topo: SynthTopology | None, seed: int,
                 spec: PairsSpec) -> None:
        self.n, self.model, self.faults, self.topo, self.seed = n, model, faults, topo, seed
        self.spec = spec
        hr = np.random.default_rng(seed + 7919)
        self.spread = 1.0 + model.per_host_spread * np.abs(hr.standard_normal(n))
        self.slow = np.zeros(n, dtype=bool)
        self.slow[list(model.slow_hosts)] = True
        self.cable = np.zeros(n, dtype=bool)
        self.cable[list(faults.bad_cables)] = True
        self.lat_host = np.zeros(n, dtype=bool)
        self.lat_host[list(faults.latency_hosts)] = True
        self.dip_keys = np.array(sorted(min(p) * n + max(p) for p in faults.dip_pairs), dtype=np.int64)
        self.lat_base = model.latency_ns(spec.lat_size_bytes)
        self.bw_base = model.bw_gbps(spec.bw_size_bytes)
        noisy = {frozenset(p) for p in faults.noisy_pairs}
        self.noisy_keys = np.array(sorted(min(p) * n + max(p) for p in map(tuple, noisy)), dtype=np.int64)

    def hops(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if self.topo is None:
            return np.zeros(np.broadcast(a, b).shape)
        t = self.topo
        same_leaf = t.leaf(a) == t.leaf(b)
        same_pod = t.pod(a) == t.pod(b)
        return np.where(same_leaf, 0.0, np.where(same_pod, 1.0, 2.0))

    def lat_factor(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        m = self.model
        f = self.spread[a] * self.spread[b] * (1.0 + self.hops(a, b) * m.hop_latency_ns / self.lat_base)
        f = f * np.where(self.lat_host[a] | self.lat_host[b], self.faults.latency_host_factor, 1.0)
        return f * np.where(self.slow[a] | self.slow[b], m.slow_latency_factor, 1.0)

    def bw_factor(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Flow a -> b."""
        m, fl = self.model, self.faults
        f = 1.0 / (self.spread[a] * self.spread[b])
        f = f * np.where(self.slow[a] | self.slow[b], m.slow_bw_factor, 1.0)
        f = f * np.where(self.cable[a] | self.cable[b], fl.bad_cable_bw_factor, 1.0)
        if fl.bad_uplinks and self.topo is not None:
            t = self.topo
            la, lb, plane = t.leaf(a), t.leaf(b), t.plane(b)
            hit = np.zeros(np.broadcast(a, b).shape, dtype=bool)
            for leaf, k in fl.bad_uplinks:
                hit |= (la != lb) & (plane == k) & ((la == leaf) | (lb == leaf))
            f = f * np.where(hit, fl.bad_uplink_bw_factor, 1.0)
        if fl.ecmp_uplinks and self.topo is not None:
            t = self.topo
            la, lb = t.leaf(a), t.leaf(b)
            key = np.asarray(a, dtype=np.int64) * self.n + np.asarray(b, dtype=np.int64)
            plane = np.floor(_hash01(key, 977) * t.spines_per_pod).astype(np.int64)
            hit = np.zeros(np.broadcast(a, b).shape, dtype=bool)
            for leaf, k in fl.ecmp_uplinks:
                hit |= (la != lb) & (plane == k) & ((la == leaf) | (lb == leaf))
            f = f * np.where(hit, fl.bad_uplink_bw_factor, 1.0)
        if self.dip_keys.size:
            key = np.minimum(a, b).astype(np.int64) * self.n + np.maximum(a, b)
            f = f * np.where(np.isin(key, self.dip_keys), fl.dip_factor, 1.0)
        return f

    def is_noisy(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if self.noisy_keys.size == 0:
            return np.zeros(np.broadcast(a, b).shape, dtype=bool)
        key = np.minimum(a, b).astype(np.int64) * self.n + np.maximum(a, b)
        return np.isin(key, self.noisy_keys)


def _write_pairs(
    g: h5py.Group, n: int, spec: PairsSpec, model: FabricModel, faults: Faults, topo: SynthTopology | None,
    rng: np.random.Generator, label: str, seed: int, fabric_seed: int,
) -> None:
    m_even = n + (n % 2)
    rounds_total = max(0, m_even - 1) if n >= 2 else 0
    done = rounds_total if spec.rounds_done is None else spec.rounds_done
    _common_attrs(g, "pairs", spec.name, spec.lat_iters, spec.warmup, label)
    g.attrs["complete"] = np.int8(1 if done == rounds_total else 0)
    if done < rounds_total:
        g.attrs["finished_utc"] = ""
        del g.attrs["wall_seconds"]
    for key in ("lat_size_bytes", "bw_size_bytes", "lat_iters", "bw_windows"):
        g.attrs[key] = np.int64(getattr(spec, key))
    g.attrs["window"] = np.int64(WINDOW)
    g.attrs["schedule"] = "circle"
    g.attrs["rounds_total"] = np.int64(rounds_total)
    g.attrs["rounds_done"] = np.int64(done)
    pm = _PairModel(n, model, faults, topo, fabric_seed, spec)
    failed = {frozenset(p) for p in spec.failed_pairs}
    timed_out = {frozenset(p) for p in spec.timeout_pairs}
    bad_keys = {min(p) * n + max(p): STATUS_FAILED for p in map(tuple, failed)}
    bad_keys.update({min(p) * n + max(p): STATUS_TIMEOUT for p in map(tuple, timed_out)})

    # Which pairs get raw samples: all, or (large fabrics) a subset.
    all_samples = n <= spec.samples_all_max
    if all_samples:
        a, b = np.triu_indices(n, k=1)
    else:
        picks = [np.array([min(p) * n + max(p) for p in map(tuple, faults.noisy_pairs)], dtype=np.int64),
                 np.array(sorted(bad_keys), dtype=np.int64)]
        for h in (*model.slow_hosts, *faults.bad_cables):
            peers = rng.choice(n - 1, size=min(n - 1, 64), replace=False)
            peers = np.where(peers >= h, peers + 1, peers)
            picks.append(np.minimum(h, peers) * n + np.maximum(h, peers))
        ra, rb = rng.integers(0, n, spec.sample_subset), rng.integers(0, n, spec.sample_subset)
        keep = ra != rb
        picks.append(np.minimum(ra, rb)[keep] * n + np.maximum(ra, rb)[keep])
        keys = np.unique(np.concatenate(picks))
        a, b = keys // n, keys % n
    rr = circle_round(n, a, b) if n >= 2 else np.empty(0, np.int64)
    measured = rr < done
    a, b, rr = a[measured], b[measured], rr[measured]
    order = np.lexsort((b, a, rr))
    a, b, rr = a[order], b[order], rr[order]
    p = int(a.size)
    keys = a.astype(np.int64) * n + b
    codes = np.array([bad_keys.get(int(k), STATUS_OK) for k in keys], dtype=np.int8) if bad_keys else \
        np.full(p, STATUS_OK, dtype=np.int8)
    ok = codes == STATUS_OK

    lat_x = _latency_samples(rng, model, [spec.lat_size_bytes] * p, spec.lat_iters, pm.lat_factor(a, b))
    fwd = _bw_samples(rng, model, [spec.bw_size_bytes] * p, spec.bw_windows, pm.bw_factor(a, b))
    rev = _bw_samples(rng, model, [spec.bw_size_bytes] * p, spec.bw_windows, pm.bw_factor(b, a))
    noisy = pm.is_noisy(a, b)
    if noisy.any():
        for x in (fwd, rev):
            hit = rng.random((int(noisy.sum()), spec.bw_windows)) < 0.5
            x[noisy] *= np.where(hit, rng.uniform(0.3, 0.85, hit.shape), 1.0)
        spikes = rng.random((int(noisy.sum()), spec.lat_iters)) < 0.3
        lat_x[noisy] *= np.where(spikes, rng.uniform(1.5, 4.0, spikes.shape), 1.0)
    stall_rate = np.where(np.isin(a, faults.lossy_hosts) | np.isin(b, faults.lossy_hosts),
                          faults.lossy_stall_rate, faults.background_stall_rate)
    if stall_rate.any():  # (no draws otherwise: fabrics without stalls stay as they were)
        for x in (fwd, rev):
            hit = rng.random(x.shape) < stall_rate[:, None]
            x *= np.where(hit, rng.uniform(0.1, 0.2, x.shape), 1.0)
    for x in (lat_x, fwd, rev):
        x[~ok] = np.nan
    if spec.layout == "rows":
        if not all_samples:
            raise ValueError(f"layout rows: at most samples_all_max ({spec.samples_all_max}) hosts")
        _write_pair_rows(g, n, spec, a, b, rr, codes, lat_x, fwd, rev, sorted(bad_keys.items()))
        rs = np.full(rounds_total, np.nan)
        rs[:done] = 0.01 + 0.001 * np.arange(done)
        _quantity(g, "round_seconds", rs, "s")
        if spec.counters:
            _write_counters(g.create_group("counters"), n, faults, rng)
        return

    # Matrices, by row blocks: drawn from each statistic's distribution, except the cells of the
    # sampled pairs, which get the exact statistics of their samples.
    names = ("latency_ns_min", "latency_ns_p50", "latency_ns_p99", "bw_gbps")
    exact: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    if p and ok.any():
        sa, sb = a[ok], b[ok]
        lat_stats = summary_stats(lat_x[ok])
        for k in ("min", "p50", "p99"):
            exact[f"latency_ns_{k}"] = (np.concatenate([sa, sb]), np.concatenate([sb, sa]),
                                        np.concatenate([lat_stats[k], lat_stats[k]]))
        exact["bw_gbps"] = (np.concatenate([sa, sb]), np.concatenate([sb, sa]),
                            np.concatenate([np.median(fwd[ok], axis=1), np.median(rev[ok], axis=1)]))
        for k, (r, c, v) in exact.items():
            o = np.argsort(r, kind="stable")
            exact[k] = (r[o], c[o], v[o])
    ds: dict[str, h5py.Dataset] = {}
    for k in names:
        ds[k] = g.create_dataset(k, shape=(n, n), dtype=np.float64)
        ds[k].attrs["units"] = "ns" if k.startswith("lat") else "Gb/s"
    st_ds = g.create_dataset("status", shape=(n, n), dtype=np.int8)
    st_ds.attrs["status_names"] = STATUS_NAMES
    round_ds = g.create_dataset("round", shape=(n, n), dtype=np.int32)
    sig_lat = model.noise * 1.2533 / np.sqrt(max(1, spec.lat_iters))
    sig_bw = model.noise * 1.2533 / np.sqrt(max(1, spec.bw_windows))
    cols = np.arange(n)
    step = max(1, 2_000_000 // max(1, n))
    bad_items = sorted(bad_keys.items())
    for r0 in range(0, n, step):
        r1 = min(n, r0 + step)
        rows = np.arange(r0, r1)
        A, B = rows[:, None], cols[None, :]
        lo, hi = np.minimum(A, B).astype(np.int64), np.maximum(A, B).astype(np.int64)
        sym_key = lo * n + hi
        rnd = circle_round(n, A, B) if n >= 2 else np.zeros((r1 - r0, n), np.int64)
        run_mask = (rnd < done) & (A != B)
        status = np.where(run_mask, STATUS_OK, STATUS_NOT_RUN).astype(np.int8)
        for key, code in bad_items:
            i, j = divmod(key, n)
            for x, y in ((i, j), (j, i)):
                if r0 <= x < r1:
                    status[x - r0, y] = code
        good = status == STATUS_OK
        z = _normal(sym_key, seed * 4 + 1)
        p50 = pm.lat_base * pm.lat_factor(lo, hi) * np.exp(sig_lat * z)
        u = _hash01(sym_key, seed * 4 + 2)
        lat_min = p50 * (0.90 + 0.05 * u)
        lat_p99 = p50 * (1.25 + 0.5 * u)
        bw = pm.bw_base * pm.bw_factor(A, B) * np.exp(sig_bw * _normal(A.astype(np.int64) * n + B, seed * 4 + 3))
        for k, v in (("latency_ns_min", lat_min), ("latency_ns_p50", p50), ("latency_ns_p99", lat_p99),
                     ("bw_gbps", bw)):
            v = np.where(good, v, np.nan)
            if k in exact:
                er, ec, ev = exact[k]
                lo_i, hi_i = np.searchsorted(er, [r0, r1])
                v[er[lo_i:hi_i] - r0, ec[lo_i:hi_i]] = ev[lo_i:hi_i]
            ds[k][r0:r1] = v
        st_ds[r0:r1] = status
        round_ds[r0:r1] = np.where(run_mask, rnd, -1).astype(np.int32)

    rs = np.full(rounds_total, np.nan)
    rs[:done] = 0.01 + 0.001 * np.arange(done)
    _quantity(g, "round_seconds", rs, "s")

    ps = g.create_group("pair_samples")

    def rows_ds(name: str, data: np.ndarray, units: str | None) -> None:
        """A dataset that grows by rows, as fabscope writes pair_samples."""
        maxshape = (None, *data.shape[1:])
        chunks = (max(1, min(p, 64)), *(max(1, d) for d in data.shape[1:]))
        d = ps.create_dataset(name, data=data, maxshape=maxshape, chunks=chunks, compression="gzip")
        if units:
            d.attrs["units"] = units

    rows_ds("pair", np.stack([a, b], axis=1).astype(np.int32).reshape(p, 2), None)
    rows_ds("round", rr.astype(np.int32), None)
    rows_ds("latency_ns", lat_x.reshape(p, spec.lat_iters), "ns")
    rows_ds("bw_gbps_fwd", fwd.reshape(p, spec.bw_windows), "Gb/s")
    rows_ds("bw_gbps_rev", rev.reshape(p, spec.bw_windows), "Gb/s")

    if bad_items:
        eg = g.create_group("errors")
        ep = np.array([divmod(k, n) for k, _ in bad_items], dtype=np.int32).reshape(-1, 2)
        eg.create_dataset("pair", data=ep)
        eg.create_dataset("round", data=circle_round(n, ep[:, 0], ep[:, 1]).astype(np.int32))
        eg.create_dataset("status", data=np.array([c for _, c in bad_items], dtype=np.int8))
        _strings(eg, "message", [f"rank {i} with rank {j}: {'timed out' if c == STATUS_TIMEOUT else 'IBV_WC_RETRY_EXC_ERR'}"
                                 for (i, j), (_, c) in zip(ep.tolist(), bad_items)])
    if spec.counters:
        _write_counters(g.create_group("counters"), n, faults, rng)


# --- schema version 2: the pairs row table (results/SCHEMA.md), as ResultsWriter::append_pairs
# writes it; the encodings mirror bench/io/pair_rows.cpp.
def encode_latency(lat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(min, p50, p99, codes [R, 11]) of latency samples [R, iters]; NaN rows: NaN and code 0."""
    r = lat.shape[0]
    codes = np.zeros((r, 11), dtype=np.uint8)
    mn, p50, p99 = (np.full(r, np.nan) for _ in range(3))
    have = np.isfinite(lat).any(axis=1)
    if have.any():
        x = lat[have]
        mn[have] = np.nanmin(x, axis=1)
        p50[have] = np.nanpercentile(x, 50, axis=1)
        p99[have] = np.nanpercentile(x, 99, axis=1)
        q = np.nanpercentile(x, np.arange(0, 101, 10), axis=1).T
        c = np.rint(32 * np.log2(q / p50[have][:, None])) + 128
        codes[have] = np.clip(c, 1, 255).astype(np.uint8)
    return mn, p50, p99, codes


def encode_windows(bw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(p50, best, codes [R, min(W, 32)]) of bandwidth windows [R, W], best first."""
    r, w = bw.shape
    k = min(w, 32)
    codes = np.zeros((r, k), dtype=np.uint8)
    p50, best = np.full(r, np.nan), np.full(r, np.nan)
    have = np.isfinite(bw).all(axis=1)
    if have.any():
        x = np.sort(bw[have], axis=1)[:, ::-1]
        p50[have] = np.median(x, axis=1)
        best[have] = x[:, 0]
        if w > k:
            pct = 100.0 - 100.0 * (np.arange(k) * (w - 1) / (k - 1)) / (w - 1)
            x = np.percentile(x, pct, axis=1).T
        codes[have] = np.clip(np.rint(255.0 * x / best[have][:, None]), 1, 255).astype(np.uint8)
    return p50, best, codes


def _rows_dataset(g: h5py.Group, name: str, data: np.ndarray, units: str | None = None) -> h5py.Dataset:
    maxshape = (None, *data.shape[1:])
    chunks = (1024, *(max(1, d) for d in data.shape[1:]))
    d = g.create_dataset(name, data=data, maxshape=maxshape, chunks=chunks, compression="gzip", shuffle=True)
    if units:
        d.attrs["units"] = units
    return d


def _write_pair_rows(g: h5py.Group, n: int, spec: "PairsSpec", a: np.ndarray, b: np.ndarray, rr: np.ndarray,
                     status: np.ndarray, lat_x: np.ndarray, fwd: np.ndarray, rev: np.ndarray,
                     bad_items: list[tuple[int, int]]) -> None:
    p = int(a.size)
    mn, p50, p99, lat_q = encode_latency(lat_x.reshape(p, spec.lat_iters))
    f50, fbest, fq = encode_windows(fwd.reshape(p, spec.bw_windows))
    r50, rbest, rq = encode_windows(rev.reshape(p, spec.bw_windows))
    g.attrs["layout"] = "rows"
    g.attrs["keep_samples"] = spec.keep_samples
    g.attrs["lat_quantiles"] = np.int64(11)
    g.attrs["bw_codes"] = np.int64(fq.shape[1])
    g.attrs["repeats"] = np.int64(1)
    rows = g.create_group("pairs")
    _rows_dataset(rows, "pair", np.stack([a, b], axis=1).astype(np.int32).reshape(p, 2))
    _rows_dataset(rows, "round", rr.astype(np.int32))
    _rows_dataset(rows, "repeat", np.zeros(p, np.int32))
    _rows_dataset(rows, "status", status.astype(np.int8)).attrs["status_names"] = STATUS_NAMES
    for name, v, u in (("latency_ns_min", mn, "ns"), ("latency_ns_p50", p50, "ns"), ("latency_ns_p99", p99, "ns"),
                       ("bw_gbps_fwd", f50, "Gb/s"), ("bw_gbps_rev", r50, "Gb/s"), ("bw_gbps_fwd_best", fbest, "Gb/s"),
                       ("bw_gbps_rev_best", rbest, "Gb/s")):
        _rows_dataset(rows, name, v.astype(np.float32), u)
    _rows_dataset(rows, "latency_q", lat_q)
    _rows_dataset(rows, "bw_fwd_q", fq)
    _rows_dataset(rows, "bw_rev_q", rq)
    if spec.keep_samples == "all":
        keep = np.ones(p, dtype=bool)
    elif spec.keep_samples == "none":
        keep = np.zeros(p, dtype=bool)
    else:  # suspect, as io::mark_suspects (over the whole run here, not per round)
        stalled = (np.nan_to_num(fwd) < 0.25 * np.nan_to_num(fbest)[:, None]).any(axis=1) | \
                  (np.nan_to_num(rev) < 0.25 * np.nan_to_num(rbest)[:, None]).any(axis=1)
        with np.errstate(invalid="ignore"):
            lat_med, bw_med = np.nanmedian(p50), np.nanmedian(np.concatenate([f50, r50]))
            keep = (status != STATUS_OK) | stalled | (p50 > 2 * lat_med) | (f50 < 0.75 * bw_med) | (r50 < 0.75 * bw_med)
    ps = g.create_group("pair_samples")
    k = np.flatnonzero(keep)
    _rows_dataset(ps, "pair", np.stack([a[k], b[k]], axis=1).astype(np.int32).reshape(-1, 2))
    _rows_dataset(ps, "round", rr[k].astype(np.int32))
    _rows_dataset(ps, "repeat", np.zeros(k.size, np.int32))
    _rows_dataset(ps, "row", k.astype(np.int64))
    _rows_dataset(ps, "latency_ns", lat_x.reshape(p, spec.lat_iters)[k], "ns")
    _rows_dataset(ps, "bw_gbps_fwd", fwd.reshape(p, spec.bw_windows)[k], "Gb/s")
    _rows_dataset(ps, "bw_gbps_rev", rev.reshape(p, spec.bw_windows)[k], "Gb/s")
    eg = g.create_group("errors")
    ep = np.array([divmod(key, n) for key, _ in bad_items], dtype=np.int32).reshape(-1, 2)
    _rows_dataset(eg, "pair", ep)
    _rows_dataset(eg, "round", circle_round(n, ep[:, 0], ep[:, 1]).astype(np.int32) if n >= 2
                  else np.empty(0, np.int32))
    _rows_dataset(eg, "repeat", np.zeros(len(bad_items), np.int32))
    _rows_dataset(eg, "status", np.array([c for _, c in bad_items], dtype=np.int8))
    eg.create_dataset("message", data=[f"rank {i} with rank {j}: {'timed out' if c == STATUS_TIMEOUT else 'IBV_WC_RETRY_EXC_ERR'}"
                                       for (i, j), (_, c) in zip(ep.tolist(), bad_items)],
                      dtype=h5py.string_dtype(), maxshape=(None,), chunks=(256,))
    g.attrs["rows_done"] = np.int64(p)
    g.attrs["samples_done"] = np.int64(k.size)
    g.attrs["errors_done"] = np.int64(len(bad_items))


COUNTER_NAMES = ("port_xmit_data", "port_rcv_data", "symbol_error", "port_rcv_errors", "link_downed",
                 "port_xmit_wait")


def _write_counters(g: h5py.Group, n: int, faults: Faults, rng: np.random.Generator) -> None:
    delta = np.zeros((n, len(COUNTER_NAMES)), dtype=np.int64)
    delta[:, 0] = rng.integers(10**9, 2 * 10**9, n)
    delta[:, 1] = rng.integers(10**9, 2 * 10**9, n)
    delta[:, 5] = rng.integers(0, 1000, n)
    for h in faults.bad_cables:
        delta[h, 2] = 12345
        delta[h, 3] = 678
        delta[h, 4] = 1
    if n > 3:
        delta[3, 5] = -1  # a counter this host does not have
    _strings(g, "names", COUNTER_NAMES)
    g.create_dataset("delta", data=delta)


# --- collectives ---------------------------------------------------------------------------------

_BUS_FACTOR = {"allreduce": lambda n: 2 * (n - 1) / n, "allgather": lambda n: (n - 1) / n,
               "reduce_scatter": lambda n: (n - 1) / n, "alltoall": lambda n: (n - 1) / n, "bcast": lambda n: 1.0}


def _write_coll(g: h5py.Group, n: int, spec: CollSpec, model: FabricModel, rng: np.random.Generator,
                label: str) -> None:
    _common_attrs(g, "coll", spec.name, spec.iters, spec.warmup, label)
    for key, value in (("dtype", "float"), ("reduction", "sum"), ("node_by", "rank")):
        g.attrs[key] = value
    g.attrs["ranks_per_node"] = np.int64(1)
    g.attrs["n_nodes"] = np.int64(n)
    g.attrs["nonblocking"] = np.int64(0)
    g.attrs["check"] = np.int64(1 if spec.check else 0)
    counts = []
    k = 2
    while k < n:
        counts.append(k)
        k *= 2
    counts.append(n)
    counts_a = np.array(counts, dtype=np.int64)
    G = len(counts)
    _quantity(g, "node_counts", counts_a, "nodes")
    _quantity(g, "group_size_ranks", counts_a.copy(), "ranks")
    members = np.full((G, n), -1, dtype=np.int64)
    for i, c in enumerate(counts):
        members[i, :c] = np.arange(c)
    g.create_dataset("group_ranks", data=members)
    g.create_dataset("node_of_rank", data=np.arange(n, dtype=np.int64))
    for op in spec.ops:
        og = g.create_group(op)
        sizes = np.array([0] if op == "barrier" else spec.sizes, dtype=np.int64)
        S = sizes.size
        _quantity(og, "size_bytes", sizes, "bytes")
        _quantity(og, "bytes", np.tile(sizes, (G, 1)), "bytes")
        t = np.empty((G, S, spec.iters))
        for gi, c in enumerate(counts):
            steps = np.log2(c) if op != "alltoall" else c - 1
            slow = 3.0 if spec.slow_from_nodes is not None and c >= spec.slow_from_nodes else 1.0
            base = model.base_latency_ns * steps + sizes * 8.0 / model.peak_gbps * (2.0 if op == "allreduce" else 1.0)
            t[gi] = (base * slow)[:, None] * _noise(rng, model.noise, (S, spec.iters))
        _quantity(og.create_group("samples"), "time_ns", t, "ns")
        summ = og.create_group("summary")
        flat = summary_stats(t.reshape(G * S, spec.iters))
        for stat, values in flat.items():
            _quantity(summ, f"time_ns_{stat}", values.reshape(G, S), "ns")
        if op != "barrier":
            algbw = sizes[None, :] * 8.0 / flat["p50"].reshape(G, S)
            busbw = algbw * np.array([_BUS_FACTOR[op](c) for c in counts])[:, None]
            _quantity(summ, "algbw_gbps", algbw, "Gb/s")
            _quantity(summ, "busbw_gbps", busbw, "Gb/s")
            _quantity(summ, "scaling_efficiency", busbw / busbw[0:1], "1")
        status = np.ones((G, S), dtype=np.int64)
        errors = np.zeros((G, S), dtype=np.int64)
        for fop, gi, si in spec.check_failures:
            if fop == op:
                status[gi, si] = 2
                errors[gi, si] = 17
        ds = og.create_dataset("status", data=status)
        ds.attrs["status_names"] = "not_run,ok,failed"
        if spec.check:
            _quantity(og, "check_errors", errors, "elements")


# --- runs under load (results/SCHEMA.md) -------------------------------------------------------


def shift_partners(n: int, pattern: str, steps: int, seed: int) -> np.ndarray:
    """partner_to [steps, N]: shift: step s sends to (i + s + 1) mod N; permutation: a fresh
    random derangement per step (one cycle through a seeded random order)."""
    return _partner_rows(n, pattern, 0, steps, np.random.default_rng(seed))


def _partner_rows(n: int, pattern: str, s0: int, s1: int, rng: np.random.Generator) -> np.ndarray:
    """Rows s0..s1 of partner_to; permutations draw from `rng` in step order."""
    out = np.empty((s1 - s0, n), dtype=np.int32)
    for k, s in enumerate(range(s0, s1)):
        if pattern == "shift":
            out[k] = (np.arange(n) + s + 1) % n
        else:
            order = rng.permutation(n)
            out[k, order] = np.roll(order, -1)
    return out


def _write_shift(g: h5py.Group, n: int, spec: ShiftSpec, model: FabricModel, faults: Faults,
                 topo: SynthTopology | None, label: str, fabric_seed: int, noise_seed: int = 0) -> None:
    """Step block by step block (about 4M flows at a time), so a full 10,000-rank shift takes
    a few GB of disk but little memory."""
    total = spec.steps if spec.steps is not None else max(0, n - 1)
    done = total if spec.steps_done is None else spec.steps_done
    rows = total if spec.rows_written == "total" else done
    _common_attrs(g, "shift", spec.name, spec.iters, spec.warmup, label)
    g.attrs["complete"] = np.int8(1 if done == total else 0)
    if done < total:
        g.attrs["finished_utc"] = ""
        del g.attrs["wall_seconds"]
    g.attrs["pattern"] = spec.pattern
    for key, value in (("size_bytes", spec.size_bytes), ("window", WINDOW), ("seed", spec.seed),
                       ("steps_total", total), ("steps_done", done)):
        g.attrs[key] = np.int64(value)
    rate = float("nan") if spec.link_rate_gbps is None else float(spec.link_rate_gbps)
    g.attrs["link_rate_gbps"] = np.float64(rate)
    pm = _PairModel(n, model, faults, topo, fabric_seed, PairsSpec(bw_size_bytes=spec.size_bytes))
    partner_rng = np.random.default_rng(spec.seed)
    rng = np.random.default_rng([spec.seed, noise_seed])
    ds_partner = g.create_dataset("partner_to", shape=(rows, n), dtype=np.int32)
    ds_partner.attrs["units"] = "-"
    ds_flow = g.create_dataset("flow_gbps", shape=(rows, n), dtype=np.float64)
    ds_flow.attrs["units"] = "Gb/s"
    ds_samples = None
    if spec.flow_samples:
        ds_samples = g.create_dataset("flow_samples", shape=(rows, n, spec.iters), dtype=np.float64,
                                      chunks=(1, n, max(1, spec.iters)) if rows and n else None,
                                      compression="gzip" if rows and n else None)
        ds_samples.attrs["units"] = "Gb/s"
    bw = np.full((n, n), np.nan, dtype=np.float32)
    agg = np.full(rows, np.nan)
    secs = np.full(rows, np.nan)
    slow_steps, collisions = dict(spec.slow_steps), set(spec.collisions)
    failed = set(spec.failed_flows)
    block = max(1, 4_000_000 // max(1, n * max(1, spec.iters)))
    src_all = np.arange(n)
    error_rows: list[tuple[int, int, int]] = []
    for s0 in range(0, rows, block):
        s1 = min(rows, s0 + block)
        partners = _partner_rows(n, spec.pattern, s0, s1, partner_rng)
        src = np.broadcast_to(src_all, partners.shape)
        flow = pm.bw_base * pm.bw_factor(src, partners) * spec.load_fraction
        if topo is not None:
            flow = flow * np.where(topo.leaf(src) != topo.leaf(partners), spec.cross_leaf_factor, 1.0)
        for step in range(s0, s1):
            if step in slow_steps:
                flow[step - s0] *= slow_steps[step]
        for step, rank in collisions:
            if s0 <= step < s1:
                flow[step - s0, rank] *= spec.collision_factor
        samples = flow[:, :, None] * _noise(rng, model.noise, (s1 - s0, n, spec.iters))
        for step, rank in failed:
            if s0 <= step < s1 and step < done:
                samples[step - s0, rank] = np.nan
                error_rows.append((step, rank, int(partners[step - s0, rank])))
        with np.errstate(invalid="ignore"):
            flow = np.median(samples, axis=2)
        measured = np.arange(s0, s1) < done
        flow[~measured] = np.nan
        samples[~measured] = np.nan
        partners[~measured] = -1
        ds_partner[s0:s1] = partners
        ds_flow[s0:s1] = flow
        if ds_samples is not None:
            ds_samples[s0:s1] = samples
        ok = partners >= 0
        bw[src[ok], partners[ok]] = flow[ok]
        if measured.any():
            m = np.flatnonzero(measured)
            agg[s0 + m] = np.nansum(flow[m], axis=1)
            secs[s0 + m] = (spec.iters + spec.warmup) * WINDOW * spec.size_bytes * 8 / (np.nanmin(flow[m], axis=1) * 1e9)
    ds_bw = g.create_dataset("bw_gbps", shape=(n, n), dtype=np.float64)
    ds_bw.attrs["units"] = "Gb/s"
    step = max(1, 4_000_000 // max(1, n))
    for r0 in range(0, n, step):
        ds_bw[r0:r0 + step] = bw[r0:r0 + step].astype(np.float64)
    del bw
    _quantity(g, "step_aggregate_gbps", agg, "Gb/s")
    _quantity(g, "step_effective_pct", 100.0 * agg / (n * rate), "%")
    _quantity(g, "step_seconds", secs, "s")
    if error_rows:  # as fabscope writes them: status 2 failed, 3 timeout (the pairs codes)
        eg = g.create_group("errors")
        error_rows.sort()
        for k, name in enumerate(("step", "rank", "peer")):
            eg.create_dataset(name, data=np.array([e[k] for e in error_rows], dtype=np.int64)).attrs["units"] = "-"
        eg.create_dataset("status", data=np.full(len(error_rows), 2, dtype=np.int64)).attrs["units"] = "-"
        _strings(eg, "message", [f"rank {r} -> rank {peer}: IBV_WC_RETRY_EXC_ERR, {HOSTILE}" for _, r, peer in error_rows])
    if spec.counters:
        _write_counters(g.create_group("counters"), n, faults, rng)


def congestion_victims(n: int, spec: CongestionSpec, topo: SynthTopology | None) -> np.ndarray:
    """The victims in ring order, as the placement chooses them (seeded)."""
    rng = np.random.default_rng(spec.seed)
    candidates = np.array([r for r in range(n) if r not in spec.idle_ranks], dtype=np.int64)
    v = min(candidates.size, max(2, int(round(spec.victim_fraction * n)))) if candidates.size >= 2 else 0
    if spec.placement == "leaf":
        chosen = candidates[:v]
    elif spec.placement == "spread":
        chosen = candidates[np.linspace(0, candidates.size - 1, v).round().astype(int)] if v else candidates[:0]
    else:
        chosen = np.sort(rng.choice(candidates, v, replace=False)) if v else candidates[:0]
    return rng.permutation(chosen).astype(np.int32)


def _write_congestion(g: h5py.Group, n: int, spec: CongestionSpec, model: FabricModel, topo: SynthTopology | None,
                      label: str, noise_seed: int = 0) -> None:
    victims = congestion_victims(n, spec, topo)
    partners = np.roll(victims, -1)
    role = np.full(n, 2, dtype=np.int8)
    role[list(spec.idle_ranks)] = 0
    role[victims] = 1
    # as fabscope: every phase laid out from the start, NaN until measured; phases_done counts the
    # phases measured, the isolated one included
    done = len(spec.patterns) if spec.phases_done is None else spec.phases_done
    phases = ("isolated", *spec.patterns)
    p, v, q = len(phases), victims.size, len(phases) - 1
    phases_done = done + 1
    _common_attrs(g, "congestion", spec.name, spec.iters, spec.warmup, label)
    g.attrs["complete"] = np.int8(1 if done == len(spec.patterns) else 0)
    if done < len(spec.patterns):
        g.attrs["finished_utc"] = ""
        del g.attrs["wall_seconds"]
    g.attrs["victim_fraction"] = np.float64(spec.victim_fraction)
    g.attrs["placement"] = spec.placement
    g.attrs["patterns"] = ",".join(spec.patterns)
    for key in ("seed", "aggressor_size_bytes", "lat_size_bytes", "bw_size_bytes", "bw_iters"):
        g.attrs[key] = np.int64(getattr(spec, key))
    g.attrs["window"] = np.int64(WINDOW)
    g.attrs["phases_total"] = np.int64(p)
    g.attrs["phases_done"] = np.int64(phases_done)
    aggressors = np.flatnonzero(role == 2)
    g.attrs["incast_target"] = np.int64(aggressors[0] if aggressors.size else -1)
    g.create_dataset("role", data=role).attrs["units"] = "-"
    g.create_dataset("victims", data=victims).attrs["units"] = "-"
    _strings(g, "phases", phases)
    g["phases"].attrs["units"] = "-"
    rng = np.random.default_rng([spec.seed, noise_seed, 3])
    cross = np.zeros(v, dtype=bool)
    hops = np.zeros(v)
    if topo is not None and v:
        cross = topo.leaf(victims) != topo.leaf(partners)
        hops = np.where(cross, np.where(topo.pod(victims) == topo.pod(partners), 1.0, 2.0), 0.0)
    lat_base = model.latency_ns(spec.lat_size_bytes) + hops * model.hop_latency_ns  # [V]
    bw_base = np.full(v, model.bw_gbps(spec.bw_size_bytes))
    factor = np.ones((p, v))
    pattern_factor, cross_factor = dict(spec.pattern_factor), dict(spec.cross_leaf_factor)
    for k, name in enumerate(phases[1:], start=1):
        factor[k] = pattern_factor.get(name, 1.1) * np.where(cross, cross_factor.get(name, 1.0), 1.0)
        for rank, pattern, f in spec.hot_victims:
            if pattern == name:
                factor[k, victims == rank] *= f
    # no tail events: a p99 over a few hundred iterations must be stable for the tests
    lat = lat_base[None, :, None] * factor[:, :, None] * _noise(rng, model.noise, (p, v, spec.iters))
    bw = bw_base[None, :, None] / factor[:, :, None] * _noise(rng, model.noise, (p, v, spec.bw_iters))
    ar_factor = np.array([1.0] + [spec.allreduce_factor] * q)
    allreduce = (4 * model.latency_ns(8)) * ar_factor[:, None] * _noise(rng, model.noise, (p, spec.iters))
    for x in (lat, bw, allreduce):
        x[phases_done:] = np.nan
    _quantity(g, "latency_ns", lat, "ns", compression="gzip")
    _quantity(g, "bw_gbps", bw, "Gb/s", compression="gzip")
    _quantity(g, "allreduce_ns", allreduce, "ns")
    with np.errstate(invalid="ignore", divide="ignore"):
        lat50, lat99 = np.percentile(lat, 50, axis=2), np.percentile(lat, 99, axis=2)
        bw50 = np.median(bw, axis=2)
        ar50, ar99 = np.percentile(allreduce, 50, axis=1), np.percentile(allreduce, 99, axis=1)
        _quantity(g, "impact_latency_p50", (lat50[1:] / lat50[:1]).reshape(q, v), "-")
        _quantity(g, "impact_latency_p99", (lat99[1:] / lat99[:1]).reshape(q, v), "-")
        _quantity(g, "impact_bw_p50", (bw50[:1] / bw50[1:]).reshape(q, v), "-")
        _quantity(g, "impact_allreduce_p50", ar50[1:] / ar50[0], "-")
        _quantity(g, "impact_allreduce_p99", ar99[1:] / ar99[0], "-")
    aggr = np.where(role[None, :] == 2, model.bw_gbps(spec.aggressor_size_bytes) * 0.5
                    * _noise(rng, model.noise, (q, n)), np.nan)
    aggr[done:] = np.nan
    _quantity(g, "aggressor_gbps", aggr, "Gb/s")
    if spec.counters:
        cg = g.create_group("counters")
        names = ("counters/port_xmit_wait", "hw_counters/np_cnp_sent", "hw_counters/rp_cnp_handled",
                 "hw_counters/out_of_sequence")
        for k, phase in enumerate(phases[1:phases_done], start=1):  # loaded phases only, as fabscope
            pg = cg.create_group(phase)
            _strings(pg, "names", names)
            delta = rng.integers(0, 100, (n, len(names))) * (1 + 50 * k * (role[:, None] == 2))
            pg.create_dataset("delta", data=delta.astype(np.int64))


def write_hostile_run(path: str | Path) -> Path:
    """A 4-host file whose free text (host names, CPU, devices, label, run name, command line,
    suite) carries markup, quotes, `&` and mathtext, for escaping tests. HOSTILE occurs 7+ times."""
    hosts = HostSpec(
        hostnames=[HOSTILE, "a&b", 'q"uote\'s', "$x^2$ \\b"],
        cpu_model=f"cpu {HOSTILE}",
        rdma_devices=f"mlx5_0 {HOSTILE}; mlx5_1 & <i>x</i>",
    )
    path = write_synthetic_run(path, 4, hosts=hosts, label=f"{HOSTILE} & <b>bold</b>",
                               command_line=f"fabscope run {HOSTILE} --label '&'")
    with h5py.File(path, "r+") as f:
        f["runs/00_lat"].attrs["name"] = f"lat{HOSTILE}"
        f.attrs["suite_text"] = f"name: {HOSTILE}\n"
    return path


def _pair(text: str) -> tuple[int, int]:
    a, b = text.split(":")
    return int(a), int(b)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a synthetic fabscope result file (results/SCHEMA.md v1).")
    parser.add_argument("out", type=Path, help="the .h5 file to write")
    parser.add_argument("--hosts", type=int, required=True, help="number of ranks / hosts")
    parser.add_argument("--slow-host", type=int, action="append", default=[], help="rank of a slow host")
    parser.add_argument("--bad-cable", type=int, action="append", default=[], help="rank whose link is degraded")
    parser.add_argument("--bad-uplink", type=_pair, action="append", default=[], metavar="LEAF:PLANE",
                        help="leaf-spine cable with degraded bandwidth (needs --topology)")
    parser.add_argument("--noisy-pair", type=_pair, action="append", default=[], metavar="A:B")
    parser.add_argument("--topology", action="store_true", help="write a synthetic /topology")
    parser.add_argument("--hosts-per-leaf", type=int, default=32)
    parser.add_argument("--no-sweeps", action="store_true", help="pairs run only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds-done", type=int, default=None, help="stop the pairs run after this many rounds")
    args = parser.parse_args(argv)
    topo = SynthTopology(hosts_per_leaf=args.hosts_per_leaf, leaves_per_pod=16, spines_per_pod=8) \
        if args.topology else None
    write_synthetic_run(
        args.out,
        args.hosts,
        args.seed,
        faults=Faults(slow_hosts=tuple(args.slow_host), bad_cables=tuple(args.bad_cable),
                      bad_uplinks=tuple(args.bad_uplink), noisy_pairs=tuple(args.noisy_pair)),
        topology=topo,
        sweeps=() if args.no_sweeps else DEFAULT_SWEEPS,
        pairs=PairsSpec(rounds_done=args.rounds_done, lat_iters=20 if args.hosts > 600 else 100),
        complete=args.rounds_done is None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
