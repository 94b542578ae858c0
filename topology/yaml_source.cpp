// Topology YAML, version 1: a RoCE/Ethernet (or any) fabric described by hand.
// (The same text, with examples, is in configs/topologies/README.md.)
//
//   version: 1                    # required
//   name: emu8                    # optional, free text
//   link_layer: ethernet          # ethernet (default) or infiniband: the NICs' link layer
//   rate_gbps: 100                # optional rate of every link (default 0 = unknown)
//   spines: [spine1, spine2]      # the spines of the single pod "pod1" (when `pods` is absent)
//   pods:                         # or: several pods, each with its spines
//     - name: podA
//       spines: [sA1, sA2]        # spine entries are names or {name, cores: [..], rate_gbps}
//   cores: [core1, core2]         # optional tier 3; every spine links to every core, unless the
//                                 # spine lists its own `cores`
//   leaves:                       # required; names or maps:
//     - name: leaf1
//       pod: podA                 # required when there are several pods
//       spines: [sA1]             # optional subset of the pod's spines (default: all of them)
//       links_per_spine: 1        # optional parallel uplinks to each spine
//       rate_gbps: 400            # optional uplink rate
//   racks:                        # required: which leaf each host NIC is cabled to
//     - name: r1
//       leaf: leaf1               # every NIC of the rack on one leaf, or
//       leaves: [l1r0, l1r1]      # one leaf per rail (rail-optimized): NIC r -> leaves[r]
//       nics_per_host: 2          # optional; default len(leaves), len(devices) or 1
//       devices: [mlx5_0, mlx5_1] # optional device name of each rail
//       hosts:                    # names, or maps with explicit NICs
//         - h1
//         - name: h2
//           nics:
//             - {device: mlx5_0, port: 1, rail: 0, leaf: leaf1, leaf_port: 7,
//                netdev: eth2, rate_gbps: 400}
//
// Ports: a host NIC without leaf_port takes the next free port of its leaf after the highest
// explicit one, in file order; uplinks are numbered after the host ports. Levels are given by the
// section (leaves 1, spines 2, cores 3); pods by the pod names.
//
// Every mistake is one core::UsageError line "FILE:LINE: FIELD: problem; fix", e.g.
//   emu8.yaml:14: racks[1].leaf: unknown leaf 'leaf3'; declare it under 'leaves' (known: leaf1,
//   leaf2)
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "core/error.hpp"
#include "topology/sources.hpp"

namespace fabscope::topology {
namespace {

class Parser {
 public:
  explicit Parser(std::string file) : file_(std::move(file)) {}

  [[noreturn]] void fail(const YAML::Node& at, const std::string& field,
                         const std::string& msg) const {
    const int line = at.IsDefined() && at.Mark().line >= 0 ? at.Mark().line + 1 : 0;
    throw core::UsageError(line > 0 ? fmt::format("{}:{}: {}: {}", file_, line, field, msg)
                                    : fmt::format("{}: {}: {}", file_, field, msg));
  }

  void known_keys(const YAML::Node& map, const std::string& field,
                  std::initializer_list<const char*> keys) const {
    for (const auto& kv : map) {
      const std::string k = kv.first.as<std::string>();
      if (std::none_of(keys.begin(), keys.end(), [&](const char* x) { return k == x; })) {
        std::string list;
        for (const char* x : keys) {
          if (!list.empty()) list += ", ";
          list += x;
        }
        fail(kv.first, field.empty() ? k : fmt::format("{}.{}", field, k),
             fmt::format("unknown field; known here: {}", list));
      }
    }
  }

  std::string scalar(const YAML::Node& n, const std::string& field) const {
    if (!n.IsScalar()) fail(n, field, "expected a name or value, not a list or map");
    return n.as<std::string>();
  }

  // A name given as a plain scalar (cores, list entries); never empty.
  std::string entry_name(const YAML::Node& n, const std::string& field) const {
    std::string s = scalar(n, field);
    if (s.empty()) fail(n, field, "empty name; give every entry a name");
    return s;
  }

