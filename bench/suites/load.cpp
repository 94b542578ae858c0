#include "suites/load.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.hpp"
#include "core/strings.hpp"
#include "transport/multi.hpp"

namespace fabscope::suites::load {
namespace {
// Independent streams for the independent choices of one seed.
constexpr std::uint64_t kFloodStream = 0x9e3779b97f4a7c15ULL;
constexpr std::uint64_t kIncastStream = 0xbf58476d1ce4e5b9ULL;
}  // namespace

std::uint64_t Rng::below(std::uint64_t n) {
  // Rejection sampling over the largest multiple of n: every value equally likely.
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  for (;;) {
    const std::uint64_t x = engine_();
    if (x < limit) return x % n;
  }
}

std::vector<int> shift_partners(int n, int step) {
  std::vector<int> to(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) to[static_cast<std::size_t>(i)] = (i + step + 1) % n;
  return to;
}

std::vector<std::vector<int>> permutation_partners(int n, int steps, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<std::vector<int>> out;
  std::vector<int> p(static_cast<std::size_t>(n));
  for (int s = 0; s < steps; ++s) {
    for (bool fixed_point = true;
         fixed_point;) {  // a uniform permutation is a derangement with p ~ 1/e
      std::iota(p.begin(), p.end(), 0);
      rng.shuffle(p);
      fixed_point = false;
      for (int i = 0; i < n; ++i) fixed_point = fixed_point || p[static_cast<std::size_t>(i)] == i;
    }
    out.push_back(p);
  }
  return out;
}

std::vector<int> senders_to(const std::vector<int>& to) {
  std::vector<int> from(to.size(), -1);
  for (std::size_t i = 0; i < to.size(); ++i)
    from[static_cast<std::size_t>(to[i])] = static_cast<int>(i);
  return from;
}

int victim_count(int n, double fraction) {
  const auto v = static_cast<int>(std::lround(fraction * n));
  return std::clamp(v, 2, std::max(2, n - 2));
}

std::vector<int> choose_victims(int n, double fraction, const std::string& placement,
                                std::uint64_t seed, const std::vector<int>& leaf_of_rank) {
  const auto v = static_cast<std::size_t>(victim_count(n, fraction));
  Rng rng(seed);
  std::vector<int> chosen;
  if (placement == "random") {
    chosen.resize(static_cast<std::size_t>(n));
    std::iota(chosen.begin(), chosen.end(), 0);
    rng.shuffle(chosen);
    chosen.resize(v);
  } else if (placement == "leaf" || placement == "spread") {
    // Ranks grouped by leaf (a rank of unknown leaf is a group of its own), groups in a seeded
    // order.
    std::map<std::int64_t, std::vector<int>> by_leaf;
    for (int r = 0; r < n; ++r) {
      const int leaf = static_cast<std::size_t>(r) < leaf_of_rank.size()
                           ? leaf_of_rank[static_cast<std::size_t>(r)]
                           : -1;
      by_leaf[leaf >= 0 ? leaf : -1 - static_cast<std::int64_t>(r)].push_back(r);
    }
    std::vector<std::vector<int>> groups;
    groups.reserve(by_leaf.size());
    for (auto& [leaf, ranks] : by_leaf) groups.push_back(std::move(ranks));
    rng.shuffle(groups);
    for (auto& g : groups) rng.shuffle(g);
    if (placement == "leaf") {
      for (const auto& g : groups)
        for (const int r : g)
          if (chosen.size() < v) chosen.push_back(r);
    } else {
      for (std::size_t k = 0; chosen.size() < v; ++k)
        for (const auto& g : groups)
          if (k < g.size() && chosen.size() < v) chosen.push_back(g[k]);
    }
  } else {
    throw core::UsageError(
        fmt::format("--placement: unknown placement '{}'; use random, leaf or spread", placement));
  }
  rng.shuffle(chosen);  // a random ring
  return chosen;
}

void declare_test_stall(ParamSet& set, int& rank, int& when, const char* when_name) {
  rank = -1;
  when = -1;
  set.custom(
         "test_stall", "", "",
         [&rank, &when, when_name](const std::string& text, const std::string& where) {
           const auto parts = split_list(text);
           try {
             if (parts.size() == 2) {
               rank = std::stoi(parts[0]);
               when = std::stoi(parts[1]);
               return;
             }
           } catch (const std::exception&) {
           }
           throw core::UsageError(fmt::format("{} '{}': give RANK,{}", where, text, when_name));
         },
         [&rank, &when] { return fmt::format("{},{}", rank, when); })
      .hide();
}

void validate_flows_transport(const Common& common, std::string_view kind, const Where& where) {
  const auto& o = common.options;
  if (common.transport == transport::Kind::kVerbs && o.verb != "write") {
    where.fail(fmt::format("{} {}: {} streams RDMA WRITEs only; drop the option (write is the default)",
                           where.name("verb"), o.verb, kind));
  }
  if (o.qps != 1) {
    where.fail(fmt::format("{} {}: {} runs one queue pair per flow; drop the option", where.name("qps"), o.qps, kind));
  }
}

const std::vector<std::string>& pattern_names() {
  static const std::vector<std::string> names{"incast", "alltoall", "flood"};
  return names;
}

int incast_target(const std::vector<int>& aggressors, std::uint64_t seed) {
  Rng rng(seed ^ kIncastStream);
  return aggressors[rng.below(aggressors.size())];
}

PatternFlows aggressor_flows(const std::string& pattern, const std::vector<int>& aggressors, int me,
                             std::uint64_t seed) {
  PatternFlows f;
  const auto it = std::find(aggressors.begin(), aggressors.end(), me);
  if (it == aggressors.end()) return f;
  const auto index = static_cast<std::size_t>(it - aggressors.begin());
  if (pattern == "incast") {
    const int target = incast_target(aggressors, seed);
    if (me == target) {
      for (const int a : aggressors)
        if (a != me) f.from.push_back(a);
    } else {
      f.to.push_back(target);
    }
  } else if (pattern == "alltoall") {
    for (const int a : aggressors) {
      if (a == me) continue;
      f.to.push_back(a);
      f.from.push_back(a);
    }
  } else if (pattern == "flood") {
    const auto perm =
        permutation_partners(static_cast<int>(aggressors.size()), 1, seed ^ kFloodStream)[0];
    f.to.push_back(aggressors[static_cast<std::size_t>(perm[index])]);
    f.from.push_back(aggressors[static_cast<std::size_t>(senders_to(perm)[index])]);
  } else {
    throw core::UsageError(
        fmt::format("--patterns: unknown pattern '{}'; use incast, alltoall or flood", pattern));
  }
  return f;
}

}  // namespace fabscope::suites::load
