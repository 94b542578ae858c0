"""The verdict as JSON (fabscope_accept 1), JUnit XML (a test case per check and per suspect) and
the text summary on stdout."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fabscope_analyze.verdict import FAIL, INCONCLUSIVE, SKIPPED, Check, RunVerdict, Verdict


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


def check_message(c: Check) -> str:
    """A check's outcome in one line: what was required (with its limit) and the counts."""
    if c.status == FAIL:
        return f"{c.title}: {c.failing} of {c.judged} {c.unit} fail"
    if c.status == INCONCLUSIVE:
        if c.inconclusive:
            return f"{c.title}: {c.inconclusive} of {c.judged} {c.unit} inconclusive (too noisy): re-test"
        return f"{c.title}: " + (c.detail if c.detail.startswith("not judged") else
                                  "not judged" + (f" ({c.detail})" if c.detail else ""))
    if c.status == SKIPPED:
        return f"{c.title}: " + (c.detail or "not judged")
    return f"{c.title}: {c.judged} {c.unit} judged, none fails"


def test_names(verdict: Verdict) -> list[tuple[RunVerdict, Check, str]]:
    """(run, check, test name) of every check: the rule, and `#k` for a rule judged k times in one
    run. Never a measured number, so that nightly test names keep their history."""
    out = []
    for rv in verdict.runs:
        seen: dict[str, int] = {}
        for c in rv.checks:
            k = seen.get(c.rule, 0) + 1
            seen[c.rule] = k
            out.append((rv, c, c.rule if k == 1 else f"{c.rule} #{k}"))
    return out


def junit_cases(verdict: Verdict, prefix: str = "fabscope.accept") -> list[ET.Element]:
    """Test cases: `<prefix>` / `verdict` (fails when the verdict is fail or inconclusive: a CI
    server must not read an inconclusive run as green), a case per check (classname
    `<prefix>.<run>`, name the rule, e.g. `pairs.bandwidth.min_gbps`) and a case `suspects` per run
    (classname `<prefix>.<run>`), failing when the run names suspects, listed in its text (`1.
    host node013: evidence`). The numbers (limits, counts, measurements) and the suspects are in
    the messages, never in the names, so every night has the same tests."""
    cases: list[ET.Element] = []
    head = ET.Element("testcase", classname=prefix, name="verdict")
    if verdict.status in (FAIL, INCONCLUSIVE):
        el = ET.SubElement(head, "failure", message=verdict_line(verdict), type=verdict.status)
        el.text = "\n".join(why_inconclusive(verdict)) if verdict.status == INCONCLUSIVE else ""
    cases.append(head)
    for rv, c, name in test_names(verdict):
        case = ET.Element("testcase", classname=f"{prefix}.{rv.run}", name=name)
        text = "\n".join(([c.detail] if c.detail else []) + c.examples)
        if c.status == FAIL:
            el = ET.SubElement(case, "failure", message=check_message(c), type="criteria")
            el.text = text
        elif c.status in (INCONCLUSIVE, SKIPPED):
            ET.SubElement(case, "skipped", message=check_message(c))
        else:
            ET.SubElement(case, "system-out").text = check_message(c)
        cases.append(case)
    for rv in verdict.runs:
        # one case per run, present whether or not it names anyone: a test per suspect would come
        # and go from night to night
        case = ET.Element("testcase", classname=f"{prefix}.{rv.run}", name="suspects")
        if rv.suspects:
            first = rv.suspects[0]
            more = f" and {len(rv.suspects) - 1} more" if len(rv.suspects) > 1 else ""
            el = ET.SubElement(case, "failure", message=f"suspects: {first.kind} {first.name}{more}", type="suspect")
            el.text = "\n".join(f"{k}. {s.kind} {s.name}: {s.evidence}" for k, s in enumerate(rv.suspects, 1))
        else:
            ET.SubElement(case, "system-out").text = "no suspect"
        cases.append(case)
    return cases


def suite_of(name: str, cases: list[ET.Element]) -> ET.Element:
    suite = ET.Element("testsuite", name=name, tests=str(len(cases)),
                       failures=str(sum(1 for c in cases if c.find("failure") is not None)),
                       skipped=str(sum(1 for c in cases if c.find("skipped") is not None)), errors="0")
    suite.extend(cases)
    return suite


def finish(root: ET.Element) -> None:
    """The totals of a <testsuites> element from its suites."""
    for k in ("tests", "failures", "skipped", "errors"):
        root.set(k, str(sum(int(s.get(k, "0")) for s in root.findall("testsuite"))))


def write_junit(path: Path, verdict: Verdict) -> None:
    """One testsuite per judged run (named as the run) and one, `verdict`, for the verdict."""
    root = ET.Element("testsuites", name=f"fabscope accept {verdict.criteria}")
    groups: dict[str, list[ET.Element]] = {}
    for case in junit_cases(verdict):
        cls = case.get("classname", "")
        run = "verdict" if cls == "fabscope.accept" else cls.removeprefix("fabscope.accept.")
        groups.setdefault(run, []).append(case)
    for name, cases in groups.items():
        root.append(suite_of(name, cases))
    finish(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def why_inconclusive(verdict: Verdict) -> list[str]:
    """The checks that left the verdict inconclusive, one line each (run: check message)."""
    out = [f"{rv.run}: {check_message(c)}" for rv in verdict.runs for c in rv.checks if c.status == INCONCLUSIVE]
    if not verdict.runs:
        out.append("no run of the file is judged by these criteria")
    return out


def verdict_line(verdict: Verdict) -> str:
    return f"fabscope accept: {verdict.status.upper()}  {verdict.file} against {verdict.criteria} " \
           f"({verdict.criteria_path})"


def summary_text(verdict: Verdict, max_suspects: int = 20) -> str:
    lines = [verdict_line(verdict)]
    if verdict.status == INCONCLUSIVE:
        lines += [f"  inconclusive: {w}" for w in why_inconclusive(verdict)]
    lines.append(f"layout: {verdict.layout}")
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
