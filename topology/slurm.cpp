// Slurm's switch tree (topology.conf, `scontrol show topology`, SLURM_TOPOLOGY_ADDR) as a Fabric.
// The formats are described in slurm.hpp.
#include "topology/slurm.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <map>
#include <set>

#include "core/error.hpp"
#include "topology/sources.hpp"

namespace fabscope::topology {
namespace {

[[noreturn]] void fail(std::string_view where, const std::string& msg) {
  throw core::UsageError(fmt::format("{}: {}", where, msg));
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// One bracket group "[001-003,7]": its numbers as text, padded as Slurm pads them.
std::vector<std::string> expand_range_list(std::string_view body, std::string_view expr,
                                           std::string_view where, std::size_t max_names) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= body.size()) {
    auto comma = body.find(',', start);
    if (comma == std::string_view::npos) comma = body.size();
    const std::string_view item = body.substr(start, comma - start);
    start = comma + 1;
    const auto dash = item.find('-');
    const std::string_view lo_text = item.substr(0, dash);
    const std::string_view hi_text =
        dash == std::string_view::npos ? lo_text : item.substr(dash + 1);
    const auto number = [&](std::string_view t, unsigned long long& v) {
      if (t.empty() || t.size() > 18 ||
          !std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        fail(where, fmt::format("hostlist '{}': '[{}]' holds '{}', which is not a number or a "
                                "range A-B of numbers; write e.g. n[001-128,130]",
                                expr, body, item));
      }
      std::from_chars(t.data(), t.data() + t.size(), v);
    };
    unsigned long long lo = 0, hi = 0;
    number(lo_text, lo);
    number(hi_text, hi);
    if (hi < lo) {
      fail(where, fmt::format("hostlist '{}': range '{}' runs backwards; write the lower bound "
                              "first",
                              expr, item));
    }
    if (hi - lo >= max_names || out.size() + (hi - lo + 1) > max_names) {
      fail(where, fmt::format("hostlist '{}' names more than {} hosts; split it", expr, max_names));
    }
    const std::size_t width = lo_text.size();
    for (unsigned long long v = lo; v <= hi; ++v) out.push_back(fmt::format("{:0{}d}", v, width));
    if (comma == body.size()) break;
  }
  return out;
}

// One switch as Slurm lists it.
struct SwitchRecord {
  std::string name;
  std::string where;  // "FILE:LINE"
  std::vector<std::string> nodes, children;
  int level = -1;  // scontrol's Level=, -1 when not given
};

Fabric build_tree(const std::vector<SwitchRecord>& records, const std::string& name,
                  const std::string& source) {
  if (records.empty()) {
    fail(name,
         "no SwitchName= lines; a topology/tree description has lines like 'SwitchName=leaf1 "
         "Nodes=n[1-32]' (see topology.conf(5))");
  }
  std::map<std::string, std::size_t> by_name;
  for (std::size_t i = 0; i < records.size(); ++i) {
    const auto [it, fresh] = by_name.emplace(records[i].name, i);
    if (!fresh) {
      fail(records[i].where, fmt::format("switch '{}' is declared again (first at {}); give each "
                                         "switch one SwitchName= line",
                                         records[i].name, records[it->second].where));
    }
  }
  // Children must exist; no switch may be its own ancestor (the tree has no cycles).
  std::vector<std::vector<std::size_t>> kids(records.size());
  for (std::size_t i = 0; i < records.size(); ++i) {
    std::set<std::string> seen;
    for (const auto& c : records[i].children) {
      const auto it = by_name.find(c);
      if (it == by_name.end()) {
        fail(records[i].where,
             fmt::format("switch '{}' lists switch '{}' under Switches=, which has no SwitchName= "
                         "line; declare it or remove it",
                         records[i].name, c));
      }
      if (it->second == i) {
        fail(records[i].where,
             fmt::format("switch '{}' lists itself under Switches=; remove it", c));
      }
      if (seen.insert(c).second) kids[i].push_back(it->second);
    }
  }
  {
    std::vector<int> state(records.size(), 0);  // 0 new, 1 on the path, 2 done
    for (std::size_t root = 0; root < records.size(); ++root) {
      if (state[root] != 0) continue;
      std::vector<std::pair<std::size_t, std::size_t>> stack{{root, 0}};
      state[root] = 1;
      while (!stack.empty()) {
        auto& [s, next] = stack.back();
        if (next < kids[s].size()) {
          const std::size_t t = kids[s][next++];
          if (state[t] == 1) {
            fail(records[s].where,
                 fmt::format("switch '{}' lists '{}' under Switches=, which is above it; a tree "
                             "has no cycles",
                             records[s].name, records[t].name));
          }
          if (state[t] == 0) {
            state[t] = 1;
            stack.emplace_back(t, 0);
          }
        } else {
          state[s] = 2;
          stack.pop_back();
        }
      }
    }
  }
  const bool levels_given = std::any_of(records.begin(), records.end(),
                                        [](const SwitchRecord& r) { return r.level >= 0; });
  FabricBuilder b(name, source);
  std::vector<Index> sw(records.size(), kNone);
  for (std::size_t i = 0; i < records.size(); ++i) {
    Switch s;
    s.name = records[i].name;
    sw[i] = b.add_switch(std::move(s));
  }
  std::size_t nodes = 0;
  for (std::size_t i = 0; i < records.size(); ++i) {
    // scontrol lists every node below a switch; a node hangs off its Level=0 switch only.
    if (levels_given && records[i].level != 0) continue;
    std::set<std::string> seen;
    for (const auto& n : records[i].nodes) {
      if (!seen.insert(n).second) {
        fail(records[i].where,
             fmt::format("node '{}' is listed twice under switch '{}'", n, records[i].name));
      }
      Nic nic;
      nic.host = b.host(n);
      const Index ni = b.add_nic(std::move(nic));
      b.connect({NodeKind::kNic, ni, 1}, {NodeKind::kSwitch, sw[i], 0});
      ++nodes;
    }
  }
  if (nodes == 0) {
    fail(name,
         "no switch lists any Nodes=; the leaves need 'Nodes=' with their hosts (e.g. "
         "'SwitchName=leaf1 Nodes=n[1-32]')");
  }
  for (std::size_t i = 0; i < records.size(); ++i) {
    for (const std::size_t k : kids[i])
      b.connect({NodeKind::kSwitch, sw[k], 0}, {NodeKind::kSwitch, sw[i], 0});
  }
  return std::move(b).build();
}

}  // namespace

