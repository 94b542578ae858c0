// Configuration evidence (suites/host_config.hpp) read from fake sysfs trees written into a
// temporary directory (real files and symlinks laid out as the kernel lays them out), and the
// problems `fabscope doctor` prints for them.
#include "suites/host_config.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;
using fabscope::suites::check_hosts;
using fabscope::suites::HostConfig;
using fabscope::suites::Problem;

namespace {

struct Nic {
  std::string device = "mlx5_0";
  std::string rate = "400 Gb/sec (4X NDR)";
  std::string state = "4: ACTIVE";
  std::string fw = "28.40.1000";
  std::string pcie_speed = "32.0 GT/s PCIe", pcie_max_speed = "32.0 GT/s PCIe";
  std::string pcie_width = "16", pcie_max_width = "16";
  std::string numa = "0";
};

void put(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text << "\n";
}

// ROOT/class/infiniband/DEV -> ROOT/devices/pci0000:00/0000:00:01.0/infiniband/DEV, as sysfs does;
// the PCI function's driver link points at ROOT/bus/pci/drivers/mlx5_core.
class FakeSys {
 public:
  FakeSys() {
    root_ = fs::temp_directory_path() /
            ("fabscope-fakesys-" + std::to_string(getpid()) + "-" + std::to_string(++count_));
    fs::remove_all(root_);
    put(root_ / "devices/system/node/node0/cpulist", "0-1");
    put(root_ / "devices/system/node/node1/cpulist", "2-3");
  }
  ~FakeSys() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  FakeSys(const FakeSys&) = delete;
  FakeSys& operator=(const FakeSys&) = delete;

  void add(const Nic& n, int slot = 1) {
    const fs::path pci = root_ / "devices/pci0000:00" / ("0000:00:0" + std::to_string(slot) + ".0");
    const fs::path dev = pci / "infiniband" / n.device;
    put(dev / "fw_ver", n.fw);
    put(dev / "ports/1/rate", n.rate);
    put(dev / "ports/1/state", n.state);
    put(dev / "ports/1/link_layer", "InfiniBand");
    put(pci / "current_link_speed", n.pcie_speed);
    put(pci / "max_link_speed", n.pcie_max_speed);
    put(pci / "current_link_width", n.pcie_width);
    put(pci / "max_link_width", n.pcie_max_width);
    put(pci / "numa_node", n.numa);
    fs::create_directories(root_ / "bus/pci/drivers/mlx5_core");
    fs::create_directory_symlink(root_ / "bus/pci/drivers/mlx5_core", pci / "driver");
    fs::create_directory_symlink(pci, dev / "device");
    fs::create_directories(root_ / "class/infiniband");
    fs::create_directory_symlink(dev, root_ / "class/infiniband" / n.device);
  }

  // The host as a rank bound to `cpus` sees it (memlock unlimited unless said).
  [[nodiscard]] HostConfig host(const std::string& name, int rank, std::vector<int> cpus = {0, 1},
                                std::int64_t memlock = -1) const {
    HostConfig h = fabscope::suites::read_host_config(root_.string(), cpus);
    h.hostname = name;
    h.rank = rank;
    h.kernel_release = "6.1.0-56-amd64";
    h.memlock_bytes = memlock;
    for (auto& p : h.ports) p.active_mtu_bytes = p.max_mtu_bytes = 4096;
    return h;
  }

 private:
  fs::path root_;
  static inline int count_ = 0;
};

std::vector<std::string> lines(const std::vector<Problem>& ps) {
  std::vector<std::string> out;
  for (const auto& p : ps) out.push_back(p.line());
  return out;
}

std::vector<HostConfig> fabric(int n, const Nic& healthy = {}) {
  std::vector<HostConfig> out;
  for (int i = 0; i < n; ++i) {
    FakeSys sys;
    sys.add(healthy);
    std::string name = "h";  // not "h" + to_string(): GCC 12's -Wrestrict false positive
    name += std::to_string(i + 1);
    out.push_back(sys.host(name, i));
  }
  return out;
}

}  // namespace

