"""Property-based tests (python3-hypothesis) of the analysis readers and the criteria loader.

Hostile input, generated: result files (synthetic ones from synth.py and one the real fabscope
wrote in this session) with one random corruption each (a dataset's units, shape or dtype, NaN /
inf / negative / absurd cells, a dataset, group or attribute removed or retyped, bytes of the file
overwritten), and random YAML trees as criteria files. The property is the project's bad-input
rule, asserted at the command-line level (`fabscope_analyze.cli.main`, the launcher for raw byte
damage) so that it holds whatever the layout inside the reader:

  either the input is used (exit 0 or 1: a verdict), or the exit is 2 with exactly one line on
  stderr, `fabscope-analyze: <the file>: <problem>; <fix>`, and nothing on stdout; never a
  traceback, never another exit code.

Stronger properties where the answer is known: a non-finite or negative value in a cell of an ok
pair is exit 2 naming that dataset (never a verdict on a number that could not be judged); a pairs
matrix whose units attribute is not its own is exit 2 naming it; a criteria file with a bad value
at a known key is exit 2 naming that key path.

Run time is bounded (max_examples below; deadline off since a busy CI host makes single examples
slow). Profiles: the default `ci` is derandomized (the same examples every run, so CI cannot flake
on a new example); FABSCOPE_HYPOTHESIS=long draws fresh random examples, 10x as many, for a
bug hunt: `FABSCOPE_HYPOTHESIS=long /usr/bin/python3 -m pytest tests/analysis/test_analyze_properties.py`.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

from conftest import LAUNCHER
from synth import CollSpec, CongestionSpec, Faults, ShiftSpec, SynthTopology, write_synthetic_run

settings.register_profile(
    "ci", max_examples=60, deadline=None, derandomize=True, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "long", max_examples=600, deadline=None, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("FABSCOPE_HYPOTHESIS", "ci"))
SCALE = 10 if os.environ.get("FABSCOPE_HYPOTHESIS") == "long" else 1

PROG = "fabscope-analyze"
CRITERIA = """\
fabscope_criteria: 1
name: properties
pairs:
  bandwidth: {min_gbps: 0.01, min_fabric_fraction: 0.2, stalls: {}}
  latency: {max_p50_us: 100000, max_class_ratio: 50}
sweeps:
  lat: [{size: 8, max_p50_us: 100000}]
  bw: [{size: 64K, min_gbps: 0.01}]
