// The pure parts of shift and congestion: partner tables, victim placement, aggressor patterns,
// which ethtool statistics count as pause counters, and their command line and suite fields.
#include "suites/load.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "apps/cli.hpp"
#include "core/error.hpp"
#include "cli_util.hpp"
#include "transport/multi.hpp"

using namespace fabscope;
using testing_cli::parse;
using testing_cli::usage_error;
namespace load = suites::load;

namespace {

bool is_derangement(const std::vector<int>& p) {
  std::vector<int> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (sorted[i] != static_cast<int>(i) || p[i] == static_cast<int>(i)) return false;
  }
  return true;
}

bool contains(const std::string& s, const std::string& needle) {
  return s.find(needle) != std::string::npos;
}

}  // namespace

TEST(LoadPartners, ShiftCoversEveryOrderedPairOnce) {
  for (int n : {2, 3, 4, 7, 8}) {
    std::set<std::pair<int, int>> seen;
    for (int s = 0; s < n - 1; ++s) {
      const auto to = load::shift_partners(n, s);
      ASSERT_TRUE(is_derangement(to)) << "n=" << n << " step " << s;
      for (int i = 0; i < n; ++i) {
        EXPECT_EQ(to[static_cast<std::size_t>(i)], (i + s + 1) % n);
        EXPECT_TRUE(seen.emplace(i, to[static_cast<std::size_t>(i)]).second);
      }
      const auto from = load::senders_to(to);
      for (int i = 0; i < n; ++i) EXPECT_EQ(from[static_cast<std::size_t>(i)], (i - s - 1 + n) % n);
    }
    EXPECT_EQ(seen.size(), static_cast<std::size_t>(n * (n - 1)));
  }
}

TEST(LoadPartners, PermutationsAreSeededDerangements) {
  const auto a = load::permutation_partners(8, 20, 42);
  const auto b = load::permutation_partners(8, 20, 42);
  const auto c = load::permutation_partners(8, 20, 43);
  ASSERT_EQ(a.size(), 20u);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  for (const auto& p : a) EXPECT_TRUE(is_derangement(p));
  // Fresh per step: not every step the same.
  EXPECT_GT(std::set<std::vector<int>>(a.begin(), a.end()).size(), 10u);
  // Every derangement of 3 (the two 3-cycles) turns up: nothing is excluded.
  std::set<std::vector<int>> three;
  for (const auto& p : load::permutation_partners(3, 50, 1)) three.insert(p);
  EXPECT_EQ(three, (std::set<std::vector<int>>{{1, 2, 0}, {2, 0, 1}}));
  // Known values pin the generator: a seed must give the same table on every build.
  EXPECT_EQ(load::permutation_partners(6, 2, 1),
            (std::vector<std::vector<int>>{{1, 3, 0, 4, 5, 2}, {4, 0, 5, 1, 3, 2}}));
}

TEST(LoadVictims, CountIsClampedToARingAndAPattern) {
  EXPECT_EQ(load::victim_count(10, 0.2), 2);
  EXPECT_EQ(load::victim_count(100, 0.2), 20);
  EXPECT_EQ(load::victim_count(4, 0.2), 2);  // at least 2 victims
  EXPECT_EQ(load::victim_count(6, 0.9), 4);  // at least 2 aggressors
  EXPECT_EQ(load::victim_count(8, 0.5), 4);
}

TEST(LoadVictims, RandomPlacementIsSeededAndDistinct) {
  const auto a = load::choose_victims(20, 0.25, "random", 5, {});
  EXPECT_EQ(a, load::choose_victims(20, 0.25, "random", 5, {}));
  EXPECT_NE(a, load::choose_victims(20, 0.25, "random", 6, {}));
  ASSERT_EQ(a.size(), 5u);
  EXPECT_EQ(std::set<int>(a.begin(), a.end()).size(), 5u);
  for (const int v : a) EXPECT_TRUE(v >= 0 && v < 20);
}

TEST(LoadVictims, LeafFillsWholeLeavesAndSpreadSpreads) {
  // 3 leaves of 4 ranks: leaf 0 = ranks 0..3, leaf 1 = 4..7, leaf 2 = 8..11.
  const std::vector<int> leaf{0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2};
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    const auto packed = load::choose_victims(12, 4.0 / 12, "leaf", seed, leaf);
    ASSERT_EQ(packed.size(), 4u);
    std::set<int> leaves;
    for (const int v : packed) leaves.insert(leaf[static_cast<std::size_t>(v)]);
    EXPECT_EQ(leaves.size(), 1u) << "seed " << seed << ": 4 victims fit one leaf";
    const auto spread = load::choose_victims(12, 6.0 / 12, "spread", seed, leaf);
    std::map<int, int> per_leaf;
    for (const int v : spread) ++per_leaf[leaf[static_cast<std::size_t>(v)]];
    EXPECT_EQ(per_leaf, (std::map<int, int>{{0, 2}, {1, 2}, {2, 2}})) << "seed " << seed;
  }
  // 6 victims with leaf placement: one whole leaf and half of another.
  const auto six = load::choose_victims(12, 0.5, "leaf", 3, leaf);
  std::map<int, int> per_leaf;
  for (const int v : six) ++per_leaf[leaf[static_cast<std::size_t>(v)]];
  std::vector<int> counts;
  for (const auto& [l, c] : per_leaf) counts.push_back(c);
  std::sort(counts.begin(), counts.end());
  EXPECT_EQ(counts, (std::vector<int>{2, 4}));
  EXPECT_THROW((void)load::choose_victims(12, 0.5, "nearby", 1, leaf), core::UsageError);
}