std::vector<std::string> expand_hostlist(std::string_view expr, std::string_view where,
                                         std::size_t max_names) {
  std::vector<std::string> out;
  if (expr.empty()) fail(where, "empty hostlist; give host names like n[001-128,130]");
  std::size_t start = 0;
  while (start <= expr.size()) {
    // The next top-level comma (commas inside brackets separate numbers).
    std::size_t end = start;
    int depth = 0;
    for (; end < expr.size(); ++end) {
      const char c = expr[end];
      if (c == '[') {
        if (++depth > 1)
          fail(where, fmt::format("hostlist '{}': nested '['; close each '[' first", expr));
      } else if (c == ']') {
        if (--depth < 0) fail(where, fmt::format("hostlist '{}': ']' without '['", expr));
      } else if (c == ',' && depth == 0) {
        break;
      } else if (is_space(c) || c == '\n') {
        fail(where,
             fmt::format("hostlist '{}' contains white space; join the names with commas", expr));
      }
    }
    if (depth != 0) fail(where, fmt::format("hostlist '{}': '[' without ']'", expr));
    const std::string_view item = expr.substr(start, end - start);
    if (item.empty()) {
      fail(where, fmt::format("hostlist '{}' has an empty name (two commas, or a comma at an end); "
                              "remove it",
                              expr));
    }
    // Cartesian product of the literal pieces and the bracket groups: r[1-2]n[1-2].
    std::vector<std::string> names{""};
    std::size_t i = 0;
    while (i < item.size()) {
      const auto open = item.find('[', i);
      const std::string_view literal =
          item.substr(i, open == std::string_view::npos ? item.npos : open - i);
      for (auto& n : names) n += literal;
      if (open == std::string_view::npos) break;
      const auto close = item.find(']', open);
      const auto numbers =
          expand_range_list(item.substr(open + 1, close - open - 1), expr, where, max_names);
      if (names.size() * numbers.size() + out.size() > max_names) {
        fail(where,
             fmt::format("hostlist '{}' names more than {} hosts; split it", expr, max_names));
      }
      std::vector<std::string> next;
      next.reserve(names.size() * numbers.size());
      for (const auto& n : names)
        for (const auto& v : numbers) next.push_back(n + v);
      names = std::move(next);
      i = close + 1;
    }
    for (auto& n : names) out.push_back(std::move(n));
    if (end == expr.size()) break;
    start = end + 1;
  }
  return out;
}