  std::string name_of(const YAML::Node& n, const std::string& field) const {
    if (n.IsScalar()) return entry_name(n, field);
    if (!n.IsMap()) fail(n, field, "expected a name or a map with 'name'");
    if (!n["name"]) fail(n, field + ".name", "missing; every entry needs a name");
    std::string s = scalar(n["name"], field + ".name");
    if (s.empty()) fail(n["name"], field + ".name", "empty name");
    return s;
  }

  long long integer(const YAML::Node& n, const std::string& field, long long lo,
                    long long hi) const {
    long long v = 0;
    if (!n.IsScalar() || !YAML::convert<long long>::decode(n, v))
      fail(n, field,
           fmt::format("expected an integer, got '{}'",
                       n.IsScalar() ? n.as<std::string>() : "a list or map"));
    if (v < lo || v > hi) fail(n, field, fmt::format("{} is out of range [{}, {}]", v, lo, hi));
    return v;
  }

  double number(const YAML::Node& n, const std::string& field) const {
    double v = 0;
    if (!n.IsScalar() || !YAML::convert<double>::decode(n, v) || !(v >= 0)) {
      fail(n, field, "expected a non-negative number (Gb/s)");
    }
    return v;
  }

  std::vector<YAML::Node> list(const YAML::Node& n, const std::string& field) const {
    if (!n.IsSequence()) fail(n, field, "expected a list ([a, b] or '- a' lines)");
    std::vector<YAML::Node> out;
    for (const auto& x : n) out.push_back(x);
    return out;
  }

  std::string hint_names(const std::map<std::string, Index>& m) const {
    std::string s;
    std::size_t i = 0;
    for (const auto& [k, v] : m) {
      if (i++ == 8) {
        s += ", ...";
        break;
      }
      s += (s.empty() ? "" : ", ") + k;
    }
    return s.empty() ? "none" : s;
  }

