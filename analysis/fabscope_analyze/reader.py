"""Reader and validator of fabscope result files, schema versions 1 and 2 (results/SCHEMA.md).

`read_results(path)` checks a file against the schema and returns plain dataclasses holding numpy
arrays; nothing else in this package opens HDF5. Every problem with the file (missing, not HDF5,
truncated, other schema version, missing or malformed group, dataset or attribute) raises
`ResultFileError`, whose one-line message names the file, what is wrong and how to fix it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, NoReturn, Union

import h5py
import numpy as np

from fabscope_analyze import parallel
from fabscope_analyze.stats import STAT_NAMES

SCHEMA_VERSION = 2
SUPPORTED_SCHEMA_VERSIONS: tuple[int, ...] = (1, 2)  # 1: pairs as dense matrices (legacy)

# The metric of the raw samples of each size-sweep benchmark.
SWEEP_METRICS: dict[str, str] = {"lat": "latency_ns", "bw": "bw_gbps", "bibw": "bw_gbps"}
PAIRS_BENCHMARK = "pairs"
COLL_BENCHMARK = "coll"
# Runs under load (results/SCHEMA.md): mpiGraph-style shift / permutation steps and
# GPCNeT-style victims and aggressors.
SHIFT_BENCHMARK = "shift"
CONGESTION_BENCHMARK = "congestion"
CONGESTION_ROLES: tuple[str, ...] = ("idle", "victim", "aggressor")  # role codes 0, 1, 2
ISOLATED_PHASE = "isolated"
# The collectives of a coll run, in the order reports show them (SCHEMA.md, `coll`).
COLL_OPS: tuple[str, ...] = ("allreduce", "allgather", "reduce_scatter", "alltoall", "bcast", "barrier")
COLL_STATUS_NAMES_DEFAULT: tuple[str, ...] = ("not_run", "ok", "failed")
# Pairs matrices of more ranks than this are read as float32, and only when first used: one
# 10,000-rank float64 matrix is 800 MB, and a verdict or report needs two or three of them.
LARGE_MATRIX_RANKS = 2048
# The most ranks whose pairs run accept, report and compare analyse: they build [N, N] views (status,
# bandwidth, latency p50 and p99: 13 bytes a cell, 5.2 GB at 20,000 ranks). A larger run (a sparse
# plan over 100,000 endpoints) is refused with one line instead of exhausting the machine's memory
# (40,000 ranks took 23.7 GB and 140 s); trend reads its run summary and needs no view.
MAX_VIEW_RANKS = 20_000
UNITS: dict[str, str] = {
    "latency_ns": "ns",
    "bw_gbps": "Gb/s",
    "msg_rate_mpps": "Mpps",
    "size_bytes": "bytes",
    "time_ns": "ns",
    "algbw_gbps": "Gb/s",
    "busbw_gbps": "Gb/s",
    "scaling_efficiency": "1",
}
HOST_FIELDS: tuple[str, ...] = (
    "hostname",
    "kernel",
    "cpu_model",
    "mpi_library",
    "rdma_core_version",
    "rdma_devices",
)
PAIR_MATRICES: tuple[str, ...] = ("latency_ns_min", "latency_ns_p50", "latency_ns_p99", "bw_gbps")
STATUS_NAMES_DEFAULT: tuple[str, ...] = ("not_run", "ok", "failed", "timeout")
# Plausible values of a pair whose status is ok: anything outside is a broken writer or a damaged
# file, never a measurement (400 Gb/s links are the fastest today; 1e5 Gb/s leaves room for decades).
MAX_PAIR_BW_GBPS = 1e5
MAX_PAIR_LATENCY_NS = 1e12  # 1000 s: far beyond any pair time-out

_SCHEMA_HINT = (
    f"the file does not follow results/SCHEMA.md version {SCHEMA_VERSION}; "
    "re-create it with a fabscope that writes that schema"
)
_DAMAGED_HINT = "the file is damaged or was cut short (killed writer, partial copy); re-run fabscope"
_LOCKED_HINT = (
    "another process (a running fabscope?) holds it open for writing; wait until it is done, "
    "or read a copy"
)


class ResultFileError(Exception):
    """A result file that cannot be used; str() is one line: `<path>: <problem>; <hint>`."""

    def __init__(self, path: str | os.PathLike[str], problem: str, hint: str = _SCHEMA_HINT) -> None:
        self.path = os.fspath(path)
        self.problem = problem
        self.hint = hint
        super().__init__(str(self))

    def __reduce__(self) -> tuple[Any, ...]:  # pickled by parallel.fork_map: rebuilt from its parts
        return (type(self), (self.path, self.problem, self.hint))

    def __str__(self) -> str:
        text = f"{self.path}: {self.problem}" + (f"; {self.hint}" if self.hint else "")
        return " ".join(text.split())


@dataclass(frozen=True)
class PortConfig:
    """One row of /hosts/ports: an RDMA port of a rank's host as it was configured at start-up
    (results/SCHEMA.md). NaN / 0 / "" / -1 where the host did not tell."""

    device: str
    port: int
    link_layer: str
    state: str
    rate_gbps: float  # negotiated (sysfs rate)
    width: str  # "4X"
    speed: str  # "HDR"
    active_mtu_bytes: int
    max_mtu_bytes: int
    fw_ver: str
    driver: str
    pcie_speed_gts: float
    pcie_max_speed_gts: float
    pcie_width: int
    pcie_max_width: int
    numa_node: int


PORT_STRING_FIELDS = ("device", "link_layer", "state", "width", "speed", "fw_ver", "driver")
PORT_INT_FIELDS = ("rank", "port", "active_mtu_bytes", "max_mtu_bytes", "pcie_width", "pcie_max_width", "numa_node")
PORT_FLOAT_FIELDS = ("rate_gbps", "pcie_speed_gts", "pcie_max_speed_gts")


@dataclass(frozen=True)
class PmaDeltas:
    """/pma (fabscope --pma): the PMA port counters of both ends of every cable of /topology,
    after - before the command's runs, one row per cable end."""

    names: tuple[str, ...]  # counter names (columns of delta)
    link: np.ndarray  # int64 [E], row of /topology/links
    side: np.ndarray  # int64 [E], 0 the link's a end, 1 its b end
    end: tuple[str, ...]  # the end in words, e.g. "leaf0003[6]", "node007 mlx5_0[1]"
    peer: tuple[str, ...]  # the other end of the cable
    host: tuple[str, ...]  # the host on the cable ("" between switches)
    ok: np.ndarray  # bool [E]: read before and after
    delta: np.ndarray  # int64 [E, C]
    ok_ext: np.ndarray  # bool [E]: PortCountersExtended read before and after (all False in older files)


@dataclass(frozen=True)
class Host:
    """One row of /hosts: the provenance of one MPI rank."""

    rank: int
    hostname: str
    kernel: str
    cpu_model: str
    mpi_library: str
    rdma_core_version: str
    rdma_devices: tuple[str, ...]  # one entry per device port; empty when the host has none
    # Configuration evidence (files written before it existed have none: empty / None)
    ports: tuple[PortConfig, ...] = ()
    cpu_numa_nodes: tuple[int, ...] | None = None
    memlock_bytes: int | None = None  # -1 unlimited
    cap_ipc_lock: bool | None = None

    @property
    def has_config(self) -> bool:
        """Whether the file recorded this rank's configuration evidence (/hosts/ports)."""
        return self.memlock_bytes is not None

    @property
    def label(self) -> str:
        """`<rank> <hostname>`: unique even when several ranks share a host."""
        return f"{self.rank} {self.hostname}"


@dataclass(frozen=True)
class RunInfo:
    """The attributes every /runs/<NN>_<name> group has."""

    group: str  # the group's name in the file, e.g. "00_lat"
    benchmark: str
    name: str
    transport: str
    label: str
    iters: int
    warmup: int
    started_utc: str
    finished_utc: str
    complete: bool
    attrs: Mapping[str, Any] = field(default_factory=dict, repr=False)  # every attribute as read
    wall_seconds: float | None = None  # set when the run completed (older files: None)
    counters: "Counters | None" = None  # the run's counters/ group, when it has one


@dataclass(frozen=True)
class Counters:
    """A run's counters/ group: per rank, the change of each (port) counter over the run."""

    names: tuple[str, ...]  # [C]
    delta: np.ndarray  # int64 [N, C]; -1 = the counter is absent on that rank


@dataclass(frozen=True)
class SweepRun:
    """A `lat`, `bw` or `bibw` run: one metric over a sweep of message sizes (ranks 0 and 1)."""

    info: RunInfo
    metric: str  # "latency_ns" or "bw_gbps"
    units: str
    size_bytes: np.ndarray  # int64 [S], ascending
    samples: np.ndarray | None  # float64 [S, iters]; None when read with samples=False
    summary: Mapping[str, np.ndarray]  # summary/<name> -> float64 [S], e.g. "latency_ns_p50"
    window: int | None  # messages per window (bw, bibw)

    def stat(self, stat: str, metric: str | None = None) -> np.ndarray:
        """summary/<metric>_<stat>, metric defaulting to the run's own (e.g. stat("p99"))."""
        return self.summary[f"{metric or self.metric}_{stat}"]


@dataclass(frozen=True)
class PairSamples:
    """pairs/pair_samples: one row per measured pair, in measuring order."""

    pair: np.ndarray  # int32 [P, 2], first = initiator
    round: np.ndarray  # int32 [P]
    latency_ns: np.ndarray  # float64 [P, lat_iters]
    bw_gbps_fwd: np.ndarray  # float64 [P, bw_windows], initiator sending
    bw_gbps_rev: np.ndarray  # float64 [P, bw_windows], peer sending


@dataclass(frozen=True)
class PairErrors:
    """pairs/errors: the pairs that failed or timed out, with the error text."""

    pair: np.ndarray  # int32 [F, 2]
    round: np.ndarray  # int32 [F]
    status: np.ndarray  # int8 [F]
    message: tuple[str, ...]  # [F]


