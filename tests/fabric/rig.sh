#!/usr/bin/env bash
# The emulated fabric: a multi-host RoCE-like cluster built from network namespaces on one machine,
# for the fabric test tier and for users who want to try fabscope without a cluster (README,
# "Try fabscope on one machine"). Needs root, iproute2 and util-linux (unshare).
#
#   rig.sh [--id ID] up [--hosts 8|16] [--racks 2|4] [--host-rate 200mbit] [--uplink-delay-us 100] [--mtu 9000]
#   rig.sh [--id ID] down [--all]          remove the rig (--all: every rig, leftovers of crashed runs too)
#   rig.sh [--id ID] status                hosts, links, impairments
#   rig.sh [--id ID] topology              path of the topology YAML written for this rig
#   rig.sh [--id ID] exec HOST CMD...      run CMD on emulated host HOST (its namespace and host name)
#   rig.sh [--id ID] mpirun [--hosts h1,h2 | --hostfile F] [MPIRUN ARGS] PROGRAM ARGS...
#                                          one rank per emulated host (all, or those named)
#   rig.sh [--id ID] rate TARGET RATE|default       tbf on a host link (hN) or a leaf's uplink (leafL), both directions
#   rig.sh [--id ID] link HOST [--loss P] [--delay-us D] | direct   put a host link through the forwarder
#   rig.sh [--id ID] uplink LEAF [--loss P] [--delay-us D] | default  the forwarder of a leaf's uplink
#   rig.sh [--id ID] port HOST down|up     disable / re-enable the switch port of a host (a cable pull seen from the switch)
#   rig.sh [--id ID] reset                 every link back to the rig's defaults
#   rig.sh [--id ID] kill                  SIGKILL every process of the hosts and the head (a crashed
#                                          job: mpirun, orted, ranks); the switches keep running
#
# Layout (namespaces are named fsr-ID-*, ID defaults to "rig"; everything lives in them):
#   fsr-ID-sw    the switches: bridges leaf1..leafR (one per rack), spine1, and mgmt (management network)
#   fsr-ID-hN    emulated host hN: fab0 198.18.0.N/24 (the fabric), mgmt0 198.19.0.N/24 (launch / oob)
#   fsr-ID-head  where mpirun runs: mgmt0 198.19.0.254/24 only
# Host link: a veth pair fab0 <-> port hN of its leaf, tbf at --host-rate on both ends. Uplink of
# leaf L: TAP uL-l (on leafL) <-> forwarder (tests/fabric/forwarder.c, --uplink-delay-us each way)
# <-> TAP uL-s (on spine1), so a cross-rack frame crosses two uplinks and gets twice the delay.
# Addresses come from 198.18.0.0/15 (RFC 2544 benchmarking range), no namespace has a default
# route, IPv6 is off everywhere, bridges have STP off and forward delay 0, every port the same MTU.
# State (settings, forwarder logs, topology YAML) is kept in /run/fabscope-rig/ID.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RUN_BASE=${FABSCOPE_RIG_RUN:-/run/fabscope-rig}
ID=${FABSCOPE_RIG_ID:-rig}
FABRIC_NET=198.18.0
MGMT_NET=198.19.0
HEAD_ADDR=254

usage() { echo "rig.sh: $* (commands: rig.sh --help)" >&2; exit 2; }
fail() { echo "rig.sh: $*" >&2; exit 1; }
now_ms() { date +%s%3N; }

