// Slurm's switch tree: hostlist expressions, topology.conf, `scontrol show topology` output and
// SLURM_TOPOLOGY_ADDR (topology/slurm.hpp).
#include "topology/slurm.hpp"

#include <gtest/gtest.h>

#include "test_util.hpp"

using namespace fabscope::topology;
using fabscope::topology::testing::expect_usage_error;

namespace {
using Names = std::vector<std::string>;
}

TEST(Hostlist, ExpandsRangesListsPaddingAndProducts) {
  EXPECT_EQ(expand_hostlist("n1", "t"), (Names{"n1"}));
  EXPECT_EQ(expand_hostlist("n[1-3]", "t"), (Names{"n1", "n2", "n3"}));
  EXPECT_EQ(expand_hostlist("n[001-003,130]", "t"), (Names{"n001", "n002", "n003", "n130"}));
  EXPECT_EQ(expand_hostlist("n[08-11]", "t"), (Names{"n08", "n09", "n10", "n11"}));
  EXPECT_EQ(expand_hostlist("gpu7,n[1-2],x", "t"), (Names{"gpu7", "n1", "n2", "x"}));
  EXPECT_EQ(expand_hostlist("r[1-2]n[1-2]-ib", "t"),
            (Names{"r1n1-ib", "r1n2-ib", "r2n1-ib", "r2n2-ib"}));
  EXPECT_EQ(expand_hostlist("n[7]", "t"), (Names{"n7"}));
  EXPECT_EQ(expand_hostlist("[1-2]", "t"), (Names{"1", "2"}));
  EXPECT_EQ(expand_hostlist("n[001-128,130]", "t").size(), 129u);
  EXPECT_EQ(expand_hostlist("n[001-128,130]", "t")[127], "n128");
}

TEST(Hostlist, RefusesBadExpressionsInOneLine) {
  expect_usage_error([] { (void)expand_hostlist("n[1-3", "f:4"); }, {"f:4", "'[' without ']'"});
  expect_usage_error([] { (void)expand_hostlist("n1-3]", "f:4"); }, {"f:4", "']' without '['"});
  expect_usage_error([] { (void)expand_hostlist("n[[1]]", "f:4"); }, {"nested"});
  expect_usage_error([] { (void)expand_hostlist("n[3-1]", "f:4"); }, {"backwards"});
  expect_usage_error([] { (void)expand_hostlist("n[a-b]", "f:4"); }, {"not a number"});
  expect_usage_error([] { (void)expand_hostlist("n[1-]", "f:4"); }, {"not a number"});
  expect_usage_error([] { (void)expand_hostlist("n[]", "f:4"); }, {"not a number"});
  expect_usage_error([] { (void)expand_hostlist("n1,,n2", "f:4"); }, {"empty name"});
  expect_usage_error([] { (void)expand_hostlist("n1,", "f:4"); }, {"empty name"});
  expect_usage_error([] { (void)expand_hostlist("", "f:4"); }, {"empty hostlist"});
  expect_usage_error([] { (void)expand_hostlist("n[1-65537]", "f:4"); }, {"more than"});
  expect_usage_error([] { (void)expand_hostlist("a[1-1000]b[1-1000]c[1-1000]", "f:4"); },
                     {"more than"});
  expect_usage_error([] { (void)expand_hostlist("n[1-1000000000000000000000]", "f:4"); },
                     {"not a number"});
}

