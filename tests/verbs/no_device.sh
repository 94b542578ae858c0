#!/usr/bin/env bash
# On a host without RDMA devices, --transport verbs must stop before running anything: exit 77
# (unsupported here), one line naming the problem, no results file.
set -uo pipefail
mpiexec=$1 bin=$2
if [ -d /sys/class/infiniband ] && [ -n "$(ls -A /sys/class/infiniband 2>/dev/null)" ]; then
  echo "this host has RDMA devices; the no-device case cannot be checked here"; exit 1
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$mpiexec" --oversubscribe -np 2 "$bin" lat --transport verbs --out "$tmp/x.h5" >"$tmp/out" 2>"$tmp/err"
rc=$?
lines=$(grep -c '^fabscope: ' "$tmp/err")
if [ "$rc" -eq 77 ] && [ "$lines" -eq 1 ] && grep -q "no RDMA device found" "$tmp/err" && [ ! -e "$tmp/x.h5" ]; then
  echo "ok: $(grep '^fabscope: ' "$tmp/err")"; exit 0
fi
echo "FAIL: rc=$rc lines=$lines"; cat "$tmp/err"; exit 1
