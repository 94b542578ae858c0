"""Where each rank sits in the fabric: display order, hop classes, leaf groups, link rates, routes.

This is the only module that interprets `/topology`; everything else asks a `Layout`. Without a
/topology group the fabric is flat: ranks keep their order, and a pair is `same_host` (the two
ranks share a host name) or `unknown` (one hop class for everything else).

The /topology layout read here (topology/tables.hpp writes it: one group per table, one 1-D
dataset per column, row i = index i; index columns refer to rows of other tables, -1 = none):

    /topology/ranks/host     int [N]   row of /topology/hosts of rank i
    /topology/ranks/nic      int [N]   row of /topology/nics of rank i (-1: the host's first NIC)
    /topology/hosts/name     str [H]   used to match /hosts/hostname when there is no ranks table
    /topology/hosts/leaf     int [H]   row of /topology/switches (the leaf of the host's first NIC)
    /topology/hosts/pod      int [H]   pod index (leaves and spines linked to each other)
    /topology/hosts/topo_order int [H] display position (hosts of a leaf together, leaves in order)
    /topology/nics/leaf      int [M]   the leaf the NIC is cabled to (preferred over hosts/leaf)
    /topology/nics/rate_gbps float [M] nominal port rate (Gb/s), 0 = unknown
    /topology/switches/name  str [W]; /topology/switches/level int [W] (1 leaf, 2 spine, ...);
    /topology/switches/pod   int [W]
    /topology/ranks/dest_plane int [N] (analysis assumption, optional): routes are destination
        based (D-mod-K, as OpenSM's ftree and most Clos fabrics): traffic *to* rank i leaves the
        source leaf through spine number dest_plane[i] of the source pod (spines of a pod sorted
        by switch row) and reaches i's leaf through spine dest_plane[i] of i's pod. With it a
        directed flow a -> b crossing leaves uses two leaf-spine cables, (leaf(a), plane) and
        (leaf(b), plane), and a bad cable can be named; without it only "uplinks of leaf L".

Any of these may be missing: what is absent falls back to the flat view. Hop classes follow
topology/model.hpp: same_host, same_leaf, same_pod, cross_spine (and `unknown` for pairs whose
position is not known).

A /topology whose ranks have no leaf (a single-host run records just the host) places ranks by
host only, like the flat view.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from fabscope_analyze.reader import Host, ResultFileError, RunFile, Topology

# The names topology/ writes in /topology hop_class_names; `unknown` is also the one class of a
# flat fabric (no /topology) for ranks on different hosts.
HOP_CLASSES: tuple[str, ...] = ("same_host", "same_leaf", "same_pod", "cross_spine", "unknown")
SAME_HOST, SAME_LEAF, SAME_POD, CROSS_SPINE, UNKNOWN = range(5)
MAX_LEAF_BLOCKS = 400  # aggregated heatmaps: up to this many leaves are one block each
FLAT_BLOCKS = 100  # without topology: about this many blocks of consecutive ranks

_RATE = re.compile(r"rate\s+([0-9]+(?:\.[0-9]+)?)\s*Gb/sec", re.IGNORECASE)
_HINT = "the /topology group does not follow the layout fabscope_analyze/layout.py reads; re-create the file"


def device_rate_gbps(devices: Sequence[str]) -> float:
    """The port rate of a host from its /hosts/rdma_devices entries ("... state ACTIVE, rate 400
    Gb/sec (4X NDR)"): the lowest rate among ACTIVE ports (a port that trained down is what
    acceptance is looking for), else among all ports; NaN when none says."""
    active, every = [], []
    for d in devices:
        m = _RATE.search(d)
        if not m:
            continue
        every.append(float(m.group(1)))
        if "ACTIVE" in d.upper():
            active.append(float(m.group(1)))
    rates = active or every
    return min(rates) if rates else float("nan")


@dataclass(frozen=True)
class Layout:
    n: int
    hostnames: tuple[str, ...]  # per rank
    host_id: np.ndarray  # int32 [N]: ranks with equal ids share a host
    leaf: np.ndarray  # int32 [N], -1 unknown (index into leaf_names)
    pod: np.ndarray  # int32 [N], -1 unknown
    leaf_names: tuple[str, ...]
    order: np.ndarray  # int64 [N]: rank shown at display position k
    rate_gbps: np.ndarray  # float64 [N], NaN unknown
    rate_source: str  # "topology", "rdma_devices" or "none"
    dest_plane: np.ndarray | None  # int32 [N] (see module doc), None = routes unknown
    n_planes: int
    spine_names: dict[tuple[int, int], str]  # (pod, plane) -> spine name
    source: str  # human description of where positions came from

    # --- names --------------------------------------------------------------------------------
    @property
    def has_leaves(self) -> bool:
        return bool((self.leaf >= 0).any())

    @property
    def has_routes(self) -> bool:
        return self.dest_plane is not None and self.n_planes > 0

    def rank_name(self, rank: int) -> str:
        """The host name, or `host/rank r` when several ranks share the host."""
        name = self.hostnames[rank]
        shared = int(np.count_nonzero(self.host_id == self.host_id[rank])) > 1
        return f"{name}/rank {rank}" if shared else name

    def leaf_name(self, rank: int) -> str:
        leaf = int(self.leaf[rank])
        return self.leaf_names[leaf] if leaf >= 0 else ""

    def classes_present(self) -> list[str]:
        """Hop classes some pair of this fabric has (cheap: from the distinct positions)."""
        out = set()
        hosts, counts = np.unique(self.host_id, return_counts=True)
        if (counts > 1).any():
            out.add("same_host")
        if len(hosts) > 1:
            if not self.has_leaves:
                out.add("unknown")
            else:
                if (self.leaf < 0).any():
                    out.add("unknown")
                known = self.leaf >= 0
                lh = {(int(l), int(h)) for l, h in zip(self.leaf[known], self.host_id[known])}
                leaves = {}
                for l, h in lh:
                    leaves.setdefault(l, set()).add(h)
                if any(len(v) > 1 for v in leaves.values()):
                    out.add("same_leaf")
                pods: dict[int, set[int]] = {}
                for l, p in zip(self.leaf[known], self.pod[known]):
                    pods.setdefault(int(p), set()).add(int(l))
                if any(p >= 0 and len(v) > 1 for p, v in pods.items()):
                    out.add("same_pod")
                if len(pods) > 1 or -1 in pods:
                    out.add("cross_spine")
        return [c for c in HOP_CLASSES if c in out]

    # --- pairs --------------------------------------------------------------------------------
    def hop_class(self, rows: np.ndarray | slice, cols: np.ndarray | slice = slice(None)) -> np.ndarray:
        """int8 [len(rows), len(cols)] hop class codes (index into HOP_CLASSES)."""
        h_r, h_c = self.host_id[rows], self.host_id[cols]
        if not self.has_leaves:
            out = np.full((h_r.size, h_c.size), UNKNOWN, dtype=np.int8)
        else:
            l_r, l_c = self.leaf[rows][:, None], self.leaf[cols][None, :]
            p_r, p_c = self.pod[rows][:, None], self.pod[cols][None, :]
            known = (l_r >= 0) & (l_c >= 0)
            out = np.where(known, np.int8(CROSS_SPINE), np.int8(UNKNOWN)).astype(np.int8)
            out[known & (p_r == p_c) & (p_r >= 0)] = SAME_POD
            out[known & (l_r == l_c)] = SAME_LEAF
        out[h_r[:, None] == h_c[None, :]] = SAME_HOST
        return out

    def pair_hop_class(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """int8 hop class codes of the pairs (a[k], b[k]), elementwise (same rules as hop_class);
        any broadcastable shapes of valid ranks."""
        a, b = np.broadcast_arrays(np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64))
        if not self.has_leaves:
            out = np.full(a.shape, UNKNOWN, dtype=np.int8)
        else:
            la, lb, pa, pb = self.leaf[a], self.leaf[b], self.pod[a], self.pod[b]
            known = (la >= 0) & (lb >= 0)
            out = np.where(known, np.int8(CROSS_SPINE), np.int8(UNKNOWN)).astype(np.int8)
            out[known & (pa == pb) & (pa >= 0)] = SAME_POD
            out[known & (la == lb)] = SAME_LEAF
        out[self.host_id[a] == self.host_id[b]] = SAME_HOST
        return out

    def flow_cables(self, src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The leaf-spine cables a directed flow src -> dst uses (ids, -1 = none or unknown):
        (leaf(src), plane) up and (leaf(dst), plane) down, plane = dest_plane[dst]."""
        src, dst = np.asarray(src), np.asarray(dst)
        none = np.full(src.shape, -1, dtype=np.int64)
        if not self.has_routes:
            return none, none.copy()
        assert self.dest_plane is not None
        plane = self.dest_plane[dst].astype(np.int64)
        ls, ld = self.leaf[src].astype(np.int64), self.leaf[dst].astype(np.int64)
        cross = (ls >= 0) & (ld >= 0) & (ls != ld) & (plane >= 0)
        up = np.where(cross, ls * self.n_planes + plane, -1)
        down = np.where(cross, ld * self.n_planes + plane, -1)
        return up, down

    @property
    def n_cables(self) -> int:
        return len(self.leaf_names) * self.n_planes if self.has_routes else 0

    def cable_name(self, cable: int) -> str:
        leaf, plane = divmod(int(cable), self.n_planes)
        leaf_ranks = np.flatnonzero(self.leaf == leaf)
        pod = int(self.pod[leaf_ranks[0]]) if leaf_ranks.size else -1
        spine = self.spine_names.get((pod, plane), f"spine plane {plane}")
        return f"{self.leaf_names[leaf]} <-> {spine}"

    # --- display ------------------------------------------------------------------------------
    def blocks(self) -> tuple[list[str], np.ndarray]:
        """Groups of consecutive display positions for aggregated heatmaps: one per leaf (in
        display order) when leaves are known and not too many, else about FLAT_BLOCKS blocks of k
        ranks. Returns (names, bounds) with block b = positions bounds[b]:bounds[b + 1]."""
        n = self.n
        if self.has_leaves:
            leaves = self.leaf[self.order]
            cuts = np.flatnonzero(np.diff(leaves)) + 1
            bounds = np.concatenate([[0], cuts, [n]])
            if len(bounds) - 1 <= MAX_LEAF_BLOCKS:
                names = [self.leaf_names[int(leaves[b])] if leaves[b] >= 0 else "no leaf" for b in bounds[:-1]]
                return names, bounds
        k = max(1, math.ceil(n / FLAT_BLOCKS))
        bounds = np.concatenate([np.arange(0, n, k), [n]])
        names = [f"ranks {self.order[a]}..{self.order[b - 1]}" if b - a > 1 else f"rank {self.order[a]}"
                 for a, b in zip(bounds[:-1], bounds[1:])]
        if not self.has_leaves:
            names = [f"ranks {a}..{b - 1}" if b - a > 1 else f"rank {a}" for a, b in zip(bounds[:-1], bounds[1:])]
        return names, bounds


