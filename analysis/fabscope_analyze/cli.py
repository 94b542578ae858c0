"""Command line: `fabscope-analyze {report,accept,compare,trend,nightly} ...`.

Exit codes (as for fabscope):
  0  ok: accept passed, compare found no significant regression, trend no recent change point
     for the worse, nightly nothing to alert on
  1  failure / alert: accept failed a criterion; compare found a significant regression; trend
     found a recent change point for the worse (--alert); nightly alerts (a failed or
     inconclusive verdict, a regression against the baseline, a recent change point for the
     worse, hosts removed since the baseline); report cannot be written
  2  usage or unusable input (a flag, a result file, a criteria file, a baseline folder without a
     usable run, an output that cannot be written)
  3  accept only: inconclusive (nothing failed, but not everything could be judged: noisy pairs,
     rules the run's message sizes cannot judge, no run the criteria judge)
Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Container, Sequence

from fabscope_analyze import __version__, parallel
from fabscope_analyze.context import ReportContext
from fabscope_analyze.criteria import CriteriaError, load_criteria
from fabscope_analyze.reader import ResultFileError, RunFile, read_results

PROG = "fabscope-analyze"
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INCONCLUSIVE = 0, 1, 2, 3


class UsageError(Exception):
    """Bad command-line input found after parsing; one line."""


def metric_kinds(text: str) -> tuple[str, ...]:
    """"bandwidth,latency" -> ("bandwidth", "latency"), in compare.METRIC_KINDS order."""
    from fabscope_analyze.compare import METRIC_KINDS

    given = [x.strip() for x in text.split(",") if x.strip()]
    bad = [x for x in given if x not in METRIC_KINDS]
    if bad or not given:
        raise argparse.ArgumentTypeError(f"{text!r}: name one or more of {', '.join(METRIC_KINDS)}, comma-separated")
    return tuple(k for k in METRIC_KINDS if k in given)


def threshold(text: str) -> float:
    """"5%", "5" (percent) or "0.05" -> 0.05."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(%?)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a threshold; write e.g. 5% or 0.05")
    v = float(m.group(1))
    if m.group(2) or v >= 1:
        v /= 100.0
    if not 0 <= v < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a threshold between 0% and 100%")
    return v


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Analyse fabscope result files (results/SCHEMA.md, schema version 1)."
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    report = commands.add_parser(
        "report",
        help="write an HTML report (heatmaps, size sweeps, collectives, provenance)",
        description="Write DIR/index.html with figures (PNG and SVG) in DIR/figures/.",
    )
    report.add_argument("file", type=Path, metavar="FILE.h5", help="result file written by fabscope")
    report.add_argument(
        "-o", "--output", type=Path, metavar="DIR", default=None,
        help="report folder (default: <FILE stem>-report/ next to FILE)",
    )
    report.add_argument("--criteria", type=Path, metavar="CRITERIA.yaml", default=None,
                        help="put the acceptance verdict against these criteria at the top")
    report.set_defaults(func=cmd_report)

    accept = commands.add_parser(
        "accept",
        help="judge a run against acceptance criteria; name the suspect hosts and cables",
        description="Exit 0 when the run passes, 1 when it fails, 2 on bad input, 3 when it is inconclusive "
                    "(nothing failed, but not everything could be judged). "
                    "Criteria format: configs/criteria/README.md.",
    )
    accept.add_argument("file", type=Path, metavar="RUN.h5")
    accept.add_argument("--criteria", type=Path, required=True, metavar="CRITERIA.yaml")
    accept.add_argument("--json", type=Path, metavar="OUT.json", help="write the verdict as JSON")
    accept.add_argument("--junit", type=Path, metavar="OUT.xml", help="write the verdict as JUnit XML")
    accept.add_argument("--retest-plan", type=Path, metavar="OUT",
                        help="write the pairs to measure again: OUT.yaml/.yml as YAML, else the "
                             "`fabscope-plan 1` text of `fabscope pairs --plan-file`")
    accept.add_argument("--report", type=Path, metavar="DIR",
                        help="also write the HTML report (the verdict on top) into DIR, from the same reading of "
                             "the file: what `report FILE --criteria CRITERIA -o DIR` writes")
    accept.add_argument("-q", "--quiet", action="store_true", help="no summary on stdout")
    accept.set_defaults(func=cmd_accept)

    compare = commands.add_parser(
        "compare",
        help="compare two runs (regression or configuration A/B) with confidence intervals",
        description="Exit 1 when NEW is significantly worse than BASE by more than the threshold.",
    )
    compare.add_argument("base", type=Path, metavar="BASE.h5")
    compare.add_argument("new", type=Path, metavar="NEW.h5")
    compare.add_argument("--threshold", type=threshold, default=0.05, metavar="PCT",
                         help="smallest change that counts (default 5%%)")
    compare.add_argument("--labels", nargs=2, metavar=("A", "B"), default=None,
                         help="names of the two runs in the output (default: file names); the settings that "
                              "differ between the two files (/config, run parameters) are listed either way")
    compare.add_argument("-o", "--output", type=Path, metavar="DIR", default=None,
                         help="write DIR/index.html with the table and diff heatmaps")
    compare.add_argument("--json", type=Path, metavar="OUT.json")
    compare.add_argument("--junit", type=Path, metavar="OUT.xml",
                         help="write a JUnit test case per compared metric (stable names; numbers in the message)")
    compare.add_argument("--seed", type=int, default=1, help="seed of the bootstrap (default 1)")
    compare.add_argument("--rows", type=int, default=25, metavar="N", help="rows of the table on stdout")
    compare.add_argument("--metrics", type=metric_kinds, default=(), metavar="KINDS",
                         help="judge only these, comma-separated: bandwidth, latency, time (default: all); "
                              "e.g. bandwidth where latency follows a shared machine's load")
    compare.set_defaults(func=cmd_compare)

    trend = commands.add_parser(
        "trend",
        help="metric history across runs, with change points",
        description="Runs are ordered by created_utc. A run is a change point when the runs before and from it "
                    "differ (Welch t-test over --window runs each side, p < 0.05, windows not overlapping) by at "
                    "least --threshold.",
    )
    trend.add_argument("inputs", type=Path, nargs="+", metavar="DIR_OR_FILE",
                       help="result files, or folders searched for *.h5")
    trend.add_argument("--metric", action="append", default=None, metavar="PATTERN",
                       help="metric names or shell patterns (repeatable); `--metric list` lists them")
    trend.add_argument("-o", "--output", type=Path, metavar="DIR", default=None,
                       help="write DIR/index.html and a figure per metric")
    trend.add_argument("--threshold", type=threshold, default=0.05, metavar="PCT")
    trend.add_argument("--window", type=int, default=3, metavar="K", help="runs on each side of a change point")
    trend.add_argument("--json", type=Path, metavar="OUT.json")
    trend.add_argument("--alert", choices=("recent", "any", "none"), default="recent",
                       help="exit 1 on a change point for the worse among the newest --window runs (recent, the "
                            "default), anywhere in the history (any), or never (none)")
    trend.set_defaults(func=cmd_trend)

    nightly = commands.add_parser(
        "nightly",
        help="the nightly regression job: accept, compare against a baseline, trend; one JSON and one JUnit",
        description="Judge NEW against the criteria (accept), compare it with the baseline (compare) and add it "
                    "to the history (trend). Exit 0 when all is well, 1 on an alert (a failed or inconclusive "
                    "verdict, a significant regression against the baseline, a recent change point for the worse, "
                    "hosts removed since the baseline), 2 on bad input. analysis/README.md, `nightly`.",
    )
    nightly.add_argument("new", type=Path, metavar="NEW.h5", help="tonight's result file")
    nightly.add_argument("--baseline", type=Path, required=True, metavar="FILE_OR_DIR",
                         help="the reference run: a result file, or a folder of runs of which the newest one older "
                              "than NEW that passes --criteria is used (without --criteria: the newest older one)")
    nightly.add_argument("--history", type=Path, nargs="+", default=None, metavar="DIR_OR_FILE",
                         help="earlier nights for the trend (files or folders searched for *.h5; default: the "
                              "--baseline folder when it is one)")
    nightly.add_argument("--criteria", type=Path, default=None, metavar="CRITERIA.yaml",
                         help="acceptance criteria for NEW (and for choosing the baseline in a folder)")
    nightly.add_argument("--json", type=Path, metavar="OUT.json", help="write everything as one JSON document")
    nightly.add_argument("--junit", type=Path, metavar="OUT.xml", help="write one JUnit XML file")
    nightly.add_argument("--threshold", type=threshold, default=0.05, metavar="PCT",
                         help="smallest change that counts, for compare and trend (default 5%%)")
    nightly.add_argument("--window", type=int, default=3, metavar="K",
                         help="trend: runs on each side of a change point")
    nightly.add_argument("--metrics", type=metric_kinds, default=(), metavar="KINDS",
                         help="compare: judge only these (bandwidth, latency, time)")
    nightly.add_argument("--allow-removed-hosts", action="store_true",
                         help="hosts of the baseline missing from NEW are listed but do not alert")
    nightly.add_argument("--seed", type=int, default=1, help="seed of the bootstrap (default 1)")
    nightly.add_argument("-q", "--quiet", action="store_true", help="no summary on stdout")
    nightly.set_defaults(func=cmd_nightly)
    return parser