coll: {check_errors: fail}
shift: {require_all_steps: true}
congestion: {max_impact_latency_p99: 1000, require_all_patterns: true}
"""


# ---- running the command line in this process ------------------------------------------------

def run_main(args: list[str | os.PathLike[str]]) -> tuple[int, str, str]:
    """cli.main(args) -> (exit code, stdout, stderr). Any exception escaping main is a traceback a
    user would see, so it propagates and fails the example."""
    from fabscope_analyze.cli import main

    out, err = io.StringIO(), io.StringIO()
    # A FutureWarning (numpy comparing an array where a scalar was meant) is tomorrow's traceback.
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def assert_used_or_one_line(code: int, out: str, err: str, path: Path) -> str | None:
    """The bad-input rule. Returns the error line on exit 2, None when the input was used."""
    assert "Traceback" not in err and "Traceback" not in out, err
    if code in (0, 1, 3):
        # Used (3: accept's inconclusive verdict): notes on stderr are fine, each one line of ours.
        for line in err.splitlines():
            assert line.startswith(f"{PROG}: "), err
        return None
    assert code == 2, (code, err[-2000:])
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{PROG}: {path}: ") or lines[0].startswith(f"{PROG}: {path} "), lines[0]
    assert out == "", out
    return lines[0]


# ---- base files ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def workdir() -> Any:
    with tempfile.TemporaryDirectory(prefix="fabscope-props-") as d:
        yield Path(d)


@pytest.fixture(scope="module")
def criteria_file(workdir: Path) -> Path:
    p = workdir / "criteria.yaml"
    p.write_text(CRITERIA)
    return p


@pytest.fixture(scope="module")
def base_files(workdir: Path, real_results: Path, criteria_file: Path) -> dict[str, Path]:
    """Valid files: every run kind synth.py writes, with and without a topology, and a file the real
    fabscope wrote in this session (analysis-suite.yaml)."""
    topo = SynthTopology(hosts_per_leaf=2, leaves_per_pod=2, spines_per_pod=2)
    files = {
        "synth-4": write_synthetic_run(workdir / "synth-4.h5", 4, seed=1),
        "synth-topo-5": write_synthetic_run(workdir / "synth-topo-5.h5", 5, seed=2, topology=topo,
                                            faults=Faults(slow_hosts=(1,))),
        "synth-load-4": write_synthetic_run(workdir / "synth-load-4.h5", 4, seed=3, topology=topo,
                                            shift=ShiftSpec(), congestion=CongestionSpec(), coll=CollSpec()),
        "real": real_results,
    }
    for name, path in files.items():  # each one is valid: the command line uses it
        code, _, err = run_main(["accept", path, "--criteria", criteria_file, "--quiet"])
        assert code in (0, 1, 3) and "Traceback" not in err, (name, code, err)
    return files


def _objects(path: Path) -> tuple[list[str], list[str], list[tuple[str, str]]]:
    """(datasets, groups, (object, attribute name)) of a file; "" is the root group."""
    datasets: list[str] = []
    groups: list[str] = []
    attrs: list[tuple[str, str]] = []
    with h5py.File(path, "r") as f:
        attrs += [("", a) for a in f.attrs]

        def visit(name: str, obj: Any) -> None:
            (datasets if isinstance(obj, h5py.Dataset) else groups).append(name)
            attrs.extend((name, a) for a in obj.attrs)

        f.visititems(visit)
    return datasets, groups, attrs


UNIT_WORDS = ["GB/s", "Gb/s", "gbps", "MB/s", "us", "ns", "ms", "s", "bytes", "B", "KiB", "Mpps", "1", "", "elements",
              "none"]
ODD_VALUES = [np.nan, np.inf, -np.inf, -1.0, -1e-9, 0.0, 1e308, 5e-324, 2.0**62, -2.0**62]


def _retype(data: np.ndarray, kind: str) -> np.ndarray:
    if kind == "text":
        return np.array([str(x) for x in data.reshape(-1)], dtype=object).reshape(data.shape)
    if data.dtype.kind in "OSU":
        return np.zeros(data.shape, dtype=kind)
    with np.errstate(all="ignore"):
        if np.dtype(kind).kind in "iu":
            return np.nan_to_num(data.astype(np.float64)).clip(-1e18, 1e18).astype(kind)
        return data.astype(kind)


def _reshape(data: np.ndarray, kind: str) -> np.ndarray:
    if kind == "scalar":
        return data.reshape(-1)[:1].reshape(()) if data.size else np.zeros((), data.dtype)
    if kind == "empty":
        return data.reshape(-1)[:0]
    if kind == "flat":
        return data.reshape(-1)
    if kind == "extra-axis":
        return data[..., np.newaxis]
    if kind == "drop-row":
        return data[:-1] if data.ndim and data.shape[0] else data.reshape(-1)[:0]
    if kind == "add-row":
        return np.concatenate([data, data[:1]]) if data.ndim and data.shape[0] else data.reshape(1, -1)
    if kind == "transpose":
        return data.T if data.ndim >= 2 and data.shape[0] != data.shape[-1] else data[..., np.newaxis].T
    raise AssertionError(kind)


def _replace(f: h5py.File, name: str, data: np.ndarray) -> None:
    attrs = dict(f[name].attrs)
    del f[name]
    if data.dtype == object:
        d = f.create_dataset(name, data=data.astype(str).astype(object), dtype=h5py.string_dtype())
    else:
        d = f.create_dataset(name, data=data)
    for k, v in attrs.items():
        d.attrs[k] = v


@st.composite
def corruption(draw: st.DrawFn, path: Path) -> str:
    """Apply one random corruption to the file at path (in place); return what was done."""
    datasets, groups, attrs = _objects(path)
    kind = draw(st.sampled_from(["units", "drop-units", "dtype", "shape", "cells", "delete", "attr", "attr-delete"]))
    with h5py.File(path, "r+") as f:
        if kind in ("units", "drop-units"):
            with_units = [d for d in datasets if "units" in f[d].attrs]
            name = draw(st.sampled_from(with_units))
            if kind == "drop-units":
                del f[name].attrs["units"]
                return f"{name}: units removed"
            old = f[name].attrs["units"]
            old = old.decode() if isinstance(old, bytes) else str(old)
            new = draw(st.sampled_from([u for u in UNIT_WORDS if u != old]) | st.text(max_size=8).filter(lambda u: u != old))
            f[name].attrs["units"] = new
            return f"{name}: units {old!r} -> {new!r}"
        if kind in ("dtype", "shape", "cells"):
            name = draw(st.sampled_from(datasets))
            data = f[name][()]
            data = np.asarray(data)
            if kind == "dtype":
                to = draw(st.sampled_from(["text", "int8", "int64", "uint8", "float32", "float64", "bool"]))
                _replace(f, name, _retype(data, to))
                return f"{name}: dtype {data.dtype} -> {to}"
            if kind == "shape":
                how = draw(st.sampled_from(["scalar", "empty", "flat", "extra-axis", "drop-row", "add-row",
                                            "transpose"]))
                _replace(f, name, _reshape(data, how))
                return f"{name}: shape {data.shape} -> {how}"
            if data.size == 0 or data.dtype.kind not in "fiu":
                return f"{name}: not numeric, unchanged"
            flat = data.astype(np.float64).reshape(-1)
            cells = draw(st.lists(st.integers(0, flat.size - 1), min_size=1, max_size=4, unique=True))
            value = draw(st.sampled_from(ODD_VALUES))
            flat[cells] = value
            new = flat.reshape(data.shape)
            if data.dtype.kind in "iu":
                new = np.nan_to_num(new, posinf=2**62, neginf=-2**62).clip(-2**62, 2**62).astype(data.dtype)
            f[name][...] = new
            return f"{name}: cells {cells} = {value}"
        if kind == "delete":
            name = draw(st.sampled_from(datasets + groups))
            del f[name]
            return f"{name}: deleted"
        obj, attr = draw(st.sampled_from(attrs))
        target = f[obj] if obj else f
        if kind == "attr-delete":
            del target.attrs[attr]
            return f"{obj or '/'}@{attr}: deleted"
        value = draw(st.sampled_from([
            "", "bogus", "lat", "pairs", "ok", -1, 0, 1, 2, 7, 2**40, -(2**40), 1.5, float("nan"), float("inf"),
            np.arange(3), np.array([b"x", b"y"]), True,
        ]))
        target.attrs[attr] = value
        return f"{obj or '/'}@{attr} = {value!r}"


def _copy(base: Path, workdir: Path, tag: str) -> Path:
    fd, name = tempfile.mkstemp(prefix=f"{tag}-", suffix=".h5", dir=workdir)
    os.close(fd)
    shutil.copyfile(base, name)
    return Path(name)


# ---- result files ----------------------------------------------------------------------------

BASES = ["synth-4", "synth-topo-5", "synth-load-4", "real"]


@settings(max_examples=120 * SCALE)
@given(data=st.data(), base=st.sampled_from(BASES))
def test_corrupted_result_file_is_used_or_one_line(data: st.DataObject, base: str, base_files: dict[str, Path],
                                                   workdir: Path, criteria_file: Path) -> None:
    path = _copy(base_files[base], workdir, base)
    try:
        what = data.draw(corruption(path))
        note(f"{base}: {what}")
        code, out, err = run_main(["accept", path, "--criteria", criteria_file, "--quiet"])
        note(f"exit {code}: {err.strip()}")
        assert_used_or_one_line(code, out, err, path)
    finally:
        path.unlink()


@settings(max_examples=30 * SCALE)
@given(data=st.data(), base=st.sampled_from(["synth-4", "synth-load-4"]))
def test_corrupted_file_compare_is_used_or_one_line(data: st.DataObject, base: str, base_files: dict[str, Path],
                                                    workdir: Path) -> None:
    """compare reads two files: the damaged one may be either, the error names that one."""
    path = _copy(base_files[base], workdir, base)
    try:
        what = data.draw(corruption(path))
        note(f"{base}: {what}")
        first = data.draw(st.booleans())
        args = [path, base_files[base]] if first else [base_files[base], path]
        code, out, err = run_main(["compare", *args, "--rows", "3"])
        note(f"exit {code}: {err.strip()}")
        assert_used_or_one_line(code, out, err, path)
    finally:
        path.unlink()


def _pairs_matrices(path: Path) -> list[tuple[str, str]]:
    """(dataset, metric) of every [N, N] latency or bandwidth matrix of a schema-version-1 pairs run
    (the layout whose matrices the reader reads), found by name and the run's benchmark attribute."""
    found: list[tuple[str, str]] = []
    with h5py.File(path, "r") as f:
        n = int(f.attrs["n_ranks"])
        for run in f["runs"].values():
            b = run.attrs.get("benchmark")
            if (b.decode() if isinstance(b, bytes) else b) != "pairs":
                continue
            if "pairs" in run and isinstance(run["pairs"], h5py.Group):
                # Schema version 2: the reader builds the matrices from the row table (pairs/*) and
                # never reads the dense views written at the end; test_analyze_rows covers the rows.
                continue

            def visit(name: str, obj: Any, run: h5py.Group = run) -> None:
                leaf = name.rsplit("/", 1)[-1]
                if isinstance(obj, h5py.Dataset) and obj.shape == (n, n) and (
                        leaf == "bw_gbps" or leaf.startswith("latency_ns_")):
                    found.append((f"{run.name}/{name}".lstrip("/"), leaf))

            run.visititems(visit)
    return found