TEST(LoadPatterns, FlowsAreConsistentAcrossRanks) {
  const std::vector<int> aggressors{1, 2, 4, 5, 7};
  for (const std::string pattern : {"incast", "alltoall", "flood"}) {
    std::map<int, load::PatternFlows> f;
    for (const int a : aggressors) f[a] = load::aggressor_flows(pattern, aggressors, a, 9);
    std::multiset<std::pair<int, int>> sends, receives;
    for (const auto& [a, flows] : f) {
      for (const int t : flows.to) sends.emplace(a, t);
      for (const int s : flows.from) receives.emplace(s, a);
      EXPECT_TRUE(std::find(flows.to.begin(), flows.to.end(), a) == flows.to.end())
          << pattern << ": sends to itself";
    }
    EXPECT_EQ(sends, receives) << pattern << ": every send has its receiver";
    if (pattern == "incast") {
      const int target = load::incast_target(aggressors, 9);
      EXPECT_EQ(f[target].from.size(), aggressors.size() - 1);
      EXPECT_TRUE(f[target].to.empty());
    } else if (pattern == "alltoall") {
      EXPECT_EQ(sends.size(), aggressors.size() * (aggressors.size() - 1));
    } else {
      for (const auto& [a, flows] : f) EXPECT_EQ(flows.to.size(), 1u);
    }
  }
  EXPECT_TRUE(load::aggressor_flows("flood", aggressors, 3, 9).to.empty());  // not an aggressor
  EXPECT_THROW((void)load::aggressor_flows("storm", aggressors, 1, 9), core::UsageError);
}

TEST(LoadCounters, PauseCounterNames) {
  for (const char* yes : {"rx_pause_ctrl_phy", "tx_pause_ctrl_phy", "rx_prio3_pause",
                          "rx_pfc_frames", "link_xon_rx", "tx_xoff", "RxPauseFrames"}) {
    EXPECT_TRUE(transport::is_pause_counter(yes)) << yes;
  }
  for (const char* no : {"rx_packets", "tx_bytes", "rx_crc_errors", "peer_ifindex"})
    EXPECT_FALSE(transport::is_pause_counter(no)) << no;
}

TEST(LoadCli, ShiftOptions) {
  const auto inv = parse({"shift", "--pattern", "permutation", "--size", "64K", "--iters", "3",
                          "--steps", "5", "--seed", "11", "--link-rate", "25G"});
  const auto& s = inv.specs.at(0);
  EXPECT_EQ(s.kind(), "shift");
  EXPECT_EQ(s.as<suites::ShiftParams>().pattern, "permutation");
  EXPECT_EQ(s.as<suites::ShiftParams>().size, 64u << 10);
  EXPECT_EQ(s.as<suites::ShiftParams>().iters, 3);
  EXPECT_EQ(s.as<suites::ShiftParams>().warmup, 2);
  EXPECT_EQ(s.as<suites::ShiftParams>().steps, 5);
  EXPECT_EQ(s.as<suites::ShiftParams>().seed, 11u);
  EXPECT_DOUBLE_EQ(s.as<suites::ShiftParams>().link_rate_gbps, 25.0);
  EXPECT_EQ(parse({"shift"}).specs[0].as<suites::ShiftParams>().iters, 10);
}

TEST(LoadCli, LinkRates) {
  EXPECT_DOUBLE_EQ(apps::parse_rate_gbps("400G", "x"), 400.0);
  EXPECT_DOUBLE_EQ(apps::parse_rate_gbps("400Gb/s", "x"), 400.0);
  EXPECT_DOUBLE_EQ(apps::parse_rate_gbps("100 Gbps", "x"), 100.0);
  EXPECT_DOUBLE_EQ(apps::parse_rate_gbps("800M", "x"), 0.8);
  EXPECT_DOUBLE_EQ(apps::parse_rate_gbps("1.6T", "x"), 1600.0);
  EXPECT_DOUBLE_EQ(apps::parse_rate_gbps("10", "x"), 10.0);
  for (const char* bad : {"", "fast", "0", "-5G", "10X", "G"})
    EXPECT_THROW((void)apps::parse_rate_gbps(bad, "x"), core::UsageError) << bad;
}

