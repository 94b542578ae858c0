#!/usr/bin/python3
"""Synthetic fabscope result files that follow results/SCHEMA.md (schema version 1).

For tests of fabscope-analyze that need control over the data (bad input, escaping, plots of large
or faulty fabrics). The numbers come from a simple model (`FabricModel`) plus log-normal noise;
summaries are computed from the samples exactly as SCHEMA.md defines them.

    synth.py OUT.h5 --hosts N [--slow-host K] [--seed S]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "analysis"))
from fabscope_analyze.stats import summary_stats  # noqa: E402

SCHEMA_VERSION = 1
STATUS_NAMES = "not_run,ok,failed,timeout"
STATUS_NOT_RUN, STATUS_OK, STATUS_FAILED, STATUS_TIMEOUT = 0, 1, 2, 3
WINDOW = 64
HOSTILE = "<script>alert(1)</script>"  # markup that a report must show as text
_STR = h5py.string_dtype("utf-8")


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

    def latency_ns(self, size: int) -> float:
        return self.base_latency_ns + self.latency_ns_per_byte * size

    def bw_gbps(self, size: int) -> float:
        return self.peak_gbps * size / (size + self.half_bw_size_bytes)


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


@dataclass
class HostSpec:
    hostnames: Sequence[str] | None = None
    kernel: str = "Linux 6.1.0-28-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22)"
    cpu_model: str = "Intel(R) Xeon(R) Platinum 8480+"
    mpi_library: str = "Open MPI v4.1.4, package: Debian OpenMPI, ident: 4.1.4, repo rev: v4.1.4, May 26, 2022"
    rdma_core_version: str = "44.0"
    rdma_devices: str = (
        "mlx5_0 port 1: fw 28.39.1002, link_layer InfiniBand, state ACTIVE, rate 400 Gb/sec (4X NDR)"
    )
    overrides: dict[int, dict[str, str]] = field(default_factory=dict)  # rank -> {field: value}


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


def write_synthetic_run(
    path: str | Path,
    n_hosts: int,
    seed: int = 0,
    *,
    model: FabricModel | None = None,
    slow_host: int | None = None,
    hosts: HostSpec | None = None,
    sweeps: Sequence[SweepSpec] = DEFAULT_SWEEPS,
    pairs: PairsSpec | None = PairsSpec(),
    label: str = "",
    complete: bool = True,
    schema_version: int = SCHEMA_VERSION,
    command_line: str | None = None,
) -> Path:
    """Write a schema-valid result file for `n_hosts` ranks (one rank per host) and return its path.

    `slow_host` adds that rank to the model's slow hosts (higher latency, lower bandwidth to it).
    `pairs=None` leaves the pairs run out, `sweeps=()` the size sweeps (which need n_hosts >= 2).
    """
    if n_hosts < 1:
        raise ValueError("n_hosts must be at least 1")
    model = model or FabricModel()
    if slow_host is not None:
        if not 0 <= slow_host < n_hosts:
            raise ValueError(f"slow_host {slow_host} is not a rank of {n_hosts}")
        model = FabricModel(**{**model.__dict__, "slow_hosts": (*model.slow_hosts, slow_host)})
    rng = np.random.default_rng(seed)
    path = Path(path)
    host_spec = hosts or HostSpec()
    with h5py.File(path, "w") as f:
        f.attrs["schema_version"] = np.int64(schema_version)
        f.attrs["fabscope_version"] = "0.0.0-synthetic"
        f.attrs["created_utc"] = "2026-11-28T08:00:00Z"
        f.attrs["command_line"] = command_line or f"synth.py --hosts {n_hosts} --seed {seed}"
        f.attrs["suite_text"] = _suite_text(sweeps, pairs)
        f.attrs["n_ranks"] = np.int64(n_hosts)
        f.attrs["complete"] = np.int8(1 if complete else 0)
        _write_hosts(f.create_group("hosts"), n_hosts, host_spec)
        runs = f.create_group("runs")
        index = 0
        if n_hosts >= 2:
            for spec in sweeps:
                _write_sweep(runs.create_group(f"{index:02d}_{spec.name}"), spec, model, rng, label)
                index += 1
        if pairs is not None:
            _write_pairs(runs.create_group(f"{index:02d}_{pairs.name}"), n_hosts, pairs, model, rng, label)
    return path


def _suite_text(sweeps: Sequence[SweepSpec], pairs: PairsSpec | None) -> str:
    lines = ["name: synthetic", "benchmarks:"]
    for s in sweeps:
        lines.append(f"  - {{name: {s.name}, kind: {s.benchmark}, iters: {s.iters}, warmup: {s.warmup}}}")
    if pairs is not None:
        lines.append(f"  - {{name: {pairs.name}, kind: pairs, iters: {pairs.lat_iters}}}")
    return "\n".join(lines) + "\n"


def _write_hosts(g: h5py.Group, n: int, spec: HostSpec) -> None:
    names = list(spec.hostnames) if spec.hostnames is not None else [f"node{i:03d}" for i in range(n)]
    if len(names) != n:
        raise ValueError(f"{len(names)} host names for {n} hosts")
    g.create_dataset("rank", data=np.arange(n, dtype=np.int32))
    columns = {
        "hostname": names,
        "kernel": [spec.kernel] * n,
        "cpu_model": [spec.cpu_model] * n,
        "mpi_library": [spec.mpi_library] * n,
        "rdma_core_version": [spec.rdma_core_version] * n,
        "rdma_devices": [spec.rdma_devices] * n,
    }
    for rank, values in spec.overrides.items():
        for key, value in values.items():
            columns[key][rank] = value
    for key, values in columns.items():
        g.create_dataset(key, data=np.array(values, dtype=object), dtype=_STR)


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


def _write_pairs(
    g: h5py.Group, n: int, spec: PairsSpec, model: FabricModel, rng: np.random.Generator, label: str
) -> None:
    rounds = circle_rounds(n) if n >= 2 else []
    done = len(rounds) if spec.rounds_done is None else spec.rounds_done
    _common_attrs(g, "pairs", spec.name, spec.lat_iters, spec.warmup, label)
    g.attrs["complete"] = np.int8(1 if done == len(rounds) else 0)
    if done < len(rounds):
        g.attrs["finished_utc"] = ""
    for key in ("lat_size_bytes", "bw_size_bytes", "lat_iters", "bw_windows"):
        g.attrs[key] = np.int64(getattr(spec, key))
    g.attrs["window"] = np.int64(WINDOW)
    g.attrs["schedule"] = "circle"
    g.attrs["rounds_total"] = np.int64(len(rounds))
    g.attrs["rounds_done"] = np.int64(done)

    # Every pair of the rounds done, as rows (round, initiator, peer).
    run = np.array([(r, a, b) for r, rp in enumerate(rounds[:done]) for a, b in rp], dtype=np.int64).reshape(-1, 3)
    rr, aa, bb = run.T
    round_of = np.full((n, n), -1, dtype=np.int32)
    round_of[aa, bb] = round_of[bb, aa] = rr
    failed = {frozenset(p) for p in spec.failed_pairs}
    timed_out = {frozenset(p) for p in spec.timeout_pairs}
    codes = np.array([STATUS_FAILED if frozenset((a, b)) in failed else
                      STATUS_TIMEOUT if frozenset((a, b)) in timed_out else STATUS_OK
                      for a, b in zip(aa.tolist(), bb.tolist())], dtype=np.int8)
    status = np.zeros((n, n), dtype=np.int8)
    status[aa, bb] = status[bb, aa] = codes

    # Measured pairs only (failed and timed-out pairs have no samples).
    ok = codes == STATUS_OK
    rr, aa, bb = rr[ok], aa[ok], bb[ok]
    p = int(aa.size)
    spread = 1.0 + model.per_host_spread * np.abs(rng.standard_normal(n))
    slow = np.isin(aa, model.slow_hosts) | np.isin(bb, model.slow_hosts)
    lat_factor = spread[aa] * spread[bb] * np.where(slow, model.slow_latency_factor, 1.0)
    bw_factor = np.where(slow, model.slow_bw_factor, 1.0) / (spread[aa] * spread[bb])
    lat_x = _latency_samples(rng, model, [spec.lat_size_bytes] * p, spec.lat_iters, lat_factor)
    fwd = _bw_samples(rng, model, [spec.bw_size_bytes] * p, spec.bw_windows, bw_factor)
    rev = _bw_samples(rng, model, [spec.bw_size_bytes] * p, spec.bw_windows, bw_factor)

    lat_stats = summary_stats(lat_x) if p else {}
    for k in ("min", "p50", "p99"):
        m = np.full((n, n), np.nan)
        if p:
            m[aa, bb] = m[bb, aa] = lat_stats[k]
        _quantity(g, f"latency_ns_{k}", m, "ns")
    bw = np.full((n, n), np.nan)
    if p:
        bw[aa, bb] = np.median(fwd, axis=1)
        bw[bb, aa] = np.median(rev, axis=1)
    _quantity(g, "bw_gbps", bw, "Gb/s")
    ds = g.create_dataset("status", data=status)
    ds.attrs["status_names"] = STATUS_NAMES
    g.create_dataset("round", data=round_of)

    ps = g.create_group("pair_samples")

    def rows(name: str, data: np.ndarray, units: str | None) -> None:
        """A dataset that grows by rows, as fabscope writes pair_samples."""
        maxshape = (None, *data.shape[1:])
        chunks = (max(1, min(p, 64)), *(max(1, d) for d in data.shape[1:]))
        ds = ps.create_dataset(name, data=data, maxshape=maxshape, chunks=chunks, compression="gzip")
        if units:
            ds.attrs["units"] = units

    rows("pair", np.stack([aa, bb], axis=1).astype(np.int32).reshape(p, 2), None)
    rows("round", rr.astype(np.int32), None)
    rows("latency_ns", lat_x.reshape(p, spec.lat_iters), "ns")
    rows("bw_gbps_fwd", fwd.reshape(p, spec.bw_windows), "Gb/s")
    rows("bw_gbps_rev", rev.reshape(p, spec.bw_windows), "Gb/s")


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a synthetic fabscope result file (results/SCHEMA.md v1).")
    parser.add_argument("out", type=Path, help="the .h5 file to write")
    parser.add_argument("--hosts", type=int, required=True, help="number of ranks / hosts")
    parser.add_argument("--slow-host", type=int, default=None, help="rank of a host with slow links")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds-done", type=int, default=None, help="stop the pairs run after this many rounds")
    args = parser.parse_args(argv)
    write_synthetic_run(
        args.out,
        args.hosts,
        args.seed,
        slow_host=args.slow_host,
        pairs=PairsSpec(rounds_done=args.rounds_done),
        complete=args.rounds_done is None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