TEST(HostConfig, ReadsPortPcieNumaAndDriverFromSysfs) {
  FakeSys sys;
  Nic n;
  n.rate = "200 Gb/sec (4X HDR)";
  n.pcie_speed = "16.0 GT/s PCIe";
  n.pcie_width = "8";
  n.numa = "1";
  sys.add(n);
  const HostConfig h = sys.host("h1", 0, {0, 1});
  ASSERT_EQ(h.ports.size(), 1U);
  const auto& p = h.ports[0];
  EXPECT_EQ(p.device, "mlx5_0");
  EXPECT_EQ(p.port, 1);
  EXPECT_EQ(p.state, "ACTIVE");
  EXPECT_EQ(p.link_layer, "InfiniBand");
  EXPECT_DOUBLE_EQ(p.rate_gbps, 200);
  EXPECT_EQ(p.width, "4X");
  EXPECT_EQ(p.speed, "HDR");
  EXPECT_EQ(p.fw_ver, "28.40.1000");
  EXPECT_EQ(p.driver, "mlx5_core");
  EXPECT_DOUBLE_EQ(p.pcie_speed_gts, 16);
  EXPECT_DOUBLE_EQ(p.pcie_max_speed_gts, 32);
  EXPECT_EQ(p.pcie_width, 8);
  EXPECT_EQ(p.pcie_max_width, 16);
  EXPECT_EQ(p.numa_node, 1);
  EXPECT_EQ(h.cpu_numa_nodes, std::vector<int>{0});
}

TEST(HostConfig, CpuListsAndNumaNodes) {
  EXPECT_EQ(fabscope::suites::parse_cpulist("0-2,5,7-8"), (std::vector<int>{0, 1, 2, 5, 7, 8}));
  EXPECT_EQ(fabscope::suites::parse_cpulist(""), std::vector<int>{});
  FakeSys sys;
  EXPECT_EQ(fabscope::suites::numa_nodes_of("/nonexistent", {0}), std::vector<int>{});
  const HostConfig both = sys.host("h", 0, {1, 2});
  EXPECT_EQ(both.cpu_numa_nodes, (std::vector<int>{0, 1}));
}

TEST(HostConfig, EncodeDecodeRoundTrip) {
  FakeSys sys;
  Nic n;
  n.pcie_width = "8";
  sys.add(n);
  Nic m;
  m.device = "mlx5_1";
  m.numa = "1";
  sys.add(m, 2);
  HostConfig h = sys.host("node-7", 3, {2, 3}, 65536);
  h.cap_ipc_lock = true;
  const HostConfig back = fabscope::suites::decode(fabscope::suites::encode(h));
  EXPECT_EQ(back.rank, 3);
  EXPECT_EQ(back.hostname, "node-7");
  EXPECT_EQ(back.kernel_release, h.kernel_release);
  EXPECT_EQ(back.cpu_numa_nodes, std::vector<int>{1});
  EXPECT_EQ(back.memlock_bytes, 65536);
  EXPECT_TRUE(back.cap_ipc_lock);
  ASSERT_EQ(back.ports.size(), 2U);
  EXPECT_EQ(back.ports[1].device, "mlx5_1");
  EXPECT_EQ(back.ports[0].pcie_width, 8);
  EXPECT_EQ(back.ports[0].pcie_max_width, 16);
  EXPECT_DOUBLE_EQ(back.ports[0].rate_gbps, 400);
  EXPECT_EQ(back.ports[0].width, "4X");
  EXPECT_EQ(back.ports[0].active_mtu_bytes, 4096);
  EXPECT_EQ(back.ports[1].numa_node, 1);
}

TEST(Doctor, HealthyFabricHasNoProblems) {
  EXPECT_EQ(lines(check_hosts(fabric(4), {})), std::vector<std::string>{});
  EXPECT_EQ(lines(check_hosts(fabric(4), {.link_rate_gbps = 400})), std::vector<std::string>{});
}

