#include "topology/plan.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "test_util.hpp"
#include "topology/generator.hpp"
#include "topology/plan_file.hpp"
#include "topology/sources.hpp"

using namespace fabscope::topology;
using fabscope::topology::testing::data_path;
using fabscope::topology::testing::expect_usage_error;

namespace {

std::size_t uz(Index i) { return static_cast<std::size_t>(i); }

Fabric gen(const std::string& spec) { return generate_fat_tree(parse_fat_tree_spec(spec, "spec")); }

const std::vector<std::string> kSpecs = {
    "hosts=16,nics-per-leaf=4,leaves-per-pod=4,spines-per-pod=2",
    "hosts=128,nics-per-leaf=8,leaves-per-pod=4,spines-per-pod=2,cores-per-plane=2",
    "hosts=64,rails=4,nics-per-leaf=16,leaves-per-pod=8,spines-per-pod=4,cores-per-plane=2",
    "hosts=13,nics-per-leaf=4,leaves-per-pod=2,spines-per-pod=3,cores-per-plane=1",  // odd sizes
};

// Checks every round (valid, distinct endpoints, disjoint) and returns every pair, lower first.
std::vector<Pair> all_pairs_checked(const Plan& p, const Endpoints& e) {
  std::vector<Pair> out, buf;
  std::int64_t count = 0;
  for (std::int64_t r = 0; r < p.rounds(); ++r) {
    p.round(r, buf);
    EXPECT_EQ(static_cast<std::int64_t>(buf.size()), p.round_size(r)) << p.name() << " round " << r;
    std::vector<std::uint8_t> busy(e.size(), 0);
    for (const auto& [a, b] : buf) {
      EXPECT_TRUE(a >= 0 && uz(a) < e.size() && b >= 0 && uz(b) < e.size()) << p.name();
      EXPECT_NE(a, b) << p.name();
      EXPECT_FALSE(busy[uz(a)] || busy[uz(b)])
          << p.name() << ": round " << r << " uses an endpoint twice";
      busy[uz(a)] = busy[uz(b)] = 1;
      out.emplace_back(std::min(a, b), std::max(a, b));
    }
    count += static_cast<std::int64_t>(buf.size());
  }
  EXPECT_EQ(count, p.pairs()) << p.name();
  return out;
}

// Coverage by brute force from the list of pairs: host-leaf exactly; leaf-spine by following the
// routes when known, else the ECMP expectation from flow counts per leaf.
Coverage brute_coverage(const Endpoints& e, const std::vector<Pair>& pairs) {
  const Fabric& f = e.fabric();
  Coverage c;
  c.routes_known = f.has_routes();
  c.host_leaf_links = f.host_link_count();
  c.leaf_spine_links = f.leaf_spine_link_count();
  std::set<Index> nics, ls_links;
  std::map<Index, double> flows;
  for (const auto& [a, b] : pairs) {
    const Index na = e[uz(a)].nic, nb = e[uz(b)].nic;
    if (na == nb) continue;
    nics.insert(na);
    nics.insert(nb);
    const Index la = f.nics()[uz(na)].leaf, lb = f.nics()[uz(nb)].leaf;
    if (la == lb) continue;
    if (f.has_routes()) {
      for (const auto& r : {f.route(na, nb), f.route(nb, na)}) {
        EXPECT_TRUE(r.has_value());
        for (const Index l : r->links) {
          if (f.is_leaf_spine_link(l)) ls_links.insert(l);
        }
      }
    } else {
      flows[la] += 2;
      flows[lb] += 2;
    }
  }
  c.host_leaf_exercised = static_cast<std::int64_t>(nics.size());
  if (f.has_routes()) {
    c.leaf_spine_exercised = static_cast<double>(ls_links.size());
  } else {
    for (const auto& [leaf, fl] : flows) {
      const int u = f.uplinks(leaf);
      if (u > 0) c.leaf_spine_exercised += u * (1 - std::pow(1 - 1.0 / u, fl));
    }
  }
  return c;
}

void expect_same_coverage(const Coverage& got, const Coverage& want, const std::string& what) {
  EXPECT_EQ(got.host_leaf_links, want.host_leaf_links) << what;
  EXPECT_EQ(got.host_leaf_exercised, want.host_leaf_exercised) << what;
  EXPECT_EQ(got.leaf_spine_links, want.leaf_spine_links) << what;
  EXPECT_NEAR(got.leaf_spine_exercised, want.leaf_spine_exercised,
              1e-6 * (1 + want.leaf_spine_exercised))
      << what;
}

}  // namespace

