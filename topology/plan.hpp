// Traffic plans: which endpoint pairs are measured in which round. A round is a set of disjoint
// pairs (every endpoint in at most one pair) that run at the same time, so a plan's wall time is
// rounds x the time of one pair measurement. Plans are generated lazily, one round at a time, and
// never hold all pairs: all-pairs on 12,500 hosts is 78 M pairs.
//
// Endpoints are what `pairs` ranks stand for: one per host (its primary NIC) or one per NIC.
// Disjointness is per endpoint; with one endpoint per NIC a host can be in one pair per NIC.
//
// The plans (names as `fabscope plan` / `pairs --plan NAME` take them):
//   all-pairs     the circle schedule over all endpoints (schedule.hpp): every unordered pair
//                 exactly once, E-1 rounds (E odd: E).
//   rail-aligned  only pairs of endpoints on the same rail: the circle schedule within each rail,
//                 all rails at once (max rail size - 1 rounds). Meant for one endpoint per NIC;
//                 with one per host it equals all-pairs over the primary NICs.
//   hop-class     k partners per endpoint per hop class (same_leaf, same_pod, cross_spine), one
//                 round per class and sample: up to k rounds per class present (fewer when a
//                 class has fewer distinct circle rounds). Same leaf: a circle round within each
//                 leaf. Same pod: the leaves of a pod are paired by a circle round over them, then
//                 the endpoints of two paired leaves index by index with a rotation. Cross spine:
//                 pods are paired by a circle round over pods, endpoints of the two pods index by
//                 index with a rotation. Which circle rounds and rotations are used is drawn
//                 from `seed`. An endpoint gets exactly k partners in a class when its groups are
//                 even and of equal size; otherwise the odd one out sits out one of the k rounds
//                 (k-1) or the surplus of the larger group sits out.
//   new-rack      accepting new hosts: every pair inside the new endpoints (the circle), then
//                 `samples` rounds against existing endpoints. Existing endpoints are grouped by
//                 pod (topology order within a pod); in round j new endpoint i meets a partner
//                 in pod (i + j) mod P, so every new endpoint meets every pod once per P rounds,
//                 and the partners walk over the pod's leaves from visit to visit. samples = 0
//                 (automatic) picks the fewest rounds, at least one per pod, whose coverage of
//                 the new leaves' uplinks reaches PlanOptions::new_uplink_coverage.
//   budget        the widest plan that fits a time budget (select_plan_for_budget).
//
// Link coverage (compute_coverage). A pair exercises the host-leaf links of its two NICs. A pair
// between different leaves sends two flows (one each way, the bandwidth test in both directions);
// each flow crosses one uplink of its source leaf and one of its destination leaf.
//   - Routes known (InfiniBand forwarding tables): the flows follow the tables exactly; a
//     leaf-spine link is exercised when any flow crosses it.
//   - Routes unknown (RoCE/ECMP, or no SM data): each flow picks one of its leaf's uplinks
//     uniformly and independently (hash-based ECMP on distinct 5-tuples). A leaf L with U
//     uplinks and F flows through it leaves a given uplink unused with probability (1-1/U)^F, so
//     the reported leaf-spine figure is the EXPECTED number/fraction of links exercised. It is a
//     model of the hash, not a measurement: a skewed hash covers less.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "topology/model.hpp"

namespace fabscope::topology {

enum class EndpointMode : std::uint8_t { kHost, kNic };

struct Endpoint {
  Index host = kNone;
  Index nic = kNone;  // kNone when the host has no NIC in the model
};

// The endpoints a plan pairs, in rank order: endpoint i is rank i of `pairs`. Borrows the fabric,
// which must outlive it.
class Endpoints {
 public:
  static Endpoints per_host(const Fabric& fabric);  // every host, topology order, primary NIC
  static Endpoints per_nic(const Fabric& fabric);   // every NIC, topology order of hosts, rail
  // Rank i runs on host hostnames[i], on NIC devices[i] (empty or absent: the primary NIC).
  // Throws core::UsageError naming the first host or device the fabric does not know.
  static Endpoints from_ranks(const Fabric& fabric, std::span<const std::string> hostnames,
                              std::span<const std::string> devices = {});

