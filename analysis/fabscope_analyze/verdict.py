"""The verdict vocabulary of acceptance: statuses, checks (one rule on one run), suspects, the
verdict of a run and of a file, and the number formatting their texts use.

Every judge (accept/) builds these; the outputs (JSON, JUnit, text, the report's verdict box)
read them. Nothing here knows a run kind.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable

PASS, FAIL, INCONCLUSIVE, SKIPPED = "pass", "fail", "inconclusive", "skipped"


@dataclass
class Check:
    """One rule applied to one run (a JUnit test case)."""

    run: str
    rule: str  # e.g. "pairs.bandwidth.min_fabric_fraction"
    title: str  # what was required, with the limit
    status: str  # pass, fail, inconclusive, skipped
    judged: int = 0
    failing: int = 0
    inconclusive: int = 0
    unit: str = "pairs"
    detail: str = ""
    examples: list[str] = field(default_factory=list)


@dataclass
class Suspect:
    run: str
    kind: str  # host, host_link, leaf_spine_link, leaf_uplinks, pair, victim, step
    name: str
    failing: int  # failing directed flows it explains
    judged: int  # judged directed flows it carries
    evidence: str
    details: dict[str, Any] = field(default_factory=dict)
    retest: list[tuple[int, int]] = field(default_factory=list, repr=False)  # rank pairs


@dataclass
class RunVerdict:
    run: str
    benchmark: str
    status: str
    checks: list[Check] = field(default_factory=list)
    suspects: list[Suspect] = field(default_factory=list)
    failing_pairs: list[dict[str, Any]] = field(default_factory=list)
    inconclusive_pairs: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    retest: list[tuple[int, int]] = field(default_factory=list, repr=False)


@dataclass
class Verdict:
    file: str
    criteria: str
    criteria_path: str
    status: str
    runs: list[RunVerdict]
    layout: str
    retest_plan: dict[str, Any] | None = None

    @property
    def suspects(self) -> list[Suspect]:
        return [s for r in self.runs for s in r.suspects]


def combine(statuses: Iterable[str]) -> str:
    """fail if any fails; else inconclusive if any is, or if nothing was judged; else pass."""
    s = set(statuses) - {SKIPPED}
    if FAIL in s:
        return FAIL
    if INCONCLUSIVE in s or not s:
        return INCONCLUSIVE
    return PASS


def fmt(v: float, digits: int = 4) -> str:
    """A number in a verdict text: `digits` significant digits, "n/a" for NaN / None."""
    if v is None or not math.isfinite(v):
        return "n/a"
    if 10 ** digits <= abs(v) < 1e12:  # beyond: %g form, never hundreds of digits
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


def size_text(n: int) -> str:
    """Bytes as 4K, 1M, 2G when a whole multiple, else the plain number."""
    for shift, suffix in ((30, "G"), (20, "M"), (10, "K")):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift}{suffix}"
    return str(n)


def round_sig(v: float, digits: int = 4) -> float | None:
    """A JSON number with `digits` significant digits; None for NaN / None."""
    if v is None or not math.isfinite(v):
        return None
    return float(f"{v:.{digits}g}")
