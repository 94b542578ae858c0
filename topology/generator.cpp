#include "topology/generator.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <map>
#include <ostream>

#include "core/error.hpp"

namespace fabscope::topology {
namespace {

std::size_t uz(Index i) { return static_cast<std::size_t>(i); }

std::int32_t parse_int(std::string_view key, std::string_view value, std::string_view what) {
  std::int32_t v = 0;
  const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc{} || p != value.data() + value.size() || v < 0) {
    throw core::UsageError(
        fmt::format("{}: '{}={}' needs a non-negative integer", what, key, value));
  }
  return v;
}

std::string speed_name(double rate_gbps, int width) {
  if (width <= 0) return "SDR";
  const double lane = rate_gbps / width;
  for (const char* s : {"SDR", "DDR", "QDR", "FDR", "EDR", "HDR", "NDR", "XDR"}) {
    if (std::abs(ib_lane_gbps(s) - lane) < 1e-6) return s;
  }
  return "SDR";
}

}  // namespace

FatTreeSpec parse_fat_tree_spec(std::string_view text, std::string_view what) {
  FatTreeSpec s;
  std::size_t start = 0;
  while (start < text.size()) {
    auto comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    const std::string_view item = text.substr(start, comma - start);
    start = comma + 1;
    if (item.empty()) continue;
    const auto eq = item.find('=');
    if (eq == std::string_view::npos) {
      throw core::UsageError(
          fmt::format("{}: '{}' is not KEY=VALUE (e.g. hosts=128,nics-per-leaf=8)", what, item));
    }
    const std::string_view k = item.substr(0, eq), v = item.substr(eq + 1);
    if (k == "hosts")
      s.hosts = parse_int(k, v, what);
    else if (k == "rails" || k == "nics-per-host")
      s.nics_per_host = parse_int(k, v, what);
    else if (k == "nics-per-leaf")
      s.nics_per_leaf = parse_int(k, v, what);
    else if (k == "leaves-per-pod")
      s.leaves_per_pod = parse_int(k, v, what);
    else if (k == "spines-per-pod")
      s.spines_per_pod = parse_int(k, v, what);
    else if (k == "cores-per-plane")
      s.cores_per_plane = parse_int(k, v, what);
    else if (k == "hosts-per-rack")
      s.hosts_per_rack = parse_int(k, v, what);
    else if (k == "rate")
      s.rate_gbps = parse_int(k, v, what);
    else if (k == "width")
      s.width = parse_int(k, v, what);
    else if (k == "rail-optimized")
      s.rail_optimized = parse_int(k, v, what) != 0;
    else if (k == "prefix")
      s.host_prefix = std::string(v);
    else if (k == "link-layer") {
      s.link_layer = parse_link_layer(v);
      if (s.link_layer == LinkLayer::kUnknown) {
        throw core::UsageError(
            fmt::format("{}: link-layer '{}' must be infiniband or ethernet", what, v));
      }
    } else {
      throw core::UsageError(fmt::format(
          "{}: unknown key '{}'; known: hosts, rails, nics-per-leaf, leaves-per-pod, "
          "spines-per-pod, "
          "cores-per-plane, hosts-per-rack, rate, width, rail-optimized, link-layer, prefix",
          what, k));
    }
  }
  return s;
}