class _MatrixSource:
    """Reads the [N, N] datasets of one pairs run when they are first used (see PairsRun)."""

    def __init__(self, path: Path, group: str, n: int) -> None:
        self.path, self.group, self.n = path, group, n
        self.float_dtype = np.float32 if n > LARGE_MATRIX_RANKS else np.float64

    def _open(self) -> h5py.File:
        try:
            return h5py.File(self.path, "r")
        except OSError as exc:
            raise ResultFileError(self.path, f"cannot be opened again to read {self.group} ({exc})",
                                  _DAMAGED_HINT) from None

    def matrix(self, name: str) -> np.ndarray:
        dtype = {"status": np.int8, "round": np.int32}.get(name, self.float_dtype)
        where = f"{self.group}/{name}"
        with self._open() as f:
            try:
                ds = f[where]
                out = np.empty(ds.shape, dtype=dtype)
                if ds.dtype == out.dtype or len(ds.shape) != 2:
                    ds.read_direct(out)
                    return out
                # HDF5's own type conversion is slow (about 2 s for 800 MB); read row blocks in
                # the stored type and convert them with numpy.
                step = max(1, (32 << 20) // max(1, ds.shape[1] * ds.dtype.itemsize))
                buf = np.empty((step, ds.shape[1]), dtype=ds.dtype)
                for r0 in range(0, ds.shape[0], step):
                    r1 = min(ds.shape[0], r0 + step)
                    ds.read_direct(buf, source_sel=np.s_[r0:r1], dest_sel=np.s_[0:r1 - r0])
                    out[r0:r1] = buf[: r1 - r0]
                return out
            except (OSError, KeyError, ValueError, TypeError) as exc:
                raise ResultFileError(self.path, f"cannot read {where} ({exc})", _DAMAGED_HINT) from None

    def sample_rows(self, rows: np.ndarray | None) -> "PairSamples":
        """pair_samples/* of the given rows (ascending indices), or of all rows (None)."""
        where = f"{self.group}/pair_samples"
        with self._open() as f:
            try:
                g = f[where]
                total = g["pair"].shape[0]
                if rows is None or rows.size > total // 4:
                    sel: Any = slice(None)
                    take = None if rows is None else rows
                else:
                    sel, take = np.asarray(rows, dtype=np.int64), None

                def read(name: str, dtype: type) -> np.ndarray:
                    x = np.asarray(g[name][sel] if not (isinstance(sel, np.ndarray) and sel.size == 0)
                                   else np.empty((0, *g[name].shape[1:])), dtype=dtype)
                    return x if take is None else x[take]

                return PairSamples(
                    pair=read("pair", np.int32).reshape(-1, 2),
                    round=read("round", np.int32).reshape(-1),
                    latency_ns=read("latency_ns", np.float64),
                    bw_gbps_fwd=read("bw_gbps_fwd", np.float64),
                    bw_gbps_rev=read("bw_gbps_rev", np.float64),
                )
            except (OSError, KeyError, ValueError, TypeError) as exc:
                raise ResultFileError(self.path, f"cannot read {where} ({exc})", _DAMAGED_HINT) from None

    def window_blocks(self, rows_per_block: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """pair_samples/pair, bw_gbps_fwd and bw_gbps_rev in consecutive row blocks."""
        where = f"{self.group}/pair_samples"
        with self._open() as f:
            try:
                g = f[where]
                total = g["pair"].shape[0]
                for r0 in range(0, total, rows_per_block):
                    sel = np.s_[r0:min(total, r0 + rows_per_block)]
                    yield (np.asarray(g["pair"][sel], dtype=np.int32).reshape(-1, 2),
                           np.asarray(g["bw_gbps_fwd"][sel], dtype=np.float64),
                           np.asarray(g["bw_gbps_rev"][sel], dtype=np.float64))
            except (OSError, KeyError, ValueError, TypeError) as exc:
                raise ResultFileError(self.path, f"cannot read {where} ({exc})", _DAMAGED_HINT) from None

    def sample_pairs(self) -> np.ndarray:
        """pair_samples/pair [P, 2] alone (to find the rows of given pairs)."""
        with self._open() as f:
            try:
                return np.asarray(f[f"{self.group}/pair_samples/pair"][()], dtype=np.int32).reshape(-1, 2)
            except (OSError, KeyError, ValueError, TypeError) as exc:
                raise ResultFileError(self.path, f"cannot read {self.group}/pair_samples/pair ({exc})",
                                      _DAMAGED_HINT) from None


# Schema version 2: a pairs run is a row table (<run>/pairs/*, one row per measured pair and
# repeat) with a compact distribution per row; see results/SCHEMA.md.
PAIR_ROW_FLOATS: tuple[str, ...] = ("latency_ns_min", "latency_ns_p50", "latency_ns_p99", "bw_gbps_fwd",
                                    "bw_gbps_rev", "bw_gbps_fwd_best", "bw_gbps_rev_best")
LAT_QUANTILES = 11  # min, p10, ..., p90, max
LAT_CODES_PER_OCTAVE = 32.0
# Repeated rows are merged (best repeat) in memory below this many rows; above it, a run measured
# once per pair is turned into matrices in row blocks.
_MERGE_ROWS = 8_000_000


def decode_latency(codes: np.ndarray, p50: np.ndarray) -> np.ndarray:
    """Latency deciles [R, 11] from their codes and the rows' p50 (code 0: NaN)."""
    out = p50.astype(np.float64)[:, None] * np.exp2((codes.astype(np.float64) - 128.0) / LAT_CODES_PER_OCTAVE)
    out[codes == 0] = np.nan
    return out


def decode_windows(codes: np.ndarray, best: np.ndarray, windows: int) -> np.ndarray:
    """Bandwidth windows [R, windows] from their codes (best first) and the rows' best window.
    With more windows than codes, the stored order statistics are interpolated to `windows`."""
    x = best.astype(np.float64)[:, None] * codes.astype(np.float64) / 255.0
    x[codes == 0] = np.nan
    k = codes.shape[1]
    if k >= windows or k < 2:
        return x
    pos = np.arange(k) * (windows - 1) / (k - 1)
    cols = np.arange(windows)
    out = np.empty((x.shape[0], windows))
    for i in range(x.shape[0]):
        out[i] = np.interp(cols, pos, x[i])
    return out


_ROW_BLOCK = 1 << 22
# The views that accept, report and compare all read: built together from one pass over the rows.
_ROW_VIEWS_TOGETHER = ("status", "bw_gbps", "latency_ns_p50")
# Passes over a row table of at least this many rows run in several processes (map_row_ranges).
_PARALLEL_MIN_ROWS = 1 << 23


def row_workers(rows: int) -> int:
    """Processes for a pass over a row table of `rows` rows (parallel.workers)."""
    return parallel.workers(rows, _PARALLEL_MIN_ROWS)


def map_row_ranges(src: "_RowSource", fn: Callable[..., Any], *args: Any) -> list[Any]:
    """[fn(src, (r0, r1), *args)] over consecutive ranges of src's rows that cover them all, in
    row order: one range in this process, or one per forked process (parallel.map_rows, as many as
    row_workers). fn opens the file itself (src.blocks); what it returns comes back pickled; what
    it writes into arrays from parallel.shared_full is seen here; a ResultFileError it raises is
    raised here."""
    return parallel.map_rows(lambda r0, r1: fn(src, (r0, r1), *args), src.rows, 1, _PARALLEL_MIN_ROWS)


def _read_rows(g: h5py.Group, names: tuple[str, ...], rows: np.ndarray) -> dict[str, np.ndarray]:
    """The given rows (ascending) of the columns: each block of _ROW_BLOCK consecutive rows that
    holds one of them is read whole and the rows picked out (h5py's fancy indexing costs per row
    selected: minutes for a million rows of a 12,500-host run)."""
    parts: dict[str, list[np.ndarray]] = {k: [] for k in names}
    blocks = rows // _ROW_BLOCK
    for b in np.unique(blocks):
        pick = rows[blocks == b]
        r1 = int(pick[-1]) + 1
        for k in names:
            parts[k].append(g[k][int(pick[0]):r1][pick - int(pick[0])])
    return {k: np.concatenate(v) for k, v in parts.items()}


def _fill_views(src: "_RowSource", rows: tuple[int, int], out: dict[str, np.ndarray]) -> None:
    """The cells of the rows in [r0, r1) of each view in `out` (a pair's status for any status,
    its values when ok, NaN otherwise)."""
    n = src.n
    cols = dict.fromkeys(c for name in out for c in src._columns(name) if c != "status")
    flat = {name: m.reshape(-1) for name, m in out.items()}
    for b in src.blocks(("pair", "status", *cols), rows=rows):
        pair = np.asarray(b["pair"]).reshape(-1, 2)
        a, c = pair[:, 0].astype(np.intp), pair[:, 1].astype(np.intp)
        ok = (a.astype(np.uintp) < n) & (c.astype(np.uintp) < n)  # negative ranks wrap to huge: out too
        everywhere = bool(ok.all())

        def sel(v: np.ndarray) -> np.ndarray:
            return v if everywhere else v[ok]

        if not everywhere:
            a, c = a[ok], c[ok]
        # The cells [a, c] and [c, a], written in order of their matrix row: a block's rows hit
        # every row of a view, and writing them row by row costs a third of writing them as they
        # come (a stable radix sort of the 16-bit row numbers: later rows still win).
        fwd_order = _row_order(a, n)
        rev_order = _row_order(c, n)
        fwd = _take(a, fwd_order) * n
        fwd += _take(c, fwd_order)
        rev = _take(c, rev_order) * n
        rev += _take(a, rev_order)
        status = sel(b["status"])
        good = status == 1
        all_good = bool(good.all())

        def measured(v: np.ndarray) -> np.ndarray:
            return v if all_good else np.where(good, v, np.nan)

        for name, m in flat.items():
            if name == "status":
                m[fwd] = _take(status, fwd_order)
                m[rev] = _take(status, rev_order)
            elif name == "bw_gbps":
                m[fwd] = _take(measured(sel(b["bw_gbps_fwd"])), fwd_order)
                m[rev] = _take(measured(sel(b["bw_gbps_rev"])), rev_order)
            else:
                v = sel(b[src._columns(name)[0]])
                v = v if name == "round" else measured(v)
                m[fwd] = _take(v, fwd_order)
                m[rev] = _take(v, rev_order)


def _row_order(rows: np.ndarray, n: int) -> np.ndarray | None:
    """The stable order of `rows` (matrix row numbers < n), or None when n does not fit 16 bits."""
    return np.argsort(rows.astype(np.uint16), kind="stable") if n <= 1 << 16 else None


def _take(v: np.ndarray, order: np.ndarray | None) -> np.ndarray:
    return v if order is None else v[order]


class _RowSource:
    """Reads a version-2 pairs run from its row table: the [N, N] views built when first used, the
    compact distributions decoded as pseudo-samples (same interface as _MatrixSource)."""

    def __init__(self, path: Path, group: str, n: int, rows: int, bw_windows: int, repeated: bool) -> None:
        self.path, self.group, self.n, self.rows = path, group, n, rows
        self.bw_windows, self.repeated = bw_windows, repeated
        self.float_dtype = np.float32 if n > LARGE_MATRIX_RANKS else np.float64

    def _open(self) -> h5py.File:
        try:
            return h5py.File(self.path, "r")
        except OSError as exc:
            raise ResultFileError(self.path, f"cannot be opened again to read {self.group} ({exc})",
                                  _DAMAGED_HINT) from None

    def _fail(self, where: str, exc: Exception) -> NoReturn:
        raise ResultFileError(self.path, f"cannot read {where} ({exc})", _DAMAGED_HINT) from None

    def blocks(self, names: tuple[str, ...], rows_per_block: int = 1 << 22,
               rows: tuple[int, int] | None = None) -> Iterator[dict[str, np.ndarray]]:
        """The given columns of pairs/ in consecutive row blocks."""
        r_start, r_stop = rows if rows is not None else (0, self.rows)
        where = f"{self.group}/pairs"
        with self._open() as f:
            try:
                g = f[where]
                for r0 in range(r_start, r_stop, rows_per_block):
                    sel = np.s_[r0:min(r_stop, r0 + rows_per_block)]
                    yield {name: g[name][sel] for name in names}
            except (OSError, KeyError, ValueError, TypeError) as exc:
                self._fail(where, exc)

    @staticmethod
    def _columns(name: str) -> tuple[str, ...]:
        return {"bw_gbps": ("bw_gbps_fwd", "bw_gbps_rev"), "status": ("status",),
                "round": ("round",)}.get(name, (name,))

    def _empty(self, name: str, shared: bool = False) -> np.ndarray:
        dtype = {"status": np.int8, "round": np.int32}.get(name, self.float_dtype)
        fill = {"status": 0, "round": -1}.get(name, np.nan)
        return parallel.shared_full((self.n, self.n), fill, dtype) if shared else np.full((self.n, self.n), fill, dtype=dtype)

    def one_pass(self) -> bool:
        """Whether matrices() builds its views in one pass over the rows (every pair once, or too
        many rows to merge repeats: later rows win)."""
        return not self.repeated or self.rows > _MERGE_ROWS

    def matrices(self, names: tuple[str, ...]) -> dict[str, np.ndarray]:
        """Several [N, N] views from one read of the row table (one_pass()), a row block at a time
        and in several processes for a large table (map_row_ranges: each fills the cells of its
        rows in shared memory): at 12,500 hosts each view alone would read the 78 million rows'
        pair column again."""
        parallel = row_workers(self.rows) > 1
        out = {name: self._empty(name, shared=parallel) for name in names}
        if self.repeated:  # later rows win: in row order, in this process
            _fill_views(self, (0, self.rows), out)
        else:
            map_row_ranges(self, _fill_views, out)
        return out

    def matrix(self, name: str) -> np.ndarray:
        n = self.n
        if self.one_pass():
            return self.matrices((name,))[name]
        out = self._empty(name)
        cols = self._columns(name)
        # Repeats: each pair's best repeat, as the writer's dense views (ResultsWriter::finish_pairs).
        b = next(self.blocks(("pair", "status", *[c for c in cols if c != "status"]), rows_per_block=max(1, self.rows)),
                 None)
        if b is None:
            return out
        a, c = b["pair"][:, 0].astype(np.int64), b["pair"][:, 1].astype(np.int64)
        lo, hi = np.minimum(a, c), np.maximum(a, c)
        key = lo * n + hi
        status = b["status"].astype(np.int8)
        if name in ("status", "round"):
            order = np.lexsort((-status, key)) if name == "status" else np.arange(key.size)[::-1]
            v = status if name == "status" else b["round"]
            _, first = np.unique(key[order], return_index=True)
            pick = order[first]
            out[lo[pick], hi[pick]] = v[pick]
            out[hi[pick], lo[pick]] = v[pick]
            return out
        ok = status == 1
        if name == "bw_gbps":
            src = np.concatenate([a[ok], c[ok]])
            dst = np.concatenate([c[ok], a[ok]])
            v = np.concatenate([b["bw_gbps_fwd"][ok], b["bw_gbps_rev"][ok]]).astype(np.float64)
            dkey = src * n + dst
            order = np.lexsort((-v, dkey))
            _, first = np.unique(dkey[order], return_index=True)
            pick = order[first]
            out[src[pick], dst[pick]] = v[pick]
            return out
        # latency: the row with the lowest p50 among the ok rows
        rows_ok = np.flatnonzero(ok)
        p50 = np.asarray(next(self.blocks(("latency_ns_p50",), rows_per_block=max(1, self.rows)))["latency_ns_p50"])
        order = rows_ok[np.lexsort((p50[rows_ok], key[rows_ok]))]
        _, first = np.unique(key[order], return_index=True)
        pick = order[first]
        v = b[name][pick]
        out[lo[pick], hi[pick]] = v
        out[hi[pick], lo[pick]] = v
        return out

    COMPACT_COLUMNS = ("pair", "round", "latency_ns_p50", "latency_q", "bw_gbps_fwd_best", "bw_gbps_rev_best",
                       "bw_fwd_q", "bw_rev_q")

    def read_rows(self, names: tuple[str, ...], rows: np.ndarray | None) -> dict[str, np.ndarray]:
        """The given rows (ascending; None: all) of these columns of pairs/."""
        where = f"{self.group}/pairs"
        with self._open() as f:
            try:
                g = f[where]
                if rows is None:
                    return {k: g[k][: self.rows] for k in names}
                if rows.size == 0:
                    return {k: np.empty((0, *g[k].shape[1:]), dtype=g[k].dtype) for k in names}
                return _read_rows(g, names, np.asarray(rows, dtype=np.int64))
            except (OSError, KeyError, ValueError, TypeError) as exc:
                self._fail(where, exc)

    def _compact(self, rows: np.ndarray | None) -> PairSamples:
        return self.compact_samples(self.read_rows(self.COMPACT_COLUMNS, rows))

    def compact_samples(self, cols: Mapping[str, np.ndarray]) -> PairSamples:
        """Pseudo-samples from the COMPACT_COLUMNS of some rows."""
        return PairSamples(
            pair=np.asarray(cols["pair"], dtype=np.int32).reshape(-1, 2),
            round=np.asarray(cols["round"], dtype=np.int32).reshape(-1),
            latency_ns=decode_latency(cols["latency_q"], cols["latency_ns_p50"]),
            bw_gbps_fwd=decode_windows(cols["bw_fwd_q"], cols["bw_gbps_fwd_best"], self.bw_windows),
            bw_gbps_rev=decode_windows(cols["bw_rev_q"], cols["bw_gbps_rev_best"], self.bw_windows),
        )

    def sample_rows(self, rows: np.ndarray | None) -> PairSamples:
        """The rows' compact distributions as pseudo-samples: 11 latency deciles, the windows."""
        return self._compact(rows)

    def window_blocks(self, rows_per_block: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        names = ("pair", "bw_gbps_fwd_best", "bw_gbps_rev_best", "bw_fwd_q", "bw_rev_q")
        for b in self.blocks(names, rows_per_block):
            yield (np.asarray(b["pair"], dtype=np.int32).reshape(-1, 2),
                   decode_windows(b["bw_fwd_q"], b["bw_gbps_fwd_best"], self.bw_windows),
                   decode_windows(b["bw_rev_q"], b["bw_gbps_rev_best"], self.bw_windows))

    def codes_per_window(self) -> bool:
        """Whether bw_fwd_q / bw_rev_q hold a code per window (not order statistics of more)."""
        with self._open() as f:
            try:
                return bool(f[f"{self.group}/pairs/bw_fwd_q"].shape[1] == self.bw_windows)
            except (OSError, KeyError, ValueError, TypeError, IndexError) as exc:
                self._fail(f"{self.group}/pairs/bw_fwd_q", exc)

    def sample_pairs(self) -> np.ndarray:
        return np.concatenate([np.asarray(b["pair"], dtype=np.int32).reshape(-1, 2)
                               for b in self.blocks(("pair",))] or [np.empty((0, 2), np.int32)])

    def raw_samples(self, count: int) -> tuple[np.ndarray, PairSamples]:
        """pair_samples/* (the raw samples kept by --keep-samples) and the pairs/ row of each."""
        where = f"{self.group}/pair_samples"
        with self._open() as f:
            try:
                g = f[where]
                sel = np.s_[:count]
                return (np.asarray(g["row"][sel], dtype=np.int64),
                        PairSamples(pair=np.asarray(g["pair"][sel], dtype=np.int32).reshape(-1, 2),
                                    round=np.asarray(g["round"][sel], dtype=np.int32).reshape(-1),
                                    latency_ns=np.asarray(g["latency_ns"][sel], dtype=np.float64),
                                    bw_gbps_fwd=np.asarray(g["bw_gbps_fwd"][sel], dtype=np.float64),
                                    bw_gbps_rev=np.asarray(g["bw_gbps_rev"][sel], dtype=np.float64)))
            except (OSError, KeyError, ValueError, TypeError) as exc:
                self._fail(where, exc)


@dataclass(frozen=True)
class RunSummary:
    """<run>/summary of a version-2 pairs run (results/SCHEMA.md), written by fabscope with every
    round: rows per status and log-binned histograms of the ok rows' latency p50 and bandwidth p50
    (both directions), with exact extremes. Read only when it counts exactly the run's rows."""

    rows: int
    status_rows: np.ndarray  # int64 [S], rows per status code
    latency_ns_p50_hist: np.ndarray  # int64 [B]
    bw_gbps_hist: np.ndarray  # int64 [B]
    latency_lo: float  # bin k holds [lo 2^(k/bpo), lo 2^((k+1)/bpo)); the first also below, the last above
    bw_lo: float
    bins_per_octave: int
    latency_ns_p50_min: float
    latency_ns_p50_max: float
    bw_gbps_min: float
    bw_gbps_max: float

    def latency_ns_p50_median(self) -> float:
        return hist_median(self.latency_ns_p50_hist, self.latency_lo, self.bins_per_octave,
                           self.latency_ns_p50_min, self.latency_ns_p50_max)

    def bw_gbps_median(self) -> float:
        return hist_median(self.bw_gbps_hist, self.bw_lo, self.bins_per_octave, self.bw_gbps_min, self.bw_gbps_max)


def hist_median(hist: np.ndarray, lo: float, bins_per_octave: int, vmin: float, vmax: float) -> float:
    """The median of a log-binned histogram, interpolated geometrically within its bin and kept
    within [vmin, vmax] (as io::PairsSummary::median); NaN when empty."""
    total = int(hist.sum())
    if total == 0:
        return math.nan
    half = total / 2.0
    cum = np.cumsum(hist)
    k = int(np.searchsorted(cum, half, side="left"))
    below = float(cum[k - 1]) if k > 0 else 0.0
    frac = (half - below) / float(hist[k])
    return float(min(max(lo * 2.0 ** ((k + frac) / bins_per_octave), vmin), vmax))


@dataclass(frozen=True)
class PairsRun:
    """A `pairs` run: every unordered pair of ranks, as [N, N] matrices.

    The matrices (latency_ns_min/p50/p99, bw_gbps, status, round) are attributes; for more than
    LARGE_MATRIX_RANKS ranks they are read when first used (float32) and `release()` frees them.
    """

    info: RunInfo
    lat_size_bytes: int
    bw_size_bytes: int
    lat_iters: int
    bw_windows: int
    window: int
    schedule: str
    rounds_total: int
    rounds_done: int
    n_ranks: int
    status_names: tuple[str, ...]  # status_names[code]
    n_pair_samples: int  # rows P of pair_samples/*
    pair_samples: PairSamples | None  # None unless read with pair_samples=True
    round_seconds: np.ndarray | None = None  # float64 [rounds_total]; None in files from before it
    errors: PairErrors | None = None  # None when no pair failed
    layout: str = "matrices"  # "matrices" (schema version 1) or "rows" (version 2: pairs/ row table)
    keep_samples: str = "all"  # which pairs' raw samples the file keeps (version 2: --keep-samples)
    n_raw_samples: int = -1  # rows of pair_samples/* (version 2); -1: version 1 (= n_pair_samples)
    summary: RunSummary | None = None  # version 2 with <run>/summary counting every row
    _source: "_MatrixSource | _RowSource | None" = field(default=None, repr=False, compare=False)
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def _check_view_size(self) -> None:
        if self.n_ranks > MAX_VIEW_RANKS:
            path = self._source.path if self._source is not None else Path("?")
            cells = self.n_ranks * self.n_ranks
            raise ResultFileError(
                path, f"pairs run {self.info.name} has {self.n_ranks:,} ranks: this version analyses pairs runs of at "
                      f"most {MAX_VIEW_RANKS:,} ranks by [N, N] views ({cells * 4 / 1e9:,.0f} GB each here)",
                "`fabscope-analyze trend` reads such a run's summary; accept, report and compare of sparse plans over "
                "more ranks are not supported yet")

    def prefetch(self, *names: str) -> None:
        """Build these views (and the usual ones) together, from one read of a row table: for a
        caller that will use more views than the usual status, bw_gbps and latency_ns_p50."""
        src = self._source
        if isinstance(src, _RowSource) and src.one_pass():
            self._check_view_size()
            self._build_together(src, (*_ROW_VIEWS_TOGETHER, *names))

    def _build_together(self, src: "_RowSource", names: tuple[str, ...]) -> None:
        built = src.matrices(tuple(k for k in dict.fromkeys(names) if k not in self._cache))
        self._cache.update(built)
        for k, v in built.items():
            if k in PAIR_MATRICES:
                check_pair_values(src.path, f"{src.group}/{k}", v, self.status, self.status_code("ok"))

    def matrix(self, name: str) -> np.ndarray:
        m = self._cache.get(name)
        if m is None:
            assert self._source is not None
            self._check_view_size()
            src = self._source
            if isinstance(src, _RowSource) and src.one_pass() and name in _ROW_VIEWS_TOGETHER:
                # the views accept and report use, from one read of the rows (those not cached)
                self._build_together(src, _ROW_VIEWS_TOGETHER)
                return self._cache[name]
            m = src.matrix(name)
            if name in PAIR_MATRICES:
                check_pair_values(src.path, f"{src.group}/{name}", m, self.status,
                                  self.status_code("ok"))
            self._cache[name] = m
        return m

    def release(self, *names: str) -> None:
        """Forget loaded matrices (all when no name is given) so their memory can be freed."""
        for name in names or tuple(self._cache):
            self._cache.pop(name, None)

    @property
    def latency_ns_min(self) -> np.ndarray:  # [N, N], symmetric, NaN = not measured
        return self.matrix("latency_ns_min")

    @property
    def latency_ns_p50(self) -> np.ndarray:
        return self.matrix("latency_ns_p50")

    @property
    def latency_ns_p99(self) -> np.ndarray:
        return self.matrix("latency_ns_p99")

    @property
    def bw_gbps(self) -> np.ndarray:  # [N, N], [i, j] = i sending to j
        return self.matrix("bw_gbps")

    @property
    def status(self) -> np.ndarray:  # int8 [N, N]
        return self.matrix("status")

    @property
    def round(self) -> np.ndarray:  # int32 [N, N], -1 = not run
        return self.matrix("round")

    def load_pair_samples(self, rows: np.ndarray | None = None) -> PairSamples:
        """pair_samples/* rows (ascending indices; None = all), read from the file if needed."""
        if self.pair_samples is not None:
            ps = self.pair_samples
            if rows is None:
                return ps
            return PairSamples(ps.pair[rows], ps.round[rows], ps.latency_ns[rows], ps.bw_gbps_fwd[rows],
                               ps.bw_gbps_rev[rows])
        assert self._source is not None
        return self._source.sample_rows(None if rows is None else np.asarray(rows, dtype=np.int64))

    def window_blocks(self, rows_per_block: int = 1 << 18) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(pair [B, 2], bw_gbps_fwd [B, W], bw_gbps_rev [B, W]) over every pair_samples row, in
        blocks of consecutive rows: the window samples of a run of any size in bounded memory."""
        if self.pair_samples is not None:
            ps = self.pair_samples
            for r0 in range(0, ps.pair.shape[0], rows_per_block):
                r1 = r0 + rows_per_block
                yield ps.pair[r0:r1], ps.bw_gbps_fwd[r0:r1], ps.bw_gbps_rev[r0:r1]
            return
        assert self._source is not None
        yield from self._source.window_blocks(rows_per_block)

    def row_source(self) -> "_RowSource | None":
        """The row table of a version-2 run read from its file (for passes over every row:
        map_row_ranges); None for version 1 or samples held in memory."""
        return self._source if isinstance(self._source, _RowSource) and self.pair_samples is None else None

    def raw_samples(self) -> tuple[np.ndarray, PairSamples]:
        """The raw samples the file keeps and, per sample row, its measurement's index among the
        rows of sample_pair_index() (version 1: every row; version 2: the pairs --keep-samples
        kept)."""
        if isinstance(self._source, _RowSource):
            return self._source.raw_samples(self.n_raw_samples)
        ps = self.load_pair_samples()
        return np.arange(ps.pair.shape[0], dtype=np.int64), ps

    def sample_pair_blocks(self, rows_per_block: int = 1 << 22) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, pair [B, 2]) over the rows of sample_pair_index() in blocks: a 12,500-host
        run's 78 million rows without holding them all."""
        if isinstance(self._source, _RowSource) and self.pair_samples is None:
            r0 = 0
            for b in self._source.blocks(("pair",), rows_per_block):
                pair = np.asarray(b["pair"], dtype=np.int32).reshape(-1, 2)
                yield r0, pair
                r0 += pair.shape[0]
            return
        yield 0, self.sample_pair_index()

    def sample_pair_index(self) -> np.ndarray:
        """pair_samples/pair [P, 2] (the initiator first); version 2: pairs/pair, one per row."""
        if self.pair_samples is not None:
            return self.pair_samples.pair
        assert self._source is not None
        return self._source.sample_pairs()

    def status_name(self, code: int) -> str:
        return self.status_names[code] if 0 <= code < len(self.status_names) else f"status {code}"

    def status_code(self, name: str) -> int | None:
        return self.status_names.index(name) if name in self.status_names else None

    def status_counts(self) -> dict[str, int]:
        """How many unordered pairs (i < j) have each status, by name; zero counts omitted."""
        n = self.n_ranks
        status = self.status
        counts = np.zeros(256, dtype=np.int64)
        cols = np.arange(n)
        for r0, r1 in row_blocks(n, n):
            block = status[r0:r1]
            upper = cols[None, :] > np.arange(r0, r1)[:, None]
            counts += np.bincount(block[upper].view(np.uint8), minlength=256)
        return {self.status_name(int(c) if c < 128 else int(c) - 256): int(counts[c])
                for c in np.flatnonzero(counts)}


def check_pair_values(path: str | os.PathLike[str], where: str, m: np.ndarray, status: np.ndarray,
                      ok_code: int | None) -> None:
    """Raise ResultFileError naming the first cell of a pairs matrix whose status is ok and whose value
    is not a measurement: NaN, infinite, negative, or absurd (bandwidth above MAX_PAIR_BW_GBPS,
    latency <= 0 or above MAX_PAIR_LATENCY_NS)."""
    if ok_code is None:
        return
    is_bw = _pair_metric(where.rsplit("/", 1)[-1]) == "bw_gbps"
    n_cols = m.shape[1] if m.ndim == 2 else 1
    for r0, r1 in row_blocks(m.shape[0], n_cols):
        block = m[r0:r1]
        with np.errstate(invalid="ignore"):
            if is_bw:
                bad = ~((block >= 0) & (block <= MAX_PAIR_BW_GBPS))  # NaN compares False: bad
            else:
                bad = ~((block > 0) & (block <= MAX_PAIR_LATENCY_NS))
        bad &= status[r0:r1] == ok_code
        if bad.any():
            i, j = np.argwhere(bad)[0]
            i = int(i) + r0
            value = float(m[i, j])
            limits = (f"0..{MAX_PAIR_BW_GBPS:g} Gb/s" if is_bw
                      else f"a latency above 0 and at most {MAX_PAIR_LATENCY_NS:g} ns")
            raise ResultFileError(
                path,
                f"dataset {where} holds {value!r} at [{i}, {int(j)}] (the first such cell), but status says "
                f"that pair is ok; expected {limits}",
                "the writer stored a value that is not a measurement; re-run fabscope, or set that "
                "pair's status to failed",
            )


def row_blocks(n_rows: int, n_cols: int, max_cells: int = 4_000_000) -> Iterator[tuple[int, int]]:
    """(start, stop) of consecutive row blocks of an [n_rows, n_cols] matrix, each at most
    max_cells cells (at least one row), so that block-wise work on large matrices stays small."""
    step = max(1, max_cells // max(1, n_cols))
    for r0 in range(0, n_rows, step):
        yield r0, min(n_rows, r0 + step)


@dataclass(frozen=True)
class CollOp:
    """One collective of a coll run: [G node counts, S sizes] arrays (SCHEMA.md, `coll`)."""

    name: str  # allreduce, allgather, reduce_scatter, alltoall, bcast, barrier
    size_bytes: np.ndarray  # int64 [S] (barrier: [0])
    bytes: np.ndarray  # int64 [G, S], the bytes actually moved
    samples: np.ndarray | None  # float64 [G, S, iters]; None when read with samples=False
    summary: Mapping[str, np.ndarray]  # time_ns_<stat>, algbw_gbps, busbw_gbps, scaling_efficiency
    status: np.ndarray  # int64 [G, S]
    status_names: tuple[str, ...]
    check_errors: np.ndarray | None  # int64 [G, S]; only in runs with check = 1

    def time(self, stat: str) -> np.ndarray:
        return self.summary[f"time_ns_{stat}"]

    @property
    def has_bandwidth(self) -> bool:
        return "busbw_gbps" in self.summary

    def status_code(self, name: str) -> int | None:
        return self.status_names.index(name) if name in self.status_names else None


@dataclass(frozen=True)
class CollRun:
    """A `coll` run: collectives over groups of 2, 4, 8, ... nodes and a sweep of sizes."""

    info: RunInfo
    dtype: str
    reduction: str
    node_by: str  # "host" or "rank"
    ranks_per_node: int
    n_nodes: int
    nonblocking: bool
    check: bool
    node_counts: np.ndarray  # int64 [G]
    group_size_ranks: np.ndarray  # int64 [G]
    group_ranks: np.ndarray  # int64 [G, N], -1 padded: the world ranks of group g
    node_of_rank: np.ndarray  # int64 [N]
    ops: Mapping[str, CollOp]  # in COLL_OPS order; ops not (yet) written are absent

    def members(self, g: int) -> np.ndarray:
        row = self.group_ranks[g]
        return row[row >= 0]


class _LoadSource:
    """Reads the large datasets of a shift run ([S, N] per-step flows, the [N, N] matrix, the
    [S, N, iters] window samples) when first used: for more than LARGE_MATRIX_RANKS ranks a
    10,000-rank shift holds about 800 MB per dataset."""

    def __init__(self, path: Path, group: str, n: int) -> None:
        self.matrices = _MatrixSource(path, group, n)
        self.path, self.group, self.n = path, group, n

    def read(self, name: str, dtype: type) -> np.ndarray:
        if dtype is np.int32:
            with self.matrices._open() as f:
                where = f"{self.group}/{name}"
                try:
                    return np.asarray(f[where][()], dtype=np.int32)
                except (OSError, KeyError, ValueError, TypeError) as exc:
                    raise ResultFileError(self.path, f"cannot read {where} ({exc})", _DAMAGED_HINT) from None
        return self.matrices.matrix(name)

    def samples(self, step: int) -> np.ndarray:
        """flow_samples[step] as float64 [N, iters]."""
        where = f"{self.group}/flow_samples"
        with self.matrices._open() as f:
            try:
                return np.asarray(f[where][step], dtype=np.float64)
            except (OSError, KeyError, ValueError, TypeError, IndexError) as exc:
                raise ResultFileError(self.path, f"cannot read {where} ({exc})", _DAMAGED_HINT) from None


@dataclass(frozen=True)
class FlowErrors:
    """A shift run's errors/ group: the flows that failed or timed out (their samples are NaN)."""

    step: np.ndarray  # int64 [F]
    rank: np.ndarray  # int64 [F], the sender
    peer: np.ndarray  # int64 [F], the receiver
    status: np.ndarray  # int64 [F]: 2 failed (e.g. a completion error), 3 timeout (the pairs codes)
    message: tuple[str, ...]


@dataclass(frozen=True)
class ShiftRun:
    """A `shift` run (results/SCHEMA.md): in every step all ranks send at once, each to
    partner_to[s, i]: the fabric under full load, flow by flow.

    Steps s >= steps_done were not measured (a killed run): their rows are NaN / -1 here whatever
    the file holds. partner_to, flow_gbps and bw_gbps are read when first used for more than
    LARGE_MATRIX_RANKS ranks (floats as float32); `release()` frees them."""

    info: RunInfo
    pattern: str  # "shift" or "permutation"
    size_bytes: int
    window: int
    seed: int
    steps_total: int
    steps_done: int
    link_rate_gbps: float  # NaN = unknown
    n_ranks: int
    n_steps: int  # rows S of the per-step datasets (steps_done <= S <= steps_total)
    step_aggregate_gbps: np.ndarray  # float64 [S]
    step_effective_pct: np.ndarray  # float64 [S], NaN without a link rate
    step_seconds: np.ndarray  # float64 [S]
    has_flow_samples: bool
    errors: FlowErrors | None = None  # errors/*, when a flow failed
    _source: _LoadSource | None = field(default=None, repr=False, compare=False)
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def _get(self, name: str, dtype: type) -> np.ndarray:
        m = self._cache.get(name)
        if m is None:
            assert self._source is not None
            m = _mask_undone(self, name, self._source.read(name, dtype))
            if name == "partner_to":
                _check_partners(self._source.path, f"{self._source.group}/{name}", m, self.n_ranks)
            self._cache[name] = m
        return m

    def release(self, *names: str) -> None:
        for name in names or tuple(self._cache):
            self._cache.pop(name, None)

    @property
    def partner_to(self) -> np.ndarray:  # int32 [S, N]; -1 = no flow (step not done)
        return self._get("partner_to", np.int32)

    @property
    def flow_gbps(self) -> np.ndarray:  # [S, N], rank i's send flow in step s
        return self._get("flow_gbps", np.float64)

    @property
    def bw_gbps(self) -> np.ndarray:  # [N, N], [i, j] = i sending to j under load; NaN never
        return self._get("bw_gbps", np.float64)

    def flow_samples(self, step: int) -> np.ndarray:
        """The window samples of every flow of one step: float64 [N, iters]."""
        if not self.has_flow_samples:
            return np.full((self.n_ranks, 0), np.nan)
        return self._source.samples(step) if self._source is not None else np.full((self.n_ranks, 0), np.nan)

    def done(self) -> np.ndarray:
        """bool [S]: the steps measured."""
        return np.arange(self.n_steps) < self.steps_done

    def step_label(self, s: int) -> str:
        return f"step {s} (distance {s + 1})" if self.pattern == "shift" else f"step {s}"


def _mask_undone(run: ShiftRun, name: str, m: np.ndarray) -> np.ndarray:
    """Rows of steps not done are not measurements, whatever a killed writer left there."""
    if name == "bw_gbps" or run.steps_done >= m.shape[0]:
        return m
    m[run.steps_done:] = -1 if m.dtype.kind == "i" else np.nan
    return m


@dataclass(frozen=True)
class CongestionRun:
    """A `congestion` run (results/SCHEMA.md): victims measure latency, ring bandwidth and
    allreduce alone (phase 0, `isolated`) and while the aggressors run each pattern (phases 1..Q).

    Impact factors are >= 1 when the victim got worse under load: loaded / isolated for latency
    and allreduce time, isolated / loaded for bandwidth (GPCNeT's definition)."""

    info: RunInfo
    victim_fraction: float
    placement: str
    seed: int
    aggressor_size_bytes: int
    lat_size_bytes: int
    bw_size_bytes: int
    patterns: tuple[str, ...]  # the run attribute: the patterns asked for, in order
    n_ranks: int
    role: np.ndarray  # int8 [N]: 0 idle, 1 victim, 2 aggressor
    victims: np.ndarray  # int32 [V], ring order; victim k's partner is victims[(k + 1) % V]
    phases: tuple[str, ...]  # [Q + 1]: "isolated", then each pattern run
    latency_ns: np.ndarray | None  # float64 [Q + 1, V, iters]; None when read with samples=False
    bw_gbps: np.ndarray | None  # float64 [Q + 1, V, bw_iters]
    allreduce_ns: np.ndarray | None  # float64 [Q + 1, iters]
    impact_latency_p50: np.ndarray  # float64 [Q, V]
    impact_latency_p99: np.ndarray  # float64 [Q, V]
    impact_bw_p50: np.ndarray  # float64 [Q, V]
    impact_allreduce_p50: np.ndarray  # float64 [Q]
    impact_allreduce_p99: np.ndarray  # float64 [Q]
    aggressor_gbps: np.ndarray  # float64 [Q, N], NaN for non-aggressors
    phase_counters: Mapping[str, "Counters"] = field(default_factory=dict)  # phase -> counters/<phase>
    phases_done: int = -1  # phases measured (attribute phases_done; files without it: every phase listed)

    @property
    def loaded_phases(self) -> tuple[str, ...]:
        """Every aggressor phase the file lays out (measured or not: see measured_patterns)."""
        return self.phases[1:]

    @property
    def measured_patterns(self) -> tuple[str, ...]:
        """The aggressor phases measured before the run ended."""
        return self.phases[1:max(1, self.phases_done)]

    @property
    def partners(self) -> np.ndarray:
        """int32 [V]: the ring partner of each victim."""
        return np.roll(self.victims, -1) if self.victims.size else self.victims

    @property
    def aggressors(self) -> np.ndarray:
        return np.flatnonzero(self.role == 2)

    def impact(self, metric: str) -> np.ndarray:
        """[Q, V] (victim metrics) or [Q] (allreduce): metric as in the dataset names,
        e.g. "latency_p99", "bw_p50", "allreduce_p50"."""
        return getattr(self, f"impact_{metric}")


# The per-victim impact factors of a congestion run, in the order reports show them.
VICTIM_IMPACTS: tuple[str, ...] = ("latency_p50", "latency_p99", "bw_p50")
ALLREDUCE_IMPACTS: tuple[str, ...] = ("allreduce_p50", "allreduce_p99")


@dataclass(frozen=True)
class OtherRun:
    """A run of a benchmark kind this reader does not know (kept so reports can list it)."""

    info: RunInfo


Run = Union[SweepRun, PairsRun, CollRun, ShiftRun, CongestionRun, OtherRun]


@dataclass(frozen=True)
class Topology:
    """The optional /topology group, as read: tables of columns (see layout.py for their use)."""

    attrs: Mapping[str, Any]
    tables: Mapping[str, Mapping[str, np.ndarray]]  # table -> column -> 1-D array (strings: object)

    def column(self, table: str, name: str) -> np.ndarray | None:
        return self.tables.get(table, {}).get(name)


@dataclass(frozen=True)
class RunFile:
    """One fabscope result file."""

    path: Path
    schema_version: int
    fabscope_version: str
    created_utc: str
    command_line: str
    suite_text: str
    n_ranks: int
    complete: bool
    hosts: tuple[Host, ...]
    runs: tuple[Run, ...]  # in the order of the command (group name order)
    attrs: Mapping[str, Any] = field(default_factory=dict, repr=False)  # every root attribute
    topology: Topology | None = None  # /topology, when the file has one
    config_problems: tuple[str, ...] = ()  # /hosts/config_problems: what `fabscope doctor` saw at start-up
    pma: PmaDeltas | None = None  # /pma, when the command ran with --pma

    @property
    def sweeps(self) -> tuple[SweepRun, ...]:
        return tuple(r for r in self.runs if isinstance(r, SweepRun))

    @property
    def pairs(self) -> tuple[PairsRun, ...]:
        return tuple(r for r in self.runs if isinstance(r, PairsRun))

    @property
    def colls(self) -> tuple[CollRun, ...]:
        return tuple(r for r in self.runs if isinstance(r, CollRun))

    @property
    def shifts(self) -> tuple[ShiftRun, ...]:
        return tuple(r for r in self.runs if isinstance(r, ShiftRun))

    @property
    def congestions(self) -> tuple[CongestionRun, ...]:
        return tuple(r for r in self.runs if isinstance(r, CongestionRun))

    def incomplete_reasons(self) -> list[str]:
        """Why the results are partial, one sentence each; empty when everything finished."""
        reasons: list[str] = []
        if not self.complete:
            reasons.append("the command did not finish (complete = 0): only what it wrote before it stopped is here")
        for run in self.runs:
            info = run.info
            if not info.complete:
                reasons.append(f"run {info.name!r} ({info.benchmark}) did not finish")
            if isinstance(run, PairsRun) and run.rounds_done < run.rounds_total:
                reasons.append(
                    f"run {info.name!r}: {run.rounds_done} of {run.rounds_total} rounds done, "
                    "pairs not measured are shown grey"
                )
            if isinstance(run, CollRun) and not info.complete:
                missing = [op for op in COLL_OPS if op not in run.ops]
                if missing:
                    reasons.append(f"run {info.name!r}: collectives not written: {', '.join(missing)}")
            if isinstance(run, ShiftRun) and run.steps_done < run.steps_total:
                reasons.append(f"run {info.name!r}: {run.steps_done} of {run.steps_total} steps done, "
                               "steps not measured are left out")
            if isinstance(run, CongestionRun):
                missing = [p for p in run.patterns if p not in run.measured_patterns]
                if missing:
                    reasons.append(f"run {info.name!r}: aggressor patterns not measured: {', '.join(missing)}")
        return reasons


def read_results(path: str | os.PathLike[str], *, samples: bool = True, pair_samples: bool = False) -> RunFile:
    """Read and validate a result file.

    samples: load the raw per-size samples of lat/bw/bibw runs (small).
    pair_samples: load pairs/pair_samples/* (large for big fabrics; validated either way).
    Raises ResultFileError for every problem with the file.
    """
    p = Path(path)
    _check_readable(p)
    try:
        handle = h5py.File(p, "r")
    except OSError as exc:
        hint = _LOCKED_HINT if "unable to lock" in str(exc).lower() else _DAMAGED_HINT
        raise ResultFileError(p, f"cannot be opened as HDF5 ({exc})", hint) from None
    reader = _Reader(p)
    with handle:
        try:
            return reader.read_file(handle, samples=samples, pair_samples=pair_samples)
        except ResultFileError:
            raise
        except (OSError, KeyError, ValueError, TypeError, UnicodeError) as exc:
            raise ResultFileError(p, f"cannot read {reader.where} ({exc})", _DAMAGED_HINT) from None


def check_results(path: str | os.PathLike[str]) -> RunFile:
    """Validate a file without loading raw samples (cheap, for large files)."""
    return read_results(path, samples=False, pair_samples=False)


def _check_readable(p: Path) -> None:
    if not p.exists():
        raise ResultFileError(p, "no such file", "check the path (fabscope writes results/fabscope-<time>.h5 by default)")
    if p.is_dir():
        raise ResultFileError(p, "is a directory, not a result file", "pass the .h5 file that fabscope --out wrote")
    try:
        with p.open("rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise ResultFileError(p, f"cannot be read ({exc.strerror})", "check the file's permissions") from None
    if len(head) == 0:
        raise ResultFileError(p, "is empty", _DAMAGED_HINT)
    if not h5py.is_hdf5(p):
        raise ResultFileError(
            p, "is not an HDF5 file (no HDF5 signature)", "pass the .h5 file that fabscope --out wrote"
        )


def _name(obj: h5py.HLObject) -> str:
    """An object's path for messages, the root spelled out."""
    return "the root group" if obj.name == "/" else obj.name


def _pair_metric(matrix_name: str) -> str:
    """The metric of a pairs matrix: "latency_ns_p50" -> "latency_ns", "bw_gbps" -> "bw_gbps"."""
    return "bw_gbps" if matrix_name.startswith("bw_gbps") else "latency_ns"


def _scalar(value: Any) -> Any:
    """An attribute as a plain Python value; 1-element arrays count as scalars."""
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(()).item()
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    return value


def _plain(value: Any) -> Any:
    value = _scalar(value)
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    return value


class _Reader:
    """Validating accessors; `where` names the object being read, for error messages."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = "the root group"

    def fail(self, problem: str, hint: str = _SCHEMA_HINT) -> NoReturn:
        raise ResultFileError(self.path, problem, hint)

    # --- attributes -------------------------------------------------------------------------
    def attr(self, obj: h5py.HLObject, name: str) -> Any:
        self.where = f"attribute {name!r} of {_name(obj)}"
        if name not in obj.attrs:
            self.fail(f"{_name(obj)} has no attribute {name!r}")
        return _scalar(obj.attrs[name])

    def attr_int(self, obj: h5py.HLObject, name: str) -> int:
        value = self.attr(obj, name)
        if not isinstance(value, int):
            self.fail(f"attribute {name!r} of {_name(obj)} should be an integer, found {value!r}")
        return value

    def attr_str(self, obj: h5py.HLObject, name: str) -> str:
        value = self.attr(obj, name)
        if not isinstance(value, str):
            self.fail(f"attribute {name!r} of {_name(obj)} should be a string, found {value!r}")
        return value

    def attr_flag(self, obj: h5py.HLObject, name: str) -> bool:
        value = self.attr_int(obj, name)
        if value not in (0, 1):
            self.fail(f"attribute {name!r} of {_name(obj)} should be 0 or 1, found {value}")
        return bool(value)

    def all_attrs(self, obj: h5py.HLObject) -> dict[str, Any]:
        self.where = f"the attributes of {_name(obj)}"
        return {k: _plain(v) for k, v in obj.attrs.items()}

    # --- groups and datasets ----------------------------------------------------------------
    def group(self, parent: h5py.Group, name: str) -> h5py.Group:
        self.where = f"{parent.name.rstrip('/')}/{name}"
        obj = parent.get(name)
        if obj is None:
            self.fail(f"{self.where} is missing")
        if not isinstance(obj, h5py.Group):
            self.fail(f"{self.where} should be a group")
        return obj

    def dataset(
        self,
        parent: h5py.Group,
        name: str,
        *,
        kind: str,
        shape: tuple[int | None, ...],
        units: str | None = None,
    ) -> h5py.Dataset:
        """A dataset with dtype kind 'f' (float), 'i' (integer) or 's' (string) and the given
        shape (None = any length); `units` is checked against the dataset's units attribute."""
        self.where = f"{parent.name.rstrip('/')}/{name}"
        ds = parent.get(name)
        if ds is None:
            self.fail(f"dataset {self.where} is missing")
        if not isinstance(ds, h5py.Dataset):
            self.fail(f"{self.where} should be a dataset")
        if kind == "s":
            ok = h5py.check_string_dtype(ds.dtype) is not None
        else:
            ok = ds.dtype.kind in ("iu" if kind == "i" else "f")
        if not ok:
            expected = {"s": "strings", "i": "integers", "f": "floating point numbers"}[kind]
            self.fail(f"dataset {self.where} should hold {expected}, found type {ds.dtype}")
        if len(ds.shape) != len(shape) or any(e is not None and e != a for e, a in zip(shape, ds.shape)):
            want = "[" + ", ".join("*" if e is None else str(e) for e in shape) + "]"
            self.fail(f"dataset {self.where} has shape {list(ds.shape)}, expected {want}")
        if units is not None:
            found = _scalar(ds.attrs["units"]) if "units" in ds.attrs else None
            if found is None:
                self.fail(f"dataset {self.where} has no 'units' attribute (expected {units!r})")
            if not isinstance(found, str) or found != units:  # an array of units is no units
                self.fail(f"dataset {self.where} has units {_plain(found)!r}, SCHEMA.md says {units!r}")
        return ds

    def floats(self, ds: h5py.Dataset) -> np.ndarray:
        self.where = ds.name
        return np.asarray(ds[()], dtype=np.float64)

    def ints(self, ds: h5py.Dataset, dtype: type = np.int64) -> np.ndarray:
        self.where = ds.name
        return np.asarray(ds[()], dtype=dtype)

    def strings(self, ds: h5py.Dataset) -> list[str]:
        self.where = ds.name
        return [str(s) for s in ds.asstr()[()].tolist()]

    # --- the file ---------------------------------------------------------------------------
    def read_file(self, f: h5py.File, *, samples: bool, pair_samples: bool) -> RunFile:
        if "schema_version" not in f.attrs:
            self.fail(
                "has no root attribute 'schema_version', so it is not a fabscope result file",
                "pass the .h5 file that fabscope --out wrote",
            )
        version = self.attr(f, "schema_version")
        if version not in SUPPORTED_SCHEMA_VERSIONS:
            self.fail(
                f"schema_version {version} is not supported (this tool reads "
                f"{', '.join(str(v) for v in SUPPORTED_SCHEMA_VERSIONS)})",
                "re-run with a matching fabscope, or use the fabscope-analyze of that version",
            )
        n_ranks = self.attr_int(f, "n_ranks")
        if n_ranks < 1:
            self.fail(f"root attribute 'n_ranks' is {n_ranks}, expected at least 1")
        hosts = self.read_hosts(self.group(f, "hosts"), n_ranks)
        runs_group = self.group(f, "runs")
        runs: list[Run] = []
        for name in sorted(runs_group):
            runs.append(self.read_run(self.group(runs_group, name), n_ranks, samples, pair_samples))
        topology = self.read_topology(f["topology"]) if "topology" in f else None
        return RunFile(
            path=self.path,
            schema_version=version,
            fabscope_version=self.attr_str(f, "fabscope_version"),
            created_utc=self.attr_str(f, "created_utc"),
            command_line=self.attr_str(f, "command_line"),
            suite_text=self.attr_str(f, "suite_text"),
            n_ranks=n_ranks,
            complete=self.attr_flag(f, "complete"),
            hosts=hosts,
            runs=tuple(runs),
            attrs=self.all_attrs(f),
            topology=topology,
            config_problems=tuple(self.strings(self.dataset(f["hosts"], "config_problems", kind="s", shape=(None,))))
            if "config_problems" in f["hosts"] else (),
            pma=self.read_pma(self.group(f, "pma")) if "pma" in f else None,
        )

    def read_pma(self, g: h5py.Group) -> PmaDeltas:
        names = tuple(self.strings(self.dataset(g, "names", kind="s", shape=(None,))))
        link = self.ints(self.dataset(g, "link", kind="i", shape=(None,)))
        e = link.size
        delta = self.ints(self.dataset(g, "delta", kind="i", shape=(e, len(names))))
        if delta.size and delta.min() < 0:
            self.fail(f"{g.name}/delta holds a negative count; counter deltas are after - before >= 0")
        return PmaDeltas(
            names=names, link=link, side=self.ints(self.dataset(g, "side", kind="i", shape=(e,))),
            end=tuple(self.strings(self.dataset(g, "end", kind="s", shape=(e,)))),
            peer=tuple(self.strings(self.dataset(g, "peer", kind="s", shape=(e,)))),
            host=tuple(self.strings(self.dataset(g, "host", kind="s", shape=(e,)))),
            ok=self.ints(self.dataset(g, "ok", kind="i", shape=(e,))).astype(bool), delta=delta,
            ok_ext=(self.ints(self.dataset(g, "ok_ext", kind="i", shape=(e,))).astype(bool) if "ok_ext" in g
                    else np.zeros(e, dtype=bool)))

    def read_hosts(self, g: h5py.Group, n: int) -> tuple[Host, ...]:
        rank = self.ints(self.dataset(g, "rank", kind="i", shape=(n,)))
        if not np.array_equal(rank, np.arange(n)):
            self.fail(f"{g.name}/rank should be 0..{n - 1} in order (row i = rank i)")
        columns = {name: self.strings(self.dataset(g, name, kind="s", shape=(n,))) for name in HOST_FIELDS}
        config = self.read_host_config(g, n)
        return tuple(
            Host(
                rank=i,
                hostname=columns["hostname"][i],
                kernel=columns["kernel"][i],
                cpu_model=columns["cpu_model"][i],
                mpi_library=columns["mpi_library"][i],
                rdma_core_version=columns["rdma_core_version"][i],
                rdma_devices=tuple(d.strip() for d in columns["rdma_devices"][i].split(";") if d.strip()),
                **config[i],
            )
            for i in range(n)
        )

    def read_host_config(self, g: h5py.Group, n: int) -> list[dict[str, Any]]:
        """Per rank, the configuration evidence of /hosts (ports, NUMA nodes, memlock) as Host
        fields; empty dicts for files written before it existed (no /hosts/ports)."""
        if "ports" not in g:
            return [{} for _ in range(n)]
        pg = self.group(g, "ports")
        rank = self.ints(self.dataset(pg, "rank", kind="i", shape=(None,)))
        m = rank.size
        if m and (rank.min() < 0 or rank.max() >= n):
            self.fail(f"{pg.name}/rank holds a rank outside 0..{n - 1}")
        cols: dict[str, Any] = {"rank": rank}
        for name in PORT_STRING_FIELDS:
            cols[name] = self.strings(self.dataset(pg, name, kind="s", shape=(m,)))
        for name in PORT_INT_FIELDS[1:]:
            cols[name] = self.ints(self.dataset(pg, name, kind="i", shape=(m,)))
        for name in PORT_FLOAT_FIELDS:
            cols[name] = np.asarray(self.dataset(pg, name, kind="f", shape=(m,))[()], dtype=np.float64)
        nodes = self.strings(self.dataset(g, "cpu_numa_nodes", kind="s", shape=(n,)))
        memlock = self.ints(self.dataset(g, "memlock_bytes", kind="i", shape=(n,)))
        cap = self.ints(self.dataset(g, "cap_ipc_lock", kind="i", shape=(n,)))
        ports: list[list[PortConfig]] = [[] for _ in range(n)]
        for k in range(m):
            ports[int(rank[k])].append(PortConfig(
                **{f: str(cols[f][k]) for f in PORT_STRING_FIELDS},
                **{f: int(cols[f][k]) for f in PORT_INT_FIELDS[1:]},
                **{f: float(cols[f][k]) for f in PORT_FLOAT_FIELDS},
            ))
        out = []
        for i in range(n):
            try:
                numa = tuple(int(x) for x in nodes[i].split(",") if x.strip())
            except ValueError:
                self.fail(f"{g.name}/cpu_numa_nodes[{i}] is {nodes[i]!r}, expected NUMA node numbers like '0,1'")
            out.append({"ports": tuple(ports[i]), "cpu_numa_nodes": numa, "memlock_bytes": int(memlock[i]),
                        "cap_ipc_lock": bool(cap[i])})
        return out

    def read_run_info(self, g: h5py.Group, n_ranks: int) -> RunInfo:
        wall = None
        if "wall_seconds" in g.attrs:
            wall = self.attr(g, "wall_seconds")
            if not isinstance(wall, (int, float)):
                self.fail(f"attribute 'wall_seconds' of {g.name} should be a number, found {wall!r}")
            wall = float(wall)
        counters = None
        # congestion runs keep counters per phase (counters/<phase>/...), read with the run
        if "counters" in g and self.attr(g, "benchmark") != CONGESTION_BENCHMARK:
            counters = self.read_counters(g["counters"], n_ranks)
        return RunInfo(
            group=g.name.rsplit("/", 1)[-1],
            benchmark=self.attr_str(g, "benchmark"),
            name=self.attr_str(g, "name"),
            transport=self.attr_str(g, "transport"),
            label=self.attr_str(g, "label"),
            iters=self.attr_int(g, "iters"),
            warmup=self.attr_int(g, "warmup"),
            started_utc=self.attr_str(g, "started_utc"),
            finished_utc=self.attr_str(g, "finished_utc"),
            complete=self.attr_flag(g, "complete"),
            attrs=self.all_attrs(g),
            wall_seconds=wall,
            counters=counters,
        )

    def read_counters(self, obj: h5py.HLObject, n: int) -> Counters:
        if not isinstance(obj, h5py.Group):
            self.fail(f"{obj.name} should be a group")
        names = self.strings(self.dataset(obj, "names", kind="s", shape=(None,)))
        delta = self.ints(self.dataset(obj, "delta", kind="i", shape=(n, len(names))))
        return Counters(tuple(names), delta)

    def read_topology(self, obj: h5py.HLObject) -> Topology:
        """/topology as tables of equal-length columns; what they mean is layout.py's business."""
        self.where = "/topology"
        if not isinstance(obj, h5py.Group):
            self.fail("/topology should be a group")
        tables: dict[str, dict[str, np.ndarray]] = {}
        for tname, table in obj.items():
            self.where = table.name
            if not isinstance(table, h5py.Group):
                continue  # a per-fabric dataset we do not use
            columns: dict[str, np.ndarray] = {}
            for cname, ds in table.items():
                if not isinstance(ds, h5py.Dataset) or len(ds.shape) != 1:
                    self.fail(f"{ds.name} should be a 1-D dataset (a column of table {table.name})")
                if h5py.check_string_dtype(ds.dtype) is not None or ds.dtype.kind == "S":
                    self.where = ds.name
                    columns[cname] = np.array([str(x) for x in ds.asstr()[()].tolist()], dtype=object)
                elif ds.dtype.kind in "iuf":
                    columns[cname] = np.asarray(ds[()])
                else:
                    self.fail(f"dataset {ds.name} should hold numbers or strings, found type {ds.dtype}")
            lengths = {c.shape[0] for c in columns.values()}
            if len(lengths) > 1:
                self.fail(f"the columns of {table.name} differ in length ({sorted(lengths)})")
            tables[tname] = columns
        return Topology(attrs=self.all_attrs(obj), tables=tables)

    def read_run(self, g: h5py.Group, n_ranks: int, samples: bool, pair_samples: bool) -> Run:
        info = self.read_run_info(g, n_ranks)
        if info.benchmark in SWEEP_METRICS:
            return self.read_sweep(g, info, samples)
        if info.benchmark == PAIRS_BENCHMARK:
            return self.read_pairs(g, info, n_ranks, pair_samples)
        if info.benchmark == COLL_BENCHMARK:
            return self.read_coll(g, info, n_ranks, samples)
        if info.benchmark == SHIFT_BENCHMARK:
            return self.read_shift(g, info, n_ranks)
        if info.benchmark == CONGESTION_BENCHMARK:
            return self.read_congestion(g, info, n_ranks, samples)
        return OtherRun(info)

    def read_sweep(self, g: h5py.Group, info: RunInfo, load_samples: bool) -> SweepRun:
        metric = SWEEP_METRICS[info.benchmark]
        size_ds = self.dataset(g, "size_bytes", kind="i", shape=(None,), units=UNITS["size_bytes"])
        sizes = self.ints(size_ds)
        if sizes.size > 1 and not np.all(np.diff(sizes) > 0):
            self.fail(f"{size_ds.name} should be strictly ascending, found {sizes.tolist()}")
        n_sizes = int(sizes.size)
        sample_ds = self.dataset(
            self.group(g, "samples"), metric, kind="f", shape=(n_sizes, info.iters), units=UNITS[metric]
        )
        summary_group = self.group(g, "summary")
        wanted = {f"{metric}_{s}": UNITS[metric] for s in STAT_NAMES}
        window = None
        if info.benchmark in ("bw", "bibw"):
            wanted[f"{metric}_overall"] = UNITS[metric]
            wanted.update({f"msg_rate_mpps_{s}": UNITS["msg_rate_mpps"] for s in STAT_NAMES})
            window = self.attr_int(g, "window")
        summary = {
            key: self.floats(self.dataset(summary_group, key, kind="f", shape=(n_sizes,), units=units))
            for key, units in wanted.items()
        }
        return SweepRun(
            info=info,
            metric=metric,
            units=UNITS[metric],
            size_bytes=sizes,
            samples=self.floats(sample_ds) if load_samples else None,
            summary=summary,
            window=window,
        )

    def read_pairs(self, g: h5py.Group, info: RunInfo, n: int, load_samples: bool) -> PairsRun:
        ints = {
            name: self.attr_int(g, name)
            for name in (
                "lat_size_bytes",
                "bw_size_bytes",
                "lat_iters",
                "bw_windows",
                "window",
                "rounds_total",
                "rounds_done",
            )
        }
        if "pairs" in g:  # schema version 2: the row table
            return self.read_pairs_rows(g, info, n, load_samples, ints)
        for name in PAIR_MATRICES:
            self.dataset(g, name, kind="f", shape=(n, n), units=UNITS[_pair_metric(name)])
        status_ds = self.dataset(g, "status", kind="i", shape=(n, n))
        names_attr = self.attr_str(status_ds, "status_names")
        status_names = tuple(s.strip() for s in names_attr.split(","))
        self.dataset(g, "round", kind="i", shape=(n, n))
        round_seconds = None
        if "round_seconds" in g:
            round_seconds = self.floats(self.dataset(g, "round_seconds", kind="f", shape=(ints["rounds_total"],),
                                                     units="s"))

        ps = self.group(g, "pair_samples")
        pair_ds = self.dataset(ps, "pair", kind="i", shape=(None, 2))
        n_pairs = int(pair_ds.shape[0])
        datasets = {
            "round": self.dataset(ps, "round", kind="i", shape=(n_pairs,)),
            "latency_ns": self.dataset(ps, "latency_ns", kind="f", shape=(n_pairs, ints["lat_iters"]),
                                       units=UNITS["latency_ns"]),
            "bw_gbps_fwd": self.dataset(ps, "bw_gbps_fwd", kind="f", shape=(n_pairs, ints["bw_windows"]),
                                        units=UNITS["bw_gbps"]),
            "bw_gbps_rev": self.dataset(ps, "bw_gbps_rev", kind="f", shape=(n_pairs, ints["bw_windows"]),
                                        units=UNITS["bw_gbps"]),
        }
        samples = None
        if load_samples:
            samples = PairSamples(
                pair=self.ints(pair_ds, np.int32),
                round=self.ints(datasets["round"], np.int32),
                latency_ns=self.floats(datasets["latency_ns"]),
                bw_gbps_fwd=self.floats(datasets["bw_gbps_fwd"]),
                bw_gbps_rev=self.floats(datasets["bw_gbps_rev"]),
            )
        errors = self.read_pair_errors(g["errors"]) if "errors" in g else None
        source = _MatrixSource(self.path, g.name, n)
        run = PairsRun(
            info=info,
            **ints,
            schedule=self.attr_str(g, "schedule"),
            n_ranks=n,
            status_names=status_names,
            n_pair_samples=n_pairs,
            pair_samples=samples,
            round_seconds=round_seconds,
            errors=errors,
            _source=source,
        )
        if n <= LARGE_MATRIX_RANKS:  # small: read (and so check) everything now
            for name in (*PAIR_MATRICES, "status", "round"):
                self.where = f"{g.name}/{name}"
                ds = g[name]
                dtype = {"status": np.int8, "round": np.int32}.get(name, np.float64)
                run._cache[name] = np.asarray(ds[()], dtype=dtype)
            for name in PAIR_MATRICES:
                check_pair_values(self.path, f"{g.name}/{name}", run._cache[name], run._cache["status"],
                                  run.status_code("ok"))
        return run

    def read_pairs_rows(self, g: h5py.Group, info: RunInfo, n: int, load_samples: bool,
                        ints: dict[str, int]) -> PairsRun:
        """A schema-version-2 pairs run: the row table pairs/*, pair_samples/* (kept raw samples),
        errors/*; rows past rows_done (a round cut short) are not read."""
        rows_g = self.group(g, "pairs")
        counts = {name: self.attr_int(g, name) for name in ("rows_done", "samples_done", "errors_done")}
        for name, value in counts.items():
            if value < 0:
                self.fail(f"attribute {name} of {g.name} is {value}, expected at least 0")
        codes = self.attr_int(g, "bw_codes")
        if self.attr_int(g, "lat_quantiles") != LAT_QUANTILES:
            self.fail(f"attribute lat_quantiles of {g.name} should be {LAT_QUANTILES}")
        pair_ds = self.dataset(rows_g, "pair", kind="i", shape=(None, 2))
        total = int(pair_ds.shape[0])
        rows = counts["rows_done"]
        if rows > total:
            self.fail(f"{g.name} says rows_done {rows} but {pair_ds.name} has {total} rows", _DAMAGED_HINT)
        for name in ("round", "repeat", "status"):
            ds = self.dataset(rows_g, name, kind="i", shape=(None,))
            if ds.shape[0] < rows:
                self.fail(f"dataset {ds.name} has {ds.shape[0]} rows, rows_done says {rows}", _DAMAGED_HINT)
        for name in PAIR_ROW_FLOATS:
            ds = self.dataset(rows_g, name, kind="f", shape=(None,), units=UNITS[_pair_metric(name)])
            if ds.shape[0] < rows:
                self.fail(f"dataset {ds.name} has {ds.shape[0]} rows, rows_done says {rows}", _DAMAGED_HINT)
        for name, width in (("latency_q", LAT_QUANTILES), ("bw_fwd_q", codes), ("bw_rev_q", codes)):
            ds = self.dataset(rows_g, name, kind="i", shape=(None, width))
            if ds.shape[0] < rows:
                self.fail(f"dataset {ds.name} has {ds.shape[0]} rows, rows_done says {rows}", _DAMAGED_HINT)
        # A writer that died between its last attributes may have counted rows of a round it did
        # not finish: those rows have round >= rounds_done (rounds complete in order).
        if rows:
            tail0 = max(0, rows - max(1, n))
            self.where = f"{rows_g.name}/round"
            tail = np.asarray(rows_g["round"][tail0:rows])
            rows = tail0 + int(np.count_nonzero(tail < ints["rounds_done"])) if (tail >= ints["rounds_done"]).any() \
                else rows
        status_names = tuple(s.strip() for s in self.attr_str(rows_g["status"], "status_names").split(","))
        round_seconds = None
        if "round_seconds" in g:
            round_seconds = self.floats(self.dataset(g, "round_seconds", kind="f", shape=(ints["rounds_total"],),
                                                     units="s"))
        errors = None
        if counts["errors_done"] > 0:
            e = self.group(g, "errors")
            f_n = counts["errors_done"]
            self.where = e.name
            errors = PairErrors(
                pair=np.asarray(self.dataset(e, "pair", kind="i", shape=(None, 2))[:f_n], dtype=np.int32),
                round=np.asarray(self.dataset(e, "round", kind="i", shape=(None,))[:f_n], dtype=np.int32),
                status=np.asarray(self.dataset(e, "status", kind="i", shape=(None,))[:f_n], dtype=np.int8),
                message=tuple(str(s) for s in self.dataset(e, "message", kind="s", shape=(None,)).asstr()[:f_n]),
            )
        repeats = info.attrs.get("repeats")
        repeated = int(repeats) > 1 if isinstance(repeats, (int, np.integer)) else True
        source = _RowSource(self.path, g.name, n, rows, ints["bw_windows"], repeated)
        samples = source.sample_rows(None) if load_samples else None
        keep = self.attr_str(g, "keep_samples") if "keep_samples" in g.attrs else "all"
        summary = self.read_run_summary(g, rows)
        run = PairsRun(
            info=info,
            **ints,
            schedule=self.attr_str(g, "schedule"),
            n_ranks=n,
            status_names=status_names,
            n_pair_samples=rows,
            pair_samples=samples,
            round_seconds=round_seconds,
            errors=errors,
            layout="rows",
            keep_samples=keep,
            n_raw_samples=counts["samples_done"],
            summary=summary,
            _source=source,
        )
        if n <= LARGE_MATRIX_RANKS:  # small: build (and so check) every view now
            names = (*PAIR_MATRICES, "status", "round")
            self.where = f"{g.name}/pairs"
            if source.one_pass():  # all from one read of the rows
                run._cache.update(source.matrices(names))
            else:
                for name in names:
                    run._cache[name] = source.matrix(name)
            for name in PAIR_MATRICES:
                check_pair_values(self.path, f"{g.name}/pairs ({name})", run._cache[name], run._cache["status"],
                                  run.status_code("ok"))
        return run

    def read_run_summary(self, g: h5py.Group, rows: int) -> RunSummary | None:
        """<run>/summary when present and counting exactly `rows` rows (a writer killed between the
        summary and the round's counts leaves one that does not: the reader then uses the rows)."""
        if "summary" not in g:
            return None
        sg = self.group(g, "summary")
        if self.attr_int(sg, "rows") != rows:
            return None
        lat = self.dataset(sg, "latency_ns_p50_hist", kind="i", shape=(None,))
        bw = self.dataset(sg, "bw_gbps_hist", kind="i", shape=(lat.shape[0],))
        bpo = self.attr_int(lat, "bins_per_octave")
        if bpo <= 0 or self.attr_int(bw, "bins_per_octave") != bpo:
            self.fail(f"attribute bins_per_octave of {lat.name} and {bw.name} should be the same positive number")
        lo = {ds.name: self.attr_float(ds, "lo") for ds in (lat, bw)}
        if not all(math.isfinite(v) and v > 0 for v in lo.values()):
            self.fail(f"attribute lo of {lat.name} / {bw.name} should be a positive number")
        hists = [self.ints(ds) for ds in (lat, bw)]
        status_rows = self.ints(self.dataset(sg, "status_rows", kind="i", shape=(None,)))
        if any((h < 0).any() for h in (*hists, status_rows)) or int(status_rows.sum()) != rows:
            self.fail(f"{sg.name} has negative counts or rows per status that do not add up to its rows",
                      _DAMAGED_HINT)
        ext = {name: self.attr_float(sg, name) for name in ("latency_ns_p50_min", "latency_ns_p50_max",
                                                              "bw_gbps_min", "bw_gbps_max")}
        return RunSummary(rows=rows, status_rows=status_rows, latency_ns_p50_hist=hists[0], bw_gbps_hist=hists[1],
                          latency_lo=lo[lat.name], bw_lo=lo[bw.name], bins_per_octave=bpo, **ext)

    def read_pair_errors(self, obj: h5py.HLObject) -> PairErrors:
        if not isinstance(obj, h5py.Group):
            self.fail(f"{obj.name} should be a group")
        pair = self.ints(self.dataset(obj, "pair", kind="i", shape=(None, 2)), np.int32)
        f = pair.shape[0]
        return PairErrors(
            pair=pair,
            round=self.ints(self.dataset(obj, "round", kind="i", shape=(f,)), np.int32),
            status=self.ints(self.dataset(obj, "status", kind="i", shape=(f,)), np.int8),
            message=tuple(self.strings(self.dataset(obj, "message", kind="s", shape=(f,)))),
        )

    def read_coll(self, g: h5py.Group, info: RunInfo, n: int, load_samples: bool) -> CollRun:
        ints = {name: self.attr_int(g, name) for name in ("ranks_per_node", "n_nodes")}
        flags = {name: self.attr_flag(g, name) for name in ("nonblocking", "check")}
        strs = {name: self.attr_str(g, name) for name in ("dtype", "reduction", "node_by")}
        counts_ds = self.dataset(g, "node_counts", kind="i", shape=(None,), units="nodes")
        node_counts = self.ints(counts_ds)
        n_groups = int(node_counts.size)
        if n_groups > 1 and not np.all(np.diff(node_counts) > 0):
            self.fail(f"{counts_ds.name} should be strictly ascending, found {node_counts.tolist()}")
        group_size = self.ints(self.dataset(g, "group_size_ranks", kind="i", shape=(n_groups,), units="ranks"))
        group_ranks = self.ints(self.dataset(g, "group_ranks", kind="i", shape=(n_groups, n)))
        node_of_rank = self.ints(self.dataset(g, "node_of_rank", kind="i", shape=(n,)))
        ops: dict[str, CollOp] = {}
        for op in COLL_OPS:
            if op in g:
                ops[op] = self.read_coll_op(self.group(g, op), op, info, n_groups, flags["check"], load_samples)
        return CollRun(
            info=info, **strs, **ints, **flags, node_counts=node_counts, group_size_ranks=group_size,
            group_ranks=group_ranks, node_of_rank=node_of_rank, ops=ops,
        )

    def read_coll_op(self, g: h5py.Group, op: str, info: RunInfo, n_groups: int, check: bool,
                     load_samples: bool) -> CollOp:
        size_ds = self.dataset(g, "size_bytes", kind="i", shape=(None,), units="bytes")
        sizes = self.ints(size_ds)
        if sizes.size > 1 and not np.all(np.diff(sizes) > 0):
            self.fail(f"{size_ds.name} should be strictly ascending, found {sizes.tolist()}")
        shape = (n_groups, int(sizes.size))
        moved = self.ints(self.dataset(g, "bytes", kind="i", shape=shape, units="bytes"))
        sample_ds = self.dataset(self.group(g, "samples"), "time_ns", kind="f", shape=(*shape, info.iters),
                                 units="ns")
        summary_group = self.group(g, "summary")
        wanted = {f"time_ns_{s}": "ns" for s in STAT_NAMES}
        if op != "barrier":
            wanted.update({k: UNITS[k] for k in ("algbw_gbps", "busbw_gbps", "scaling_efficiency")})
        summary = {key: self.floats(self.dataset(summary_group, key, kind="f", shape=shape, units=units))
                   for key, units in wanted.items()}
        status_ds = self.dataset(g, "status", kind="i", shape=shape)
        names = (tuple(x.strip() for x in self.attr_str(status_ds, "status_names").split(","))
                 if "status_names" in status_ds.attrs else COLL_STATUS_NAMES_DEFAULT)
        check_errors = None
        if check:
            check_errors = self.ints(self.dataset(g, "check_errors", kind="i", shape=shape))
        return CollOp(
            name=op, size_bytes=sizes, bytes=moved,
            samples=self.floats(sample_ds) if load_samples else None,
            summary=summary, status=self.ints(status_ds), status_names=names, check_errors=check_errors,
        )

    # --- runs under load (results/SCHEMA.md) ---------------------------------------------
    def attr_float(self, obj: h5py.HLObject, name: str) -> float:
        value = self.attr(obj, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(f"attribute {name!r} of {_name(obj)} should be a number, found {value!r}")
        return float(value)

    def read_shift(self, g: h5py.Group, info: RunInfo, n: int) -> ShiftRun:
        ints = {name: self.attr_int(g, name) for name in ("size_bytes", "window", "seed", "steps_total", "steps_done")}
        total, done = ints["steps_total"], ints["steps_done"]
        if total < 0 or not 0 <= done <= total:
            self.fail(f"attribute 'steps_done' of {g.name} is {done}, expected 0..steps_total ({total})")
        pattern = self.attr_str(g, "pattern")
        rate = self.attr_float(g, "link_rate_gbps")
        partner_ds = self.dataset(g, "partner_to", kind="i", shape=(None, n))
        s = int(partner_ds.shape[0])
        if not done <= s <= total:
            self.fail(f"dataset {partner_ds.name} has {s} steps (rows), expected between steps_done ({done}) "
                      f"and steps_total ({total})")
        self.dataset(g, "flow_gbps", kind="f", shape=(s, n), units="Gb/s")
        self.dataset(g, "bw_gbps", kind="f", shape=(n, n), units="Gb/s")
        per_step = {name: self.floats(self.dataset(g, name, kind="f", shape=(s,), units=units))
                    for name, units in (("step_aggregate_gbps", "Gb/s"), ("step_effective_pct", "%"),
                                        ("step_seconds", "s"))}
        for values in per_step.values():
            values[done:] = np.nan
        has_samples = "flow_samples" in g
        if has_samples:
            self.dataset(g, "flow_samples", kind="f", shape=(s, n, info.iters), units="Gb/s")
        errors = self.read_flow_errors(self.group(g, "errors"), n) if "errors" in g else None
        run = ShiftRun(
            info=info, pattern=pattern, **ints, link_rate_gbps=rate, n_ranks=n, n_steps=s, **per_step,
            has_flow_samples=has_samples, errors=errors, _source=_LoadSource(self.path, g.name, n),
        )
        if n <= LARGE_MATRIX_RANKS:  # small: read (and so check) everything now
            for name, dtype in (("partner_to", np.int32), ("flow_gbps", np.float64), ("bw_gbps", np.float64)):
                self.where = f"{g.name}/{name}"
                run._cache[name] = _mask_undone(run, name, np.asarray(g[name][()], dtype=dtype))
            _check_partners(self.path, f"{g.name}/partner_to", run._cache["partner_to"], n)
        return run

    def read_flow_errors(self, g: h5py.Group, n: int) -> FlowErrors:
        step = self.ints(self.dataset(g, "step", kind="i", shape=(None,)))
        f = int(step.size)
        cols = {name: self.ints(self.dataset(g, name, kind="i", shape=(f,))) for name in ("rank", "peer", "status")}
        if f and (min(cols["rank"].min(), cols["peer"].min()) < 0 or max(cols["rank"].max(), cols["peer"].max()) >= n):
            self.fail(f"{g.name}/rank and peer should hold ranks 0..{n - 1}")
        return FlowErrors(step=step, **cols, message=tuple(self.strings(self.dataset(g, "message", kind="s", shape=(f,)))))

    def read_congestion(self, g: h5py.Group, info: RunInfo, n: int, load_samples: bool) -> CongestionRun:
        ints = {name: self.attr_int(g, name)
                for name in ("seed", "aggressor_size_bytes", "lat_size_bytes", "bw_size_bytes")}
        fraction = self.attr_float(g, "victim_fraction")
        placement = self.attr_str(g, "placement")
        patterns = tuple(p.strip() for p in self.attr_str(g, "patterns").split(",") if p.strip())
        role_ds = self.dataset(g, "role", kind="i", shape=(n,))
        role = self.ints(role_ds, np.int8)
        if role.size and (role.min() < 0 or role.max() > 2):
            self.fail(f"dataset {role_ds.name} should hold 0 (idle), 1 (victim) or 2 (aggressor), "
                      f"found {sorted(set(role.tolist()) - {0, 1, 2})}")
        victims_ds = self.dataset(g, "victims", kind="i", shape=(None,))
        victims = self.ints(victims_ds, np.int32)
        if victims.size and (victims.min() < 0 or victims.max() >= n):
            self.fail(f"dataset {victims_ds.name} holds ranks outside 0..{n - 1}")
        if np.unique(victims).size != victims.size or not np.array_equal(np.sort(victims), np.flatnonzero(role == 1)):
            self.fail(f"dataset {victims_ds.name} should list every rank whose role is 1 (victim) once")
        phases_ds = self.dataset(g, "phases", kind="s", shape=(None,))
        phases = tuple(self.strings(phases_ds))
        if not phases or phases[0] != ISOLATED_PHASE:
            self.fail(f"dataset {phases_ds.name} should start with {ISOLATED_PHASE!r}, found {list(phases[:1])}")
        unknown = [p for p in phases[1:] if p not in patterns]
        if unknown:
            self.fail(f"dataset {phases_ds.name} names phases {unknown} that the run attribute 'patterns' "
                      f"({', '.join(patterns)}) does not")
        p, v, q = len(phases), int(victims.size), len(phases) - 1
        done = self.attr_int(g, "phases_done") if "phases_done" in g.attrs else p
        if not 0 <= done <= p:
            self.fail(f"attribute 'phases_done' of {g.name} is {done}, expected 0..{p} (the phases listed)")
        lat_ds = self.dataset(g, "latency_ns", kind="f", shape=(p, v, info.iters), units="ns")
        bw_ds = self.dataset(g, "bw_gbps", kind="f", shape=(p, v, None), units="Gb/s")
        ar_ds = self.dataset(g, "allreduce_ns", kind="f", shape=(p, info.iters), units="ns")
        impacts = {f"impact_{m}": self.floats(self.dataset(g, f"impact_{m}", kind="f", shape=(q, v), units="-"))
                   for m in VICTIM_IMPACTS}
        impacts.update({f"impact_{m}": self.floats(self.dataset(g, f"impact_{m}", kind="f", shape=(q,), units="-"))
                        for m in ALLREDUCE_IMPACTS})
        aggressor = self.floats(self.dataset(g, "aggressor_gbps", kind="f", shape=(q, n), units="Gb/s"))
        phase_counters: dict[str, Counters] = {}
        if "counters" in g:
            cg = self.group(g, "counters")
            for phase in phases:
                if phase in cg:
                    phase_counters[phase] = self.read_counters(cg[phase], n)
        samples = {"latency_ns": self.floats(lat_ds) if load_samples else None,
                   "bw_gbps": self.floats(bw_ds) if load_samples else None,
                   "allreduce_ns": self.floats(ar_ds) if load_samples else None}
        # phases not done are not measurements, whatever a killed writer left in their rows
        for x in samples.values():
            if x is not None:
                x[done:] = np.nan
        for x in (*impacts.values(), aggressor):
            x[max(0, done - 1):] = np.nan
        return CongestionRun(
            info=info, victim_fraction=fraction, placement=placement, **ints, patterns=patterns, n_ranks=n,
            role=role, victims=victims, phases=phases, **samples,
            **impacts, aggressor_gbps=aggressor, phase_counters=phase_counters, phases_done=done,
        )


def _check_partners(path: Path, where: str, partners: np.ndarray, n: int) -> None:
    if partners.size and (partners.min() < -1 or partners.max() >= n):
        raise ResultFileError(path, f"dataset {where} holds ranks outside -1..{n - 1}")