def _flat_host_ids(hostnames: Sequence[str]) -> np.ndarray:
    index: dict[str, int] = {}
    return np.array([index.setdefault(h, len(index)) for h in hostnames], dtype=np.int32)


def build_layout(run_file: RunFile) -> Layout:
    """The layout of a result file: from /topology when present, else flat."""
    hosts = run_file.hosts
    names = tuple(h.hostname for h in hosts)
    n = len(hosts)
    host_id = _flat_host_ids(names)
    rates = np.array([device_rate_gbps(h.rdma_devices) for h in hosts], dtype=np.float64)
    rate_source = "rdma_devices" if np.isfinite(rates).any() else "none"
    flat = Layout(
        n=n, hostnames=names, host_id=host_id, leaf=np.full(n, -1, np.int32), pod=np.full(n, -1, np.int32),
        leaf_names=(), order=np.arange(n), rate_gbps=rates, rate_source=rate_source, dest_plane=None,
        n_planes=0, spine_names={}, source="no /topology: flat fabric (one hop class)",
    )
    if run_file.topology is None:
        return flat
    return _from_topology(run_file, run_file.topology, flat)


def _int_column(run_file: RunFile, topo: Topology, table: str, name: str, n_rows: int | None = None,
                limit: int | None = None) -> np.ndarray | None:
    col = topo.column(table, name)
    if col is None:
        return None
    if col.dtype.kind not in "iu":
        raise ResultFileError(run_file.path, f"/topology/{table}/{name} should hold integers", _HINT)
    col = col.astype(np.int64)
    if n_rows is not None and col.size != n_rows:
        raise ResultFileError(run_file.path, f"/topology/{table}/{name} has {col.size} rows, expected {n_rows}",
                              _HINT)
    if limit is not None and col.size and (col.max() >= limit or col.min() < -1):
        raise ResultFileError(
            run_file.path, f"/topology/{table}/{name} refers to row {int(col.max())}, "
            f"outside 0..{limit - 1}", _HINT)
    return col


