#include "topology/local.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "test_util.hpp"
#include "topology/generator.hpp"

using namespace fabscope::topology;
using fabscope::topology::testing::expect_usage_error;
namespace fs = std::filesystem;

namespace {

// A throw-away directory that is removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/fabscope-topo-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  void write(const fs::path& rel, const std::string& text) const {
    fs::create_directories((path / rel).parent_path());
    std::ofstream(path / rel) << text << "\n";
  }
};

}  // namespace

TEST(Local, HwlocSeesThisMachineAndNoNicIsFine) {
  const LocalHost h = discover_local();
  EXPECT_FALSE(h.hostname.empty());
  EXPECT_GE(h.numa_nodes, 1);
  EXPECT_GE(h.cores, 1);
  EXPECT_GE(h.pus, h.cores);
  EXPECT_LE(h.pus, static_cast<int>(std::thread::hardware_concurrency()) * 4 + 4);
  if (!fs::exists("/sys/class/infiniband")) {
    EXPECT_TRUE(h.nics.empty());  // this CI host has no RDMA device: an empty list, no error
  }
  for (const LocalNic& n : h.nics) EXPECT_FALSE(n.device.empty());
}

TEST(Local, ReadsAFakeSysfsTree) {
  TempDir d;
  const fs::path pci = "devices/pci0000:3a/0000:3b:00.0";
  d.write(pci / "numa_node", "1");
  fs::create_directories(d.path / pci / "net" / "ibp59s0");
  fs::create_directories(d.path / "class/infiniband/mlx5_0");
  fs::create_symlink(d.path / pci, d.path / "class/infiniband/mlx5_0/device");
  d.write("class/infiniband/mlx5_0/node_guid", "0002:c903:0043:e6a0");
  d.write("class/infiniband/mlx5_0/ports/1/state", "4: ACTIVE");
  d.write("class/infiniband/mlx5_0/ports/1/rate", "400 Gb/sec (4X NDR)");
  d.write("class/infiniband/mlx5_0/ports/1/lid", "0x1f");
  d.write("class/infiniband/mlx5_0/ports/1/link_layer", "InfiniBand");
  d.write("class/infiniband/mlx5_0/ports/1/gids/0", "fe80:0000:0000:0000:0002:c903:0043:e6a1");
  // A RoCE device without a PCI parent (like rxe): netdev from the GID attributes.
  d.write("class/infiniband/rxe0/node_guid", "0000:0000:0000:0000");
  d.write("class/infiniband/rxe0/ports/1/state", "1: DOWN");
  d.write("class/infiniband/rxe0/ports/1/rate", "10 Gb/sec (1X QDR)");
  d.write("class/infiniband/rxe0/ports/1/lid", "0x0");
  d.write("class/infiniband/rxe0/ports/1/link_layer", "Ethernet");
  d.write("class/infiniband/rxe0/ports/1/gid_attrs/ndevs/0", "eth0");
  LocalOptions o;
  o.sysfs_root = d.path.string();
  o.use_hwloc = false;
  o.hostname = "gpu017";
  const LocalHost h = discover_local(o);
  ASSERT_EQ(h.nics.size(), 2u);
  const LocalNic& m = h.nics[0];
  EXPECT_EQ(m.device, "mlx5_0");
  EXPECT_EQ(m.port, 1);
  EXPECT_EQ(m.node_guid, 0x0002c9030043e6a0ULL);
  EXPECT_EQ(m.port_guid, 0x0002c9030043e6a1ULL);
  EXPECT_EQ(m.lid, 0x1f);
  EXPECT_EQ(m.state, PortState::kActive);
  EXPECT_EQ(m.rate_gbps, 400);
  EXPECT_EQ(m.width, 4);
  EXPECT_EQ(m.link_layer, LinkLayer::kInfiniBand);
  EXPECT_EQ(m.numa_node, 1);
  EXPECT_EQ(m.pci_address, "0000:3b:00.0");
  EXPECT_EQ(m.netdev, "ibp59s0");
  const LocalNic& r = h.nics[1];
  EXPECT_EQ(r.device, "rxe0");
  EXPECT_EQ(r.link_layer, LinkLayer::kEthernet);
  EXPECT_EQ(r.state, PortState::kDown);
  EXPECT_EQ(r.netdev, "eth0");
  EXPECT_EQ(r.port_guid, 0u);
  EXPECT_EQ(r.pci_address, "");
}