Fabric generate_fat_tree(const FatTreeSpec& s) {
  const auto bad = [](const std::string& m) { throw core::UsageError("fat-tree spec: " + m); };
  if (s.hosts < 1 || s.nics_per_host < 1 || s.nics_per_leaf < 1 || s.leaves_per_pod < 1) {
    bad("hosts, rails, nics-per-leaf and leaves-per-pod must be at least 1");
  }
  const bool rail_opt = s.rail_optimized && s.nics_per_host > 1;
  if (!rail_opt && s.nics_per_leaf % s.nics_per_host != 0) {
    bad(fmt::format("nics-per-leaf {} must be a multiple of rails {} without rail-optimized leaves",
                    s.nics_per_leaf, s.nics_per_host));
  }
  const std::int32_t group_hosts = rail_opt ? s.nics_per_leaf : s.nics_per_leaf / s.nics_per_host;
  const std::int32_t leaves_per_group = rail_opt ? s.nics_per_host : 1;
  const std::int32_t groups = (s.hosts + group_hosts - 1) / group_hosts;
  const std::int64_t leaves = static_cast<std::int64_t>(groups) * leaves_per_group;
  const std::int64_t pods = (leaves + s.leaves_per_pod - 1) / s.leaves_per_pod;
  if (pods > 1 && s.cores_per_plane == 0) {
    bad(
        fmt::format("{} leaves need {} pods, which need cores (set cores-per-plane) or more "
                    "leaves-per-pod",
                    leaves, pods));
  }
  if (pods > 1 && s.spines_per_pod == 0) bad("several pods need spines-per-pod >= 1");
  const bool ib = s.link_layer == LinkLayer::kInfiniBand;
  const std::int64_t spines = pods * s.spines_per_pod;
  const std::int64_t cores = static_cast<std::int64_t>(s.spines_per_pod) * s.cores_per_plane;
  const std::int64_t nics = static_cast<std::int64_t>(s.hosts) * s.nics_per_host;
  const bool lids = ib && nics + leaves + spines + cores < 49152;  // unicast LID space

  FabricBuilder b(fmt::format("fat-tree-{}", s.hosts), "generator");
  b.rails_explicit(true);
  std::uint16_t next_lid = 1;
  const auto add_sw = [&](std::string name, int level, Index pod) {
    Switch sw;
    sw.name = std::move(name);
    sw.guid = 0x0002c90400000000ULL + static_cast<std::uint64_t>(next_lid);
    sw.lid = lids ? next_lid : 0;
    ++next_lid;
    sw.level = static_cast<std::uint8_t>(level);
    sw.pod = pod;
    return b.add_switch(std::move(sw));
  };
  std::vector<Index> pod_ids(static_cast<std::size_t>(pods));
  for (std::int64_t p = 0; p < pods; ++p)
    pod_ids[static_cast<std::size_t>(p)] = b.pod(fmt::format("pod{}", p + 1));
  std::vector<Index> leaf_ids(static_cast<std::size_t>(leaves));
  for (std::int64_t l = 0; l < leaves; ++l) {
    leaf_ids[static_cast<std::size_t>(l)] =
        add_sw(fmt::format("leaf{:04d}", l + 1), 1,
               pod_ids[static_cast<std::size_t>(l / s.leaves_per_pod)]);
  }
  std::vector<Index> spine_ids(static_cast<std::size_t>(spines));
  for (std::int64_t k = 0; k < spines; ++k) {
    spine_ids[static_cast<std::size_t>(k)] =
        add_sw(fmt::format("spine{:04d}", k + 1), 2,
               pod_ids[static_cast<std::size_t>(k / std::max(1, s.spines_per_pod))]);
  }
  std::vector<Index> core_ids(static_cast<std::size_t>(cores));
  for (std::int64_t c = 0; c < cores; ++c) {
    core_ids[static_cast<std::size_t>(c)] = add_sw(fmt::format("core{:04d}", c + 1), 3, kNone);
  }
  const std::int32_t per_rack = s.hosts_per_rack > 0 ? s.hosts_per_rack : group_hosts;
  for (std::int32_t h = 0; h < s.hosts; ++h) {
    const Index hi = b.host(fmt::format("{}{:05d}", s.host_prefix, h + 1));
    b.set_rack(hi, b.rack(fmt::format("rack{:04d}", h / per_rack + 1)));
    const std::int32_t group = h / group_hosts, slot = h % group_hosts;
    for (std::int32_t r = 0; r < s.nics_per_host; ++r) {
      Nic n;
      n.host = hi;
      n.device = fmt::format("mlx5_{}", r);
      n.port = 1;
      n.rail = static_cast<std::int16_t>(r);
      n.link_layer = s.link_layer;
      n.rate_gbps = s.rate_gbps;
      n.width = static_cast<std::uint8_t>(s.width);
      n.state = PortState::kActive;
      if (ib) {
        const auto id =
            static_cast<std::uint64_t>(h) * static_cast<std::uint64_t>(s.nics_per_host) +
            static_cast<std::uint64_t>(r);
        n.node_guid = 0x0002c90300000000ULL + 2 * id;
        n.port_guid = n.node_guid + 1;
        n.lid = lids ? next_lid++ : 0;
      }
      const Index ni = b.add_nic(std::move(n));
      const std::int64_t leaf =
          static_cast<std::int64_t>(group) * leaves_per_group + (rail_opt ? r : 0);
      const int port = rail_opt ? slot + 1 : slot * s.nics_per_host + r + 1;
      b.connect({NodeKind::kNic, ni, 1},
                {NodeKind::kSwitch, leaf_ids[static_cast<std::size_t>(leaf)],
                 static_cast<std::int16_t>(port)},
                s.rate_gbps, s.width);
    }
  }
  for (std::int64_t l = 0; l < leaves; ++l) {
    const std::int64_t pod = l / s.leaves_per_pod, lpos = l % s.leaves_per_pod;
    for (std::int32_t j = 0; j < s.spines_per_pod; ++j) {
      const Index spine = spine_ids[static_cast<std::size_t>(pod * s.spines_per_pod + j)];
      b.connect({NodeKind::kSwitch, leaf_ids[static_cast<std::size_t>(l)],
                 static_cast<std::int16_t>(s.nics_per_leaf + j + 1)},
                {NodeKind::kSwitch, spine, static_cast<std::int16_t>(lpos + 1)}, s.rate_gbps,
                s.width);
    }
  }
  for (std::int64_t p = 0; p < pods && s.cores_per_plane > 0; ++p) {
    for (std::int32_t j = 0; j < s.spines_per_pod; ++j) {
      const Index spine = spine_ids[static_cast<std::size_t>(p * s.spines_per_pod + j)];
      for (std::int32_t c = 0; c < s.cores_per_plane; ++c) {
        const Index core =
            core_ids[static_cast<std::size_t>(j) * static_cast<std::size_t>(s.cores_per_plane) +
                     static_cast<std::size_t>(c)];
        b.connect({NodeKind::kSwitch, spine, static_cast<std::int16_t>(s.leaves_per_pod + c + 1)},
                  {NodeKind::kSwitch, core, static_cast<std::int16_t>(p + 1)}, s.rate_gbps,
                  s.width);
      }
    }
  }
  return std::move(b).build();
}

