#include <fmt/format.h>
#include <gtest/gtest.h>

#include "test_util.hpp"
#include "topology/sources.hpp"

using namespace fabscope::topology;
using fabscope::topology::testing::config_path;
using fabscope::topology::testing::expect_usage_error;

TEST(TopologyYaml, Emu8MatchesTheEmulatedCluster) {
  const Fabric f = load_topology_yaml(config_path("emu8.yaml"));
  ASSERT_EQ(f.hosts().size(), 8u);
  EXPECT_EQ(f.racks(), (std::vector<std::string>{"r1", "r2"}));
  EXPECT_EQ(f.count_switches(1), 2);
  EXPECT_EQ(f.count_switches(2), 1);
  for (int i = 1; i <= 8; ++i) {
    const Index h = f.find_host(fmt::format("h{}", i));
    ASSERT_NE(h, kNone) << i;
    EXPECT_EQ(f.racks()[static_cast<std::size_t>(f.hosts()[static_cast<std::size_t>(h)].rack)],
              i <= 4 ? "r1" : "r2");
    EXPECT_EQ(f.switches()[static_cast<std::size_t>(f.host_leaf(h))].name,
              i <= 4 ? "leaf1" : "leaf2");
    EXPECT_EQ(f.nics()[static_cast<std::size_t>(f.primary_nic(h))].link_layer,
              LinkLayer::kEthernet);
  }
  EXPECT_EQ(f.host_hop_class(f.find_host("h1"), f.find_host("h4")), HopClass::kSameLeaf);
  EXPECT_EQ(f.host_hops(f.find_host("h1"), f.find_host("h5")), 4);
}

TEST(TopologyYaml, EveryShippedExampleLoads) {
  for (const char* name :
       {"emu8.yaml", "two-racks.yaml", "rail-optimized.yaml", "three-tier.yaml"}) {
    const Fabric f = load_topology_yaml(config_path(name));
    EXPECT_GT(f.hosts().size(), 0u) << name;
    for (std::size_t a = 0; a < f.nics().size(); ++a) {
      for (std::size_t b = 0; b < f.nics().size(); ++b) {
        ASSERT_EQ(f.nic_hops(static_cast<Index>(a), static_cast<Index>(b)),
                  f.shortest_nic_hops(static_cast<Index>(a), static_cast<Index>(b)))
            << name;
      }
    }
  }
}

TEST(TopologyYaml, DetailsOfTheFullExample) {
  const Fabric f = load_topology_yaml(config_path("two-racks.yaml"));
  const Index b01 = f.find_host("gpu-b01");
  ASSERT_EQ(f.hosts()[static_cast<std::size_t>(b01)].nic_count, 2);
  const Nic& second =
      f.nics()[static_cast<std::size_t>(f.hosts()[static_cast<std::size_t>(b01)].first_nic) + 1];
  EXPECT_EQ(second.device, "mlx5_1");
  EXPECT_EQ(second.rail, 1);
  EXPECT_EQ(f.rails(), 2);
  const Nic& a02 = f.nics()[static_cast<std::size_t>(f.primary_nic(f.find_host("gpu-a02")))];
  EXPECT_EQ(a02.leaf_port, 2);
  EXPECT_EQ(a02.netdev, "eth2");
  EXPECT_EQ(a02.rate_gbps, 400);
  EXPECT_EQ(f.nics()[static_cast<std::size_t>(f.primary_nic(f.find_host("gpu-a03")))].leaf_port, 3);
  EXPECT_EQ(f.uplinks(f.find_switch("leaf-a")), 4);  // links_per_spine: 2
  EXPECT_EQ(f.uplinks(f.find_switch("leaf-b")), 2);
}

TEST(TopologyYaml, RailOptimizedAndThreeTier) {
  const Fabric r = load_topology_yaml(config_path("rail-optimized.yaml"));
  EXPECT_EQ(r.rails(), 4);
  const Index g1 = r.find_host("g01"), g2 = r.find_host("g02"), g5 = r.find_host("g05");
  const Index n1 = r.primary_nic(g1), n2 = r.primary_nic(g2), n5 = r.primary_nic(g5);
  EXPECT_EQ(r.nic_hops(n1 + 3, n2 + 3), 2);  // rail 3 of one unit: same leaf
  EXPECT_EQ(r.nic_hops(n1, n2 + 1), 4);
  EXPECT_EQ(r.nic_hops(n1, n5), 4);
  const Fabric t = load_topology_yaml(config_path("three-tier.yaml"));
  EXPECT_EQ(t.host_hops(t.find_host("n01"), t.find_host("n08")), 6);
  EXPECT_EQ(t.host_hop_class(t.find_host("n01"), t.find_host("n08")), HopClass::kCrossSpine);
  EXPECT_EQ(t.host_hop_class(t.find_host("n01"), t.find_host("n03")), HopClass::kSamePod);
  EXPECT_EQ(t.nics()[0].link_layer, LinkLayer::kInfiniBand);
}

struct Broken {
  const char* text;
  std::vector<std::string> expect;  // every part must be in the message
};

