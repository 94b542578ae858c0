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
# (analysis_s: accept + report on a generated 12,500-host v2 file, tests/analysis/scale_bench.py
# --layout rows, when ANALYSIS=1; "na" otherwise.)
#
# usage: tests/perf/scale_bench.sh [REPEATS=3]   (after bash .ci/build release)
#   env: SIZES="1000 4000 12500"  V1_REPEATS=1  ANALYSIS=0  WORKDIR=/tmp
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
    if (($2 >= 12500)); then echo 8; elif (($2 >= 4000)); then echo 12; else echo 20; fi
  fi
}

declare -A lines
for n in $sizes; do
  for layout in v2 v1; do
    k=$reps
    if [[ $layout == v1 ]] && ((n >= 12500)); then k=$v1_reps; fi
    for ((r = 1; r <= k; r++)); do
      line=$("$bin" --ranks "$n" --rounds "$(rounds_for $layout "$n")" --layout $layout --seed $r \
        --out "$tmp/$layout-$n.h5")
      lines[$layout,$n]+="$line"$'\n'
      rm -f "$tmp/$layout-$n.h5"
    done
  done
done

summary=$(for key in "${!lines[@]}"; do printf '%s' "${lines[$key]}"; done | /usr/bin/python3 -c '
import sys, statistics
rows = [dict(kv.split("=", 1) for kv in line.split()) for line in sys.stdin if line.strip()]
by = {}
for r in rows:
    by.setdefault((int(r["ranks"]), r["layout"]), []).append(r)
print(f"{\"ranks\":>6} {\"layout\":>6} {\"reps\":>4} {\"write ms/round (median, spread)\":>34} {\"rank0 MiB\":>9} "
      f"{\"init s\":>7} {\"B/row\":>7} {\"kept %\":>7} {\"file GB (all pairs)\":>19} {\"writing, all rounds\":>19}")
last = {}
for (n, layout) in sorted(by, key=lambda k: (k[0], k[1] != "v2")):
    rs = by[(n, layout)]
    med = [float(r["write_ms_median"]) for r in rs]
    m = statistics.median(med)
    peak = max(float(r["rank0_peak_mib"]) for r in rs)
    bpr = statistics.median(float(r["bytes_per_row"]) for r in rs)
    kept = 100 * sum(int(r["kept"]) for r in rs) / sum(int(r["rows"]) for r in rs)
    gb = statistics.median(float(r["projected_file_gb"]) for r in rs)
    mins = statistics.median(float(r["projected_write_min"]) for r in rs)
    init = statistics.median(float(r["init_s"]) for r in rs)
    last[(n, layout)] = (m, peak, gb)
    print(f"{n:>6} {layout:>6} {len(rs):>4} {m:>12.2f} ({min(med):.2f}..{max(med):.2f}) {\"\":>7} {peak:>9.0f} "
          f"{init:>7.2f} {bpr:>7.1f} {kept:>7.2f} {gb:>19.2f} {mins:>15.1f} min")
for n in sorted({k[0] for k in last}):
    if (n, "v1") in last and (n, "v2") in last:
        v1, v2 = last[(n, "v1")], last[(n, "v2")]
        print(f"ratio v1/v2 at {n}: write time per round {v1[0] / v2[0]:.0f}x, file {v1[2] / v2[2]:.1f}x, "
              f"rank 0 memory {v1[1] / v2[1]:.1f}x")
big = max(k[0] for k in last)
m, peak, gb = last[(big, "v2")]
print(f"SCALE {big} {m:.2f} {peak:.0f} {gb:.2f}")
')
echo "$summary" | grep -v '^SCALE '
read -r _ big ms peak gb <<<"$(echo "$summary" | grep '^SCALE ')"

analysis=na
if [[ ${ANALYSIS:-0} == 1 ]]; then
  out=$(/usr/bin/python3 tests/analysis/scale_bench.py --hosts "$big" --layout rows --workdir "$tmp" 2>&1) || true
  echo "$out" | tail -8
  analysis=$(echo "$out" | sed -n 's/.*accept+report_s=\([0-9.]*\).*/\1/p' | tail -1)
  analysis=${analysis:-na}
fi
fails=0
if [[ $big == 12500 ]]; then
  awk -v m="$ms" 'BEGIN { exit !(m <= 10) }' || { echo "BAR: write time per round $ms ms > 10 ms"; fails=1; }
  awk -v p="$peak" 'BEGIN { exit !(p < 1024) }' || { echo "BAR: rank 0 peak $peak MiB >= 1 GiB"; fails=1; }
  awk -v g="$gb" 'BEGIN { exit !(g < 8) }' || { echo "BAR: projected file $gb GB >= 8 GB"; fails=1; }
fi
echo "scale: ranks=$big write_ms_per_round=$ms rank0_peak_mib=$peak file_gb=$gb analysis_s=$analysis"
exit $fails
