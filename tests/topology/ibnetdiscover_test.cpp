// ibnetdiscover dumps, ibsim net files, ibnd cache files and ibroute dumps. The fixtures in data/
// were captured from ibsim running data/fat16.net after `opensm --once` (see data/README.md).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "test_util.hpp"
#include "topology/generator.hpp"
#include "topology/ib_common.hpp"
#include "topology/ibnd.hpp"
#include "topology/sources.hpp"

using namespace fabscope::topology;
using fabscope::topology::testing::data_path;
using fabscope::topology::testing::expect_usage_error;

namespace {
const char* kFat16 = "hosts=16,nics-per-leaf=4,leaves-per-pod=4,spines-per-pod=2";
}

TEST(Ibnetdiscover, ParsesTheDumpOfASimulatedFatTree) {
  const Fabric f = load_ibnetdiscover(data_path("fat16.ibnetdiscover"));
  ASSERT_EQ(f.hosts().size(), 16u);
  EXPECT_EQ(f.count_switches(1), 4);
  EXPECT_EQ(f.count_switches(2), 2);
  EXPECT_EQ(f.pods().size(), 1u);
  EXPECT_EQ(f.links().size(), 24u);
  const Nic& n = f.nics()[static_cast<std::size_t>(f.primary_nic(f.find_host("node00001")))];
  EXPECT_EQ(n.device, "mlx5_0");
  EXPECT_EQ(n.rate_gbps, 200);  // 4x HDR: extended speeds decoded
  EXPECT_EQ(n.width, 4);
  EXPECT_NE(n.lid, 0);  // LIDs assigned by opensm
  EXPECT_NE(n.port_guid, 0u);
  EXPECT_EQ(n.link_layer, LinkLayer::kInfiniBand);
  EXPECT_EQ(f.switches()[static_cast<std::size_t>(n.leaf)].name, "leaf0001");
  EXPECT_NE(f.switches()[static_cast<std::size_t>(n.leaf)].lid, 0);
}

TEST(Ibnetdiscover, DumpAndCacheGiveTheSameModel) {
  const Fabric dump = load_ibnetdiscover(data_path("fat16.ibnetdiscover"));
  const Fabric cache = load_ibnd_cache(data_path("fat16.ibnd-cache"));
  EXPECT_EQ(canonical_text(dump), canonical_text(cache));
}

TEST(Ibnetdiscover, MatchesTheGeneratedFabricItCameFrom) {
  const Fabric want = generate_fat_tree(parse_fat_tree_spec(kFat16, "spec"));
  for (const auto& path : {data_path("fat16.ibnetdiscover"), data_path("fat16.net")}) {
    const Fabric got = load_ibnetdiscover(path);
    ASSERT_EQ(got.hosts().size(), want.hosts().size()) << path;
    for (std::size_t a = 0; a < want.hosts().size(); ++a) {
      const Index ga = got.find_host(want.hosts()[a].name);
      ASSERT_NE(ga, kNone) << path;
      EXPECT_EQ(
          got.switches()[static_cast<std::size_t>(got.host_leaf(ga))].name,
          want.switches()[static_cast<std::size_t>(want.host_leaf(static_cast<Index>(a)))].name);
      for (std::size_t b = 0; b < want.hosts().size(); ++b) {
        EXPECT_EQ(got.host_hops(ga, got.find_host(want.hosts()[b].name)),
                  want.host_hops(static_cast<Index>(a), static_cast<Index>(b)));
      }
    }
  }
}

