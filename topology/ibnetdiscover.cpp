// ibnetdiscover text dumps (and ibsim net files, which use the same syntax), and ibroute output.
//
// What ibnetdiscover prints (infiniband-diags ibnetdiscover.c, out_switch/out_ca):
//   vendid=0x2c9 / devid=0x... / sysimgguid=0x...          ignored
//   switchguid=0x<guid>(<port guid>)  |  caguid=0x<guid>     the GUID of the next record
//   Switch  36 "S-<guid>"   # "<desc>" enhanced port 0 lid 12 lmc 0
//   [1]  "H-<guid>"[1](<remote port guid>)   # "<remote desc>" lid 3 4xEDR
//   Ca  1 "H-<guid>"   # "<desc>"
//   [1](<port guid>)  "S-<guid>"[1]   # lid 3 lmc 0 "<remote desc>" lid 12 4xEDR
// ibsim net files also write `Hca`, leave out GUIDs and comments, and take `# lid 0 4xHDR`
// trailers; `include` and `do` lines (ibsim extensions) are refused.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <set>
#include <unordered_map>

#include "core/error.hpp"
#include "topology/ib_common.hpp"
#include "topology/sources.hpp"

namespace fabscope::topology {
namespace detail {

int ib_width_lanes(unsigned bits) {
  switch (bits) {
    case 1:
      return 1;
    case 2:
      return 4;
    case 4:
      return 8;
    case 8:
      return 12;
    case 16:
      return 2;
    default:
      return 0;
  }
}

int ib_max_width_lanes(unsigned bits) {
  int most = 0;
  for (unsigned bit = 1; bit <= 16; bit <<= 1) {
    if ((bits & bit) != 0) most = std::max(most, ib_width_lanes(bit));
  }
  return most;
}

Fabric build_ib_fabric(const std::vector<IbNode>& nodes, const std::string& name,
                       const std::string& source, const std::string& where) {
  const auto fail = [&](int line, const std::string& msg) {
    throw core::UsageError(line > 0 ? fmt::format("{}:{}: {}", where, line, msg)
                                    : fmt::format("{}: {}", where, msg));
  };
  std::unordered_map<std::string, std::size_t> by_id;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    if (!by_id.emplace(nodes[i].id, i).second)
      fail(nodes[i].line, fmt::format("node \"{}\" is described twice", nodes[i].id));
  }
  // Switch names: the description, made unique by GUID when shared.
  std::map<std::string, int> desc_count;
  for (const IbNode& n : nodes) {
    if (n.is_switch) ++desc_count[n.desc.empty() ? n.id : n.desc];
  }
  FabricBuilder b(name, source);
  std::vector<Index> sw_index(nodes.size(), kNone);
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const IbNode& n = nodes[i];
    if (!n.is_switch) continue;
    Switch sw;
    sw.name = n.desc.empty() ? n.id : n.desc;
    if (desc_count[sw.name] > 1) sw.name += fmt::format(" [0x{:016x}]", n.guid);
    sw.guid = n.guid;
    sw.lid = n.lid;
    sw.ports = static_cast<std::uint16_t>(std::max(0, n.nports));
    sw_index[i] = b.add_switch(std::move(sw));
  }
  // NICs: one per cabled CA port.
  std::map<std::pair<std::size_t, int>, Index> nic_index;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const IbNode& n = nodes[i];
    if (n.is_switch) continue;
    std::string host = n.desc, device;
    const auto sp = n.desc.find_first_of(" \t");
    if (sp != std::string::npos) {
      host = n.desc.substr(0, sp);
      const auto st = n.desc.find_first_not_of(" \t", sp);
      device = st == std::string::npos ? std::string() : n.desc.substr(st);
    }
    if (host.empty()) host = n.id;
    for (const IbPort& p : n.ports) {
      if (p.remote_id.empty()) continue;
      Nic nic;
      nic.host = b.host(host);
      nic.device = device;
      nic.port = static_cast<std::uint8_t>(p.num);
      nic.node_guid = n.guid;
      nic.port_guid = p.guid;
      nic.lid = p.lid;
      nic.link_layer = LinkLayer::kInfiniBand;
      nic.state = p.state;
      nic.mtu_bytes = p.mtu_bytes;
      nic_index[{i, p.num}] = b.add_nic(std::move(nic));
    }
  }
  // Links, each once.
  std::set<std::pair<std::pair<std::size_t, int>, std::pair<std::size_t, int>>> seen;
  const auto find_port = [&](std::size_t node, int num) -> const IbPort* {
    for (const IbPort& p : nodes[node].ports) {
      if (p.num == num) return &p;
    }
    return nullptr;
  };
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    for (const IbPort& p : nodes[i].ports) {
      if (p.remote_id.empty()) continue;
      const auto it = by_id.find(p.remote_id);
      if (it == by_id.end()) {
        fail(p.line,
             fmt::format("port [{}] of \"{}\" is cabled to \"{}\", which has no Switch/Ca record; "
                         "use a complete dump",
                         p.num, nodes[i].id, p.remote_id));
      }
      const std::size_t j = it->second;
      const IbPort* back = find_port(j, p.remote_port);
      if (back != nullptr && !back->remote_id.empty() &&
          (back->remote_id != nodes[i].id || back->remote_port != p.num)) {
        fail(p.line,
             fmt::format(
                 "\"{}\"[{}] says it is cabled to \"{}\"[{}], but \"{}\"[{}] says \"{}\"[{}]",
                 nodes[i].id, p.num, p.remote_id, p.remote_port, p.remote_id, p.remote_port,
                 back->remote_id, back->remote_port));
      }
      const auto a = std::pair(i, p.num), z = std::pair(j, p.remote_port);
      if (!seen.emplace(std::min(a, z), std::max(a, z)).second) continue;
      if (!nodes[i].is_switch && !nodes[j].is_switch) {
        fail(p.line,
             fmt::format(
                 "CA \"{}\" is cabled straight to CA \"{}\"; fabscope models switched fabrics",
                 nodes[i].id, nodes[j].id));
      }
      // Rate: the lower of the two ends' rates when both are known.
      double rate = p.width * p.lane_gbps;
      int width = p.width;
      if (back != nullptr && back->width * back->lane_gbps > 0) {
        const double r2 = back->width * back->lane_gbps;
        if (rate <= 0 || r2 < rate) {
          rate = r2;
          width = back->width;
        }
      }
      const auto end = [&](std::size_t node, int port) {
        return nodes[node].is_switch
                   ? LinkEnd{NodeKind::kSwitch, sw_index[node], static_cast<std::int16_t>(port)}
                   : LinkEnd{NodeKind::kNic, nic_index.at({node, port}),
                             static_cast<std::int16_t>(port)};
      };
      if (!nodes[j].is_switch && nic_index.count({j, p.remote_port}) == 0) {
        fail(p.line, fmt::format("CA \"{}\" does not list port [{}] that \"{}\"[{}] is cabled to",
                                 p.remote_id, p.remote_port, nodes[i].id, p.num));
      }
      // What the link could run at: the lower of the two ends' maxima, when both are known.
      double max_rate = p.max_width * p.max_lane_gbps;
      const double max_back = back != nullptr ? back->max_width * back->max_lane_gbps : 0.0;
      max_rate = max_rate > 0 && max_back > 0 ? std::min(max_rate, max_back) : 0.0;
      b.connect(end(i, p.num), end(j, p.remote_port), rate, width, max_rate);
    }
  }
  return std::move(b).build();
}

}  // namespace detail

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