TEST(Plans, EveryPlanHasValidDisjointRounds) {
  for (const auto& spec : kSpecs) {
    const Fabric f = gen(spec);
    for (const bool per_nic : {false, true}) {
      const Endpoints e = per_nic ? Endpoints::per_nic(f) : Endpoints::per_host(f);
      PlanOptions o;
      o.new_hosts = {f.racks()[0]};
      for (const auto& name : {"all-pairs", "rail-aligned", "hop-class", "new-rack"}) {
        const auto p = make_plan(name, e, o);
        (void)all_pairs_checked(*p, e);
      }
      for (const double budget : {5.0, 20.0, 1e6}) {
        o.budget_s = budget;
        o.new_hosts.clear();
        const auto p = make_plan("budget", e, o);
        EXPECT_LE(p->rounds(), static_cast<std::int64_t>(budget)) << spec;
        (void)all_pairs_checked(*p, e);
      }
    }
  }
}

TEST(Plans, AllPairsCoversEveryPairExactlyOnce) {
  for (const auto& spec : kSpecs) {
    const Fabric f = gen(spec);
    const Endpoints e = Endpoints::per_nic(f);
    const auto p = make_plan("all-pairs", e, {});
    auto pairs = all_pairs_checked(*p, e);
    const auto n = static_cast<std::int64_t>(e.size());
    EXPECT_EQ(static_cast<std::int64_t>(pairs.size()), n * (n - 1) / 2);
    std::sort(pairs.begin(), pairs.end());
    EXPECT_EQ(std::adjacent_find(pairs.begin(), pairs.end()), pairs.end())
        << "a pair appears twice";
    EXPECT_EQ(p->rounds(), n % 2 == 0 ? n - 1 : n);
  }
}

TEST(Plans, RailAlignedPairsOnlySameRailNicsOnce) {
  const Fabric f = gen(kSpecs[2]);
  const Endpoints e = Endpoints::per_nic(f);
  const auto p = make_plan("rail-aligned", e, {});
  auto pairs = all_pairs_checked(*p, e);
  for (const auto& [a, b] : pairs) EXPECT_EQ(e.rail(a), e.rail(b));
  std::sort(pairs.begin(), pairs.end());
  EXPECT_EQ(std::adjacent_find(pairs.begin(), pairs.end()), pairs.end());
  EXPECT_EQ(pairs.size(), 4u * 64 * 63 / 2);
  EXPECT_EQ(p->rounds(), 63);
}