def _ok_cells(path: Path, matrix: str) -> list[tuple[int, int]]:
    with h5py.File(path, "r") as f:
        status = f[matrix.rsplit("/", 1)[0]]["status"][()]
        names = f[matrix.rsplit("/", 1)[0]]["status"].attrs["status_names"]
        names = (names.decode() if isinstance(names, bytes) else names).split(",")
        data = f[matrix][()]
    ok = names.index("ok")
    return [(int(i), int(j)) for i, j in zip(*np.nonzero((status == ok) & np.isfinite(data)))]


@settings(max_examples=40 * SCALE)
@given(data=st.data(), base=st.sampled_from(BASES),
       value=st.sampled_from([np.nan, np.inf, -np.inf, -1.0, -0.5, -1e300]))
def test_non_finite_or_negative_ok_pair_is_a_file_error(data: st.DataObject, base: str, value: float,
                                                        base_files: dict[str, Path], workdir: Path,
                                                        criteria_file: Path) -> None:
    """An acceptance tool never passes what it could not judge: a bad number in an ok pair's cell
    of any pairs matrix is exit 2 naming the dataset, never a verdict."""
    path = _copy(base_files[base], workdir, base)
    try:
        matrices = _pairs_matrices(path)
        assume(matrices)  # the real file is schema version 2: no matrix the reader reads
        matrix, leaf = data.draw(st.sampled_from(matrices))
        cells = _ok_cells(path, matrix)
        assume(cells)
        cell = data.draw(st.sampled_from(cells))
        with h5py.File(path, "r+") as f:
            d = f[matrix]
            d[cell] = value
            if leaf.startswith("latency_ns_") and matrix.endswith(leaf):  # latency matrices are symmetric
                d[cell[::-1]] = value
        note(f"{matrix}{list(cell)} = {value}")
        code, out, err = run_main(["accept", path, "--criteria", criteria_file, "--quiet"])
        line = assert_used_or_one_line(code, out, err, path)
        assert line is not None, f"a verdict (exit {code}) on {leaf} = {value} in an ok pair"
        assert leaf in line, line
    finally:
        path.unlink()


