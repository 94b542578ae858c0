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
VM2_NAME=two_vm_test VM2_TIMEOUT_S=420 VM2_HELP_LINES=2,16  # read by vm/two_vm_lib.sh
# shellcheck source-path=SCRIPTDIR source=vm/two_vm_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/vm/two_vm_lib.sh"
vm2_args "$@"

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
vm2_run "$guest" "fabscope lat/bw/pairs over verbs"

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
vm2_finish
