#!/bin/sh
# An ssh stand-in for OpenMPI's rsh launcher (mpirun --mca plm_rsh_agent THIS) on the emulated fabric
# of tests/fabric/rig.sh: `rsh-agent.sh [ssh options] HOST COMMAND...` runs COMMAND in the network
# namespace of emulated host HOST, in a UTS namespace of its own whose host name is HOST (so
# gethostname() in every rank says h1, h2, ...). Like ssh, the remote command is the words after
# HOST joined by spaces and run by a shell. The namespace prefix comes from the environment rig.sh
# sets for mpirun (FABSCOPE_RIG_NS_PREFIX).
set -eu
prefix=${FABSCOPE_RIG_NS_PREFIX:?rsh-agent.sh: FABSCOPE_RIG_NS_PREFIX is not set; launch through tests/fabric/rig.sh mpirun}
# ssh-style options before the host: those with a value take the next word.
while [ $# -gt 0 ]; do
  case $1 in
    -[bcDEeFIiJLlmOopQRSWw]) shift 2 ;;
    -*) shift ;;
    *) break ;;
  esac
done
[ $# -ge 2 ] || { echo "rsh-agent.sh: usage: rsh-agent.sh [ssh options] HOST COMMAND..." >&2; exit 2; }
host=$1
shift
case $host in
  h[0-9]|h[0-9][0-9]) ;;
  *) echo "rsh-agent.sh: '$host' is not an emulated host (h1, h2, ...)" >&2; exit 2 ;;
esac
[ -e "/run/netns/$prefix$host" ] || { echo "rsh-agent.sh: no namespace $prefix$host (is the rig up?)" >&2; exit 2; }
exec ip netns exec "$prefix$host" unshare --uts /bin/sh -c 'hostname "$1" && exec /bin/sh -c "$2"' sh "$host" "$*"
