#!/usr/bin/env bash
# fabscope with a topology: `topo` stores /topology, `plan` prints every plan, `pairs --plan`
# runs a hop-class plan (8 ranks playing the 8 hosts of configs/topologies/emu8.yaml), and a
# broken topology file is one line, exit 2.
# usage: topology_runs.sh MPIEXEC FABSCOPE REPO_ROOT
set -uo pipefail
mpiexec=$1 bin=$2 root=$3
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
topo=$root/configs/topologies/emu8.yaml

"$mpiexec" --oversubscribe -np 2 "$bin" topo --topology "$topo" --out "$tmp/topo.h5" >"$tmp/out" 2>&1 || fail "topo exited $?"
grep -q "8 hosts, 8 NICs" "$tmp/out" || fail "topo summary: $(cat "$tmp/out")"

"$mpiexec" --oversubscribe -np 1 "$bin" plan --topology "$topo" --budget 10s --pair-time 1 >"$tmp/plan" 2>&1 || fail "plan exited $?"
for p in all-pairs hop-class budget; do grep -q "^$p" "$tmp/plan" || fail "plan output lacks $p: $(cat "$tmp/plan")"; done

"$mpiexec" --oversubscribe -np 8 "$bin" pairs --topology "$topo" --rank-as-host --plan hop-class --k 1 \
  --bw-size 64K --iters 50 --bw-iters 2 --warmup 2 --out "$tmp/plan.h5" --quiet >"$tmp/out" 2>&1 || fail "pairs --plan exited $?: $(tail -5 "$tmp/out")"

/usr/bin/python3 - "$tmp/topo.h5" "$tmp/plan.h5" <<'PY' || fails=$((fails + 1))
import sys, h5py, numpy as np
topo, plan = (h5py.File(p, "r") for p in sys.argv[1:3])
bad = []
t = topo["topology"]
if t.attrs["name"] != "emu8": bad.append("topology name")
names = list(t["hosts/name"].asstr()[:])
if sorted(names) != [f"h{i}" for i in range(1, 9)]: bad.append(f"hosts {names}")
run = plan["runs/00_pairs"]
if run.attrs["schedule"] != "hop-class": bad.append("schedule attribute")
st = run["status"][:]
ok = st == 1
if not np.array_equal(ok, ok.T): bad.append("status not symmetric")
per_host = ok.sum(axis=1)
# k=1 per hop class: every host meets at least one same-leaf and one other-leaf partner.
leaf = plan["topology/hosts/leaf"][:]
host_of_rank = plan["topology/ranks/host"][:]
for r in range(8):
    peers = np.nonzero(ok[r])[0]
    same = [p for p in peers if leaf[host_of_rank[p]] == leaf[host_of_rank[r]]]
    other = [p for p in peers if leaf[host_of_rank[p]] != leaf[host_of_rank[r]]]
    if not same or not other: bad.append(f"rank {r}: peers {list(peers)}")
if int(ok.sum()) // 2 >= 28: bad.append("hop-class plan measured every pair")
print("topology runs:", "ok" if not bad else bad)
sys.exit(1 if bad else 0)
PY

# InfiniBand dump + forwarding tables (captured from ibsim, tests/topology/data): every rank's
# destination plane is stored for link attribution (D-mod-K: planes alternate over the hosts).
d=$root/tests/topology/data
"$mpiexec" --oversubscribe -np 16 "$bin" topo --ibnetdiscover "$d/fat16.ibnetdiscover" --routes "$d/fat16.ibroute" \
  --rank-as-host --out "$tmp/ib.h5" >"$tmp/out" 2>&1 || fail "topo --ibnetdiscover --routes exited $?"
/usr/bin/python3 -c "
import sys, h5py, numpy as np
t = h5py.File(sys.argv[1])['topology']
p = t['ranks/dest_plane'][:]
ok = t.attrs['routes_known'] in ('1', 1) and p.shape == (16,) and set(p.tolist()) == {0, 1}
print('dest_plane', p.tolist()); sys.exit(0 if ok else 1)" "$tmp/ib.h5" || fail "dest_plane"

# accept's re-test plan runs as it is: a synthetic 8-host run with a slow host -> accept writes
# the pairs to re-test -> `fabscope pairs --plan-file` measures exactly those pairs.
/usr/bin/python3 "$root/tests/analysis/synth.py" "$tmp/s8.h5" --hosts 8 --topology --hosts-per-leaf 4 --slow-host 3 \
  --no-sweeps >/dev/null || fail "synth"
"$root/analysis/fabscope-analyze" accept "$tmp/s8.h5" --criteria "$root/configs/criteria/ndr400.yaml" \
  --retest-plan "$tmp/r8.plan" -q >/dev/null
[ $? -eq 1 ] || fail "accept of the slow-host run did not fail"
cat >"$tmp/s8.yaml" <<'YAML'
version: 1
name: synth8
link_layer: ethernet
spines: [spine1]
leaves: [leaf1, leaf2]
racks:
  - {name: r1, leaf: leaf1, hosts: [node000, node001, node002, node003]}
  - {name: r2, leaf: leaf2, hosts: [node004, node005, node006, node007]}