Fabric parse_slurm_topology(std::string_view text, const std::string& name) {
  std::vector<SwitchRecord> records;
  std::size_t names = 0;
  int line_no = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    // One logical line: physical lines joined where one ends in '\'.
    const int first_line = line_no + 1;
    std::string logical;
    while (pos < text.size()) {
      auto nl = text.find('\n', pos);
      if (nl == std::string_view::npos) nl = text.size();
      std::string_view line = text.substr(pos, nl - pos);
      pos = nl + 1;
      ++line_no;
      if (const auto hash = line.find('#'); hash != std::string_view::npos)
        line = line.substr(0, hash);
      while (!line.empty() && is_space(line.back())) line.remove_suffix(1);
      if (!line.empty() && line.back() == '\\') {
        line.remove_suffix(1);
        logical += line;
        logical += ' ';
        continue;
      }
      logical += line;
      break;
    }
    const std::string where = fmt::format("{}:{}", name, first_line);
    SwitchRecord rec;
    rec.where = where;
    std::set<std::string> keys;
    bool has_name = false;
    std::size_t i = 0;
    while (i < logical.size()) {
      while (i < logical.size() && is_space(logical[i])) ++i;
      if (i >= logical.size()) break;
      std::size_t j = i;
      while (j < logical.size() && !is_space(logical[j])) ++j;
      const std::string_view token = std::string_view(logical).substr(i, j - i);
      i = j;
      const auto eq = token.find('=');
      if (eq == std::string_view::npos || eq == 0) {
        fail(where, fmt::format("'{}' is not KEY=VALUE; a line reads like 'SwitchName=leaf1 "
                                "Nodes=n[1-32]'",
                                token));
      }
      const std::string key = lower(token.substr(0, eq));
      const std::string_view value = token.substr(eq + 1);
      if (!keys.insert(key).second) {
        fail(where,
             fmt::format("{} is given twice on one line; give it once", token.substr(0, eq)));
      }
      if (value.empty()) {
        fail(where,
             fmt::format("{}= has no value; give one or remove the key", token.substr(0, eq)));
      }
      if (key == "switchname") {
        rec.name = value;
        has_name = true;
      } else if (key == "nodes" || key == "switches") {
        auto& list = key == "nodes" ? rec.nodes : rec.children;
        list = expand_hostlist(value, where);
        names += list.size();
        if (names > kMaxHostlistNames) {
          fail(where, fmt::format("the file names more than {} nodes and switches up to here; "
                                  "fabscope reads at most that many",
                                  kMaxHostlistNames));
        }
      } else if (key == "level") {
        int v = -1;
        const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
        if (ec != std::errc{} || p != value.data() + value.size() || v < 0 || v > 15) {
          fail(where, fmt::format("Level={} is not a level 0..15", value));
        }
        rec.level = v;
      } else if (key == "linkspeed") {
        // Slurm's relative weight, not a rate: accepted, not used.
      } else if (key == "blockname" || key == "blocksizes") {
        fail(where, fmt::format("{} belongs to the topology/block plugin; fabscope reads the "
                                "topology/tree format (SwitchName= lines)",
                                token.substr(0, eq)));
      } else {
        fail(where, fmt::format("unknown key '{}'; topology.conf knows SwitchName, Switches, "
                                "Nodes, LinkSpeed (and scontrol's Level)",
                                token.substr(0, eq)));
      }
    }
    if (keys.empty()) continue;  // blank or comment
    if (!has_name) {
      fail(where, "the line has no SwitchName=; every line describes one switch");
    }
    if (rec.nodes.size() + rec.children.size() > kMaxSwitchChildren) {
      fail(where, fmt::format("switch '{}' has {} nodes and switches below it; fabscope models at "
                              "most {} per switch (split it into leaves)",
                              rec.name, rec.nodes.size() + rec.children.size(),
                              kMaxSwitchChildren));
    }
    records.push_back(std::move(rec));
  }
  return build_tree(records, name, "slurm:" + name);
}

Fabric load_slurm_topology(const std::string& path) {
  return parse_slurm_topology(read_text_file(path, "Slurm topology.conf"), path);
}

Fabric fabric_from_topology_addrs(std::span<const std::string> hosts,
                                  std::span<const std::string> addrs) {
  std::vector<SwitchRecord> records;
  std::map<std::string, std::size_t> by_name;
  std::set<std::string> done;
  const auto record = [&](const std::string& sw) -> SwitchRecord& {
    const auto [it, fresh] = by_name.emplace(sw, records.size());
    if (fresh) {
      SwitchRecord r;
      r.name = sw;
      r.where = "SLURM_TOPOLOGY_ADDR";
      records.push_back(std::move(r));
    }
    return records[it->second];
  };
  for (std::size_t h = 0; h < hosts.size(); ++h) {
    const std::string& host = hosts[h];
    const std::string addr = h < addrs.size() ? addrs[h] : std::string();
    if (!done.insert(host).second) continue;  // several ranks on one node
    std::vector<std::string> parts;
    std::size_t start = 0;
    while (start <= addr.size()) {
      auto dot = addr.find('.', start);
      if (dot == std::string::npos) dot = addr.size();
      parts.push_back(addr.substr(start, dot - start));
      start = dot + 1;
    }
    if (addr.empty() || parts.size() < 2 ||
        std::any_of(parts.begin(), parts.end(), [](const std::string& p) { return p.empty(); })) {
      fail("SLURM_TOPOLOGY_ADDR",
           fmt::format("host '{}' has '{}', no switch above the node; Slurm sets it only with "
                       "TopologyPlugin=topology/tree: give topology.conf as --slurm-topology=FILE",
                       host, addr));
    }
    if (parts.back() != host) {
      fail("SLURM_TOPOLOGY_ADDR",
           fmt::format("host '{}' has '{}', which ends in another node name; run under srun with "
                       "one task per node, or give --slurm-topology=FILE",
                       host, addr));
    }
    for (std::size_t k = 0; k + 2 < parts.size(); ++k) {
      auto& parent = record(parts[k]);
      if (std::find(parent.children.begin(), parent.children.end(), parts[k + 1]) ==
          parent.children.end())
        parent.children.push_back(parts[k + 1]);
    }
    record(parts[parts.size() - 2]).nodes.push_back(host);
  }
  return build_tree(records, "SLURM_TOPOLOGY_ADDR", "slurm:SLURM_TOPOLOGY_ADDR");
}

}  // namespace fabscope::topology
