#include "topology/model.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <tuple>

#include "test_util.hpp"
#include "topology/generator.hpp"
#include "topology/tables.hpp"

using namespace fabscope::topology;
using fabscope::topology::testing::expect_usage_error;

namespace {

const char* kTwoTier = "hosts=16,nics-per-leaf=4,leaves-per-pod=4,spines-per-pod=2";
const char* kThreeTier =
    "hosts=128,nics-per-leaf=8,leaves-per-pod=4,spines-per-pod=2,cores-per-plane=2";
const char* kRails =
    "hosts=64,rails=4,nics-per-leaf=16,leaves-per-pod=8,spines-per-pod=4,cores-per-plane=2";

Fabric gen(const char* spec) { return generate_fat_tree(parse_fat_tree_spec(spec, "spec")); }

}  // namespace

TEST(NaturalOrder, DigitRunsCompareAsNumbers) {
  EXPECT_TRUE(natural_less("h2", "h10"));
  EXPECT_FALSE(natural_less("h10", "h2"));
  EXPECT_TRUE(natural_less("leaf9", "leaf10"));
  EXPECT_TRUE(natural_less("a", "b"));
  EXPECT_TRUE(natural_less("node1", "node01"));  // same value: shorter text first
  EXPECT_FALSE(natural_less("x5", "x5"));
  EXPECT_TRUE(natural_less("r1", "r1n2"));
}

TEST(Model, HopsMatchBreadthFirstSearchOnEveryPair) {
  for (const char* spec : {kTwoTier, kThreeTier, kRails}) {
    const Fabric f = gen(spec);
    const auto n = static_cast<Index>(f.nics().size());
    std::map<int, int> seen;
    for (Index a = 0; a < n; ++a) {
      for (Index b = 0; b < n; ++b) {
        const int h = f.nic_hops(a, b);
        ASSERT_EQ(h, f.shortest_nic_hops(a, b)) << spec << " " << a << " " << b;
        ++seen[h];
      }
    }
    EXPECT_EQ(seen[0], n) << spec;
    EXPECT_GT(seen[2], 0) << spec;
    EXPECT_GT(seen[4], 0) << spec;
    EXPECT_EQ(seen.count(-1), 0u) << spec;
  }
}

TEST(Model, HopClassesFollowLeafAndPod) {
  const Fabric f = gen(kThreeTier);
  const Index a = f.find_host("node00001"), same_leaf = f.find_host("node00008"),
              same_pod = f.find_host("node00009"), other_pod = f.find_host("node00033");
  EXPECT_EQ(f.host_hops(a, a), 0);
  EXPECT_EQ(f.host_hop_class(a, a), HopClass::kSameHost);
  EXPECT_EQ(f.host_hops(a, same_leaf), 2);
  EXPECT_EQ(f.host_hop_class(a, same_leaf), HopClass::kSameLeaf);
  EXPECT_EQ(f.host_hops(a, same_pod), 4);
  EXPECT_EQ(f.host_hop_class(a, same_pod), HopClass::kSamePod);
  EXPECT_EQ(f.host_hops(a, other_pod), 6);
  EXPECT_EQ(f.host_hop_class(a, other_pod), HopClass::kCrossSpine);
  EXPECT_EQ(to_string(HopClass::kCrossSpine), "cross_spine");
}

TEST(Model, RailOptimizedHostsHaveOneLeafPerRail) {
  const Fabric f = gen(kRails);
  ASSERT_EQ(f.rails(), 4);
  const Host& h = f.hosts()[static_cast<std::size_t>(f.find_host("node00001"))];
  ASSERT_EQ(h.nic_count, 4);
  std::vector<Index> leaves;
  for (Index k = 0; k < 4; ++k) {
    const Nic& n = f.nics()[static_cast<std::size_t>(h.first_nic) + static_cast<std::size_t>(k)];
    EXPECT_EQ(n.rail, k);
    EXPECT_EQ(n.device, fmt::format("mlx5_{}", k));
    leaves.push_back(n.leaf);
  }
  std::sort(leaves.begin(), leaves.end());
  EXPECT_EQ(std::unique(leaves.begin(), leaves.end()), leaves.end());
  // Two NICs of one host: same_host class; rail 0 of two hosts of one unit: same leaf.
  EXPECT_EQ(f.nic_hop_class(h.first_nic, h.first_nic + 1), HopClass::kSameHost);
  const Index other = f.primary_nic(f.find_host("node00002"));
  EXPECT_EQ(f.nic_hops(h.first_nic, other), 2);
  EXPECT_EQ(f.nic_hops(h.first_nic, other + 1), 4);  // rail 0 -> rail 1: through a spine
}