TEST(LoadCli, CongestionOptions) {
  const auto inv =
      parse({"congestion", "--victims", "0.5", "--placement", "spread", "--patterns",
             "flood,incast", "--aggressor-size", "4K", "--bw-iters", "3", "--iters", "50"});
  const auto& c = inv.specs.at(0).as<suites::CongestionParams>();
  EXPECT_EQ(inv.specs[0].kind(), "congestion");
  EXPECT_DOUBLE_EQ(c.victim_fraction, 0.5);
  EXPECT_EQ(c.placement, "spread");
  EXPECT_EQ(c.patterns, (std::vector<std::string>{"flood", "incast"}));
  EXPECT_EQ(c.aggressor_size, 4096u);
  EXPECT_EQ(c.lat_size, 8u);
  EXPECT_EQ(c.bw_iters, 3);
  EXPECT_EQ(c.iters, 50);
  const auto d = parse({"congestion"}).specs[0].as<suites::CongestionParams>();
  EXPECT_DOUBLE_EQ(d.victim_fraction, 0.2);
  EXPECT_EQ(d.patterns.size(), 3u);
  EXPECT_EQ(d.iters, 1000);
}

TEST(LoadCli, BadInputNamesTheFlag) {
  EXPECT_TRUE(
      contains(usage_error({"shift", "--pattern", "ring"}), "--pattern: unknown pattern 'ring'"));
  EXPECT_TRUE(contains(usage_error({"shift", "--steps", "4"}),
                       "--steps applies to the permutation pattern only"));
  EXPECT_TRUE(contains(usage_error({"shift", "--iters", "0"}), "--iters must be at least 1"));
  EXPECT_TRUE(contains(usage_error({"shift", "--link-rate", "fast"}), "--link-rate 'fast'"));
  EXPECT_TRUE(contains(usage_error({"shift", "--size", "0"}), "--size must be at least 1 byte"));
  EXPECT_TRUE(
      contains(usage_error({"shift", "--transport", "verbs", "--verb", "send"}), "--verb send"));
  EXPECT_TRUE(contains(usage_error({"shift", "--qps", "4"}), "--qps 4: shift runs one queue pair per flow"));
  // rdma_cm connects flows too (tests/verbs/load_2vm_test.sh runs it)
  EXPECT_EQ(parse({"shift", "--transport", "verbs", "--cm", "rdmacm"}).specs[0].as<suites::ShiftParams>().common.options.cm, "rdmacm");
  EXPECT_EQ(parse({"congestion", "--transport", "verbs", "--cm", "rdmacm"}).specs[0].as<suites::CongestionParams>().common.options.cm,
            "rdmacm");
  EXPECT_TRUE(contains(usage_error({"congestion", "--victims", "1.5"}), "--victims 1.5"));
  EXPECT_TRUE(contains(usage_error({"congestion", "--placement", "near"}),
                       "--placement: unknown placement 'near'"));
  EXPECT_TRUE(contains(usage_error({"congestion", "--patterns", "incast,storm"}),
                       "--patterns: unknown pattern 'storm'"));
  EXPECT_TRUE(contains(usage_error({"congestion", "--patterns", "flood,flood"}),
                       "'flood' is listed twice"));
  EXPECT_TRUE(contains(usage_error({"congestion", "--aggressor-size", "0"}),
                       "--aggressor-size must be at least 1 byte"));
}

TEST(LoadSuite, EntriesAndErrors) {
  const auto specs = apps::parse_suite(
      "benchmarks:\n"
      "  - {name: s, kind: shift, pattern: permutation, size: 4K, iters: 3, warmup: 1, steps: 2, "
      "seed: 5, link_rate: 10G}\n"
      "  - {name: c, kind: congestion, victims: 0.5, placement: random, patterns: [flood], "
      "aggressor_size: 8K,\n"
      "     lat_size: 16, bw_size: 32K, iters: 40, bw_iters: 2, warmup: 3, seed: 9}\n",
      "load.yaml");
  ASSERT_EQ(specs.size(), 2u);
  EXPECT_EQ(specs[0].as<suites::ShiftParams>().size, 4096u);
  EXPECT_EQ(specs[0].as<suites::ShiftParams>().steps, 2);
  EXPECT_EQ(specs[0].as<suites::ShiftParams>().warmup, 1);
  EXPECT_DOUBLE_EQ(specs[0].as<suites::ShiftParams>().link_rate_gbps, 10.0);
  EXPECT_EQ(specs[0].as<suites::ShiftParams>().common.name, "s");
  EXPECT_EQ(specs[1].as<suites::CongestionParams>().patterns, (std::vector<std::string>{"flood"}));
  EXPECT_EQ(specs[1].as<suites::CongestionParams>().lat_size, 16u);
  EXPECT_EQ(specs[1].as<suites::CongestionParams>().bw_iters, 2);
  EXPECT_EQ(specs[1].as<suites::CongestionParams>().seed, 9u);
  auto error = [](const std::string& text) {
    try {
      (void)apps::parse_suite(text, "load.yaml");
    } catch (const core::UsageError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_TRUE(contains(error("benchmarks:\n  - {kind: shift, victims: 0.5}\n"),
                       "load.yaml:2: benchmarks[0].victims: unknown field for shift"));
  EXPECT_TRUE(contains(error("benchmarks:\n  - {kind: congestion, victims: lots}\n"),
                       "benchmarks[0].victims: expected a number"));
  EXPECT_TRUE(contains(error("benchmarks:\n  - {kind: congestion, patterns: [incast, x]}\n"),
                       "patterns: unknown pattern 'x'"));
}
