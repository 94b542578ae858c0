#!/usr/bin/env bash
# The verbs tier: fabscope over a real RoCEv2 stack (Soft-RoCE, rdma_rxe) inside a QEMU VM booted
# from Debian's kernel (tests/verbs/vm). Runs lat for every verb, bw/bibw for write, send, read,
# and pairs over verbs inside one VM (mpirun in the VM for the out-of-band exchange), the same
# patterns with --cm rdmacm (librdmacm connects the QPs), pair deadlines that pass while connecting
# and while measuring, then checks every results file on the host like the mpi tier does. A VM
# that does not boot fails the test with its console log (run-vm.sh prints it).
# usage: verbs_vm_test.sh FABSCOPE_BINARY
set -euo pipefail
bin=$(readlink -f "$1")
micro=$(dirname "$bin")/fabscope-micro
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
guest=$(cat <<CMDS
set -e
f=$bin
mpirun -np 2 \$f lat --transport verbs --sizes 2:4K --iters 200 --warmup 50 --out /results/lat-write.h5 --quiet
for v in send read fetch_add cmp_swap; do
  mpirun -np 2 \$f lat --transport verbs --verb \$v --sizes 8:64 --iters 100 --warmup 20 --out /results/lat-\$v.h5 --quiet
done
for v in write send read; do
  mpirun -np 2 \$f bw --transport verbs --verb \$v --sizes 4K:64K --iters 4 --warmup 1 --out /results/bw-\$v.h5 --quiet
  mpirun -np 2 \$f bibw --transport verbs --verb \$v --sizes 64K --iters 3 --warmup 1 --out /results/bibw-\$v.h5 --quiet
done
mpirun -np 3 \$f pairs --transport verbs --bw-size 64K --iters 100 --bw-iters 3 --warmup 5 --out /results/pairs.h5 --quiet
# rate: message rate vs QPs and post list (ib_write_bw -q N -l M) over the real verbs stack
mpirun -np 2 \$f rate --transport verbs --qp-counts 1,2 --post-lists 1,4 --sizes 8,4K --tx-depth 32 --iters 4 --warmup 1 --out /results/rate.h5 --quiet
# --cm rdmacm: the same QPs connected by librdmacm (rank 0 listens on rxe0's address, rank 1 connects).
mpirun -np 2 \$f lat --transport verbs --cm rdmacm --sizes 8:4K --iters 100 --warmup 10 --out /results/cm-lat.h5 --quiet
mpirun -np 2 \$f bw --transport verbs --cm rdmacm --verb send --qps 2 --sizes 4K:64K --iters 4 --warmup 1 --out /results/cm-bw.h5 --quiet
mpirun -np 2 \$f bibw --transport verbs --cm rdmacm --verb read --sizes 64K --iters 3 --warmup 1 --out /results/cm-bibw.h5 --quiet
mpirun -np 3 \$f pairs --transport verbs --cm rdmacm --bw-size 64K --iters 100 --bw-iters 3 --warmup 5 --out /results/cm-pairs.h5 --quiet
# Pair deadlines: too short to connect through rdma_cm, and passing in the middle of a latency run
# (1e6 ping-pongs take ~20 s here): every pair is recorded as timed out and the run completes.
mpirun -np 3 \$f pairs --transport verbs --cm rdmacm --pair-timeout 1ms --bw-size 64K --iters 10 --bw-iters 1 --out /results/deadline-connect.h5 --quiet
mpirun -np 2 \$f pairs --transport verbs --pair-timeout 2s --iters 1000000 --bw-iters 1 --out /results/deadline-measure.h5 --quiet
# A device name that does not exist: one clear line, exit 2.
rc=0; mpirun -np 2 \$f lat --transport verbs --device mlx5_9 --out /results/bad.h5 2>/tmp/err || rc=\$?
grep -q "no such RDMA device here (found: rxe0)" /tmp/err && [ \$rc -eq 2 ] || { echo "bad device: rc=\$rc"; cat /tmp/err; exit 1; }
rc=0; mpirun -np 2 \$f lat --transport verbs --gid-index 99 --out /results/bad.h5 2>/tmp/err || rc=\$?
grep -q "gid-index 99" /tmp/err && [ \$rc -eq 2 ] || { echo "bad gid: rc=\$rc"; cat /tmp/err; exit 1; }
rm -f /results/bad.h5
# fabscope-micro on rxe0: registration cost and post+poll on a loopback pair of QPs, attached to a
# results file.
$micro --benchmark_filter='BM_reg_mr/(4096|1048576|67108864)|BM_post_poll|BM_clock' --benchmark_min_time=0.05 \
  --benchmark_format=json > /results/micro.json
mpirun -np 2 \$f lat --transport verbs --sizes 8 --iters 10 --attach /results/micro.json --out /results/attached.h5 --quiet
# --cm rdmacm on a port whose interface has no IP address (rxe1 on dum1, IPv6 off): one clear line,
# exit 2. Last, since a second rxe device changes the default device.
ip link add dum1 type dummy && echo 1 >/proc/sys/net/ipv6/conf/dum1/disable_ipv6 && ip link set dum1 mtu 9000 up
rdma link add rxe1 type rxe netdev dum1
i=0; until grep -q ACTIVE /sys/class/infiniband/rxe1/ports/1/state; do i=\$((i + 1)); [ \$i -gt 100 ] && break; sleep 0.1; done
rc=0; mpirun -np 2 \$f lat --transport verbs --cm rdmacm --device rxe1 --out /results/bad.h5 2>/tmp/err || rc=\$?
grep -q "rxe1:1 (netdev dum1) has no IP address" /tmp/err && [ \$rc -eq 2 ] || { echo "rdmacm without IP: rc=\$rc"; cat /tmp/err; exit 1; }
echo "rdmacm without IP: rc=\$rc: \$(grep -m1 'no IP address' /tmp/err)"
rm -f /results/bad.h5
CMDS
)
"$here/vm/run-vm.sh" --quiet --timeout 600 --bin "$bin" --bin "$micro" --outdir "$out" --log "$out/console.log" -- "$guest" || {
  rc=$?; echo "verbs VM run failed (rc $rc); console:"; sed -n '/FABSCOPE-VM-CMD-BEGIN/,/FABSCOPE-VM-CMD-END/p' "$out/console.log" | tail -60; exit 1; }