if [ "${1:-}" = --id ]; then
  [ $# -ge 2 ] || usage "--id needs a value"
  ID=$2
  shift 2
fi
[[ $ID =~ ^[a-z0-9]{1,8}$ ]] || usage "--id '$ID': 1 to 8 lower-case letters or digits"
P="fsr-$ID-"
STATE="$RUN_BASE/$ID"
SW="${P}sw"
HEAD="${P}head"

need_root() {
  [ "$(id -u)" -eq 0 ] || fail "needs root (network namespaces, bridges, tc); run it with sudo"
  for tool in ip tc bridge unshare; do
    command -v $tool >/dev/null || fail "$tool not found; install iproute2 and util-linux (bash .ci/deps test)"
  done
}

load_state() {
  [ -f "$STATE/rig.env" ] || fail "no rig '$ID' is up (no $STATE/rig.env); start one with: rig.sh${ID:+ --id $ID} up"
  # shellcheck disable=SC1091
  . "$STATE/rig.env"
}

host_index() {  # hN -> N, checked against the rig
  local h=$1
  [[ $h =~ ^h([1-9][0-9]?)$ ]] || usage "'$h' is not a host name (h1..h$HOSTS)"
  local n=${BASH_REMATCH[1]}
  [ "$n" -le "$HOSTS" ] || usage "'$h' is not a host of this rig (h1..h$HOSTS)"
  echo "$n"
}
leaf_of() { echo $(( ($1 - 1) / (HOSTS / RACKS) + 1 )); }
mac() { printf '02:fa:%s:00:00:%02x' "$1" "$2"; }

# The forwarder: $FABSCOPE_FORWARDER (CMake builds it) or compiled here once per source change.
forwarder_bin() {
  if [ -n "${FABSCOPE_FORWARDER:-}" ]; then
    [ -x "$FABSCOPE_FORWARDER" ] || fail "FABSCOPE_FORWARDER=$FABSCOPE_FORWARDER is not an executable"
    echo "$FABSCOPE_FORWARDER"
    return
  fi
  local bin="$RUN_BASE/forwarder"
  if [ ! -x "$bin" ] || [ "$HERE/forwarder.c" -nt "$bin" ]; then
    command -v cc >/dev/null || fail "cc not found to build tests/fabric/forwarder.c (install build-essential)"
    mkdir -p "$RUN_BASE"
    cc -O2 -Wall -Wextra -o "$bin.$$" "$HERE/forwarder.c" || fail "building the forwarder failed"
    mv "$bin.$$" "$bin"
  fi
  echo "$bin"
}

tbf() {  # tbf NS DEV RATE|none
  local ns=$1 dev=$2 rate=$3
  tc -n "$ns" qdisc del dev "$dev" root 2>/dev/null || true
  [ "$rate" = none ] && return 0
  # burst: a few jumbo frames (tbf drops packets larger than its bucket); the queue holds ~10 ms.
  tc -n "$ns" qdisc add dev "$dev" root tbf rate "$rate" burst 32kb latency 10ms \
    || fail "tc tbf rate $rate on $dev in $ns failed (is the rate like 200mbit?)"
}

valid_rate() { [[ $1 =~ ^[0-9]+(\.[0-9]+)?(kbit|mbit|gbit)$ ]] || usage "rate '$1': write it like 50mbit or 1gbit"; }

wait_ready() {  # wait_ready FILE PIDFILE WHAT
  local _
  for _ in $(seq 1 200); do
    [ -e "$1" ] && return 0
    kill -0 "$(cat "$2")" 2>/dev/null || { cat "${2%.pid}.log" >&2 || true; fail "$3: the forwarder exited"; }
    sleep 0.01
  done
  fail "$3: the forwarder did not attach its TAP devices within 2 s"
}

# start_forwarder NAME A B DELAY_US LOSS: a forwarder between two TAP specs (NETNS_PATH:IFNAME).
start_forwarder() {
  local name=$1 a=$2 b=$3 delay=$4 loss=$5 bin
  bin=$(forwarder_bin)
  stop_forwarder "$name"
  rm -f "$STATE/$name.ready"
  # setsid: its own session, so a ctest or terminal signal to the caller does not reach it; `down`
  # ends it by pid (and by namespace). chrt: the forwarder is the switch, it must not wait behind
  # the ranks for a CPU (real-time FIFO priority; it sleeps in epoll_wait between frames).
  setsid chrt -f 20 "$bin" --a "$a" --b "$b" --delay-us "$delay" --loss "$loss" --seed "$RANDOM" \
    --ready "$STATE/$name.ready" </dev/null >"$STATE/$name.log" 2>&1 &
  echo $! >"$STATE/$name.pid"
  wait_ready "$STATE/$name.ready" "$STATE/$name.pid" "$name"
  echo "$delay $loss" >"$STATE/$name.params"
}

stop_forwarder() {
  local pidfile="$STATE/$1.pid" pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.01; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile" "$STATE/$1.ready" "$STATE/$1.params"
}

ns_sysctls() {  # IPv6 off, no stray neighbour chatter
  ip netns exec "$1" sh -c 'sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 && ip link set lo up'
}

# --- host links: direct (veth) or forwarded (TAP - forwarder - TAP) ----------------------------------------
host_link_direct() {  # N
  local n=$1 h="h$1" ns="${P}h$1" leaf
  leaf=$(leaf_of "$n")
  stop_forwarder "link-$h"
  ip -n "$ns" link del fab0 2>/dev/null || true
  ip -n "$SW" link del "$h" 2>/dev/null || true
  ip link add name fab0 netns "$ns" type veth peer name "$h" netns "$SW"
  host_link_common "$n" "$leaf"
  rm -f "$STATE/link-$h.mode"
}

host_link_forwarded() {  # N DELAY_US LOSS
  local n=$1 h="h$1" ns="${P}h$1" leaf
  leaf=$(leaf_of "$n")
  stop_forwarder "link-$h"
  ip -n "$ns" link del fab0 2>/dev/null || true
  ip -n "$SW" link del "$h" 2>/dev/null || true
  ip -n "$ns" tuntap add mode tap name fab0
  ip -n "$SW" tuntap add mode tap name "$h"
  host_link_common "$n" "$leaf"
  start_forwarder "link-$h" "/run/netns/$ns:fab0" "/run/netns/$SW:$h" "$2" "$3"
  echo forwarded >"$STATE/link-$h.mode"
}

host_link_common() {  # N LEAF: addresses, MTU, master, rate (the same MAC every time, so peers' ARP stays valid)
  local n=$1 h="h$1" ns="${P}h$1"
  ip -n "$ns" link set fab0 address "$(mac b0 "$n")" mtu "$MTU" up
  ip -n "$ns" addr add "$FABRIC_NET.$n/24" dev fab0
  ip -n "$SW" link set "$h" mtu "$MTU" master "leaf$2" up
  local rate
  rate=$(cat "$STATE/rate-$h" 2>/dev/null || echo "$HOST_RATE")
  tbf "$ns" fab0 "$rate"
  tbf "$SW" "$h" "$rate"
}

uplink_forwarder() {  # L DELAY_US LOSS
  start_forwarder "uplink-leaf$1" "/run/netns/$SW:u$1-l" "/run/netns/$SW:u$1-s" "$2" "$3"
}

set_rate() {  # TARGET RATE|default
  local target=$1 rate=$2
  [ "$rate" = default ] || valid_rate "$rate"
  if [[ $target =~ ^leaf([0-9]+)$ ]]; then
    local l=${BASH_REMATCH[1]}
    [ "$l" -ge 1 ] && [ "$l" -le "$RACKS" ] || usage "'$target' is not a leaf of this rig (leaf1..leaf$RACKS)"
    [ "$rate" = default ] && rate=none
    tbf "$SW" "u$l-l" "$rate"
    tbf "$SW" "u$l-s" "$rate"
    if [ "$rate" = none ]; then rm -f "$STATE/rate-$target"; else echo "$rate" >"$STATE/rate-$target"; fi
  else
    local n
    n=$(host_index "$target")
    if [ "$rate" = default ]; then rm -f "$STATE/rate-$target"; rate=$HOST_RATE; else echo "$rate" >"$STATE/rate-$target"; fi
    tbf "${P}h$n" fab0 "$rate"
    tbf "$SW" "$target" "$rate"
  fi
}

set_port() {  # HOST down|up: the bridge port on the switch side; the host keeps its carrier, address and routes
  local h=$1 n state
  n=$(host_index "$h")
  case $2 in
    down) state=0; echo down >"$STATE/port-$h" ;;   # BR_STATE_DISABLED: the port neither forwards nor learns
    up) state=3; rm -f "$STATE/port-$h" ;;          # BR_STATE_FORWARDING
    *) usage "port $h: say down or up" ;;
  esac
  bridge -n "$SW" link set dev "$h" state "$state" || fail "setting the bridge port state of $h failed"
  local want=forwarding
  [ "$state" = 0 ] && want=disabled
  bridge -n "$SW" link show dev "$h" | grep -q "state $want" || fail "port $h of leaf$(leaf_of "$n") did not go $want"
}

