#!/usr/bin/env bash
# Builds, once and cached, what the Soft-RoCE VM rig boots: Debian's kernel (unpacked from its .deb,
# never installed) and a base initramfs with busybox, the rxe/rdma_cm/virtio modules, rdma-core,
# perftest, OpenMPI and dropbear. Recipe and measurements: /work/shared/notes/softroce-vm.md.
#
# Usage: build-image.sh [--force] [--quiet]
# Prints the image directory (kernel, base.cpio, kver) as the last line of stdout; logs go to
# stderr. A second run with nothing changed only checks the stamp (well under 2 s).
# Exit codes: 0 ok, 1 failure, 77 cannot be built here (missing packages and no apt, no kernel .deb).
set -euo pipefail

# The kernel is pinned for reproducible runs. bookworm-security keeps only the newest ABI, so once
# Debian publishes a newer one this name stops resolving: a cached .deb keeps working; otherwise
# set FABSCOPE_VM_KERNEL_PKG (or update this line) to a name `apt-cache policy` shows.
KERNEL_PKG_PINNED=linux-image-6.1.0-56-amd64
KERNEL_PKG=${FABSCOPE_VM_KERNEL_PKG:-$KERNEL_PKG_PINNED}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${FABSCOPE_VM_CACHE:-$HOME/.cache/fabscope-vm}

# Host packages: the VM itself (qemu, busybox), what goes into the guest, and host tools used here.
HOST_PKGS=(qemu-system-x86 busybox-static openmpi-bin libopenmpi-dev openmpi-common libopenmpi3
  libpmix2 ibverbs-utils rdma-core perftest ibverbs-providers libibverbs1 librdmacm1 dropbear-bin
  iproute2 kmod libc-bin util-linux coreutils xz-utils binutils)
# Packages whose every file (docs aside) goes into the guest: OpenMPI dlopens its plugins and reads
# its help/data files, which ldd cannot see.
GUEST_PKGS_ALL=(libopenmpi3 openmpi-common libpmix2)
# Single files for the guest; ldd adds every library they need.
GUEST_FILES=(
  /usr/bin/orterun /usr/bin/orted /usr/bin/ompi_info
  /usr/bin/ibv_devinfo /usr/bin/ibv_devices /usr/bin/ibv_rc_pingpong
  /usr/bin/ib_write_lat /usr/bin/ib_write_bw /usr/bin/ib_send_lat /usr/bin/ib_send_bw
  /usr/bin/ib_read_lat /usr/bin/ib_read_bw /usr/bin/ib_atomic_lat /usr/bin/ib_atomic_bw
  /usr/bin/rdma /usr/bin/ip /usr/sbin/ldconfig
  /usr/sbin/dropbear /usr/bin/dbclient
  # dlopen'ed, invisible to ldd: the rxe provider and libgcc_s (glibc loads it for thread exit).
  /usr/lib/x86_64-linux-gnu/libibverbs/librxe-rdmav34.so /etc/libibverbs.d/rxe.driver
  /usr/lib/x86_64-linux-gnu/libgcc_s.so.1
  /etc/ld.so.conf /etc/ld.so.conf.d
)
# Kernel modules (dependencies resolved by modprobe). crc32_generic is a soft dependency of
# rdma_rxe that modules.dep does not list: without it `rdma link add` fails with
# "failed to init crc32 algorithm err:-2".
# 9p + 9pnet_virtio: the shared folder that carries /results to the host (guest-init.sh).
MODULES=(crc32_generic rdma_rxe configfs rdma_ucm ib_umad dummy virtio_pci virtio_net 9p 9pnet_virtio)

QUIET=0
FORCE=0
for arg in "$@"; do
  case $arg in
    --force) FORCE=1 ;;
    --quiet | -q) QUIET=1 ;;
    -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "build-image.sh: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done

log() { [[ $QUIET == 1 ]] || echo "build-image: $*" >&2; }
die() { echo "build-image: error: $1" >&2; exit "${2:-1}"; }
now() { date +%s.%N; }
T0=$(now)