@settings(max_examples=30 * SCALE)
@given(data=st.data(), base=st.sampled_from(BASES))
def test_pairs_matrix_with_foreign_units_is_a_file_error(data: st.DataObject, base: str, base_files: dict[str, Path],
                                                         workdir: Path, criteria_file: Path) -> None:
    path = _copy(base_files[base], workdir, base)
    try:
        matrices = _pairs_matrices(path)
        assume(matrices)
        matrix, leaf = data.draw(st.sampled_from(matrices))
        own = "Gb/s" if leaf.startswith("bw_") else "ns"
        units = data.draw(st.sampled_from([u for u in UNIT_WORDS if u != own]))
        with h5py.File(path, "r+") as f:
            f[matrix].attrs["units"] = units
        note(f"{matrix}: units {units!r}")
        code, out, err = run_main(["accept", path, "--criteria", criteria_file, "--quiet"])
        line = assert_used_or_one_line(code, out, err, path)
        assert line is not None, f"{matrix} in {units!r} was used (exit {code})"
        assert leaf in line and "units" in line, line
    finally:
        path.unlink()


@settings(max_examples=12 * SCALE)
@given(data=st.data(), base=st.sampled_from(["synth-4", "real"]))
def test_overwritten_bytes_are_used_or_one_line(data: st.DataObject, base: str, base_files: dict[str, Path],
                                                workdir: Path, criteria_file: Path) -> None:
    """Raw damage (a disk or a copy gone wrong): bytes overwritten anywhere, metadata included. Run
    through the launcher in its own process, as a user would: a crash of the HDF5 library would
    otherwise take pytest down with it."""
    path = _copy(base_files[base], workdir, base)
    try:
        size = path.stat().st_size
        spots = data.draw(st.lists(st.tuples(st.integers(0, size - 1), st.binary(min_size=1, max_size=16)),
                                   min_size=1, max_size=6))
        with path.open("r+b") as fh:
            for offset, chunk in spots:
                fh.seek(offset)
                fh.write(chunk)
        note(f"{base}: {[(o, c.hex()) for o, c in spots]}")
        proc = subprocess.run([str(LAUNCHER), "accept", str(path), "--criteria", str(criteria_file), "--quiet"],
                              capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode >= 0, f"killed by signal {-proc.returncode}: {proc.stderr[-2000:]}"
        assert_used_or_one_line(proc.returncode, proc.stdout, proc.stderr, path)
    finally:
        path.unlink()


# ---- criteria files --------------------------------------------------------------------------

# Keys the loader knows, at any level: trees built from them reach deep into the validation.
KNOWN_KEYS = [
    "fabscope_criteria", "name", "description", "link_rate_gbps", "pairs", "sweeps", "coll", "congestion", "shift",
    "attribution", "retest", "bandwidth", "latency", "hop_classes", "noise", "failed_pairs", "require_all_pairs",
    "min_gbps", "min_link_fraction", "min_fabric_fraction", "min_size", "stalls", "window_fraction", "min_windows",
    "significance", "max_p50_us", "max_p99_us", "max_class_ratio", "max_size", "same_host", "same_leaf", "same_pod",
    "cross_spine", "unknown", "max_bw_spread", "max_lat_spread", "min_samples", "lat", "bw", "bibw", "size",
    "min_scaling_efficiency", "check_errors", "max_impact_latency_p50", "max_impact_latency_p99",
    "max_impact_bw_p50", "max_impact_allreduce_p50", "max_impact_allreduce_p99", "patterns",
    "require_all_patterns", "min_effective_pct", "min_median_effective_pct", "require_all_steps", "failed_flows",
    "host_fail_fraction", "link_fail_fraction", "min_pairs", "max_suspects", "peers_per_host", "pairs_per_link",
]
SECTIONS = ["pairs", "sweeps", "coll", "congestion", "shift", "attribution", "retest"]

scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(-5, 10**6), st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["8", "64K", "1M", "8MiB", "8Mb", "8MB", "2G", "-1", "fail", "ignore", "incast", "", "0.5",
                     "1e400", "nan", "yes"]),
    st.text(max_size=12),
)
keys = st.one_of(st.sampled_from(KNOWN_KEYS), st.text(min_size=1, max_size=10), st.integers(-3, 3))
trees = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=5)),
    max_leaves=25,
)