bool parse_u64(std::string_view s, std::uint64_t& v, int base) {
  if (base == 16 && (starts_with(s, "0x") || starts_with(s, "0X"))) s.remove_prefix(2);
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  return ec == std::errc{} && p == s.data() + s.size() && !s.empty();
}

// Reads `"text"` at s[pos]; returns false when there is none.
bool quoted(std::string_view s, std::size_t& pos, std::string& out) {
  while (pos < s.size() && (s[pos] == ' ' || s[pos] == '\t')) ++pos;
  if (pos >= s.size() || s[pos] != '"') return false;
  const auto end = s.find('"', pos + 1);
  if (end == std::string_view::npos) return false;
  out = std::string(s.substr(pos + 1, end - pos - 1));
  pos = end + 1;
  return true;
}

// Reads `[N]` (and an optional `[ext N]` after it) at s[pos].
bool bracket_int(std::string_view s, std::size_t& pos, int& out) {
  while (pos < s.size() && (s[pos] == ' ' || s[pos] == '\t')) ++pos;
  if (pos >= s.size() || s[pos] != '[') return false;
  const auto end = s.find(']', pos);
  if (end == std::string_view::npos) return false;
  const std::string_view num = trim(s.substr(pos + 1, end - pos - 1));
  const auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), out);
  if (ec != std::errc{} || p != num.data() + num.size()) return false;
  pos = end + 1;
  if (pos < s.size() && starts_with(s.substr(pos), "[ext")) {
    const auto e2 = s.find(']', pos);
    if (e2 != std::string_view::npos) pos = e2 + 1;
  }
  return true;
}