TEST(Plans, HopClassGivesKPartnersPerClass) {
  for (const auto& spec : {kSpecs[0], kSpecs[1]}) {  // even, equal groups: exactly k
    const Fabric f = gen(spec);
    const Endpoints e = Endpoints::per_host(f);
    for (const int k : {1, 2, 3}) {
      PlanOptions o;
      o.k = k;
      const auto p = make_plan("hop-class", e, o);
      auto pairs = all_pairs_checked(*p, e);
      std::map<std::pair<Index, HopClass>, int> per;
      for (const auto& [a, b] : pairs) {
        const HopClass c = e.hop_class(a, b);
        EXPECT_NE(c, HopClass::kSameHost);
        ++per[{a, c}];
        ++per[{b, c}];
      }
      std::set<HopClass> classes;
      for (const auto& [key, n] : per) classes.insert(key.second);
      for (std::size_t i = 0; i < e.size(); ++i) {
        for (const HopClass c : classes) {
          EXPECT_EQ((per[{static_cast<Index>(i), c}]), k)
              << spec << " k=" << k << " class " << to_string(c);
        }
      }
      std::sort(pairs.begin(), pairs.end());
      EXPECT_EQ(std::adjacent_find(pairs.begin(), pairs.end()), pairs.end()) << "duplicate pair";
    }
  }
  // Uneven fabric: at most k, at least k-1 where the class exists for the endpoint's group.
  const Fabric f = gen(kSpecs[3]);
  const Endpoints e = Endpoints::per_host(f);
  PlanOptions o;
  o.k = 2;
  const auto p = make_plan("hop-class", e, o);
  std::map<std::pair<Index, HopClass>, int> per;
  for (const auto& [a, b] : all_pairs_checked(*p, e)) {
    ++per[{a, e.hop_class(a, b)}];
    ++per[{b, e.hop_class(a, b)}];
  }
  for (const auto& [key, n] : per) EXPECT_LE(n, 2);
}

// The new part's coverage: every new host link, the new leaves' uplinks to the target, every pod
// met; --refs fixes the rounds against existing hosts; a higher uplink target never gives fewer.
TEST(Plans, NewRackCoverageAndItsParameters) {
  const Fabric f = gen(kSpecs[1]);  // 128 hosts, 4 pods, 8 hosts per leaf, 2 uplinks per leaf
  const Endpoints e = Endpoints::per_host(f);
  PlanOptions o;
  o.new_hosts = {"rack0003"};
  const auto p = make_plan("new-rack", e, o);
  const auto c = new_rack_coverage(*p, e);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->new_endpoints, 8);
  EXPECT_EQ(c->existing_endpoints, 120);
  EXPECT_EQ(c->new_links, 8);
  EXPECT_EQ(c->new_links_exercised, 8);
  EXPECT_EQ(c->pods, 4);
  EXPECT_EQ(c->min_pods_met, 4);
  EXPECT_GE(c->new_uplink_fraction(), 0.95);
  EXPECT_EQ(p->rounds(), 7 + c->refs);  // 8 new hosts: 7 rounds among them
  const std::string line = format_new_rack_coverage(*c);
  for (const char* want :
       {"8 new endpoints", "host links 8/8", "met 4 of 4 pods", "(expected, ECMP)"})
    EXPECT_NE(line.find(want), std::string::npos) << line;
  // Fabric-wide, the same plan covers little (it is not meant to): the figure users misread.
  EXPECT_LT(compute_coverage(*p, e).host_leaf_fraction(), 0.8);

  PlanOptions fixed = o;
  fixed.new_rack_samples = 10;
  const auto p10 = make_plan("new-rack", e, fixed);
  EXPECT_EQ(p10->rounds(), 7 + 10);
  EXPECT_EQ(new_rack_coverage(*p10, e)->refs, 10);
  EXPECT_GT(new_rack_coverage(*p10, e)->existing_met, 10);  // partners walk over the pods
  EXPECT_LE(new_rack_coverage(*p10, e)->existing_met, 80);
  fixed.new_rack_samples = 2;  // fewer rounds than pods: a new host misses pods, and says so
  EXPECT_EQ(new_rack_coverage(*make_plan("new-rack", e, fixed), e)->min_pods_met, 2);

  std::int64_t last = 0;
  for (const double target : {0.5, 0.9, 0.99, 0.9999}) {
    PlanOptions t = o;
    t.new_uplink_coverage = target;
    const auto pt = make_plan("new-rack", e, t);
    const auto ct = new_rack_coverage(*pt, e);
    EXPECT_GE(ct->new_uplink_fraction(), target) << target;
    EXPECT_GE(ct->refs, 4) << "at least one round per pod";
    EXPECT_GE(ct->refs, last) << target;
    last = ct->refs;
  }
  PlanOptions bad = o;
  bad.new_uplink_coverage = 1.5;
  expect_usage_error([&] { (void)make_plan("new-rack", e, bad); }, {"uplink coverage", "(0, 1]"});
  // Other plans have no new part.
  EXPECT_FALSE(new_rack_coverage(*make_plan("hop-class", e, o), e).has_value());
  // The summary of `fabscope plan` carries the line.
  const auto sums = summarize_plans(e, o);
  const std::string text = format_plan_summaries(sums);
  EXPECT_NE(text.find("new part: 8 new endpoints"), std::string::npos) << text;
}

