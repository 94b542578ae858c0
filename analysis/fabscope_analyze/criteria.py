"""Acceptance criteria files (configs/criteria/*.yaml, documented in configs/criteria/README.md).

`load_criteria(path)` validates the whole file and returns a `Criteria`; every problem raises
`CriteriaError` whose one-line message names the file, the key and the fix. Unknown keys are
errors (a typo must not silently turn a limit off).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

FORMAT_KEY = "fabscope_criteria"
FORMAT_VERSION = 1
HOP_CLASS_NAMES = ("same_host", "same_leaf", "same_pod", "cross_spine", "unknown")


class CriteriaError(Exception):
    """An unusable criteria file; str() is one line: `<path>: <problem>; <hint>`."""

    def __init__(self, path: str | os.PathLike[str], problem: str, hint: str) -> None:
        self.path = os.fspath(path)
        super().__init__(" ".join(f"{self.path}: {problem}; {hint}".split()))


@dataclass(frozen=True)
class LatencyLimits:
    max_p50_us: float | None = None
    max_p99_us: float | None = None


@dataclass(frozen=True)
class StallRule:
    """Bandwidth windows that stall (a retransmission time-out, a link flap): a window below
    window_fraction x the best window of the same flow in the same repeat has stalled. A host
    fails when at least min_windows of the windows in its pairs stalled and that many is
    improbable at the rest of the fabric's stall rate (one-sided binomial test, Benjamini-Hochberg
    over the hosts at false-discovery rate `significance`)."""

    window_fraction: float = 0.25
    min_windows: int = 3
    significance: float = 0.001


@dataclass(frozen=True)
class PairsCriteria:
    # bandwidth, per direction, the p50 of the windows of a pair
    min_gbps: float | None = None
    min_link_fraction: float | None = None
    min_fabric_fraction: float | None = None
    bw_min_size: int = 0  # absolute and link-rate bandwidth rules judge only messages this large
    stalls: StallRule | None = None  # per host, from the window samples (pair_samples)
    # latency (one way)
    latency: LatencyLimits = LatencyLimits()
    max_class_ratio: float | None = None  # p50 above this x the best of its hop class
    lat_max_size: int | None = None  # absolute latency limits judge only messages this small
    hop_classes: Mapping[str, LatencyLimits] = field(default_factory=dict)
    # noise
    max_bw_spread: float = 0.15
    max_lat_spread: float = 1.0
    min_samples: int = 3
    failed_pairs: str = "fail"  # failed / timed-out pairs: fail or ignore
    require_all_pairs: bool = True


@dataclass(frozen=True)
class SweepRule:
    size: int
    max_p50_us: float | None = None
    max_p99_us: float | None = None
    min_gbps: float | None = None
    min_link_fraction: float | None = None


@dataclass(frozen=True)
class CollCriteria:
    min_scaling_efficiency: float | None = None
    min_size: int = 0
    check_errors: str = "fail"  # fail or ignore


@dataclass(frozen=True)
class ImpactLimits:
    """Highest impact factors a victim may show (loaded / isolated; bandwidth isolated / loaded)."""

    max_impact_latency_p50: float | None = None
    max_impact_latency_p99: float | None = None
    max_impact_bw_p50: float | None = None

    def get(self, metric: str) -> float | None:
        return getattr(self, f"max_impact_{metric}")


@dataclass(frozen=True)
class CongestionCriteria:
    impact: ImpactLimits = ImpactLimits()  # every victim, every pattern judged
    hop_classes: Mapping[str, ImpactLimits] = field(default_factory=dict)  # replace `impact` for that class
    max_impact_allreduce_p50: float | None = None  # per pattern, the victims' allreduce
    max_impact_allreduce_p99: float | None = None
    patterns: tuple[str, ...] | None = None  # judge only these aggressor patterns (None: all)
    require_all_patterns: bool = True

    def limit(self, metric: str, hop_class: str) -> float | None:
        by_class = self.hop_classes.get(hop_class)
        if by_class is not None and by_class.get(metric) is not None:
            return by_class.get(metric)
        return self.impact.get(metric)


@dataclass(frozen=True)
class ShiftCriteria:
    min_effective_pct: float | None = None  # every step
    min_median_effective_pct: float | None = None  # median over the steps
    require_all_steps: bool = True
    failed_flows: str = "fail"  # flows that failed or timed out (errors/*): fail or ignore


@dataclass(frozen=True)
class Attribution:
    host_fail_fraction: float = 0.5
    link_fail_fraction: float = 0.5
    min_pairs: int = 2
    max_suspects: int = 20
    significance: float = 0.001  # false-discovery rate of the counting tests (pairs/suspects.py)
    degraded_fraction: float = 0.85  # flows consistently below this x the fabric's: degraded (a warning)


@dataclass(frozen=True)
class Retest:
    max_pairs: int = 2000
    peers_per_host: int = 3
    pairs_per_link: int = 4


@dataclass(frozen=True)
class Criteria:
    path: Path
    name: str
    description: str
    link_rate_gbps: float | None
    pairs: PairsCriteria | None
    sweeps: Mapping[str, tuple[SweepRule, ...]]
    coll: CollCriteria | None
    attribution: Attribution
    retest: Retest
    congestion: CongestionCriteria | None = None
    shift: ShiftCriteria | None = None


# The forms fabscope's own parse_size (bench/core/units.cpp) takes: bytes, binary multiples.
_SIZE = re.compile(r"^\s*([0-9]+)(|B|K|k|KiB|M|MiB|G|GiB)\s*$")
_SIZE_SHIFT = {"": 0, "B": 0, "K": 10, "k": 10, "KiB": 10, "M": 20, "MiB": 20, "G": 30, "GiB": 30}
SIZE_FORMS = "bytes as 8, 4096, 8MiB, 1G, 64K or 8M (K = 1024)"


MAX_SIZE = (1 << 63) - 1  # the largest size a result file can hold (size_bytes is int64)


def parse_size(value: Any) -> int | None:
    """8, "8", "64K", "1M", "8MiB", "1G" (K = 1024) -> bytes; None when not a size. "8Mb" (bits)
    and "8MB" (1e6 or 2^20?) are not sizes: fabscope's own parser refuses them as well."""
    size = None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        size = value
    elif isinstance(value, str):
        m = _SIZE.match(value)
        if m:
            size = int(m.group(1)) << _SIZE_SHIFT[m.group(2)]
    return size if size is not None and 0 <= size <= MAX_SIZE else None