mkdir -p "$CACHE"
# Concurrent runs (ctest -j) share the cache: one builder at a time.
exec 9>"$CACHE/.lock"
flock 9

# ---- 1. host packages (one dpkg-query; apt only when something is missing) ----
pkg_state() {
  dpkg-query -W -f='${Package} ${Version} ${db:Status-Abbrev}\n' "${HOST_PKGS[@]}" 2>/dev/null || true
}
PKG_STATE=$(pkg_state)
missing=()
for p in "${HOST_PKGS[@]}"; do
  grep -q "^$p [^ ]* ii" <<<"$PKG_STATE" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) != 0 ]]; then
    die "missing packages (${missing[*]}) and not root to install them" 77
  fi
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Wait for another apt/dpkg run rather than fail (a package mid-upgrade also looks missing).
  apt_wait=(-o DPkg::Lock::Timeout=600)
  apt-get "${apt_wait[@]}" update -qq >&2 || die "apt-get update failed" 77
  apt-get "${apt_wait[@]}" install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
    die "apt-get install ${missing[*]} failed" 77
  PKG_STATE=$(pkg_state)
fi

# ---- 2. stamp: scripts, kernel name, package versions, and the stat of every copied file ----
IMAGE="$CACHE/image"
key=$( {
  cat "$0" "$HERE/guest-init.sh"
  echo "$KERNEL_PKG"
  echo "$PKG_STATE"
  dpkg-query -W -f='${Package} ${Version}\n' "${GUEST_PKGS_ALL[@]}"
} | sha256sum | cut -c1-16)
if [[ $FORCE == 0 && -f $IMAGE/stamp && $(cat "$IMAGE/stamp") == "$key" ]] &&
  [[ -f $IMAGE/sources.stat ]] &&
  cmp -s "$IMAGE/sources.stat" <(xargs -d '\n' -a "$IMAGE/sources.list" stat -L -c '%n %s %Y' 2>&1); then
  log "up to date ($IMAGE, $(awk "BEGIN{printf \"%.2f\", $(now) - $T0}") s)"
  echo "$IMAGE"
  exit 0
fi

# ---- 3. kernel: download once, unpack, depmod ----
mkdir -p "$CACHE/debs"
cached_deb() {
  local debs=("$CACHE/debs/${KERNEL_PKG}"_*.deb)
  if [[ -f ${debs[-1]} ]]; then echo "${debs[-1]}"; fi
}
deb=$(cached_deb)
if [[ -z $deb ]]; then
  # (grep without -q: an early exit would fail the pipeline under pipefail)
  has_candidate() { apt-cache policy "$KERNEL_PKG" 2>/dev/null | grep 'Candidate: [0-9]' >/dev/null; }
  if ! has_candidate && [[ $(id -u) == 0 ]]; then
    apt-get update -qq >&2 || true
  fi
  if ! has_candidate; then
    newest=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' | cut -d' ' -f1 | sort -V | tail -n1)
    if [[ -n ${FABSCOPE_VM_KERNEL_PKG:-} || -z $newest ]]; then
      die "kernel package $KERNEL_PKG is not available from apt (newest 6.1: ${newest:-none})" \
        "$([[ -n $newest ]] && echo 1 || echo 77)"
    fi
    # Debian moved to a newer ABI: same 6.1 series, same modules. Say so loudly; pin it above.
    echo "build-image: WARNING: pinned $KERNEL_PKG is gone from apt; using $newest" \
      "(update KERNEL_PKG_PINNED in $0)" >&2
    KERNEL_PKG=$newest
  fi
  log "downloading $KERNEL_PKG"
  # apt-get download writes into the current directory; _apt cannot write to a root-owned cache,
  # which only produces a warning.
  (
    cd "$CACHE/debs"
    apt-get download -qq "$KERNEL_PKG" 2>&1 | grep -v 'unsandboxed' >&2
  ) || true
  deb=$(cached_deb)
  [[ -n $deb ]] || die "apt-get download $KERNEL_PKG failed" 77
