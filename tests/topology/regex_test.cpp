#include <gtest/gtest.h>

#include "test_util.hpp"
#include "topology/named_regex.hpp"
#include "topology/sources.hpp"

using namespace fabscope::topology;
using fabscope::topology::testing::expect_usage_error;

TEST(NamedRegex, TranslatesNamedGroupsToNumbers) {
  const NamedRegex re(
      R"((?:dc1-)?(?<pod>p[0-9]+)-(?<rack>r[0-9]+)[(]x[)]\((?<node>[0-9]+)\)(a|b)?)", "t");
  EXPECT_EQ(re.names(), (std::vector<std::string>{"pod", "rack", "node"}));
  std::vector<std::string> g;
  ASSERT_TRUE(re.match("dc1-p2-r17(x)(05)a", g));
  EXPECT_EQ(g, (std::vector<std::string>{"p2", "r17", "05"}));
  ASSERT_TRUE(re.match("p1-r1(x)(9)", g));
  EXPECT_EQ(g[2], "9");
  EXPECT_FALSE(re.match("p1-r1(x)(9)c", g));  // whole-string match
  EXPECT_EQ(re.index_of("node"), 2);
  EXPECT_EQ(re.index_of("leaf"), -1);
}

TEST(NamedRegex, RejectsBadPatterns) {
  expect_usage_error([] { NamedRegex("(?<rack>[0-9]+", "--pattern"); },
                     {"--pattern", "(?<rack>[0-9]+"});
  expect_usage_error([] { NamedRegex("(?<a>x)(?<a>y)", "--pattern"); }, {"'a' is used twice"});
  expect_usage_error([] { NamedRegex("(?<a-b>x)", "--pattern"); }, {"letters, digits"});
}

TEST(HostnamePattern, RacksPodsAndHops) {
  const std::vector<std::string> hosts = {"p1r02n10", "p1r02n9", "p1r01n1", "p2r07n1", "p1r01n2"};
  const Fabric f = fabric_from_hostnames(hosts, "(?<pod>p[0-9]+)(?<rack>r[0-9]+)n(?<node>[0-9]+)");
  ASSERT_EQ(f.hosts().size(), 5u);
  EXPECT_EQ(f.racks(), (std::vector<std::string>{"r01", "r02", "r07"}));
  EXPECT_EQ(f.pods().size(), 2u);
  const auto H = [&](const char* n) { return f.find_host(n); };
  EXPECT_EQ(f.host_hop_class(H("p1r01n1"), H("p1r01n2")), HopClass::kSameLeaf);
  EXPECT_EQ(f.host_hops(H("p1r01n1"), H("p1r02n9")), 4);
  EXPECT_EQ(f.host_hop_class(H("p1r01n1"), H("p2r07n1")), HopClass::kCrossSpine);
  EXPECT_EQ(f.host_hops(H("p1r01n1"), H("p2r07n1")), 6);
  // Topology order: pod, rack/leaf, then node number (n9 before n10).
  const auto order = f.host_order();
  std::vector<std::string> names;
  names.reserve(order.size());
  for (const Index h : order) names.push_back(f.hosts()[static_cast<std::size_t>(h)].name);
  EXPECT_EQ(names,
            (std::vector<std::string>{"p1r01n1", "p1r01n2", "p1r02n9", "p1r02n10", "p2r07n1"}));
}

TEST(HostnamePattern, WithoutPodIsOnePod) {
  const std::vector<std::string> hosts = {"gpu-a1", "gpu-a2", "gpu-b1"};
  const Fabric f = fabric_from_hostnames(hosts, "gpu-(?<rack>[a-z])(?<node>[0-9])");
  EXPECT_EQ(f.pods().size(), 1u);
  EXPECT_EQ(f.host_hops(f.find_host("gpu-a1"), f.find_host("gpu-b1")), 4);
}

TEST(HostnamePattern, ErrorsNameTheHostAndPattern) {
  const std::vector<std::string> hosts = {"r1n1", "login01"};
  expect_usage_error(
      [&] { (void)fabric_from_hostnames(hosts, "r(?<rack>[0-9]+)n(?<node>[0-9]+)"); },
      {"does not match host 'login01'", "r(?<rack>[0-9]+)n(?<node>[0-9]+)"});
  expect_usage_error([&] { (void)fabric_from_hostnames(hosts, "(?<node>.*)"); },
                     {"no (?<rack>...) group"});
  const std::vector<std::string> dup = {"r1n1", "r1n1"};
  expect_usage_error([&] { (void)fabric_from_hostnames(dup, "r(?<rack>[0-9]+)n[0-9]+"); },
                     {"'r1n1' is listed twice"});
}

