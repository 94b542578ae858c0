#!/usr/bin/env bash
# Preflight is collective: a bad command line, too few ranks or an unwritable output is caught on
# every rank, reported once (one line), and every rank exits 2 before anything runs.
# usage: preflight.sh MPIEXEC FABSCOPE
set -uo pipefail
mpiexec=$1 bin=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

expect_usage() {  # NP EXPECTED-SUBSTRING ARGS...
  local np=$1 needle=$2
  shift 2
  timeout 120 "$mpiexec" --oversubscribe -np "$np" "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  local lines
  lines=$(grep -c '^fabscope: ' "$tmp/err")
  if [ "$rc" -ne 2 ] || [ "$lines" -ne 1 ] || ! grep -qF -- "$needle" "$tmp/err" || grep -q 'Traceback\|terminate called\|Segmentation' "$tmp/err"; then
    echo "FAIL: np=$np fabscope $*: rc=$rc, $lines message lines, wanted '$needle'; stderr:"
    cat "$tmp/err"
    fails=$((fails + 1))
  else
    echo "ok: np=$np fabscope $* -> rc 2: $(grep '^fabscope: ' "$tmp/err")"
  fi
  if ls "$tmp"/*.h5 >/dev/null 2>&1; then
    echo "FAIL: a results file was written although preflight failed"; fails=$((fails + 1)); rm -f "$tmp"/*.h5
  fi
}

expect_usage 1 "pairs needs at least 2 ranks (got 1)" pairs --out "$tmp/p.h5"
expect_usage 1 "lat needs at least 2 ranks (got 1)" lat --out "$tmp/l.h5"
expect_usage 4 "--sizes" lat --sizes 3:5 --out "$tmp/l.h5"
expect_usage 4 "--iters must be at least 1" bw --iters 0 --out "$tmp/b.h5"
expect_usage 4 "unknown transport 'ib'" pairs --transport ib --out "$tmp/p.h5"
expect_usage 3 "--nope" pairs --nope
expect_usage 4 "cannot write the results file" lat --out /proc/fabscope/nope.h5
expect_usage 3 "coll found 1 node" coll --out "$tmp/c.h5"
expect_usage 3 "--ops: unknown operation 'allsum'" coll --node-by rank --ops allreduce,allsum
expect_usage 3 "--dtype: unknown data type 'half'" coll --node-by rank --dtype half
printf 'benchmarks:\n  - {kind: lat, itres: 5}\n' >"$tmp/bad.yaml"
expect_usage 2 "bad.yaml:2: benchmarks[0].itres: unknown field" run "$tmp/bad.yaml" --out "$tmp/r.h5"

expect_usage 2 "unknown subcommand 'frobnicate'" frobnicate
expect_usage 2 "--pair-timeout" pairs --pair-timeout 99999999999999999s --out "$tmp/p.h5"
expect_usage 2 "--qps applies to --transport verbs only" pairs --qps 2 --out "$tmp/p.h5"
expect_usage 2 "--attach /tmp: not a readable regular file" lat --attach /tmp --out "$tmp/a.h5"
# Results and other files are never replaced (issue 18): a text file, a system file, an earlier run.
mkdir -p "$tmp/keep"
printf 'my notes\n' >"$tmp/keep/notes.txt"
expect_usage 2 "not a fabscope results file" lat --out "$tmp/keep/notes.txt"
[ "$(cat "$tmp/keep/notes.txt")" = "my notes" ] || { echo "FAIL: notes.txt was changed"; fails=$((fails + 1)); }
expect_usage 2 "not a fabscope results file" lat --out /proc/version
if timeout 120 "$mpiexec" --oversubscribe -np 2 "$bin" lat --sizes 8 --iters 10 --quiet --label first --out "$tmp/keep/keep.h5" >"$tmp/out" 2>&1; then
  expect_usage 2 "already holds fabscope results; choose another path, or pass --overwrite" lat --sizes 8 --out "$tmp/keep/keep.h5"
  /usr/bin/python3 -c "import h5py,sys; f=h5py.File(sys.argv[1]); sys.exit(0 if f['runs/00_lat'].attrs['label']=='first' else 1)" "$tmp/keep/keep.h5" \
    || { echo "FAIL: the earlier results were replaced"; fails=$((fails + 1)); }
  timeout 120 "$mpiexec" --oversubscribe -np 2 "$bin" lat --sizes 8 --iters 10 --quiet --overwrite --out "$tmp/keep/keep.h5" >"$tmp/out" 2>&1 \
    && echo "ok: --overwrite replaces a results file" || { echo "FAIL: --overwrite exited $?"; fails=$((fails + 1)); }
else
  echo "FAIL: lat exited $?: $(tail -3 "$tmp/out")"; fails=$((fails + 1))
fi

# --help prints once (rank 0) and exits 0.
timeout 60 "$mpiexec" --oversubscribe -np 3 "$bin" pairs --help >"$tmp/out" 2>"$tmp/err"
rc=$?
n=$(grep -c -- '--bw-size' "$tmp/out")
if [ "$rc" -ne 0 ] || [ "$n" -ne 1 ]; then echo "FAIL: --help rc=$rc printed $n times"; fails=$((fails + 1)); else echo "ok: --help once, rc 0"; fi

echo "preflight: $fails failures"
[ "$fails" -eq 0 ]