  [[nodiscard]] const Fabric& fabric() const { return *fabric_; }
  [[nodiscard]] EndpointMode mode() const { return mode_; }
  [[nodiscard]] std::size_t size() const { return eps_.size(); }
  [[nodiscard]] const Endpoint& operator[](std::size_t i) const { return eps_[i]; }
  // "host" (host mode) or "host:device" (NIC mode; "host:rail<r>" when the device is unnamed).
  [[nodiscard]] std::string name(std::size_t i) const;
  [[nodiscard]] Index find(std::string_view name) const;  // kNone if absent
  [[nodiscard]] HopClass hop_class(Index a, Index b) const;
  [[nodiscard]] Index leaf(Index e) const;  // leaf of the endpoint's NIC or kNone
  [[nodiscard]] int rail(Index e) const;

 private:
  Endpoints(const Fabric& f, EndpointMode m) : fabric_(&f), mode_(m) {}
  void index_names();
  const Fabric* fabric_;
  EndpointMode mode_;
  std::vector<Endpoint> eps_;
  std::vector<std::pair<std::string, Index>> sorted_names_;
};

using Pair = std::pair<Index, Index>;  // endpoint indices; first = initiator

class Plan {
 public:
  virtual ~Plan() = default;
  [[nodiscard]] virtual std::string name() const = 0;         // "all-pairs", ...
  [[nodiscard]] virtual std::string description() const = 0;  // one line with the parameters
  [[nodiscard]] virtual std::int64_t rounds() const = 0;
  // The pairs of round r (0 <= r < rounds()), replacing the contents of `out`.
  virtual void round(std::int64_t r, std::vector<Pair>& out) const = 0;
  // Pairs in round r; the default generates the round (plans with a closed form override it).
  [[nodiscard]] virtual std::int64_t round_size(std::int64_t r) const;
  // Total pairs: the sum of round_size() (plans with a closed form override it).
  [[nodiscard]] virtual std::int64_t pairs() const;
  // Plans that pair every two endpoints of the same group exactly once (all-pairs: one group,
  // rail-aligned: one group per rail) return the group of each endpoint; coverage then has a
  // closed form and needs no streaming. Others return false.
  [[nodiscard]] virtual bool complete_groups(std::vector<std::int32_t>& group) const;
  // Plans that accept new hosts (new-rack, and plans cut from it) mark the new endpoints
  // (is_new[i] = 1) and return true; new_rack_coverage() then reports the new part of the fabric.
  [[nodiscard]] virtual bool new_endpoints(std::vector<std::uint8_t>& is_new) const;
};

struct Coverage {
  std::int64_t host_leaf_links = 0;      // NIC-leaf links in the fabric
  std::int64_t host_leaf_exercised = 0;  // exact
  std::int64_t leaf_spine_links = 0;
  double leaf_spine_exercised = 0;  // exact with routes, expected value under ECMP otherwise
  bool routes_known = false;
  [[nodiscard]] double host_leaf_fraction() const;
  [[nodiscard]] double leaf_spine_fraction() const;  // NaN when the fabric has no leaf-spine link
};

[[nodiscard]] Coverage compute_coverage(const Plan& plan, const Endpoints& endpoints);

// What a new-rack plan exercises of the new part of the fabric: the figures that say whether a
// new rack was really tested (fabric-wide coverage of a new-rack plan is small by design).
struct NewRackCoverage {
  std::int64_t new_endpoints = 0, existing_endpoints = 0;
  std::int64_t refs = 0;       // rounds against existing endpoints (reference partners each)
  std::int64_t new_links = 0;  // host-leaf cables of the new endpoints' NICs
  std::int64_t new_links_exercised = 0;
  std::int64_t new_uplinks = 0;      // leaf-spine cables of the leaves holding new endpoints
  double new_uplinks_exercised = 0;  // exact with routes, expected under ECMP otherwise
  std::int64_t pods = 0;             // pods holding existing endpoints
  std::int64_t min_pods_met = 0;     // the fewest of them any new endpoint was paired into
  std::int64_t existing_met = 0;     // distinct existing endpoints paired with a new one
  bool routes_known = false;
  [[nodiscard]] double new_uplink_fraction() const;  // NaN when the new leaves have no uplink
};

// nullopt for plans without new endpoints (Plan::new_endpoints false).
[[nodiscard]] std::optional<NewRackCoverage> new_rack_coverage(const Plan& plan,
                                                               const Endpoints& endpoints);
// One line for a person: "new part: 16 new endpoints, host links 16/16, uplinks of the new leaves
// 100.0% (expected, ECMP), every new endpoint met 4 of 4 pods, 64 reference endpoints".
[[nodiscard]] std::string format_new_rack_coverage(const NewRackCoverage& c);

struct PlanOptions {
  double pair_time_s = 1.0;       // wall time of one round (all its pairs run at once)
  double round_overhead_s = 0.0;  // per-round synchronisation cost added to the estimate
  int k = 2;                      // hop-class: partners per endpoint per class
  std::uint64_t seed = 1;
  std::vector<std::string> new_hosts;  // new-rack: rack or host names
  // new-rack: rounds against existing endpoints (each new endpoint meets this many reference
  // endpoints, one per round, every pod in turn). 0 = auto: the fewest rounds (at least one per
  // pod) whose coverage of the new leaves' uplinks reaches new_uplink_coverage.
  int new_rack_samples = 0;
  double new_uplink_coverage = 0.95;  // new-rack auto size: target fraction of new leaves' uplinks
  std::optional<double> budget_s;     // budget: the time the plan may take
};

// The plan of that name: "all-pairs", "rail-aligned", "hop-class", "new-rack", "budget".
// Throws core::UsageError for an unknown name or missing options (new-rack without new hosts,
// budget without a budget). The plan borrows `endpoints`.
[[nodiscard]] std::unique_ptr<Plan> make_plan(std::string_view name, const Endpoints& endpoints,
                                              const PlanOptions& options);
[[nodiscard]] std::vector<std::string> plan_names();

// The first `max_rounds` rounds of another plan (owned).
[[nodiscard]] std::unique_ptr<Plan> truncate_plan(std::unique_ptr<Plan> plan,
                                                  std::int64_t max_rounds);

struct PlanSummary {
  std::string name;
  std::string description;
  std::int64_t rounds = 0;
  std::int64_t pairs = 0;
  double est_wall_s = 0;
  Coverage coverage;
  std::optional<NewRackCoverage> new_rack;  // plans with new endpoints
  bool fits_budget = true;                  // true when no budget was given
  bool chosen = false;                      // the budget's choice
};

[[nodiscard]] PlanSummary summarize(const Plan& plan, const Endpoints& endpoints,
                                    const PlanOptions& options);

struct BudgetChoice {
  std::unique_ptr<Plan> plan;
  std::vector<PlanSummary> candidates;  // widest first; the chosen one is marked
  std::string reason;
};

// The widest plan whose estimated wall time fits options.budget_s (rounds <= budget / (pair time
// + round overhead)). Candidates, widest first: all-pairs; rail-aligned (several rails, one
// endpoint per NIC); hop-class with the largest k that fits, its spare rounds filled with the
// first rounds of the widest plan that did not fit (rail-aligned or all-pairs). With new hosts:
// new-rack with as many rounds against existing hosts as fit. When even those do not fit, the
// plan is cut to the rounds that fit. Throws core::UsageError when not one round fits.
[[nodiscard]] BudgetChoice select_plan_for_budget(const Endpoints& endpoints,
                                                  const PlanOptions& options);

// What `fabscope plan` prints: every plan that applies to these endpoints (new-rack only with
// new hosts; the budget choice when a budget is given), in the order above.
[[nodiscard]] std::vector<PlanSummary> summarize_plans(const Endpoints& endpoints,
                                                       const PlanOptions& options);
[[nodiscard]] std::string format_plan_summaries(std::span<const PlanSummary> summaries);

}  // namespace fabscope::topology
