"""The re-test plan: the pairs the verdict's suspects and inconclusive pairs ask to measure again,
by host name, in rounds of disjoint pairs; written as YAML or as the `fabscope-plan 1` text that
`fabscope pairs --plan-file` reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import yaml

from fabscope_analyze.criteria import Criteria
from fabscope_analyze.reader import RunFile
from fabscope_analyze.verdict import Verdict


def schedule_rounds(pairs: Sequence[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """Rounds of disjoint pairs (no name twice in a round), pairs in order, first fit."""
    rounds: list[list[tuple[str, str]]] = []
    busy: list[set[str]] = []
    for a, b in pairs:
        for r, used in enumerate(busy):
            if a not in used and b not in used:
                rounds[r].append((a, b))
                used.update((a, b))
                break
        else:
            rounds.append([(a, b)])
            busy.append({a, b})
    return rounds


def retest_plan(verdict: Verdict, run_file: RunFile, criteria: Criteria) -> dict[str, Any]:
    """The pairs to measure again, by host name, in rounds of disjoint pairs."""
    names = [h.hostname for h in run_file.hosts]
    seen: set[frozenset[str]] = set()
    pairs: list[tuple[str, str]] = []
    skipped_same_host = 0
    for rv in verdict.runs:
        for i, j in rv.retest:
            a, b = names[i], names[j]
            if a == b:
                skipped_same_host += 1
                continue
            key = frozenset((a, b))
            if key in seen:
                continue
            seen.add(key)
            pairs.append((a, b))
            if len(pairs) >= criteria.retest.max_pairs:
                break
    rounds = schedule_rounds(pairs)
    return {"pairs": len(pairs), "rounds": rounds, "skipped_same_host": skipped_same_host}


def write_retest_plan(path: Path, plan: dict[str, Any], verdict: Verdict) -> None:
    """YAML (`rounds: [[[a, b], ...], ...]`) for *.yaml / *.yml, else the `fabscope-plan 1` text
    that `fabscope pairs --plan-file` reads (topology/plan_file.hpp)."""
    head = ["re-test plan written by fabscope-analyze accept", f"result file: {verdict.file}",
            f"criteria: {verdict.criteria} ({verdict.criteria_path}); verdict {verdict.status}",
            f"{plan['pairs']} pairs in {len(plan['rounds'])} rounds; the pairs of a round run at the same time"]
    if plan["skipped_same_host"]:
        head.append(f"{plan['skipped_same_host']} pairs of ranks on one host left out (a plan names hosts)")
    if path.suffix.lower() in (".yaml", ".yml"):
        doc = {"fabscope_retest": 1, "source": verdict.file, "criteria": verdict.criteria, "endpoints": "host",
               "rounds": [[list(p) for p in r] for r in plan["rounds"]]}
        text = "".join(f"# {line}\n" for line in head) + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None)
    else:
        lines = [f"# {line}" for line in head] + ["fabscope-plan 1", f"plan retest {verdict.criteria}",
                                                   "endpoints host"]
        for r, pairs in enumerate(plan["rounds"]):
            lines.append(f"round {r}")
            lines.extend(f"{a} {b}" for a, b in pairs)
        text = "\n".join(lines) + "\n"
    path.write_text(text, encoding="utf-8")
