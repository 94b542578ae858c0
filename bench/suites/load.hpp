// What the load benchmarks (shift.cpp, congestion.cpp) share: who sends to whom in every step or
// pattern, which ranks are victims, and the port counters of the loaded phases. The partner
// tables and the placement are pure functions (tests/unit/load_test.cpp).
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "suites/params.hpp"
#include "suites/suite.hpp"

namespace fabscope::suites::load {

// Seeded choices that are the same with every standard library: std::mt19937_64 is specified
// bit for bit by the standard, while std::uniform_int_distribution and std::shuffle are not, so
// the reductions to a range are done here.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : engine_(seed) {}
  [[nodiscard]] std::uint64_t below(
      std::uint64_t n);  // uniform in [0, n), n >= 1 (rejection sampling)
  template <typename T>
  void shuffle(std::vector<T>& v) {  // Fisher-Yates
    for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
  }

 private:
  std::mt19937_64 engine_;
};

// shift step s (0-based): every rank i sends to (i + s + 1) mod n.
[[nodiscard]] std::vector<int> shift_partners(int n, int step);

// `steps` random derangements of 0..n-1 (no rank sends to itself), each uniform over all
// derangements (Fisher-Yates, redrawn while any rank maps to itself), one after the other from one
// generator seeded with `seed`.
[[nodiscard]] std::vector<std::vector<int>> permutation_partners(int n, int steps,
                                                                 std::uint64_t seed);

// The inverse of a permutation: from[j] = i where to[i] = j.
[[nodiscard]] std::vector<int> senders_to(const std::vector<int>& to);

// Victims of a congestion run: round(fraction * n) clamped to [2, n - 2] (two victims make a
// ring, two aggressors make a pattern).
[[nodiscard]] int victim_count(int n, double fraction);

// The victims in ring order (victim k's partner is victims[(k + 1) % V]). Placement:
//   random  any ranks;
//   leaf    whole leaves first (leaves in a seeded order, ranks of a leaf together; the last leaf
//           may be partly used);
//   spread  one rank per leaf in turn (leaves in a seeded order), as evenly as the leaves allow.
// leaf_of_rank[i] is rank i's leaf (needed for leaf and spread; -1 = unknown counts as its own
// leaf). The ring order is a seeded shuffle of the chosen victims. Throws core::UsageError for an
// unknown placement.
[[nodiscard]] std::vector<int> choose_victims(int n, double fraction, const std::string& placement,
                                              std::uint64_t seed,
                                              const std::vector<int>& leaf_of_rank);

// The aggressor patterns, over the aggressors' world ranks (ascending):
//   incast    every aggressor but the target streams to the target (a seeded choice);
//   alltoall  every aggressor streams to every other;
//   flood     every aggressor streams to one other, a seeded derangement of the aggressors.
struct PatternFlows {
  std::vector<int> to, from;
};
[[nodiscard]] PatternFlows aggressor_flows(const std::string& pattern,
                                           const std::vector<int>& aggressors, int me,
                                           std::uint64_t seed);
[[nodiscard]] int incast_target(const std::vector<int>& aggressors, std::uint64_t seed);
[[nodiscard]] const std::vector<std::string>& pattern_names();

// What shift and congestion declare alike: the hidden --test-stall RANK,WHEN hook (a rank that
// stays silent, tests/mpi/load_runs.sh), and the transport rule that every flow is one queue pair
// streaming RDMA WRITEs.
void declare_test_stall(ParamSet& set, int& rank, int& when, const char* when_name);
void validate_flows_transport(const Common& common, std::string_view kind, const Where& where);

}  // namespace fabscope::suites::load
