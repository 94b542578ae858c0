#include "topology/plan.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>

#include "core/error.hpp"
#include "core/units.hpp"
#include "topology/schedule.hpp"

namespace fabscope::topology {
namespace {

std::size_t uz(std::int64_t i) { return static_cast<std::size_t>(i); }

std::uint64_t mix(std::uint64_t x) {  // splitmix64 finaliser
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
std::uint64_t hash(std::uint64_t seed, std::uint64_t a, std::uint64_t b = 0, std::uint64_t c = 0,
                   std::uint64_t d = 0) {
  return mix(mix(mix(mix(seed ^ a) ^ b) ^ c) ^ d);
}

// Circle round number `j` (0 <= j < k) of a group of m members, spread over the m's rounds and
// offset by the group's hash; -1 when the group has fewer rounds than j + 1.
std::int64_t sample_round(std::int64_t m, std::int64_t j, std::int64_t k, std::uint64_t h) {
  const std::int64_t r = circle_rounds(m);
  if (j >= r) return -1;
  const std::int64_t step = std::max<std::int64_t>(1, r / std::max<std::int64_t>(1, k));
  return static_cast<std::int64_t>(
      (h % static_cast<std::uint64_t>(r) + static_cast<std::uint64_t>(j * step)) %
      static_cast<std::uint64_t>(r));
}

// ----------------------------------------------------------------------------------- all-pairs

class AllPairsPlan final : public Plan {
 public:
  explicit AllPairsPlan(const Endpoints& e) : n_(static_cast<std::int64_t>(e.size())) {}
  std::string name() const override { return "all-pairs"; }
  std::string description() const override {
    return fmt::format("every pair of {} endpoints once (circle schedule)", n_);
  }
  std::int64_t rounds() const override { return circle_rounds(n_); }
  void round(std::int64_t r, std::vector<Pair>& out) const override {
    out.clear();
    for (std::int64_t x = 0; x < n_; ++x) {
      const std::int64_t p = circle_partner(n_, r, x);
      if (p > x) out.emplace_back(static_cast<Index>(x), static_cast<Index>(p));
    }
  }
  std::int64_t pairs() const override { return n_ * (n_ - 1) / 2; }
  std::int64_t round_size(std::int64_t /*r*/) const override { return n_ / 2; }
  bool complete_groups(std::vector<std::int32_t>& g) const override {
    g.assign(uz(n_), 0);
    return true;
  }

 private:
  std::int64_t n_;
};

// -------------------------------------------------------------------------------- rail-aligned

class RailAlignedPlan final : public Plan {
 public:
  explicit RailAlignedPlan(const Endpoints& e) : group_(e.size()) {
    std::map<int, std::int32_t> ids;
    for (std::size_t i = 0; i < e.size(); ++i) {
      const int rail = e.rail(static_cast<Index>(i));
      const auto [it, ins] = ids.emplace(rail, static_cast<std::int32_t>(members_.size()));
      if (ins) members_.emplace_back();
      members_[uz(it->second)].push_back(static_cast<Index>(i));
      group_[i] = it->second;
    }
    for (const auto& m : members_)
      rounds_ = std::max(rounds_, circle_rounds(static_cast<std::int64_t>(m.size())));
  }
  std::string name() const override { return "rail-aligned"; }
  std::string description() const override {
    return fmt::format("every same-rail pair once, {} rails in parallel", members_.size());
  }
  std::int64_t rounds() const override { return rounds_; }
  void round(std::int64_t r, std::vector<Pair>& out) const override {
    out.clear();
    for (const auto& m : members_) {
      const auto n = static_cast<std::int64_t>(m.size());
      if (r >= circle_rounds(n)) continue;
      for (std::int64_t x = 0; x < n; ++x) {
        const std::int64_t p = circle_partner(n, r, x);
        if (p > x) out.emplace_back(m[uz(x)], m[uz(p)]);
      }
    }
  }
  std::int64_t pairs() const override {
    std::int64_t s = 0;
    for (const auto& m : members_)
      s += static_cast<std::int64_t>(m.size()) * (static_cast<std::int64_t>(m.size()) - 1) / 2;
    return s;
  }
  std::int64_t round_size(std::int64_t r) const override {
    std::int64_t s = 0;
    for (const auto& m : members_) {
      const auto n = static_cast<std::int64_t>(m.size());
      if (r < circle_rounds(n)) s += n / 2;
    }
    return s;
  }
  bool complete_groups(std::vector<std::int32_t>& g) const override {
    g = group_;
    return true;
  }

 private:
  std::vector<std::vector<Index>> members_;
  std::vector<std::int32_t> group_;
  std::int64_t rounds_ = 0;
};

// ----------------------------------------------------------------------------------- hop-class

class HopClassPlan final : public Plan {
 public:
  HopClassPlan(const Endpoints& e, int k, std::uint64_t seed) : e_(e), k_(k), seed_(seed) {
    const Fabric& f = e.fabric();
    std::map<Index, std::int32_t> leaf_ids;
    for (std::size_t i = 0; i < e.size(); ++i) {
      const Index leaf = e.leaf(static_cast<Index>(i));
      if (leaf == kNone || f.switches()[uz(leaf)].pod == kNone) continue;
      const auto [it, ins] =
          leaf_ids.emplace(leaf, static_cast<std::int32_t>(leaf_members_.size()));
      if (ins) {
        leaf_members_.emplace_back();
        leaf_pod_.push_back(f.switches()[uz(leaf)].pod);
      }
      leaf_members_[uz(it->second)].push_back(static_cast<Index>(i));
    }
    std::map<Index, std::int32_t> pod_ids;
    for (std::size_t l = 0; l < leaf_members_.size(); ++l) {
      const auto [it, ins] =
          pod_ids.emplace(leaf_pod_[l], static_cast<std::int32_t>(pod_leaves_.size()));
      if (ins) pod_leaves_.emplace_back();
      pod_leaves_[uz(it->second)].push_back(static_cast<std::int32_t>(l));
    }
    pod_members_.resize(pod_leaves_.size());
    for (std::size_t p = 0; p < pod_leaves_.size(); ++p) {
      for (const auto l : pod_leaves_[p]) {
        pod_members_[p].insert(pod_members_[p].end(), leaf_members_[uz(l)].begin(),
                               leaf_members_[uz(l)].end());
      }
    }
    if (std::any_of(leaf_members_.begin(), leaf_members_.end(),
                    [](const auto& m) { return m.size() >= 2; })) {
      classes_.push_back(HopClass::kSameLeaf);
    }
    if (std::any_of(pod_leaves_.begin(), pod_leaves_.end(),
                    [](const auto& m) { return m.size() >= 2; })) {
      classes_.push_back(HopClass::kSamePod);
    }
    if (pod_leaves_.size() >= 2) classes_.push_back(HopClass::kCrossSpine);
    // A class has at most as many distinct sample rounds as its largest group has circle rounds.
    for (const HopClass c : classes_) {
      std::int64_t useful = 0;
      if (c == HopClass::kSameLeaf) {
        for (const auto& m : leaf_members_)
          useful = std::max(useful, circle_rounds(static_cast<std::int64_t>(m.size())));
      } else if (c == HopClass::kSamePod) {
        for (const auto& l : pod_leaves_)
          useful = std::max(useful, circle_rounds(static_cast<std::int64_t>(l.size())));
      } else {
        useful = circle_rounds(static_cast<std::int64_t>(pod_members_.size()));
      }
      first_round_.push_back(rounds_);
      rounds_ += std::min<std::int64_t>(k_, useful);
      max_useful_ = std::max(max_useful_, useful);
    }
  }
  std::string name() const override { return "hop-class"; }
  std::string description() const override {
    std::string cls;
    for (const HopClass c : classes_) cls += (cls.empty() ? "" : ", ") + std::string(to_string(c));
    return fmt::format("k={} partners per endpoint per hop class ({}), seed {}", k_, cls, seed_);
  }
  std::int64_t rounds() const override { return rounds_; }
  [[nodiscard]] int max_useful_k() const {
    return static_cast<int>(std::max<std::int64_t>(1, max_useful_));
  }
  void round(std::int64_t r, std::vector<Pair>& out) const override {
    out.clear();
    std::size_t ci = 0;
    while (ci + 1 < classes_.size() && r >= first_round_[ci + 1]) ++ci;
    const HopClass c = classes_[ci];
    const std::int64_t j = r - first_round_[ci];
    const auto cls = static_cast<std::uint64_t>(c);
    const auto add = [&](Index a, Index b) {
      if (e_.hop_class(a, b) == c) out.emplace_back(std::min(a, b), std::max(a, b));
    };
    if (c == HopClass::kSameLeaf) {
      for (std::size_t l = 0; l < leaf_members_.size(); ++l) {
        const auto& m = leaf_members_[l];
        const auto n = static_cast<std::int64_t>(m.size());
        const std::int64_t t = sample_round(n, j, k_, hash(seed_, cls, l));
        if (t < 0) continue;
        for (std::int64_t x = 0; x < n; ++x) {
          const std::int64_t p = circle_partner(n, t, x);
          if (p > x) add(m[uz(x)], m[uz(p)]);
        }
      }
    } else if (c == HopClass::kSamePod) {
      for (std::size_t p = 0; p < pod_leaves_.size(); ++p) {
        const auto& leaves = pod_leaves_[p];
        const auto q = static_cast<std::int64_t>(leaves.size());
        const std::int64_t t = sample_round(q, j, k_, hash(seed_, cls, p));
        if (t < 0) continue;
        for (std::int64_t x = 0; x < q; ++x) {
          const std::int64_t y = circle_partner(q, t, x);
          if (y <= x) continue;
          const auto& mx = leaf_members_[uz(leaves[uz(x)])];
          const auto& my = leaf_members_[uz(leaves[uz(y)])];
          pair_up(mx, my,
                  hash(seed_, cls, p, static_cast<std::uint64_t>(j), static_cast<std::uint64_t>(x)),
                  add);
        }
      }
    } else {
      const auto q = static_cast<std::int64_t>(pod_members_.size());
      const std::int64_t t = sample_round(q, j, k_, hash(seed_, cls));
      if (t < 0) return;
      for (std::int64_t x = 0; x < q; ++x) {
        const std::int64_t y = circle_partner(q, t, x);
        if (y <= x) continue;
        pair_up(pod_members_[uz(x)], pod_members_[uz(y)],
                hash(seed_, cls, static_cast<std::uint64_t>(j), static_cast<std::uint64_t>(x)),
                add);
      }
    }
  }

 private:
  template <typename Add>
  static void pair_up(const std::vector<Index>& a, const std::vector<Index>& b, std::uint64_t h,
                      Add& add) {
    const std::size_t n = std::min(a.size(), b.size());
    const std::size_t shift = h % b.size();
    for (std::size_t i = 0; i < n; ++i) add(a[i], b[(i + shift) % b.size()]);
  }

  const Endpoints& e_;
  int k_;
  std::uint64_t seed_;
  std::vector<std::vector<Index>> leaf_members_;
  std::vector<Index> leaf_pod_;
  std::vector<std::vector<std::int32_t>> pod_leaves_;
  std::vector<std::vector<Index>> pod_members_;
  std::vector<HopClass> classes_;
  std::vector<std::int64_t> first_round_;
  std::int64_t rounds_ = 0;
  std::int64_t max_useful_ = 0;
};

// ------------------------------------------------------------------------------------ new-rack

// "r1, r2, ... (12 racks)": the first racks of the fabric, for messages about --new.
std::string some_racks(const Fabric& f) {
  if (f.racks().empty()) return "the topology has no racks; name hosts";
  std::string s;
  for (std::size_t r = 0; r < f.racks().size() && r < 8; ++r) s += (r ? ", " : "") + f.racks()[r];
  if (f.racks().size() > 8) s += fmt::format(", ... ({} racks)", f.racks().size());
  return "racks: " + s;
}

class NewRackPlan final : public Plan {
 public:
  NewRackPlan(const Endpoints& e, const std::vector<std::string>& names, int samples) {
    const Fabric& f = e.fabric();
    std::vector<std::uint8_t> is_new(f.hosts().size(), 0);
    for (const std::string& name : names) {
      const Index rack = f.find_rack(name);
      const Index host = f.find_host(name);
      if (rack != kNone) {
        for (std::size_t h = 0; h < f.hosts().size(); ++h) {
          if (f.hosts()[h].rack == rack) is_new[h] = 1;
        }
      } else if (host != kNone) {
        is_new[uz(host)] = 1;
      } else {
        throw core::UsageError(fmt::format(
            "--new: '{}' is neither a rack nor a host of the topology ({}); give racks or hosts "
            "it has ({})",
            name, f.source(), some_racks(f)));
      }
    }
    std::vector<Index> pos(f.hosts().size());
    const auto order = f.host_order();
    for (std::size_t i = 0; i < order.size(); ++i) pos[uz(order[i])] = static_cast<Index>(i);
    std::vector<Index> old;
    for (std::size_t i = 0; i < e.size(); ++i) {
      (is_new[uz(e[i].host)] ? new_ : old).push_back(static_cast<Index>(i));
    }
    if (new_.empty()) {
      throw core::UsageError(
          "--new: the new racks/hosts have no endpoint in this run; name racks or hosts that run "
          "a rank");
    }
    // Existing endpoints by pod (unknown pod last), each in topology order.
    std::sort(old.begin(), old.end(), [&](Index a, Index b) {
      return std::pair(pos[uz(e[uz(a)].host)], a) < std::pair(pos[uz(e[uz(b)].host)], b);
    });
    std::map<Index, std::size_t> group_of_pod;
    for (const Index x : old) {
      const Index leaf = e.leaf(x);
      const Index pod = leaf == kNone ? kNone : f.switches()[uz(leaf)].pod;
      const auto [it, ins] = group_of_pod.emplace(
          pod == kNone ? std::numeric_limits<Index>::max() : pod, groups_.size());
      if (ins) groups_.emplace_back();
      groups_[it->second].push_back(x);
    }
    // Within a pod, leaf-interleaved order (the first endpoint of every leaf, then the second of
    // every leaf, ...), so consecutive partners sit on different leaves.
    for (auto& g : groups_) {
      std::map<Index, std::vector<Index>> by_leaf;
      std::vector<Index> leaves;
      for (const Index x : g) {
        auto [it, ins] = by_leaf.try_emplace(e.leaf(x));
        if (ins) leaves.push_back(e.leaf(x));
        it->second.push_back(x);
      }
      const std::size_t n = g.size();
      g.clear();
      for (std::size_t k = 0; g.size() < n; ++k) {
        for (const Index l : leaves) {
          if (k < by_leaf[l].size()) g.push_back(by_leaf[l][k]);
        }
      }
    }
    n_old_ = static_cast<std::int64_t>(old.size());
    // samples <= 0: one round per pod here; make_new_rack() then sizes it to a coverage target.
    set_samples(samples > 0 ? samples : static_cast<std::int64_t>(groups_.size()));
    part1_ = circle_rounds(static_cast<std::int64_t>(new_.size()));
    n_endpoints_ = e.size();
  }
  // At most as many rounds as it takes every new endpoint to meet every existing one (or, with
  // fewer existing endpoints than new ones, every existing one to meet every new one).
  void set_samples(std::int64_t samples) { samples_ = std::min<std::int64_t>(samples, max_samples()); }
  [[nodiscard]] std::int64_t max_samples() const {
    return std::max<std::int64_t>(n_old_, static_cast<std::int64_t>(new_.size()));
  }
  [[nodiscard]] std::int64_t pod_groups() const {
    return static_cast<std::int64_t>(groups_.size());
  }
  [[nodiscard]] std::int64_t existing() const { return n_old_; }
  bool new_endpoints(std::vector<std::uint8_t>& is_new) const override {
    is_new.assign(n_endpoints_, 0);
    for (const Index x : new_) is_new[uz(x)] = 1;
    return true;
  }
  std::string name() const override { return "new-rack"; }
  std::string description() const override {
    return fmt::format(
        "{} new endpoints: all pairs among them ({} rounds), then {} rounds against "
        "the {} existing endpoints of {} pods",
        new_.size(), part1_, samples_, n_old_, groups_.size());
  }
  std::int64_t rounds() const override { return part1_ + samples_; }
  // Part 2, round j: new endpoint i meets pod group (i + j) mod G, so every new endpoint meets
  // every pod once per G rounds. In a group (leaf-interleaved order) the partners of round j are
  // positions j * per_group + rank, rank = i / G: different leaves within a round, and different
  // endpoints from round to round until the group is used up. A group with fewer existing
  // endpoints (size) than new ones sent to it this round (count) serves `size` of them, a window
  // that moves by `size` every G rounds (after the new endpoints went round every pod once), so
  // each new endpoint gets its turn (a launch names a few reference hosts per pod for a whole rack).
  void round(std::int64_t r, std::vector<Pair>& out) const override {
    out.clear();
    const auto n_new = static_cast<std::int64_t>(new_.size());
    if (r < part1_) {
      for (std::int64_t x = 0; x < n_new; ++x) {
        const std::int64_t p = circle_partner(n_new, r, x);
        if (p > x) out.emplace_back(new_[uz(x)], new_[uz(p)]);
      }
      return;
    }
    const std::int64_t j = r - part1_;
    const auto G = static_cast<std::int64_t>(groups_.size());
    const std::int64_t per_group = (n_new + G - 1) / G;
    for (std::int64_t i = 0; i < n_new; ++i) {
      const std::int64_t gi = (i + j) % G;
      const auto& g = groups_[uz(gi)];
      const auto size = static_cast<std::int64_t>(g.size());
      const std::int64_t rank = i / G;
      const std::int64_t count = assigned(gi, j, n_new, G);
      if (count <= size) {
        out.emplace_back(new_[uz(i)], g[uz((j * per_group + rank) % size)]);
        continue;
      }
      const std::int64_t slot = ((rank - (j / G) * size) % count + count) % count;
      if (slot < size) out.emplace_back(new_[uz(i)], g[uz(slot)]);
    }
  }
  std::int64_t round_size(std::int64_t r) const override {
    const auto n_new = static_cast<std::int64_t>(new_.size());
    if (r < part1_) return n_new / 2;
    const std::int64_t j = r - part1_;
    const auto G = static_cast<std::int64_t>(groups_.size());
    std::int64_t s = 0;
    for (std::int64_t g = 0; g < G; ++g) {
      s += std::min(assigned(g, j, n_new, G), static_cast<std::int64_t>(groups_[uz(g)].size()));
    }
    return s;
  }
  // How many new endpoints part 2's round j sends to group g: i with (i + j) mod G == g, i.e.
  // i = first, first + G, ...
  [[nodiscard]] static std::int64_t assigned(std::int64_t g, std::int64_t j, std::int64_t n_new,
                                             std::int64_t G) {
    const std::int64_t first = ((g - j) % G + G) % G;
    return first < n_new ? (n_new - 1 - first) / G + 1 : 0;
  }
  [[nodiscard]] std::int64_t part1() const { return part1_; }

 private:
  std::vector<Index> new_;
  std::vector<std::vector<Index>> groups_;
  std::int64_t n_old_ = 0, samples_ = 0, part1_ = 0;
  std::size_t n_endpoints_ = 0;
};

// ----------------------------------------------------------------------------------- truncated

class TruncatedPlan final : public Plan {
 public:
  TruncatedPlan(std::unique_ptr<Plan> p, std::int64_t n)
      : p_(std::move(p)), n_(std::min(n, p_->rounds())) {}
  std::string name() const override { return p_->name(); }
  std::string description() const override {
    return fmt::format("{}; cut to the first {} of {} rounds", p_->description(), n_, p_->rounds());
  }
  std::int64_t rounds() const override { return n_; }
  void round(std::int64_t r, std::vector<Pair>& out) const override { p_->round(r, out); }
  std::int64_t round_size(std::int64_t r) const override { return p_->round_size(r); }
  bool new_endpoints(std::vector<std::uint8_t>& is_new) const override {
    return p_->new_endpoints(is_new);
  }

 private:
  std::unique_ptr<Plan> p_;
  std::int64_t n_;
};

// -------------------------------------------------------------------------------------- concat

class ConcatPlan final : public Plan {
 public:
  ConcatPlan(std::unique_ptr<Plan> a, std::unique_ptr<Plan> b)
      : a_(std::move(a)), b_(std::move(b)) {}
  std::string name() const override { return a_->name() + "+" + b_->name(); }
  std::string description() const override {
    return fmt::format("{} rounds of {}, then {} rounds of {}", a_->rounds(), a_->description(),
                       b_->rounds(), b_->description());
  }
  std::int64_t rounds() const override { return a_->rounds() + b_->rounds(); }
  void round(std::int64_t r, std::vector<Pair>& out) const override {
    if (r < a_->rounds())
      a_->round(r, out);
    else
      b_->round(r - a_->rounds(), out);
  }
  std::int64_t round_size(std::int64_t r) const override {
    return r < a_->rounds() ? a_->round_size(r) : b_->round_size(r - a_->rounds());
  }
  std::int64_t pairs() const override { return a_->pairs() + b_->pairs(); }

 private:
  std::unique_ptr<Plan> a_, b_;
};

// ------------------------------------------------------------------------------------ coverage

struct CoverageCounter {
  const Endpoints& e;
  const Fabric& f;
  std::vector<std::uint8_t> used_nic;
  std::vector<double> flows;           // per switch (leaves), ECMP model
  std::vector<std::uint64_t> visited;  // (switch, lid) bitset, routes
  std::vector<std::uint8_t> link_used;
  std::size_t lids = 0;

  // Early exit: once every endpoint NIC is used and (ECMP model) every leaf holding endpoints
  // has so many flows that (1-1/U)^F < 1e-12, no later pair changes the figures.
  std::int64_t nics_to_use = 0, nics_used = 0;
  std::vector<double> saturate_at;  // per switch: flows that saturate it; 0 = not a leaf of ours
  std::int64_t leaves_open = 0;

  explicit CoverageCounter(const Endpoints& ep) : e(ep), f(ep.fabric()) {
    used_nic.assign(f.nics().size(), 0);
    std::vector<std::uint8_t> mine(f.nics().size(), 0);
    saturate_at.assign(f.switches().size(), 0);
    for (std::size_t i = 0; i < e.size(); ++i) {
      const Index nic = e[i].nic;
      if (nic == kNone || mine[uz(nic)]) continue;
      mine[uz(nic)] = 1;
      ++nics_to_use;
      const Index leaf = f.nics()[uz(nic)].leaf;
      const int u = leaf == kNone ? 0 : f.uplinks(leaf);
      if (u > 0 && saturate_at[uz(leaf)] == 0) {
        saturate_at[uz(leaf)] = u == 1 ? 1.0 : std::ceil(std::log(1e-12) / std::log(1.0 - 1.0 / u));
        ++leaves_open;
      }
    }
    if (f.has_routes()) {
      for (const auto& t : f.lfts()) lids = std::max(lids, t.size());
      visited.assign((f.switches().size() * lids + 63) / 64, 0);
      link_used.assign(f.links().size(), 0);
    } else {
      flows.assign(f.switches().size(), 0);
    }
  }
  void walk(Index sw, Index dst_nic) {
    const std::uint16_t lid = f.nics()[uz(dst_nic)].lid;
    if (lid == 0) return;
    for (int step = 0; step < 64 && sw != kNone; ++step) {
      const std::size_t key = uz(sw) * lids + lid;
      if (lid >= lids || (visited[key / 64] >> (key % 64) & 1U) != 0) return;
      visited[key / 64] |= std::uint64_t{1} << (key % 64);
      const auto& lft = f.lfts()[uz(sw)];
      if (lid >= lft.size() || lft[lid] == kNoPort || lft[lid] == 0) return;
      const Index li = f.port_link(sw, lft[lid]);
      if (li == kNone) return;
      link_used[uz(li)] = 1;
      const Link& l = f.links()[uz(li)];
      const LinkEnd& o =
          (l.a.kind == NodeKind::kSwitch && l.a.index == sw && l.a.port == lft[lid]) ? l.b : l.a;
      if (o.kind == NodeKind::kNic) return;
      sw = o.index;
    }
  }
  void add(Index a, Index b) {
    const Index na = e[uz(a)].nic, nb = e[uz(b)].nic;
    if (na == kNone || nb == kNone || na == nb) return;
    nics_used += (used_nic[uz(na)] == 0) + (used_nic[uz(nb)] == 0);
    used_nic[uz(na)] = 1;
    used_nic[uz(nb)] = 1;
    const Index la = f.nics()[uz(na)].leaf, lb = f.nics()[uz(nb)].leaf;
    if (la == kNone || lb == kNone || la == lb) return;
    if (f.has_routes()) {
      walk(la, nb);
      walk(lb, na);
    } else {
      for (const Index l : {la, lb}) {
        const double before = flows[uz(l)];
        flows[uz(l)] += 2;
        const double at = saturate_at[uz(l)];
        leaves_open -= at > 0 && before < at && flows[uz(l)] >= at;
      }
    }
  }
  [[nodiscard]] bool saturated() const {
    return !f.has_routes() && nics_used >= nics_to_use && leaves_open <= 0;
  }
  Coverage finish() const {
    Coverage c;
    c.routes_known = f.has_routes();
    c.host_leaf_links = f.host_link_count();
    c.leaf_spine_links = f.leaf_spine_link_count();
    for (std::size_t n = 0; n < used_nic.size(); ++n) {
      c.host_leaf_exercised += used_nic[n] != 0 && f.nic_link(static_cast<Index>(n)) != kNone;
    }
    if (f.has_routes()) {
      for (std::size_t li = 0; li < link_used.size(); ++li) {
        c.leaf_spine_exercised +=
            link_used[li] != 0 && f.is_leaf_spine_link(static_cast<Index>(li));
      }
    } else {
      for (std::size_t s = 0; s < flows.size(); ++s) {
        const int u = f.uplinks(static_cast<Index>(s));
        if (u == 0 || flows[s] <= 0) continue;
        c.leaf_spine_exercised += u * (1.0 - std::pow(1.0 - 1.0 / u, flows[s]));
      }
    }
    return c;
  }
};

Coverage closed_form_coverage(const std::vector<std::int32_t>& group, const Endpoints& e) {
  const Fabric& f = e.fabric();
  CoverageCounter cc(e);
  const std::int32_t G = group.empty() ? 0 : *std::max_element(group.begin(), group.end()) + 1;
  std::vector<std::int64_t> size(uz(G), 0), known(uz(G), 0);
  for (std::size_t i = 0; i < e.size(); ++i) {
    ++size[uz(group[i])];
    if (e[i].nic != kNone && f.nics()[uz(e[i].nic)].leaf != kNone) ++known[uz(group[i])];
  }
  for (std::size_t i = 0; i < e.size(); ++i) {
    if (e[i].nic != kNone && size[uz(group[i])] >= 2) cc.used_nic[uz(e[i].nic)] = 1;
  }
  // Endpoints per (leaf, group).
  std::map<std::pair<Index, std::int32_t>, std::int64_t> at;
  for (std::size_t i = 0; i < e.size(); ++i) {
    if (e[i].nic == kNone) continue;
    const Index leaf = f.nics()[uz(e[i].nic)].leaf;
    if (leaf != kNone) ++at[{leaf, group[i]}];
  }
  if (!f.has_routes()) {
    for (const auto& [key, n] : at) {
      cc.flows[uz(key.first)] +=
          2.0 * static_cast<double>(n) * static_cast<double>(known[uz(key.second)] - n);
    }
  } else {
    // Every leaf sends to every endpoint of the groups it holds that sits on another leaf.
    std::map<Index, std::vector<std::uint8_t>> groups_at;
    for (const auto& [key, n] : at) {
      auto& v = groups_at[key.first];
      v.resize(uz(G), 0);
      v[uz(key.second)] = 1;
    }
    for (const auto& [leaf, has] : groups_at) {
      for (std::size_t i = 0; i < e.size(); ++i) {
        const Index nic = e[i].nic;
        if (nic == kNone || !has[uz(group[i])] || f.nics()[uz(nic)].leaf == leaf ||
            f.nics()[uz(nic)].leaf == kNone) {
          continue;
        }
        cc.walk(leaf, nic);
      }
    }
  }
  return cc.finish();
}

}  // namespace

// ------------------------------------------------------------------------------------ Endpoints

Endpoints Endpoints::per_host(const Fabric& f) {
  Endpoints e(f, EndpointMode::kHost);
  for (const Index h : f.host_order()) e.eps_.push_back({h, f.primary_nic(h)});
  e.index_names();
  return e;
}

Endpoints Endpoints::per_nic(const Fabric& f) {
  Endpoints e(f, EndpointMode::kNic);
  for (const Index h : f.host_order()) {
    const Host& host = f.hosts()[uz(h)];
    for (Index k = 0; k < host.nic_count; ++k) e.eps_.push_back({h, host.first_nic + k});
  }
  e.index_names();
  return e;
}

Endpoints Endpoints::from_ranks(const Fabric& f, std::span<const std::string> hostnames,
                                std::span<const std::string> devices) {
  if (!devices.empty() && devices.size() != hostnames.size()) {
    throw core::UsageError(
        fmt::format("{} host names but {} device names", hostnames.size(), devices.size()));
  }
  const bool per_nic =
      std::any_of(devices.begin(), devices.end(), [](const auto& d) { return !d.empty(); });
  Endpoints e(f, per_nic ? EndpointMode::kNic : EndpointMode::kHost);
  for (std::size_t i = 0; i < hostnames.size(); ++i) {
    const Index h = f.find_host(hostnames[i]);
    if (h == kNone) {
      throw core::UsageError(fmt::format(
          "rank {} runs on host '{}', which the topology ({}) does not list; add it to the "
          "topology file or check the host-name pattern",
          i, hostnames[i], f.source()));
    }
    Index nic = f.primary_nic(h);
    if (per_nic && !devices[i].empty()) {
      nic = f.find_nic(h, devices[i]);
      if (nic == kNone) {
        throw core::UsageError(
            fmt::format("rank {} uses NIC '{}' on host '{}', which the topology ({}) "
                        "does not list for that host",
                        i, devices[i], hostnames[i], f.source()));
      }
    }
    e.eps_.push_back({h, nic});
  }
  e.index_names();
  return e;
}

void Endpoints::index_names() {
  sorted_names_.clear();
  sorted_names_.reserve(eps_.size());
  for (std::size_t i = 0; i < eps_.size(); ++i)
    sorted_names_.emplace_back(name(i), static_cast<Index>(i));
  std::sort(sorted_names_.begin(), sorted_names_.end());
}

std::string Endpoints::name(std::size_t i) const {
  const Endpoint& ep = eps_[i];
  const std::string& host = fabric_->hosts()[uz(ep.host)].name;
  if (mode_ == EndpointMode::kHost || ep.nic == kNone) return host;
  const Nic& n = fabric_->nics()[uz(ep.nic)];
  return n.device.empty() ? fmt::format("{}:rail{}", host, n.rail)
                          : fmt::format("{}:{}", host, n.device);
}

Index Endpoints::find(std::string_view name) const {
  const auto it = std::lower_bound(sorted_names_.begin(), sorted_names_.end(), name,
                                   [](const auto& p, std::string_view n) { return p.first < n; });
  return it != sorted_names_.end() && it->first == name ? it->second : kNone;
}

HopClass Endpoints::hop_class(Index a, Index b) const {
  const Endpoint &x = eps_[uz(a)], &y = eps_[uz(b)];
  if (x.host == y.host) return HopClass::kSameHost;
  if (x.nic == kNone || y.nic == kNone) return HopClass::kUnknown;
  return fabric_->nic_hop_class(x.nic, y.nic);
}

Index Endpoints::leaf(Index e) const {
  const Index nic = eps_[uz(e)].nic;
  return nic == kNone ? kNone : fabric_->nics()[uz(nic)].leaf;
}

int Endpoints::rail(Index e) const {
  const Index nic = eps_[uz(e)].nic;
  return nic == kNone ? 0 : fabric_->nics()[uz(nic)].rail;
}

// ----------------------------------------------------------------------------------------- Plan

std::int64_t Plan::round_size(std::int64_t r) const {
  std::vector<Pair> buf;
  round(r, buf);
  return static_cast<std::int64_t>(buf.size());
}

std::int64_t Plan::pairs() const {
  std::int64_t s = 0;
  for (std::int64_t r = 0; r < rounds(); ++r) s += round_size(r);
  return s;
}

bool Plan::complete_groups(std::vector<std::int32_t>& /*group*/) const { return false; }

bool Plan::new_endpoints(std::vector<std::uint8_t>& /*is_new*/) const { return false; }

double Coverage::host_leaf_fraction() const {
  return host_leaf_links == 0
             ? std::numeric_limits<double>::quiet_NaN()
             : static_cast<double>(host_leaf_exercised) / static_cast<double>(host_leaf_links);
}

double Coverage::leaf_spine_fraction() const {
  return leaf_spine_links == 0 ? std::numeric_limits<double>::quiet_NaN()
                               : leaf_spine_exercised / static_cast<double>(leaf_spine_links);
}

Coverage compute_coverage(const Plan& plan, const Endpoints& e) {
  std::vector<std::int32_t> group;
  if (plan.complete_groups(group)) return closed_form_coverage(group, e);
  CoverageCounter cc(e);
  std::vector<Pair> buf;
  for (std::int64_t r = 0; r < plan.rounds() && !cc.saturated(); ++r) {
    plan.round(r, buf);
    for (const auto& [a, b] : buf) cc.add(a, b);
  }
  return cc.finish();
}

double NewRackCoverage::new_uplink_fraction() const {
  return new_uplinks == 0 ? std::numeric_limits<double>::quiet_NaN()
                          : new_uplinks_exercised / static_cast<double>(new_uplinks);
}

std::optional<NewRackCoverage> new_rack_coverage(const Plan& plan, const Endpoints& e) {
  std::vector<std::uint8_t> is_new;
  if (!plan.new_endpoints(is_new)) return std::nullopt;
  const Fabric& f = e.fabric();
  NewRackCoverage c;
  c.routes_known = f.has_routes();
  // Pods of the existing endpoints (endpoints without a pod form one group of their own).
  std::map<Index, std::size_t> pod_index;
  std::vector<std::size_t> pod_of(e.size(), 0);
  for (std::size_t i = 0; i < e.size(); ++i) {
    if (is_new[i]) {
      ++c.new_endpoints;
      continue;
    }
    ++c.existing_endpoints;
    const Index leaf = e.leaf(static_cast<Index>(i));
    const Index pod = leaf == kNone ? kNone : f.switches()[uz(leaf)].pod;
    pod_of[i] = pod_index.emplace(pod, pod_index.size()).first->second;
  }
  c.pods = static_cast<std::int64_t>(pod_index.size());
  std::vector<std::vector<std::uint8_t>> met(e.size());
  std::vector<std::uint8_t> old_met(e.size(), 0);
  CoverageCounter cc(e);
  std::vector<Pair> buf;
  for (std::int64_t r = 0; r < plan.rounds(); ++r) {
    plan.round(r, buf);
    bool mixed = false;
    for (const auto& [a, b] : buf) {
      cc.add(a, b);
      if (is_new[uz(a)] == is_new[uz(b)]) continue;
      mixed = true;
      const Index n = is_new[uz(a)] ? a : b, old = is_new[uz(a)] ? b : a;
      auto& m = met[uz(n)];
      if (m.empty()) m.assign(pod_index.size(), 0);
      m[pod_of[uz(old)]] = 1;
      c.existing_met += old_met[uz(old)] == 0;
      old_met[uz(old)] = 1;
    }
    c.refs += mixed;
  }
  c.min_pods_met = c.pods;
  std::vector<std::uint8_t> new_nic(f.nics().size(), 0), new_leaf(f.switches().size(), 0);
  for (std::size_t i = 0; i < e.size(); ++i) {
    if (!is_new[i]) continue;
    const auto& m = met[i];
    c.min_pods_met = std::min<std::int64_t>(
        c.min_pods_met, static_cast<std::int64_t>(std::count(m.begin(), m.end(), 1)));
    const Index nic = e[i].nic;
    if (nic == kNone || new_nic[uz(nic)] || f.nic_link(nic) == kNone) continue;
    new_nic[uz(nic)] = 1;
    ++c.new_links;
    c.new_links_exercised += cc.used_nic[uz(nic)] != 0;
    if (f.nics()[uz(nic)].leaf != kNone) new_leaf[uz(f.nics()[uz(nic)].leaf)] = 1;
  }
  if (f.has_routes()) {
    for (std::size_t li = 0; li < f.links().size(); ++li) {
      const Link& l = f.links()[li];
      if (!f.is_leaf_spine_link(static_cast<Index>(li)) || l.a.kind != NodeKind::kSwitch ||
          !new_leaf[uz(l.a.index)]) {
        continue;
      }
      ++c.new_uplinks;
      c.new_uplinks_exercised += cc.link_used[li] != 0;
    }
  } else {
    for (std::size_t s = 0; s < new_leaf.size(); ++s) {
      if (!new_leaf[s]) continue;
      const int u = f.uplinks(static_cast<Index>(s));
      c.new_uplinks += u;
      if (u > 0 && cc.flows[s] > 0)
        c.new_uplinks_exercised += u * (1.0 - std::pow(1.0 - 1.0 / u, cc.flows[s]));
    }
  }
  return c;
}

std::string format_new_rack_coverage(const NewRackCoverage& c) {
  const double up = c.new_uplink_fraction();
  return fmt::format(
      "new part: {} new endpoints, their host links {}/{}, uplinks of their leaves {} {}, each "
      "new endpoint met {} of {} pods; {} rounds against {} of {} existing endpoints",
      c.new_endpoints, c.new_links_exercised, c.new_links,
      std::isnan(up) ? std::string("n/a") : fmt::format("{:.1f}%", 100.0 * up),
      c.routes_known ? "(routes)" : "(expected, ECMP)", c.min_pods_met, c.pods, c.refs,
      c.existing_met, c.existing_endpoints);
}

namespace {

// new-rack with o.new_rack_samples rounds against existing endpoints, or (0) the fewest rounds,
// at least one per pod, whose coverage of the new leaves' uplinks reaches o.new_uplink_coverage
// (doubling, then bisection: coverage grows with the rounds).
std::unique_ptr<NewRackPlan> make_new_rack(const Endpoints& e, const PlanOptions& o) {
  auto p = std::make_unique<NewRackPlan>(e, o.new_hosts, o.new_rack_samples);
  if (o.new_rack_samples > 0) return p;
  const std::int64_t cap = std::max<std::int64_t>(1, p->max_samples());
  // Enough rounds: the new leaves' uplinks to the target, and every new endpoint met every pod.
  const auto reaches = [&](std::int64_t s) {
    p->set_samples(s);
    const auto c = new_rack_coverage(*p, e);
    const double got = c->new_uplink_fraction();
    return (std::isnan(got) || got >= o.new_uplink_coverage - 1e-12) && c->min_pods_met >= c->pods;
  };
  std::int64_t lo = std::min(cap, std::max<std::int64_t>(1, p->pod_groups()));
  if (reaches(lo)) return p;
  std::int64_t hi = lo;
  while (hi < cap && !reaches(hi)) {
    lo = hi;
    hi = std::min(cap, hi * 2);
  }
  if (hi < cap || reaches(hi)) {
    while (hi - lo > 1) {  // lo misses the target, hi reaches it
      const std::int64_t mid = lo + (hi - lo) / 2;
      (reaches(mid) ? hi : lo) = mid;
    }
  }
  p->set_samples(hi);
  return p;
}

}  // namespace

std::vector<std::string> plan_names() {
  return {"all-pairs", "rail-aligned", "hop-class", "new-rack", "budget"};
}

std::unique_ptr<Plan> make_plan(std::string_view name, const Endpoints& e, const PlanOptions& o) {
  if (name == "all-pairs") return std::make_unique<AllPairsPlan>(e);
  if (name == "rail-aligned") return std::make_unique<RailAlignedPlan>(e);
  if (name == "hop-class") {
    if (o.k < 1)
      throw core::UsageError(fmt::format("hop-class: k must be at least 1 (got {})", o.k));
    return std::make_unique<HopClassPlan>(e, o.k, o.seed);
  }
  if (name == "new-rack") {
    if (o.new_hosts.empty()) {
      throw core::UsageError(
          fmt::format("new-rack: name the new racks or hosts with --new (e.g. --new RACK or --new "
                      "HOST1,HOST2; {})",
                      some_racks(e.fabric())));
    }
    if (!(o.new_uplink_coverage > 0 && o.new_uplink_coverage <= 1)) {
      throw core::UsageError(fmt::format(
          "new-rack: the uplink coverage target must be in (0, 1] (got {:g}; e.g. 0.95)",
          o.new_uplink_coverage));
    }
    return make_new_rack(e, o);
  }
  if (name == "budget") return select_plan_for_budget(e, o).plan;
  throw core::UsageError(fmt::format(
      "unknown plan '{}'; plans: all-pairs, rail-aligned, hop-class, new-rack, budget", name));
}

std::unique_ptr<Plan> truncate_plan(std::unique_ptr<Plan> plan, std::int64_t max_rounds) {
  return std::make_unique<TruncatedPlan>(std::move(plan), max_rounds);
}

PlanSummary summarize(const Plan& plan, const Endpoints& e, const PlanOptions& o) {
  PlanSummary s;
  s.name = plan.name();
  s.description = plan.description();
  s.rounds = plan.rounds();
  s.pairs = plan.pairs();
  s.est_wall_s = static_cast<double>(s.rounds) * (o.pair_time_s + o.round_overhead_s);
  s.coverage = compute_coverage(plan, e);
  s.new_rack = new_rack_coverage(plan, e);
  s.fits_budget = !o.budget_s || s.est_wall_s <= *o.budget_s + 1e-9;
  return s;
}

BudgetChoice select_plan_for_budget(const Endpoints& e, const PlanOptions& o) {
  if (!o.budget_s) throw core::UsageError("budget: give a time budget (e.g. --budget 30m)");
  const double round_s = o.pair_time_s + o.round_overhead_s;
  if (!(round_s > 0))
    throw core::UsageError("budget: the per-pair time must be positive (e.g. --pair-time 10s)");
  const auto max_rounds = static_cast<std::int64_t>(std::floor(*o.budget_s / round_s + 1e-9));
  if (max_rounds < 1) {
    throw core::UsageError(
        fmt::format("budget {} is shorter than one round ({} per pair); raise --budget",
                    core::format_duration(*o.budget_s), core::format_duration(round_s)));
  }
  BudgetChoice c;
  const auto fits = [&](const Plan& p) { return p.rounds() <= max_rounds; };
  const auto consider = [&](std::unique_ptr<Plan> p) -> bool {
    c.candidates.push_back(summarize(*p, e, o));
    if (fits(*p) && !c.plan) {
      c.plan = std::move(p);
      return true;
    }
    return false;
  };
  if (!o.new_hosts.empty()) {
    const std::int64_t part1 = NewRackPlan(e, o.new_hosts, 1).part1();
    if (max_rounds > part1) {
      // Every pair among the new hosts, and as many rounds against existing hosts as fit.
      const auto samples = static_cast<int>(std::min<std::int64_t>(max_rounds - part1, 1 << 30));
      consider(std::make_unique<NewRackPlan>(e, o.new_hosts, samples));
      c.reason = fmt::format("new-rack with {} rounds against existing hosts fills the budget",
                             c.plan->rounds() - part1);
    } else {
      auto cut = truncate_plan(std::make_unique<NewRackPlan>(e, o.new_hosts, 1), max_rounds);
      c.candidates.push_back(summarize(*cut, e, o));
      c.plan = std::move(cut);
      c.reason =
          fmt::format("not even the pairs among the new hosts fit; cut to {} rounds", max_rounds);
    }
  } else {
    const bool rails = e.mode() == EndpointMode::kNic && e.fabric().rails() > 1;
    bool done = consider(std::make_unique<AllPairsPlan>(e));
    if (done) c.reason = "all pairs fit";
    if (!done && rails) {
      done = consider(std::make_unique<RailAlignedPlan>(e));
      if (done) c.reason = "all same-rail pairs fit";
    }
    if (!done) {
      // The largest k whose rounds fit; beyond max_useful_k() every class is exhausted. The
      // rounds left over go to the widest plan that did not fit, cut to them.
      int k_fit = 0;
      for (int lo = 1, hi = HopClassPlan(e, 1, o.seed).max_useful_k(); lo <= hi;) {
        const int mid = lo + (hi - lo) / 2;
        if (HopClassPlan(e, mid, o.seed).rounds() <= max_rounds) {
          k_fit = mid;
          lo = mid + 1;
        } else {
          hi = mid - 1;
        }
      }
      if (k_fit >= 1) {
        auto hop = std::make_unique<HopClassPlan>(e, k_fit, o.seed);
        const std::int64_t spare = max_rounds - hop->rounds();
        std::unique_ptr<Plan> filler =
            rails ? std::unique_ptr<Plan>(std::make_unique<RailAlignedPlan>(e))
                  : std::unique_ptr<Plan>(std::make_unique<AllPairsPlan>(e));
        if (spare > 0 && filler->rounds() > 0) {
          consider(std::make_unique<ConcatPlan>(std::move(hop),
                                                truncate_plan(std::move(filler), spare)));
          c.reason = fmt::format("hop-class k={} fits; the {} rounds left go to {}", k_fit, spare,
                                 rails ? "rail-aligned" : "all-pairs");
        } else {
          consider(std::move(hop));
          c.reason = fmt::format("hop-class with k={} is the widest plan that fits", k_fit);
        }
      } else {
        auto cut = truncate_plan(std::make_unique<HopClassPlan>(e, 1, o.seed), max_rounds);
        c.candidates.push_back(summarize(*cut, e, o));
        c.plan = std::move(cut);
        c.reason = fmt::format(
            "not even one round per hop class fits; hop-class k=1 cut to {} rounds", max_rounds);
      }
    }
  }
  for (auto& s : c.candidates) s.chosen = false;
  c.candidates.back().chosen = true;  // the chosen plan is always the last one considered
  return c;
}

std::vector<PlanSummary> summarize_plans(const Endpoints& e, const PlanOptions& o) {
  std::vector<PlanSummary> out;
  out.push_back(summarize(AllPairsPlan(e), e, o));
  if (e.mode() == EndpointMode::kNic && e.fabric().rails() > 1)
    out.push_back(summarize(RailAlignedPlan(e), e, o));
  out.push_back(summarize(HopClassPlan(e, std::max(1, o.k), o.seed), e, o));
  if (!o.new_hosts.empty()) out.push_back(summarize(*make_plan("new-rack", e, o), e, o));
  if (o.budget_s) {
    BudgetChoice c = select_plan_for_budget(e, o);
    PlanSummary s = c.candidates.back();
    s.description = fmt::format("{} ({}): {}", s.name, c.reason, s.description);
    s.name = "budget";
    s.chosen = true;
    out.push_back(std::move(s));
  }
  return out;
}

std::string format_plan_summaries(std::span<const PlanSummary> v) {
  const auto pct = [](double x) {
    return std::isnan(x) ? std::string("n/a") : fmt::format("{:.1f}%", 100.0 * x);
  };
  std::string out = fmt::format("{:<14} {:>10} {:>14} {:>10} {:>10} {:>11}  {}\n", "plan", "rounds",
                                "pairs", "est. time", "host-leaf", "leaf-spine", "");
  for (const PlanSummary& s : v) {
    const bool routes = s.coverage.routes_known;
    out +=
        fmt::format("{:<14} {:>10} {:>14} {:>10} {:>10} {:>11}  {}{}\n", s.name, s.rounds, s.pairs,
                    core::format_duration(s.est_wall_s), pct(s.coverage.host_leaf_fraction()),
                    pct(s.coverage.leaf_spine_fraction()), routes ? "(routes)" : "(expected, ECMP)",
                    s.fits_budget ? "" : "  over budget");
    out += fmt::format("{:<14} {}\n", "", s.description);
    if (s.new_rack) out += fmt::format("{:<14} {}\n", "", format_new_rack_coverage(*s.new_rack));
  }
  return out;
}

}  // namespace fabscope::topology
