#include "topology/ibnd.hpp"

#include <fmt/format.h>
#include <infiniband/ibnetdisc.h>
#include <infiniband/mad.h>
#include <infiniband/umad.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "core/error.hpp"
#include "core/log.hpp"
#include "topology/ib_common.hpp"

namespace fabscope::topology {
namespace {

// PortInfo CapabilityMask bit 14, IsExtendedSpeedsSupported (IBA 14.2.5.6); libibmad returns the
// field in host order.
constexpr unsigned kCapHasExtSpeeds = 0x4000;
constexpr unsigned kMlnxFdr10 = 0x1;  // MLNX ExtendedPortInfo LinkSpeedActive: FDR10

struct FabricDeleter {
  void operator()(ibnd_fabric_t* f) const noexcept { ibnd_destroy_fabric(f); }
};
using FabricPtr = std::unique_ptr<ibnd_fabric_t, FabricDeleter>;

struct MadPortDeleter {
  void operator()(ibmad_port* p) const noexcept { mad_rpc_close_port(p); }
};
using MadPortPtr = std::unique_ptr<ibmad_port, MadPortDeleter>;

std::string clean_desc(const char* d) {  // as ibnetdiscover's clean_nodedesc: non-printables -> ' '
  std::string s(d, strnlen(d, IB_SMP_DATA_SIZE));
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = ' ';
  }
  return s;
}

// The lane speed named by PortInfo's LinkSpeed (1 SDR, 2 DDR, 4 QDR) and LinkSpeedExt (1 FDR,
// 2 EDR, 4 HDR, 8 NDR) values, as ibnetdiscover names them; "" unknown.
const char* lane_name(unsigned ispeed, unsigned espeed, bool fdr10) {
  const auto compat = [](unsigned s) -> const char* {
    switch (s) {
      case 1:
        return "SDR";
      case 2:
        return "DDR";
      case 4:
        return "QDR";
      default:
        return "";
    }
  };
  if (ispeed != 4 && espeed == 0) return compat(ispeed);
  switch (espeed) {
    case 0:
      return fdr10 ? "FDR10" : compat(ispeed);
    case 1:
      return "FDR";
    case 2:
      return "EDR";
    case 4:
      return "HDR";
    case 8:
      return "NDR";
    default:
      return "";
  }
}

// Whether the port's LinkSpeedExt fields mean anything: on a switch only port 0 says so.
bool has_ext_speeds(ibnd_port_t* port) {
  ibnd_port_t* p = port->node->type == IB_NODE_SWITCH ? port->node->ports[0] : port;
  return p != nullptr && (mad_get_field(p->info, 0, IB_PORT_CAPMASK_F) & kCapHasExtSpeeds) != 0;
}

// The lane rate ibnetdiscover would print for this port (out_switch_port / out_ca_port).
double lane_gbps(ibnd_port_t* port) {
  auto* info = port->info;
  if (port->node->type == IB_NODE_SWITCH && port->node->ports[0] == nullptr) return 0;
  const unsigned ispeed = mad_get_field(info, 0, IB_PORT_LINK_SPEED_ACTIVE_F);
  const unsigned espeed =
      has_ext_speeds(port) ? mad_get_field(info, 0, IB_PORT_LINK_SPEED_EXT_ACTIVE_F) : 0;
  const unsigned fdr10 = mad_get_field(port->ext_info, 0, IB_MLNX_EXT_PORT_LINK_SPEED_ACTIVE_F);
  return ib_lane_gbps(lane_name(ispeed, espeed, (fdr10 & kMlnxFdr10) != 0));
}

// The fastest lane speed the port has enabled (and supports): the highest LinkSpeedExt bit when
// extended speeds are in use, else the highest LinkSpeed bit; 0 unknown.
double max_lane_gbps(ibnd_port_t* port) {
  auto* info = port->info;
  if (port->node->type == IB_NODE_SWITCH && port->node->ports[0] == nullptr) return 0;
  const auto top = [](unsigned bits) {
    unsigned t = 0;
    for (unsigned b = 1; b <= 8; b <<= 1) {
      if ((bits & b) != 0) t = b;
    }
    return t;
  };
  const unsigned ext = has_ext_speeds(port)
                           ? top(mad_get_field(info, 0, IB_PORT_LINK_SPEED_EXT_ENABLED_F) &
                                 mad_get_field(info, 0, IB_PORT_LINK_SPEED_EXT_SUPPORTED_F))
                           : 0;
  const unsigned base = top(mad_get_field(info, 0, IB_PORT_LINK_SPEED_ENABLED_F) &
                            mad_get_field(info, 0, IB_PORT_LINK_SPEED_SUPPORTED_F));
  return ib_lane_gbps(lane_name(ext != 0 ? 4 : base, ext, false));
}

std::string guid_id(std::uint64_t guid) { return fmt::format("0x{:016x}", guid); }

std::vector<detail::IbNode> nodes_of(ibnd_fabric_t* f) {
  std::vector<detail::IbNode> out;
  for (ibnd_node_t* n = f->nodes; n != nullptr; n = n->next) {
    if (n->type != IB_NODE_SWITCH && n->type != IB_NODE_CA) continue;  // routers are not modelled
    detail::IbNode x;
    x.is_switch = n->type == IB_NODE_SWITCH;
    x.id = guid_id(n->guid);
    x.guid = n->guid;
    x.nports = n->numports;
    x.desc = clean_desc(n->nodedesc);
    x.lid = x.is_switch ? n->smalid : 0;
    for (int p = 1; p <= n->numports; ++p) {
      ibnd_port_t* port = n->ports[p];
      if (port == nullptr) continue;
      detail::IbPort q;
      q.num = p;
      q.guid = x.is_switch ? 0 : port->guid;
      q.lid = x.is_switch ? 0 : port->base_lid;
      q.width = detail::ib_width_lanes(mad_get_field(port->info, 0, IB_PORT_LINK_WIDTH_ACTIVE_F));
      q.lane_gbps = lane_gbps(port);
      q.max_width = detail::ib_max_width_lanes(
          mad_get_field(port->info, 0, IB_PORT_LINK_WIDTH_ENABLED_F) &
          mad_get_field(port->info, 0, IB_PORT_LINK_WIDTH_SUPPORTED_F));
      q.max_lane_gbps = max_lane_gbps(port);
      const unsigned state = mad_get_field(port->info, 0, IB_PORT_STATE_F);
      q.state = state >= 1 && state <= 4 ? static_cast<PortState>(state) : PortState::kUnknown;
      const unsigned mtu = mad_get_field(port->info, 0, IB_PORT_NEIGHBOR_MTU_F);
      q.mtu_bytes = static_cast<std::uint16_t>(mtu >= 1 && mtu <= 5 ? 128u << mtu : 0u);
      ibnd_port_t* r = port->remoteport;
      if (r != nullptr && r->node != nullptr &&
          (r->node->type == IB_NODE_SWITCH || r->node->type == IB_NODE_CA)) {
        q.remote_id = guid_id(r->node->guid);
        q.remote_port = r->portnum;
      }
      x.ports.push_back(std::move(q));
    }
    out.push_back(std::move(x));
  }
  return out;
}

std::vector<SwitchLft> read_lfts(ibnd_fabric_t* f, const LiveOptions& o) {
  int classes[] = {IB_SMI_CLASS, IB_SMI_DIRECT_CLASS};
  std::string ca = o.ca;
  MadPortPtr port(mad_rpc_open_port(ca.empty() ? nullptr : ca.data(), o.ca_port, classes, 2));
  if (!port) {
    throw core::Error(
        core::ExitCode::kFailure,
        fmt::format("mad_rpc_open_port(ca '{}', port {}) failed; cannot read forwarding tables",
                    o.ca, o.ca_port));
  }
  std::vector<SwitchLft> out;
  for (ibnd_node_t* n = f->switches; n != nullptr; n = n->type_next) {
    ib_portid_t pid = n->path_portid;
    std::uint8_t si[IB_SMP_DATA_SIZE] = {};
    if (smp_query_via(si, &pid, IB_ATTR_SWITCH_INFO, 0, o.timeout_ms, port.get()) == nullptr) {
      core::log::warn(
          "SubnGet(SwitchInfo) to switch 0x{:016x} '{}' failed; its routes stay unknown", n->guid,
          clean_desc(n->nodedesc));
      continue;
    }
    const unsigned top = mad_get_field(si, 0, IB_SW_LINEAR_FDB_TOP_F);
    if (top == 0) continue;  // no subnet manager has programmed it yet
    SwitchLft t{n->guid, std::vector<std::uint8_t>(top + 1u, kNoPort)};
    for (unsigned block = 0; block * 64 <= top; ++block) {
      std::uint8_t buf[IB_SMP_DATA_SIZE] = {};
      if (smp_query_via(buf, &pid, IB_ATTR_LINEARFORWTBL, block, o.timeout_ms, port.get()) ==
          nullptr) {
        throw core::Error(
            core::ExitCode::kFailure,
            fmt::format("SubnGet(LinearForwardingTable block {}) to switch 0x{:016x} '{}' failed",
                        block, n->guid, clean_desc(n->nodedesc)));
      }
      for (unsigned i = 0; i < 64 && block * 64 + i <= top; ++i) t.ports[block * 64 + i] = buf[i];
    }
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace

Fabric discover_fabric_live(const LiveOptions& o) {
  // umad_get_cas_names() answers a made-up "mthca0" on a host without CAs; umad_get_ca() tells.
  {
    std::string ca_name = o.ca;
    umad_ca_t ca{};
    const int rc = umad_get_ca(ca_name.empty() ? nullptr : ca_name.data(), &ca);
    if (rc < 0) {
      throw core::Unsupported(
          fmt::format("InfiniBand discovery: no local CA{} can send SMPs (umad_get_ca: {}); use "
                      "--ibnetdiscover "
                      "FILE or a topology YAML, or run on a host with an InfiniBand port",
                      o.ca.empty() ? "" : " '" + o.ca + "'", std::strerror(-rc)));
    }
    umad_release_ca(&ca);
  }
  ibnd_config_t cfg;
  std::memset(&cfg, 0, sizeof cfg);
  cfg.timeout_ms = o.timeout_ms;
  std::string ca = o.ca;
  errno = 0;
  FabricPtr f(ibnd_discover_fabric(ca.empty() ? nullptr : ca.data(), o.ca_port, nullptr, &cfg));
  if (!f) {
    throw core::Error(
        core::ExitCode::kFailure,
        fmt::format("ibnd_discover_fabric(ca '{}', port {}) failed{}; check that the port is "
                    "ACTIVE (ibstat) and that /dev/infiniband/umad* is accessible",
                    o.ca, o.ca_port, errno != 0 ? ": " + core::errno_message("", errno) : ""));
  }
  if (!o.cache_path.empty() &&
      ibnd_cache_fabric(f.get(), o.cache_path.c_str(), IBND_CACHE_FABRIC_FLAG_DEFAULT) != 0) {
    throw core::UsageError(fmt::format(
        "ibnd_cache_fabric('{}') failed; check the directory is writable", o.cache_path));
  }
  Fabric fabric = detail::build_ib_fabric(nodes_of(f.get()), "ibnetdisc",
                                          "libibnetdisc live discovery", "libibnetdisc");
  if (o.read_routes) {
    const auto lfts = read_lfts(f.get(), o);
    if (!lfts.empty()) fabric.set_routes(lfts);
  }
  return fabric;
}

Fabric load_ibnd_cache(const std::string& path) {
  FabricPtr f(ibnd_load_fabric(path.c_str(), 0));
  if (!f) {
    throw core::UsageError(
        fmt::format("ibnd cache '{}': ibnd_load_fabric failed; is it a file written by "
                    "'ibnetdiscover --cache'?",
                    path));
  }
  return detail::build_ib_fabric(nodes_of(f.get()), "ibnetdisc", "ibnd-cache:" + path, path);
}

}  // namespace fabscope::topology
