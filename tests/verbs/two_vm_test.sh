#!/usr/bin/env bash
# A real two-node verbs run: two Soft-RoCE VMs (tests/verbs/vm/run-2vm.sh), each with its own rxe0
# on a virtio NIC, joined by a QEMU UDP socket on host loopback. One MPI job spans both VMs
# ($FABSCOPE_MPIRUN_2VM: one rank per VM, MPI over TCP for the out-of-band exchange) and runs
# fabscope lat, bw and pairs with --transport verbs, then lat, bw, bibw and pairs with --cm rdmacm
# (librdmacm connects the QPs across the two VMs). The results files come back to the host and
# are checked with tests/mpi/check_results.py, plus:
#   - /hosts/hostname differs between the ranks (vm1 and vm2): the two ranks ran on two hosts;
#   - /hosts/rdma_devices of both ranks shows rxe0 ACTIVE on Ethernet;
#   - each rank's own rxe0 counted the bw payload (rank 0 sent it, rank 1 received it): the
#     traffic crossed the emulated wire instead of staying inside one device (oob and rdmacm);
#   - the run attribute cm says oob or rdmacm.
# A VM that fails to boot fails the test with its console log.
#
# usage: two_vm_test.sh [FABSCOPE_BINARY] [--outdir DIR] [--timeout S]
#   default binary: build/release/bin/fabscope. Exit 0 only if every check passed; 1 on any
#   failure; 77 when the VM rig cannot run on this host (as tests/verbs/vm/run-vm.sh).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
T0=$(date +%s.%N)
bin=$root/build/release/bin/fabscope
out=
timeout_s=420
while (($#)); do
  case $1 in
    --outdir) out=${2:?}; shift 2 ;;
    --timeout) timeout_s=${2:?}; shift 2 ;;
    -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
    -*) echo "two_vm_test.sh: unknown option '$1'" >&2; exit 2 ;;
    *) bin=$1; shift ;;
  esac
done
[[ -x $bin ]] || { echo "two_vm_test.sh: no fabscope binary at $bin" >&2; exit 1; }
bin=$(readlink -f "$bin")
keep_out=1
if [[ -z $out ]]; then out=$(mktemp -d "${TMPDIR:-/tmp}/two-vm-test.XXXXXX"); keep_out=0; fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
cleanup() { ((keep_out)) || rm -rf "$out"; }
trap cleanup EXIT

guest=$(cat <<CMDS
set -u
f=$bin
rc=0
hostname; \$FABSCOPE_SSH vm2 hostname
\$FABSCOPE_MPIRUN_2VM -np 2 \$f lat --transport verbs --sizes 8,4K,64K --iters 100 --warmup 10 --out /results/lat.h5 --quiet || { echo "lat failed"; rc=1; }
\$FABSCOPE_MPIRUN_2VM -np 2 \$f bw --transport verbs --sizes 64K --iters 4 --warmup 1 --out /results/bw.h5 --quiet || { echo "bw failed"; rc=1; }
\$FABSCOPE_MPIRUN_2VM -np 2 \$f pairs --transport verbs --bw-size 64K --iters 50 --bw-iters 2 --warmup 5 --out /results/pairs.h5 --quiet || { echo "pairs failed"; rc=1; }
# --cm rdmacm (separate jobs: a suite file's entries take no verbs options from the command line).
cm="--transport verbs --cm rdmacm --quiet"
\$FABSCOPE_MPIRUN_2VM -np 2 \$f lat \$cm --sizes 8,64K --iters 50 --warmup 5 --out /results/cm-lat.h5 || { echo "lat --cm rdmacm failed"; rc=1; }
\$FABSCOPE_MPIRUN_2VM -np 2 \$f bw \$cm --sizes 64K --iters 3 --warmup 1 --out /results/cm-bw.h5 || { echo "bw --cm rdmacm failed"; rc=1; }
\$FABSCOPE_MPIRUN_2VM -np 2 \$f bibw \$cm --verb send --sizes 64K --iters 2 --warmup 1 --out /results/cm-bibw.h5 || { echo "bibw --cm rdmacm failed"; rc=1; }
\$FABSCOPE_MPIRUN_2VM -np 2 \$f pairs \$cm --bw-size 64K --iters 50 --bw-iters 2 --warmup 5 --out /results/cm-pairs.h5 || { echo "pairs --cm rdmacm failed"; rc=1; }
exit \$rc
CMDS
)
echo "two_vm_test: two VMs, fabscope lat/bw/pairs over verbs (rxe0 on each), results in $out"
set +e
"$here/vm/run-2vm.sh" --quiet --timeout "$timeout_s" --bin "$bin" --outdir "$out" --log "$out/console.log" -- "$guest"
rc=$?
set -e
t_vm=$(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $T0 }")
if ((rc == 77)); then echo "two_vm_test: the VM rig cannot run here (exit 77)"; exit 77; fi
sed -n '/FABSCOPE-VM-CMD-BEGIN/,/FABSCOPE-VM-CMD-END/p' "$out/console.log" | grep -v '^FABSCOPE-VM-CMD' || true
if ! grep -q 'FABSCOPE-VM-CMD-BEGIN' "$out/console.log" 2>/dev/null; then
  # The VM never got to the commands: it did not boot (or vm2 did not come up). Show why.
  echo "two_vm_test: FAIL: a VM did not boot (rc $rc); console logs:"
  for log in "$out/console.log" "$out/console.log.vm2"; do
    [[ -f $log ]] && { echo "---- $log (last 80 lines) ----"; tail -80 "$log"; }
  done
  keep_out=1
  exit 1