parse_impair() {  # sets DELAY and LOSS from --loss P --delay-us D
  DELAY=0; LOSS=0
  while [ $# -gt 0 ]; do
    case $1 in
      --loss) [ $# -ge 2 ] && [[ $2 =~ ^(0(\.[0-9]+)?|1(\.0+)?)$ ]] || usage "--loss: a probability like 0.02"; LOSS=$2; shift 2 ;;
      --delay-us) [ $# -ge 2 ] && [[ $2 =~ ^[0-9]+$ ]] || usage "--delay-us: whole microseconds"; DELAY=$2; shift 2 ;;
      *) usage "unknown option '$1' (use --loss P, --delay-us D)" ;;
    esac
  done
}

# --- up / down ----------------------------------------------------------------------------------------------
cmd_up() {
  local hosts=8 racks=2 host_rate=200mbit uplink_delay=100 mtu=9000
  while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || usage "$1 needs a value"
    case $1 in
      --hosts) hosts=$2 ;;
      --racks) racks=$2 ;;
      --host-rate) host_rate=$2 ;;
      --uplink-delay-us) uplink_delay=$2 ;;
      --mtu) mtu=$2 ;;
      *) usage "up: unknown option '$1'" ;;
    esac
    shift 2
  done
  [[ $hosts =~ ^[0-9]+$ ]] && [ "$hosts" -ge 2 ] && [ "$hosts" -le 32 ] || usage "--hosts $hosts: 2..32 (8 for CI, 16 by hand)"
  [[ $racks =~ ^[0-9]+$ ]] && [ "$racks" -ge 1 ] && [ "$racks" -le 8 ] || usage "--racks $racks: 1..8"
  [ $((hosts % racks)) -eq 0 ] || usage "--hosts $hosts is not a multiple of --racks $racks"
  valid_rate "$host_rate"
  [[ $uplink_delay =~ ^[0-9]+$ ]] || usage "--uplink-delay-us: whole microseconds"
  [[ $mtu =~ ^[0-9]+$ ]] && [ "$mtu" -ge 1280 ] && [ "$mtu" -le 9000 ] || usage "--mtu: 1280..9000"
  need_root
  if [ -e "/run/netns/$SW" ] || [ -f "$STATE/rig.env" ]; then
    echo "rig.sh: rig '$ID' exists already (a crashed run?); removing it first" >&2
    cmd_down
  fi
  local t0
  t0=$(now_ms)
  mkdir -p "$STATE"
  HOSTS=$hosts RACKS=$racks HOST_RATE=$host_rate UPLINK_DELAY=$uplink_delay MTU=$mtu
  cat >"$STATE/rig.env" <<EOF