// Reads `(hexguid)` at s[pos] when present.
void paren_guid(std::string_view s, std::size_t& pos, std::uint64_t& out) {
  std::size_t q = pos;
  while (q < s.size() && (s[q] == ' ' || s[q] == '\t')) ++q;
  if (q >= s.size() || s[q] != '(') return;
  const auto end = s.find(')', q);
  if (end == std::string_view::npos) return;
  std::uint64_t v = 0;
  if (parse_u64(s.substr(q + 1, end - q - 1), v, 16)) out = v;
  pos = end + 1;
}

// Splits a comment into words, keeping quoted strings as one word (without quotes).
std::vector<std::string> words(std::string_view s) {
  std::vector<std::string> w;
  std::size_t i = 0;
  while (i < s.size()) {
    if (s[i] == ' ' || s[i] == '\t') {
      ++i;
      continue;
    }
    if (s[i] == '"') {
      const auto e = s.find('"', i + 1);
      std::string q(1, '"');  // marks a quoted word
      q += s.substr(i + 1, (e == std::string_view::npos ? s.size() : e) - i - 1);
      w.push_back(std::move(q));
      i = e == std::string_view::npos ? s.size() : e + 1;
      continue;
    }
    std::size_t e = i;
    while (e < s.size() && s[e] != ' ' && s[e] != '\t') ++e;
    w.emplace_back(s.substr(i, e - i));
    i = e;
  }
  return w;
}

// "4xHDR" -> width 4, lane 50.
bool speed_word(std::string_view w, int& width, double& lane) {
  const auto x = w.find('x');
  if (x == std::string_view::npos || x == 0) return false;
  int wd = 0;
  const auto [p, ec] = std::from_chars(w.data(), w.data() + x, wd);
  if (ec != std::errc{} || p != w.data() + x) return false;
  const double l = ib_lane_gbps(w.substr(x + 1));
  if (l <= 0) return false;
  width = wd;
  lane = l;
  return true;
}

}  // namespace