TEST(NamedRegex, RefusesPatternsThatBacktrackExponentially) {
  // On a host of thirty a's, `(a+)+b` backtracks 2^30 times in std::regex: it must be refused
  // before any matching, with the flag named.
  const std::vector<std::string> hosts = {std::string(30, 'a')};
  expect_usage_error([&] { (void)fabric_from_hostnames(hosts, "(?<rack>(a+)+)b"); },
                     {"--hostname-pattern", "(?<rack>(a+)+)b", "repeated group"});
  for (const char* evil : {"(?<rack>(a*)*)", "(?<rack>(?:a|aa)+)", "(?<rack>((a|b)?)+)",
                           "(?<rack>(a+){2,})", "(?<rack>(?:a?){5})", "(?<rack>(a[0-9]+?)*)"}) {
    expect_usage_error([&] { NamedRegex(evil, "--hostname-pattern"); },
                       {"--hostname-pattern", evil, "repeated group"}, evil);
  }
  expect_usage_error([] { NamedRegex("(?<rack>a+)\\1", "--hostname-pattern"); },
                     {"--hostname-pattern", "backreferences"});
  // Still fine: repeated groups of fixed width, optional alternations, escaped and classed parens.
  for (const char* ok : {"(?<rack>(?:[a-z]{2})+)", "(?<rack>r[0-9]+)(a|b)?", "(?<rack>[(+)]+)",
                         "(?<rack>\\(a+\\)+)", "(?<rack>x{2})(?:-[0-9]{1,3})?"}) {
    EXPECT_NO_THROW(NamedRegex(ok, "--hostname-pattern")) << ok;
  }
}

TEST(NamedRegex, RefusesRepetitionCountsAboveTheLongestHostName) {
  // Found by tests/fuzz (hostname_pattern): libstdc++ 12 overflows an int reading this count
  // (UBSan: signed multiplication overflow in regex_compiler.tcc) before it can refuse it.
  const std::string huge = "(?<rack>l{0" + std::string(90, '7') + ",2})";
  expect_usage_error([&] { NamedRegex(huge, "--hostname-pattern"); },
                     {"--hostname-pattern", "repetition count above 255"});
  for (const char* big : {"(?<rack>a{256})", "(?<rack>a{1,1000})", "(?<rack>a{2,}b{0300})"}) {
    expect_usage_error([&] { NamedRegex(big, "--hostname-pattern"); },
                       {"--hostname-pattern", "repetition count above 255"}, big);
  }
  // The same overflow reading a backreference's number (found by tests/fuzz as well).
  for (const std::string& backref :
       {"(?<rack>a)\\" + std::string(40, '8'), std::string("(?<rack>a)\\1"),
        std::string("(?<rack>a\\0)"), std::string("(?<rack>[\\9a])")}) {
    expect_usage_error([&] { NamedRegex(backref, "--hostname-pattern"); },
                       {"--hostname-pattern", "backreferences"}, backref);
  }
  // Counts up to 255, leading zeros, and braces inside classes or escaped are fine.
  for (const char* ok : {"(?<rack>a{255})", "(?<rack>a{0000255,})", "(?<rack>[{9999}]+)",
                         "(?<rack>r\\{9999[0-9]{1,3})"}) {
    EXPECT_NO_THROW(NamedRegex(ok, "--hostname-pattern")) << ok;
  }
}

TEST(NamedRegex, RefusesStackedQuantifiers) {
  // Found by tests/fuzz (hostname_pattern): libstdc++ accepts `g**...*` and nests the stars, so
  // sixty of them took over 10 s on "gpu-a1Jgpu-a2" (a timeout under the fuzzer).
  const std::string stars = "g" + std::string(60, '*') + "pu-(?<rack>[a-z])(?<node>[0-9])";
  expect_usage_error([&] { NamedRegex(stars, "--hostname-pattern"); },
                     {"--hostname-pattern", "a quantifier follows another"});
  for (const char* evil : {"(?<rack>a**)", "(?<rack>a+{2})", "(?<rack>(?:ab)*+)",
                           "(?<rack>a*?"
                           "?)",
                           "(?<rack>a{1,2}{3})"}) {
    expect_usage_error([&] { NamedRegex(evil, "--hostname-pattern"); },
                       {"--hostname-pattern", "a quantifier follows another"}, evil);
  }
  for (const char* ok : {"(?<rack>a*?b+?)", "(?<rack>a{2}?)", "(?<rack>x\\*+)", "(?<rack>[*+]+)"}) {
    EXPECT_NO_THROW(NamedRegex(ok, "--hostname-pattern")) << ok;
  }
}

TEST(NamedRegex, EmptyPatternAndOverlongNamesAreUsageErrors) {
  expect_usage_error([] { NamedRegex("", "--hostname-pattern"); },
                     {"--hostname-pattern", "empty", "(?<rack>"});
  const std::vector<std::string> hosts = {"r1n1"};
  expect_usage_error([&] { (void)fabric_from_hostnames(hosts, ""); },
                     {"--hostname-pattern", "empty"});
  const NamedRegex re("(?<rack>a*)", "--hostname-pattern");
  std::vector<std::string> g;
  EXPECT_TRUE(re.match(std::string(NamedRegex::kMaxTextLength, 'a'), g));
  expect_usage_error([&] { (void)re.match(std::string(NamedRegex::kMaxTextLength + 1, 'a'), g); },
                     {"--hostname-pattern", "256 characters"});
}
