#!/usr/bin/env bash
# A real Slurm cluster on this machine for the slurm test tier (and for trying the job templates):
# munged, slurmctld and one slurmd per node, all started here and all stopped by `down`.
# Recipe and pitfalls: ../shared/notes/slurm.md (README, "Slurm").
#
#   cluster.sh up DIR --rig ID [--topology FILE]   one slurmd inside each host namespace of the
#                                                  emulated fabric `rig.sh --id ID` (must be up):
#                                                  nodes h1..hN with their own names and addresses,
#                                                  slurmctld in the rig's head namespace
#   cluster.sh up DIR --pretend N [--port-base P] [--topology FILE]
#                                                  N pretend nodes n1..nN on this host (one slurmd
#                                                  each, ports P+1..P+N, slurmctld on P)
#   cluster.sh down DIR                            stop every daemon `up` started (pid files), keep logs
#   cluster.sh run DIR CMD...                      run a Slurm client command (srun, sbatch, ...) with
#                                                  SLURM_CONF set, in the head namespace for --rig
#
# DIR holds everything (slurm.conf, state, spool, logs, munge socket); nothing global is touched:
# munged listens on DIR/munge/munge.socket (AuthInfo=socket=...), the cluster is named after DIR.
# With --topology FILE, FILE becomes the cluster's topology.conf (TopologyPlugin=topology/tree).
# Needs root, slurm-wlm and munge (bash .ci/deps test installs them).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RIG="$HERE/../fabric/rig.sh"
usage() { echo "cluster.sh: $* (see the top of tests/slurm/cluster.sh)" >&2; exit 2; }
fail() { echo "cluster.sh: $*" >&2; exit 1; }
now_ms() { date +%s%3N; }

