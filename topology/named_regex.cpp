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
namespace {

// Refuses the patterns std::regex may backtrack on exponentially (see named_regex.hpp). `re` is the
// translated pattern (named groups already plain groups); returns why it is refused, or "".
// A group is "ambiguous" when it holds a variable repetition (min != max) or an alternation, at
// any depth; repeating an ambiguous group more than once lets the engine split the same text in
// exponentially many ways before it fails.
std::string backtracking_hazard(std::string_view re) {
  struct Frame {
    bool varies = false, alternates = false;
  };
  std::vector<Frame> frames(1);
  // Reads a quantifier at `i`; leaves `i` on its last character. false when there is none.
  const auto quantifier = [&](std::size_t& i, long& lo, long& hi) {
    if (i >= re.size()) return false;
    const char c = re[i];
    if (c == '*' || c == '+' || c == '?') {
      lo = c == '+' ? 1 : 0;
      hi = c == '?' ? 1 : -1;  // -1: unbounded
    } else if (c == '{') {
      std::size_t j = i + 1;
      const auto number = [&](long& v) {
        const auto* end = re.data() + re.size();
        const auto [p, ec] = std::from_chars(re.data() + j, end, v);
        if (ec != std::errc{}) return false;
        j = static_cast<std::size_t>(p - re.data());
        return true;
      };
      if (!number(lo)) return false;  // a literal '{'
      hi = lo;
      if (j < re.size() && re[j] == ',') {
        ++j;
        if (!number(hi)) hi = -1;
      }
      if (j >= re.size() || re[j] != '}') return false;
      i = j;
    } else {
      return false;
    }
    if (i + 1 < re.size() && re[i + 1] == '?') ++i;  // lazy: the same search, another order
    return true;
  };
  // ECMAScript allows one quantifier per atom; libstdc++ accepts `a**` (and `a+{2}`) and nests
  // them, so `g*****` backtracks exponentially like (g*)* (found by tests/fuzz, hostname_pattern).
  // `i` is on the last character of a quantifier; true when another one follows.
  const auto stacked = [&](std::size_t i) {
    std::size_t next = i + 1;
    long a = 0, b = 0;
    return quantifier(next, a, b);
  };
  constexpr const char* kStacked =
      "a quantifier follows another (like a** or a+{2}), which can backtrack for hours; use one";
  for (std::size_t i = 0; i < re.size(); ++i) {
    const char c = re[i];
    long lo = 0, hi = 0;
    if (c == '\\') {
      if (i + 1 < re.size() && ((re[i + 1] >= '1' && re[i + 1] <= '9') || re[i + 1] == 'k')) {
        return "backreferences (\\1, \\k<name>) are not supported";
      }
      ++i;
    } else if (c == '[') {  // a class is one atom; skip to its end as the translation does
      ++i;
      if (i < re.size() && re[i] == '^') ++i;
      if (i < re.size() && re[i] == ']') ++i;
      while (i < re.size() && re[i] != ']') i += re[i] == '\\' ? 2 : 1;
    } else if (c == '(') {
      frames.emplace_back();
      if (i + 1 < re.size() && re[i + 1] == '?') i += 2;  // (?: (?= (?!
      continue;
    } else if (c == ')') {
      if (frames.size() < 2) return "";  // unbalanced: std::regex has said so already
      const Frame group = frames.back();
      frames.pop_back();
      ++i;
      if (!quantifier(i, lo, hi)) {
        --i;
        lo = hi = 1;
      } else if (stacked(i)) {
        return kStacked;
      }
      if ((hi < 0 || hi > 1) && (group.varies || group.alternates)) {
        return "a repeated group holds another repetition or '|' (like (a+)+ or (a|ab)*), which "
               "can backtrack for hours; repeat a character class instead, e.g. [a-z0-9-]+";
      }
      frames.back().varies |= group.varies || lo != hi;
      frames.back().alternates |= group.alternates;
      continue;
    } else if (c == '|') {
      frames.back().alternates = true;
      continue;
    } else if (quantifier(i, lo, hi)) {
      if (stacked(i)) return kStacked;
      frames.back().varies |= lo != hi;
      continue;
    }
    // An atom: a following quantifier is read on the next turn.
  }
  return "";
}

// libstdc++ 12 adds up a repetition count `{n}` / `{n,m}` in a long without an overflow check
// (regex_compiler.tcc, _M_cur_int_value: signed overflow, undefined behaviour, found by
// tests/fuzz), and a large count builds one NFA state per repetition. No count above the longest
// host name can matter, so larger ones are refused before std::regex sees the pattern. `re` is the
// translated pattern; returns why it is refused, or "". The same overflow reads a backreference
// `\8888...` (any escaped digit, `\0` too): refused here as well, before compiling, as
// backtracking_hazard refuses backreferences only after.
std::string oversized_count(std::string_view re) {
  constexpr std::size_t kMax = NamedRegex::kMaxTextLength;
  const auto escaped_digit = [&](std::size_t i) {
    return i + 1 < re.size() && std::isdigit(static_cast<unsigned char>(re[i + 1]));
  };
  constexpr const char* kBackref = "backreferences (\\1, \\k<name>) and \\0 are not supported";
  for (std::size_t i = 0; i < re.size(); ++i) {
    if (re[i] == '\\') {
      if (escaped_digit(i)) return kBackref;
      ++i;
    } else if (re[i] == '[') {  // a class: '{' inside is a literal
      ++i;
      if (i < re.size() && re[i] == '^') ++i;
      if (i < re.size() && re[i] == ']') ++i;
      for (; i < re.size() && re[i] != ']'; ++i) {
        if (re[i] != '\\') continue;
        if (escaped_digit(i)) return kBackref;
        ++i;
      }
    } else if (re[i] == '{') {  // {n}, {n,}, {n,m}: each run of digits is one count
      for (std::size_t j = i + 1; j < re.size();) {
        if (re[j] == ',') {
          ++j;
          continue;
        }
        std::size_t end = j;
        while (end < re.size() && std::isdigit(static_cast<unsigned char>(re[end]))) ++end;
        if (end == j) break;
        const std::string_view digits = re.substr(j, end - j);
        const std::string_view n =
            digits.substr(std::min(digits.find_first_not_of('0'), digits.size()));
        if (n.size() > 3 || (!n.empty() && std::stoul(std::string(n)) > kMax)) {
          return fmt::format(
              "a repetition count above {} (the longest host name); use a "
              "smaller count, or + / *",
              kMax);
        }
        j = end;
      }
    }
  }
  return "";
}

}  // namespace