fi
KROOT="$CACHE/kernel/$(basename "$deb" .deb)"
if [[ ! -f $KROOT/.done ]]; then
  log "unpacking $(basename "$deb")"
  rm -rf "$KROOT"
  mkdir -p "$KROOT"
  dpkg -x "$deb" "$KROOT"
  kver=$(ls "$KROOT/lib/modules")
  # The .deb ships no modules.dep: depmod writes it into the unpacked tree.
  depmod -b "$KROOT" "$kver"
  # Boot the uncompressed vmlinux through its PVH entry point (Debian sets CONFIG_PVH): this skips
  # SeaBIOS's real-mode setup and the bzImage's own xz decompression, several seconds under TCG.
  # Fall back to the bzImage if the kernel is not xz-compressed or has no PVH note (0x12).
  vmlinuz="$KROOT/boot/vmlinuz-$kver"
  off=$(LC_ALL=C grep -obUaP '\xFD7zXZ\x00' "$vmlinuz" | head -n1 | cut -d: -f1 || true)
  # (xz stops at the end of its stream: reading a file, not a pipe, avoids tail's SIGPIPE.)
  if [[ -n $off ]] && tail -c +$((off + 1)) "$vmlinuz" >"$KROOT/vmlinux.xz" &&
    xz -dc --single-stream "$KROOT/vmlinux.xz" >"$KROOT/kernel" 2>/dev/null &&
    readelf -n "$KROOT/kernel" 2>/dev/null | grep 'Unknown note type: (0x00000012)' >/dev/null; then
    echo vmlinux-pvh >"$KROOT/kernel.kind"
  else
    cp "$vmlinuz" "$KROOT/kernel"
    echo bzImage >"$KROOT/kernel.kind"
  fi
  rm -f "$KROOT/vmlinux.xz"
  touch "$KROOT/.done"
fi
kver=$(ls "$KROOT/lib/modules")
[[ -f $KROOT/boot/vmlinuz-$kver ]] || die "no vmlinuz in $deb"

# ---- 4. stage the base root file system ----
BUILD=$(mktemp -d "$CACHE/build.XXXXXX")
trap 'rm -rf "$BUILD"' EXIT
S="$BUILD/root"
mkdir -p "$S"/{usr/bin,usr/sbin,usr/lib64,usr/lib/x86_64-linux-gnu,etc,proc,sys,dev,run,root/.ssh,tmp,results,fabscope}
# Same merged-/usr layout as Debian 12, so library paths from ldd are valid unchanged.
ln -s usr/bin "$S/bin"
ln -s usr/sbin "$S/sbin"
ln -s usr/lib "$S/lib"
ln -s usr/lib64 "$S/lib64"
ln -s /run "$S/var" 2>/dev/null || true
mkdir -p "$S/run/lock"
chmod 1777 "$S/tmp"
chmod 700 "$S/root" "$S/root/.ssh"