YAML
"$mpiexec" --oversubscribe -np 8 "$bin" pairs --topology "$tmp/s8.yaml" --rank-as-host --plan-file "$tmp/r8.plan" \
  --bw-size 64K --iters 50 --bw-iters 2 --out "$tmp/retest.h5" --quiet >"$tmp/out" 2>&1 || fail "pairs --plan-file: $(tail -3 "$tmp/out")"
/usr/bin/python3 - "$tmp/r8.plan" "$tmp/retest.h5" <<'PY' || fails=$((fails + 1))
import sys, h5py, numpy as np
plan = [l.split() for l in open(sys.argv[1]) if l.startswith("node")]
want = {frozenset((int(a[4:]), int(b[4:]))) for a, b in plan}
run = h5py.File(sys.argv[2])["runs/00_pairs"]
got = {frozenset(p) for p in np.argwhere(np.triu(run["status"][:] == 1)).tolist()}
print(f"retest plan: {len(want)} pairs planned, {len(got)} measured, schedule {run.attrs['schedule']}")
sys.exit(0 if want == got and len(want) > 0 and run.attrs["schedule"] == "plan-file" else 1)
PY

# A saved plan (issue 17): plan --write NAME --out F writes the plan file that pairs --plan-file runs,
# every pair of it measured; an existing file is kept unless --overwrite; --out without a plan is an error.
"$mpiexec" --oversubscribe -np 1 "$bin" plan --topology "$tmp/s8.yaml" --write hop-class --k 1 --out "$tmp/hop.plan" \
  >"$tmp/out" 2>&1 || fail "plan --write: $(tail -3 "$tmp/out")"
grep -q "rounds written to $tmp/hop.plan" "$tmp/out" || fail "plan --write said: $(tail -2 "$tmp/out")"
"$mpiexec" --oversubscribe -np 8 "$bin" pairs --topology "$tmp/s8.yaml" --rank-as-host --plan-file "$tmp/hop.plan" \
  --bw-size 64K --iters 50 --bw-iters 2 --out "$tmp/hop.h5" --quiet >"$tmp/out" 2>&1 || fail "pairs --plan-file hop.plan: $(tail -3 "$tmp/out")"
/usr/bin/python3 - "$tmp/hop.plan" "$tmp/hop.h5" <<'PY' || fails=$((fails + 1))
import sys, h5py, numpy as np
plan = [l.split() for l in open(sys.argv[1]) if l.startswith("node")]
want = {frozenset((int(a[4:]), int(b[4:]))) for a, b in plan}
run = h5py.File(sys.argv[2])["runs/00_pairs"]
got = {frozenset(p) for p in np.argwhere(np.triu(run["status"][:] == 1)).tolist()}
print(f"saved hop-class plan: {len(want)} pairs planned, {len(got)} measured")
sys.exit(0 if want == got and len(want) > 0 else 1)
PY
"$mpiexec" --oversubscribe -np 1 "$bin" plan --topology "$tmp/s8.yaml" --write hop-class --out "$tmp/hop.plan" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" -eq 2 ] && grep -q "pass --overwrite" "$tmp/err" || fail "plan --write over an existing file: rc=$rc $(cat "$tmp/err")"
"$mpiexec" --oversubscribe -np 1 "$bin" plan --topology "$tmp/s8.yaml" --out "$tmp/none.plan" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" -eq 2 ] && grep -q "name the plan to write" "$tmp/err" || fail "plan --out without a plan: rc=$rc $(cat "$tmp/err")"
"$mpiexec" --oversubscribe -np 1 "$bin" plan --topology "$tmp/s8.yaml" --plan new-rack --new rack99 >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" -eq 2 ] && [ "$(grep -c '^fabscope: ' "$tmp/err")" -eq 1 ] && grep -q -- "--new" "$tmp/err" && ! grep -q "terminate called" "$tmp/err" \
  || fail "plan --new rack99: rc=$rc $(cat "$tmp/err")"

printf 'racks:\n  - name: r1\n    leaf: [oops\n' >"$tmp/bad.yaml"
"$mpiexec" --oversubscribe -np 2 "$bin" topo --topology "$tmp/bad.yaml" --out "$tmp/x.h5" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" -eq 2 ] && [ "$(grep -c '^fabscope: ' "$tmp/err")" -eq 1 ] && grep -q "bad.yaml" "$tmp/err" || fail "bad topology file: rc=$rc $(cat "$tmp/err")"
"$mpiexec" --oversubscribe -np 4 "$bin" pairs --plan hop-class --out "$tmp/y.h5" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" -eq 2 ] && grep -q "needs the fabric's topology" "$tmp/err" || fail "plan without topology: rc=$rc $(cat "$tmp/err")"
echo "topology runs: $fails failures"
[ "$fails" -eq 0 ]
