#!/bin/sh
# /init (PID 1, busybox sh) of the fabscope Soft-RoCE test VM. build-image.sh copies this file into
# the base initramfs; run-vm.sh appends a second cpio with /fabscope/cmd.sh and the test's files.
#
# Kernel command line: fabscope.role=single|vm1|vm2 (default single), fabscope.deadline_at=EPOCH
# (host time by which the commands are killed, so results still come back before the host's
# timeout), fabscope.deadline=SECONDS (the same in guest uptime, used when the clock is not set), fabscope.mtu=BYTES (netdev MTU, default 9000).
# Files go to the host through a virtio-9p shared folder (mount tag fabscope.results): the guest
# copies /results into it and unmounts it before powering off. Every write is a request that QEMU
# answers only after writing the host file, so no byte is in flight at power-off, however slow the
# host. (The virtio serial port used before lost bytes of a result file on a loaded host: a write
# there returns once the data is queued, so the power-off can come before QEMU has written it out.)
# Console (ttyS0): progress, the commands' output, and last `FABSCOPE-VM-RESULT rc=<N>`.
# Shared folder: files/<relative path> for every file left under /results, then MANIFEST (one
# `<size> <md5> <relative path>` line per file, last `FABSCOPE-VM-FILES-DONE count=<N> rc=<N>`),
# written last, so a MANIFEST with its DONE line means every file was written in full.

export PATH=/usr/sbin:/usr/bin HOME=/root TERM=dumb LANG=C LC_ALL=C TMPDIR=/tmp

say() { echo "fabscope-vm: $*"; }
finish() {
  # $1: rc of the commands (or of the setup step that failed)
  rc=$1
  send_results "$rc"
  echo "FABSCOPE-VM-RESULT rc=$rc"
  if [ "$role" = vm1 ] && [ -n "$vm2_up" ]; then
    # VM 2 waits for this file, then powers off (the host kills it after a grace period anyway).
    timeout 5 fabscope-ssh vm2 'touch /tmp/fabscope-poweroff' </dev/null >/dev/null 2>&1
  fi
  sync
  poweroff -f
  sleep 10
}
fail() {
  say "setup failed: $*"
  finish 1
}
send_results() {
  # $1: rc of the commands, also recorded in the manifest
  share=/run/fabscope-share
  mkdir -p "$share"
  if ! grep -q "^fabscope.results $share " /proc/mounts &&
    ! mount -t 9p -o trans=virtio,version=9p2000.L,cache=none,msize=524288 fabscope.results "$share"; then
    say "cannot mount the 9p share fabscope.results: result files not sent"
    return
  fi
  mkdir -p "$share/files"
  n=0
  : >"$share/MANIFEST.part"
  find /results -type f | sort >/tmp/fabscope-results.list
  while read -r f; do
    rel=${f#/results/}
    mkdir -p "$share/files/$(dirname "$rel")"
    if ! cp "$f" "$share/files/$rel"; then
      say "copying $rel to the host failed"
      continue
    fi
    echo "$(stat -c %s "$f") $(md5sum "$f" | cut -d' ' -f1) $rel" >>"$share/MANIFEST.part"
    n=$((n + 1))
  done </tmp/fabscope-results.list
  echo "FABSCOPE-VM-FILES-DONE count=$n rc=$1" >>"$share/MANIFEST.part"
  mv "$share/MANIFEST.part" "$share/MANIFEST"
  sync
  umount "$share" || say "umount of the 9p share failed"
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /tmp /results /run
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 shm /dev/shm
chmod 1777 /tmp
exec </dev/null >/dev/console 2>&1

role=single
deadline=0
deadline_at=0
mtu=9000
vm2_up=
# shellcheck disable=SC2013  # the command line is one line of words
for w in $(cat /proc/cmdline); do
  case $w in
    fabscope.role=*) role=${w#*=} ;;
    fabscope.deadline=*) deadline=${w#*=} ;;
    fabscope.deadline_at=*) deadline_at=${w#*=} ;;
    fabscope.mtu=*) mtu=${w#*=} ;;
  esac
done
case $role in
  single) host=vm1; ip=198.18.0.1; netdev=dum0 ;;
  vm1) host=vm1; ip=198.18.0.1; peer=198.18.0.2; netdev=eth0 ;;
  vm2) host=vm2; ip=198.18.0.2; peer=198.18.0.1; netdev=eth0 ;;
  *) fail "unknown fabscope.role=$role" ;;
esac
hostname "$host"

while read -r mod opts; do
  # shellcheck disable=SC2086  # options are separate words
  insmod "$mod" $opts || fail "insmod $mod"
done </etc/fabscope/modules
# Libraries a --bin added (second cpio) may live outside the default search path.
[ -f /fabscope/run-ldconfig ] && ldconfig 2>/dev/null

ip link set lo up
if [ "$netdev" = dum0 ]; then
  ip link add dum0 type dummy || fail "ip link add dum0"
