#!/usr/bin/env bash
# Runs one fabscope command under mpirun, then checks its results file with check_results.py.
# usage: run_and_check.sh MPIEXEC FABSCOPE NP EXPECT OUT -- fabscope-args...
set -euo pipefail
mpiexec=$1 bin=$2 np=$3 expect=$4 out=$5
shift 5
[ "${1:-}" = "--" ] && shift
here=$(cd "$(dirname "$0")" && pwd)
rm -f "$out"
"$mpiexec" --oversubscribe -np "$np" "$bin" "$@" --out "$out"
/usr/bin/python3 "$here/check_results.py" "$out" --ranks "$np" --expect "$expect"