NamedRegex::NamedRegex(std::string_view pattern, std::string_view what)
    : what_(what), pattern_(pattern) {
  const auto bad = [&](const std::string& why) {
    throw core::UsageError(fmt::format(
        "{}: pattern '{}': {}; named groups are written (?<name>...)", what, pattern_, why));
  };
  if (pattern.empty()) {
    throw core::UsageError(
        fmt::format("{}: the pattern is empty; give a regex with a (?<rack>...) group, e.g. "
                    "'(?<rack>r[0-9]+)n(?<node>[0-9]+)'",
                    what));
  }
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
  if (const std::string why = oversized_count(translated_); !why.empty()) bad(why);
  try {
    re_ = std::regex(translated_, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    bad(e.what());
  }
  if (static_cast<int>(re_.mark_count()) != group) {
    bad(fmt::format("counted {} groups but the regex engine found {}", group, re_.mark_count()));
  }
  if (const std::string why = backtracking_hazard(translated_); !why.empty()) {
    throw core::UsageError(fmt::format("{}: pattern '{}': {}", what, pattern_, why));
  }
}

bool NamedRegex::match(const std::string& text, std::vector<std::string>& groups) const {
  if (text.size() > kMaxTextLength) {
    throw core::UsageError(fmt::format(
        "{}: '{}...' is {} characters long; the pattern is only matched against names of at most "
        "{} characters",
        what_, text.substr(0, 40), text.size(), kMaxTextLength));
  }
  std::smatch m;
  try {
    if (!std::regex_match(text, m, re_)) return false;
  } catch (const std::regex_error& e) {  // error_complexity / error_stack: the engine gave up
    throw core::UsageError(
        fmt::format("{}: pattern '{}' is too costly to match against '{}' ({}); simplify it", what_,
                    pattern_, text, e.what()));
  }
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

Fabric fabric_from_hostnames(std::span<const std::string> hostnames, std::string_view pattern,
                             std::string_view what) {
  const NamedRegex re(pattern, what);
  const int g_rack = re.index_of("rack"), g_node = re.index_of("node"), g_pod = re.index_of("pod"),
            g_leaf = re.index_of("leaf");
  if (g_rack < 0) {
    throw core::UsageError(
        fmt::format("{} '{}' has no (?<rack>...) group; e.g. '(?<rack>r[0-9]+)n(?<node>[0-9]+)'",
                    what, pattern));
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
          fmt::format("{} '{}' does not match host '{}'; fix the pattern or give a "
                      "topology file",
                      what, pattern, h));
    }
    Row r;
    r.host = h;
    r.rack = groups[static_cast<std::size_t>(g_rack)];
    if (r.rack.empty()) {
      throw core::UsageError(
          fmt::format("{} '{}': group 'rack' is empty for host '{}'", what, pattern, h));
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
      throw core::UsageError(fmt::format("{} '{}': leaf '{}' appears in pods '{}' and '{}'", what,
                                         pattern, r.leaf, it->second, r.pod));
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
