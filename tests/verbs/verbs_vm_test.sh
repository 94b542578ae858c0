#!/usr/bin/env bash
# The verbs tier: fabscope over a real RoCEv2 stack (Soft-RoCE, rdma_rxe) inside a QEMU VM booted
# from Debian's kernel (tests/verbs/vm). Runs lat for every verb, bw/bibw for write, send, read,
# and pairs over verbs inside one VM (mpirun in the VM for the out-of-band exchange), then checks
# every results file on the host like the mpi tier does. A VM that does not boot fails the test
# with its console log (run-vm.sh prints it).
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
CMDS
)
"$here/vm/run-vm.sh" --quiet --timeout 600 --bin "$bin" --bin "$micro" --outdir "$out" --log "$out/console.log" -- "$guest" || {
  rc=$?; echo "verbs VM run failed (rc $rc); console:"; sed -n '/FABSCOPE-VM-CMD-BEGIN/,/FABSCOPE-VM-CMD-END/p' "$out/console.log" | tail -60; exit 1; }
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