Fabric parse_ibnetdiscover(std::string_view text, const std::string& name) {
  std::vector<detail::IbNode> nodes;
  std::set<std::string> routers;
  bool in_router = false;
  std::uint64_t pending_guid = 0;
  int line_no = 0;
  const auto fail = [&](const std::string& msg) {
    throw core::UsageError(fmt::format("{}:{}: {}", name, line_no, msg));
  };
  std::size_t start = 0;
  while (start <= text.size()) {
    auto nl = text.find('\n', start);
    if (nl == std::string_view::npos) nl = text.size();
    const std::string_view raw = text.substr(start, nl - start);
    start = nl + 1;
    ++line_no;
    const std::string_view line = trim(raw);
    if (line.empty() || line.front() == '#') {
      if (nl == text.size()) break;
      continue;
    }
    const auto hash = line.find('#');
    const std::string_view body = trim(line.substr(0, hash));
    const std::string_view comment =
        hash == std::string_view::npos ? std::string_view() : line.substr(hash + 1);
    if (starts_with(body, "vendid=") || starts_with(body, "devid=") ||
        starts_with(body, "sysimgguid=") || starts_with(body, "Chassis") ||
        starts_with(body, "Hostname:")) {
      // informational
    } else if (starts_with(body, "switchguid=") || starts_with(body, "caguid=") ||
               starts_with(body, "rtguid=")) {
      std::string_view v = body.substr(body.find('=') + 1);
      v = v.substr(0, v.find('('));
      if (!parse_u64(trim(v), pending_guid, 16))
        fail(fmt::format("cannot read the GUID in '{}'", body));
    } else if (starts_with(body, "include") || starts_with(body, "do ")) {
      fail("ibsim 'include'/'do' lines are not supported; give the whole fabric in one file");
    } else if (starts_with(body, "Switch") || starts_with(body, "Ca") || starts_with(body, "Hca") ||
               starts_with(body, "Rt")) {
      detail::IbNode n;
      n.line = line_no;
      n.is_switch = starts_with(body, "Switch");
      const bool router = starts_with(body, "Rt");
      std::size_t pos = body.find_first_of(" \t");
      if (pos == std::string_view::npos) fail("a node record needs a port count and a quoted id");
      const std::string_view rest = trim(body.substr(pos));
      const auto q = rest.find('"');
      if (q == std::string_view::npos) fail(fmt::format("'{}': missing the quoted node id", body));
      const std::string_view count = trim(rest.substr(0, q));
      const auto [p, ec] = std::from_chars(count.data(), count.data() + count.size(), n.nports);
      if (ec != std::errc{} || p != count.data() + count.size())
        fail(fmt::format("'{}': the port count '{}' is not a number", body, count));
      if (n.nports < 1 || n.nports > 255) {  // NumPorts is an 8-bit field (IBA 14.2.5.3)
        fail(
            fmt::format("'{}': the port count {} must be between 1 and 255; a node has at least "
                        "one port",
                        body, n.nports));
      }
      std::size_t qp = 0;
      const std::string_view after = rest.substr(q);
      if (!quoted(after, qp, n.id))
        fail(fmt::format("'{}': the node id has no closing quote", body));
      n.guid = pending_guid;
      pending_guid = 0;
      const auto w = words(comment);
      if (!w.empty() && w[0].front() == '"') n.desc = w[0].substr(1);
      for (std::size_t k = 0; k + 1 < w.size(); ++k) {
        if (w[k] == "lid" && k >= 2 && w[k - 2] == "port") {
          std::uint64_t v = 0;
          if (parse_u64(w[k + 1], v, 10)) n.lid = static_cast<std::uint16_t>(v);
        }
      }
      if (router) {
        routers.insert(n.id);  // routers are not modelled; their records and links are dropped
        in_router = true;
        continue;
      }
      in_router = false;
      nodes.push_back(std::move(n));
    } else if (body.front() == '[') {
      if (in_router) continue;
      if (nodes.empty()) fail("a port line before any Switch/Ca record");
      detail::IbNode& n = nodes.back();
      detail::IbPort port;
      port.line = line_no;
      std::size_t pos = 0;
      if (!bracket_int(body, pos, port.num))
        fail(fmt::format("cannot read the port number in '{}'", body));
      if (!n.is_switch) paren_guid(body, pos, port.guid);
      if (!quoted(body, pos, port.remote_id)) {
        fail(fmt::format("'{}': expected [port] \"remote id\"[remote port]", body));
      }
      if (!bracket_int(body, pos, port.remote_port)) {
        fail(
            fmt::format("'{}': missing the remote port number after \"{}\"", body, port.remote_id));
      }
      std::uint64_t remote_guid = 0;
      paren_guid(body, pos, remote_guid);
      if (!trim(body.substr(pos)).empty())
        fail(fmt::format("'{}': unexpected text '{}'", body, trim(body.substr(pos))));
      const auto w = words(comment);
      for (const auto& word : w) speed_word(word, port.width, port.lane_gbps);
      if (!n.is_switch && w.size() >= 2 &&
          w[0] == "lid") {  // "# lid 3 lmc 0 "remote" lid 12 4xEDR"
        std::uint64_t v = 0;
        if (parse_u64(w[1], v, 10)) port.lid = static_cast<std::uint16_t>(v);
      }
      if (port.num < 0 || port.num > n.nports) {
        fail(fmt::format("port [{}] is beyond the {} ports of \"{}\"", port.num, n.nports, n.id));
      }
      for (const auto& other : n.ports) {
        if (other.num == port.num)
          fail(fmt::format("port [{}] of \"{}\" is listed twice", port.num, n.id));
      }
      n.ports.push_back(std::move(port));
    } else {
      fail(fmt::format(
          "cannot read '{}'; expected a Switch/Ca record, a [port] line or a *guid= line",
          body.substr(0, 60)));
    }
    if (nl == text.size()) break;
  }
  if (nodes.empty()) {
    throw core::UsageError(
        fmt::format("{}: no Switch or Ca records; is this an ibnetdiscover dump?", name));
  }
  for (auto& n : nodes) {  // ports cabled to routers are left out
    for (auto& p : n.ports) {
      if (routers.count(p.remote_id) != 0) p.remote_id.clear();
    }
  }
  return detail::build_ib_fabric(nodes, "ibnetdiscover", "ibnetdiscover:" + name, name);
}