def note_skipped(run_file: RunFile, handled: Container[type]) -> None:
    """One note on stderr per run of a kind this command does not analyse (a newer benchmark, a
    future kind): it is left out, which is not an error, but must not pass unseen."""
    for run in run_file.runs:
        if type(run) not in handled:
            print(f"{PROG}: note: {run_file.path}: runs/{run.info.group}: benchmark {run.info.benchmark!r} is not "
                  "analysed by this version; skipped", file=sys.stderr)


def _write(path: Path, what: str, writer) -> None:  # type: ignore[no-untyped-def]
    try:
        writer(path)
    except OSError as exc:
        raise UsageError(f"cannot write the {what} to {exc.filename or path}: {exc.strerror or exc}; "
                         "choose another path") from None


def cmd_report(args: argparse.Namespace) -> int:
    criteria = load_criteria(args.criteria) if args.criteria is not None else None
    run_file = read_results(args.file)
    # Imported here so that bad input is reported without loading matplotlib.
    from fabscope_analyze.report import KINDS, default_out_dir, write_report

    note_skipped(run_file, KINDS)
    out_dir = args.output if args.output is not None else default_out_dir(args.file)
    try:
        index = write_report(run_file, out_dir, criteria=criteria)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        where = exc.filename or out_dir
        print(f"{PROG}: cannot write the report to {where}: {reason}; choose another folder with -o",
              file=sys.stderr)
        return EXIT_FAILURE
    print(index)
    return EXIT_OK


