"""Collective scaling (coll runs): what the report shows, as pure functions of a CollRun.

Metrics are those of SCHEMA.md (`coll`): busbw_gbps (nccl-tests' bus bandwidth), time_ns_p50 and
scaling_efficiency = busbw(group) / busbw(2-node group) at the same size.

A *scaling drop* is the fall of scaling efficiency from one node count to the next at the same
size and collective: drop = eff(previous group) - eff(this group). The report lists the largest
drops, and every measurement whose efficiency is below a threshold (default 0.5), with the nodes
the larger group added (they are where a drop is usually traced to).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from fabscope_analyze import plots
from fabscope_analyze.reader import CollOp, CollRun, Host

DEFAULT_EFFICIENCY_THRESHOLD = 0.5
MAX_SIZE_LINES = 6


def pick_sizes(sizes: np.ndarray, k: int = MAX_SIZE_LINES) -> list[int]:
    """Indices of at most k sizes, spread evenly on a log scale, first and last included."""
    n = int(np.asarray(sizes).size)
    if n <= k:
        return list(range(n))
    return sorted({int(round(i)) for i in np.linspace(0, n - 1, k)})


@dataclass(frozen=True)
class Drop:
    op: str
    size_bytes: int
    nodes_from: int
    nodes_to: int
    efficiency_from: float
    efficiency_to: float
    busbw_from_gbps: float
    busbw_to_gbps: float
    added_hosts: tuple[str, ...]

    @property
    def drop(self) -> float:
        return self.efficiency_from - self.efficiency_to


def added_hosts(run: CollRun, g: int, hosts: Sequence[Host]) -> tuple[str, ...]:
    """Host names of the ranks in group g that group g - 1 does not have."""
    now = set(run.members(g).tolist())
    before = set(run.members(g - 1).tolist()) if g > 0 else set()
    names: list[str] = []
    for r in sorted(now - before):
        name = hosts[r].hostname if 0 <= r < len(hosts) else f"rank {r}"
        if name not in names:
            names.append(name)
    return tuple(names)


def scaling_drops(run: CollRun, hosts: Sequence[Host], *, top: int = 12,
                  threshold: float = DEFAULT_EFFICIENCY_THRESHOLD) -> tuple[list[Drop], list[Drop]]:
    """(the `top` largest drops over all collectives and sizes, every step that ends below
    `threshold`), each sorted worst first."""
    steps: list[Drop] = []
    for name, op in run.ops.items():
        if not op.has_bandwidth:
            continue
        eff = op.summary["scaling_efficiency"]
        bus = op.summary["busbw_gbps"]
        ok = _ok(op)
        for g in range(1, eff.shape[0]):
            for s in range(eff.shape[1]):
                a, b = eff[g - 1, s], eff[g, s]
                if not (np.isfinite(a) and np.isfinite(b)) or not (ok[g - 1, s] and ok[g, s]):
                    continue
                steps.append(Drop(name, int(op.size_bytes[s]), int(run.node_counts[g - 1]), int(run.node_counts[g]),
                                  float(a), float(b), float(bus[g - 1, s]), float(bus[g, s]),
                                  added_hosts(run, g, hosts)))
    largest = sorted((d for d in steps if d.drop > 0), key=lambda d: -d.drop)[:top]
    below = sorted((d for d in steps if d.efficiency_to < threshold), key=lambda d: d.efficiency_to)
    return largest, below


def _ok(op: CollOp) -> np.ndarray:
    code = op.status_code("ok")
    return op.status == code if code is not None else np.ones(op.status.shape, dtype=bool)


def _failed_mask(op: CollOp) -> np.ndarray:
    """Measurements that failed (status `failed`) or whose --check found wrong elements. `not_run`
    is not a failure: sizes below one element per peer or above the memory cap are skipped by
    design."""
    code = op.status_code("failed")
    bad = op.status == code if code is not None else np.zeros(op.status.shape, dtype=bool)
    if op.check_errors is not None:
        bad = bad | (op.check_errors > 0)
    return bad


def not_run(run: CollRun) -> int:
    return sum(int(np.count_nonzero(op.status == op.status_code("not_run"))) for op in run.ops.values()
               if op.status_code("not_run") is not None)


def failed(run: CollRun) -> list[tuple[str, int, int, str, int]]:
    """(op, nodes, size, status, wrong elements) of every measurement that failed or whose
    --check found wrong results."""
    out = []
    for name, op in run.ops.items():
        errors = op.check_errors if op.check_errors is not None else np.zeros(op.status.shape, dtype=np.int64)
        for g, s in zip(*np.nonzero(_failed_mask(op))):
            code = int(op.status[g, s])
            status = op.status_names[code] if 0 <= code < len(op.status_names) else f"status {code}"
            out.append((name, int(run.node_counts[g]), int(op.size_bytes[s]), status, int(errors[g, s])))
    return out


def op_panels(run: CollRun, op: CollOp) -> list[plots.LinePanel]:
    """busbw over size (a line per node count), busbw and p50 time over node count (a line per
    size of a readable subset); barrier: time over node count only."""
    counts = run.node_counts
    marks = _failed_mask(op)
    picks = pick_sizes(op.size_bytes)
    time_us = op.time("p50") / 1e3
    by_count = [plots.Series(f"{plots.format_bytes(int(op.size_bytes[s]))} B" if op.has_bandwidth else "barrier",
                             time_us[:, s], marks[:, s]) for s in picks]
    time_panel = plots.LinePanel(
        title="latency (p50 time) vs node count", x=counts, xlabel="nodes", ylabel="time per call, p50 (us)",
        series=by_count, x_ticks=counts.tolist(), log_y=True)
    if not op.has_bandwidth:
        return [time_panel]
    bus = op.summary["busbw_gbps"]
    by_size = plots.LinePanel(
        title="bus bandwidth vs message size", x=op.size_bytes, xlabel="message size",
        ylabel="busbw (Gb/s)", x_is_size=True, log_y=True,
        series=[plots.Series(f"{int(c)} nodes", bus[g], marks[g]) for g, c in enumerate(counts)])
    by_nodes = plots.LinePanel(
        title="bus bandwidth vs node count", x=counts, xlabel="nodes", ylabel="busbw (Gb/s)",
        x_ticks=counts.tolist(), log_y=True,
        series=[plots.Series(f"{plots.format_bytes(int(op.size_bytes[s]))} B", bus[:, s], marks[:, s]) for s in picks])
    return [by_size, by_nodes, time_panel]


def headline(run: CollRun) -> str:
    if not run.ops:
        return "no collective written"
    parts = []
    for name, op in run.ops.items():
        if op.has_bandwidth and op.size_bytes.size:
            bus = op.summary["busbw_gbps"][-1, -1]
            parts.append(f"{name} {plots.format_bytes(int(op.size_bytes[-1]))} B at {int(run.node_counts[-1])} nodes: "
                         f"busbw {bus:.3g} Gb/s")
        else:
            parts.append(f"{name} at {int(run.node_counts[-1])} nodes: p50 {op.time('p50')[-1, 0] / 1e3:.3g} us")
    bad, skipped = len(failed(run)), not_run(run)
    text = "; ".join(parts[:3]) + ("; ..." if len(parts) > 3 else "")
    return (text + (f"; {bad} failed measurements" if bad else "")
            + (f"; {skipped} not run (size below one element per peer, or above the memory cap)" if skipped else ""))
