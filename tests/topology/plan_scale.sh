#!/bin/bash
# Plan scale bars (issue 5): `fabscope plan` on a generated 3-tier fabric of 12,500 hosts x 8 NICs
# (100,000 GPUs; rail-optimized leaves of 32 NICs, pods of 64 leaves and 32 spines, 16 cores per
# spine plane; RoCE, no routes -> ECMP coverage model) reports rounds, estimated wall time and
# coverage for every plan in under 10 s and under 2 GiB peak RSS, per invocation.
# Four invocations: one endpoint per host and one per NIC, each with a new rack and a 30 min
# budget (new-rack budget), and each with a 30 min budget alone (hop-class + filler budget).
# Usage: plan_scale.sh FABSCOPE_BINARY [MAX_SECONDS] [MAX_MIB]   (fabscope, or the fabscope-topo-tool test driver)
set -u -o pipefail
tool=${1:?usage: plan_scale.sh FABSCOPE_TOPO_TOOL [MAX_SECONDS] [MAX_MIB]}
max_s=${2:-10}
max_mib=${3:-2048}
spec="hosts=12500,rails=8,nics-per-leaf=32,leaves-per-pod=64,spines-per-pod=32,cores-per-plane=16,hosts-per-rack=4,rate=400,link-layer=ethernet"
out=$(mktemp /tmp/fabscope-plan-scale-XXXXXX)
trap 'rm -f "$out" "$out.time"' EXIT
status=0
total_s=0
run() {  # run LABEL ARGS...
  local label=$1; shift
  local timer=()
  [ -x /usr/bin/time ] && timer=(/usr/bin/time -v -o "$out.time")
  if ! "${timer[@]}" "$tool" plan --generate "$spec" --pair-time 1s "$@" > "$out" 2>&1; then
    cat "$out"
    echo "FAIL: $label: fabscope-topo-tool plan failed"
    status=1
    return
  fi
  cat "$out"
  local wall_s rss_mib
  if [ -f "$out.time" ]; then
    wall_s=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$out.time")
    rss_mib=$(awk -F': ' '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$out.time")
  else  # the tool's own getrusage figures
    wall_s=$(sed -n 's/.*total \([0-9.]*\) s.*/\1/p' "$out")
    rss_mib=$(sed -n 's/.*peak RSS \([0-9.]*\) MiB.*/\1/p' "$out")
  fi
  total_s=$(awk -v a="$total_s" -v b="$wall_s" 'BEGIN { print a + b }')
  if awk -v w="$wall_s" -v r="$rss_mib" -v mw="$max_s" -v mr="$max_mib" 'BEGIN { exit !(w < mw && r < mr) }'; then
    echo "PASS $label: wall ${wall_s} s (< ${max_s} s), peak RSS ${rss_mib} MiB (< ${max_mib} MiB)"
  else
    echo "FAIL $label: wall ${wall_s} s (bar ${max_s} s), peak RSS ${rss_mib} MiB (bar ${max_mib} MiB)"
    status=1
  fi
  echo
}
run "per host, every plan, new rack, budget 30m" --new rack0001 --budget 30m
run "per NIC, every plan, new rack, budget 30m" --per-nic --new rack0001 --budget 30m
run "per host, budget 30m" --budget 30m
run "per NIC, budget 30m" --per-nic --budget 30m
echo "total wall time of the four runs: ${total_s} s"
exit $status