TEST(Model, DerivesLevelsPodsRacksAndCanonicalOrder) {
  // The same small 3-tier fabric added in two different orders gives the same model.
  const auto build = [](bool reversed) {
    FabricBuilder b("t", "test");
    std::vector<std::string> sw = {"core", "spA", "spB", "lfA1", "lfA2", "lfB1"};
    if (reversed) std::reverse(sw.begin(), sw.end());
    for (const auto& s : sw) b.add_switch(Switch{s, 0, 0, 0, kNone, 8});
    const auto S = [&](const char* n) { return b.find_switch(n); };
    std::vector<std::pair<std::string, std::string>> hosts = {
        {"h1", "lfA1"}, {"h2", "lfA1"}, {"h3", "lfA2"}, {"h10", "lfB1"}};
    if (reversed) std::reverse(hosts.begin(), hosts.end());
    // Explicit ports: automatic ones follow the order a source lists its cables in.
    const std::map<std::string, int> port = {{"h1", 1}, {"h2", 2}, {"h3", 1}, {"h10", 1}};
    for (const auto& [h, leaf] : hosts) {
      Nic n;
      n.host = b.host(h);
      n.device = "mlx5_0";
      const Index ni = b.add_nic(n);
      b.connect({NodeKind::kNic, ni, 1},
                {NodeKind::kSwitch, S(leaf.c_str()), static_cast<std::int16_t>(port.at(h))});
    }
    std::vector<std::tuple<std::string, int, std::string, int>> links = {{"lfA1", 7, "spA", 1},
                                                                         {"lfA2", 7, "spA", 2},
                                                                         {"lfB1", 7, "spB", 1},
                                                                         {"spA", 8, "core", 1},
                                                                         {"spB", 8, "core", 2}};
    if (reversed) std::reverse(links.begin(), links.end());
    for (const auto& [x, px, y, py] : links) {
      b.connect({NodeKind::kSwitch, S(x.c_str()), static_cast<std::int16_t>(px)},
                {NodeKind::kSwitch, S(y.c_str()), static_cast<std::int16_t>(py)});
    }
    return std::move(b).build();
  };
  const Fabric a = build(false), b = build(true);
  EXPECT_EQ(a.switches()[static_cast<std::size_t>(a.find_switch("lfA1"))].level, 1);
  EXPECT_EQ(a.switches()[static_cast<std::size_t>(a.find_switch("spA"))].level, 2);
  EXPECT_EQ(a.switches()[static_cast<std::size_t>(a.find_switch("core"))].level, 3);
  EXPECT_EQ(a.pods().size(), 2u);
  EXPECT_EQ(a.hosts()[0].name, "h1");
  EXPECT_EQ(a.hosts()[3].name, "h10");  // natural order
  EXPECT_EQ(a.racks().size(), 3u);      // racks from leaves
  EXPECT_EQ(a.host_hops(a.find_host("h1"), a.find_host("h10")), 6);
  EXPECT_EQ(a.host_hops(a.find_host("h1"), a.find_host("h3")), 4);
  EXPECT_EQ(canonical_text(a, true), canonical_text(b, true));
  EXPECT_EQ(a.nics()[static_cast<std::size_t>(a.primary_nic(a.find_host("h2")))].leaf_port, 2);
  // Automatic ports: in the order the cables were added, after the highest explicit port.
  FabricBuilder c("auto", "test");
  c.add_switch(Switch{"leaf", 0, 0, 0, kNone, 0});
  for (const char* h : {"x", "y", "z"}) {
    Nic n;
    n.host = c.host(h);
    const Index ni = c.add_nic(n);
    c.connect({NodeKind::kNic, ni, 1},
              {NodeKind::kSwitch, 0, static_cast<std::int16_t>(std::string(h) == "y" ? 5 : 0)});
  }
  const Fabric af = std::move(c).build();
  EXPECT_EQ(af.nics()[0].leaf_port, 6);
  EXPECT_EQ(af.nics()[1].leaf_port, 5);
  EXPECT_EQ(af.nics()[2].leaf_port, 7);
  EXPECT_EQ(af.switches()[0].ports, 7);
}