def _take(col: np.ndarray | None, idx: np.ndarray, fill: float | int = -1) -> np.ndarray:
    """col[idx] where 0 <= idx < len(col), else `fill` (also when col is missing or empty)."""
    out = np.full(idx.shape, fill, dtype=np.float64 if isinstance(fill, float) else np.int64)
    if col is None or col.size == 0:
        return out
    ok = (idx >= 0) & (idx < col.size)
    out[ok] = col[idx[ok]]
    return out


def _from_topology(run_file: RunFile, topo: Topology, flat: Layout) -> Layout:
    n = flat.n
    host_names = topo.column("hosts", "name")
    n_topo_hosts = 0 if host_names is None else host_names.size
    rank_host = _int_column(run_file, topo, "ranks", "host", n, n_topo_hosts or None)
    if rank_host is None:
        if host_names is None:
            return flat  # nothing to place ranks with
        by_name = {str(h): i for i, h in enumerate(host_names)}
        rank_host = np.array([by_name.get(h, -1) for h in flat.hostnames], dtype=np.int64)
    if not (rank_host >= 0).any():
        return flat
    n_nics = len(next(iter(topo.tables.get("nics", {"": np.empty(0)}).values()), np.empty(0)))
    rank_nic = _int_column(run_file, topo, "ranks", "nic", n, n_nics or None)
    switch_names = topo.column("switches", "name")
    n_switches = 0 if switch_names is None else switch_names.size
    host_leaf = _int_column(run_file, topo, "hosts", "leaf", n_topo_hosts, n_switches or None)
    host_pod = _int_column(run_file, topo, "hosts", "pod", n_topo_hosts)
    nic_leaf = _int_column(run_file, topo, "nics", "leaf", None, n_switches or None)
    nic_rate = topo.column("nics", "rate_gbps")
    switch_level = _int_column(run_file, topo, "switches", "level", n_switches)
    switch_pod = _int_column(run_file, topo, "switches", "pod", n_switches)

    known = rank_host >= 0
    leaf_sw = _take(host_leaf, rank_host)
    if rank_nic is not None:
        by_nic = _take(nic_leaf, rank_nic)
        leaf_sw = np.where(by_nic >= 0, by_nic, leaf_sw)
    pod = _take(host_pod, rank_host) if host_pod is not None else _take(switch_pod, leaf_sw)

    # leaves: dense ids in switch order; names from the switches table (or hosts/leaf_name)
    used = np.unique(leaf_sw[leaf_sw >= 0])
    leaf = np.full(n, -1, dtype=np.int32)
    leaf[leaf_sw >= 0] = np.searchsorted(used, leaf_sw[leaf_sw >= 0])
    if switch_names is not None:
        leaf_names = tuple(str(switch_names[s]) for s in used)
    else:
        by_host = topo.column("hosts", "leaf_name")
        first = {int(s): int(np.flatnonzero(leaf_sw == s)[0]) for s in used}
        leaf_names = tuple(str(by_host[rank_host[first[int(s)]]]) if by_host is not None and by_host.size
                           else f"leaf {s}" for s in used)

    rates, rate_source = flat.rate_gbps, flat.rate_source
    if nic_rate is not None and nic_rate.dtype.kind == "f" and nic_rate.size:
        first_nic = _int_column(run_file, topo, "hosts", "first_nic", n_topo_hosts)
        nic_of = _take(first_nic, rank_host)
        if rank_nic is not None:
            nic_of = np.where(rank_nic >= 0, rank_nic, nic_of)
        if nic_of is not None:
            r = _take(nic_rate, nic_of, float("nan"))
            r[r <= 0] = np.nan
            if np.isfinite(r).any():
                rates = np.where(np.isfinite(r), r, flat.rate_gbps)
                rate_source = "topology"

    topo_order = _int_column(run_file, topo, "hosts", "topo_order", n_topo_hosts)
    big = np.iinfo(np.int64).max
    key = np.where(known, _take(topo_order, rank_host, big), big) if topo_order is not None else \
        np.where(leaf >= 0, leaf, big).astype(np.int64)
    order = np.lexsort((np.arange(n), key))

    dest_plane = _int_column(run_file, topo, "ranks", "dest_plane", n)
    n_planes, spine_names = 0, {}
    if dest_plane is not None and switch_level is not None and (dest_plane >= 0).any():
        spines = np.flatnonzero(switch_level == 2)
        spine_pod = switch_pod[spines] if switch_pod is not None else np.zeros(spines.size, np.int64)
        for p in np.unique(spine_pod):
            for k, s in enumerate(spines[spine_pod == p]):
                spine_names[(int(p), k)] = str(switch_names[s]) if switch_names is not None else f"spine {s}"
        n_planes = int(max(dest_plane.max() + 1, max((k for _, k in spine_names), default=-1) + 1))
    else:
        dest_plane = None

    name = topo.attrs.get("name") or topo.attrs.get("source") or "topology"
    return Layout(
        n=n, hostnames=flat.hostnames, host_id=flat.host_id, leaf=leaf, pod=pod.astype(np.int32),
        leaf_names=leaf_names, order=order, rate_gbps=rates, rate_source=rate_source,
        dest_plane=None if dest_plane is None else dest_plane.astype(np.int32), n_planes=n_planes,
        spine_names=spine_names,
        source=f"/topology ({name}): {len(leaf_names)} leaves"
        + (", routes: destination-based spine planes" if n_planes else ", routes unknown"),
    )


def host_label(host: Host) -> str:
    return host.hostname
