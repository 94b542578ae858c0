"""Reader and validator of fabscope result files, schema version 1 (results/SCHEMA.md).

`read_results(path)` checks a file against the schema and returns plain dataclasses holding numpy
arrays; nothing else in this package opens HDF5. Every problem with the file (missing, not HDF5,
truncated, other schema version, missing or malformed group, dataset or attribute) raises
`ResultFileError`, whose one-line message names the file, what is wrong and how to fix it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, NoReturn, Union

import h5py
import numpy as np

from fabscope_analyze.stats import STAT_NAMES

SCHEMA_VERSION = 1

# The metric of the raw samples of each size-sweep benchmark.
SWEEP_METRICS: dict[str, str] = {"lat": "latency_ns", "bw": "bw_gbps", "bibw": "bw_gbps"}
PAIRS_BENCHMARK = "pairs"
UNITS: dict[str, str] = {
    "latency_ns": "ns",
    "bw_gbps": "Gb/s",
    "msg_rate_mpps": "Mpps",
    "size_bytes": "bytes",
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

    def __str__(self) -> str:
        text = f"{self.path}: {self.problem}" + (f"; {self.hint}" if self.hint else "")
        return " ".join(text.split())


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
class PairsRun:
    """A `pairs` run: every unordered pair of ranks, as [N, N] matrices."""

    info: RunInfo
    lat_size_bytes: int
    bw_size_bytes: int
    lat_iters: int
    bw_windows: int
    window: int
    schedule: str
    rounds_total: int
    rounds_done: int
    latency_ns_min: np.ndarray  # float64 [N, N], symmetric, NaN = not measured
    latency_ns_p50: np.ndarray
    latency_ns_p99: np.ndarray
    bw_gbps: np.ndarray  # float64 [N, N], [i, j] = i sending to j
    status: np.ndarray  # int8 [N, N]
    status_names: tuple[str, ...]  # status_names[code]
    round: np.ndarray  # int32 [N, N], -1 = not run
    n_pair_samples: int  # rows P of pair_samples/*
    pair_samples: PairSamples | None  # None unless read with pair_samples=True

    @property
    def n_ranks(self) -> int:
        return int(self.status.shape[0])

    def status_name(self, code: int) -> str:
        return self.status_names[code] if 0 <= code < len(self.status_names) else f"status {code}"

    def status_counts(self) -> dict[str, int]:
        """How many unordered pairs (i < j) have each status, by name; zero counts omitted."""
        upper = self.status[np.triu_indices(self.n_ranks, k=1)]
        codes, counts = np.unique(upper, return_counts=True)
        return {self.status_name(int(c)): int(n) for c, n in zip(codes, counts)}


@dataclass(frozen=True)
class OtherRun:
    """A run of a benchmark kind this reader does not know (kept so reports can list it)."""

    info: RunInfo


Run = Union[SweepRun, PairsRun, OtherRun]


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

    @property
    def sweeps(self) -> tuple[SweepRun, ...]:
        return tuple(r for r in self.runs if isinstance(r, SweepRun))

    @property
    def pairs(self) -> tuple[PairsRun, ...]:
        return tuple(r for r in self.runs if isinstance(r, PairsRun))

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
            if found != units:
                self.fail(f"dataset {self.where} has units {found!r}, SCHEMA.md says {units!r}")
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
        if version != SCHEMA_VERSION:
            self.fail(
                f"schema_version {version} is not supported (this tool reads {SCHEMA_VERSION})",
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
        )

    def read_hosts(self, g: h5py.Group, n: int) -> tuple[Host, ...]:
        rank = self.ints(self.dataset(g, "rank", kind="i", shape=(n,)))
        if not np.array_equal(rank, np.arange(n)):
            self.fail(f"{g.name}/rank should be 0..{n - 1} in order (row i = rank i)")
        columns = {name: self.strings(self.dataset(g, name, kind="s", shape=(n,))) for name in HOST_FIELDS}
        return tuple(
            Host(
                rank=i,
                hostname=columns["hostname"][i],
                kernel=columns["kernel"][i],
                cpu_model=columns["cpu_model"][i],
                mpi_library=columns["mpi_library"][i],
                rdma_core_version=columns["rdma_core_version"][i],
                rdma_devices=tuple(d.strip() for d in columns["rdma_devices"][i].split(";") if d.strip()),
            )
            for i in range(n)
        )

    def read_run_info(self, g: h5py.Group) -> RunInfo:
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
        )

    def read_run(self, g: h5py.Group, n_ranks: int, samples: bool, pair_samples: bool) -> Run:
        info = self.read_run_info(g)
        if info.benchmark in SWEEP_METRICS:
            return self.read_sweep(g, info, samples)
        if info.benchmark == PAIRS_BENCHMARK:
            return self.read_pairs(g, info, n_ranks, pair_samples)
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
        matrices = {
            name: self.floats(self.dataset(g, name, kind="f", shape=(n, n), units=UNITS[_pair_metric(name)]))
            for name in PAIR_MATRICES
        }
        status_ds = self.dataset(g, "status", kind="i", shape=(n, n))
        status = self.ints(status_ds, np.int8)
        names_attr = self.attr_str(status_ds, "status_names")
        status_names = tuple(s.strip() for s in names_attr.split(","))
        rounds = self.ints(self.dataset(g, "round", kind="i", shape=(n, n)), np.int32)

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
        return PairsRun(
            info=info,
            **ints,
            schedule=self.attr_str(g, "schedule"),
            **matrices,
            status=status,
            status_names=status_names,
            round=rounds,
            n_pair_samples=n_pairs,
            pair_samples=samples,
        )