Fabric load_ibnetdiscover(const std::string& path) {
  return parse_ibnetdiscover(read_text_file(path, "ibnetdiscover dump"), path);
}

std::vector<SwitchLft> parse_ibroute_dump(std::string_view text, const std::string& name) {
  std::vector<SwitchLft> out;
  int line_no = 0;
  std::size_t entries = 0;
  std::size_t start = 0;
  const auto fail = [&](const std::string& msg) {
    throw core::UsageError(fmt::format("{}:{}: {}", name, line_no, msg));
  };
  while (start < text.size()) {
    auto nl = text.find('\n', start);
    if (nl == std::string_view::npos) nl = text.size();
    const std::string_view line = trim(text.substr(start, nl - start));
    start = nl + 1;
    ++line_no;
    if (starts_with(line, "Unicast lids")) {
      const auto g = line.find("guid ");
      std::uint64_t guid = 0;
      if (g == std::string_view::npos) fail("switch header without 'guid'");
      std::string_view gs = line.substr(g + 5);
      gs = gs.substr(0, gs.find_first_of(" (:"));
      if (!parse_u64(gs, guid, 16)) fail(fmt::format("cannot read the switch GUID '{}'", gs));
      out.push_back(SwitchLft{guid, {}});
    } else if (starts_with(line, "0x") && !out.empty()) {
      const auto sp = line.find_first_of(" \t");
      std::uint64_t lid = 0, port = 0;
      if (sp == std::string_view::npos || !parse_u64(line.substr(0, sp), lid, 16) || lid > 0xffff) {
        fail(fmt::format("cannot read the LID in '{}'; expected '0xLID PORT : ...'", line));
      }
      std::string_view rest = trim(line.substr(sp));
      rest = rest.substr(0, rest.find_first_of(" \t:"));
      if (!parse_u64(rest, port, 10) || port > 254) {
        fail(fmt::format("cannot read the output port in '{}'; expected a port number 0 to 254",
                         line));
      }
      SwitchLft& t = out.back();
      if (t.ports.size() <= lid) t.ports.resize(lid + 1, kNoPort);
      t.ports[lid] = static_cast<std::uint8_t>(port);
      if (port > t.max_port) {
        t.max_port = static_cast<std::uint8_t>(port);
        t.max_port_at = fmt::format("{}:{}", name, line_no);
      }
      ++entries;
    }
  }
  if (entries == 0) {
    throw core::UsageError(fmt::format(
        "{}: no forwarding table entries (no 'Unicast lids ... guid 0x...' header followed by "
        "'0xLID PORT' lines); give the output of `ibroute <switch LID>` for every switch, e.g. "
        "from dump_lfts.sh",
        name));
  }
  return out;
}

}  // namespace fabscope::topology
