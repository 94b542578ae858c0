#!/usr/bin/env bash
# fabscope doctor and the /hosts configuration evidence on real Soft-RoCE ports: two VMs
# (tests/verbs/vm/run-2vm.sh), each with rxe0 on its virtio NIC (MTU 9000), one MPI job across both.
#   - doctor on one rank (vm1) and on two (vm1, vm2): exit 0, no problem, the summary counts the
#     hosts and ports;
#   - a verbs lat run stores /hosts/ports: rxe0 port 1 of each rank, Ethernet, ACTIVE, the rate
#     rxe negotiated, active MTU 4096 (ibv_query_port), and no /hosts/config_problems;
#   - vm2's NIC set to MTU 1500 (rxe0's active MTU follows to 1024): doctor across both VMs exits 1
#     with the line naming both hosts and both MTUs (two hosts: no majority);
#   - rxe1 on a netdev that is down on vm1: doctor on vm1 exits 1 naming rxe1's state.
# usage: doctor_vm_test.sh [FABSCOPE_BINARY] [--outdir DIR] [--timeout S]
#   exit 0 only if every check passed; 1 on any failure; 77 when the VM rig cannot run here.
set -euo pipefail
VM2_NAME=doctor_vm_test VM2_TIMEOUT_S=300 VM2_HELP_LINES=2,13  # read by vm/two_vm_lib.sh
# shellcheck source-path=SCRIPTDIR source=vm/two_vm_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/vm/two_vm_lib.sh"
vm2_args "$@"

guest=$(cat <<CMDS
set -u
f=$bin
rc=0
run() { name=\$1; shift; "\$@" >/results/\$name.txt 2>&1; echo \$? >/results/\$name.rc; cat /results/\$name.txt; }
run one mpirun -np 1 \$f doctor
run two \$FABSCOPE_MPIRUN_2VM -np 2 \$f doctor
\$FABSCOPE_MPIRUN_2VM -np 2 \$f lat --transport verbs --sizes 8 --iters 20 --warmup 2 --out /results/lat.h5 --quiet || { echo "lat failed"; rc=1; }
\$FABSCOPE_SSH vm2 ip link set eth0 mtu 1500
i=0; until [ "\$(\$FABSCOPE_SSH vm2 cat /sys/class/net/eth0/mtu)" = 1500 ]; do i=\$((i + 1)); [ \$i -gt 50 ] && break; sleep 0.1; done
run mtu \$FABSCOPE_MPIRUN_2VM -np 2 \$f doctor
ip link add dumd type dummy && ip link set dumd mtu 9000 && rdma link add rxe1 type rxe netdev dumd
run down mpirun -np 1 \$f doctor --quiet
exit \$rc
CMDS
)
vm2_run "$guest" "fabscope doctor and /hosts configuration evidence"

rc_of() { cat "$out/$1.rc" 2>/dev/null || echo missing; }
check "guest commands exit 0 (rc $rc)" test "$rc" = 0
check "doctor on one rank: exit 0, no problem (rc $(rc_of one))" \
  bash -c "[ \"\$(cat '$out/one.rc')\" = 0 ] && grep -q '^# doctor: 0 problem(s) on 0 of 1 host(s); 1 RDMA port(s), 1 rank(s) checked' '$out/one.txt'"
check "doctor on vm1 and vm2: exit 0, no problem (rc $(rc_of two))" \
  bash -c "[ \"\$(cat '$out/two.rc')\" = 0 ] && grep -q '^# doctor: 0 problem(s) on 0 of 2 host(s); 2 RDMA port(s), 2 rank(s) checked' '$out/two.txt'"
check "vm2 at MTU 1500: doctor exits 1 naming both hosts' active MTUs (rc $(rc_of mtu))" \
  bash -c "[ \"\$(cat '$out/mtu.rc')\" = 1 ] && grep -qx 'vm1,vm2 rxe0 port 1: active MTU differs between hosts with no majority: 1024 on vm2; 4096 on vm1' '$out/mtu.txt' && grep -q '^# doctor: 1 problem(s) on 2 of 2 host(s)' '$out/mtu.txt'"
check "rxe1 on a down netdev: doctor exits 1 naming its state, one line (rc $(rc_of down))" \
  bash -c "[ \"\$(cat '$out/down.rc')\" = 1 ] && [ \"\$(grep -c '^vm1 ' '$out/down.txt')\" = 1 ] && grep -Eq '^vm1 rxe1 port 1: state (DOWN|INIT) \\(expected ACTIVE\\)$' '$out/down.txt'"
check "lat.h5: /hosts/ports holds rxe0 of both ranks as rxe reported it (Ethernet, ACTIVE, rate, MTU 4096)" \
  /usr/bin/python3 - "$out/lat.h5" <<'PY'
import math
import sys

import h5py

with h5py.File(sys.argv[1], "r") as f:
    p = f["hosts/ports"]
    rows = {k: p[k][()] for k in p}
    s = lambda k: [x.decode() if isinstance(x, bytes) else str(x) for x in rows[k]]
    print("  ports:", {k: (s(k) if rows[k].dtype.kind in "OS" else rows[k].tolist()) for k in sorted(rows)})
    ok = list(rows["rank"]) == [0, 1] and s("device") == ["rxe0", "rxe0"] and list(rows["port"]) == [1, 1]
    ok &= s("link_layer") == ["Ethernet"] * 2 and s("state") == ["ACTIVE"] * 2
    ok &= all(math.isfinite(r) and r > 0 for r in rows["rate_gbps"]) and all(w.endswith("X") for w in s("width"))
    ok &= list(rows["active_mtu_bytes"]) == [4096, 4096] and list(rows["max_mtu_bytes"]) == [4096, 4096]
    ok &= p["rate_gbps"].attrs["units"] == "Gb/s" and p["active_mtu_bytes"].attrs["units"] == "bytes"
    ok &= list(f["hosts/memlock_bytes"][()]).__len__() == 2 and list(f["hosts/cap_ipc_lock"][()]) == [1, 1]
    problems = [x.decode() if isinstance(x, bytes) else x for x in f["hosts/config_problems"][()]]
    print("  config_problems:", problems)
    ok &= problems == []
sys.exit(0 if ok else 1)
PY
vm2_finish