TEST(Doctor, PcieX8OfX16) {
  auto hosts = fabric(3);
  FakeSys sys;
  Nic n;
  n.pcie_width = "8";
  sys.add(n);
  hosts.push_back(sys.host("h7", 3));
  EXPECT_EQ(lines(check_hosts(hosts, {})),
            std::vector<std::string>{"h7 mlx5_0 port 1: PCIe x8 of x16"});
}

TEST(Doctor, PortTrainedDownAgainstMajorityAndLinkRate) {
  auto hosts = fabric(3);
  FakeSys sys;
  Nic n;
  n.rate = "200 Gb/sec (4X HDR)";
  sys.add(n);
  hosts.push_back(sys.host("h4", 3));
  EXPECT_EQ(lines(check_hosts(hosts, {})),
            (std::vector<std::string>{
                "h4 mlx5_0 port 1: port at 200 of 400 Gb/s (3 of 4 hosts run 400 Gb/s)"}));
  const auto with_rate = lines(check_hosts(hosts, {.link_rate_gbps = 400}));
  EXPECT_EQ(with_rate.front(), "h4 mlx5_0 port 1: port at 200 of 400 Gb/s (--link-rate)");
  EXPECT_EQ(with_rate.size(), 2U);
}

TEST(Doctor, MismatchedFirmware) {
  auto hosts = fabric(3);
  FakeSys sys;
  Nic n;
  n.fw = "28.39.1002";
  sys.add(n);
  hosts.insert(hosts.begin() + 1, sys.host("h9", 1));
  EXPECT_EQ(lines(check_hosts(hosts, {})),
            std::vector<std::string>{
                "h9 mlx5_0 port 1: firmware 28.39.1002, 3 of 4 hosts have 28.40.1000"});
  // Two hosts that disagree: no majority, one line naming both.
  std::vector<HostConfig> two = {hosts[0], hosts[1]};
  const auto l = lines(check_hosts(two, {}));
  ASSERT_EQ(l.size(), 1U);
  EXPECT_EQ(
      l[0],
      "h1,h9 mlx5_0 port 1: firmware differs between hosts with no majority: 28.39.1002 on h9; "
      "28.40.1000 on h1");
}

TEST(Doctor, NumaMismatchAndMemlock) {
  FakeSys sys;
  Nic n;
  n.numa = "1";
  sys.add(n);
  // rank 0 on node 0's CPUs, rank 1 on node 1's, rank 2 unbound (both nodes): only rank 0 is off
  const std::vector<HostConfig> hosts = {sys.host("h5", 0, {0, 1}), sys.host("h5", 1, {2, 3}),
                                         sys.host("h5", 2, {0, 1, 2, 3}, 8 << 20)};
  EXPECT_EQ(lines(check_hosts(hosts, {})),
            (std::vector<std::string>{
                "h5 rank 0: bound to CPUs on NUMA node 0, but its RDMA ports are not (mlx5_0 on "
                "node 1): bind ranks next to their NIC",
                "h5 rank 2: memlock limit 8 MiB (RDMA memory registration wants unlimited: ulimit "
                "-l unlimited, or memlock in /etc/security/limits.conf)"}));
  HostConfig root = sys.host("h5", 0, {2, 3}, 8 << 20);
  root.cap_ipc_lock = true;  // CAP_IPC_LOCK: the limit does not apply
  EXPECT_EQ(lines(check_hosts({root}, {})), std::vector<std::string>{});
}

TEST(Doctor, MtuStateAndMissingDevices) {
  auto hosts = fabric(3);
  hosts[2].ports[0].active_mtu_bytes = 1024;
  FakeSys down;
  Nic n;
  n.state = "1: DOWN";
  down.add(n);
  hosts.push_back(down.host("h4", 3));
  FakeSys empty;
  hosts.push_back(empty.host("h5", 4));
  EXPECT_EQ(
      lines(check_hosts(hosts, {})),
      (std::vector<std::string>{"h3 mlx5_0 port 1: active MTU 1024 bytes, 2 of 3 hosts have 4096",
                                "h4 mlx5_0 port 1: state DOWN (expected ACTIVE)",
                                "h5: no RDMA devices (sysfs class/infiniband is empty)"}));
}