# Paths on the host may go through /lib, /bin...; the image stores each one at its canonical
# directory (a cpio entry "lib/..." would replace the /lib symlink with a directory).
declare -A SEEN=()
LIST=()
declare -A DIRCANON=()
canon() { # sets CANON; the directory's realpath is cached (a fork per file made this slow)
  local d=${1%/*}
  [[ -n $d ]] || d=/
  [[ -n ${DIRCANON[$d]:-} ]] || DIRCANON[$d]=$(realpath "$d")
  d=${DIRCANON[$d]}
  CANON="${d%/}/${1##*/}"
}
add_path() {
  local p c t
  p=$1
  [[ -e $p || -L $p ]] || { log "warning: $p does not exist, skipped"; return 0; }
  canon "$p"
  c=$CANON
  [[ -z ${SEEN[$c]:-} ]] || return 0
  SEEN[$c]=1
  if [[ -L $c ]]; then
    t=$(readlink -f "$c")
    canon "$t"
    LIST+=("L $c $CANON")
    add_path "$t"
  elif [[ -d $c ]]; then
    local f
    for f in "$c"/*; do add_path "$f"; done
  else
    LIST+=("F $c")
  fi
}
for pkg in "${GUEST_PKGS_ALL[@]}"; do
  while IFS= read -r f; do
    case $f in /usr/share/doc/* | /usr/share/man/* | /usr/share/lintian/* | /usr/share/bug/*) continue ;; esac
    [[ -d $f && ! -L $f ]] && continue
    add_path "$f"
  done < <(dpkg -L "$pkg")
done
for f in "${GUEST_FILES[@]}"; do add_path "$f"; done

# Every library the ELF files need (ldd lists the transitive closure), in one batch.
elfs=()
for e in "${LIST[@]}"; do
  [[ $e == F* ]] || continue
  f=${e#F }
  LC_ALL=C IFS= read -r -n 4 magic <"$f" 2>/dev/null || true
  [[ $magic == $'\x7fELF' ]] && elfs+=("$f")
done
log "resolving libraries of ${#elfs[@]} ELF files"
while read -r lib; do add_path "$lib"; done < <(
  printf '%s\0' "${elfs[@]}" | xargs -0 ldd 2>/dev/null |
    awk '/not found/ { print "MISSING " $1 > "/dev/stderr"; next }
         $2 == "=>" && $3 ~ /^\// { print $3; next }
         $1 ~ /^\// && $1 !~ /:$/ { print $1 }' | sort -u
)

# Copy: regular files keep mode and time; symlinks point at the canonical absolute target
# (Debian's alternatives links such as /usr/bin/mpirun -> /etc/alternatives/... are flattened).
: >"$BUILD/sources.list"
for e in "${LIST[@]}"; do
  [[ $e == F* ]] && echo "${e#F }" >>"$BUILD/sources.list"
done
# Canonical paths contain no symlinked directory, so tar recreates them as plain directories.
sed 's|^/||' "$BUILD/sources.list" | tar -C / -cf - --no-recursion -T - | tar -C "$S" -xf -
for e in "${LIST[@]}"; do
  [[ $e == L* ]] || continue
  read -r _ path target <<<"$e"
  mkdir -p "$S${path%/*}"
  ln -sfn "$target" "$S$path"
done
ln -sfn /usr/bin/orterun "$S/usr/bin/mpirun"
ln -sfn /usr/bin/orterun "$S/usr/bin/mpiexec"

# busybox: the shell and every applet a real binary does not already provide.
cp /bin/busybox "$S/usr/bin/busybox"
echo /bin/busybox >>"$BUILD/sources.list"
while read -r applet; do
  name=$(basename "$applet")
  dir=usr/bin
  [[ $applet == sbin/* || $applet == usr/sbin/* ]] && dir=usr/sbin
  [[ -e $S/usr/bin/$name || -e $S/usr/sbin/$name ]] && continue
  ln -s /usr/bin/busybox "$S/$dir/$name"
done < <(/bin/busybox --list-full)

# Kernel modules in load order with their options, decompressed if the .deb compresses them.
mods_file="$S/etc/fabscope/modules"
mkdir -p "$S/etc/fabscope"
: >"$mods_file"
declare -A MSEEN=()
for m in "${MODULES[@]}"; do
  while read -r cmd path opts; do
    [[ $cmd == insmod && -z ${MSEEN[$path]:-} ]] || continue
    MSEEN[$path]=1
    rel=${path#"$KROOT"}
    dst="$S/usr${rel#/usr}"
    mkdir -p "$(dirname "$dst")"
    case $path in
      *.ko.xz) xz -dc "$path" >"${dst%.xz}"; rel=${rel%.xz} ;;
      *.ko.zst) zstd -qdc "$path" >"${dst%.zst}"; rel=${rel%.zst} ;;
      *) cp "$path" "$dst" ;;
    esac
    echo "/usr${rel#/usr} $opts" >>"$mods_file"
  done < <(modprobe -d "$KROOT" -S "$kver" --show-depends "$m")
done
grep -q rdma_rxe "$mods_file" && grep -q 9pnet_virtio "$mods_file" || die "module resolution failed: $(cat "$mods_file")"
echo "$kver" >"$S/etc/fabscope/kver"

# Users, names, ssh (dropbear) keys for the two-VM case.
cat >"$S/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
printf 'root:x:0:\nnogroup:x:65534:\n' >"$S/etc/group"
printf '/bin/sh\n/usr/bin/sh\n' >"$S/etc/shells"
printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files\n' >"$S/etc/nsswitch.conf"
cat >"$S/etc/hosts" <<'EOF'
127.0.0.1 localhost
198.18.0.1 vm1
198.18.0.2 vm2
EOF
mkdir -p "$S/etc/dropbear"
dropbearkey -t ed25519 -f "$S/etc/dropbear/dropbear_ed25519_host_key" >/dev/null 2>&1
dropbearkey -t ed25519 -f "$S/root/.ssh/id_fabscope" >/dev/null 2>&1
dropbearkey -y -f "$S/root/.ssh/id_fabscope" 2>/dev/null | grep '^ssh-' >"$S/root/.ssh/authorized_keys"
# Both VMs boot the same image, hence share the host key: known_hosts names it for each peer, so
# dbclient checks it and says nothing (one name per line; dropbear does not read "a,b" lists).
hostkey=$(dropbearkey -y -f "$S/etc/dropbear/dropbear_ed25519_host_key" 2>/dev/null | awk '/^ssh-/ { print $1, $2 }')
for h in vm1 vm2 198.18.0.1 198.18.0.2; do echo "$h $hostkey"; done >"$S/root/.ssh/known_hosts"
chmod 600 "$S/root/.ssh/"* "$S/etc/dropbear/"*
# OpenMPI's rsh launcher takes one word as agent; this wrapper carries dbclient's options.
cat >"$S/usr/bin/fabscope-ssh" <<'EOF'
#!/bin/sh
# ssh between the test VMs with the image's key pair; the host key is in /root/.ssh/known_hosts.
exec dbclient -i /root/.ssh/id_fabscope "$@"
EOF
chmod 755 "$S/usr/bin/fabscope-ssh"

cp "$HERE/guest-init.sh" "$S/init"
chmod 755 "$S/init"
ldconfig -r "$S" 2>/dev/null || true

# ---- 5. archive and kernel ----
# cpio newc (the host has no cpio binary; busybox has one), left uncompressed: inflating 15 MB of
# gzip in the emulated guest cost ~2 s of boot, loading 36 MB more through QEMU costs nothing.
(cd "$S" && find . -mindepth 1 | sed 's|^\./||' | LC_ALL=C sort | /bin/busybox cpio -o -H newc 2>/dev/null) \
  >"$BUILD/base.cpio"
kernel_kind=$(cat "$KROOT/kernel.kind")
ln -f "$KROOT/kernel" "$BUILD/kernel" 2>/dev/null || cp "$KROOT/kernel" "$BUILD/kernel"
echo "$kver" >"$BUILD/kver"
xargs -d '\n' -a "$BUILD/sources.list" stat -L -c '%n %s %Y' >"$BUILD/sources.stat" 2>&1
echo "$key" >"$BUILD/stamp"
{
  echo "kernel_pkg=$(basename "$deb")"
  echo "kver=$kver"
  echo "files=$(find "$S" -mindepth 1 | wc -l)"
  echo "staged_bytes=$(du -sb "$S" | cut -f1)"
  echo "kernel=$kernel_kind"
  echo "cpio_bytes=$(stat -c %s "$BUILD/base.cpio")"
} >"$BUILD/build-info"
rm -rf "$S"
# Replace the image in one rename; a VM that is booting already holds its files open.
rm -rf "$IMAGE.old"
[[ -d $IMAGE ]] && mv "$IMAGE" "$IMAGE.old"
mv "$BUILD" "$IMAGE"
trap - EXIT
rm -rf "$IMAGE.old"
log "built $IMAGE ($(tr '\n' ' ' <"$IMAGE/build-info")) in $(awk "BEGIN{printf \"%.1f\", $(now) - $T0}") s"
echo "$IMAGE"