TEST(Plans, NewRackPairsTheNewHostsAndSamplesEveryPod) {
  const Fabric f = gen(kSpecs[1]);  // 4 pods
  const Endpoints e = Endpoints::per_host(f);
  PlanOptions o;
  o.new_hosts = {"rack0003", "node00100"};
  const auto p = make_plan("new-rack", e, o);
  const auto pairs = all_pairs_checked(*p, e);
  std::set<Index> fresh;
  for (std::size_t i = 0; i < e.size(); ++i) {
    const Host& h = f.hosts()[uz(e[i].host)];
    if (f.racks()[uz(h.rack)] == "rack0003" || h.name == "node00100")
      fresh.insert(static_cast<Index>(i));
  }
  ASSERT_EQ(fresh.size(), 9u);
  std::set<Pair> inside;
  std::map<Index, std::set<Index>> pods_met;
  for (const auto& [a, b] : pairs) {
    const bool na = fresh.count(a) != 0, nb = fresh.count(b) != 0;
    EXPECT_TRUE(na || nb) << "a pair without a new host";
    if (na && nb) {
      EXPECT_TRUE(inside.emplace(a, b).second) << "pair twice";
    } else {
      const Index n = na ? a : b, old = na ? b : a;
      pods_met[n].insert(f.host_pod(e[uz(old)].host));
    }
  }
  EXPECT_EQ(inside.size(), 9u * 8 / 2);
  for (const Index n : fresh) EXPECT_EQ(pods_met[n].size(), 4u) << "new host misses a pod";
  expect_usage_error(
      [&] {
        PlanOptions bad;
        bad.new_hosts = {"rack9999"};
        (void)make_plan("new-rack", e, bad);
      },
      {"'rack9999' is neither a rack nor a host"});
  expect_usage_error([&] { (void)make_plan("new-rack", e, {}); },
                     {"new-rack", "name the new racks"});
  expect_usage_error([&] { (void)make_plan("everything", e, {}); },
                     {"unknown plan 'everything'", "all-pairs"});
}

// The README's launch: the new rack and a few reference hosts, fewer per pod than new hosts. Every
// new host still meets every pod (a window of new hosts moves over the references round by round);
// before, the new hosts beyond the references' count never met the existing fabric at all.
TEST(Plans, NewRackWithFewerReferencesThanNewHosts) {
  const Fabric f = gen(kSpecs[1]);  // 128 hosts, 4 pods, 8 hosts per leaf
  for (const std::size_t refs_per_pod : {1u, 2u}) {
    std::vector<std::string> names;
    std::map<Index, std::size_t> per_pod;
    for (const Host& h : f.hosts()) {
      if (f.racks()[uz(h.rack)] == "rack0003") {
        names.push_back(h.name);
      } else if (per_pod[f.host_pod(f.find_host(h.name))]++ < refs_per_pod) {
        names.push_back(h.name);
      }
    }
    ASSERT_EQ(names.size(), 8 + 4 * refs_per_pod);
    const Endpoints e = Endpoints::from_ranks(f, names);
    PlanOptions o;
    o.new_hosts = {"rack0003"};
    const auto p = make_plan("new-rack", e, o);
    const auto c = new_rack_coverage(*p, e);
    ASSERT_TRUE(c.has_value());
    EXPECT_EQ(c->new_endpoints, 8);
    EXPECT_EQ(c->existing_endpoints, static_cast<std::int64_t>(4 * refs_per_pod));
    EXPECT_EQ(c->min_pods_met, 4) << format_new_rack_coverage(*c);
    EXPECT_EQ(c->existing_met, static_cast<std::int64_t>(4 * refs_per_pod)) << "every reference used";
    std::map<Index, std::set<Index>> pods_met;
    for (const auto& [a, b] : all_pairs_checked(*p, e)) {  // no endpoint twice in a round
      const bool na = f.racks()[uz(f.hosts()[uz(e[uz(a)].host)].rack)] == "rack0003";
      const bool nb = f.racks()[uz(f.hosts()[uz(e[uz(b)].host)].rack)] == "rack0003";
      if (na != nb) pods_met[na ? a : b].insert(f.host_pod(e[uz(na ? b : a)].host));
    }
    ASSERT_EQ(pods_met.size(), 8u) << "a new host never met the existing fabric";
    for (const auto& [n, pods] : pods_met) EXPECT_EQ(pods.size(), 4u) << "new endpoint " << n;
    // Fixed rounds (--refs) beyond what it takes: bounded by the number of new endpoints.
    PlanOptions many = o;
    many.new_rack_samples = 1000;
    EXPECT_EQ(make_plan("new-rack", e, many)->rounds(), 7 + 8);
  }
}

