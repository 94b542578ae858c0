#!/usr/bin/env bash
# fabscope doctor under mpirun on this host:
#   1. a fake sysfs tree (FABSCOPE_SYSFS_ROOT; real directories, files and symlinks laid out as the
#      kernel lays them out): mlx5_0 on x8 of its x16 PCIe lanes, mlx5_1 at 200 Gb/s, both NICs on
#      NUMA node 1 while every CPU of this host is on node 0 -> one line per problem, exit 1;
#   2. the same tree with healthy NICs on node 0 -> no problem, exit 0;
#   3. this host's real /sys (no RDMA devices here) -> exit 77 and one line saying so;
#   4. a bad --link-rate -> one line naming the flag, exit 2;
#   5. a results file written with the fake tree holds /hosts/ports and /hosts/config_problems.
# usage: doctor_test.sh MPIEXEC FABSCOPE
set -uo pipefail
mpiexec=$1 bin=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fails=0
check() { local what=$1; shift; if "$@"; then echo "ok:   $what"; else echo "FAIL: $what"; fails=$((fails + 1)); fi; }

# fake_tree ROOT DEV SLOT RATE WIDTH NUMA
fake_nic() {
  local root=$1 dev=$2 slot=$3 rate=$4 width=$5 numa=$6
  local pci=$root/devices/pci0000:00/0000:00:0$slot.0
  mkdir -p "$pci/infiniband/$dev/ports/1" "$root/class/infiniband" "$root/bus/pci/drivers/mlx5_core"
  echo 28.40.1000 >"$pci/infiniband/$dev/fw_ver"
  echo "$rate" >"$pci/infiniband/$dev/ports/1/rate"
  echo "4: ACTIVE" >"$pci/infiniband/$dev/ports/1/state"
  echo InfiniBand >"$pci/infiniband/$dev/ports/1/link_layer"
  echo "32.0 GT/s PCIe" >"$pci/current_link_speed"; echo "32.0 GT/s PCIe" >"$pci/max_link_speed"
  echo "$width" >"$pci/current_link_width"; echo 16 >"$pci/max_link_width"
  echo "$numa" >"$pci/numa_node"
  ln -s "$root/bus/pci/drivers/mlx5_core" "$pci/driver"
  ln -s "$pci" "$pci/infiniband/$dev/device"
  ln -s "$pci/infiniband/$dev" "$root/class/infiniband/$dev"
}
fake_nodes() {  # every CPU this host can have is on node 0
  mkdir -p "$1/devices/system/node/node0" "$1/devices/system/node/node1"
  echo 0-4095 >"$1/devices/system/node/node0/cpulist"; echo 4096-8191 >"$1/devices/system/node/node1/cpulist"
}
bad=$tmp/bad good=$tmp/good
fake_nodes "$bad"; fake_nic "$bad" mlx5_0 1 "400 Gb/sec (4X NDR)" 8 1; fake_nic "$bad" mlx5_1 2 "200 Gb/sec (4X HDR)" 16 1
fake_nodes "$good"; fake_nic "$good" mlx5_0 1 "400 Gb/sec (4X NDR)" 16 0; fake_nic "$good" mlx5_1 2 "400 Gb/sec (4X NDR)" 16 0
host=$(hostname)

FABSCOPE_SYSFS_ROOT=$bad "$mpiexec" -np 2 -x FABSCOPE_SYSFS_ROOT "$bin" doctor --link-rate 400G >"$tmp/bad.out" 2>"$tmp/bad.err"
rc=$?
cat "$tmp/bad.out"
numa="bound to CPUs on NUMA node 0, but its RDMA ports are not (mlx5_0 on node 1, mlx5_1 on node 1): bind ranks next to their NIC"
check "fake tree with faults: exit 1 (rc $rc)" test "$rc" = 1
check "PCIe x8 of x16 named" grep -qx "$host mlx5_0 port 1: PCIe x8 of x16" "$tmp/bad.out"
check "port at 200 of 400 Gb/s named" grep -qx "$host mlx5_1 port 1: port at 200 of 400 Gb/s (--link-rate)" "$tmp/bad.out"
check "NUMA binding named for both ranks" bash -c "grep -qx '$host rank 0: $numa' '$tmp/bad.out' && grep -qx '$host rank 1: $numa' '$tmp/bad.out'"
check "summary line" grep -q "^# doctor: [0-9]* problem(s) on 1 of 1 host(s); 2 RDMA port(s), 2 rank(s) checked" "$tmp/bad.out"

FABSCOPE_SYSFS_ROOT=$good "$mpiexec" -np 2 -x FABSCOPE_SYSFS_ROOT "$bin" doctor --link-rate 400G >"$tmp/good.out" 2>&1
rc=$?
problems=$(grep -v '^#' "$tmp/good.out" | grep -c "^$host " || true)
# as root (CAP_IPC_LOCK) nothing is left; elsewhere only the memlock lines may be
check "healthy fake tree: exit 0 as root, no problem but memlock otherwise (rc $rc)" \
  bash -c "[ $rc = 0 ] || { [ $rc = 1 ] && [ \$(grep -c 'memlock limit' '$tmp/good.out') = $problems ]; }"

if [ -z "$(ls -A /sys/class/infiniband 2>/dev/null)" ]; then
  "$mpiexec" -np 2 "$bin" doctor >"$tmp/none.out" 2>&1
  rc=$?
  check "no RDMA devices: exit 77, one line (rc $rc)" \
    bash -c "[ $rc = 77 ] && [ \$(grep -c 'no RDMA devices on any of the 1 host(s)' '$tmp/none.out') = 1 ]"
else
  check "this host has RDMA devices: the no-device case cannot be checked here" false
fi

"$mpiexec" -np 1 "$bin" doctor --link-rate fast >"$tmp/usage.out" 2>&1
rc=$?
check "bad --link-rate: exit 2, one line naming the flag (rc $rc)" \
  bash -c "[ $rc = 2 ] && [ \$(grep -c -- '--link-rate' '$tmp/usage.out') = 1 ]"

FABSCOPE_SYSFS_ROOT=$bad "$mpiexec" -np 2 -x FABSCOPE_SYSFS_ROOT "$bin" lat --sizes 8 --iters 10 --warmup 1 \
  --out "$tmp/lat.h5" --quiet >/dev/null 2>&1
check "results file: /hosts/ports (2 ranks x 2 ports) and /hosts/config_problems" /usr/bin/python3 - "$tmp/lat.h5" "$host" <<'PY'
import sys
import h5py
with h5py.File(sys.argv[1]) as f:
    p = f["hosts/ports"]
    dev = [x.decode() for x in p["device"][()]]
    probs = [x.decode() for x in f["hosts/config_problems"][()]]
    print("  ports:", list(p["rank"][()]), dev, list(p["pcie_width"][()]), list(p["rate_gbps"][()]), list(p["numa_node"][()]))
    print("  config_problems:", probs)
    ok = list(p["rank"][()]) == [0, 0, 1, 1] and dev == ["mlx5_0", "mlx5_1"] * 2
    ok &= list(p["pcie_width"][()]) == [8, 16, 8, 16] and list(p["rate_gbps"][()]) == [400, 200, 400, 200]
    ok &= [x.decode() for x in p["driver"][()]] == ["mlx5_core"] * 4 and list(f["hosts/cpu_numa_nodes"].asstr()[()]) == ["0", "0"]
    ok &= f"{sys.argv[2]} mlx5_0 port 1: PCIe x8 of x16" in probs
sys.exit(0 if ok else 1)
PY
echo "doctor_test: $fails failures"
[ "$fails" = 0 ]