  Fabric parse(const YAML::Node& root) {
    if (!root.IsMap()) fail(root, "(top level)", "expected a map with version, leaves and racks");
    known_keys(root, "",
               {"version", "name", "link_layer", "rate_gbps", "spines", "pods", "cores", "leaves",
                "racks"});
    if (!root["version"]) fail(root, "version", "missing; start the file with 'version: 1'");
    if (integer(root["version"], "version", 0, 1000) != 1)
      fail(root["version"], "version", "only version 1 is known");
    const std::string name = root["name"] ? scalar(root["name"], "name") : std::string();
    LinkLayer ll = LinkLayer::kEthernet;
    if (root["link_layer"]) {
      ll = parse_link_layer(scalar(root["link_layer"], "link_layer"));
      if (ll == LinkLayer::kUnknown)
        fail(root["link_layer"], "link_layer", "must be 'ethernet' or 'infiniband'");
    }
    const double rate = root["rate_gbps"] ? number(root["rate_gbps"], "rate_gbps") : 0.0;
    FabricBuilder b(name.empty() ? file_ : name, "yaml:" + file_);
    b.rails_explicit(true);

    std::map<std::string, Index> switches;  // every switch name -> builder index
    const auto add_switch = [&](const YAML::Node& at, const std::string& field,
                                const std::string& n, int level, Index pod) {
      if (switches.count(n) != 0) fail(at, field, fmt::format("switch name '{}' is used twice", n));
      Switch sw;
      sw.name = n;
      sw.level = static_cast<std::uint8_t>(level);
      sw.pod = pod;
      const Index i = b.add_switch(std::move(sw));
      switches.emplace(n, i);
      return i;
    };

    // Cores.
    std::vector<Index> cores;
    std::map<std::string, Index> core_names;
    if (root["cores"]) {
      const auto v = list(root["cores"], "cores");
      for (std::size_t i = 0; i < v.size(); ++i) {
        const std::string f = fmt::format("cores[{}]", i);
        const std::string n = entry_name(v[i], f);
        cores.push_back(add_switch(v[i], f, n, 3, kNone));
        core_names.emplace(n, cores.back());
      }
    }
    // Pods and spines.
    if (root["pods"] && root["spines"]) {
      fail(root["spines"], "spines",
           "give spines either at the top (one pod) or under 'pods', not both");
    }
    std::map<std::string, Index> pod_names;
    std::map<Index, std::vector<Index>> pod_spines;
    std::map<std::string, Index> spine_names;
    struct UpLinks {
      YAML::Node at;
      std::string field;
      Index spine;
      std::vector<Index> cores;
      double rate;
    };
    std::vector<UpLinks> spine_up;
    const auto parse_spines = [&](const YAML::Node& node, const std::string& field, Index pod) {
      const auto v = list(node, field);
      for (std::size_t i = 0; i < v.size(); ++i) {
        const std::string f = fmt::format("{}[{}]", field, i);
        const std::string n = name_of(v[i], f);
        if (v[i].IsMap()) known_keys(v[i], f, {"name", "cores", "rate_gbps"});
        const Index s = add_switch(v[i], f, n, 2, pod);
        spine_names.emplace(n, s);
        pod_spines[pod].push_back(s);
        UpLinks up{v[i], f, s, cores, rate};
        if (v[i].IsMap() && v[i]["cores"]) {
          up.cores.clear();
          const auto cv = list(v[i]["cores"], f + ".cores");
          for (std::size_t c = 0; c < cv.size(); ++c) {
            const std::string cf = fmt::format("{}.cores[{}]", f, c);
            const std::string cn = scalar(cv[c], cf);
            const auto it = core_names.find(cn);
            if (it == core_names.end())
              fail(cv[c], cf,
                   fmt::format("unknown core '{}'; declare it under 'cores' (known: {})", cn,
                               hint_names(core_names)));
            up.cores.push_back(it->second);
          }
        }
        if (v[i].IsMap() && v[i]["rate_gbps"])
          up.rate = number(v[i]["rate_gbps"], f + ".rate_gbps");
        spine_up.push_back(std::move(up));
      }
    };
    if (root["pods"]) {
      const auto v = list(root["pods"], "pods");
      if (v.empty()) fail(root["pods"], "pods", "empty; list at least one pod or drop 'pods'");
      for (std::size_t i = 0; i < v.size(); ++i) {
        const std::string f = fmt::format("pods[{}]", i);
        const std::string n = name_of(v[i], f);
        if (v[i].IsMap()) known_keys(v[i], f, {"name", "spines"});
        if (pod_names.count(n) != 0) fail(v[i], f, fmt::format("pod '{}' is declared twice", n));
        const Index p = b.pod(n);
        pod_names.emplace(n, p);
        pod_spines[p];
        if (v[i].IsMap() && v[i]["spines"]) parse_spines(v[i]["spines"], f + ".spines", p);
      }
    } else {
      const Index p = b.pod("pod1");
      pod_names.emplace("pod1", p);
      pod_spines[p];
      if (root["spines"]) parse_spines(root["spines"], "spines", p);
    }
    for (const auto& up : spine_up) {
      for (const Index c : up.cores)
        b.connect({NodeKind::kSwitch, up.spine, 0}, {NodeKind::kSwitch, c, 0}, up.rate);
    }
    if (!cores.empty() && spine_up.empty())
      fail(root["cores"], "cores", "cores need spines to link to");

    // Leaves.
    if (!root["leaves"]) fail(root, "leaves", "missing; list the leaf (top-of-rack) switches");
    const auto lv = list(root["leaves"], "leaves");
    if (lv.empty()) fail(root["leaves"], "leaves", "empty; list at least one leaf");
    std::map<std::string, Index> leaf_names;
    std::map<Index, std::vector<Index>> pod_leaves;
    struct LeafUp {
      Index leaf;
      std::vector<Index> spines;
      long long per;
      double rate;
    };
    std::vector<LeafUp> leaf_up;
    for (std::size_t i = 0; i < lv.size(); ++i) {
      const std::string f = fmt::format("leaves[{}]", i);
      const std::string n = name_of(lv[i], f);
      Index pod = pod_names.begin()->second;
      if (lv[i].IsMap()) {
        known_keys(lv[i], f, {"name", "pod", "spines", "links_per_spine", "rate_gbps"});
        if (lv[i]["pod"]) {
          const std::string pn = scalar(lv[i]["pod"], f + ".pod");
          const auto it = pod_names.find(pn);
          if (it == pod_names.end())
            fail(lv[i]["pod"], f + ".pod",
                 fmt::format("unknown pod '{}'; declare it under 'pods' (known: {})", pn,
                             hint_names(pod_names)));
          pod = it->second;
        }
      }
      if (pod_names.size() > 1 && !(lv[i].IsMap() && lv[i]["pod"])) {
        fail(lv[i], f + ".pod",
             fmt::format("missing; with several pods every leaf names its pod (known: {})",
                         hint_names(pod_names)));
      }
      const Index leaf = add_switch(lv[i], f, n, 1, pod);
      leaf_names.emplace(n, leaf);
      pod_leaves[pod].push_back(leaf);
      LeafUp up{leaf, pod_spines[pod], 1, rate};
      if (lv[i].IsMap() && lv[i]["spines"]) {
        up.spines.clear();
        const auto sv = list(lv[i]["spines"], f + ".spines");
        for (std::size_t s = 0; s < sv.size(); ++s) {
          const std::string sf = fmt::format("{}.spines[{}]", f, s);
          const std::string sn = scalar(sv[s], sf);
          const auto it = spine_names.find(sn);
          if (it == spine_names.end())
            fail(sv[s], sf,
                 fmt::format("unknown spine '{}' (known: {})", sn, hint_names(spine_names)));
          const auto& own = pod_spines[pod];
          if (std::find(own.begin(), own.end(), it->second) == own.end()) {
            fail(sv[s], sf,
                 fmt::format(
                     "spine '{}' belongs to another pod; a leaf links to the spines of its own pod",
                     sn));
          }
          up.spines.push_back(it->second);
        }
      }
      if (lv[i].IsMap() && lv[i]["links_per_spine"])
        up.per = integer(lv[i]["links_per_spine"], f + ".links_per_spine", 1, 64);
      if (lv[i].IsMap() && lv[i]["rate_gbps"])
        up.rate = number(lv[i]["rate_gbps"], f + ".rate_gbps");
      leaf_up.push_back(std::move(up));
    }
    for (const auto& [pod, leaves] : pod_leaves) {
      if (leaves.size() > 1 && pod_spines[pod].empty()) {
        std::string pn;
        for (const auto& [n, i] : pod_names) {
          if (i == pod) pn = n;
        }
        fail(root["pods"] ? root["pods"] : root["leaves"], root["pods"] ? "pods" : "spines",
             fmt::format(
                 "pod '{}' has {} leaves but no spines, so its leaves cannot reach each other; "
                 "list its spines",
                 pn, leaves.size()));
      }
    }
    if (pod_leaves.size() > 1 && cores.empty()) {
      fail(root["pods"], "cores",
           "several pods need cores to connect them; list them under 'cores'");
    }

    // Racks and hosts. Host links first so that host ports come before uplinks.
    if (!root["racks"]) fail(root, "racks", "missing; list the racks with their leaf and hosts");
    const auto rv = list(root["racks"], "racks");
    if (rv.empty()) fail(root["racks"], "racks", "empty; list at least one rack");
    std::set<std::string> rack_seen;
    std::map<std::string, std::string> host_rack;
    std::set<std::pair<Index, long long>> ports_taken;
    const auto leaf_ref = [&](const YAML::Node& n, const std::string& f) {
      const std::string ln = scalar(n, f);
      const auto it = leaf_names.find(ln);
      if (it == leaf_names.end()) {
        fail(n, f,
             fmt::format("unknown leaf '{}'; declare it under 'leaves' (known: {})", ln,
                         hint_names(leaf_names)));
      }
      return it->second;
    };
    for (std::size_t i = 0; i < rv.size(); ++i) {
      const std::string f = fmt::format("racks[{}]", i);
      const YAML::Node& r = rv[i];
      if (!r.IsMap()) fail(r, f, "expected a map with name, leaf (or leaves) and hosts");
      known_keys(r, f, {"name", "leaf", "leaves", "nics_per_host", "devices", "hosts"});
      const std::string rn = name_of(r, f);
      if (!rack_seen.insert(rn).second)
        fail(r["name"], f + ".name", fmt::format("rack '{}' is declared twice", rn));
      const Index rack = b.rack(rn);
      if (r["leaf"] && r["leaves"])
        fail(r["leaves"], f + ".leaves", "give either 'leaf' or 'leaves', not both");
      std::vector<Index> rail_leaf;
      if (r["leaf"]) rail_leaf.push_back(leaf_ref(r["leaf"], f + ".leaf"));
      if (r["leaves"]) {
        const auto v = list(r["leaves"], f + ".leaves");
        for (std::size_t k = 0; k < v.size(); ++k)
          rail_leaf.push_back(leaf_ref(v[k], fmt::format("{}.leaves[{}]", f, k)));
      }
      std::vector<std::string> devices;
      if (r["devices"]) {
        const auto v = list(r["devices"], f + ".devices");
        for (std::size_t k = 0; k < v.size(); ++k)
          devices.push_back(scalar(v[k], fmt::format("{}.devices[{}]", f, k)));
      }
      long long nics = r["leaves"]       ? static_cast<long long>(rail_leaf.size())
                       : devices.empty() ? 1
                                         : static_cast<long long>(devices.size());
      if (r["nics_per_host"]) nics = integer(r["nics_per_host"], f + ".nics_per_host", 1, 64);
      if (r["leaves"] && static_cast<long long>(rail_leaf.size()) != nics) {
        fail(r["leaves"], f + ".leaves",
             fmt::format("{} leaves for {} NICs per host; give one leaf per rail", rail_leaf.size(),
                         nics));
      }
      if (!devices.empty() && static_cast<long long>(devices.size()) != nics) {
        fail(r["devices"], f + ".devices",
             fmt::format("{} devices for {} NICs per host; give one device per rail",
                         devices.size(), nics));
      }
      if (!r["hosts"]) fail(r, f + ".hosts", "missing; list the rack's host names");
      const auto hv = list(r["hosts"], f + ".hosts");
      if (hv.empty()) fail(r["hosts"], f + ".hosts", "empty; list the rack's host names");
      for (std::size_t k = 0; k < hv.size(); ++k) {
        const std::string hf = fmt::format("{}.hosts[{}]", f, k);
        const std::string hn = name_of(hv[k], hf);
        if (hv[k].IsMap()) known_keys(hv[k], hf, {"name", "nics"});
        const auto [it, ins] = host_rack.emplace(hn, rn);
        if (!ins) fail(hv[k], hf, fmt::format("host '{}' is already in rack '{}'", hn, it->second));
        const Index h = b.host(hn);
        b.set_rack(h, rack);
        const auto add = [&](const YAML::Node& at, const std::string& nf, int rail,
                             std::string device, int port, Index leaf, long long leaf_port,
                             std::string netdev, double nic_rate) {
          if (leaf == kNone) {
            fail(at, nf,
                 "no leaf for this NIC; give the rack a 'leaf' (or 'leaves') or the NIC a 'leaf'");
          }
          if (leaf_port > 0 && !ports_taken.emplace(leaf, leaf_port).second) {
            fail(at, nf + ".leaf_port",
                 fmt::format("port {} of leaf '{}' is already taken", leaf_port,
                             b.switch_at(leaf).name));
          }
          Nic n;
          n.host = h;
          n.device = std::move(device);
          n.port = static_cast<std::uint8_t>(port);
          n.rail = static_cast<std::int16_t>(rail);
          n.link_layer = ll;
          n.netdev = std::move(netdev);
          const Index ni = b.add_nic(std::move(n));
          b.connect({NodeKind::kNic, ni, 0},
                    {NodeKind::kSwitch, leaf, static_cast<std::int16_t>(std::max(0LL, leaf_port))},
                    nic_rate);
        };
        if (hv[k].IsMap() && hv[k]["nics"]) {
          const auto nv = list(hv[k]["nics"], hf + ".nics");
          if (nv.empty())
            fail(hv[k]["nics"], hf + ".nics", "empty; list the host's NICs or drop 'nics'");
          std::set<int> rails;
          for (std::size_t q = 0; q < nv.size(); ++q) {
            const std::string nf = fmt::format("{}.nics[{}]", hf, q);
            const YAML::Node& n = nv[q];
            if (!n.IsMap()) fail(n, nf, "expected a map, e.g. {device: mlx5_0, leaf: leaf1}");
            known_keys(n, nf,
                       {"device", "port", "rail", "leaf", "leaf_port", "netdev", "rate_gbps"});
            const int rail = n["rail"] ? static_cast<int>(integer(n["rail"], nf + ".rail", 0, 63))
                                       : static_cast<int>(q);
            if (!rails.insert(rail).second)
              fail(n, nf + ".rail", fmt::format("rail {} is used twice on host '{}'", rail, hn));
            const Index leaf = n["leaf"] ? leaf_ref(n["leaf"], nf + ".leaf")
                               : rail < static_cast<int>(rail_leaf.size())
                                   ? rail_leaf[static_cast<std::size_t>(rail)]
                               : rail_leaf.size() == 1 ? rail_leaf[0]
                                                       : kNone;
            std::string dev = n["device"] ? scalar(n["device"], nf + ".device")
                              : rail < static_cast<int>(devices.size())
                                  ? devices[static_cast<std::size_t>(rail)]
                                  : std::string();
            add(n, nf, rail, std::move(dev),
                n["port"] ? static_cast<int>(integer(n["port"], nf + ".port", 1, 255)) : 1, leaf,
                n["leaf_port"] ? integer(n["leaf_port"], nf + ".leaf_port", 1, 32767) : 0,
                n["netdev"] ? scalar(n["netdev"], nf + ".netdev") : std::string(),
                n["rate_gbps"] ? number(n["rate_gbps"], nf + ".rate_gbps") : rate);
          }
        } else {
          for (long long q = 0; q < nics; ++q) {
            const Index leaf = static_cast<std::size_t>(q) < rail_leaf.size()
                                   ? rail_leaf[static_cast<std::size_t>(q)]
                               : rail_leaf.size() == 1 ? rail_leaf[0]
                                                       : kNone;
            add(hv[k], hf, static_cast<int>(q),
                q < static_cast<long long>(devices.size()) ? devices[static_cast<std::size_t>(q)]
                                                           : std::string(),
                1, leaf, 0, std::string(), rate);
          }
        }
      }
    }
    for (const LeafUp& up : leaf_up) {
      for (const Index s : up.spines) {
        for (long long k = 0; k < up.per; ++k)
          b.connect({NodeKind::kSwitch, up.leaf, 0}, {NodeKind::kSwitch, s, 0}, up.rate);
      }
    }
    return std::move(b).build();
  }

