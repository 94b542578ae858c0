#!/usr/bin/env bash
# Proves the Soft-RoCE VM rig end to end:
#   one VM:  rxe0 PORT_ACTIVE in ibv_devinfo; ib_write_lat server/client over rxe0; mpirun -np 2;
#            a host-built verbs program shipped with --bin; a --file; files from /results come back
#   two VMs: ib_write_bw between vm1 and vm2; `$FABSCOPE_MPIRUN_2VM -np 2 hostname` spans both;
#            a result file comes back from vm1
# Usage: smoke.sh [--cold]   (--cold first deletes the cache, kernel download included)
# Exit codes: 0 all checks passed, 1 a check failed, 77 the rig cannot run here.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${FABSCOPE_VM_CACHE:-$HOME/.cache/fabscope-vm}
now() { date +%s.%N; }
secs() { awk "BEGIN{printf \"%.1f\", $2 - $1}"; }

cold=0
for arg in "$@"; do
  case $arg in
    --cold) cold=1 ;;
    -h | --help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "smoke.sh: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done

T0=$(now)
W=$(mktemp -d "${TMPDIR:-/tmp}/fabscope-vm-smoke.XXXXXX")
trap 'rm -rf "$W"' EXIT
failures=()
check() { # name, condition command...
  local name=$1
  shift
  if "$@"; then
    echo "smoke: PASS $name"
  else
    echo "smoke: FAIL $name"
    failures+=("$name")
  fi
}

if ((cold)); then
  echo "smoke: --cold: removing $CACHE"
  rm -rf "$CACHE"
fi

# ---- build ----
t=$(now)
set +e
"$HERE/build-image.sh"
rc=$?
set -e
t_build=$(secs "$t" "$(now)")
if ((rc == 77)); then
  echo "smoke: SKIP: the VM image cannot be built here"
  exit 77
fi
((rc == 0)) || { echo "smoke: FAIL build-image.sh (exit $rc)"; exit 1; }

# ---- a verbs program built on the host, shipped with --bin (skipped without a compiler) ----
t=$(now)
probe=
if command -v gcc >/dev/null && [[ -f /usr/include/infiniband/verbs.h ]]; then
  cat >"$W/probe.c" <<'EOF'
#include <infiniband/verbs.h>
#include <stdio.h>
int main(void) {
  int n = 0;
  struct ibv_device **list = ibv_get_device_list(&n);
  if (!list) { perror("ibv_get_device_list"); return 1; }
  for (int i = 0; i < n; ++i) printf("probe-device %s\n", ibv_get_device_name(list[i]));
  ibv_free_device_list(list);
  return n > 0 ? 0 : 1;
}
EOF
  mkdir -p "$W/bin"
  gcc -O2 -o "$W/bin/fabscope-vm-probe" "$W/probe.c" -libverbs && probe="$W/bin/fabscope-vm-probe"
fi
[[ -n $probe ]] || echo "smoke: note: no gcc or libibverbs-dev, the --bin check is skipped"
printf 'fabscope file from the host\n' >"$W/input.txt"
t_prep=$(secs "$t" "$(now)")

# ---- one VM ----
cat >"$W/single.sh" <<'EOF'
fail() { echo "SMOKE-FAIL: $*"; exit 1; }
ibv_devinfo -d rxe0 | tee /tmp/devinfo.txt
grep -q 'hca_id:[[:space:]]*rxe0' /tmp/devinfo.txt || fail "ibv_devinfo does not list rxe0"
grep -q PORT_ACTIVE /tmp/devinfo.txt || fail "rxe0 port is not PORT_ACTIVE"
ib_write_lat -d "$FABSCOPE_RDMA_DEV" -x "$FABSCOPE_GID_INDEX" -n 200 >/tmp/lat-server.txt 2>&1 &
server=$!
ok=
for try in 1 2 3 4 5; do
  sleep 1
  if ib_write_lat -d "$FABSCOPE_RDMA_DEV" -x "$FABSCOPE_GID_INDEX" -n 200 "$FABSCOPE_VM_IP" >/tmp/lat-client.txt 2>&1; then
    ok=1
    break
  fi
done
cat /tmp/lat-client.txt
wait "$server" || { cat /tmp/lat-server.txt; fail "ib_write_lat server failed"; }
[ -n "$ok" ] || fail "ib_write_lat client failed"
mkdir -p /results/smoke
grep -A1 '#bytes' /tmp/lat-client.txt | tail -n1 >/results/smoke/write_lat.txt
[ -s /results/smoke/write_lat.txt ] || fail "no ib_write_lat result line"
mpirun -np 2 hostname >/tmp/mpi.txt 2>&1 || { cat /tmp/mpi.txt; fail "mpirun -np 2 hostname"; }
[ "$(grep -c vm1 /tmp/mpi.txt)" = 2 ] || { cat /tmp/mpi.txt; fail "mpirun -np 2 did not print vm1 twice"; }
[ "$(cat /fabscope/input.txt)" = "fabscope file from the host" ] || fail "--file content differs"
if [ -n "$PROBE" ]; then
  "$PROBE" | tee /tmp/probe.txt || fail "host-built verbs program failed"
  grep -q 'probe-device rxe0' /tmp/probe.txt || fail "host-built program does not see rxe0"