@st.composite
def criteria_docs(draw: st.DrawFn) -> Any:
    """Mostly criteria-shaped mappings (the format key, known sections with random trees), some
    random trees."""
    if draw(st.integers(0, 9)) == 0:
        return draw(trees)
    doc: dict[Any, Any] = {}
    if draw(st.integers(0, 9)) > 0:
        doc["fabscope_criteria"] = draw(st.sampled_from([1, 1, 1, 2, "1", None]))
    for section in draw(st.lists(st.sampled_from(SECTIONS), unique=True, max_size=4)):
        doc[section] = draw(trees)
    doc.update(draw(st.dictionaries(keys, trees, max_size=2)))
    return doc


def _dump(doc: Any) -> str:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def _key_paths(doc: Any, prefix: str = "") -> set[str]:
    """Every dotted key path of the tree, list items as [i], as the loader names them: plain words
    as they are, other keys (blank, control characters, numbers) quoted."""
    out: set[str] = set()
    if isinstance(doc, dict):
        for k, v in doc.items():
            name = k if isinstance(k, str) and re.fullmatch(r"[A-Za-z0-9_-]+", k) else repr(k)
            p = f"{prefix}.{name}" if prefix else name
            out.add(p)
            out |= _key_paths(v, p)
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            p = f"{prefix}[{i}]"
            out.add(p)
            out |= _key_paths(v, p)
    return out


