#!/usr/bin/env bash
# Two Soft-RoCE test VMs, vm1 (198.18.0.1) and vm2 (198.18.0.2), each with rxe0 on a virtio NIC
# (eth0), joined by a QEMU UDP socket netdev on host loopback. vm2 runs dropbear; vm1 runs the
# commands with $FABSCOPE_MPIRUN_2VM (an mpirun prefix spanning both VMs) and $FABSCOPE_SSH
# (`$FABSCOPE_SSH vm2 CMD` runs CMD on vm2). Files left in vm1's /results come back to --outdir;
# vm2 powers off when vm1 is done. Same options and exit codes as run-vm.sh.
#
# Usage: run-2vm.sh [--timeout S] [--file HOST[:GUEST]]... [--bin HOSTBINARY]... [--outdir DIR]
#                   [--log FILE] [--quiet] ... -- 'shell commands run on vm1'
set -euo pipefail
exec "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/run-vm.sh" --vms 2 "$@"