TEST(SlurmTopology, TwoLeavesOneSpine) {
  const Fabric f = parse_slurm_topology(
      "# two racks\n"
      "SwitchName=leaf1 Nodes=n[1-2]\n"
      "switchname=leaf2 nodes=n[3-4] LinkSpeed=100   # keys in any case\n"
      "\n"
      "SwitchName=spine1 \\\n"
      "   Switches=leaf[1-2]\n",
      "topology.conf");
  ASSERT_EQ(f.hosts().size(), 4u);
  ASSERT_EQ(f.switches().size(), 3u);
  EXPECT_EQ(f.count_switches(1), 2);
  EXPECT_EQ(f.count_switches(2), 1);
  EXPECT_EQ(f.racks(), (Names{"leaf1", "leaf2"}));
  const auto H = [&](const char* n) { return f.find_host(n); };
  EXPECT_EQ(f.host_hop_class(H("n1"), H("n2")), HopClass::kSameLeaf);
  EXPECT_EQ(f.host_hops(H("n1"), H("n3")), 4);
  EXPECT_EQ(f.host_hop_class(H("n1"), H("n3")), HopClass::kSamePod);
  EXPECT_EQ(f.source(), "slurm:topology.conf");
}

TEST(SlurmTopology, ThreeTiersGivePodsAndCores) {
  const Fabric f = parse_slurm_topology(
      "SwitchName=l1 Nodes=a[1-2]\nSwitchName=l2 Nodes=a[3-4]\n"
      "SwitchName=l3 Nodes=b[1-2]\nSwitchName=l4 Nodes=b[3-4]\n"
      "SwitchName=sA Switches=l[1-2]\nSwitchName=sB Switches=l[3-4]\n"
      "SwitchName=core Switches=sA,sB\n",
      "t.conf");
  EXPECT_EQ(f.count_switches(1), 4);
  EXPECT_EQ(f.count_switches(2), 2);
  EXPECT_EQ(f.count_switches(3), 1);
  EXPECT_EQ(f.pods().size(), 2u);
  EXPECT_EQ(f.host_hop_class(f.find_host("a1"), f.find_host("a3")), HopClass::kSamePod);
  EXPECT_EQ(f.host_hops(f.find_host("a1"), f.find_host("b4")), 6);
  EXPECT_EQ(f.host_hop_class(f.find_host("a1"), f.find_host("b4")), HopClass::kCrossSpine);
}

TEST(SlurmTopology, ScontrolOutputAttachesNodesToLevelZeroOnly) {
  // What Slurm 22.05's `scontrol show topology` prints for the file above: parents list every
  // node below them.
  const std::string text =
      "SwitchName=leaf1 Level=0 LinkSpeed=1 Nodes=n[1-2]\n"
      "SwitchName=leaf2 Level=0 LinkSpeed=1 Nodes=n[3-4]\n"
      "SwitchName=spine1 Level=1 LinkSpeed=1 Nodes=n[1-4] Switches=leaf[1-2]\n";
  const Fabric f = parse_slurm_topology(text, "scontrol show topology");
  EXPECT_EQ(f.hosts().size(), 4u);
  EXPECT_EQ(f.nics().size(), 4u);
  EXPECT_EQ(f.count_switches(1), 2);
  EXPECT_EQ(f.count_switches(2), 1);
  const Fabric g = parse_slurm_topology(
      "SwitchName=leaf1 Nodes=n[1-2]\nSwitchName=leaf2 Nodes=n[3-4]\n"
      "SwitchName=spine1 Switches=leaf[1-2]\n",
      "x");
  EXPECT_EQ(canonical_text(f), canonical_text(g));
}