HOSTS=$hosts
RACKS=$racks
HOST_RATE=$host_rate
UPLINK_DELAY=$uplink_delay
MTU=$mtu
EOF
  # Whatever fails below (or a signal), nothing half-built stays behind.
  UP_DONE=0
  trap 'if [ "$UP_DONE" != 1 ]; then echo "rig.sh: up failed; removing what was made" >&2; cmd_down >/dev/null 2>&1 || true; fi' EXIT
  trap 'exit 130' INT TERM HUP
  forwarder_bin >/dev/null
  local n l
  ip netns add "$SW" || fail "cannot create network namespaces (ip netns add $SW); this needs root and a kernel with netns"
  ns_sysctls "$SW"
  for l in $(seq 1 "$racks"); do
    ip -n "$SW" link add "leaf$l" type bridge stp_state 0 forward_delay 0
    ip -n "$SW" link set "leaf$l" mtu "$mtu" up
  done
  ip -n "$SW" link add spine1 type bridge stp_state 0 forward_delay 0
  ip -n "$SW" link set spine1 mtu "$mtu" up
  ip -n "$SW" link add mgmt type bridge stp_state 0 forward_delay 0
  ip -n "$SW" link set mgmt mtu "$mtu" up
  ip netns add "$HEAD"
  ns_sysctls "$HEAD"
  ip link add name mgmt0 netns "$HEAD" type veth peer name mhead netns "$SW"
  ip -n "$HEAD" link set mgmt0 mtu "$mtu" up
  ip -n "$HEAD" addr add "$MGMT_NET.$HEAD_ADDR/24" dev mgmt0
  ip -n "$SW" link set mhead mtu "$mtu" master mgmt up
  for n in $(seq 1 "$hosts"); do
    ip netns add "${P}h$n"
    ns_sysctls "${P}h$n"
    host_link_direct "$n"
    ip link add name mgmt0 netns "${P}h$n" type veth peer name "m$n" netns "$SW"
    ip -n "${P}h$n" link set mgmt0 address "$(mac b1 "$n")" mtu "$mtu" up
    ip -n "${P}h$n" addr add "$MGMT_NET.$n/24" dev mgmt0
    ip -n "$SW" link set "m$n" mtu "$mtu" master mgmt up
  done
  for l in $(seq 1 "$racks"); do
    ip -n "$SW" tuntap add mode tap name "u$l-l"
    ip -n "$SW" tuntap add mode tap name "u$l-s"
    ip -n "$SW" link set "u$l-l" mtu "$mtu" master "leaf$l" up
    ip -n "$SW" link set "u$l-s" mtu "$mtu" master spine1 up
    uplink_forwarder "$l" "$uplink_delay" 0
  done
  write_topology
  # Every host answers on the fabric and the management network (ARP resolved, forwarders up).
  command -v ping >/dev/null || fail "ping not found; install iputils-ping (bash .ci/deps test)"
  for n in $(seq 1 "$hosts"); do
    ip netns exec "${P}h1" ping -c1 -W2 -q "$FABRIC_NET.$n" >/dev/null || fail "h1 cannot reach h$n over the fabric"
    ip netns exec "$HEAD" ping -c1 -W2 -q "$MGMT_NET.$n" >/dev/null || fail "head cannot reach h$n over the management network"
  done
  UP_DONE=1
  trap - EXIT INT TERM HUP
  echo "rig.sh: rig '$ID' up in $(( $(now_ms) - t0 )) ms: $hosts hosts in $racks racks (leaf1..leaf$racks, spine1), host links $host_rate," \
       "uplinks +${uplink_delay} us each way, MTU $mtu; topology $STATE/topology.yaml"
}

