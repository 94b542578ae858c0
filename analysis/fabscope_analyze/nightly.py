"""The nightly regression job: `fabscope-analyze nightly NEW --baseline FILE_OR_DIR`.

One command, three analyses of tonight's run NEW, one JSON and one JUnit file:

* accept: NEW against --criteria (skipped without --criteria);
* compare: NEW against the baseline. --baseline names a file (that file is the baseline), or a
  folder: its result files (*.h5, searched recursively) created before NEW (created_utc; NEW
  itself left out) are tried newest first, and the first that passes --criteria is the baseline
  (without --criteria: the newest of them). A folder without such a run is bad input (exit 2);
  the JSON and the text say which file was chosen and how many were tried;
* trend: the history (--history files and folders, default the --baseline folder when it is one)
  and NEW, ordered by created_utc; a change point for the worse among the newest --window runs is
  an alert (trend.alerts).

Hosts: compared are the hosts in both NEW and the baseline (as `compare` does). Hosts of the
baseline missing from NEW ("removed": down, drained, or left out of tonight's host list) alert,
unless --allow-removed-hosts; hosts only in NEW ("added", e.g. a new rack) are listed and do not
alert: accept judges them, and they become part of the comparison once a baseline holds them.

Alerts (exit 1): a failed or inconclusive accept verdict, a significant regression against the
baseline beyond --threshold, a recent change point for the worse, removed hosts. Else exit 0.

JUnit test names are stable from night to night: `fabscope.nightly` / `accept verdict`,
`regressions against the baseline`, `change points`, `hosts removed`, `hosts added`; the accept
cases (`fabscope.accept.<run>` / rule, see accept/output.py), the compare cases
(`fabscope.compare.<run>` / `<metric>: <entity>`, compare.junit_cases) and a trend case per
metric (`fabscope.trend` / metric name). Measured numbers are only in messages.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from fabscope_analyze import compare as cmp
from fabscope_analyze import trend as tr
from fabscope_analyze.accept import FAIL, INCONCLUSIVE, PASS, Verdict, evaluate
from fabscope_analyze.accept import output as accept_out
from fabscope_analyze.criteria import Criteria, load_criteria
from fabscope_analyze.reader import ResultFileError, RunFile, check_results, read_results


class NightlyInputError(Exception):
    """Bad input found while choosing the baseline or the history; one line."""


@dataclass
class Baseline:
    path: str
    how: str  # how it was chosen, one sentence
    tried: list[dict[str, Any]] = field(default_factory=list)  # folder: the runs tried, newest first


@dataclass
class Nightly:
    new: str
    criteria: str | None
    baseline: Baseline
    verdict: Verdict | None
    comparison: cmp.Comparison
    trend: tr.Trend
    allow_removed_hosts: bool
    alerts: list[str] = field(default_factory=list)


def _created(rf: RunFile) -> str:
    return rf.created_utc or ""


def choose_baseline(baseline: Path, new: Path, new_rf: RunFile, criteria: Criteria | None) -> Baseline:
    """The baseline file: --baseline itself, or the newest run of the folder older than NEW that
    passes the criteria (any, without criteria)."""
    if not baseline.is_dir():
        if not baseline.exists():
            raise NightlyInputError(f"--baseline {baseline}: no such file or folder; pass a result file or a folder "
                                    "of accepted runs")
        return Baseline(path=str(baseline), how="the file given with --baseline")
    files = sorted(p for p in baseline.rglob("*.h5") if p.is_file())
    new_id = new.resolve()
    candidates: list[tuple[str, Path]] = []
    for p in files:
        if p.resolve() == new_id:
            continue
        try:
            rf = check_results(p)
        except ResultFileError as exc:
            raise NightlyInputError(f"--baseline {baseline}: {exc}; move the file out of the folder") from None
        if _created(rf) < _created(new_rf):
            candidates.append((_created(rf), p))
    candidates.sort(key=lambda t: (t[0], str(t[1])), reverse=True)
    if not candidates:
        raise NightlyInputError(f"--baseline {baseline}: no result file (*.h5) created before {new} "
                                f"({_created(new_rf)}) in this folder; pass a baseline file or a folder of "
                                "earlier runs")
    if criteria is None:
        created, p = candidates[0]
        return Baseline(path=str(p), how=f"the newest of {len(candidates)} earlier runs in {baseline} (created "
                                         f"{created}; no --criteria, so not judged)")
    tried: list[dict[str, Any]] = []
    for created, p in candidates:
        v = evaluate(read_results(p), criteria)
        tried.append({"path": str(p), "created_utc": created, "verdict": v.status})
        if v.status == PASS:
            return Baseline(path=str(p), how=f"the newest run in {baseline} created before NEW that passes "
                                             f"{criteria.name} (created {created}; {len(tried)} tried)", tried=tried)
    raise NightlyInputError(f"--baseline {baseline}: none of the {len(candidates)} runs created before {new} passes "
                            f"the criteria {criteria.path}; pass a baseline file, or put an accepted run in the folder")


def history_files(history: Sequence[Path] | None, baseline: Path, new: Path) -> list[Path]:
    """The runs of the trend: the history (default: the baseline folder, else the baseline file) and
    NEW, each file once."""
    inputs = list(history) if history else [baseline]
    try:
        files = tr.find_files(inputs)
    except tr.TrendInputError as exc:
        raise NightlyInputError(f"--history: {exc}") from None
    out: list[Path] = []
    seen: set[Path] = set()
    for p in [*files, new]:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def run(new: Path, baseline: Path, *, history: Sequence[Path] | None = None, criteria_path: Path | None = None,
        threshold: float = 0.05, window: int = 3, metrics: Sequence[str] = (), seed: int = 1,
        allow_removed_hosts: bool = False) -> Nightly:
    criteria = load_criteria(criteria_path) if criteria_path is not None else None
    new_rf = read_results(new)
    chosen = choose_baseline(baseline, new, new_rf, criteria)
    base_rf = read_results(chosen.path)
    verdict = evaluate(new_rf, criteria) if criteria is not None else None
    comparison = cmp.compare(base_rf, new_rf, threshold=threshold, labels=("baseline", "new"), seed=seed,
                             metrics=metrics)
    if not comparison.runs_compared:
        raise NightlyInputError(f"{chosen.path} (baseline) and {new} have no run in common that this version "
                                "compares; the baseline must be a run of the same suite")
    trend = tr.trend(history_files(history, baseline, new), patterns=None, threshold=threshold, window=window)
    result = Nightly(new=str(new), criteria=str(criteria_path) if criteria_path else None, baseline=chosen,
                     verdict=verdict, comparison=comparison, trend=trend, allow_removed_hosts=allow_removed_hosts)
    result.alerts = alerts(result)
    return result


def alerts(n: Nightly) -> list[str]:
    out = []
    if n.verdict is not None and n.verdict.status in (FAIL, INCONCLUSIVE):
        out.append(f"accept: {n.verdict.status.upper()} against {n.verdict.criteria}")
    regs = n.comparison.regressions
    if regs:
        out.append(f"compare: {len(regs)} significant regression(s) against the baseline beyond "
                   f"{100 * n.comparison.threshold:g}%, e.g. run {regs[0].run}, {regs[0].metric}, "
                   f"{cmp.row_text(regs[0])}")
    for s, c in tr.alerts(n.trend):
        out.append(f"trend: {s.metric} changed for the worse from {Path(c.file).name} ({c.created_utc}): "
                   f"{c.before:.4g} -> {c.after:.4g} {s.unit} ({100 * c.change:+.1f}%)")
    removed = n.comparison.hosts_removed
    if removed and not n.allow_removed_hosts:
        out.append(f"hosts: {len(removed)} host(s) of the baseline missing from NEW: {', '.join(removed[:10])}"
                   + (f" and {len(removed) - 10} more" if len(removed) > 10 else ""))
    return out


def to_json(n: Nightly) -> dict[str, Any]:
    c = n.comparison
    return {
        "fabscope_nightly": 1,
        "new": n.new,
        "status": "alert" if n.alerts else "ok",
        "alerts": n.alerts,
        "criteria": n.criteria,
        "baseline": {"path": n.baseline.path, "how": n.baseline.how, "tried": n.baseline.tried},
        "hosts": {**cmp.hosts_json(c), "removed_alert": bool(c.hosts_removed) and not n.allow_removed_hosts},
        "accept": accept_out.to_json(n.verdict) if n.verdict is not None else None,
        "compare": cmp.to_json(c),
        "trend": tr.to_json(n.trend),
    }


def write_json(path: Path, n: Nightly) -> None:
    path.write_text(json.dumps(to_json(n), indent=2, allow_nan=False) + "\n", encoding="utf-8")


def _case(classname: str, name: str, failure: str | None = None, text: str = "", skipped: str | None = None,
          out: str = "") -> ET.Element:
    case = ET.Element("testcase", classname=classname, name=name)
    if failure is not None:
        ET.SubElement(case, "failure", message=failure, type="alert").text = text
    elif skipped is not None:
        ET.SubElement(case, "skipped", message=skipped)
    elif out:
        ET.SubElement(case, "system-out").text = out
    return case


def junit_cases(n: Nightly) -> dict[str, list[ET.Element]]:
    """Test cases by testsuite: nightly, accept, compare, trend."""
    c = n.comparison
    nightly: list[ET.Element] = []
    if n.verdict is None:
        nightly.append(_case("fabscope.nightly", "accept verdict", skipped="no --criteria: NEW not judged"))
    else:
        v = n.verdict
        nightly.append(_case("fabscope.nightly", "accept verdict",
                             failure=accept_out.verdict_line(v) if v.status in (FAIL, INCONCLUSIVE) else None,
                             text="\n".join(accept_out.why_inconclusive(v)) if v.status == INCONCLUSIVE else "",
                             out=accept_out.verdict_line(v)))
    regs = c.regressions
    nightly.append(_case("fabscope.nightly", "regressions against the baseline",
                         failure=(f"{len(regs)} significant regression(s) beyond {100 * c.threshold:g}% against "
                                  f"{n.baseline.path}" if regs else None),
                         text="\n".join(f"run {r.run}, {r.metric}, {cmp.row_text(r)}" for r in regs[:50]),
                         out=f"baseline {n.baseline.path} ({n.baseline.how}); {len(c.rows)} rows compared"))
    worse = tr.alerts(n.trend)
    nightly.append(_case("fabscope.nightly", "change points",
                         failure=f"{len(worse)} recent change point(s) for the worse" if worse else None,
                         text="\n".join(a for a in n.alerts if a.startswith("trend:")),
                         out=f"{len(n.trend.files)} runs in the history"))
    removed, added = c.hosts_removed, c.hosts_added
    removed_text = "\n".join(removed)
    nightly.append(_case("fabscope.nightly", "hosts removed",
                         failure=(f"{len(removed)} host(s) of the baseline missing from NEW"
                                  if removed and not n.allow_removed_hosts else None),
                         text=removed_text,
                         out=(f"{len(removed)} removed (allowed): {removed_text}" if removed else "none")))
    nightly.append(_case("fabscope.nightly", "hosts added",
                         out=(f"{len(added)} host(s) only in NEW, not compared: " + ", ".join(added)) if added
                         else "none"))
    trend_cases = []
    for s in n.trend.series:
        bad = [cp for ser, cp in worse if ser is s]
        v = [x for x in s.values if isinstance(x, float) and math.isfinite(x)]
        trend_cases.append(_case(
            "fabscope.trend", s.metric,
            failure=(f"changed for the worse from {Path(bad[0].file).name}: {bad[0].before:.4g} -> {bad[0].after:.4g} "
                     f"{s.unit} ({100 * bad[0].change:+.1f}%, p {bad[0].p_value:.2g})" if bad else None),
            out=f"latest {v[-1]:.4g} {s.unit}, {len(v)} runs" if v else "no value"))
    return {"nightly": nightly,
            "accept": accept_out.junit_cases(n.verdict) if n.verdict is not None else [],
            "compare": cmp.junit_cases(c),
            "trend": trend_cases}


def write_junit(path: Path, n: Nightly) -> None:
    root = ET.Element("testsuites", name="fabscope nightly")
    for name, cases in junit_cases(n).items():
        root.append(accept_out.suite_of(name, cases))
    accept_out.finish(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def summary_text(n: Nightly, rows: int = 10) -> str:
    c = n.comparison
    lines = [f"fabscope nightly: {'ALERT' if n.alerts else 'OK'}  {n.new}",
             f"baseline: {n.baseline.path} ({n.baseline.how})"]
    lines += [f"  alert: {a}" for a in n.alerts]
    if n.verdict is not None:
        lines.append(f"accept: {n.verdict.status.upper()} against {n.verdict.criteria}")
        if n.verdict.status == INCONCLUSIVE:
            lines += [f"  inconclusive: {w}" for w in accept_out.why_inconclusive(n.verdict)]
        for rv in n.verdict.runs:
            for ch in rv.checks:
                if ch.status == FAIL:
                    lines.append(f"  {rv.run}: {accept_out.check_message(ch)}")
    else:
        lines.append("accept: not run (no --criteria)")
    lines.append(f"compare: {len(c.rows)} rows, {len(c.regressions)} regressions, "
                 f"{sum(r.improvement for r in c.rows)} improvements; hosts: {c.hosts_common} in both, "
                 f"{len(c.hosts_removed)} removed, {len(c.hosts_added)} added")
    for r in c.regressions[:rows]:
        lines.append(f"  REGRESSION run {r.run}, {r.metric}, {cmp.row_text(r)}")
    if c.hosts_removed:
        lines.append(f"  removed: {', '.join(c.hosts_removed)}")
    if c.hosts_added:
        lines.append(f"  added (judged by accept, not compared): {', '.join(c.hosts_added)}")
    cps = sum(len(s.change_points) for s in n.trend.series)
    lines.append(f"trend: {len(n.trend.files)} runs, {len(n.trend.series)} metrics, {cps} change points, "
                 f"{len(tr.alerts(n.trend))} recent for the worse")
    return "\n".join(lines) + "\n"