TEST(Plans, NewRackErrorsNameTheFlagAndTheKnownRacks) {
  // `fabscope plan --new rack99` and `plan --plan new-rack` without --new: one line naming --new
  // and the first racks of the fabric, from make_plan and from the summary of every plan alike.
  const Fabric f = load_ibnetdiscover(data_path("fat16.ibnetdiscover"));
  const Endpoints e = Endpoints::per_host(f);
  ASSERT_FALSE(f.racks().empty());
  const std::string first_rack = f.racks()[0];
  PlanOptions unknown;
  unknown.new_hosts = {"rack99"};
  for (const auto& call :
       std::vector<std::function<void()>>{[&] { (void)make_plan("new-rack", e, unknown); },
                                          [&] { (void)summarize_plans(e, unknown); },
                                          [&] {
                                            PlanOptions b = unknown;
                                            b.budget_s = 3600;
                                            (void)make_plan("budget", e, b);
                                          }}) {
    expect_usage_error(call, {"--new", "'rack99'", "racks: " + first_rack});
  }
  expect_usage_error([&] { (void)make_plan("new-rack", e, {}); },
                     {"new-rack", "--new", "racks: " + first_rack});
  // More than eight racks: the first eight and the count.
  const Fabric big = gen(kSpecs[1]);
  ASSERT_GT(big.racks().size(), 8u);
  const Endpoints eb = Endpoints::per_host(big);
  expect_usage_error(
      [&] { (void)make_plan("new-rack", eb, unknown); },
      {"--new", big.racks()[7] + ", ...", fmt::format("({} racks)", big.racks().size())});
}

TEST(Coverage, MatchesBruteForceWithoutRoutes) {
  for (const auto& spec : kSpecs) {
    const Fabric f = gen(spec);
    for (const bool per_nic : {false, true}) {
      const Endpoints e = per_nic ? Endpoints::per_nic(f) : Endpoints::per_host(f);
      PlanOptions o;
      o.new_hosts = {f.racks().back()};
      for (const auto& name : {"all-pairs", "rail-aligned", "hop-class", "new-rack"}) {
        const auto p = make_plan(name, e, o);
        const auto pairs = all_pairs_checked(*p, e);
        const std::string what = spec + " " + name + (per_nic ? " per-nic" : " per-host");
        expect_same_coverage(compute_coverage(*p, e), brute_coverage(e, pairs), what);
        // The streamed path (a truncated plan never uses the closed form) agrees too.
        const auto cut = truncate_plan(make_plan(name, e, o), p->rounds());
        expect_same_coverage(compute_coverage(*cut, e), brute_coverage(e, pairs),
                             what + " streamed");
        // And a real cut agrees with the brute force of its own pairs.
        const auto half =
            truncate_plan(make_plan(name, e, o), std::max<std::int64_t>(1, p->rounds() / 3));
        expect_same_coverage(compute_coverage(*half, e),
                             brute_coverage(e, all_pairs_checked(*half, e)), what + " cut");
      }
    }
  }
}