fi
echo "hello from the VM" >/results/hello.txt
dd if=/dev/urandom of=/results/smoke/random.bin bs=1k count=300 2>/dev/null
md5sum /results/smoke/random.bin | cut -d' ' -f1 >/results/smoke/random.md5
echo "SMOKE-SINGLE-OK"
EOF
{
  echo "PROBE='$probe'"
  cat "$W/single.sh"
} >"$W/single-run.sh"
bin_args=()
[[ -z $probe ]] || bin_args=(--bin "$probe")
t=$(now)
set +e
"$HERE/run-vm.sh" --timeout 300 --outdir "$W/out1" --log "$W/single.log" "${bin_args[@]}" \
  --file "$W/input.txt:/fabscope/input.txt" --script "$W/single-run.sh"
rc1=$?
set -e
t_single=$(secs "$t" "$(now)")
check "single VM: guest checks (ibv_devinfo rxe0 PORT_ACTIVE, ib_write_lat, mpirun, --file${probe:+, --bin})" \
  test "$rc1" = 0
check "single VM: result file came back" test "$(cat "$W/out1/hello.txt" 2>/dev/null)" = "hello from the VM"
check "single VM: binary file in a subdirectory came back intact" \
  test "$(md5sum <"$W/out1/smoke/random.bin" 2>/dev/null | cut -d' ' -f1)" = "$(cat "$W/out1/smoke/random.md5" 2>/dev/null)"
lat_line=$(cat "$W/out1/smoke/write_lat.txt" 2>/dev/null || true)

# ---- two VMs ----
cat >"$W/two.sh" <<'EOF'
fail() { echo "SMOKE-FAIL: $*"; exit 1; }
ib_write_bw -d "$FABSCOPE_RDMA_DEV" -x "$FABSCOPE_GID_INDEX" -s 65536 -n 200 >/tmp/bw-server.txt 2>&1 &
server=$!
ok=
for try in 1 2 3 4 5; do
  sleep 1
  if $FABSCOPE_SSH vm2 ib_write_bw -d rxe0 -x 1 -s 65536 -n 200 vm1 >/tmp/bw-client.txt 2>&1; then
    ok=1
    break
  fi
done
cat /tmp/bw-client.txt
wait "$server" || { cat /tmp/bw-server.txt; fail "ib_write_bw server on vm1 failed"; }
[ -n "$ok" ] || fail "ib_write_bw client on vm2 failed"
mkdir -p /results
grep -A1 '#bytes' /tmp/bw-server.txt | tail -n1 >/results/write_bw.txt
[ -s /results/write_bw.txt ] || fail "no ib_write_bw result line"
$FABSCOPE_MPIRUN_2VM -np 2 hostname >/tmp/mpi.txt 2>&1 || { cat /tmp/mpi.txt; fail "mpirun across vm1 and vm2"; }
cat /tmp/mpi.txt
grep -qx vm1 /tmp/mpi.txt && grep -qx vm2 /tmp/mpi.txt || fail "mpirun -np 2 did not run on both VMs"
cp /tmp/mpi.txt /results/mpi-hosts.txt
echo "SMOKE-TWO-OK"
EOF
t=$(now)
set +e
"$HERE/run-2vm.sh" --timeout 400 --outdir "$W/out2" --log "$W/two.log" --script "$W/two.sh"
rc2=$?
set -e
t_two=$(secs "$t" "$(now)")
check "two VMs: guest checks (ib_write_bw vm2 -> vm1, mpirun -np 2 across both)" test "$rc2" = 0
check "two VMs: result files came back from vm1" \
  test "$(sort "$W/out2/mpi-hosts.txt" 2>/dev/null | tr '\n' ' ')" = "vm1 vm2 "
bw_line=$(cat "$W/out2/write_bw.txt" 2>/dev/null || true)

echo
echo "smoke: ib_write_lat (one VM, 2 B):        ${lat_line:-n/a}"
echo "smoke: ib_write_bw (two VMs, 64 KiB):     ${bw_line:-n/a}"
echo "smoke: times: build-image ${t_build}s, probe compile ${t_prep}s, one VM ${t_single}s," \
  "two VMs ${t_two}s, total $(secs "$T0" "$(now)")s"
if ((${#failures[@]})); then
  echo "smoke: ${#failures[@]} check(s) FAILED: ${failures[*]}"
  exit 1
fi
echo "smoke: all checks passed"