TEST(Ibnetdiscover, WrittenNetFileParsesBackToTheSameStructure) {
  const Fabric want = generate_fat_tree(parse_fat_tree_spec(
      "hosts=24,rails=2,nics-per-leaf=4,leaves-per-pod=4,spines-per-pod=2,cores-per-plane=1",
      "spec"));
  std::ostringstream net;
  write_ibsim_net(want, net);
  const Fabric got = parse_ibnetdiscover(net.str(), "generated.net");
  EXPECT_EQ(got.hosts().size(), 24u);
  EXPECT_EQ(got.nics().size(), 48u);
  EXPECT_EQ(got.rails(), 2);
  EXPECT_EQ(got.count_switches(3), want.count_switches(3));
  EXPECT_EQ(got.pods().size(), want.pods().size());
  for (std::size_t a = 0; a < want.nics().size(); a += 5) {
    for (std::size_t b = 0; b < want.nics().size(); ++b) {
      EXPECT_EQ(got.nic_hops(static_cast<Index>(a), static_cast<Index>(b)),
                want.nic_hops(static_cast<Index>(a), static_cast<Index>(b)));
    }
  }
}

TEST(Ibnetdiscover, RealDumpSyntaxMultiNicHostsAndRouters) {
  const char* dump = R"(#
# Topology file: generated on Mon Jan  1 00:00:00 2026
#
# Initiated from node 506b4b0300c1dd34 port 506b4b0300c1dd34

vendid=0x2c9
devid=0xcf08
sysimgguid=0xb8cef60300a1b2c3
switchguid=0xb8cef60300a1b2c3(b8cef60300a1b2c3)
Switch	41 "S-b8cef60300a1b2c3"		# "MF0;leaf-07:MQM9700/U1" enhanced port 0 lid 12 lmc 0
[1]	"H-506b4b0300c1dd34"[1](506b4b0300c1dd34) 		# "gpu017 mlx5_0" lid 3 4xNDR
[2]	"H-506b4b0300c1dd40"[1](506b4b0300c1dd40) 		# "gpu017 mlx5_1" lid 4 2xNDR
[3][ext 5]	"R-0002c90300000001"[1]		# "router" lid 9 4xEDR

vendid=0x2c9
devid=0x1021
sysimgguid=0x506b4b0300c1dd34
caguid=0x506b4b0300c1dd34
Ca	1 "H-506b4b0300c1dd34"		# "gpu017 mlx5_0"
[1](506b4b0300c1dd34) 	"S-b8cef60300a1b2c3"[1]		# lid 3 lmc 0 "MF0;leaf-07:MQM9700/U1" lid 12 4xNDR

vendid=0x2c9
devid=0x1021
sysimgguid=0x506b4b0300c1dd40
caguid=0x506b4b0300c1dd40
Ca	1 "H-506b4b0300c1dd40"		# "gpu017 mlx5_1"
[1](506b4b0300c1dd40) 	"S-b8cef60300a1b2c3"[2]		# lid 4 lmc 0 "MF0;leaf-07:MQM9700/U1" lid 12 2xNDR

rtguid=0x0002c90300000001
Rt	1 "R-0002c90300000001"		# "router"
[1](2c90300000001) 	"S-b8cef60300a1b2c3"[3]		# lid 9 lmc 0 "MF0;leaf-07:MQM9700/U1" lid 12 4xEDR
)";
  const Fabric f = parse_ibnetdiscover(dump, "real.txt");
  ASSERT_EQ(f.hosts().size(), 1u);
  EXPECT_EQ(f.hosts()[0].name, "gpu017");
  ASSERT_EQ(f.nics().size(), 2u);
  EXPECT_EQ(f.nics()[1].device, "mlx5_1");
  EXPECT_EQ(f.nics()[1].rail, 1);
  EXPECT_EQ(f.nics()[0].rate_gbps, 400);
  EXPECT_EQ(f.nics()[1].rate_gbps, 200);  // 2x NDR
  EXPECT_EQ(f.nics()[1].lid, 4);
  EXPECT_EQ(f.switches()[0].name, "MF0;leaf-07:MQM9700/U1");
  EXPECT_EQ(f.switches()[0].guid, 0xb8cef60300a1b2c3ULL);
  EXPECT_EQ(f.switches()[0].lid, 12);
  EXPECT_EQ(f.links().size(), 2u);  // the router link is left out
}