grep -h "rdmacm without IP" "$out/console.log" || true
check=$here/../mpi/check_results.py
fails=0
for f in lat-write lat-send lat-read lat-fetch_add lat-cmp_swap; do
  /usr/bin/python3 "$check" "$out/$f.h5" --ranks 2 --expect lat --transport verbs || fails=$((fails + 1))
done
for v in write send read; do
  /usr/bin/python3 "$check" "$out/bw-$v.h5" --ranks 2 --expect bw --transport verbs || fails=$((fails + 1))
  /usr/bin/python3 "$check" "$out/bibw-$v.h5" --ranks 2 --expect bibw --transport verbs || fails=$((fails + 1))
done
/usr/bin/python3 "$check" "$out/pairs.h5" --ranks 3 --expect pairs --transport verbs || fails=$((fails + 1))
/usr/bin/python3 "$check" "$out/rate.h5" --ranks 2 --expect rate --transport verbs || fails=$((fails + 1))
for f in cm-lat:lat cm-bw:bw cm-bibw:bibw cm-pairs:pairs; do
  /usr/bin/python3 "$check" "$out/${f%%:*}.h5" --ranks "$([ "${f#*:}" = pairs ] && echo 3 || echo 2)" --expect "${f#*:}" \
    --transport verbs || fails=$((fails + 1))
done
# The run attribute cm says how the QPs were connected.
/usr/bin/python3 - "$out" <<'PY' || fails=$((fails + 1))
import sys, h5py
out = sys.argv[1]
ok = True
for name, want in [("lat-write", "oob"), ("bw-send", "oob"), ("pairs", "oob"), ("cm-lat", "rdmacm"), ("cm-bw", "rdmacm"),
                   ("cm-bibw", "rdmacm"), ("cm-pairs", "rdmacm")]:
    for run in h5py.File(f"{out}/{name}.h5")["runs"].values():
        got = run.attrs.get("cm")
        got = got.decode() if isinstance(got, bytes) else got
        if got != want:
            print(f"{name}.h5 {run.name}: cm = {got!r}, expected {want!r}")
            ok = False
print("cm attribute:", "as expected" if ok else "WRONG")
sys.exit(0 if ok else 1)
PY
# Pair deadlines: every pair timed out (status 3), with a message naming the deadline; the run is
# complete (the job went on past every failed pair).
/usr/bin/python3 - "$out" <<'PY' || fails=$((fails + 1))
import sys, h5py, numpy as np
out = sys.argv[1]
ok = True
for name, n, words in [("deadline-connect", 3, ["rdma_cm", "--pair-timeout"]), ("deadline-measure", 2, ["verb write", "--pair-timeout"])]:
    f = h5py.File(f"{out}/{name}.h5")
    run = f["runs/00_pairs"]
    status = run["status"][:]
    off = ~np.eye(n, dtype=bool)
    msgs = list(run["errors/message"].asstr()[:]) if "errors/message" in run else []
    good = bool(np.all(status[off] == 3)) and int(run.attrs["complete"]) == 1 and len(msgs) == n * (n - 1) // 2
    good = good and all(all(w in m for w in words) for m in msgs)
    print(f"{name}: status {status[off].tolist()}, complete {int(run.attrs['complete'])}, first error: {msgs[0] if msgs else None}")
    ok = ok and good
sys.exit(0 if ok else 1)
PY
# Provenance: the VM's rxe0 is recorded on every host row.
/usr/bin/python3 -c "
import h5py, sys
d = h5py.File('$out/pairs.h5')['hosts/rdma_devices'].asstr()[:]
ok = all('rxe0 port 1' in x and 'link_layer Ethernet' in x and 'state ACTIVE' in x for x in d)
print('rdma_devices:', d[0]); sys.exit(0 if ok else 1)" || fails=$((fails + 1))
# Port counters: deltas stored per rank, and plausible for what bw-write moved (both ranks share
# rxe0 in one VM, so each sees every packet of the run; no retries or errors).
/usr/bin/python3 - "$out/bw-write.h5" <<'PY' || fails=$((fails + 1))
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1])
run = f["runs/00_bw"]
names = list(run["counters/names"].asstr()[:])
delta = run["counters/delta"][:]
assert delta.shape == (2, len(names)), delta.shape
col = {n: i for i, n in enumerate(names)}
sizes = run["size_bytes"][:]
payload = int(sizes.sum()) * 64 * (int(run.attrs["iters"]) + int(run.attrs["warmup"]))
sent = delta[:, col["hw_counters/sent_pkts"]]
rcvd = delta[:, col["hw_counters/rcvd_pkts"]]
print(f"counters: {len(names)} per rank; sent_pkts {list(sent)}, rcvd_pkts {list(rcvd)}; payload {payload} B -> >= {payload // 4096} packets")
ok = bool(np.all(sent >= payload // 4096)) and bool(np.all(rcvd >= payload // 4096))
print("counters:", ", ".join(f"{n}={list(delta[:, i])}" for n, i in col.items()))
for bad in ("hw_counters/retry_exceeded_err", "hw_counters/send_err", "hw_counters/link_downed"):
    if bad in col and not np.all(delta[:, col[bad]] == 0):
        print("unexpected errors:", bad)
        ok = False
sys.exit(0 if ok else 1)
PY
# fabscope-micro ran the verbs benchmarks on rxe0 (no skips), and the JSON is in the results file.
/usr/bin/python3 - "$out/micro.json" "$out/attached.h5" <<'PY' || fails=$((fails + 1))
import json, sys, h5py
bench = {b["name"]: b for b in json.load(open(sys.argv[1]))["benchmarks"]}
need = ["BM_reg_mr/4096", "BM_reg_mr/1048576", "BM_post_poll"]
ok = all(n in bench and not bench[n].get("error_occurred") and bench[n]["real_time"] > 0 for n in need)
print("micro:", {n: (round(bench[n]["real_time"], 2), bench[n]["time_unit"]) for n in need if n in bench})
stored = h5py.File(sys.argv[2])["attachments/micro.json"].asstr()[0]
ok &= json.loads(stored)["benchmarks"][0]["name"] == next(iter(bench))
sys.exit(0 if ok else 1)
PY
echo "verbs VM tier: $fails failures"
[ "$fails" -eq 0 ]
