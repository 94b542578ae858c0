#!/usr/bin/env bash
# Boots the Soft-RoCE test VM (QEMU TCG, Debian kernel, rxe0 over a dummy netdev) and runs shell
# commands in it; with --vms 2 (what run-2vm.sh passes) two VMs joined by a UDP socket netdev.
#
# Usage: run-vm.sh [options] -- 'shell commands run in the guest (busybox sh)'
#   --timeout S            wall-clock limit for the whole run, boot included (default 600)
#   --file HOST[:GUEST]    copy a file or directory into the guest (default GUEST: same absolute path)
#   --bin HOSTBINARY       copy a binary and every library ldd lists, at the same absolute paths
#   --script FILE          read the guest commands from FILE instead of the arguments after --
#   --outdir DIR           files the guest leaves under /results come back here
#                          (default: <workdir>/results, and the workdir is kept)
#   --log FILE             console log (default <workdir>/console.log; two VMs: FILE and FILE.vm2)
#   --workdir DIR          where the initrd, logs and shared folder go (default: a new temp dir,
#                          removed after a run that passed, unless results or --keep are in it)
#   --keep                 keep the default temp workdir
#   --quiet                do not stream the console to stdout
#   --mem MB, --smp N      guest size (default 2048 MB; 2 vCPUs for one VM, 1 each for two;
#                          env FABSCOPE_VM_MEM, FABSCOPE_VM_SMP; FABSCOPE_VM_MTU: netdev MTU, 9000)
#   --vms 1|2              one VM, or two (vm1 runs the commands; results come from vm1)
# Exit code: the guest commands' exit code; 1 if the VM did not boot or never printed its result
# line (the console tail is printed); 2 usage; 77 the rig cannot run here (build-image.sh said so).
# Environment in the guest: see README.md (FABSCOPE_RDMA_DEV, FABSCOPE_GID_INDEX, FABSCOPE_RESULTS,
# FABSCOPE_MPIRUN_2VM, FABSCOPE_SSH, ...).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROG=$(basename "$0")
now() { date +%s.%N; }
elapsed() { awk "BEGIN{printf \"%.1f\", $(now) - $1}"; }
T0=$(now)

usage() {
  sed -n '5,23p' "$HERE/run-vm.sh" >&2
  exit 2
}

timeout_s=600
files=()
bins=()
script=
outdir=
logfile=
workdir=
quiet=0
keep=0
vms=1
mem=${FABSCOPE_VM_MEM:-2048}
smp=${FABSCOPE_VM_SMP:-}
cmds=
while (($#)); do
  case $1 in
    --timeout) timeout_s=${2:?}; shift 2 ;;
    --file) files+=("${2:?}"); shift 2 ;;
    --bin) bins+=("${2:?}"); shift 2 ;;
    --script) script=${2:?}; shift 2 ;;
    --outdir) outdir=${2:?}; shift 2 ;;
    --log) logfile=${2:?}; shift 2 ;;
    --workdir) workdir=${2:?}; shift 2 ;;
    --quiet | -q) quiet=1; shift ;;
    --keep) keep=1; shift ;;
    --mem) mem=${2:?}; shift 2 ;;
    --smp) smp=${2:?}; shift 2 ;;
    --vms) vms=${2:?}; shift 2 ;;
    --) shift; cmds="$*"; break ;;
    -h | --help) usage ;;
    *) echo "$PROG: unknown argument '$1'" >&2; usage ;;
  esac
done
[[ $vms == 1 || $vms == 2 ]] || { echo "$PROG: --vms must be 1 or 2" >&2; exit 2; }
# Two VMs get one vCPU each: with two host cores, four vCPU threads made ib_write_bw ~3x slower.
[[ -n $smp ]] || smp=$((vms == 1 ? 2 : 1))
[[ $timeout_s =~ ^[0-9]+$ ]] || { echo "$PROG: --timeout takes whole seconds" >&2; exit 2; }
if [[ -n $script ]]; then
  [[ -z $cmds ]] || { echo "$PROG: give commands after -- or --script, not both" >&2; exit 2; }
  cmds=$(cat "$script")