// A link's max_rate_gbps: what both ends could train to (PortInfo, the lower end's maximum), apart
// from the active rate; unknown (0) when one end does not say (ibnetdiscover dumps never do).
TEST(Ibnetdiscover, LinkMaximumRateIsTheLowerOfBothEndsMaxima) {
  using detail::IbNode;
  using detail::IbPort;
  const auto port = [](int num, const std::string& remote, int rport, int width, int max_width,
                       double max_lane) {
    IbPort p;
    p.num = num;
    p.width = width;
    p.lane_gbps = 50;  // HDR
    p.max_width = max_width;
    p.max_lane_gbps = max_lane;
    p.remote_id = remote;
    p.remote_port = rport;
    p.state = PortState::kActive;
    return p;
  };
  const auto node = [](bool is_switch, const std::string& id, std::uint64_t guid, int nports,
                       const std::string& desc, std::vector<IbPort> ports) {
    IbNode x;
    x.is_switch = is_switch;
    x.id = id;
    x.guid = guid;
    x.nports = nports;
    x.desc = desc;
    x.ports = std::move(ports);
    return x;
  };
  const IbNode sw = node(true, "S", 1, 3, "leaf01", {port(1, "A", 1, 1, 4, 50), port(2, "B", 1, 4, 4, 50), port(3, "C", 1, 4, 4, 50)});
  const IbNode a = node(false, "A", 2, 1, "hosta mlx5_0", {port(1, "S", 1, 1, 4, 50)});  // 1 lane of 4
  // The CA enables only 2X: the link's maximum is 100; the next CA does not say (0).
  const IbNode b = node(false, "B", 3, 1, "hostb mlx5_0", {port(1, "S", 2, 4, 2, 50)});
  const IbNode c = node(false, "C", 4, 1, "hostc mlx5_0", {port(1, "S", 3, 4, 0, 0)});
  const Fabric f = detail::build_ib_fabric({sw, a, b, c}, "t", "test", "test");
  std::map<std::string, std::pair<double, double>> by_host;
  for (const Link& l : f.links()) {
    const Index nic = l.a.kind == NodeKind::kNic ? l.a.index : l.b.index;
    const Nic& n = f.nics()[static_cast<std::size_t>(nic)];
    by_host[f.hosts()[static_cast<std::size_t>(n.host)].name] = {l.rate_gbps, l.max_rate_gbps};
  }
  EXPECT_EQ(by_host["hosta"], std::make_pair(50.0, 200.0));
  EXPECT_EQ(by_host["hostb"], std::make_pair(200.0, 100.0));
  EXPECT_EQ(by_host["hostc"], std::make_pair(200.0, 0.0));
  EXPECT_EQ(detail::ib_max_width_lanes(0x1 | 0x2 | 0x10), 4);  // 1X, 4X, 2X enabled
  EXPECT_EQ(detail::ib_max_width_lanes(0x1 | 0x8), 12);
  EXPECT_EQ(detail::ib_max_width_lanes(0), 0);
}

TEST(Ibnetdiscover, BrokenDumpsNameTheLine) {
  expect_usage_error([] { (void)parse_ibnetdiscover("Switch 4 \"a\"\n[1] \"b\"[1]\n", "d.txt"); },
                     {"d.txt:2:", "\"b\"", "no Switch/Ca record"});
  expect_usage_error(
      [] {
        (void)parse_ibnetdiscover("Switch 4 \"a\"\n[1] \"h\"[1]\nHca 1 \"h\"\n[1] \"a\"[2]\n",
                                  "d.txt");
      },
      {"d.txt:", "says it is cabled to"});
  expect_usage_error([] { (void)parse_ibnetdiscover("Switch 4 \"a\"\nhello world\n", "d.txt"); },
                     {"d.txt:2:", "cannot read 'hello world'"});
  expect_usage_error([] { (void)parse_ibnetdiscover("Switch 4 \"a\"\n[9] \"a\"[1]\n", "d.txt"); },
                     {"d.txt:2:", "beyond the 4 ports"});
  expect_usage_error([] { (void)parse_ibnetdiscover("include other.net\n", "d.txt"); },
                     {"d.txt:1:", "include"});
  expect_usage_error([] { (void)parse_ibnetdiscover("# nothing\n", "d.txt"); },
                     {"d.txt", "no Switch or Ca records"});
  expect_usage_error([] { (void)parse_ibnetdiscover("Switch x \"a\"\n", "d.txt"); },
                     {"d.txt:1:", "port count"});
  expect_usage_error([] { (void)load_ibnetdiscover("/nonexistent/dump"); },
                     {"/nonexistent/dump", "cannot open"});
  expect_usage_error([] { (void)load_ibnd_cache("/nonexistent/cache"); },
                     {"/nonexistent/cache", "ibnd_load_fabric"});
}

