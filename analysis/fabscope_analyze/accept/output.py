"""The verdict as JSON (fabscope_accept 1), JUnit XML (a test case per check and per suspect) and
the text summary on stdout."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fabscope_analyze.verdict import FAIL, INCONCLUSIVE, SKIPPED, RunVerdict, Verdict


def to_json(verdict: Verdict) -> dict[str, Any]:
    def run_dict(rv: RunVerdict) -> dict[str, Any]:
        d = asdict(rv)
        d.pop("retest")
        for s in d["suspects"]:
            s.pop("retest")
        return d

    return {
        "fabscope_accept": 1,
        "file": verdict.file,
        "criteria": verdict.criteria,
        "criteria_path": verdict.criteria_path,
        "verdict": verdict.status,
        "layout": verdict.layout,
        "suspects": [{k: v for k, v in asdict(s).items() if k != "retest"} for s in verdict.suspects],
        "runs": [run_dict(r) for r in verdict.runs],
        "retest_plan": verdict.retest_plan,
    }


def write_json(path: Path, verdict: Verdict) -> None:
    path.write_text(json.dumps(to_json(verdict), indent=2, allow_nan=False) + "\n", encoding="utf-8")


def write_junit(path: Path, verdict: Verdict) -> None:
    root = ET.Element("testsuites", name=f"fabscope accept {verdict.criteria}")
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    for rv in verdict.runs:
        cases: list[ET.Element] = []
        for c in rv.checks:
            case = ET.Element("testcase", classname=f"{rv.benchmark}.{rv.run}", name=f"{c.rule}: {c.title}")
            text = "\n".join(([c.detail] if c.detail else []) + c.examples)
            if c.status == FAIL:
                el = ET.SubElement(case, "failure", message=f"{c.failing} of {c.judged} {c.unit} fail",
                                   type="criteria")
                el.text = text
            elif c.status in (INCONCLUSIVE, SKIPPED):
                msg = (f"{c.inconclusive} of {c.judged} {c.unit} inconclusive (too noisy): re-test"
                       if c.status == INCONCLUSIVE else (c.detail or "not judged"))
                ET.SubElement(case, "skipped", message=msg)
            cases.append(case)
        for s in rv.suspects:
            case = ET.Element("testcase", classname=f"{rv.benchmark}.{rv.run}.suspects", name=f"{s.kind} {s.name}")
            el = ET.SubElement(case, "failure", message=f"suspect {s.kind} {s.name}", type="suspect")
            el.text = s.evidence
            cases.append(case)
        suite = ET.SubElement(root, "testsuite", name=rv.run, tests=str(len(cases)),
                              failures=str(sum(1 for c in cases if c.find("failure") is not None)),
                              skipped=str(sum(1 for c in cases if c.find("skipped") is not None)), errors="0")
        suite.extend(cases)
        for k in totals:
            totals[k] += int(suite.get(k, "0"))
    root.set("tests", str(totals["tests"]))
    root.set("failures", str(totals["failures"]))
    root.set("skipped", str(totals["skipped"]))
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def summary_text(verdict: Verdict, max_suspects: int = 20) -> str:
    lines = [f"fabscope accept: {verdict.status.upper()}  {verdict.file} against {verdict.criteria} "
             f"({verdict.criteria_path})", f"layout: {verdict.layout}"]
    for rv in verdict.runs:
        lines.append("")
        lines.append(f"run {rv.run} ({rv.benchmark}): {rv.status.upper()}")
        for c in rv.checks:
            count = f"{c.failing} of {c.judged} {c.unit} fail" if c.judged else ""
            if c.inconclusive:
                count += f", {c.inconclusive} inconclusive"
            lines.append(f"  [{c.status.upper():>12}] {c.title}" + (f": {count}" if count else "")
                         + (f" ({c.detail})" if c.detail else ""))
            for e in c.examples[:3] if c.status in (FAIL, INCONCLUSIVE) else []:
                lines.append(f"                   e.g. {e}")
        for note in rv.notes:
            lines.append(f"  note: {note}")
    suspects = verdict.suspects
    if suspects:
        lines.append("")
        lines.append("suspects (most failures explained first):")
        for k, s in enumerate(suspects[:max_suspects], 1):
            lines.append(f"  {k}. {s.kind} {s.name}: {s.evidence}")
        if len(suspects) > max_suspects:
            lines.append(f"  ... {len(suspects) - max_suspects} more in the JSON output")
    if verdict.retest_plan is not None:
        plan = verdict.retest_plan
        lines.append("")
        lines.append(f"re-test plan: {plan.get('path', '(not written)')}: {plan['pairs']} pairs in "
                     f"{len(plan['rounds'])} rounds")
    return "\n".join(lines) + "\n"