def cmd_accept(args: argparse.Namespace) -> int:
    from fabscope_analyze import accept

    criteria = load_criteria(args.criteria)
    run_file = read_results(args.file)
    note_skipped(run_file, accept.JUDGES)
    ctx = ReportContext.of(run_file, criteria)
    verdict = accept.evaluate(run_file, criteria, ctx=ctx)
    if args.retest_plan is not None:
        plan = accept.retest_plan(verdict, run_file, criteria)
        _write(args.retest_plan, "re-test plan", lambda p: accept.write_retest_plan(p, plan, verdict))
        verdict.retest_plan = {"path": str(args.retest_plan), "pairs": plan["pairs"],
                               "rounds": [[list(x) for x in r] for r in plan["rounds"]]}
    if args.json is not None:
        _write(args.json, "JSON verdict", lambda p: accept.write_json(p, verdict))
    if args.junit is not None:
        _write(args.junit, "JUnit XML", lambda p: accept.write_junit(p, verdict))
    if args.report is not None:
        from fabscope_analyze.report import KINDS, write_report

        note_skipped(run_file, KINDS)
        try:
            index = write_report(run_file, args.report, criteria, verdict=verdict, ctx=ctx)
        except OSError as exc:
            raise UsageError(f"cannot write the report to {exc.filename or args.report}: {exc.strerror or exc}; "
                             "choose another folder with --report") from None
        if not args.quiet:
            print(f"report: {index}")
    if not args.quiet:
        sys.stdout.write(accept.summary_text(verdict))
    return {accept.FAIL: EXIT_FAILURE, accept.INCONCLUSIVE: EXIT_INCONCLUSIVE}.get(verdict.status, EXIT_OK)


