#!/bin/bash
# The fabric's own error counters (topology/pma.hpp) against ibsim (shared/notes/ibsim.md): a
# 16-host fat tree with the simulator's console on a FIFO, opensm --once for LIDs, then
#   1. every end of every cable answers its PMA PortCounters query;
#   2. `PerformanceSet "leaf0002"[5] PortCounters.SymbolErrorCounter=42` and LinkDownedCounter=3
#      on node00007's port are written into the console between two readings: the deltas name
#      exactly those two cables, at the right end, with those counts, and nothing else;
#   3. fabscope pairs with --pma (rank i plays host i of the same fabric from an ibnd cache) reads
#      the counters before and after its run; the console raises leaf0003[6]'s PortRcvErrors while
#      it runs, and the file's /pma and `fabscope-analyze accept` name that cable;
#   4. the rate every cable could train to, from PortInfo (LinkWidthEnabled/Supported, the speeds
#      enabled): 200 Gb/s (4xHDR) in /topology/links/max_rate_gbps; node00003's cable, configured
#      to 1xHDR on the leaf's end in the net file, 50 of 50 (configured, so not trained down).
# Usage: ibsim_pma_test.sh FABSCOPE_TOPO_TOOL [FABSCOPE MPIEXEC ANALYZE]
# Any failure, including not being able to start ibsim, fails the test (exit 1): never a skip.
set -u -o pipefail
tool=$(realpath "${1:?usage: ibsim_pma_test.sh FABSCOPE_TOPO_TOOL [FABSCOPE MPIEXEC ANALYZE]}")
fabscope=${2:+$(realpath "$2")} mpiexec=${3:-} analyze=${4:+$(realpath "$4")}
here=$(cd "$(dirname "$0")" && pwd)
umad2sim=/usr/lib/x86_64-linux-gnu/umad2sim/libumad2sim.so
fail() { echo "FAIL: $*"; exit 1; }
for cmd in ibsim opensm timeout; do command -v "$cmd" >/dev/null || fail "'$cmd' not found (apt-get install ibsim-utils opensm)"; done
[ -r "$umad2sim" ] || fail "$umad2sim missing; apt-get install libumad2sim0"
scratch=$(mktemp -d /tmp/fabscope-ibsim-pma-XXXXXX) || fail mktemp
sock="fabscope-pma-$$"
ibsim_pid=""
cleanup() {
  if [ -n "$ibsim_pid" ]; then kill "$ibsim_pid" 2>/dev/null; wait "$ibsim_pid" 2>/dev/null; fi
  rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
cd "$scratch" || fail "cd $scratch"
client() { IBSIM_SOCKNAME=$sock SIM_HOST=node00001-mlx5_0 LD_PRELOAD=$umad2sim timeout -k 5 60 "$@"; }
console() { echo "$1" >&3; for _ in $(seq 100); do grep -q "has been set to" ibsim.log && [ "$(grep -c 'has been set to' ibsim.log)" -ge "$2" ] && return 0; sleep 0.05; done; fail "ibsim did not take '$1'"; }

"$tool" gen-net --spec "hosts=16,nics-per-leaf=4,leaves-per-pod=4,spines-per-pod=2" --out fabric.net >/dev/null || fail "gen-net"
# node00003's cable configured to one lane (1xHDR, 50 Gb/s) on the leaf's end.
sed -i 's/^\(\[3\] "node00003-mlx5_0"\[1\] # lid 0\) 4xHDR$/\1 1xHDR/' fabric.net
grep -q '"node00003-mlx5_0"\[1\] # lid 0 1xHDR' fabric.net || fail "could not train node00003's cable down in fabric.net"
mkfifo console.fifo || fail mkfifo
# The console reads the FIFO (opened read-write, so it never sees end-of-file and never spins).
IBSIM_SOCKNAME=$sock ibsim -s fabric.net <>console.fifo >ibsim.log 2>&1 &
ibsim_pid=$!
exec 3>console.fifo
for _ in $(seq 200); do grep -q "@$sock:ctl@" /proc/net/unix && break; sleep 0.05; done
grep -q "@$sock:ctl@" /proc/net/unix || { cat ibsim.log; fail "ibsim did not start"; }
mkdir -p osm
OSM_CACHE_DIR=$scratch/osm OSM_TMP_DIR=$scratch/osm client opensm --once -s 0 -f "$scratch/osm/opensm.log" >osm.out 2>&1 \
  || { tail osm.out; fail "opensm --once"; }

client "$tool" pma --live --no-routes --save before.txt >read1.out 2>&1 || { cat read1.out; fail "PMA reading 1"; }
grep -q "^read 48 of 48 link ends (24 links), PortCountersExtended from 48," read1.out || { cat read1.out; fail "not every link end answered (PortCounters and PortCountersExtended)"; }
echo "ok:   $(cat read1.out)"
console 'PerformanceSet "leaf0002"[5] PortCounters.SymbolErrorCounter=42' 1
console 'PerformanceSet "node00007-mlx5_0"[1] PortCounters.LinkDownedCounter=3' 2
client "$tool" pma --live --no-routes --before before.txt >read2.out 2>&1 || { cat read2.out; fail "PMA reading 2"; }
cat read2.out
grep -qx "errors: leaf0002\[5\] <-> spine0001\[2\]: at leaf0002\[5\]: SymbolErrorCounter +42" read2.out || fail "the leaf-spine cable's symbol errors"
grep -qx "errors: node00007 mlx5_0\[1\] <-> leaf0002\[3\]: at node00007 mlx5_0\[1\]: LinkDownedCounter +3" read2.out || fail "the host cable's link-downed count"
grep -qx "2 link ends with rising error counters" read2.out || fail "other link ends reported"
echo "ok:   PerformanceSet on two ports: exactly those two cables named"

[ -n "$fabscope" ] || exit 0
# 3. the same through fabscope: --pma around a pairs run, the cable named by accept.
client "$tool" canon --live --no-routes --save-cache fabric.cache --out /dev/null >/dev/null 2>&1 || fail "ibnd cache"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# The counter must rise between the two readings: the first is taken before run.h5 exists, the
# second after the last round. The ranks are stopped (SIGSTOP) from the moment the file appears
# until ibsim has taken the change, so that holds whatever the load (a run sized to outlast the
# console command took 60,000 ping-pongs per pair: minutes beside two CPU hogs).
ranks="pairs --ibnd-cache fabric.cache --pma --iters 5000 --bw-iters 2"
"$mpiexec" -np 4 -x IBSIM_SOCKNAME="$sock" -x SIM_HOST=node00001-mlx5_0 -x LD_PRELOAD="$umad2sim" \
  "$fabscope" $ranks --quiet --out run.h5 >run.out 2>&1 &
run_pid=$!
for _ in $(seq 1200); do [ -e run.h5 ] && break; kill -0 $run_pid 2>/dev/null || break; sleep 0.02; done
[ -e run.h5 ] || { wait $run_pid; cat run.out; fail "fabscope pairs --pma did not start"; }
pkill -STOP -f -- "$ranks" || { wait $run_pid; cat run.out; fail "fabscope pairs --pma ended before it could be held"; }
console 'PerformanceSet "leaf0003"[6] PortCounters.PortRcvErrors=7' 3
pkill -CONT -f -- "$ranks"
wait $run_pid || { cat run.out; fail "fabscope pairs --pma failed"; }
grep "^# pma" run.out
/usr/bin/python3 - run.h5 <<'PY' || fail "/pma in the results file"
import sys
import h5py
with h5py.File(sys.argv[1]) as f:
    g = f["pma"]
    names = list(g["names"].asstr()[()])
    delta = g["delta"][()]
    ends = list(g["end"].asstr()[()])
    rose = [(ends[i], names[c], int(delta[i, c])) for i in range(delta.shape[0]) for c in range(8) if delta[i, c] > 0]
    print("  /pma rose:", rose, "| ends read:", int(g["ok"][()].sum()), "of", len(ends),
          "| PortCountersExtended:", int(g["ok_ext"][()].sum()))
    # The traffic counters: the PMA queries themselves leave node00001's port (the simulated host
    # the reads run on), so its PortXmitPkts rose between the two readings.
    me = ends.index("node00001 mlx5_0[1]")
    pkts = int(delta[me, names.index("PortXmitPkts")])
    data = int(delta[me, names.index("PortXmitData")])
    print("  node00001 mlx5_0[1]: PortXmitPkts +", pkts, ", PortXmitData +", data, "(4-octet words)")
    sys.exit(0 if rose == [("leaf0003[6]", "PortRcvErrors", 7)] and int(g["ok"][()].sum()) == len(ends)
             and int(g["ok_ext"][()].sum()) == len(ends) and pkts > 0 and data >= pkts else 1)
PY
echo "ok:   fabscope pairs --pma stored the rise in /pma"
"$analyze" accept run.h5 --criteria "$here/../../configs/criteria/local.yaml" --json v.json -q >acc.out 2>&1
/usr/bin/python3 - v.json <<'PY' || { cat acc.out; fail "accept did not name the cable"; }
import json, sys
v = json.load(open(sys.argv[1]))
s = [x for x in v["suspects"] if x["kind"] == "leaf_spine_link" and "leaf0003[6]" in x["name"]]
print("  accept:", v["verdict"], [(x["kind"], x["name"], x["evidence"]) for x in s])
sys.exit(0 if len(s) == 1 and "PortRcvErrors +7" in s[0]["evidence"] and v["verdict"] == "fail" else 1)
PY
echo "ok:   accept names leaf0003[6]'s cable"
# 4. The trained-down cable: the topology from PortInfo says what it runs at and what it could.
/usr/bin/python3 - run.h5 v.json <<'PY' || fail "node00003's trained-down cable"
import json, sys
import h5py
with h5py.File(sys.argv[1]) as f:
    t = f["topology"]
    nic_host = t["nics/host"][()]
    names = list(t["hosts/name"].asstr()[()])
    kinds = list(t["links/a_kind"].asstr()[()])
    a, rate, most = t["links/a_index"][()], t["links/rate_gbps"][()], t["links/max_rate_gbps"][()]
    host_links = {names[nic_host[a[k]]]: (float(rate[k]), float(most[k])) for k in range(len(kinds)) if kinds[k] == "nic"}
print("  node00003 cable (rate, max):", host_links["node00003"], "| node00001:", host_links["node00001"])
# ibsim enables only the configured width on the end that names it: a port configured to 1X, not
# one that trained down (both ends enabled for 4X, active 1X: tests/analysis names that one).
ok = host_links["node00003"] == (50.0, 50.0) and all(v == (200.0, 200.0) for h, v in host_links.items() if h != "node00003")
v = json.load(open(sys.argv[2]))
s = [x for x in v["suspects"] if x["name"].startswith("node00003") and "trained to" in x["evidence"]]
sys.exit(0 if ok and not s else 1)
PY
echo "ok:   /topology/links max_rate_gbps from PortInfo: 200 Gb/s (4xHDR) on every cable, 50 on node00003's configured to 1X"
