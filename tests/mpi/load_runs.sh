#!/usr/bin/env bash
# The load benchmarks (shift, congestion) under mpirun on this host, --transport mpi, every file
# checked by load_check.py (which recomputes every derived number from the raw samples).
# usage: load_runs.sh MPIEXEC FABSCOPE SOURCE_DIR OUT_DIR CASE
#   shift       shift at 4 and 5 ranks (every ordered pair measured), --link-rate, permutation at 8
#               ranks twice with one seed (same partners) and once with another (different)
#   congestion  6 ranks (3 victims) and 8 ranks (default 20% -> 2 victims), every pattern
#   placement   8 ranks as the 8 hosts of configs/topologies/emu8.yaml: leaf and spread placement
#   suite       configs/suites/load.yaml at 4 ranks
#   stall       a silent rank (--test-stall): shift goes on without its flows, congestion ends (exit 1)
#   usage       bad input: one line naming the flag, exit 2, no results file
set -uo pipefail
mpiexec=$1 bin=$2 src=$3 out=$4 case=$5
here=$(cd "$(dirname "$0")" && pwd)
check="/usr/bin/python3 $here/load_check.py"
mkdir -p "$out"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

run() {  # NP FILE ARGS...: runs fabscope, fails on a non-zero exit (OpenMPI's shutdown race aside)
  local np=$1 file=$2
  shift 2
  rm -f "$file"
  local log rc=0
  log=$(mktemp)
  local t0=$SECONDS
  timeout 300 "$mpiexec" --oversubscribe -np "$np" "$bin" "$@" --out "$file" >"$log" 2>&1 || rc=$?
  echo "--- np=$np fabscope $* ($((SECONDS - t0)) s, rc $rc)"
  grep -v '^#' "$log" | tail -n 6
  if [ "$rc" -ne 0 ] && ! { grep -q "with PID 0 on" "$log" && grep -q "exiting improperly" "$log"; }; then
    cat "$log"
    rm -f "$log"
    fail "np=$np fabscope $* exited $rc"
    return 1
  fi
  rm -f "$log"
}

partners() { /usr/bin/python3 -c "import h5py,sys; print(h5py.File(sys.argv[1])['runs/00_shift/partner_to'][:].tolist())" "$1"; }

case $case in
shift)
  for np in 4 5; do
    run "$np" "$out/shift-np$np.h5" shift --size 64K --iters 4 --warmup 1 --quiet &&
      $check "$out/shift-np$np.h5" --ranks "$np" --expect shift || fail "shift np=$np"
  done
  run 4 "$out/shift-rate.h5" shift --size 16K --iters 3 --link-rate 10G --quiet &&
    $check "$out/shift-rate.h5" --ranks 4 --expect shift --link-rate 10 || fail "shift --link-rate"
  for name in a b; do
    run 8 "$out/perm-$name.h5" shift --pattern permutation --steps 5 --seed 42 --size 16K --iters 3 --quiet &&
      $check "$out/perm-$name.h5" --ranks 8 --expect shift || fail "permutation $name"
  done
  run 8 "$out/perm-c.h5" shift --pattern permutation --steps 5 --seed 43 --size 16K --iters 3 --quiet || fail "permutation c"
  a=$(partners "$out/perm-a.h5") b=$(partners "$out/perm-b.h5") c=$(partners "$out/perm-c.h5")
  [ -n "$a" ] && [ "$a" = "$b" ] && echo "ok: seed 42 gives the same partners twice: $a" || fail "seed 42 not reproducible: $a vs $b"
  [ "$a" != "$c" ] && echo "ok: seed 43 gives other partners" || fail "seeds 42 and 43 gave the same partners"
  ;;
congestion)
  run 6 "$out/cong-np6.h5" congestion --victims 0.5 --iters 100 --bw-iters 3 --bw-size 16K --aggressor-size 16K \
    --warmup 5 --seed 3 --quiet && $check "$out/cong-np6.h5" --ranks 6 --expect congestion || fail "congestion np=6"
  run 8 "$out/cong-np8.h5" congestion --iters 100 --bw-iters 3 --bw-size 16K --aggressor-size 64K --warmup 5 \
    --patterns flood,incast --quiet && $check "$out/cong-np8.h5" --ranks 8 --expect congestion || fail "congestion np=8"
  ;;
placement)
  topo=(--topology "$src/configs/topologies/emu8.yaml" --rank-as-host)
  small=(--iters 50 --bw-iters 2 --bw-size 4K --aggressor-size 16K --warmup 2 --patterns flood --quiet)
  run 8 "$out/cong-leaf.h5" congestion "${topo[@]}" --placement leaf --victims 0.5 "${small[@]}" &&
    $check "$out/cong-leaf.h5" --ranks 8 --expect congestion --placement-leaf-packed || fail "leaf placement"
  run 8 "$out/cong-spread.h5" congestion "${topo[@]}" --placement spread --victims 0.5 --seed 7 "${small[@]}" &&
    $check "$out/cong-spread.h5" --ranks 8 --expect congestion --placement-spread || fail "spread placement"
  ;;