def cmd_compare(args: argparse.Namespace) -> int:
    from fabscope_analyze import compare

    base = read_results(args.base)
    new = read_results(args.new)
    for run_file in (base, new):
        note_skipped(run_file, compare.COMPARERS)
    labels = tuple(args.labels) if args.labels else (args.base.name, args.new.name)
    if labels[0] == labels[1]:
        labels = (f"{labels[0]} (base)", f"{labels[1]} (new)")
    result = compare.compare(base, new, threshold=args.threshold, labels=labels, seed=args.seed,
                             metrics=args.metrics)
    if not result.runs_compared:
        kinds = [", ".join(sorted({r.info.benchmark for r in f.runs})) or "none" for f in (base, new)]
        raise UsageError(f"{args.base} and {args.new} have no run in common that this version compares "
                         f"(benchmarks in base: {kinds[0]}; in new: {kinds[1]}); compare files of the same suite")
    if args.json is not None:
        _write(args.json, "JSON comparison", lambda p: compare.write_json(p, result))
    if args.junit is not None:
        _write(args.junit, "JUnit XML", lambda p: compare.write_junit(p, result))
    if args.output is not None:
        _write(args.output, "comparison report", lambda p: compare.write_html(p, result, base, new))
    sys.stdout.write(compare.summary_text(result, rows=args.rows))
    return EXIT_FAILURE if result.regressions else EXIT_OK


def cmd_trend(args: argparse.Namespace) -> int:
    from fabscope_analyze import trend

    if args.window < 2:
        raise UsageError(f"--window {args.window}: use at least 2 runs on each side")
    try:
        files = trend.find_files(args.inputs)
        result = trend.trend(files, patterns=args.metric, threshold=args.threshold, window=args.window)
    except trend.TrendInputError as exc:
        raise UsageError(str(exc)) from None
    if args.metric == ["list"]:
        sys.stdout.write("\n".join(result.available) + "\n")
        return EXIT_OK
    if args.json is not None:
        _write(args.json, "JSON trend", lambda p: trend.write_json(p, result))
    if args.output is not None:
        _write(args.output, "trend report", lambda p: trend.write_html(p, result))
    sys.stdout.write(trend.summary_text(result))
    if args.alert == "none":
        return EXIT_OK
    worse = (trend.alerts(result) if args.alert == "recent" else
             [c for s in result.series for c in s.change_points if c.worse])
    return EXIT_FAILURE if worse else EXIT_OK


def cmd_nightly(args: argparse.Namespace) -> int:
    from fabscope_analyze import nightly

    if args.window < 2:
        raise UsageError(f"--window {args.window}: use at least 2 runs on each side")
    try:
        result = nightly.run(args.new, args.baseline, history=args.history, criteria_path=args.criteria,
                             threshold=args.threshold, window=args.window, metrics=args.metrics, seed=args.seed,
                             allow_removed_hosts=args.allow_removed_hosts)
    except nightly.NightlyInputError as exc:
        raise UsageError(str(exc)) from None
    if args.json is not None:
        _write(args.json, "JSON result", lambda p: nightly.write_json(p, result))
    if args.junit is not None:
        _write(args.junit, "JUnit XML", lambda p: nightly.write_junit(p, result))
    if not args.quiet:
        sys.stdout.write(nightly.summary_text(result))
    return EXIT_FAILURE if result.alerts else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # usage errors exit 2
    try:
        return int(args.func(args))
    except (ResultFileError, CriteriaError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (UsageError, parallel.WorkersSettingError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except parallel.WorkerError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
