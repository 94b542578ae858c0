"""Command line: `fabscope-analyze report FILE.h5 [-o DIR]`.

Exit codes (as for fabscope): 0 ok, 1 failure (e.g. the report cannot be written), 2 usage or a
result file that cannot be used. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from fabscope_analyze import __version__
from fabscope_analyze.reader import ResultFileError, read_results

PROG = "fabscope-analyze"
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Analyse fabscope result files (results/SCHEMA.md, schema version 1)."
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    report = commands.add_parser(
        "report",
        help="write an HTML report (heatmaps, size sweeps, provenance)",
        description="Write DIR/index.html with figures (PNG and SVG) in DIR/figures/.",
    )
    report.add_argument("file", type=Path, metavar="FILE.h5", help="result file written by fabscope")
    report.add_argument(
        "-o", "--output", type=Path, metavar="DIR", default=None,
        help="report folder (default: <FILE stem>-report/ next to FILE)",
    )
    report.set_defaults(func=cmd_report)
    return parser


def cmd_report(args: argparse.Namespace) -> int:
    run_file = read_results(args.file)
    # Imported here so that bad input is reported without loading matplotlib.
    from fabscope_analyze.report import default_out_dir, write_report

    out_dir = args.output if args.output is not None else default_out_dir(args.file)
    try:
        index = write_report(run_file, out_dir)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        where = exc.filename or out_dir
        print(f"{PROG}: cannot write the report to {where}: {reason}; choose another folder with -o",
              file=sys.stderr)
        return EXIT_FAILURE
    print(index)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # usage errors exit 2
    try:
        return int(args.func(args))
    except ResultFileError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
