#!/bin/bash
# InfiniBand fabric discovery against a simulated fat tree (ibsim + libumad2sim, see
# shared/notes/ibsim.md):
#   1. generate the fat tree and its ibsim net file, start ibsim on it;
#   2. discover it live through libibnetdisc; check leaf/spine/core assignment, pods, leaf ports
#      and the hop count of every host pair against the generated fabric;
#   3. the same fabric from `ibnetdiscover` (text dump) and from ibnd cache files (written by
#      `ibnetdiscover --cache` and by our live discovery) gives an identical model;
#   4. `opensm --once` programs the switches; again live == dump == cache (now with LIDs);
#   5. routes: the forwarding tables read live (libibmad SMPs) equal what `ibroute` prints, and
#      every host pair's route reaches its peer in as many hops as the model says, through a spine
#      of the right pod (and a core exactly when it crosses pods); the same from dump + ibroute.
# Usage: ibsim_test.sh FABSCOPE_TOPO_TOOL HOSTS   (HOSTS: 16 -> 2 tiers, 128 -> 3 tiers)
# Any failure, including not being able to start ibsim, fails the test (exit 1): never a skip.
set -u -o pipefail

tool=${1:?usage: ibsim_test.sh FABSCOPE_TOPO_TOOL HOSTS}
hosts=${2:?usage: ibsim_test.sh FABSCOPE_TOPO_TOOL HOSTS}
case $hosts in
  16) spec="hosts=16,nics-per-leaf=4,leaves-per-pod=4,spines-per-pod=2" ;;
  128) spec="hosts=128,nics-per-leaf=8,leaves-per-pod=4,spines-per-pod=2,cores-per-plane=2" ;;
  *) echo "FAIL: no fat-tree shape for $hosts hosts (16 or 128)"; exit 1 ;;
esac

umad2sim=/usr/lib/x86_64-linux-gnu/umad2sim/libumad2sim.so
fail() { echo "FAIL: $*"; exit 1; }
for cmd in ibsim ibnetdiscover ibroute opensm timeout; do
  command -v "$cmd" >/dev/null || fail "'$cmd' not found; install ibsim-utils, infiniband-diags and opensm (apt-get install ibsim-utils libumad2sim0 infiniband-diags opensm)"
done
[ -r "$umad2sim" ] || fail "$umad2sim missing; apt-get install libumad2sim0"
[ -x "$tool" ] || fail "test driver '$tool' not built"
tool=$(realpath "$tool")

scratch=$(mktemp -d /tmp/fabscope-ibsim-XXXXXX) || fail "mktemp"
sock="fabscope-$$-$hosts"
ibsim_pid=""
cleanup() {
  if [ -n "$ibsim_pid" ]; then kill "$ibsim_pid" 2>/dev/null; wait "$ibsim_pid" 2>/dev/null; fi
  rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
cd "$scratch" || fail "cd $scratch"

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
t_start=$(now)
step() {  # step NAME CMD...: runs CMD, prints its time, fails the test on a non-zero exit
  local name=$1; shift
  local t0; t0=$(now)
  if ! "$@" > "step.out" 2>&1; then
    cat step.out
    fail "$name"
  fi
  printf '%-44s %6.2f s  %s\n' "$name" "$(since "$t0")" "$(grep -E '^(OK|compared)' step.out | tr '\n' ' ' | cut -c1-150)"
}
# A simulator client: in the scratch dir (it writes ./sys-<pid>), through the preload, bounded
# by a timeout (a client with no simulator retries forever).
client() { IBSIM_SOCKNAME=$sock SIM_HOST=node00001-mlx5_0 LD_PRELOAD=$umad2sim timeout -k 5 60 "$@"; }
same() {  # same A B: identical canonical models
  if ! cmp -s "$1" "$2"; then
    diff "$1" "$2" | head -20
    return 1
  fi
}
export sock umad2sim tool
export -f client same

step "generate $hosts-host fat tree" "$tool" gen-net --spec "$spec" --out fabric.net
step "net file parses back to the generated fabric" "$tool" check-gen --ibnetdiscover fabric.net --spec "$spec"

t0=$(now)
IBSIM_SOCKNAME=$sock ibsim -s -n fabric.net < /dev/null > ibsim.log 2>&1 &
ibsim_pid=$!
for _ in $(seq 200); do
  grep -q "@$sock:ctl@" /proc/net/unix && break
  kill -0 "$ibsim_pid" 2>/dev/null || break
  sleep 0.05
done
if ! grep -q "@$sock:ctl@" /proc/net/unix; then
  cat ibsim.log
  fail "ibsim did not start (no @$sock:ctl@ socket in /proc/net/unix after 10 s)"
fi
printf '%-44s %6.2f s\n' "start ibsim" "$(since "$t0")"

step "live discovery vs generated (before SM)" client "$tool" check-gen --live --no-routes --spec "$spec" --save-cache live0.cache
step "ibnetdiscover dump + cache (before SM)" bash -c 'client ibnetdiscover > dump0.txt && client ibnetdiscover --cache ibnd0.cache > /dev/null'
step "models: live" client "$tool" canon --live --no-routes --out live0.model
step "models: dump, ibnd cache, live cache" bash -c '"$tool" canon --ibnetdiscover dump0.txt --out dump0.model && "$tool" canon --cache ibnd0.cache --out ibnd0.model && "$tool" canon --cache live0.cache --out cache0.model'
step "live == dump == caches (before SM)" bash -c 'same live0.model dump0.model && same live0.model ibnd0.model && same live0.model cache0.model'
step "dump vs generated" "$tool" check-gen --ibnetdiscover dump0.txt --spec "$spec"

mkdir -p osm
step "opensm --once" env OSM_CACHE_DIR="$scratch/osm" OSM_TMP_DIR="$scratch/osm" IBSIM_SOCKNAME="$sock" SIM_HOST=node00001-mlx5_0 \
  LD_PRELOAD="$umad2sim" timeout -k 5 90 opensm --once -s 0 -f "$scratch/osm/opensm.log"

step "ibnetdiscover dump + cache (after SM)" bash -c 'client ibnetdiscover > dump1.txt && client ibnetdiscover --cache ibnd1.cache > /dev/null'
step "models after SM: live (+cache), dump, cache" bash -c 'client "$tool" canon --live --no-routes --save-cache live1.cache --out live1.model && "$tool" canon --ibnetdiscover dump1.txt --out dump1.model && "$tool" canon --cache ibnd1.cache --out ibnd1.model && "$tool" canon --cache live1.cache --out cache1.model'
step "live == dump == caches (after SM)" bash -c 'same live1.model dump1.model && same live1.model ibnd1.model && same live1.model cache1.model'
if grep '^nic' live1.model | grep -q ' lid=0 '; then fail "opensm left NIC ports without a LID"; fi

lids=$(grep -o 'base port 0 lid [0-9]*' dump1.txt | awk '{print $5}')
[ "$(echo "$lids" | wc -w)" -gt 0 ] || fail "no switch LIDs in the dump after opensm"
step "ibroute of every switch" bash -c "for l in $(echo $lids); do client ibroute \$l || exit 1; done > lfts.txt"
step "routes live (libibmad) == ibroute; pairs" client "$tool" check-routes --live --compare-lfts lfts.txt
step "routes from dump + ibroute dump" "$tool" check-routes --ibnetdiscover dump1.txt --routes lfts.txt

kill "$ibsim_pid" 2>/dev/null
wait "$ibsim_pid" 2>/dev/null
ibsim_pid=""
printf 'PASS ibsim fat tree of %s hosts in %.2f s\n' "$hosts" "$(since "$t_start")"
