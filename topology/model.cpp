#include "topology/model.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <deque>
#include <limits>
#include <map>
#include <numeric>
#include <tuple>

#include "core/error.hpp"

namespace fabscope::topology {
namespace {

std::size_t uz(Index i) { return static_cast<std::size_t>(i); }

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Union-find for pod derivation.
struct Dsu {
  std::vector<Index> parent;
  explicit Dsu(std::size_t n) : parent(n) { std::iota(parent.begin(), parent.end(), 0); }
  Index find(Index x) {
    while (parent[uz(x)] != x) {
      parent[uz(x)] = parent[uz(parent[uz(x)])];
      x = parent[uz(x)];
    }
    return x;
  }
  void unite(Index a, Index b) {
    a = find(a);
    b = find(b);
    if (a != b) parent[uz(std::max(a, b))] = std::min(a, b);
  }
};

std::string end_name(const Fabric& f, const LinkEnd& e) {
  if (e.kind == NodeKind::kNic) {
    const Nic& n = f.nics()[uz(e.index)];
    return fmt::format("nic:{}/{}:{}", f.hosts()[uz(n.host)].name, n.device, n.port);
  }
  return fmt::format("sw:{}:{}", f.switches()[uz(e.index)].name, e.port);
}

}  // namespace

std::string_view to_string(LinkLayer v) {
  switch (v) {
    case LinkLayer::kInfiniBand:
      return "infiniband";
    case LinkLayer::kEthernet:
      return "ethernet";
    default:
      return "unknown";
  }
}

std::string_view to_string(PortState v) {
  switch (v) {
    case PortState::kDown:
      return "DOWN";
    case PortState::kInit:
      return "INIT";
    case PortState::kArmed:
      return "ARMED";
    case PortState::kActive:
      return "ACTIVE";
    default:
      return "unknown";
  }
}

std::string_view to_string(HopClass v) {
  switch (v) {
    case HopClass::kSameHost:
      return "same_host";
    case HopClass::kSameLeaf:
      return "same_leaf";
    case HopClass::kSamePod:
      return "same_pod";
    case HopClass::kCrossSpine:
      return "cross_spine";
    default:
      return "unknown";
  }
}

LinkLayer parse_link_layer(std::string_view text) {
  const std::string l = lower(text);
  if (l == "infiniband" || l == "ib") return LinkLayer::kInfiniBand;
  if (l == "ethernet" || l == "roce" || l == "eth") return LinkLayer::kEthernet;
  return LinkLayer::kUnknown;
}

bool natural_less(std::string_view a, std::string_view b) {
  std::size_t i = 0, j = 0;
  const auto digit = [](char c) { return c >= '0' && c <= '9'; };
  while (i < a.size() && j < b.size()) {
    if (digit(a[i]) && digit(b[j])) {
      std::size_t ie = i, je = j;
      while (ie < a.size() && digit(a[ie])) ++ie;
      while (je < b.size() && digit(b[je])) ++je;
      // Compare numerically: skip leading zeros, then by length, then lexically.
      std::size_t is = i, js = j;
      while (is + 1 < ie && a[is] == '0') ++is;
      while (js + 1 < je && b[js] == '0') ++js;
      if (ie - is != je - js) return ie - is < je - js;
      const int c = a.substr(is, ie - is).compare(b.substr(js, je - js));
      if (c != 0) return c < 0;
      if (ie - i != je - j) return ie - i < je - j;  // "01" after "1"
      i = ie;
      j = je;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i;
      ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

double ib_lane_gbps(std::string_view speed) {
  static const std::map<std::string, double, std::less<>> kLane = {
      {"SDR", 2.5}, {"DDR", 5},  {"QDR", 10},  {"FDR10", 10}, {"FDR", 14},
      {"EDR", 25},  {"HDR", 50}, {"NDR", 100}, {"XDR", 200}};
  const auto it = kLane.find(speed);
  return it == kLane.end() ? 0.0 : it->second;
}

// ---------------------------------------------------------------------------------------------
// Builder

FabricBuilder::FabricBuilder(std::string name, std::string source)
    : name_(std::move(name)), source_(std::move(source)) {}

Index FabricBuilder::host(std::string_view name) {
  const auto it = host_idx_.find(std::string(name));
  if (it != host_idx_.end()) return it->second;
  const auto i = static_cast<Index>(hosts_.size());
  hosts_.push_back(Host{std::string(name), kNone, 0, 0});
  host_idx_.emplace(std::string(name), i);
  return i;
}

Index FabricBuilder::rack(std::string_view name) {
  const auto it = rack_idx_.find(std::string(name));
  if (it != rack_idx_.end()) return it->second;
  const auto i = static_cast<Index>(racks_.size());
  racks_.emplace_back(name);
  rack_idx_.emplace(std::string(name), i);
  return i;
}

Index FabricBuilder::pod(std::string_view name) {
  const auto it = pod_idx_.find(std::string(name));
  if (it != pod_idx_.end()) return it->second;
  const auto i = static_cast<Index>(pods_.size());
  pods_.emplace_back(name);
  pod_idx_.emplace(std::string(name), i);
  return i;
}

void FabricBuilder::set_rack(Index h, Index r) { hosts_[uz(h)].rack = r; }

Index FabricBuilder::add_switch(Switch sw) {
  if (switch_idx_.count(sw.name) != 0) {
    throw core::UsageError(fmt::format("{}: switch '{}' defined twice; switch names must be unique",
                                       source_, sw.name));
  }
  const auto i = static_cast<Index>(switches_.size());
  switch_idx_.emplace(sw.name, i);
  switches_.push_back(std::move(sw));
  return i;
}

Index FabricBuilder::find_switch(std::string_view name) const {
  const auto it = switch_idx_.find(std::string(name));
  return it == switch_idx_.end() ? kNone : it->second;
}

Index FabricBuilder::add_nic(Nic nic) {
  const auto i = static_cast<Index>(nics_.size());
  nics_.push_back(std::move(nic));
  return i;
}

Index FabricBuilder::connect(LinkEnd a, LinkEnd b, double rate_gbps, int width,
                             double max_rate_gbps) {
  const auto i = static_cast<Index>(links_.size());
  links_.push_back(Link{a, b, rate_gbps, static_cast<std::uint8_t>(width), max_rate_gbps});
  return i;
}

Fabric FabricBuilder::build() && {
  const std::string where = source_.empty() ? std::string("topology") : source_;
  const auto fail = [&](const std::string& msg) -> void {
    throw core::UsageError(fmt::format("{}: {}", where, msg));
  };
  const auto nic_label = [&](Index n) {
    const Nic& x = nics_[uz(n)];
    return fmt::format("{}:{}", hosts_[uz(x.host)].name, x.device.empty() ? "?" : x.device);
  };
  const std::size_t H = hosts_.size(), N = nics_.size(), S = switches_.size();

  for (std::size_t n = 0; n < N; ++n) {
    if (nics_[n].host < 0 || uz(nics_[n].host) >= H) fail(fmt::format("NIC {} has no host", n));
  }
  // 1. Links: valid ends, a NIC cabled at most once, never NIC to NIC; switch ports used once.
  std::vector<Index> nic_link(N, kNone);
  std::vector<int> max_port(S, 0);
  std::vector<std::pair<Index, int>> used;  // (switch, port) of explicit ports
  for (std::size_t li = 0; li < links_.size(); ++li) {
    Link& l = links_[li];
    for (LinkEnd* e : {&l.a, &l.b}) {
      const std::size_t lim = e->kind == NodeKind::kNic ? N : S;
      if (e->index < 0 || uz(e->index) >= lim) fail(fmt::format("link {} names a missing end", li));
      if (e->kind == NodeKind::kNic) {
        if (nic_link[uz(e->index)] != kNone) {
          fail(
              fmt::format("NIC {} is cabled twice; a NIC port has one cable", nic_label(e->index)));
        }
        nic_link[uz(e->index)] = static_cast<Index>(li);
        if (e->port == 0) e->port = static_cast<std::int16_t>(nics_[uz(e->index)].port);
      } else if (e->port > 0) {
        used.emplace_back(e->index, e->port);
        max_port[uz(e->index)] = std::max(max_port[uz(e->index)], static_cast<int>(e->port));
      }
    }
    if (l.a.kind == NodeKind::kNic && l.b.kind == NodeKind::kNic) {
      fail(fmt::format("NICs {} and {} are cabled to each other; fabscope models switched fabrics",
                       nic_label(l.a.index), nic_label(l.b.index)));
    }
    if (l.a.kind == l.b.kind && l.a.index == l.b.index) {
      fail(fmt::format("switch '{}' is cabled to itself", switches_[uz(l.a.index)].name));
    }
  }
  std::sort(used.begin(), used.end());
  for (std::size_t i = 1; i < used.size(); ++i) {
    if (used[i] == used[i - 1]) {
      fail(fmt::format("switch '{}' port {} is used by two cables",
                       switches_[uz(used[i].first)].name, used[i].second));
    }
  }
  for (Link& l : links_) {  // automatic ports after the highest explicit one
    for (LinkEnd* e : {&l.a, &l.b}) {
      if (e->kind == NodeKind::kSwitch && e->port <= 0) {
        e->port = static_cast<std::int16_t>(++max_port[uz(e->index)]);
      }
    }
  }
  for (std::size_t s = 0; s < S; ++s) {
    switches_[s].ports =
        static_cast<std::uint16_t>(std::max(static_cast<int>(switches_[s].ports), max_port[s]));
  }
  // 2. NIC attachment.
  for (std::size_t n = 0; n < N; ++n) {
    Nic& nic = nics_[n];
    nic.leaf = kNone;
    nic.leaf_port = -1;
    if (nic_link[n] == kNone) continue;
    const Link& l = links_[uz(nic_link[n])];
    const LinkEnd& other = l.a.kind == NodeKind::kNic && uz(l.a.index) == n ? l.b : l.a;
    nic.leaf = other.index;
    nic.leaf_port = other.port;
    if (nic.rate_gbps <= 0) nic.rate_gbps = l.rate_gbps;
    if (nic.width == 0) nic.width = l.width;
  }
  // 3. Levels: derived unless the source set them all.
  const bool levels_given = S > 0 && std::all_of(switches_.begin(), switches_.end(),
                                                 [](const Switch& s) { return s.level > 0; });
  std::vector<std::vector<Index>> sw_adj(S);
  for (const Link& l : links_) {
    if (l.a.kind == NodeKind::kSwitch && l.b.kind == NodeKind::kSwitch) {
      sw_adj[uz(l.a.index)].push_back(l.b.index);
      sw_adj[uz(l.b.index)].push_back(l.a.index);
    }
  }
  if (!levels_given) {
    std::deque<Index> q;
    for (auto& s : switches_) s.level = 0;
    for (std::size_t n = 0; n < N; ++n) {
      const Index leaf = nics_[n].leaf;
      if (leaf != kNone && switches_[uz(leaf)].level == 0) {
        switches_[uz(leaf)].level = 1;
        q.push_back(leaf);
      }
    }
    while (!q.empty()) {
      const Index s = q.front();
      q.pop_front();
      for (const Index t : sw_adj[uz(s)]) {
        if (switches_[uz(t)].level == 0) {
          switches_[uz(t)].level = static_cast<std::uint8_t>(switches_[uz(s)].level + 1);
          q.push_back(t);
        }
      }
    }
  }
  for (std::size_t n = 0; n < N; ++n) {
    if (nics_[n].leaf != kNone && switches_[uz(nics_[n].leaf)].level != 1) {
      fail(
          fmt::format("NIC {} is cabled to '{}', which is not a leaf (level {}); hosts attach to "
                      "leaves only",
                      nic_label(static_cast<Index>(n)), switches_[uz(nics_[n].leaf)].name,
                      switches_[uz(nics_[n].leaf)].level));
    }
  }
  // 4. Pods: derived as connected components of the leaf+spine graph unless given.
  const bool pods_given = !pods_.empty();
  if (!pods_given) {
    Dsu dsu(S);
    for (const Link& l : links_) {
      if (l.a.kind == NodeKind::kSwitch && l.b.kind == NodeKind::kSwitch) {
        const int la = switches_[uz(l.a.index)].level, lb = switches_[uz(l.b.index)].level;
        if ((la == 1 && lb == 2) || (la == 2 && lb == 1)) dsu.unite(l.a.index, l.b.index);
      }
    }
    for (std::size_t s = 0; s < S; ++s) {
      const int lv = switches_[s].level;
      switches_[s].pod = (lv == 1 || lv == 2) ? dsu.find(static_cast<Index>(s)) : kNone;  // root id
    }
  } else {
    for (const Switch& s : switches_) {
      if ((s.level == 1 || s.level == 2) && s.pod == kNone) {
        fail(fmt::format("switch '{}' (level {}) belongs to no pod", s.name, s.level));
      }
    }
  }

  // 5. Canonical order. Switches: level (unknown last), natural name, GUID.
  std::vector<Index> sw_order(S);
  std::iota(sw_order.begin(), sw_order.end(), 0);
  std::sort(sw_order.begin(), sw_order.end(), [&](Index x, Index y) {
    const Switch& a = switches_[uz(x)];
    const Switch& b = switches_[uz(y)];
    const int la = a.level == 0 ? 256 : a.level, lb = b.level == 0 ? 256 : b.level;
    if (la != lb) return la < lb;
    if (a.name != b.name) return natural_less(a.name, b.name);
    return a.guid < b.guid;
  });
  std::vector<Index> sw_new(S);
  for (std::size_t i = 0; i < S; ++i) sw_new[uz(sw_order[i])] = static_cast<Index>(i);

  std::vector<Index> host_order(H);
  std::iota(host_order.begin(), host_order.end(), 0);
  std::sort(host_order.begin(), host_order.end(),
            [&](Index x, Index y) { return natural_less(hosts_[uz(x)].name, hosts_[uz(y)].name); });
  std::vector<Index> host_new(H);
  for (std::size_t i = 0; i < H; ++i) host_new[uz(host_order[i])] = static_cast<Index>(i);

  std::vector<Index> nic_order(N);
  std::iota(nic_order.begin(), nic_order.end(), 0);
  std::sort(nic_order.begin(), nic_order.end(), [&](Index x, Index y) {
    const Nic& a = nics_[uz(x)];
    const Nic& b = nics_[uz(y)];
    if (a.host != b.host) return host_new[uz(a.host)] < host_new[uz(b.host)];
    if (rails_explicit_ && a.rail != b.rail) return a.rail < b.rail;
    if (a.device != b.device) return natural_less(a.device, b.device);
    if (a.port != b.port) return a.port < b.port;
    if (a.port_guid != b.port_guid) return a.port_guid < b.port_guid;
    return a.node_guid < b.node_guid;
  });
  std::vector<Index> nic_new(N);
  for (std::size_t i = 0; i < N; ++i) nic_new[uz(nic_order[i])] = static_cast<Index>(i);

  Fabric f;
  f.name_ = name_;
  f.source_ = source_;
  f.assume_clos_ = assume_clos_;
  f.switches_.reserve(S);
  for (const Index old : sw_order) f.switches_.push_back(std::move(switches_[uz(old)]));
  f.nics_.reserve(N);
  for (const Index old : nic_order) {
    Nic n = std::move(nics_[uz(old)]);
    n.host = host_new[uz(n.host)];
    if (n.leaf != kNone) n.leaf = sw_new[uz(n.leaf)];
    f.nics_.push_back(std::move(n));
  }
  f.hosts_.reserve(H);
  for (const Index old : host_order) f.hosts_.push_back(std::move(hosts_[uz(old)]));
  for (auto& h : f.hosts_) h.nic_count = 0;
  for (std::size_t n = 0; n < N; ++n) {
    Host& h = f.hosts_[uz(f.nics_[n].host)];
    if (h.nic_count == 0) h.first_nic = static_cast<Index>(n);
    ++h.nic_count;
  }
  if (!rails_explicit_) {
    for (auto& h : f.hosts_) {
      for (Index k = 0; k < h.nic_count; ++k)
        f.nics_[uz(h.first_nic + k)].rail = static_cast<std::int16_t>(k);
    }
  }
  f.rails_ = 0;
  for (const Nic& n : f.nics_) f.rails_ = std::max(f.rails_, n.rail + 1);

  // Pods: given ones keep their order; derived ones are numbered by their first switch.
  if (pods_given) {
    f.pods_ = pods_;
  } else {
    std::map<Index, Index> root_to_pod;  // root (old switch id) -> pod number, by first new index
    for (Switch& s : f.switches_) {
      if (s.pod == kNone) continue;
      const auto [it, inserted] =
          root_to_pod.emplace(s.pod, static_cast<Index>(root_to_pod.size()));
      s.pod = it->second;
      if (inserted) f.pods_.push_back(fmt::format("pod{}", it->second + 1));
    }
  }
  // Racks: hosts without one take their primary NIC's leaf as their rack. Sorted by natural name.
  std::vector<std::string> rack_names = racks_;
  std::unordered_map<std::string, Index> rack_ids = rack_idx_;
  for (Host& h : f.hosts_) {
    if (h.rack != kNone || h.nic_count == 0) continue;
    const Index leaf = f.nics_[uz(h.first_nic)].leaf;
    if (leaf == kNone) continue;
    const std::string& rn = f.switches_[uz(leaf)].name;
    const auto [it, inserted] = rack_ids.emplace(rn, static_cast<Index>(rack_names.size()));
    if (inserted) rack_names.push_back(rn);
    h.rack = it->second;
  }
  std::vector<Index> rack_order(rack_names.size());
  std::iota(rack_order.begin(), rack_order.end(), 0);
  std::sort(rack_order.begin(), rack_order.end(),
            [&](Index x, Index y) { return natural_less(rack_names[uz(x)], rack_names[uz(y)]); });
  std::vector<Index> rack_new(rack_names.size());
  for (std::size_t i = 0; i < rack_order.size(); ++i)
    rack_new[uz(rack_order[i])] = static_cast<Index>(i);
  for (const Index old : rack_order) f.racks_.push_back(rack_names[uz(old)]);
  for (Host& h : f.hosts_) {
    if (h.rack != kNone) h.rack = rack_new[uz(h.rack)];
  }

  // Links: remapped, lower end first, sorted.
  f.links_.reserve(links_.size());
  for (Link l : links_) {
    for (LinkEnd* e : {&l.a, &l.b})
      e->index = e->kind == NodeKind::kNic ? nic_new[uz(e->index)] : sw_new[uz(e->index)];
    const auto rank = [&](const LinkEnd& e) {
      return e.kind == NodeKind::kNic
                 ? std::pair<int, Index>{0, e.index}
                 : std::pair<int, Index>{
                       f.switches_[uz(e.index)].level == 0 ? 256 : f.switches_[uz(e.index)].level,
                       e.index};
    };
    if (rank(l.b) < rank(l.a)) std::swap(l.a, l.b);
    f.links_.push_back(l);
  }
  std::sort(f.links_.begin(), f.links_.end(), [](const Link& x, const Link& y) {
    const auto key = [](const Link& l) {
      return std::tuple(static_cast<int>(l.a.kind) == 0 ? 0 : 1, l.a.index, l.a.port, l.b.index,
                        l.b.port);
    };
    return key(x) < key(y);
  });
  f.index();
  return f;
}

// ---------------------------------------------------------------------------------------------
// Fabric

void Fabric::index() {
  const std::size_t S = switches_.size(), N = nics_.size();
  host_by_name_.clear();
  switch_by_name_.clear();
  switch_by_guid_.clear();
  rack_by_name_.clear();
  for (std::size_t i = 0; i < hosts_.size(); ++i)
    host_by_name_.emplace(hosts_[i].name, static_cast<Index>(i));
  for (std::size_t i = 0; i < S; ++i) {
    switch_by_name_.emplace(switches_[i].name, static_cast<Index>(i));
    if (switches_[i].guid != 0) switch_by_guid_.emplace(switches_[i].guid, static_cast<Index>(i));
  }
  for (std::size_t i = 0; i < racks_.size(); ++i)
    rack_by_name_.emplace(racks_[i], static_cast<Index>(i));
  max_level_ = 0;
  for (const Switch& s : switches_) max_level_ = std::max(max_level_, static_cast<int>(s.level));

  nic_link_.assign(N, kNone);
  std::vector<Index> deg(S + 1, 0);
  for (std::size_t li = 0; li < links_.size(); ++li) {
    for (const LinkEnd* e : {&links_[li].a, &links_[li].b}) {
      if (e->kind == NodeKind::kNic)
        nic_link_[uz(e->index)] = static_cast<Index>(li);
      else
        ++deg[uz(e->index) + 1];
    }
  }
  sw_link_offset_.assign(S + 1, 0);
  for (std::size_t s = 0; s < S; ++s) sw_link_offset_[s + 1] = sw_link_offset_[s] + deg[s + 1];
  sw_links_.assign(uz(sw_link_offset_[S]), kNone);
  std::vector<Index> fill(sw_link_offset_.begin(), sw_link_offset_.end() - 1);
  sw_port_offset_.assign(S + 1, 0);
  for (std::size_t s = 0; s < S; ++s)
    sw_port_offset_[s + 1] = sw_port_offset_[s] + switches_[s].ports + 1;
  sw_port_link_.assign(uz(sw_port_offset_[S]), kNone);
  for (std::size_t li = 0; li < links_.size(); ++li) {
    for (const LinkEnd* e : {&links_[li].a, &links_[li].b}) {
      if (e->kind != NodeKind::kSwitch) continue;
      sw_links_[uz(fill[uz(e->index)]++)] = static_cast<Index>(li);
      if (e->port >= 0 && e->port <= switches_[uz(e->index)].ports) {
        sw_port_link_[uz(sw_port_offset_[uz(e->index)] + e->port)] = static_cast<Index>(li);
      }
    }
  }
  // Leaf uplinks and the spines of each leaf.
  uplinks_.assign(S, 0);
  std::vector<std::vector<Index>> leaf_sp(S);
  for (std::size_t li = 0; li < links_.size(); ++li) {
    if (!is_leaf_spine_link(static_cast<Index>(li))) continue;
    const Link& l = links_[li];
    const Index leaf = switches_[uz(l.a.index)].level == 1 ? l.a.index : l.b.index;
    const Index spine = leaf == l.a.index ? l.b.index : l.a.index;
    ++uplinks_[uz(leaf)];
    leaf_sp[uz(leaf)].push_back(spine);
  }
  leaf_spine_offset_.assign(S + 1, 0);
  leaf_spines_.clear();
  for (std::size_t s = 0; s < S; ++s) {
    auto& v = leaf_sp[s];
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    leaf_spines_.insert(leaf_spines_.end(), v.begin(), v.end());
    leaf_spine_offset_[s + 1] = static_cast<Index>(leaf_spines_.size());
  }
  // Pods: full mesh when every leaf reaches every spine of its pod.
  const std::size_t P = pods_.size();
  std::vector<std::int64_t> pod_leaves(P, 0), pod_spines(P, 0), pod_pairs(P, 0);
  for (std::size_t s = 0; s < S; ++s) {
    const Switch& sw = switches_[s];
    if (sw.pod == kNone) continue;
    if (sw.level == 1) {
      ++pod_leaves[uz(sw.pod)];
      for (Index k = leaf_spine_offset_[s]; k < leaf_spine_offset_[s + 1]; ++k) {
        if (switches_[uz(leaf_spines_[uz(k)])].pod == sw.pod) ++pod_pairs[uz(sw.pod)];
      }
    } else if (sw.level == 2) {
      ++pod_spines[uz(sw.pod)];
    }
  }
  pod_full_mesh_.assign(P, 0);
  for (std::size_t p = 0; p < P; ++p) {
    pod_full_mesh_[p] =
        pod_leaves[p] <= 1 || (pod_spines[p] > 0 && pod_pairs[p] == pod_leaves[p] * pod_spines[p]);
  }
  // Pod-to-pod distance over the tiers above the spines (BFS from each pod's spines).
  pod_dist_.assign(P * P, -1);
  std::vector<std::vector<Index>> upper_adj(S);
  for (const Link& l : links_) {
    if (l.a.kind != NodeKind::kSwitch || l.b.kind != NodeKind::kSwitch) continue;
    if (switches_[uz(l.a.index)].level >= 2 && switches_[uz(l.b.index)].level >= 2) {
      upper_adj[uz(l.a.index)].push_back(l.b.index);
      upper_adj[uz(l.b.index)].push_back(l.a.index);
    }
  }
  std::vector<int> dist(S);
  for (std::size_t p = 0; p < P; ++p) {
    std::fill(dist.begin(), dist.end(), -1);
    std::deque<Index> q;
    for (std::size_t s = 0; s < S; ++s) {
      if (switches_[s].level == 2 && switches_[s].pod == static_cast<Index>(p)) {
        dist[s] = 0;
        q.push_back(static_cast<Index>(s));
      }
    }
    while (!q.empty()) {
      const Index s = q.front();
      q.pop_front();
      for (const Index t : upper_adj[uz(s)]) {
        if (dist[uz(t)] < 0) {
          dist[uz(t)] = dist[uz(s)] + 1;
          q.push_back(t);
        }
      }
    }
    for (std::size_t s = 0; s < S; ++s) {
      const Switch& sw = switches_[s];
      if (sw.level != 2 || sw.pod == kNone || dist[s] < 0) continue;
      auto& d = pod_dist_[p * P + uz(sw.pod)];
      if (d < 0 || dist[s] < d) d = static_cast<std::int16_t>(dist[s]);
    }
  }
}

Index Fabric::find_host(std::string_view name) const {
  const auto it = host_by_name_.find(std::string(name));
  return it == host_by_name_.end() ? kNone : it->second;
}

Index Fabric::find_switch(std::string_view name) const {
  const auto it = switch_by_name_.find(std::string(name));
  return it == switch_by_name_.end() ? kNone : it->second;
}

Index Fabric::find_switch_guid(std::uint64_t guid) const {
  const auto it = switch_by_guid_.find(guid);
  return it == switch_by_guid_.end() ? kNone : it->second;
}

Index Fabric::find_rack(std::string_view name) const {
  const auto it = rack_by_name_.find(std::string(name));
  return it == rack_by_name_.end() ? kNone : it->second;
}

Index Fabric::find_nic(Index host, std::string_view device, int port) const {
  const Host& h = hosts_[uz(host)];
  for (Index k = 0; k < h.nic_count; ++k) {
    const Nic& n = nics_[uz(h.first_nic + k)];
    if (n.device == device && (port == 0 || n.port == port)) return h.first_nic + k;
  }
  return kNone;
}

Index Fabric::primary_nic(Index host) const {
  const Host& h = hosts_[uz(host)];
  return h.nic_count > 0 ? h.first_nic : kNone;
}

Index Fabric::host_leaf(Index host) const {
  const Index n = primary_nic(host);
  return n == kNone ? kNone : nics_[uz(n)].leaf;
}

Index Fabric::host_pod(Index host) const {
  const Index l = host_leaf(host);
  return l == kNone ? kNone : switches_[uz(l)].pod;
}

std::span<const Index> Fabric::switch_links(Index sw) const {
  const auto b = uz(sw_link_offset_[uz(sw)]), e = uz(sw_link_offset_[uz(sw) + 1]);
  return {sw_links_.data() + b, e - b};
}

Index Fabric::port_link(Index sw, int port) const {
  if (sw < 0 || uz(sw) >= switches_.size() || port < 0 || port > switches_[uz(sw)].ports)
    return kNone;
  return sw_port_link_[uz(sw_port_offset_[uz(sw)] + port)];
}

bool Fabric::is_leaf_spine_link(Index link) const {
  const Link& l = links_[uz(link)];
  if (l.a.kind != NodeKind::kSwitch || l.b.kind != NodeKind::kSwitch) return false;
  const int la = switches_[uz(l.a.index)].level, lb = switches_[uz(l.b.index)].level;
  return (la == 1 && lb == 2) || (la == 2 && lb == 1);
}

std::int64_t Fabric::count_switches(int level) const {
  return std::count_if(switches_.begin(), switches_.end(),
                       [&](const Switch& s) { return s.level == level; });
}

std::int64_t Fabric::host_link_count() const {
  return std::count_if(nic_link_.begin(), nic_link_.end(), [](Index l) { return l != kNone; });
}

std::int64_t Fabric::leaf_spine_link_count() const {
  return std::accumulate(uplinks_.begin(), uplinks_.end(), std::int64_t{0});
}

int Fabric::nic_hops(Index a, Index b) const {
  if (a == b) return 0;
  const Index la = nics_[uz(a)].leaf, lb = nics_[uz(b)].leaf;
  if (la == kNone || lb == kNone) return -1;
  if (la == lb) return 2;
  const Index pa = switches_[uz(la)].pod, pb = switches_[uz(lb)].pod;
  if (pa == kNone || pb == kNone) return -1;
  const std::size_t P = pods_.size();
  if (pa == pb) {
    if (uplinks_[uz(la)] == 0 || uplinks_[uz(lb)] == 0) return assume_clos_ ? 4 : -1;
    if (pod_full_mesh_[uz(pa)]) return 4;
    const auto* sa = leaf_spines_.data() + leaf_spine_offset_[uz(la)];
    const auto* ea = leaf_spines_.data() + leaf_spine_offset_[uz(la) + 1];
    const auto* sb = leaf_spines_.data() + leaf_spine_offset_[uz(lb)];
    const auto* eb = leaf_spines_.data() + leaf_spine_offset_[uz(lb) + 1];
    while (sa != ea && sb != eb) {
      if (*sa == *sb) return 4;
      if (*sa < *sb)
        ++sa;
      else
        ++sb;
    }
    return 6;
  }
  const int d = pod_dist_[uz(pa) * P + uz(pb)];
  if (d >= 0) return 4 + d;
  return assume_clos_ ? 6 : -1;
}

HopClass Fabric::nic_hop_class(Index a, Index b) const {
  if (nics_[uz(a)].host == nics_[uz(b)].host) return HopClass::kSameHost;
  const int h = nic_hops(a, b);
  if (h < 0) return HopClass::kUnknown;
  if (h == 2) return HopClass::kSameLeaf;
  const Index pa = switches_[uz(nics_[uz(a)].leaf)].pod, pb = switches_[uz(nics_[uz(b)].leaf)].pod;
  return pa == pb ? HopClass::kSamePod : HopClass::kCrossSpine;
}

int Fabric::host_hops(Index a, Index b) const {
  if (a == b) return 0;
  const Index na = primary_nic(a), nb = primary_nic(b);
  return na == kNone || nb == kNone ? -1 : nic_hops(na, nb);
}

HopClass Fabric::host_hop_class(Index a, Index b) const {
  if (a == b) return HopClass::kSameHost;
  const Index na = primary_nic(a), nb = primary_nic(b);
  return na == kNone || nb == kNone ? HopClass::kUnknown : nic_hop_class(na, nb);
}

int Fabric::shortest_nic_hops(Index a, Index b) const {
  if (a == b) return 0;
  const Index la = nics_[uz(a)].leaf, lb = nics_[uz(b)].leaf;
  if (la == kNone || lb == kNone) return -1;
  std::vector<int> dist(switches_.size(), -1);
  std::deque<Index> q{la};
  dist[uz(la)] = 0;
  while (!q.empty()) {
    const Index s = q.front();
    q.pop_front();
    if (s == lb) return dist[uz(s)] + 2;
    for (const Index li : switch_links(s)) {
      const Link& l = links_[uz(li)];
      if (l.a.kind != NodeKind::kSwitch) continue;
      const Index t = l.a.index == s ? l.b.index : l.a.index;
      if (dist[uz(t)] < 0) {
        dist[uz(t)] = dist[uz(s)] + 1;
        q.push_back(t);
      }
    }
  }
  return -1;
}

std::vector<Index> Fabric::host_order() const {
  std::vector<Index> order(hosts_.size());
  std::iota(order.begin(), order.end(), 0);
  const auto key = [&](Index h) {
    const Index leaf = host_leaf(h);
    const Index pod = leaf == kNone ? kNone : switches_[uz(leaf)].pod;
    const auto big = [](Index v) { return v == kNone ? std::numeric_limits<Index>::max() : v; };
    return std::tuple(big(pod), big(leaf), big(hosts_[uz(h)].rack), h);
  };
  std::sort(order.begin(), order.end(), [&](Index x, Index y) { return key(x) < key(y); });
  return order;
}

void Fabric::set_routes(std::span<const SwitchLft> tables) {
  lft_.assign(switches_.size(), {});
  for (const SwitchLft& t : tables) {
    const Index s = find_switch_guid(t.guid);
    if (s == kNone) {
      throw core::UsageError(
          fmt::format("routes: forwarding table of switch GUID 0x{:016x} does not match any switch "
                      "of the fabric "
                      "({}); take the routes and the topology from the same fabric",
                      t.guid, source_));
    }
    const Switch& sw = switches_[uz(s)];
    if (sw.ports > 0 && t.max_port > sw.ports && t.max_port != kNoPort) {
      throw core::UsageError(fmt::format(
          "{}routes: the forwarding table of switch '{}' (GUID 0x{:016x}) sends to port {}, but "
          "it has {} ports in the fabric ({}); take the routes and the topology from the same "
          "fabric",
          t.max_port_at.empty() ? std::string() : t.max_port_at + ": ", sw.name, t.guid, t.max_port,
          sw.ports, source_));
    }
    lft_[uz(s)] = t.ports;
  }
  nic_by_lid_.clear();
  for (std::size_t n = 0; n < nics_.size(); ++n) {
    const auto lid = nics_[n].lid;
    if (lid == 0) continue;
    if (nic_by_lid_.size() <= lid) nic_by_lid_.resize(lid + 1u, kNone);
    nic_by_lid_[lid] = static_cast<Index>(n);
  }
  has_routes_ = std::any_of(lft_.begin(), lft_.end(), [](const auto& v) { return !v.empty(); });
}

Index Fabric::nic_by_lid(std::uint16_t lid) const {
  return lid < nic_by_lid_.size() ? nic_by_lid_[lid] : kNone;
}

std::optional<Route> Fabric::route(Index a, Index b) const {
  if (!has_routes_ || a == b) return std::nullopt;
  const std::uint16_t lid = nics_[uz(b)].lid;
  Index sw = nics_[uz(a)].leaf;
  if (lid == 0 || sw == kNone) return std::nullopt;
  Route r;
  r.links.push_back(nic_link_[uz(a)]);
  for (int step = 0; step < 64; ++step) {
    r.switches.push_back(sw);
    const auto& lft = lft_[uz(sw)];
    if (lid >= lft.size()) return std::nullopt;
    const int port = lft[lid];
    if (port == kNoPort || port == 0) return std::nullopt;
    const Index li = port_link(sw, port);
    if (li == kNone) return std::nullopt;
    r.links.push_back(li);
    const Link& l = links_[uz(li)];
    const LinkEnd& other =
        (l.a.kind == NodeKind::kSwitch && l.a.index == sw && l.a.port == port) ? l.b : l.a;
    if (other.kind == NodeKind::kNic) {
      if (other.index == b) return r;
      return std::nullopt;
    }
    sw = other.index;
  }
  return std::nullopt;
}

Index Fabric::route_spine(Index a, Index b) const {
  const auto r = route(a, b);
  if (!r) return kNone;
  for (const Index s : r->switches) {
    if (switches_[uz(s)].level == 2) return s;
  }
  return kNone;
}

// ---------------------------------------------------------------------------------------------
// Text output

std::string canonical_text(const Fabric& f, bool local_fields) {
  std::string out =
      fmt::format("fabric hosts={} nics={} switches={} links={} rails={} racks={} pods={}\n",
                  f.hosts().size(), f.nics().size(), f.switches().size(), f.links().size(),
                  f.rails(), f.racks().size(), f.pods().size());
  for (const auto& p : f.pods()) out += fmt::format("pod {}\n", p);
  for (const auto& r : f.racks()) out += fmt::format("rack {}\n", r);
  const auto pod_name = [&](Index p) { return p == kNone ? std::string("-") : f.pods()[uz(p)]; };
  for (const Switch& s : f.switches()) {
    out += fmt::format("switch {} guid=0x{:016x} lid={} level={} pod={} ports={}\n", s.name, s.guid,
                       s.lid, s.level, pod_name(s.pod), s.ports);
  }
  for (const Host& h : f.hosts()) {
    out += fmt::format("host {} rack={} nics={}\n", h.name,
                       h.rack == kNone ? std::string("-") : f.racks()[uz(h.rack)], h.nic_count);
  }
  for (const Nic& n : f.nics()) {
    out += fmt::format(
        "nic {}/{}:{} node_guid=0x{:016x} port_guid=0x{:016x} lid={} link_layer={} rate_gbps={} "
        "width={} rail={} leaf={} leaf_port={}",
        f.hosts()[uz(n.host)].name, n.device, n.port, n.node_guid, n.port_guid, n.lid,
        to_string(n.link_layer), n.rate_gbps, n.width, n.rail,
        n.leaf == kNone ? std::string("-") : f.switches()[uz(n.leaf)].name, n.leaf_port);
    if (local_fields) {
      out += fmt::format(" state={} mtu_bytes={} numa_node={} pci={} netdev={}", to_string(n.state),
                         n.mtu_bytes, n.numa_node, n.pci_address, n.netdev);
    }
    out += '\n';
  }
  for (const Link& l : f.links()) {
    out += fmt::format("link {} - {} rate_gbps={} width={}\n", end_name(f, l.a), end_name(f, l.b),
                       l.rate_gbps, l.width);
  }
  return out;
}

std::string format_summary(const Fabric& f, int max_lines) {
  std::string out;
  const auto count = [](std::int64_t n, const char* one, const char* many) {
    return fmt::format("{} {}", n, n == 1 ? one : many);
  };
  const auto tiers = fmt::format("{}, {}, {}", count(f.count_switches(1), "leaf", "leaves"),
                                 count(f.count_switches(2), "spine", "spines"),
                                 count(f.count_switches(3), "core", "cores"));
  out += fmt::format("fabric '{}' from {}\n", f.name(), f.source());
  out += fmt::format("  {} hosts, {} NICs ({} rail{}), {} racks\n", f.hosts().size(),
                     f.nics().size(), f.rails(), f.rails() == 1 ? "" : "s", f.racks().size());
  out += fmt::format(
      "  {} switches: {}{} in {} pod{}\n", f.switches().size(), tiers,
      f.max_level() > 3
          ? fmt::format(" (+ {} above level 3)",
                        f.switches().size() -
                            static_cast<std::size_t>(f.count_switches(1) + f.count_switches(2) +
                                                     f.count_switches(3)))
          : std::string(),
      f.pods().size(), f.pods().size() == 1 ? "" : "s");
  std::int64_t upper = 0;
  std::map<std::pair<double, int>, std::int64_t> host_rates;
  for (std::size_t li = 0; li < f.links().size(); ++li) {
    const Link& l = f.links()[li];
    if (l.a.kind == NodeKind::kNic)
      ++host_rates[{l.rate_gbps, l.width}];
    else if (!f.is_leaf_spine_link(static_cast<Index>(li)))
      ++upper;
  }
  out += fmt::format("  links: {} host-leaf, {} leaf-spine, {} above the spines\n",
                     f.host_link_count(), f.leaf_spine_link_count(), upper);
  out += fmt::format("  routes: {}\n", f.has_routes() ? "known (switch forwarding tables)"
                                                      : "unknown (ECMP/hash spreading assumed)");
  // Per pod.
  const std::size_t P = f.pods().size();
  std::vector<std::int64_t> leaves(P), spines(P), hosts(P);
  for (const Switch& s : f.switches()) {
    if (s.pod == kNone) continue;
    if (s.level == 1) ++leaves[uz(s.pod)];
    if (s.level == 2) ++spines[uz(s.pod)];
  }
  for (std::size_t h = 0; h < f.hosts().size(); ++h) {
    const Index p = f.host_pod(static_cast<Index>(h));
    if (p != kNone) ++hosts[uz(p)];
  }
  int lines = 0;
  for (std::size_t p = 0; p < P; ++p) {
    if (lines++ >= max_lines) {
      out += fmt::format("  ... {} more pods\n", P - p);
      break;
    }
    out += fmt::format("  pod {}: {}, {}, {} (by primary NIC)\n", f.pods()[p],
                       count(leaves[p], "leaf", "leaves"), count(spines[p], "spine", "spines"),
                       count(hosts[p], "host", "hosts"));
  }
  // Warnings.
  std::vector<std::string> warn;
  std::vector<std::string> lonely;
  for (const Host& h : f.hosts()) {
    bool cabled = false;
    for (Index k = 0; k < h.nic_count; ++k) cabled |= f.nics()[uz(h.first_nic + k)].leaf != kNone;
    if (!cabled) lonely.push_back(h.name);
  }
  const auto sample = [](const std::vector<std::string>& v) {
    std::string s;
    for (std::size_t i = 0; i < v.size() && i < 8; ++i) s += (i ? ", " : "") + v[i];
    if (v.size() > 8) s += fmt::format(", ... ({} in all)", v.size());
    return s;
  };
  if (!lonely.empty())
    warn.push_back(fmt::format("{} hosts have no cabled NIC: {}", lonely.size(), sample(lonely)));
  std::vector<std::string> no_up;
  for (std::size_t s = 0; s < f.switches().size(); ++s) {
    if (f.switches()[s].level == 1 && f.uplinks(static_cast<Index>(s)) == 0 &&
        f.switches().size() > 1) {
      no_up.push_back(f.switches()[s].name);
    }
  }
  if (!no_up.empty())
    warn.push_back(fmt::format("{} leaves have no uplink: {}", no_up.size(), sample(no_up)));
  if (host_rates.size() > 1) {
    std::string s;
    for (const auto& [k, n] : host_rates)
      s += fmt::format("{}{} Gb/s {}x: {}", s.empty() ? "" : ", ", k.first, k.second, n);
    warn.push_back("host link rates differ: " + s);
  }
  std::vector<std::string> inactive;
  for (const Nic& n : f.nics()) {
    if (n.state != PortState::kUnknown && n.state != PortState::kActive) {
      inactive.push_back(
          fmt::format("{}:{} ({})", f.hosts()[uz(n.host)].name, n.device, to_string(n.state)));
    }
  }
  if (!inactive.empty())
    warn.push_back(fmt::format("{} NIC ports not ACTIVE: {}", inactive.size(), sample(inactive)));
  for (const auto& w : warn) out += "  warning: " + w + "\n";
  return out;
}

}  // namespace fabscope::topology