void write_ibsim_net(const Fabric& f, std::ostream& out) {
  const auto speed = [](const Link& l) {
    return fmt::format("{}x{}", l.width == 0 ? 4 : l.width,
                       speed_name(l.rate_gbps, l.width == 0 ? 4 : l.width));
  };
  // Hca ids: one record per (host, device).
  std::map<std::pair<Index, std::string>, std::vector<Index>> devices;
  for (std::size_t n = 0; n < f.nics().size(); ++n) {
    const Nic& nic = f.nics()[n];
    devices[{nic.host, nic.device}].push_back(static_cast<Index>(n));
  }
  const auto ca_id = [&](Index n) {
    const Nic& nic = f.nics()[uz(n)];
    return fmt::format("{}-{}", f.hosts()[uz(nic.host)].name,
                       nic.device.empty() ? "hca" : nic.device);
  };
  const auto far = [&](const Link& l, NodeKind kind, Index idx, int port) -> const LinkEnd& {
    return (l.a.kind == kind && l.a.index == idx && l.a.port == port) ? l.b : l.a;
  };
  const auto end_id = [&](const LinkEnd& e) {
    return e.kind == NodeKind::kNic ? ca_id(e.index) : f.switches()[uz(e.index)].name;
  };
  out << "# ibsim net file written by fabscope (" << f.name() << ")\n";
  for (std::size_t s = 0; s < f.switches().size(); ++s) {
    const Switch& sw = f.switches()[s];
    out << fmt::format("\nSwitch {} \"{}\" # \"{}\"\n", sw.ports, sw.name, sw.name);
    for (int p = 1; p <= sw.ports; ++p) {
      const Index li = f.port_link(static_cast<Index>(s), p);
      if (li == kNone) continue;
      const Link& l = f.links()[uz(li)];
      const LinkEnd& o = far(l, NodeKind::kSwitch, static_cast<Index>(s), p);
      out << fmt::format("[{}] \"{}\"[{}] # lid 0 {}\n", p, end_id(o), o.port, speed(l));
    }
  }
  for (const auto& [key, nics] : devices) {
    int ports = 1;
    for (const Index n : nics) ports = std::max(ports, static_cast<int>(f.nics()[uz(n)].port));
    out << fmt::format("\nHca {} \"{}\" # \"{} {}\"\n", ports, ca_id(nics.front()),
                       f.hosts()[uz(key.first)].name, key.second);
    for (const Index n : nics) {
      const Index li = f.nic_link(n);
      if (li == kNone) continue;
      const Link& l = f.links()[uz(li)];
      const int port = f.nics()[uz(n)].port;
      const LinkEnd& o = far(l, NodeKind::kNic, n, port);
      out << fmt::format("[{}] \"{}\"[{}] # lid 0 {}\n", port, end_id(o), o.port, speed(l));
    }
  }
}

}  // namespace fabscope::topology