TEST(Local, EncodeDecodeRoundTrip) {
  LocalHost h;
  h.hostname = "gpu017";
  h.numa_nodes = 2;
  h.cores = 64;
  h.pus = 128;
  h.notes = "hwloc: odd = things; 100%";
  LocalNic n;
  n.device = "mlx5_0";
  n.node_guid = 0x0002c9030043e6a0ULL;
  n.port_guid = 0x0002c9030043e6a1ULL;
  n.lid = 31;
  n.link_layer = LinkLayer::kInfiniBand;
  n.rate_gbps = 400;
  n.width = 4;
  n.state = PortState::kActive;
  n.mtu_bytes = 4096;
  n.numa_node = 1;
  n.pci_address = "0000:3b:00.0";
  h.nics.push_back(n);
  n.device = "mlx5_1";
  n.netdev.clear();
  n.pci_address.clear();
  h.nics.push_back(n);
  EXPECT_EQ(decode_local(encode_local(h)), h);
  expect_usage_error([] { (void)decode_local("garbage\n"); }, {"line 1", "header"});
  expect_usage_error([] { (void)decode_local("fabscope-local 1\nnic x\n"); },
                     {"line 2", "bad nic line"});
}

TEST(Local, MergeJoinsByGuidOrByHostAndDevice) {
  Fabric f = generate_fat_tree(
      parse_fat_tree_spec("hosts=4,nics-per-leaf=2,leaves-per-pod=2,spines-per-pod=1", "x"));
  const Nic first = f.nics()[0];
  LocalHost a;
  a.hostname = "node00001";
  LocalNic n;
  n.device = "mlx5_0";
  n.port_guid = first.port_guid;  // joined by GUID
  n.numa_node = 3;
  n.netdev = "ib0";
  n.mtu_bytes = 4096;
  a.nics.push_back(n);
  LocalHost b;
  b.hostname = "node00002";
  n.port_guid = 0;  // joined by host + device
  n.netdev = "ib1";
  b.nics.push_back(n);
  n.device = "mlx5_9";  // not in the fabric
  b.nics.push_back(n);
  const std::vector<LocalHost> hosts = {a, b};
  const MergeReport r = merge_local(f, hosts);
  EXPECT_EQ(r.matched, 2);
  ASSERT_EQ(r.unmatched.size(), 1u);
  EXPECT_EQ(r.unmatched[0], "node00002:mlx5_9 port 1");
  EXPECT_EQ(f.nics()[0].numa_node, 3);
  EXPECT_EQ(f.nics()[0].netdev, "ib0");
  EXPECT_EQ(f.nics()[0].mtu_bytes, 4096);
  EXPECT_EQ(f.nics()[static_cast<std::size_t>(f.primary_nic(f.find_host("node00002")))].netdev,
            "ib1");
  const Fabric lf = fabric_from_local(hosts);
  EXPECT_EQ(lf.hosts().size(), 2u);
  EXPECT_EQ(lf.nics().size(), 3u);
  EXPECT_EQ(lf.host_hop_class(0, 1), HopClass::kUnknown);
}

TEST(Local, SysfsRate) {
  EXPECT_EQ(parse_sysfs_rate("100 Gb/sec (4X EDR)"), (std::pair<double, int>{100, 4}));
  EXPECT_EQ(parse_sysfs_rate("2.5 Gb/sec (1X SDR)"), (std::pair<double, int>{2.5, 1}));
  EXPECT_EQ(parse_sysfs_rate("junk"), (std::pair<double, int>{0, 0}));
}