def key_text(key: Any) -> str:
    """A YAML key as an error message names it: plain words as they are, anything else (blank,
    control characters, dots, a number) quoted, so that no key vanishes from the one line."""
    if isinstance(key, str) and re.fullmatch(r"[A-Za-z0-9_-]+", key):
        return key
    return repr(key)


class _Checker:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, problem: str, hint: str) -> CriteriaError:
        return CriteriaError(self.path, f"{key}: {problem}", hint)

    def mapping(self, value: Any, key: str, known: tuple[str, ...]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a mapping of {', '.join(known)}, found {type(value).__name__}",
                            "write it as `key: value` lines indented under it")
        for k in value:
            if k not in known:
                raise self.fail(f"{key}.{key_text(k)}" if key else key_text(k), "unknown key",
                                f"known keys here: {', '.join(known)} (see configs/criteria/README.md)")
        return value

    def number(self, m: Mapping[str, Any], key: str, where: str, *, fraction: bool = False,
               integer: bool = False, minimum: float = 0.0) -> Any:
        if key not in m or m[key] is None:
            return None
        v = m[key]
        full = f"{where}.{key}" if where else key
        # An integer beyond a float's range (a 400-digit literal) is not a limit either.
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) < 1e300 and math.isfinite(v)
        if integer:
            ok = ok and float(v).is_integer()
        if not ok or v < minimum or (minimum == 0.0 and not integer and v <= 0):
            what = "a whole number" if integer else "a positive number"
            raise self.fail(full, f"expected {what}, found {v!r}", "fix the value")
        if fraction and not 0 < v <= 1:
            raise self.fail(full, f"expected a fraction in (0, 1], found {v!r}", "write e.g. 0.9 for 90%")
        return int(v) if integer else float(v)

    def size(self, m: Mapping[str, Any], key: str, where: str) -> int | None:
        if key not in m or m[key] is None:
            return None
        s = parse_size(m[key])
        if s is None:
            v = m[key]
            why = ""
            if isinstance(v, str) and re.search(r"\d\s*[KkMmGg]?b\s*$", v):
                why = " (a lowercase b means bits; sizes here are bytes)"
            elif isinstance(v, str) and re.search(r"\d\s*[KkMmGg]B\s*$", v):
                why = " (MB is ambiguous between 10^6 and 2^20 bytes)"
            raise self.fail(f"{where}.{key}", f"expected a message size in bytes, found {v!r}{why}",
                            f"write {SIZE_FORMS}")
        return s

    def choice(self, m: Mapping[str, Any], key: str, where: str, choices: tuple[str, ...], default: str) -> str:
        v = m.get(key, default)
        if v not in choices:
            raise self.fail(f"{where}.{key}", f"expected one of {', '.join(choices)}, found {v!r}", "fix the value")
        return str(v)

    def flag(self, m: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
        v = m.get(key, default)
        if not isinstance(v, bool):
            raise self.fail(f"{where}.{key}", f"expected true or false, found {v!r}", "fix the value")
        return v


def _latency(c: _Checker, value: Any, where: str) -> LatencyLimits:
    m = c.mapping(value, where, ("max_p50_us", "max_p99_us"))
    return LatencyLimits(c.number(m, "max_p50_us", where), c.number(m, "max_p99_us", where))


def _stalls(c: _Checker, value: Any) -> StallRule:
    where = "pairs.bandwidth.stalls"
    m = c.mapping(value, where, ("window_fraction", "min_windows", "significance"))
    d = StallRule()
    significance = c.number(m, "significance", where, fraction=True)
    if significance is not None and significance >= 0.5:
        raise c.fail(f"{where}.significance", f"expected a small probability, found {significance}",
                     "write e.g. 0.001 (the false-discovery rate over the hosts)")
    return StallRule(
        window_fraction=c.number(m, "window_fraction", where, fraction=True) or d.window_fraction,
        min_windows=c.number(m, "min_windows", where, integer=True, minimum=1) or d.min_windows,
        significance=significance or d.significance,
    )


def _pairs(c: _Checker, value: Any) -> PairsCriteria:
    m = c.mapping(value, "pairs", ("bandwidth", "latency", "hop_classes", "noise", "failed_pairs",
                                   "require_all_pairs"))
    bw = c.mapping(m.get("bandwidth"), "pairs.bandwidth",
                   ("min_gbps", "min_link_fraction", "min_fabric_fraction", "min_size", "stalls"))
    lat = c.mapping(m.get("latency"), "pairs.latency", ("max_p50_us", "max_p99_us", "max_class_ratio", "max_size"))
    classes = c.mapping(m.get("hop_classes"), "pairs.hop_classes", HOP_CLASS_NAMES)
    noise = c.mapping(m.get("noise"), "pairs.noise", ("max_bw_spread", "max_lat_spread", "min_samples"))
    ratio = c.number(lat, "max_class_ratio", "pairs.latency")
    if ratio is not None and ratio < 1:
        raise c.fail("pairs.latency.max_class_ratio", f"expected at least 1, found {ratio}",
                     "it is a multiple of the best latency of the hop class, e.g. 2.0")
    return PairsCriteria(
        min_gbps=c.number(bw, "min_gbps", "pairs.bandwidth"),
        min_link_fraction=c.number(bw, "min_link_fraction", "pairs.bandwidth", fraction=True),
        min_fabric_fraction=c.number(bw, "min_fabric_fraction", "pairs.bandwidth", fraction=True),
        bw_min_size=c.size(bw, "min_size", "pairs.bandwidth") or 0,
        stalls=_stalls(c, bw["stalls"]) if "stalls" in bw else None,
        latency=LatencyLimits(c.number(lat, "max_p50_us", "pairs.latency"),
                              c.number(lat, "max_p99_us", "pairs.latency")),
        max_class_ratio=ratio,
        lat_max_size=c.size(lat, "max_size", "pairs.latency"),
        hop_classes={k: _latency(c, v, f"pairs.hop_classes.{k}") for k, v in classes.items()},
        max_bw_spread=c.number(noise, "max_bw_spread", "pairs.noise") or 0.15,
        max_lat_spread=c.number(noise, "max_lat_spread", "pairs.noise") or 1.0,
        min_samples=c.number(noise, "min_samples", "pairs.noise", integer=True, minimum=1) or 3,
        failed_pairs=c.choice(m, "failed_pairs", "pairs", ("fail", "ignore"), "fail"),
        require_all_pairs=c.flag(m, "require_all_pairs", "pairs", True),
    )


def _sweeps(c: _Checker, value: Any) -> dict[str, tuple[SweepRule, ...]]:
    m = c.mapping(value, "sweeps", ("lat", "bw", "bibw"))
    out: dict[str, tuple[SweepRule, ...]] = {}
    for bench, rules in m.items():
        where = f"sweeps.{bench}"
        if not isinstance(rules, list):
            raise c.fail(where, f"expected a list of rules, found {type(rules).__name__}",
                         "write `- {size: 8, max_p50_us: 2}` items")
        known = ("size", "max_p50_us", "max_p99_us") if bench == "lat" else ("size", "min_gbps", "min_link_fraction")
        parsed = []
        for i, rule in enumerate(rules):
            w = f"{where}[{i}]"
            r = c.mapping(rule, w, known)
            size = c.size(r, "size", w)
            if size is None:
                raise c.fail(f"{w}.size", "missing", "every sweep rule names the message size it judges")
            parsed.append(SweepRule(
                size=size,
                max_p50_us=c.number(r, "max_p50_us", w), max_p99_us=c.number(r, "max_p99_us", w),
                min_gbps=c.number(r, "min_gbps", w),
                min_link_fraction=c.number(r, "min_link_fraction", w, fraction=True),
            ))
        out[bench] = tuple(parsed)
    return out


IMPACT_KEYS = ("max_impact_latency_p50", "max_impact_latency_p99", "max_impact_bw_p50")


def _impact(c: _Checker, m: Mapping[str, Any], where: str) -> ImpactLimits:
    values = {}
    for key in IMPACT_KEYS:
        v = c.number(m, key, where)
        if v is not None and v < 1:
            raise c.fail(f"{where}.{key}" if where else key, f"expected at least 1, found {v}",
                         "an impact factor is loaded / isolated (>= 1 = worse under load), e.g. 2.0")
        values[key] = v
    return ImpactLimits(**values)


def _congestion(c: _Checker, value: Any) -> CongestionCriteria:
    where = "congestion"
    m = c.mapping(value, where, (*IMPACT_KEYS, "max_impact_allreduce_p50", "max_impact_allreduce_p99",
                                 "hop_classes", "patterns", "require_all_patterns"))
    classes = c.mapping(m.get("hop_classes"), f"{where}.hop_classes", HOP_CLASS_NAMES)
    allreduce = _impact_numbers(c, m, where, ("max_impact_allreduce_p50", "max_impact_allreduce_p99"))
    patterns = m.get("patterns")
    if patterns is not None:
        if isinstance(patterns, str):
            patterns = [p.strip() for p in patterns.split(",") if p.strip()]
        if not isinstance(patterns, list) or not patterns or not all(isinstance(p, str) and p for p in patterns):
            raise c.fail(f"{where}.patterns", f"expected a list of aggressor pattern names, found {patterns!r}",
                         "write e.g. [incast, alltoall, flood]")
    return CongestionCriteria(
        impact=_impact(c, m, where),
        hop_classes={k: _impact(c, c.mapping(v, f"{where}.hop_classes.{k}", IMPACT_KEYS), f"{where}.hop_classes.{k}")
                     for k, v in classes.items()},
        **allreduce,
        patterns=tuple(patterns) if patterns is not None else None,
        require_all_patterns=c.flag(m, "require_all_patterns", where, True),
    )


def _impact_numbers(c: _Checker, m: Mapping[str, Any], where: str, keys: tuple[str, ...]) -> dict[str, float | None]:
    out = {}
    for key in keys:
        v = c.number(m, key, where)
        if v is not None and v < 1:
            raise c.fail(f"{where}.{key}", f"expected at least 1, found {v}",
                         "an impact factor is loaded / isolated (>= 1 = worse under load), e.g. 2.0")
        out[key] = v
    return out


def _percent(c: _Checker, m: Mapping[str, Any], key: str, where: str) -> float | None:
    v = c.number(m, key, where)
    if v is not None and not 0 < v <= 100:
        raise c.fail(f"{where}.{key}", f"expected a percentage in (0, 100], found {v!r}", "write e.g. 80 for 80%")
    return v


def _shift(c: _Checker, value: Any) -> ShiftCriteria:
    m = c.mapping(value, "shift", ("min_effective_pct", "min_median_effective_pct", "require_all_steps",
                                   "failed_flows"))
    return ShiftCriteria(
        min_effective_pct=_percent(c, m, "min_effective_pct", "shift"),
        min_median_effective_pct=_percent(c, m, "min_median_effective_pct", "shift"),
        require_all_steps=c.flag(m, "require_all_steps", "shift", True),
        failed_flows=c.choice(m, "failed_flows", "shift", ("fail", "ignore"), "fail"),
    )


class _StrictLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last one,
    so a second `min_gbps:` would silently replace the first)."""


def _construct_unique_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)  # merge keys (<<) first: overriding a merged key is allowed
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.get(key)
        except TypeError:  # unhashable: construct_mapping says so
            continue
        if first is not None:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first given on line {first})", key_node.start_mark)
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)
MAX_NESTING_HINT = "criteria files nest a few levels deep (see configs/criteria/README.md)"


def load_criteria(path: str | os.PathLike[str]) -> Criteria:
    """Read and validate a criteria file; every problem raises a one-line CriteriaError."""
    try:
        return _load_criteria(Path(path))
    except RecursionError:
        raise CriteriaError(path, "is nested too deeply to be read", MAX_NESTING_HINT) from None


def _load_criteria(p: Path) -> Criteria:
    if not p.exists():
        raise CriteriaError(p, "no such criteria file", "check the path (shipped files: configs/criteria/*.yaml)")
    if p.is_dir():
        raise CriteriaError(p, "is a directory", "pass one criteria YAML file, e.g. configs/criteria/ndr400.yaml")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeError) as exc:
        raise CriteriaError(p, f"cannot be read ({exc})", "check the file and its permissions") from None
    try:
        doc = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        hint = "keep one of the two" if problem.startswith("duplicate key") else "fix the YAML syntax"
        raise CriteriaError(p, f"{where}{problem}", hint) from None
    c = _Checker(p)
    if not isinstance(doc, dict):
        raise CriteriaError(p, "is not a criteria file (expected a YAML mapping)",
                            f"start it with `{FORMAT_KEY}: {FORMAT_VERSION}` (see configs/criteria/README.md)")
    m = c.mapping(doc, "", (FORMAT_KEY, "name", "description", "link_rate_gbps", "pairs", "sweeps", "coll",
                            "congestion", "shift", "attribution", "retest"))
    if FORMAT_KEY not in m:
        raise CriteriaError(p, f"has no `{FORMAT_KEY}` key, so it is not a fabscope criteria file",
                            f"start it with `{FORMAT_KEY}: {FORMAT_VERSION}`")
    if m[FORMAT_KEY] != FORMAT_VERSION:
        raise CriteriaError(p, f"{FORMAT_KEY} {m[FORMAT_KEY]!r} is not supported (this tool reads {FORMAT_VERSION})",
                            "use a criteria file of this version")
    name = m.get("name", p.stem)
    if not isinstance(name, str) or not name:
        raise c.fail("name", f"expected a text, found {name!r}", "fix the value")
    coll_m = c.mapping(m.get("coll"), "coll", ("min_scaling_efficiency", "min_size", "check_errors"))
    att = c.mapping(m.get("attribution"), "attribution",
                    ("host_fail_fraction", "link_fail_fraction", "min_pairs", "max_suspects", "significance",
                     "degraded_fraction"))
    ret = c.mapping(m.get("retest"), "retest", ("max_pairs", "peers_per_host", "pairs_per_link"))
    return Criteria(
        path=p,
        name=name,
        description=str(m.get("description", "")),
        link_rate_gbps=c.number(m, "link_rate_gbps", ""),
        pairs=_pairs(c, m["pairs"]) if "pairs" in m else None,
        sweeps=_sweeps(c, m.get("sweeps")),
        coll=CollCriteria(
            min_scaling_efficiency=c.number(coll_m, "min_scaling_efficiency", "coll", fraction=True),
            min_size=c.size(coll_m, "min_size", "coll") or 0,
            check_errors=c.choice(coll_m, "check_errors", "coll", ("fail", "ignore"), "fail"),
        ) if "coll" in m else CollCriteria(),
        attribution=Attribution(
            host_fail_fraction=c.number(att, "host_fail_fraction", "attribution", fraction=True) or 0.5,
            link_fail_fraction=c.number(att, "link_fail_fraction", "attribution", fraction=True) or 0.5,
            min_pairs=c.number(att, "min_pairs", "attribution", integer=True, minimum=1) or 2,
            max_suspects=c.number(att, "max_suspects", "attribution", integer=True, minimum=1) or 20,
            significance=c.number(att, "significance", "attribution", fraction=True) or 0.001,
            degraded_fraction=c.number(att, "degraded_fraction", "attribution", fraction=True) or 0.85,
        ),
        retest=Retest(
            max_pairs=c.number(ret, "max_pairs", "retest", integer=True, minimum=1) or 2000,
            peers_per_host=c.number(ret, "peers_per_host", "retest", integer=True, minimum=1) or 3,
            pairs_per_link=c.number(ret, "pairs_per_link", "retest", integer=True, minimum=1) or 4,
        ),
        congestion=_congestion(c, m["congestion"]) if "congestion" in m else None,
        shift=_shift(c, m["shift"]) if "shift" in m else None,
    )