TEST(Model, BuilderRejectsImpossibleCabling) {
  const auto base = [] {
    auto b = std::make_unique<FabricBuilder>("t", "test.src");
    b->add_switch(Switch{"leaf", 0, 0, 1, kNone, 8});
    b->add_switch(Switch{"spine", 0, 0, 2, kNone, 8});
    b->pod("p");
    b->switch_at(0).pod = 0;
    b->switch_at(1).pod = 0;
    Nic n;
    n.host = b->host("h1");
    n.device = "mlx5_0";
    b->add_nic(n);
    n.host = b->host("h2");
    b->add_nic(n);
    return b;
  };
  expect_usage_error(
      [&] {
        auto b = base();
        b->connect({NodeKind::kNic, 0, 1}, {NodeKind::kSwitch, 0, 1});
        b->connect({NodeKind::kNic, 0, 1}, {NodeKind::kSwitch, 0, 2});
        (void)std::move(*b).build();
      },
      {"test.src", "h1:mlx5_0", "cabled twice"});
  expect_usage_error(
      [&] {
        auto b = base();
        b->connect({NodeKind::kNic, 0, 1}, {NodeKind::kSwitch, 0, 3});
        b->connect({NodeKind::kNic, 1, 1}, {NodeKind::kSwitch, 0, 3});
        (void)std::move(*b).build();
      },
      {"switch 'leaf' port 3", "two cables"});
  expect_usage_error(
      [&] {
        auto b = base();
        b->connect({NodeKind::kNic, 0, 1}, {NodeKind::kNic, 1, 1});
        (void)std::move(*b).build();
      },
      {"cabled to each other"});
  expect_usage_error(
      [&] {
        auto b = base();
        b->connect({NodeKind::kNic, 0, 1}, {NodeKind::kSwitch, 1, 1});
        (void)std::move(*b).build();
      },
      {"'spine'", "not a leaf"});
  expect_usage_error(
      [&] {
        auto b = base();
        b->add_switch(Switch{"leaf", 0, 0, 1, 0, 8});
      },
      {"'leaf' defined twice"});
}

TEST(Model, HostOrderGroupsByPodAndLeaf) {
  const Fabric f = gen(kThreeTier);
  const auto order = f.host_order();
  ASSERT_EQ(order.size(), f.hosts().size());
  for (std::size_t i = 1; i < order.size(); ++i) {
    const auto key = [&](Index h) { return std::pair(f.host_pod(h), f.host_leaf(h)); };
    EXPECT_LE(key(order[i - 1]), key(order[i]));
  }
}

