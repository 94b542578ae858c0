#!/usr/bin/env bash
# Issue 14 performance bars: rank 0's results path of `fabscope pairs` at 1,000, 4,000 and 12,500
# ranks (one rank per host, the circle schedule, 1,000 latency samples and 12 windows per direction
# per pair, as the issue measured), schema version 2 (the pairs/ row table, --keep-samples suspect)
# against the schema-version-1 writer it replaced (tests/perf/scale_v1_reference.cpp), side by side.
#
# Each configuration runs in its own process (fabscope-scale-bench: the real suites::assemble_round
# + io::ResultsWriter::append_pairs on a gathered buffer of synthetic samples; see its top comment)
# for several rounds; REPEATS processes per configuration. Printed per configuration: write time
# per round (median over the repeats of each repeat's median; spread = min..max of those medians),
# rank 0's peak RSS (the largest; it includes the gather buffer, N x (1,000 + 12 + 51) doubles),
# bytes per row (file growth / rows), the projected file for all N(N-1)/2 pairs, and the projected
# writing time for all rounds. Bars (v2 at 12,500): write <= 10 ms per round (median), rank 0 < 1 GiB,
# projected file < 8 GB. The v1 reference at 12,500 builds N x N arrays (~20 s, ~2 GiB): it runs
# V1_REPEATS times (default 1) with 2 rounds.
# The last line, for scripts:
#   scale: ranks=12500 write_ms_per_round=M rank0_peak_mib=R file_gb=G analysis_s=S
# (analysis_s: accept --report, the verdict and the report from one reading, on a whole 12,500-host
# run written by the same writer, below; scale_analysis.py also prints accept, then report.)
#
# Then the analysis part (ANALYSIS=1, the default; ANALYSIS=0 skips it): two whole runs of the
# largest size (every round of the circle schedule, fabscope-scale-bench --pool 256 --complete 1;
# the first with a slow host), written by the real assemble_round + ResultsWriter (about 5 min
# each, 2.9 GB each at 12,500), then tests/perf/scale_analysis.py: accept + report (bar 60 s and
# 4 GiB), compare (120 s), trend over 30 nights (120 s) on them.
# Wall time is what the bar is about; the CPU time of the round (user + system of the process) is
# printed beside it because on a shared machine the wall time also holds waits for a core or disk.
#
# usage: tests/perf/scale_bench.sh [REPEATS=3]   (after bash .ci/build release)
#   env: SIZES="1000 4000 12500"  V1_REPEATS=1  WORKDIR=/tmp  ANALYSIS=1
set -euo pipefail
cd "$(dirname "$0")/../.."
reps=${1:-3}
v1_reps=${V1_REPEATS:-1}
sizes=${SIZES:-"1000 4000 12500"}
bin=${FABSCOPE_SCALE_BENCH:-build/release/bin/fabscope-scale-bench}
[[ -x $bin ]] || { echo "scale_bench: $bin not found; build first: bash .ci/build release" >&2; exit 2; }
tmp=$(mktemp -d "${WORKDIR:-/tmp}/fabscope-scale.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

rounds_for() {  # LAYOUT N -> rounds per process
  if [[ $1 == v1 ]]; then
    if (($2 >= 12500)); then echo 2; else echo 3; fi
  else
    if (($2 >= 12500)); then echo 6; elif (($2 >= 4000)); then echo 10; else echo 20; fi
  fi
}

log="$tmp/lines.txt"
for n in $sizes; do
  for layout in v2 v1; do
    k=$reps
    if [[ $layout == v1 ]] && ((n >= 12500)); then k=$v1_reps; fi
    for ((r = 1; r <= k; r++)); do
      "$bin" --ranks "$n" --rounds "$(rounds_for $layout "$n")" --layout $layout --seed $r \
        --out "$tmp/$layout-$n.h5" | tee -a "$log"
      rm -f "$tmp/$layout-$n.h5"
    done
  done
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
summary=$(/usr/bin/python3 tests/perf/scale_summary.py <"$log")
echo "$summary" | grep -v '^SCALE '
read -r _ big ms peak gb cpu <<<"$(echo "$summary" | grep '^SCALE ')"
fails=0
analysis=na
if [[ ${ANALYSIS:-1} != 0 ]]; then
  slow=$((big * 42 / 100))
  for night in 1 2; do
    extra=()
    if ((night == 1)); then extra=(--slow-rank "$slow"); fi
    start=$(date +%s)
    "$bin" --ranks "$big" --rounds $((big % 2 ? big : big - 1)) --pool 256 --complete 1 --seed "$night" \
      "${extra[@]}" --out "$tmp/night$night.h5" | sed "s/^/night $night: /"
    echo "night $night: written in $(($(date +%s) - start)) s"
  done
  if /usr/bin/python3 tests/perf/scale_analysis.py "$tmp/night1.h5" "$tmp/night2.h5" --slow-rank "$slow" \
    --workdir "$tmp" | tee "$tmp/analysis.txt"; then :; else fails=1; fi
  analysis=$(sed -n 's/^analysis: accept_report_s=\([0-9.]*\).*/\1/p' "$tmp/analysis.txt")
  analysis=${analysis:-na}
fi
if [[ $big == 12500 ]]; then
  awk -v m="$ms" 'BEGIN { exit !(m <= 10) }' || { echo "BAR: write time per round $ms ms > 10 ms"; fails=1; }
  awk -v p="$peak" 'BEGIN { exit !(p < 1024) }' || { echo "BAR: rank 0 peak $peak MiB >= 1 GiB"; fails=1; }
  awk -v g="$gb" 'BEGIN { exit !(g < 8) }' || { echo "BAR: projected file $gb GB >= 8 GB"; fails=1; }
fi
echo "cpu time per round at $big ranks (median): $cpu ms"
echo "scale: ranks=$big write_ms_per_round=$ms rank0_peak_mib=$peak file_gb=$gb analysis_s=$analysis"
exit $fails