TEST(TopologyYaml, BrokenFilesNameLineFieldAndFix) {
#define HEAD "version: 1\nspines: [s1]\nleaves: [l1, l2]\n"
  const std::vector<Broken> cases = {
      {"version: 1\nleaves: [l1]\nrack:\n  - {name: r1, leaf: l1, hosts: [h1]}\n",
       {"bad.yaml:3:", "rack", "unknown field", "racks"}},
      {"leaves: [l1]\nracks: []\n", {"bad.yaml:1:", "version", "missing"}},
      {"version: 2\nleaves: [l1]\nracks: []\n", {"bad.yaml:1:", "version", "only version 1"}},
      {HEAD "racks:\n  - name: r1\n    leaf: l3\n    hosts: [h1]\n",
       {"bad.yaml:6:", "racks[0].leaf", "unknown leaf 'l3'", "known: l1, l2"}},
      {HEAD
       "racks:\n  - {name: r1, leaf: l1, hosts: [h1]}\n  - {name: r2, leaf: l2, hosts: [h2, h1]}\n",
       {"bad.yaml:6:", "racks[1].hosts[1]", "'h1' is already in rack 'r1'"}},
      {"version: 1\nspines: [x]\nleaves: [x]\nracks: []\n",
       {"bad.yaml:3:", "leaves[0]", "'x' is used twice"}},
      {"version: 1\nleaves: [l1\nracks: []\n", {"bad.yaml:", "YAML syntax"}},
      {HEAD "racks:\n  - {name: r1, leaf: l1, hosts: [{name: h1, nics: [{leaf_port: x}]}]}\n",
       {"bad.yaml:5:", "racks[0].hosts[0].nics[0].leaf_port", "expected an integer"}},
      {HEAD "racks:\n  - {name: r1, leaf: l1, hosts: [{name: h1, nics: [{leaf_port: 3}]}, {name: "
            "h2, nics: [{leaf_port: 3}]}]}\n",
       {"bad.yaml:5:", "leaf_port", "port 3 of leaf 'l1' is already taken"}},
      {HEAD "racks:\n  - {name: r1, leaves: [l1, l2], nics_per_host: 4, hosts: [h1]}\n",
       {"bad.yaml:5:", "racks[0].leaves", "2 leaves for 4 NICs"}},
      {"version: 1\nleaves: [l1, l2]\nracks:\n  - {name: r1, leaf: l1, hosts: [h1]}\n",
       {"bad.yaml:", "no spines"}},
      {"version: 1\npods: [{name: a, spines: [s1]}, {name: b, spines: [s2]}]\nleaves: [{name: l1, "
       "pod: a}, {name: l2, pod: b}]\nracks: []\n",
       {"bad.yaml:2:", "cores", "several pods need cores"}},
      {"version: 1\npods: [{name: a, spines: [s1]}, {name: b, spines: [s2]}]\ncores: [c]\nleaves: "
       "[l1]\nracks: []\n",
       {"bad.yaml:4:", "leaves[0].pod", "missing"}},
      {"version: 1\nspines: [s1]\nleaves: [{name: l1, pod: zz}]\nracks: []\n",
       {"bad.yaml:3:", "leaves[0].pod", "unknown pod 'zz'"}},
      {"version: 1\nleaves: [l1]\nracks:\n  - {name: r1, hosts: [h1]}\n",
       {"bad.yaml:4:", "racks[0].hosts[0]", "no leaf for this NIC"}},
      {"version: 1\nlink_layer: token-ring\nleaves: [l1]\nracks: []\n",
       {"bad.yaml:2:", "link_layer", "ethernet"}},
      {"- a\n- b\n", {"bad.yaml:1:", "expected a map"}},
      // Empty lists and names.
      {HEAD "racks:\n  - {name: r1, leaf: l1, hosts: []}\n",
       {"bad.yaml:5:", "racks[0].hosts", "empty"}},
      {HEAD "racks:\n  - name: r1\n    leaf: l1\n    hosts: [h1, '']\n",
       {"bad.yaml:7:", "racks[0].hosts[1]", "empty name"}},
      {HEAD "racks:\n  - {name: r1, leaf: l1, hosts: [{name: ''}]}\n",
       {"bad.yaml:5:", "racks[0].hosts[0].name", "empty name"}},
      {"version: 1\nspines: [s1]\nleaves: [l1, \"\"]\nracks: []\n",
       {"bad.yaml:3:", "leaves[1]", "empty name"}},
      {"version: 1\nspines: [s1]\nleaves: [{name: ''}]\nracks: []\n",
       {"bad.yaml:3:", "leaves[0].name", "empty name"}},
      {"version: 1\ncores: ['']\nspines: [s1]\nleaves: [l1]\nracks: []\n",
       {"bad.yaml:2:", "cores[0]", "empty name"}},
      // Keys given twice: yaml-cpp keeps both and would answer with one of them.
      {"version: 1\nleaves: [l1]\nversion: 1\nracks: []\n",
       {"bad.yaml:3:", "duplicate key 'version'"}},
      {HEAD "racks:\n  - name: r1\n    leaf: l1\n    hosts: [h1]\n    leaf: l2\n",
       {"bad.yaml:8:", "duplicate key 'leaf'"}},
      {HEAD "racks:\n  - {name: r1, leaf: l1, hosts: [{name: h1, nics: [{rail: 0, rail: 1}]}]}\n",
       {"bad.yaml:5:", "duplicate key 'rail'"}},
  };
  for (const Broken& c : cases) {
    expect_usage_error([&] { (void)parse_topology_yaml(c.text, "bad.yaml"); }, c.expect, c.text);
  }
#undef HEAD
  expect_usage_error([] { (void)load_topology_yaml("/nonexistent/t.yaml"); },
                     {"/nonexistent/t.yaml", "cannot open"});
}