def _load(text: str, workdir: Path) -> tuple[Path, Any, str | None]:
    """load_criteria on text: (path, Criteria or None, error line or None)."""
    from fabscope_analyze.criteria import CriteriaError, load_criteria

    fd, name = tempfile.mkstemp(prefix="criteria-", suffix=".yaml", dir=workdir)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    path = Path(name)
    try:
        return path, load_criteria(path), None
    except CriteriaError as exc:
        return path, None, str(exc)


@settings(max_examples=300 * SCALE)
@given(doc=criteria_docs())
def test_random_criteria_tree_loads_or_names_the_field(doc: Any, workdir: Path) -> None:
    text = _dump(doc)
    note(text)
    path, crit, error = _load(text, workdir)
    try:
        if error is None:
            assert crit is not None
            return
        assert "\n" not in error and error.startswith(f"{path}: "), error
        problem = error[len(f"{path}: "):]
        if not isinstance(doc, dict) or "fabscope_criteria" not in doc or doc["fabscope_criteria"] != 1:
            return  # the file as a whole is refused (not a mapping, no or another format key)
        named = problem.split(": ", 1)[0]
        # The keys as YAML reads the text back (a NEL or other line break in a key reads as a space).
        paths = _key_paths(yaml.safe_load(text))
        # A field error names a key path of the document (or the missing `size` of a sweep rule).
        assert named in paths or (named.endswith(".size") and named[: -len(".size")] in paths), (named, error)
    finally:
        path.unlink()


@settings(max_examples=60 * SCALE)
@given(doc=criteria_docs(), flow=st.booleans())
def test_random_criteria_through_the_command_line(doc: Any, flow: bool, workdir: Path) -> None:
    """The same trees through `fabscope-analyze accept`: exit 2 with one line, or a verdict."""
    text = yaml.safe_dump(doc, default_flow_style=flow, sort_keys=False)
    fd, name = tempfile.mkstemp(prefix="criteria-", suffix=".yaml", dir=workdir)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    path = Path(name)
    run = workdir / "synth-2.h5"
    if not run.exists():
        write_synthetic_run(run, 2, seed=5)
    try:
        code, out, err = run_main(["accept", run, "--criteria", path, "--quiet"])
        note(text)
        assert_used_or_one_line(code, out, err, path)
    finally:
        path.unlink()