else
  i=0
  while [ ! -e /sys/class/net/eth0 ]; do
    i=$((i + 1))
    [ $i -gt 100 ] && fail "no eth0 (virtio NIC) after 10 s"
    sleep 0.1
  done
fi
# MTU 9000 gives rxe a 4096-byte path MTU; with 1500 it is 1024 and runs are much slower.
ip link set "$netdev" mtu "$mtu" up || fail "ip link set $netdev mtu $mtu up"
ip addr add "$ip/24" dev "$netdev" || fail "ip addr add $ip"
rdma link add rxe0 type rxe netdev "$netdev" || fail "rdma link add rxe0 netdev $netdev"
# Port ACTIVE, and GID index 1 (the IPv4-mapped RoCEv2 GID of $ip) filled in.
i=0
until grep -q ACTIVE /sys/class/infiniband/rxe0/ports/1/state 2>/dev/null &&
  grep -q ':ffff:' /sys/class/infiniband/rxe0/ports/1/gids/1 2>/dev/null; do
  i=$((i + 1))
  [ $i -gt 200 ] && fail "rxe0 not ACTIVE with an IPv4 GID after 20 s"
  sleep 0.1
done

# Environment for the test commands (and, through dropbear -e, for ssh sessions on VM 2).
export FABSCOPE_VM=1 FABSCOPE_VM_ROLE="$role" FABSCOPE_VM_HOST="$host" FABSCOPE_VM_IP="$ip"
export FABSCOPE_RDMA_DEV=rxe0 FABSCOPE_RDMA_PORT=1 FABSCOPE_GID_INDEX=1 FABSCOPE_NETDEV="$netdev"
export FABSCOPE_RESULTS=/results
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# OpenMPI's RDMA paths (UCX, openib) do not work over rxe and are not needed: MPI runs over TCP and
# shared memory and carries only the out-of-band exchange.
export OMPI_MCA_pml=ob1 OMPI_MCA_btl=tcp,self,vader OMPI_MCA_osc=^ucx,pt2pt
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_hwloc_base_binding_policy=none
export OMPI_MCA_btl_vader_single_copy_mechanism=none
if [ "$role" = single ]; then
  export OMPI_MCA_plm=isolated
else
  export FABSCOPE_PEER_IP="$peer" FABSCOPE_SSH=fabscope-ssh OMPI_MCA_plm_rsh_agent=fabscope-ssh
  export FABSCOPE_MPIRUN_2VM="mpirun --mca plm rsh --mca plm_rsh_agent fabscope-ssh --mca plm_rsh_no_tree_spawn 1 --host vm1:1,vm2:1 --map-by node --mca btl tcp,self --mca btl_tcp_if_include eth0 --mca oob_tcp_if_include eth0 --mca pml ob1"
fi
read -r up _ </proc/uptime
say "ready: role=$role host=$host $netdev=$ip rxe0 ACTIVE (uptime ${up}s)"

if [ "$role" = vm2 ]; then
  dropbear -F -E -e -s -p 22 -r /etc/dropbear/dropbear_ed25519_host_key -P /run/dropbear.pid &
  say "dropbear started; waiting for vm1 to finish"
  while [ ! -e /tmp/fabscope-poweroff ]; do sleep 0.5; done
  say "vm1 is done; powering off"
  sync
  poweroff -f
  sleep 10
fi

if [ "$role" = vm1 ]; then
  i=0
  until out=$(timeout 10 fabscope-ssh vm2 true </dev/null 2>&1); do
    i=$((i + 1))
    [ $i -gt 90 ] && fail "ssh to vm2 did not answer within 90 tries; last: $out"
    sleep 1
  done
  vm2_up=1
  read -r up _ </proc/uptime
  say "vm2 answers over ssh (uptime ${up}s)"
fi

[ -f /fabscope/cmd.sh ] || fail "no /fabscope/cmd.sh in the initramfs"
cd /tmp || fail "cd /tmp"
read -r up _ </proc/uptime
up=${up%.*}
echo "FABSCOPE-VM-CMD-BEGIN"
# The deadline in host time (the guest's clock starts from QEMU's RTC, i.e. the host's): a boot
# slowed by a loaded host then shortens the commands, not the time left to send the results.
# Without a sane clock, the uptime-based deadline (which does not count the boot).
now_s=$(date +%s)
if [ "$deadline_at" -gt 0 ] && [ "$now_s" -gt 1000000000 ]; then
  deadline=$((up + deadline_at - now_s))
fi
if [ "$deadline" -gt 0 ]; then
  left=$((deadline - up))
  [ $left -lt 10 ] && left=10
  timeout -s KILL "$left" sh /fabscope/cmd.sh
  rc=$?
  read -r now _ </proc/uptime
  if [ $rc -eq 137 ] && [ "${now%.*}" -ge $((up + left - 1)) ]; then
    say "commands killed after ${left}s (guest deadline, 30 s before the host's --timeout)"
    rc=124
  fi
else
  sh /fabscope/cmd.sh
  rc=$?
fi
echo "FABSCOPE-VM-CMD-END"
finish "$rc"
