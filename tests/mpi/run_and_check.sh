#!/usr/bin/env bash
# Runs one fabscope command under mpirun, then checks its results file with check_results.py.
# usage: run_and_check.sh MPIEXEC FABSCOPE NP EXPECT OUT -- fabscope-args...
# EXPECT is the comma list of benchmark kinds; "coll!" expects fabscope to exit 1 with every
# checked collective recorded as failed (the corruption test hook).
set -euo pipefail
mpiexec=$1 bin=$2 np=$3 expect=$4 out=$5
shift 5
[ "${1:-}" = "--" ] && shift
here=$(cd "$(dirname "$0")" && pwd)
rm -f "$out"
if [ "$expect" = "coll!" ]; then
  rc=0
  "$mpiexec" --oversubscribe -np "$np" "$bin" "$@" --out "$out" || rc=$?
  [ "$rc" -eq 1 ] || { echo "FAIL: expected exit 1 from failed checks, got $rc"; exit 1; }
  exec /usr/bin/python3 "$here/check_results.py" "$out" --ranks "$np" --expect coll --expect-failed
fi
"$mpiexec" --oversubscribe -np "$np" "$bin" "$@" --out "$out"
/usr/bin/python3 "$here/check_results.py" "$out" --ranks "$np" --expect "$expect"