KNOWN_NUMBERS = {
    "link_rate_gbps": "", "pairs.bandwidth.min_gbps": "pairs", "pairs.latency.max_p50_us": "pairs",
    "pairs.latency.max_class_ratio": "pairs", "pairs.noise.max_bw_spread": "pairs",
    "pairs.noise.min_samples": "pairs", "pairs.bandwidth.min_link_fraction": "pairs",
    "pairs.bandwidth.stalls.significance": "pairs", "pairs.bandwidth.min_size": "pairs",
    "attribution.host_fail_fraction": "", "retest.max_pairs": "", "coll.min_scaling_efficiency": "",
    "coll.min_size": "", "congestion.max_impact_latency_p99": "", "shift.min_effective_pct": "",
}
BAD_VALUES = [None, -1, 0, -0.5, float("nan"), float("inf"), float("-inf"), 10**400, -(10**400), "x", "8Mb", "8MB",
              [], {}, [1], True, "1e400", 2.5e308]


@settings(max_examples=120 * SCALE)
@given(key=st.sampled_from(sorted(KNOWN_NUMBERS)), value=st.sampled_from(BAD_VALUES))
def test_bad_value_at_a_known_key_names_the_key(key: str, value: Any, workdir: Path) -> None:
    """A bad number at a known key: loaded as unset (None), or refused naming that key path."""
    doc: dict[str, Any] = {"fabscope_criteria": 1}
    node = doc
    parts = key.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value
    text = yaml.safe_dump(doc, sort_keys=False)
    note(text)
    path, crit, error = _load(text, workdir)
    try:
        if error is None:
            # Only "no value" loads, and a size of 0 bytes (every size from 0 up is judged).
            assert value is None or (key.endswith("min_size") and value == 0 and value is not False), (key, value)
            return
        assert error.startswith(f"{path}: {key}: "), error
    finally:
        path.unlink()


def test_units_attribute_as_an_array_is_one_line(base_files: dict[str, Path], workdir: Path,
                                                 criteria_file: Path) -> None:
    """Found by the properties above: units stored as an array made numpy compare elementwise
    (a FutureWarning now, an ambiguous truth value - a traceback - in a later numpy)."""
    path = _copy(base_files["synth-4"], workdir, "units-array")
    try:
        matrix, _ = _pairs_matrices(path)[0]
        with h5py.File(path, "r+") as f:
            f[matrix].attrs["units"] = np.arange(3)
        code, out, err = run_main(["accept", path, "--criteria", criteria_file, "--quiet"])
        line = assert_used_or_one_line(code, out, err, path)
        assert line is not None and "units [0, 1, 2]" in line, line
    finally:
        path.unlink()


@pytest.mark.parametrize("key", ["\r", " ", "a.b", 3])
def test_unknown_odd_key_is_named_quoted(key: Any, workdir: Path) -> None:
    """Found by the properties above: a blank key vanished from the message (': unknown key')."""
    path, crit, error = _load(yaml.safe_dump({"fabscope_criteria": 1, "pairs": {key: 1}}), workdir)
    try:
        assert crit is None and error is not None
        assert f"pairs.{key!r}: unknown key" in error, error
    finally:
        path.unlink()


@pytest.mark.parametrize("text", ["link_rate_gbps: 1" + "0" * 400, "pairs: {latency: {max_p50_us: -1" + "0" * 400 + "}}",
                                  "coll: {min_size: 1" + "0" * 30 + "}"])
def test_huge_integers_are_one_line(text: str, workdir: Path) -> None:
    """A 400-digit integer raised OverflowError in math.isfinite (a traceback); the random trees above include such integers."""
    path, crit, error = _load("fabscope_criteria: 1\n" + text + "\n", workdir)
    try:
        assert crit is None and error is not None and "\n" not in error
        assert error.startswith(f"{path}: ") and ("expected a positive number" in error or "message size" in error), error
    finally:
        path.unlink()