fi
[[ -n $cmds ]] || { echo "$PROG: no guest commands (use -- 'commands' or --script FILE)" >&2; exit 2; }

# ---- image ----
set +e
image=$("$HERE/build-image.sh" --quiet | tail -n1)
rc=$?
set -e
if ((rc != 0)); then
  echo "$PROG: build-image.sh failed (exit $rc)" >&2
  exit $((rc == 77 ? 77 : 1))
fi

# ---- work dir, cleanup ----
if [[ -z $workdir ]]; then
  workdir=$(mktemp -d "${TMPDIR:-/tmp}/fabscope-vm.XXXXXX")
  own_workdir=1
else
  mkdir -p "$workdir"
  own_workdir=0
fi
workdir=$(cd "$workdir" && pwd)
[[ -n $logfile ]] || logfile="$workdir/console.log"
[[ -n $outdir ]] || outdir="$workdir/results"
mkdir -p "$(dirname "$logfile")" "$outdir"
logfile=$(cd "$(dirname "$logfile")" && pwd)/$(basename "$logfile")

pids=()
declare -A vm_pid=()
cleanup() {
  local p
  for p in "$workdir"/qemu-*.pid; do
    if [[ -f $p ]]; then kill -9 "$(cat "$p")" 2>/dev/null || true; fi
  done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  # An interrupted run keeps its logs but not the 100 MB of kernel and initrd.
  rm -f "$workdir/initrd" "$workdir/kernel" "$workdir/extra.cpio"
  return 0
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

# ---- second cpio: commands, --file, --bin ----
# Paths go to their canonical directory in the image (merged /usr): a cpio entry "lib/..." would
# replace the /lib -> usr/lib symlink of the base image with a directory.
guest_canon() {
  local p=$1
  case $p in /bin/* | /sbin/* | /lib/* | /lib64/*) p=/usr$p ;; esac
  echo "$p"
}
abspath() { [[ $1 == /* ]] && echo "$1" || echo "$PWD/$1"; }
X="$workdir/extra"
rm -rf "$X"
mkdir -p "$X/fabscope"
printf '%s\n' "$cmds" >"$X/fabscope/cmd.sh"
stage() { # host path, guest path
  local dst
  dst="$X$(guest_canon "$2")"
  mkdir -p "$(dirname "$dst")"
  if [[ -d $1 ]]; then
    mkdir -p "$dst"
    cp -rL --preserve=mode "$1/." "$dst/"
  else
    cp -L --preserve=mode "$1" "$dst"
  fi
}
stage_lib() { # a soname symlink stays a symlink, as in the base image (ldconfig expects that)
  local target
  if [[ -L $1 ]]; then
    target=$(readlink -f "$1")
    stage "$target" "$target"
    mkdir -p "$X$(dirname "$(guest_canon "$1")")"
    ln -sfn "$(guest_canon "$target")" "$X$(guest_canon "$1")"
  else
    stage "$1" "$1"
  fi
}
for spec in "${files[@]}"; do
  host=${spec%%:*}
  guest=${spec#*:}
  [[ $spec == *:* ]] || guest=$(abspath "$host")
  [[ -e $host ]] || { echo "$PROG: --file $host: no such file" >&2; exit 2; }
  [[ $guest == /* ]] || { echo "$PROG: --file $spec: guest path must be absolute" >&2; exit 2; }
  stage "$host" "$guest"
done
for b in "${bins[@]}"; do
  [[ -f $b ]] || { echo "$PROG: --bin $b: no such file" >&2; exit 2; }
  b=$(abspath "$b")
  stage "$b" "$b"
  if ldd "$b" >/dev/null 2>&1; then
    missing=$(ldd "$b" | awk '/not found/ { print $1 }')
    [[ -z $missing ]] || { echo "$PROG: --bin $b: libraries not found: $missing" >&2; exit 2; }
    while read -r lib; do stage_lib "$lib"; done < <(ldd "$b" |
      awk '$2 == "=>" && $3 ~ /^\// { print $3; next } $1 ~ /^\// { print $1 }')
    touch "$X/fabscope/run-ldconfig" # the guest refreshes ld.so.cache for the added libraries
  fi
done
# The kernel does not create parent directories: find lists each directory before its content.
(cd "$X" && find . -mindepth 1 | sed 's|^\./||' | /bin/busybox cpio -o -H newc 2>/dev/null) >"$workdir/extra.cpio"
(
  flock -s 9 # the image is not replaced while it is copied
  ln -f "$image/kernel" "$workdir/kernel" 2>/dev/null || cp "$image/kernel" "$workdir/kernel"
  # The kernel takes the next archive as uncompressed only if it starts 4-byte aligned
  # (init/initramfs.c); zeros in between are skipped.
  {
    cat "$image/base.cpio"
    head -c $(((4 - $(stat -c %s "$image/base.cpio") % 4) % 4)) /dev/zero
    cat "$workdir/extra.cpio"
  } >"$workdir/initrd"
) 9>"${FABSCOPE_VM_CACHE:-$HOME/.cache/fabscope-vm}/.lock"
rm -rf "$X"

# ---- boot ----
# Commands are killed in the guest 30 s before the host's limit so /results still comes back:
# deadline_at in host time (the guest clock starts from QEMU's RTC), so a slow boot on a loaded host
# is counted; deadline (guest uptime) is the fallback.
deadline=$((timeout_s > 60 ? timeout_s - 30 : 0))
free_udp_port() {
  local p hex
  while :; do
    p=$((20000 + RANDOM % 40000))
    hex=$(printf ':%04X ' "$p")
    grep -q "$hex" /proc/net/udp /proc/net/udp6 2>/dev/null || { echo "$p"; return; }
  done
}
start_vm() { # name role [netdev args...]
  local name=$1 role=$2 log share
  shift 2
  if [[ $name == vm1 ]]; then log=$logfile; else log=$logfile.$name; fi
  share="$workdir/share-$name"
  : >"$log"
  rm -rf "$share"
  mkdir -p "$share"
  rm -f "$workdir/qemu-$name.pid"
  local deadline_at=0
  ((deadline == 0)) || deadline_at=$(($(date +%s) + deadline))
  timeout -k 10 "$timeout_s" qemu-system-x86_64 -nodefaults -no-user-config -name "fabscope-$name" \
    -accel tcg,thread=multi -cpu max -m "$mem" -smp "$smp" -display none -no-reboot \
    -kernel "$workdir/kernel" -initrd "$workdir/initrd" \
    -append "console=ttyS0 panic=-1 loglevel=4 mitigations=off tsc=reliable clocksource=tsc fabscope.role=$role fabscope.deadline=$deadline fabscope.deadline_at=$deadline_at fabscope.mtu=${FABSCOPE_VM_MTU:-9000}" \
    -chardev "file,id=con,path=$log,append=on" -serial chardev:con \
    -fsdev "local,id=share,path=$share,security_model=none" -device virtio-9p-pci,fsdev=share,mount_tag=fabscope.results \
    -pidfile "$workdir/qemu-$name.pid" "$@" </dev/null >>"$log" 2>&1 &
  pids+=($!)
  vm_pid[$name]=$!
  if [[ $quiet == 0 ]]; then
    if [[ $vms == 1 ]]; then
      tail -n +1 -f --pid=$! "$log" &
    else
      tail -n +1 -f --pid=$! "$log" | sed -u "s/^/[$name] /" &
    fi
    pids+=($!)
  fi
}
if [[ $vms == 1 ]]; then
  start_vm vm1 single
else
  p1=$(free_udp_port)
  p2=$(free_udp_port)
  while [[ $p2 == "$p1" ]]; do p2=$(free_udp_port); done
  # A UDP socket netdev on host loopback: each VM sends its frames to the other's port. (The TCP
  # socket netdev works too but costs ~23 ms per round trip.)
  start_vm vm2 vm2 -netdev "socket,id=n0,udp=127.0.0.1:$p1,localaddr=127.0.0.1:$p2" \
    -device virtio-net-pci,netdev=n0,mac=52:54:00:fa:b5:02
  start_vm vm1 vm1 -netdev "socket,id=n0,udp=127.0.0.1:$p2,localaddr=127.0.0.1:$p1" \
    -device virtio-net-pci,netdev=n0,mac=52:54:00:fa:b5:01
fi

set +e
wait "${vm_pid[vm1]}"
qrc=$?
set -e
if [[ $vms == 2 ]]; then
  # vm1 asked vm2 to power off over ssh; give it a moment, then stop it.
  for _ in $(seq 50); do kill -0 "${vm_pid[vm2]}" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "${vm_pid[vm2]}" 2>/dev/null; then
    kill "${vm_pid[vm2]}" 2>/dev/null || true
    wait "${vm_pid[vm2]}" 2>/dev/null || true
  fi
fi
sleep 0.2 # let tail print the last lines
cleanup
trap - EXIT INT TERM
wall=$(elapsed "$T0")

# ---- results: files from the shared folder, then the result line ----
collect_files() { # shared folder -> outdir; prints the number of files, fails on a missing or corrupt one
  local share=$1 n=0 bad=0 size sum rel got f
  if [[ ! -f $share/MANIFEST ]] || ! grep -q '^FABSCOPE-VM-FILES-DONE ' "$share/MANIFEST"; then
    echo "$PROG: the guest did not finish sending its result files (no complete $share/MANIFEST)" >&2
    echo 0
    return 1
  fi
  while read -r size sum rel; do
    [[ $size == FABSCOPE-VM-FILES-DONE ]] && continue
    if [[ -z $rel || $rel == /* || $rel == ../* || $rel == */../* || $rel == .. ]]; then
      echo "$PROG: refusing result file name '$rel'" >&2
      bad=1
      continue
    fi
    f=$share/files/$rel
    got=$( [[ -f $f ]] && md5sum "$f" | cut -d' ' -f1)
    if [[ $got != "$sum" || $(stat -c %s "$f" 2>/dev/null) != "$size" ]]; then
      echo "$PROG: result file $rel arrived corrupt ($size bytes, md5 $sum expected; got $(stat -c %s "$f" 2>/dev/null || echo no) bytes, md5 ${got:-none})" >&2
      bad=1
      continue
    fi
    mkdir -p "$outdir/$(dirname "$rel")"
    mv -f "$f" "$outdir/$rel"
    n=$((n + 1))
  done <"$share/MANIFEST"
  echo "$n"
  return $bad
}

# The result: the manifest's DONE line (written through 9p, lossless), else the console's line.
result=$(grep -a -o '^FABSCOPE-VM-FILES-DONE count=[0-9]* rc=[0-9]*' "$workdir/share-vm1/MANIFEST" 2>/dev/null | tail -n1 || true)
[[ -n $result ]] || result=$(tr -d '\r' <"$logfile" | grep -a -o 'FABSCOPE-VM-RESULT rc=[0-9]*' | tail -n1 || true)
show_tail() {
  local l logs=("$logfile")
  [[ $vms == 1 ]] || logs+=("$logfile.vm2")
  for l in "${logs[@]}"; do
    echo "---- last 60 lines of $l ----" >&2
    tail -n 60 "$l" | tr -d '\r' >&2
    echo "---- end of $l ----" >&2
  done
}
if [[ -z $result ]]; then
  why="exit $qrc"
  ((qrc == 124)) && why="killed after the ${timeout_s}s timeout"
  echo "$PROG: the VM never printed its result line (qemu: $why, ${wall}s); console log: $logfile" >&2
  show_tail
  exit 1
fi
rc=${result#*rc=}
set +e
nfiles=$(collect_files "$workdir/share-vm1")
drc=$?
set -e
if ((drc != 0)); then
  ((rc != 0)) || rc=1
else
  rm -rf "$workdir"/share-*
fi
((rc == 0 || quiet == 0)) || show_tail
rm -f "$workdir/initrd" "$workdir/kernel" "$workdir"/qemu-*.pid
keep_note="console log: $logfile"
if ((own_workdir && !keep && rc == 0)) && [[ $nfiles == 0 || $outdir != "$workdir"/* ]]; then
  rm -rf "$workdir"
  [[ $logfile == "$workdir"/* ]] && keep_note="workdir removed (--keep keeps it)"
fi
echo "$PROG: guest rc=$rc, $nfiles result file(s) in $outdir, ${wall}s wall; $keep_note" >&2
exit "$rc"
