#include "topology/named_regex.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <map>

#include "core/error.hpp"
#include "topology/model.hpp"
#include "topology/sources.hpp"

namespace fabscope::topology {

NamedRegex::NamedRegex(std::string_view pattern, std::string_view what) : pattern_(pattern) {
  const auto bad = [&](const std::string& why) {
    throw core::UsageError(fmt::format(
        "{}: pattern '{}': {}; named groups are written (?<name>...)", what, pattern_, why));
  };
  int group = 0;
  bool in_class = false;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\') {  // copy the escape and the escaped character
      translated_ += c;
      if (i + 1 < pattern.size()) translated_ += pattern[++i];
      continue;
    }
    if (in_class) {
      if (c == ']') in_class = false;
      translated_ += c;
      continue;
    }
    if (c == '[') {
      in_class = true;
      translated_ += c;
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') translated_ += pattern[++i];  // []...]
      continue;
    }
    if (c == '(') {
      if (i + 2 < pattern.size() && pattern[i + 1] == '?' && pattern[i + 2] == '<' &&
          i + 3 < pattern.size() && pattern[i + 3] != '=' && pattern[i + 3] != '!') {
        const auto close = pattern.find('>', i + 3);
        if (close == std::string_view::npos) bad("a named group has no closing '>'");
        const std::string name(pattern.substr(i + 3, close - i - 3));
        if (name.empty() || !std::all_of(name.begin(), name.end(), [](char ch) {
              return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_';
            })) {
          bad(fmt::format("group name '{}' must be letters, digits or _", name));
        }
        if (std::find(names_.begin(), names_.end(), name) != names_.end()) {
          bad(fmt::format("group name '{}' is used twice", name));
        }
        names_.push_back(name);
        group_numbers_.push_back(++group);
        translated_ += '(';
        i = close;
        continue;
      }
      if (i + 1 >= pattern.size() || pattern[i + 1] != '?') ++group;
    }
    translated_ += c;
  }
  try {
    re_ = std::regex(translated_, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    bad(e.what());
  }
  if (static_cast<int>(re_.mark_count()) != group) {
    bad(fmt::format("counted {} groups but the regex engine found {}", group, re_.mark_count()));
  }
}

bool NamedRegex::match(const std::string& text, std::vector<std::string>& groups) const {
  std::smatch m;
  if (!std::regex_match(text, m, re_)) return false;
  groups.assign(names_.size(), std::string());
  for (std::size_t i = 0; i < names_.size(); ++i) {
    const auto& sub = m[static_cast<std::size_t>(group_numbers_[i])];
    if (sub.matched) groups[i] = sub.str();
  }
  return true;
}

int NamedRegex::index_of(std::string_view name) const {
  const auto it = std::find(names_.begin(), names_.end(), name);
  return it == names_.end() ? -1 : static_cast<int>(it - names_.begin());
}

Fabric fabric_from_hostnames(std::span<const std::string> hostnames, std::string_view pattern) {
  const NamedRegex re(pattern, "host-name pattern");
  const int g_rack = re.index_of("rack"), g_node = re.index_of("node"), g_pod = re.index_of("pod"),
            g_leaf = re.index_of("leaf");
  if (g_rack < 0) {
    throw core::UsageError(fmt::format(
        "host-name pattern '{}' has no (?<rack>...) group; e.g. '(?<rack>r[0-9]+)n(?<node>[0-9]+)'",
        pattern));
  }
  FabricBuilder b("hostnames", fmt::format("host-name pattern '{}'", pattern));
  b.assume_clos(true);
  struct Row {
    std::string host, rack, leaf, pod;
    long long node = -1;
    std::string node_text;
  };
  std::vector<Row> rows;
  std::vector<std::string> groups;
  for (const std::string& h : hostnames) {
    if (!re.match(h, groups)) {
      throw core::UsageError(
          fmt::format("host-name pattern '{}' does not match host '{}'; fix the pattern or give a "
                      "topology file",
                      pattern, h));
    }
    Row r;
    r.host = h;
    r.rack = groups[static_cast<std::size_t>(g_rack)];
    if (r.rack.empty()) {
      throw core::UsageError(
          fmt::format("host-name pattern '{}': group 'rack' is empty for host '{}'", pattern, h));
    }
    r.leaf = g_leaf >= 0 && !groups[static_cast<std::size_t>(g_leaf)].empty()
                 ? groups[static_cast<std::size_t>(g_leaf)]
                 : r.rack;
    r.pod = g_pod >= 0 && !groups[static_cast<std::size_t>(g_pod)].empty()
                ? groups[static_cast<std::size_t>(g_pod)]
                : "pod1";
    if (g_node >= 0) {
      r.node_text = groups[static_cast<std::size_t>(g_node)];
      long long v = 0;
      const auto [p, ec] =
          std::from_chars(r.node_text.data(), r.node_text.data() + r.node_text.size(), v);
      if (ec == std::errc{} && p == r.node_text.data() + r.node_text.size()) r.node = v;
    }
    rows.push_back(std::move(r));
  }
  // Hosts sort by natural name in the model; the leaf ports follow the node number so that
  // topology order within a rack is the node order.
  std::stable_sort(rows.begin(), rows.end(), [](const Row& x, const Row& y) {
    if (x.node >= 0 && y.node >= 0 && x.node != y.node) return x.node < y.node;
    return natural_less(x.node_text, y.node_text);
  });
  std::map<std::string, std::string> leaf_pod;
  for (const Row& r : rows) {
    const auto [it, ins] = leaf_pod.emplace(r.leaf, r.pod);
    if (!ins && it->second != r.pod) {
      throw core::UsageError(
          fmt::format("host-name pattern '{}': leaf '{}' appears in pods '{}' and '{}'", pattern,
                      r.leaf, it->second, r.pod));
    }
  }
  for (const auto& [leaf, pod] : leaf_pod) {
    Switch sw;
    sw.name = leaf;
    sw.level = 1;
    sw.pod = b.pod(pod);
    b.add_switch(std::move(sw));
  }
  for (const Row& r : rows) {
    const std::size_t before = b.host_count();
    const Index h = b.host(r.host);
    if (b.host_count() == before)
      throw core::UsageError(fmt::format("host '{}' is listed twice", r.host));
    b.set_rack(h, b.rack(r.rack));
    Nic n;
    n.host = h;
    const Index ni = b.add_nic(std::move(n));
    b.connect({NodeKind::kNic, ni, 1}, {NodeKind::kSwitch, b.find_switch(r.leaf), 0});
  }
  return std::move(b).build();
}

}  // namespace fabscope::topology