 private:
  std::string file_;
};

// yaml-cpp keeps both entries of a key given twice in one map and answers a lookup with the
// first, so `leaf: l1` followed by `leaf: l2` would silently mean l1. Every map of the file is
// checked for repeated keys before anything is read.
void check_duplicate_keys(const YAML::Node& n, const std::string& file) {
  if (n.IsSequence()) {
    for (const auto& x : n) check_duplicate_keys(x, file);
  } else if (n.IsMap()) {
    std::set<std::string> keys;
    for (const auto& kv : n) {
      if (kv.first.IsScalar() && !keys.insert(kv.first.Scalar()).second) {
        throw core::UsageError(fmt::format("{}:{}: duplicate key '{}'; give each key once per map",
                                           file, kv.first.Mark().line + 1, kv.first.Scalar()));
      }
      check_duplicate_keys(kv.second, file);
    }
  }
}

}  // namespace

Fabric parse_topology_yaml(std::string_view text, const std::string& name) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::ParserException& e) {
    throw core::UsageError(
        fmt::format("{}:{}: YAML syntax: {}; check indentation, colons and brackets", name,
                    e.mark.line + 1, e.msg));
  }
  try {
    check_duplicate_keys(root, name);
    return Parser(name).parse(root);
  } catch (const YAML::Exception& e) {  // a type conversion the checks above did not anticipate
    throw core::UsageError(fmt::format("{}:{}: {}", name, e.mark.line + 1, e.msg));
  }
}

Fabric load_topology_yaml(const std::string& path) {
  return parse_topology_yaml(read_text_file(path, "topology file"), path);
}

std::string read_text_file(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw core::UsageError(fmt::format("{} '{}': cannot open it ({}); check the path", what, path,
                                       core::errno_message("open", errno)));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace fabscope::topology