TEST(Coverage, EcmpExpectationMatchesSimulatedHashing) {
  // Monte Carlo: each flow picks a uniform uplink at both of its leaves.
  const Fabric f = gen("hosts=32,nics-per-leaf=4,leaves-per-pod=8,spines-per-pod=4");
  const Endpoints e = Endpoints::per_host(f);
  PlanOptions o;
  o.k = 1;
  const auto p = make_plan("hop-class", e, o);
  const auto pairs = all_pairs_checked(*p, e);
  const Coverage c = compute_coverage(*p, e);
  std::mt19937_64 rng(7);
  double sum = 0;
  const int trials = 4000;
  for (int t = 0; t < trials; ++t) {
    std::set<std::pair<Index, int>> used;
    for (const auto& [a, b] : pairs) {
      const Index la = e.leaf(a), lb = e.leaf(b);
      if (la == lb) continue;
      for (int dir = 0; dir < 2; ++dir) {
        for (const Index l : {la, lb})
          used.emplace(l, static_cast<int>(rng() % static_cast<unsigned>(f.uplinks(l))));
      }
    }
    sum += static_cast<double>(used.size());
  }
  EXPECT_NEAR(sum / trials, c.leaf_spine_exercised, 0.05 * static_cast<double>(c.leaf_spine_links));
  EXPECT_LT(c.leaf_spine_fraction(), 1.0);
  EXPECT_GT(c.leaf_spine_fraction(), 0.3);
}

TEST(Coverage, MatchesBruteForceWithRoutes) {
  Fabric f = load_ibnetdiscover(data_path("fat16.ibnetdiscover"));
  f.set_routes(
      parse_ibroute_dump(read_text_file(data_path("fat16.ibroute"), "x"), "fat16.ibroute"));
  const Endpoints e = Endpoints::per_host(f);
  PlanOptions o;
  o.new_hosts = {"node00001"};
  o.k = 1;
  for (const auto& name : {"all-pairs", "hop-class", "new-rack"}) {
    const auto p = make_plan(name, e, o);
    const auto pairs = all_pairs_checked(*p, e);
    const Coverage c = compute_coverage(*p, e);
    EXPECT_TRUE(c.routes_known);
    expect_same_coverage(c, brute_coverage(e, pairs), name);
    const auto cut = truncate_plan(make_plan(name, e, o), 2);
    expect_same_coverage(compute_coverage(*cut, e), brute_coverage(e, all_pairs_checked(*cut, e)),
                         std::string(name) + " cut");
  }
  const auto all = make_plan("all-pairs", e, o);
  EXPECT_EQ(compute_coverage(*all, e).leaf_spine_exercised, 8.0);  // every leaf-spine link
}