[ $# -ge 2 ] || usage "give a command and DIR"
cmd=$1
DIR=$2
shift 2
case $DIR in /*) ;; *) DIR="$PWD/$DIR" ;; esac

load() {
  [ -f "$DIR/cluster.env" ] || fail "no cluster in $DIR (no cluster.env); start one with: cluster.sh up $DIR ..."
  # shellcheck disable=SC1091
  . "$DIR/cluster.env"
}

# Runs a command where the cluster's clients run: the rig's head namespace, or here.
client() {
  if [ "$MODE" = rig ]; then
    ip netns exec "fsr-$RIG_ID-head" env SLURM_CONF="$DIR/etc/slurm.conf" "$@"
  else
    env SLURM_CONF="$DIR/etc/slurm.conf" "$@"
  fi
}

# TERM every daemon of the pid files at once, wait up to 5 s for all, then KILL what is left.
stop_pidfiles() {
  local f pid pids=() i alive
  for f in "$@"; do
    [ -f "$f" ] || continue
    pid=$(cat "$f" 2>/dev/null || true)
    rm -f "$f"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || continue
    kill -TERM "$pid" 2>/dev/null || true
    pids+=("$pid")
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  for i in $(seq 1 50); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive -eq 0 ] && return 0
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
}

cmd_down() {
  [ -f "$DIR/cluster.env" ] || { echo "cluster.sh: nothing to stop in $DIR"; return 0; }
  load
  local t0
  t0=$(now_ms)
  # Jobs first (their steps hold slurmd), then every daemon at once (each takes 1-2 s to exit).
  client scancel --full --quiet --user=root 2>/dev/null || true
  stop_pidfiles "$DIR"/run/slurmd-*.pid "$DIR/run/slurmctld.pid" "$DIR/munge/munged.pid"
  rm -f "$DIR/cluster.env"
  echo "cluster.sh: cluster in $DIR down in $(( $(now_ms) - t0 )) ms"
}

cmd_up() {
  local mode="" rig_id="" n=0 port_base=17100 topo=""
  while [ $# -gt 0 ]; do
    case $1 in
      --rig) [ $# -ge 2 ] || usage "--rig needs the rig id"; mode=rig; rig_id=$2; shift 2 ;;
      --pretend) [ $# -ge 2 ] || usage "--pretend needs a node count"; mode=pretend; n=$2; shift 2 ;;
      --port-base) [ $# -ge 2 ] || usage "--port-base needs a port"; port_base=$2; shift 2 ;;
      --topology) [ $# -ge 2 ] || usage "--topology needs a file"; topo=$2; shift 2 ;;
      *) usage "unknown option '$1'" ;;
    esac
  done
  [ -n "$mode" ] || usage "up: give --rig ID or --pretend N"
  [ "$(id -u)" -eq 0 ] || fail "needs root (slurmd, namespaces)"
  for tool in slurmctld slurmd srun munged; do
    command -v $tool >/dev/null || fail "$tool not found; install slurm-wlm and munge (bash .ci/deps test)"
  done
  [ -r /etc/munge/munge.key ] || fail "no /etc/munge/munge.key (the munge package creates it; reinstall munge)"
  [ ! -f "$DIR/cluster.env" ] || fail "a cluster is already up in $DIR; cluster.sh down $DIR first"
  [ -z "$topo" ] || [ -r "$topo" ] || usage "--topology $topo: cannot read the file"
  local t0 nodes nodelist i
  t0=$(now_ms)
  if [ "$mode" = rig ]; then
    # shellcheck disable=SC1090
    [ -f "/run/fabscope-rig/$rig_id/rig.env" ] || fail "no rig '$rig_id' is up; start it with: rig.sh --id $rig_id up"
    n=$(. "/run/fabscope-rig/$rig_id/rig.env"; echo "$HOSTS")
    nodes="h[1-$n]"
  else
    [[ $n =~ ^[1-9][0-9]?$ ]] || usage "--pretend $n: give 1..99 nodes"
    nodes="n[1-$n]"
  fi
  # A fresh controller: jobs of an earlier cluster in DIR must not come back.
  rm -rf "$DIR/state" "$DIR/spool" "$DIR/tmp"
  mkdir -p "$DIR"/{etc,state,run,log,munge}
  rm -f "$DIR"/run/*.pid
  for i in $(seq 1 "$n"); do
    if [ "$mode" = rig ]; then mkdir -p "$DIR/spool/h$i" "$DIR/tmp/h$i"; else mkdir -p "$DIR/spool/n$i" "$DIR/tmp/n$i"; fi
  done
  chown munge:munge "$DIR/munge"
  chmod 0755 "$DIR/munge"
  local cluster
  cluster="fs$(basename "$DIR" | tr -cd 'a-z0-9' | head -c 20)"
  {
    echo "ClusterName=$cluster"
    if [ "$mode" = rig ]; then
      echo "SlurmctldHost=head(198.19.0.254)"
    else
      echo "SlurmctldHost=$(hostname -s)"
      echo "SlurmctldPort=$port_base"
    fi
    cat <<EOF
SlurmUser=root
SlurmdUser=root
MailProg=/bin/true
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/%n
TmpFS=$DIR/tmp/%n
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd-%n.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
KillOnBadExit=1
ReturnToService=2
SlurmdParameters=config_overrides
EOF
    [ -n "$topo" ] && echo "TopologyPlugin=topology/tree"
    if [ "$mode" = rig ]; then
      echo "NodeName=$nodes NodeAddr=198.19.0.[1-$n] CPUs=1 RealMemory=1000 State=UNKNOWN"
    else
      echo "NodeName=$nodes NodeHostname=$(hostname -s) NodeAddr=127.0.0.1 Port=[$((port_base + 1))-$((port_base + n))] CPUs=1 RealMemory=1000 State=UNKNOWN"
    fi
    echo "PartitionName=fab Nodes=$nodes Default=YES MaxTime=INFINITE State=UP"
  } >"$DIR/etc/slurm.conf"
  # slurmd inside `ip netns exec` sees a fresh /sys without cgroup2 mounted: the v1 plugin copes.
  [ "$mode" = rig ] && echo "CgroupPlugin=cgroup/v1" >"$DIR/etc/cgroup.conf"
  if [ -n "$topo" ]; then cp "$topo" "$DIR/etc/topology.conf"; else rm -f "$DIR/etc/topology.conf"; fi
  {
    echo "MODE=$mode"
    echo "RIG_ID=$rig_id"
    echo "NODES='$nodes'"
    echo "NODE_COUNT=$n"
  } >"$DIR/cluster.env"
  # From here on, a failure stops what was started.
  trap 'echo "cluster.sh: start failed; stopping what was started (logs in $DIR/log)" >&2; cmd_down >&2' ERR
  MODE=$mode RIG_ID=$rig_id
  runuser -u munge -- munged --socket="$DIR/munge/munge.socket" --pid-file="$DIR/munge/munged.pid" \
    --log-file="$DIR/munge/munged.log" --seed-file="$DIR/munge/munged.seed"
  export SLURM_CONF="$DIR/etc/slurm.conf"
  if [ "$mode" = rig ]; then
    ip netns exec "fsr-$rig_id-head" unshare --uts /bin/sh -c 'hostname head && exec slurmctld'
    for i in $(seq 1 "$n"); do "$RIG" --id "$rig_id" exec "h$i" slurmd; done
  else
    slurmctld
    for i in $(seq 1 "$n"); do slurmd -N "n$i"; done
  fi
  # Every node idle (sinfo), at most 30 s.
  local idle=0
  for i in $(seq 1 300); do
    idle=$(client sinfo -h -N -t idle -o '%N' 2>/dev/null | sort -u | grep -c . || true)
    [ "$idle" -ge "$n" ] && break
    sleep 0.1
  done
  [ "$idle" -ge "$n" ] || { echo "cluster.sh: only $idle of $n nodes idle after 30 s" >&2; false; }
  trap - ERR
  echo "cluster.sh: $n nodes ($nodes, $mode) idle in $(( $(now_ms) - t0 )) ms; clients: SLURM_CONF=$DIR/etc/slurm.conf"
}

case $cmd in
  up) cmd_up "$@" ;;
  down) [ $# -eq 0 ] || usage "down takes only DIR"; cmd_down ;;
  run) [ $# -ge 1 ] || usage "run DIR CMD..."; load; client "$@" ;;
  *) usage "unknown command '$cmd'" ;;
esac
