"""Acceptance: a result file against a criteria file -> verdict, suspects, re-test plan.

One judge per run kind (JUDGES, keyed by the reader's run class), each in its own module:
pairs/ (pairs runs: rules, noise, stalls, attribution), sweep.py, coll.py, load.py (shift and
congestion). A judge returns the RunVerdict of a run, or None when the criteria have no section
for it. retest.py writes the re-test plan, output.py the JSON, JUnit and text outputs; the
vocabulary (Check, Suspect, RunVerdict, Verdict, PASS/FAIL/...) is fabscope_analyze.verdict.
"""

from __future__ import annotations

from typing import Protocol

from fabscope_analyze.accept.coll import CollJudge, judge_coll
from fabscope_analyze.accept.config_evidence import add_config_evidence
from fabscope_analyze.accept.port_counters import add_port_counter_evidence
from fabscope_analyze.accept.load import CongestionJudge, ShiftJudge, judge_congestion, judge_shift
from fabscope_analyze.accept.output import summary_text, to_json, write_json, write_junit
from fabscope_analyze.accept.pairs import PairsJudge, StallCounts, judge_pairs, stall_counts
from fabscope_analyze.accept.retest import retest_plan, schedule_rounds, write_retest_plan
from fabscope_analyze.accept.sweep import SweepJudge, judge_sweep
from fabscope_analyze.context import ReportContext
from fabscope_analyze.criteria import Criteria
from fabscope_analyze.layout import Layout
from fabscope_analyze.reader import CollRun, CongestionRun, PairsRun, Run, RunFile, ShiftRun, SweepRun
from fabscope_analyze.verdict import (FAIL, INCONCLUSIVE, PASS, SKIPPED, Check, RunVerdict, Suspect, Verdict, combine,
                                      fmt, size_text)

__all__ = ["FAIL", "INCONCLUSIVE", "JUDGES", "PASS", "SKIPPED", "Check", "RunJudge", "RunVerdict", "StallCounts",
           "Suspect", "Verdict", "combine", "evaluate", "fmt", "judge", "judge_coll", "judge_congestion",
           "judge_pairs", "judge_shift", "judge_sweep", "retest_plan", "schedule_rounds", "size_text",
           "stall_counts", "summary_text", "to_json", "write_json", "write_junit", "write_retest_plan"]


class RunJudge(Protocol):
    """What accept needs of a run kind."""

    def judge(self, run: Run, criteria: Criteria, ctx: ReportContext) -> RunVerdict | None:
        """The run's verdict, or None when the criteria do not judge this kind of run."""


JUDGES: dict[type, RunJudge] = {
    PairsRun: PairsJudge(),
    SweepRun: SweepJudge(),
    CollRun: CollJudge(),
    CongestionRun: CongestionJudge(),
    ShiftRun: ShiftJudge(),
}


def judge(run: Run, criteria: Criteria, ctx: ReportContext) -> RunVerdict | None:
    """One run's verdict; None for kinds without a judge or without criteria for them."""
    handler = JUDGES.get(type(run))
    return handler.judge(run, criteria, ctx) if handler is not None else None


def evaluate(run_file: RunFile, criteria: Criteria, layout: Layout | None = None,
             ctx: ReportContext | None = None) -> Verdict:
    """The verdict of every run of the file that the criteria judge."""
    ctx = ctx or ReportContext.of(run_file, criteria, layout)
    runs = []
    for run in run_file.runs:
        if (rv := judge(run, criteria, ctx)) is not None:
            if isinstance(run, PairsRun):  # /hosts configuration joins the suspects (config_evidence.py)
                add_config_evidence(rv, run, ctx)
            runs.append(rv)
    add_port_counter_evidence(runs, run_file)  # /pma: cables whose error counters rose (port_counters.py)
    status = combine(r.status for r in runs)
    verdict = Verdict(file=str(run_file.path), criteria=criteria.name, criteria_path=str(criteria.path),
                      status=status, runs=runs, layout=ctx.layout.source)
    if not runs:
        verdict.status = INCONCLUSIVE
    return verdict
