#!/usr/bin/env bash
# Measures the congestion judgement of load_test.sh (step 2) run after run: the rig comes up once
# (8 hosts, 2 racks, host links 500 Mb/s, both uplinks 20 Mb/s), then `fabscope congestion` runs
# RUNS times exactly as load_test.sh runs it, optionally beside HOGS CPU hogs (`yes >/dev/null`)
# started here and stopped at the end. Every run prints its victims' impact factors
# (congestion_check.py), and the end a summary: per class (cross-rack / same-rack victims) the
# median and range of the p99 latency, p50 latency and p50 bandwidth impact, and per run the
# separation min(cross) / max(same) that load_test.sh judges. The figures in tests/README.md
# ("fabric.load under CPU contention") come from this script.
# --uplink-rate R (default 20mbit) is the control: uncapped uplinks (e.g. 500mbit) leave nothing to
# separate the classes, and the rule must fail.
# usage: congestion_spread.sh FABSCOPE [--runs N] [--hogs K] [--uplink-rate R] [--outdir DIR]
#        (root; rig id FABSCOPE_RIG_ID, default "spread")
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=$(readlink -f "${1:?usage: congestion_spread.sh FABSCOPE [--runs N] [--hogs K] [--outdir DIR]}")
shift
runs=5
hogs=0
uplink=20mbit
out=
while (($#)); do
  case $1 in
    --runs) runs=${2:?}; shift 2 ;;
    --hogs) hogs=${2:?}; shift 2 ;;
    --uplink-rate) uplink=${2:?}; shift 2 ;;
    --outdir) out=${2:?}; shift 2 ;;
    *) echo "congestion_spread.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ -n "$out" ] || out=$(mktemp -d "${TMPDIR:-/tmp}/fabric-spread.XXXXXX")
mkdir -p "$out"
rig() { "$here/rig.sh" --id "${FABSCOPE_RIG_ID:-spread}" "$@"; }
hog_pids=()
cleanup() {
  local p
  for p in "${hog_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rig down >/dev/null 2>&1
}
trap cleanup EXIT
rig up --hosts 8 --racks 2 --host-rate 100mbit --uplink-delay-us 50 >"$out/rig-up.log" 2>&1 || { cat "$out/rig-up.log"; exit 1; }
topo=$(rig topology)
for h in 1 2 3 4 5 6 7 8; do rig rate "h$h" 500mbit >/dev/null || exit 1; done
rig rate leaf1 "$uplink" >/dev/null && rig rate leaf2 "$uplink" >/dev/null || exit 1
for ((k = 0; k < hogs; k++)); do
  yes >/dev/null &
  hog_pids+=($!)
done
echo "congestion_spread: $runs runs beside $hogs CPU hogs, uplinks $uplink; files in $out"
files=()
for ((r = 1; r <= runs; r++)); do
  t=$SECONDS
  rig mpirun "$bin" congestion --victims 0.5 --placement spread --seed 2 --patterns alltoall --aggressor-size 64K \
    --iters 300 --bw-iters 4 --bw-size 16K --warmup 20 --topology "$topo" --out "$out/congestion-$r.h5" --overwrite \
    >"$out/congestion-$r.log" 2>&1 || { echo "run $r failed:"; tail -5 "$out/congestion-$r.log"; continue; }
  echo "run $r: $((SECONDS - t)) s, load $(cut -d' ' -f1 /proc/loadavg)"
  /usr/bin/python3 "$here/congestion_check.py" "$out/congestion-$r.h5" || true
  files+=("$out/congestion-$r.h5")
done
/usr/bin/python3 "$here/congestion_check.py" --summary "${files[@]}"