TEST(Ibnetdiscover, EveryCabledPortOfACaIsANic) {
  // node00001's CA has two ports, both cabled: two NICs of one host (guards against keeping only a
  // CA's first cabled port).
  const Fabric f = load_ibnetdiscover(data_path("dual-port-ca.ibnetdiscover"));
  ASSERT_EQ(f.hosts().size(), 2u);
  EXPECT_EQ(f.nics().size(), 3u);
  ASSERT_EQ(f.links().size(), 3u);
  for (const Link& l : f.links()) {  // every link joins a NIC and the leaf
    EXPECT_NE(l.a.kind == NodeKind::kNic, l.b.kind == NodeKind::kNic);
  }
  const Host& h = f.hosts()[static_cast<std::size_t>(f.find_host("node00001"))];
  ASSERT_EQ(h.nic_count, 2);
  const Nic& p1 = f.nics()[static_cast<std::size_t>(h.first_nic)];
  const Nic& p2 = f.nics()[static_cast<std::size_t>(h.first_nic) + 1];
  EXPECT_EQ(p1.port, 1);
  EXPECT_EQ(p2.port, 2);
  EXPECT_EQ(p1.lid, 2);
  EXPECT_EQ(p2.lid, 3);
  EXPECT_EQ(p1.leaf, f.find_switch("leaf0001"));
  EXPECT_EQ(p2.leaf, f.find_switch("leaf0001"));
}

TEST(Ibnetdiscover, PortCountsBelowOneAreRefused) {
  for (const char* count : {"-5", "0", "256"}) {
    expect_usage_error(
        [&] {
          (void)parse_ibnetdiscover(fmt::format("\n\nSwitch {} \"a\"\n[1] \"h\"[1]\n", count),
                                    "d.txt");
        },
        {"d.txt:3:", fmt::format("port count {}", count), "between 1 and 255"}, count);
  }
  expect_usage_error([] { (void)parse_ibnetdiscover("Ca 0 \"h\"\n", "d.txt"); },
                     {"d.txt:1:", "port count 0"});
}

TEST(Ibroute, RoutesFromTheOpensmTablesFollowTheHierarchy) {
  Fabric f = load_ibnetdiscover(data_path("fat16.ibnetdiscover"));
  const auto lfts =
      parse_ibroute_dump(read_text_file(data_path("fat16.ibroute"), "x"), "fat16.ibroute");
  ASSERT_EQ(lfts.size(), 6u);
  f.set_routes(lfts);
  ASSERT_TRUE(f.has_routes());
  std::set<Index> spines;
  for (std::size_t a = 0; a < f.hosts().size(); ++a) {
    for (std::size_t b = 0; b < f.hosts().size(); ++b) {
      if (a == b) continue;
      const Index na = f.primary_nic(static_cast<Index>(a)),
                  nb = f.primary_nic(static_cast<Index>(b));
      const auto r = f.route(na, nb);
      ASSERT_TRUE(r.has_value()) << a << " " << b;
      EXPECT_EQ(static_cast<int>(r->links.size()), f.nic_hops(na, nb));
      if (f.nics()[static_cast<std::size_t>(na)].leaf !=
          f.nics()[static_cast<std::size_t>(nb)].leaf)
        spines.insert(f.route_spine(na, nb));
    }
  }
  EXPECT_EQ(spines.size(), 2u);  // opensm spreads destinations over both spines
}