TEST(Budget, PicksTheWidestPlanThatFits) {
  const Fabric f = gen(kSpecs[1]);
  const Endpoints e = Endpoints::per_host(f);
  PlanOptions o;
  o.pair_time_s = 10;
  o.budget_s = 10 * 127;  // all-pairs needs 127 rounds
  BudgetChoice c = select_plan_for_budget(e, o);
  EXPECT_EQ(c.plan->name(), "all-pairs");
  o.budget_s = 10 * 126;
  c = select_plan_for_budget(e, o);
  EXPECT_EQ(c.plan->name(), "hop-class+all-pairs");
  EXPECT_EQ(c.plan->rounds(), 126);
  EXPECT_TRUE(c.candidates.back().chosen);
  EXPECT_FALSE(c.candidates.front().fits_budget);
  o.budget_s = 10 * 2;  // fewer rounds than hop classes
  c = select_plan_for_budget(e, o);
  EXPECT_EQ(c.plan->rounds(), 2);
  EXPECT_NE(c.reason.find("cut to 2 rounds"), std::string::npos) << c.reason;
  o.budget_s = 5;
  expect_usage_error([&] { (void)select_plan_for_budget(e, o); }, {"shorter than one round"});
  // New hosts: all their pairs, then as many rounds against the rest as fit.
  o.budget_s = 10 * 40;
  o.new_hosts = {"rack0001"};
  c = select_plan_for_budget(e, o);
  EXPECT_EQ(c.plan->name(), "new-rack");
  EXPECT_EQ(c.plan->rounds(), 40);
  const auto sums = summarize_plans(e, o);
  ASSERT_EQ(sums.size(), 4u);  // all-pairs, hop-class, new-rack, budget
  EXPECT_EQ(sums.back().name, "budget");
  const std::string table = format_plan_summaries(sums);
  for (const char* s :
       {"all-pairs", "hop-class", "new-rack", "budget", "over budget", "expected, ECMP"}) {
    EXPECT_NE(table.find(s), std::string::npos) << s << "\n" << table;
  }
}

TEST(PlanFile, RoundTripAndRules) {
  const Fabric f = gen(kSpecs[0]);
  const Endpoints e = Endpoints::per_host(f);
  PlanOptions o;
  o.k = 2;
  const auto p = make_plan("hop-class", e, o);
  std::ostringstream out;
  write_plan_file(out, *p, e);
  const PlanFile pf = parse_plan_file(out.str(), "retest.plan");
  EXPECT_EQ(pf.mode, EndpointMode::kHost);
  const auto back = plan_from_file(pf, e);
  ASSERT_EQ(back->rounds(), p->rounds());
  std::vector<Pair> x, y;
  for (std::int64_t r = 0; r < p->rounds(); ++r) {
    p->round(r, x);
    back->round(r, y);
    EXPECT_EQ(x, y);
  }
  // A hand-written re-test plan, NIC endpoints.
  const Fabric g = gen(kSpecs[2]);
  const Endpoints n = Endpoints::per_nic(g);
  const auto q = plan_from_file(
      parse_plan_file(
          "# suspects\nfabscope-plan 1\nendpoints nic\nround\nnode00001:mlx5_0 node00009:mlx5_0\n"
          "node00002:mlx5_3 node00003:mlx5_3\n\nround 1\nnode00001:mlx5_0 node00002:mlx5_3\n",
          "r.plan"),
      n);
  EXPECT_EQ(q->rounds(), 2);
  EXPECT_EQ(q->pairs(), 3);
  const auto bad = [](const std::string& text, const std::vector<std::string>& parts) {
    expect_usage_error([&] { (void)parse_plan_file(text, "r.plan"); }, parts, text);
  };
  bad("endpoints host\n", {"r.plan:1:", "fabscope-plan 1"});
  bad("fabscope-plan 2\n", {"r.plan:1:", "version '2'"});
  bad("fabscope-plan 1\nround\nh1 h2\n", {"r.plan:2:", "endpoints host"});
  bad("fabscope-plan 1\nendpoints host\nround\nh1 h2\nh3 h1\n",
      {"r.plan:5:", "'h1' is already in a pair of round 0 (line 4)"});
  bad("fabscope-plan 1\nendpoints host\nround\nh1 h1\n", {"r.plan:4:", "paired with itself"});
  bad("fabscope-plan 1\nendpoints host\nround 3\n", {"r.plan:3:", "out of order"});
  bad("fabscope-plan 1\nendpoints host\nh1 h2\n", {"r.plan:3:", "before the first 'round'"});
  bad("fabscope-plan 1\nendpoints host\nround\nh1 h2 h3\n", {"r.plan:4:", "two names"});
  expect_usage_error(
      [&] {
        (void)plan_from_file(
            parse_plan_file("fabscope-plan 1\nendpoints host\nround\nnode00001 h99\n", "r.plan"),
            e);
      },
      {"r.plan:4:", "'h99' is not an endpoint"});
  expect_usage_error(
      [&] {
        (void)plan_from_file(
            parse_plan_file("fabscope-plan 1\nendpoints nic\nround\nh1:m h2:m\n", "r.plan"), e);
      },
      {"r.plan", "NIC endpoints", "one rank per host"});
}