fi

fails=0
check() { # description, command...
  local what=$1
  shift
  if "$@"; then echo "ok:   $what"; else echo "FAIL: $what"; fails=$((fails + 1)); fi
}
check "guest commands (lat, bw, pairs; lat, bw, bibw, pairs with --cm rdmacm; across vm1 and vm2) exit 0 (rc $rc)" test "$rc" = 0
for file in lat bw pairs cm-lat cm-bw cm-bibw cm-pairs; do
  kind=${file#cm-}
  if [[ -f $out/$file.h5 ]]; then
    check "$file.h5: check_results.py --transport verbs --ranks 2 --expect $kind" \
      /usr/bin/python3 "$root/tests/mpi/check_results.py" "$out/$file.h5" --transport verbs --ranks 2 --expect "$kind"
  else
    check "$file.h5 came back" false
  fi
done
check "two hosts: /hosts/hostname differs, rxe0 ACTIVE on each, rank 0 sent and rank 1 received the bw payload on its own rxe0 (oob and rdmacm), run attribute cm" \
  /usr/bin/python3 - "$out" <<'PY'
import sys
from pathlib import Path

import h5py
import numpy as np

out = Path(sys.argv[1])
ok = True
for kind in ("lat", "bw", "pairs", "cm-lat", "cm-bw", "cm-bibw", "cm-pairs"):
    p = out / f"{kind}.h5"
    if not p.exists():
        print(f"  {kind}.h5 missing")
        ok = False
        continue
    with h5py.File(p, "r") as f:
        hosts = list(f["hosts/hostname"].asstr()[:])
        devs = list(f["hosts/rdma_devices"].asstr()[:])
        cms = [r.attrs.get("cm") for r in f["runs"].values()]
    cms = [c.decode() if isinstance(c, bytes) else c for c in cms]
    want = "rdmacm" if kind.startswith("cm-") else "oob"
    print(f"  {kind}.h5: hostnames {hosts}, cm {cms}")
    if cms != [want] * len(cms) or not cms:
        print(f"  {kind}.h5: run attribute cm is {cms}, expected {want}")
        ok = False
    if len(hosts) != 2 or hosts[0] == hosts[1] or sorted(hosts) != ["vm1", "vm2"]:
        print(f"  {kind}.h5: the two ranks did not run on vm1 and vm2")
        ok = False
    for d in devs:
        if not ("rxe0 port 1" in d and "link_layer Ethernet" in d and "state ACTIVE" in d):
            print(f"  {kind}.h5: rdma_devices row '{d}' is not rxe0 ACTIVE Ethernet")
            ok = False
for p, group in ((out / "bw.h5", "runs/00_bw"), (out / "cm-bw.h5", "runs/00_bw")):
    if not p.exists():
        continue
    with h5py.File(p, "r") as f:
        run = f[group]
        names = list(run["counters/names"].asstr()[:])
        delta = run["counters/delta"][:]
        col = {n: i for i, n in enumerate(names)}
        payload = int(run["size_bytes"][:].sum()) * int(run.attrs["window"]) * (int(run.attrs["iters"]) + int(run.attrs["warmup"]))
        need = payload // 4096
        sent, rcvd = delta[:, col["hw_counters/sent_pkts"]], delta[:, col["hw_counters/rcvd_pkts"]]
        retries = delta[:, col["hw_counters/completer_retry_err"]] if "hw_counters/completer_retry_err" in col else [0, 0]
        print(f"  {p.name} counters: sent_pkts {list(sent)}, rcvd_pkts {list(rcvd)} (payload {payload} B -> >= {need} packets), retries {list(retries)}")
        # In two VMs each rank reads its own device: the sender's rxe0 sent the data packets and
        # the receiver's rxe0 received them (acks go the other way, far fewer).
        if not (sent[0] >= need and rcvd[1] >= need):
            print(f"  {p.name}: the payload did not cross from rank 0's rxe0 to rank 1's")
            ok = False
        if not (rcvd[0] < need and sent[1] < need):
            print(f"  {p.name}: both ranks saw the payload both ways: one device, not two hosts?")
            ok = False
sys.exit(0 if ok else 1)
PY
total=$(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $T0 }")
echo "two_vm_test: $fails failures; VMs ${t_vm}s, total ${total}s"
if ((fails > 0)); then
  keep_out=1
  echo "two_vm_test: files kept in $out"
  exit 1
fi
exit 0