TEST(SlurmTopology, BadInputIsOneLineNamingFileAndLine) {
  const auto bad = [](const std::string& text, const std::vector<std::string>& parts) {
    expect_usage_error([&] { (void)parse_slurm_topology(text, "site.conf"); }, parts, text);
  };
  bad("SwitchName=l1 Nodes=n[1-2\n", {"site.conf:1", "'[' without ']'"});
  bad("SwitchName=l1 Nodes=n1\nSwitchName=s Switches=l1,l9\n", {"site.conf:2", "'l9'"});
  bad("SwitchName=l1 Nodes=n1\nSwitchName=l1 Nodes=n2\n", {"site.conf:2", "site.conf:1", "again"});
  bad("SwitchName=l1 Nodes=n1\n\n# c\nNodes=n2\n", {"site.conf:4", "no SwitchName"});
  bad("SwitchName=l1 Nodes=n1 Colour=red\n", {"site.conf:1", "unknown key 'Colour'"});
  bad("SwitchName=l1 Nodes=n1 Nodes=n2\n", {"site.conf:1", "twice"});
  bad("SwitchName=l1 Nodes=\n", {"site.conf:1", "no value"});
  bad("SwitchName=l1 n1\n", {"site.conf:1", "not KEY=VALUE"});
  bad("SwitchName=l1 \\\n Nodes=n[1-2] \\\n Bogus=1\n", {"site.conf:1", "Bogus"});
  bad("SwitchName=l1 Nodes=n1\nSwitchName=l2 Nodes=n[3-1]\n", {"site.conf:2", "backwards"});
  bad("SwitchName=a Switches=b\nSwitchName=b Switches=a\nSwitchName=l Nodes=n1\n",
      {"site.conf:", "cycles"});
  bad("SwitchName=a Switches=a\n", {"site.conf:1", "itself"});
  bad("SwitchName=l1 Nodes=n1,n1\n", {"site.conf:1", "twice"});
  bad("BlockName=b1 Nodes=n[1-4]\n", {"site.conf:1", "topology/block"});
  bad("# nothing\n\n", {"site.conf", "no SwitchName= lines"});
  bad("SwitchName=s1 Switches=s2\nSwitchName=s2\n", {"site.conf", "no switch lists any Nodes"});
  bad("SwitchName=l Nodes=n1 Level=x\n", {"site.conf:1", "Level=x"});
  // 176,000 nodes on one leaf (the fuzzer's product n[0-3]..a[001-0044007]) and a file of more
  // names than the bound are refused before the model is built.
  bad("SwitchName=l Nodes=n[0-3]a[001-0044007]\n", {"site.conf:1", "more than 65536"});
  bad("SwitchName=l Nodes=n[1-16385]\n", {"site.conf:1", "at most 16384 per switch"});
  bad("SwitchName=l1 Nodes=a[1-16000]\nSwitchName=l2 Nodes=b[1-16000]\nSwitchName=l3 "
      "Nodes=c[1-16000]\nSwitchName=l4 Nodes=d[1-16000]\nSwitchName=l5 Nodes=e[1-16000]\n",
      {"site.conf:5", "more than"});
  expect_usage_error([] { (void)load_slurm_topology("/nonexistent/topology.conf"); },
                     {"/nonexistent/topology.conf"});
}

TEST(SlurmTopology, TopologyAddrOfEveryTask) {
  const Names hosts = {"h1", "h2", "h3", "h4", "h3"};  // two ranks on h3
  const Names addrs = {"spine1.leaf1.h1", "spine1.leaf1.h2", "spine1.leaf2.h3", "spine1.leaf2.h4",
                       "spine1.leaf2.h3"};
  const Fabric f = fabric_from_topology_addrs(hosts, addrs);
  EXPECT_EQ(f.hosts().size(), 4u);
  EXPECT_EQ(f.count_switches(1), 2);
  EXPECT_EQ(f.count_switches(2), 1);
  EXPECT_EQ(f.host_hop_class(f.find_host("h1"), f.find_host("h2")), HopClass::kSameLeaf);
  EXPECT_EQ(f.host_hop_class(f.find_host("h1"), f.find_host("h4")), HopClass::kSamePod);
  expect_usage_error(
      [] {
        (void)fabric_from_topology_addrs(Names{"h1", "h2"}, Names{"s.l.h1", ""});
      },
      {"SLURM_TOPOLOGY_ADDR", "'h2'", "--slurm-topology=FILE"});
  expect_usage_error([] { (void)fabric_from_topology_addrs(Names{"h1"}, Names{"h1"}); },
                     {"no switch above"});
  expect_usage_error([] { (void)fabric_from_topology_addrs(Names{"h1"}, Names{"s.l.n9"}); },
                     {"another node name"});
}