write_topology() {
  local per=$((HOSTS / RACKS)) l hosts
  {
    echo "# The emulated fabric of tests/fabric/rig.sh (rig '$ID'): $HOSTS hosts in $RACKS racks, one leaf per rack,"
    echo "# every leaf linked once to spine1. Written by rig.sh up; format: configs/topologies/README.md."
    echo "version: 1"
    echo "name: emu${HOSTS}x${RACKS}"
    echo "link_layer: ethernet"
    echo "spines: [spine1]"
    echo "leaves: [$(seq -s ', ' -f 'leaf%g' 1 "$RACKS")]"
    echo "racks:"
    for l in $(seq 1 "$RACKS"); do
      hosts=$(seq -s ', ' -f 'h%g' $(( (l - 1) * per + 1 )) $(( l * per )))
      echo "  - {name: r$l, leaf: leaf$l, hosts: [$hosts]}"
    done
  } >"$STATE/topology.yaml"
}

# Removes rig ID (or every fsr-* rig with --all): ends every process inside its namespaces (mpirun,
# orted, ranks, forwarders: all started by the rig or through it), deletes the namespaces (their
# veth, TAP and bridge devices go with them) and the state folder.
cmd_down() {
  local all=${1:-}
  need_root
  local t0 pattern ns pids
  t0=$(now_ms)
  if [ "$all" = --all ]; then pattern='^fsr-[a-z0-9]+-'; else pattern="^$P"; fi
  local targets
  targets=$(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "$pattern" || true)
  # Forwarders first (their pid files), then whatever still lives in the namespaces.
  local dirs
  if [ "$all" = --all ]; then dirs=$(ls -d "$RUN_BASE"/*/ 2>/dev/null || true); else dirs="$STATE/"; fi
  for d in $dirs; do
    for f in "$d"*.pid; do
      [ -f "$f" ] || continue
      kill -TERM "$(cat "$f")" 2>/dev/null || true
    done
  done
  for sig in TERM KILL; do
    for ns in $targets; do
      pids=$(ip netns pids "$ns" 2>/dev/null || true)
      [ -n "$pids" ] && kill -"$sig" $pids 2>/dev/null || true
    done
    [ "$sig" = TERM ] && [ -n "$targets" ] && sleep 0.2
  done
  for ns in $targets; do
    ip netns del "$ns" 2>/dev/null || true
  done
  for d in $dirs; do rm -rf "$d"; done
  local left
  left=$(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "$pattern" || true)
  [ -z "$left" ] || fail "could not remove namespaces: $left"
  echo "rig.sh: rig ${all:+(all) }'$ID' down in $(( $(now_ms) - t0 )) ms ($(echo "$targets" | grep -c . || true) namespaces removed)"
}

cmd_status() {
  load_state
  echo "rig '$ID': $HOSTS hosts, $RACKS racks, host links $HOST_RATE, uplink delay ${UPLINK_DELAY} us, MTU $MTU"
  echo "topology: $STATE/topology.yaml"
  local n l h
  for n in $(seq 1 "$HOSTS"); do
    h="h$n"
    printf '  %-4s leaf%s fabric %s.%s mgmt %s.%s rate %s%s%s\n' "$h" "$(leaf_of "$n")" "$FABRIC_NET" "$n" "$MGMT_NET" "$n" \
      "$(cat "$STATE/rate-$h" 2>/dev/null || echo "$HOST_RATE")" \
      "$([ -f "$STATE/link-$h.params" ] && echo " forwarded (delay_us loss: $(cat "$STATE/link-$h.params"))")" \
      "$([ -f "$STATE/port-$h" ] && echo " PORT DOWN")"
  done
  for l in $(seq 1 "$RACKS"); do
    printf '  uplink leaf%s-spine1: delay_us loss %s, rate %s\n' "$l" "$(cat "$STATE/uplink-leaf$l.params" 2>/dev/null || echo '(forwarder not running)')" \
      "$(cat "$STATE/rate-leaf$l" 2>/dev/null || echo unlimited)"
  done
}

cmd_mpirun() {
  load_state
  [ $# -ge 1 ] || usage "mpirun: give the program to run (and mpirun options before it)"
  command -v mpirun >/dev/null || fail "mpirun not found; install openmpi-bin"
  local hostlist np
  hostlist=$(seq -s, -f 'h%g' 1 "$HOSTS")
  np=$HOSTS
  # --hosts h1,h5 (or --hostfile FILE, one emulated host per line, as on a cluster): only those.
  while [ $# -ge 2 ] && { [ "$1" = --hosts ] || [ "$1" = --hostfile ]; }; do
    if [ "$1" = --hostfile ]; then
      [ -r "$2" ] || usage "mpirun --hostfile $2: cannot read it"
      hostlist=$(awk 'NF && $1 !~ /^#/ {print $1}' "$2" | paste -sd, -)
    else
      hostlist=$2
    fi
    shift 2
    local h
    np=0
    for h in ${hostlist//,/ }; do
      host_index "$h" >/dev/null
      np=$((np + 1))
    done
    [ "$np" -ge 1 ] || usage "mpirun: no hosts given"
  done
  # One rank per emulated host; data (btl) over the fabric, launch and oob over the management
  # network. --bind-to none: every emulated host would pin its rank to CPU 0. yield_when_idle:
  # ranks waiting inside MPI give the CPU back (2 cores, 8+ ranks).
  ip netns exec "$HEAD" env FABSCOPE_RIG_NS_PREFIX="$P" OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
    mpirun --host "$hostlist" -np "$np" --map-by node --bind-to none \
      --mca plm_rsh_agent "$HERE/rsh-agent.sh" --mca plm_rsh_no_tree_spawn 1 \
      --mca btl tcp,self --mca btl_tcp_if_include "$FABRIC_NET.0/24" --mca oob_tcp_if_include "$MGMT_NET.0/24" \
      --mca mpi_yield_when_idle 1 "$@"
}

cmd_exec() {
  load_state
  [ $# -ge 2 ] || usage "exec HOST COMMAND..."
  local n
  n=$(host_index "$1")
  exec ip netns exec "${P}h$n" unshare --uts /bin/sh -c 'hostname "$0" && exec "$@"' "$@"
}

cmd_reset() {
  load_state
  local n l h
  for n in $(seq 1 "$HOSTS"); do
    h="h$n"
    rm -f "$STATE/rate-$h"
    if [ -f "$STATE/link-$h.mode" ]; then host_link_direct "$n"; else set_rate "$h" default; fi
    [ -f "$STATE/port-$h" ] && set_port "$h" up
  done
  for l in $(seq 1 "$RACKS"); do
    set_rate "leaf$l" default
    if [ "$(cat "$STATE/uplink-leaf$l.params" 2>/dev/null)" != "$UPLINK_DELAY 0" ]; then uplink_forwarder "$l" "$UPLINK_DELAY" 0; fi
  done
  echo "rig.sh: rig '$ID' reset to its defaults"
}

[ $# -ge 1 ] || usage "no command"
cmd=$1
shift
case $cmd in
  up) cmd_up "$@" ;;
  down)
    [ $# -eq 0 ] || [ "$*" = --all ] || usage "down takes only --all"
    cmd_down "${1:-}" ;;
  status) cmd_status ;;
  topology) load_state; echo "$STATE/topology.yaml" ;;
  exec) cmd_exec "$@" ;;
  mpirun) cmd_mpirun "$@" ;;
  rate)
    load_state
    [ $# -eq 2 ] || usage "rate TARGET RATE|default (TARGET: hN or leafL)"
    set_rate "$1" "$2"
    echo "rig.sh: $1 rate $2" ;;
  link)
    load_state
    [ $# -ge 1 ] || usage "link HOST [--loss P] [--delay-us D] | link HOST direct"
    n=$(host_index "$1")
    if [ "${2:-}" = direct ]; then
      host_link_direct "$n"
      echo "rig.sh: $1 link direct"
    else
      h=$1
      shift
      parse_impair "$@"
      host_link_forwarded "$n" "$DELAY" "$LOSS"
      echo "rig.sh: $h link forwarded: delay ${DELAY} us, loss $LOSS"
    fi ;;
  uplink)
    load_state
    [ $# -ge 1 ] && [[ $1 =~ ^leaf([0-9]+)$ ]] || usage "uplink LEAF [--loss P] [--delay-us D] | uplink LEAF default"
    l=${BASH_REMATCH[1]}
    [ "$l" -ge 1 ] && [ "$l" -le "$RACKS" ] || usage "'$1' is not a leaf of this rig (leaf1..leaf$RACKS)"
    if [ "${2:-}" = default ]; then
      uplink_forwarder "$l" "$UPLINK_DELAY" 0
    else
      shift
      parse_impair "$@"
      uplink_forwarder "$l" "$DELAY" "$LOSS"
    fi
    echo "rig.sh: uplink leaf$l: delay_us loss $(cat "$STATE/uplink-leaf$l.params")" ;;
  port)
    load_state
    [ $# -eq 2 ] || usage "port HOST down|up"
    set_port "$1" "$2"
    echo "rig.sh: port $1 $2" ;;
  reset) cmd_reset ;;
  kill)
    load_state
    for ns in "$HEAD" $(seq -f "${P}h%g" 1 "$HOSTS"); do
      pids=$(ip netns pids "$ns" 2>/dev/null || true)
      [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
    done
    echo "rig.sh: every process on the hosts and the head of rig '$ID' killed" ;;
  -h|--help|help) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//' ;;
  *) usage "unknown command '$cmd'" ;;
esac