TEST(Model, RoutesFromForwardingTables) {
  // leafA - spine - leafB, two hosts; LIDs: h1 1, h2 2.
  FabricBuilder b("r", "test");
  b.add_switch(Switch{"leafA", 0xa, 10, 0, kNone, 4});
  b.add_switch(Switch{"leafB", 0xb, 11, 0, kNone, 4});
  b.add_switch(Switch{"spine", 0xc, 12, 0, kNone, 4});
  for (int i = 0; i < 2; ++i) {
    Nic n;
    n.host = b.host(i == 0 ? "h1" : "h2");
    n.lid = static_cast<std::uint16_t>(i + 1);
    const Index ni = b.add_nic(n);
    b.connect({NodeKind::kNic, ni, 1}, {NodeKind::kSwitch, i, 1});
    b.connect({NodeKind::kSwitch, i, 2}, {NodeKind::kSwitch, 2, static_cast<std::int16_t>(i + 1)});
  }
  Fabric f = std::move(b).build();
  EXPECT_FALSE(f.route(0, 1).has_value());
  const std::vector<SwitchLft> lfts = {
      {0xa, {kNoPort, 1, 2}}, {0xb, {kNoPort, 2, 1}}, {0xc, {kNoPort, 1, 2}}};
  f.set_routes(lfts);
  ASSERT_TRUE(f.has_routes());
  const auto r = f.route(f.primary_nic(0), f.primary_nic(1));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->links.size(), 4u);
  EXPECT_EQ(static_cast<int>(r->links.size()), f.host_hops(0, 1));
  EXPECT_EQ(f.switches()[static_cast<std::size_t>(f.route_spine(0, 1))].name, "spine");
  // A table that sends the packet back where it came from loses it.
  f.set_routes(std::vector<SwitchLft>{
      {0xa, {kNoPort, 1, 2}}, {0xb, {kNoPort, 2, 1}}, {0xc, {kNoPort, 1, 1}}});
  EXPECT_FALSE(f.route(0, 1).has_value());
  expect_usage_error(
      [&] {
        f.set_routes(std::vector<SwitchLft>{{0xdead, {}}});
      },
      {"0x000000000000dead", "does not match"});
}

TEST(Model, SummaryAndTables) {
  const Fabric f = gen(kThreeTier);
  const std::string s = format_summary(f);
  EXPECT_NE(s.find("128 hosts"), std::string::npos) << s;
  EXPECT_NE(s.find("16 leaves, 8 spines, 4 cores in 4 pods"), std::string::npos) << s;
  const auto tables = topology_tables(f);
  ASSERT_EQ(tables.size(), 6u);
  EXPECT_EQ(tables[0].name, "hosts");
  for (const Column& c : tables[0].columns) {
    std::visit([&](const auto& v) { EXPECT_EQ(v.size(), f.hosts().size()) << c.name; }, c.values);
  }
  const auto& order = std::get<std::vector<std::int64_t>>(tables[0].columns[7].values);
  EXPECT_EQ(tables[0].columns[7].name, "topo_order");
  std::vector<std::int64_t> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 0; i < sorted.size(); ++i)
    EXPECT_EQ(sorted[i], static_cast<std::int64_t>(i));
  // A leaf without uplinks is a warning.
  FabricBuilder b("w", "test");
  b.add_switch(Switch{"l1", 0, 0, 0, kNone, 2});
  b.add_switch(Switch{"l2", 0, 0, 0, kNone, 2});
  for (int i = 0; i < 2; ++i) {
    Nic n;
    n.host = b.host(fmt::format("h{}", i));
    const Index ni = b.add_nic(n);
    b.connect({NodeKind::kNic, ni, 1}, {NodeKind::kSwitch, i, 1});
  }
  const Fabric w = std::move(b).build();
  EXPECT_NE(format_summary(w).find("2 leaves have no uplink"), std::string::npos)
      << format_summary(w);
  EXPECT_EQ(w.host_hop_class(0, 1), HopClass::kUnknown);
}

TEST(Generator, SpecParsingAndLimits) {
  const FatTreeSpec s = parse_fat_tree_spec(
      "hosts=100,rails=8,link-layer=ethernet,rail-optimized=0,nics-per-leaf=32", "--x");
  EXPECT_EQ(s.hosts, 100);
  EXPECT_EQ(s.nics_per_host, 8);
  EXPECT_FALSE(s.rail_optimized);
  EXPECT_EQ(s.link_layer, LinkLayer::kEthernet);
  expect_usage_error([] { (void)parse_fat_tree_spec("hosts=abc", "--generate"); },
                     {"--generate", "hosts=abc"});
  expect_usage_error([] { (void)parse_fat_tree_spec("racks=3", "--generate"); },
                     {"unknown key 'racks'"});
  expect_usage_error(
      [] {
        (void)generate_fat_tree(
            parse_fat_tree_spec("hosts=64,nics-per-leaf=4,leaves-per-pod=4", "x"));
      },
      {"pods", "cores-per-plane"});
}