TEST(Ibroute, ParsesHeadersAndEntries) {
  const auto t = parse_ibroute_dump(
      "Unicast lids [0x0-0x3] of switch Lid 2 guid 0x0000000000200000 (spine1):\n"
      "  Lid  Out   Destination\n       Port     Info \n"
      "0x0001 001 : (Channel Adapter portguid 0x0000000000100001: 'h1 HCA-1')\n"
      "0x0003 002 : (Switch portguid 0x0000000000200002: 'leaf2')\n"
      "2 valid lids dumped \n",
      "r.txt");
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].guid, 0x200000u);
  ASSERT_EQ(t[0].ports.size(), 4u);
  EXPECT_EQ(t[0].ports[1], 1);
  EXPECT_EQ(t[0].ports[2], kNoPort);
  EXPECT_EQ(t[0].ports[3], 2);
  expect_usage_error(
      [] {
        (void)parse_ibroute_dump("Unicast lids [0x0-0x3] of switch Lid 2 guid zz (s):\n", "r.txt");
      },
      {"r.txt:1:", "GUID"});
}

TEST(Ibroute, DumpsWithoutRoutesOrWithUnknownPortsAreUsageErrors) {
  for (const char* garbage : {"", "hello\nworld\n",
                              "Unicast lids [0x0-0x3] of switch Lid 2 guid 0x200000 (s):\n"
                              "  Lid  Out   Destination\n0 valid lids dumped\n"}) {
    expect_usage_error([&] { (void)parse_ibroute_dump(garbage, "r.txt"); },
                       {"r.txt", "no forwarding table entries", "ibroute"}, garbage);
  }
  expect_usage_error(
      [] {
        (void)parse_ibroute_dump(
            "Unicast lids [0x0-0x3] of switch Lid 2 guid 0x200000 (s):\n0x0001 300 : x\n", "r.txt");
      },
      {"r.txt:2:", "output port", "0 to 254"});
  // A table that routes through port 99 of a 40-port switch names the line of that entry.
  Fabric f = parse_ibnetdiscover(
      "switchguid=0x200000(200000)\n"
      "Switch 40 \"S-0000000000200000\" # \"leaf1\" enhanced port 0 lid 1 lmc 0\n"
      "[1] \"H-0000000000100000\"[1](100001) # \"h1 mlx5_0\" lid 2 4xHDR\n"
      "caguid=0x100000\n"
      "Ca 1 \"H-0000000000100000\" # \"h1 mlx5_0\"\n"
      "[1](100001) \"S-0000000000200000\"[1] # lid 2 lmc 0 \"leaf1\" lid 1 4xHDR\n",
      "d.txt");
  const auto lfts = parse_ibroute_dump(
      "Unicast lids [0x0-0x3] of switch Lid 1 guid 0x0000000000200000 (leaf1):\n"
      "  Lid  Out   Destination\n"
      "       Port     Info \n"
      "0x0002 001 : (Channel Adapter portguid 0x0000000000100001: 'h1 mlx5_0')\n"
      "0x0003 099 : (Channel Adapter portguid 0x0000000000100003: 'h2 mlx5_0')\n",
      "r.txt");
  expect_usage_error([&] { f.set_routes(lfts); },
                     {"r.txt:5:", "port 99", "40 ports", "leaf1", "same fabric"});
}

TEST(Ibnd, LiveDiscoveryWithoutInfinibandIsUnsupported) {
  if (std::filesystem::exists("/sys/class/infiniband_mad")) {
    GTEST_SKIP()
        << "this host has InfiniBand MAD devices; live discovery is covered by the ibsim tests";
  }
  try {
    (void)discover_fabric_live({});
    FAIL() << "discovered a fabric without any CA";
  } catch (const fabscope::core::Unsupported& e) {
    EXPECT_EQ(e.code(), fabscope::core::ExitCode::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("--ibnetdiscover"), std::string::npos) << e.what();
  }
}