suite)
  run 4 "$out/load-suite.h5" run "$src/configs/suites/load.yaml" --quiet &&
    $check "$out/load-suite.h5" --ranks 4 --expect shift && $check "$out/load-suite.h5" --ranks 4 --expect congestion ||
    fail "load suite"
  ;;
stall)
  # A rank that goes silent: shift records its flows as failed and goes on; congestion ends the job
  # (exit 1) instead of hanging, keeping the phases already written.
  run 4 "$out/shift-stall.h5" shift --size 16K --iters 3 --timeout 4 --test-stall 2,1 --quiet &&
    /usr/bin/python3 - "$out/shift-stall.h5" <<'PY' || fail "shift with a stalled rank"
import sys, h5py, numpy as np
g = h5py.File(sys.argv[1])["runs/00_shift"]
flow, bad = g["flow_gbps"][:], np.zeros((3, 4), bool)
bad[1, [0, 2]] = True  # step 1 (distance 2): rank 2 silent, rank 0 sends to it
ok = (int(g.attrs["steps_done"]) == 3 and int(g.attrs["complete"]) == 1 and np.all(np.isnan(flow[bad]))
      and np.all(np.isfinite(flow[~bad])) and sorted(g["errors/rank"][:].tolist()) == [0, 2]
      and set(g["errors/step"][:].tolist()) == {1} and sorted(g["errors/status"][:].tolist()) == [2, 3])
print("shift stall:", "ok: flows 0 and 2 of step 1 failed (timeout, test hook), every other flow measured" if ok else "FAIL")
sys.exit(0 if ok else 1)
PY
  rm -f "$out/cong-stall.h5"
  t0=$SECONDS rc=0
  timeout 120 "$mpiexec" --oversubscribe -np 4 "$bin" congestion --iters 50 --bw-iters 2 --bw-size 4K --aggressor-size 4K \
    --timeout 2 --test-stall 1,1 --quiet --out "$out/cong-stall.h5" >"$out/cong-stall.log" 2>&1 || rc=$?
  done=$(/usr/bin/python3 -c "import h5py,sys; print(int(h5py.File(sys.argv[1])['runs/00_congestion'].attrs['phases_done']))" "$out/cong-stall.h5")
  # The silent rank sleeps 20 x --timeout: the job must end long before, by a peer's timeout.
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$done" = 1 ] && [ $((SECONDS - t0)) -lt 30 ] &&
    grep -q "(--timeout)" "$out/cong-stall.log"; then
    echo "ok: congestion with a silent rank ended in $((SECONDS - t0)) s with rc $rc, phases_done $done"
  else
    cat "$out/cong-stall.log"
    fail "congestion with a stalled rank: rc $rc after $((SECONDS - t0)) s, phases_done '$done'"
  fi
  ;;
usage)
  expect_usage() {  # NP NEEDLE ARGS...
    local np=$1 needle=$2
    shift 2
    local t rc=0
    t=$(mktemp -d)
    timeout 120 "$mpiexec" --oversubscribe -np "$np" "$bin" "$@" --out "$t/x.h5" >"$t/out" 2>"$t/err" || rc=$?
    local lines
    lines=$(grep -c '^fabscope: ' "$t/err")
    if [ "$rc" -ne 2 ] || [ "$lines" -ne 1 ] || ! grep -qF -- "$needle" "$t/err" || [ -e "$t/x.h5" ]; then
      fail "np=$np fabscope $*: rc=$rc, $lines message lines, wanted '$needle', file written: $([ -e "$t/x.h5" ] && echo yes || echo no)"
      cat "$t/err"
    else
      echo "ok: np=$np fabscope $* -> rc 2: $(grep '^fabscope: ' "$t/err")"
    fi
    rm -rf "$t"
  }
  expect_usage 1 "shift needs at least 2 ranks (got 1)" shift
  expect_usage 3 "congestion needs at least 4 ranks" congestion
  expect_usage 4 "--placement leaf: needs the fabric's topology" congestion --placement leaf
  expect_usage 4 "--victims 1.5" congestion --victims 1.5
  expect_usage 4 "--patterns: unknown pattern 'storm'" congestion --patterns incast,storm
  expect_usage 3 "--pattern: unknown pattern 'ring'" shift --pattern ring
  expect_usage 3 "--link-rate 'fast'" shift --link-rate fast
  expect_usage 3 "--steps applies to the permutation pattern only" shift --steps 3
  expect_usage 2 "--aggressor-size" congestion --aggressor-size 1Q
  printf 'benchmarks:\n  - {kind: shift, pattern: permutation, steps: -1}\n' >"$out/bad-load.yaml"
  expect_usage 2 "benchmarks[0]: steps must be at least 0" run "$out/bad-load.yaml"
  ;;
*)
  echo "unknown case $case"
  exit 2
  ;;
esac
echo "load $case: $fails failures"
[ "$fails" -eq 0 ]