TEST(PlanFile, EmptyRoundsAndFilesWithoutRoundsAreRefused) {
  const auto bad = [](const std::string& text, const std::vector<std::string>& parts) {
    expect_usage_error([&] { (void)parse_plan_file(text, "r.plan"); }, parts, text);
  };
  // The empty round is named by the line of its 'round', wherever it is.
  bad("fabscope-plan 1\nendpoints host\nround 0\nround 1\nh1 h2\n",
      {"r.plan:3:", "round 0 has no pairs"});
  bad("fabscope-plan 1\nendpoints host\nround\nh1 h2\n# last\nround\n\n",
      {"r.plan:6:", "round 1 has no pairs"});
  bad("fabscope-plan 1\nendpoints host\n", {"r.plan:", "without a round"});
  bad("# only a header\nfabscope-plan 1\n", {"r.plan:", "without a round"});
}

TEST(PlanFile, EveryPlanRoundTripsThroughTheWriter) {
  // write_plan_file is what `fabscope plan --write NAME --out F` is to call: what it writes reads
  // back to the same rounds, for every plan, host and NIC endpoints.
  const Fabric f = gen(kSpecs[2]);
  for (const Endpoints& e : {Endpoints::per_host(f), Endpoints::per_nic(f)}) {
    PlanOptions o;
    o.new_hosts = {f.racks()[0]};
    o.budget_s = 20;
    for (const std::string& name : plan_names()) {
      const auto p = make_plan(name, e, o);
      std::ostringstream out;
      write_plan_file(out, *p, e);
      const PlanFile pf = parse_plan_file(out.str(), name + ".plan");
      EXPECT_EQ(pf.mode, e.mode()) << name;
      const auto back = plan_from_file(pf, e);
      std::vector<std::vector<Pair>> want, got;
      std::vector<Pair> buf;
      for (std::int64_t r = 0; r < p->rounds(); ++r) {
        p->round(r, buf);
        if (!buf.empty()) want.push_back(buf);
      }
      for (std::int64_t r = 0; r < back->rounds(); ++r) {
        back->round(r, buf);
        got.push_back(buf);
      }
      EXPECT_FALSE(want.empty()) << name;
      EXPECT_EQ(got, want) << name << (e.mode() == EndpointMode::kNic ? " per NIC" : " per host");
    }
  }
}

TEST(Endpoints, FromRanksNamesAndErrors) {
  const Fabric f = gen(kSpecs[2]);
  const std::vector<std::string> hosts = {"node00003", "node00001", "node00003"};
  const std::vector<std::string> devs = {"mlx5_0", "mlx5_2", "mlx5_1"};
  const Endpoints e = Endpoints::from_ranks(f, hosts, devs);
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e.mode(), EndpointMode::kNic);
  EXPECT_EQ(e.name(1), "node00001:mlx5_2");
  EXPECT_EQ(e.find("node00003:mlx5_1"), 2);
  EXPECT_EQ(e.rail(1), 2);
  EXPECT_EQ(e.hop_class(0, 2), HopClass::kSameHost);
  const Endpoints h = Endpoints::from_ranks(f, hosts);
  EXPECT_EQ(h.mode(), EndpointMode::kHost);
  EXPECT_EQ(h.name(0), "node00003");
  const std::vector<std::string> unknown = {"node00001", "login1"};
  expect_usage_error([&] { (void)Endpoints::from_ranks(f, unknown); },
                     {"rank 1", "'login1'", "does not list"});
  const std::vector<std::string> one = {"node00001"}, baddev = {"mlx5_7"};
  expect_usage_error([&] { (void)Endpoints::from_ranks(f, one, baddev); }, {"rank 0", "'mlx5_7'"});
}
