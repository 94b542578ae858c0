#include "topology/pma.hpp"

#include <fmt/format.h>
#include <infiniband/mad.h>
#include <infiniband/umad.h>

#include <cstring>
#include <memory>
#include <sstream>

#include "core/error.hpp"

namespace fabscope::topology {
namespace {

struct MadPortDeleter {
  void operator()(ibmad_port* p) const noexcept { mad_rpc_close_port(p); }
};
using MadPortPtr = std::unique_ptr<ibmad_port, MadPortDeleter>;

// libibmad's field of each counter, in kPmaCounters order: PortCounters, then PortCountersExtended.
constexpr std::array<MAD_FIELDS, kPmaCounters.size()> kFields = {
    IB_PC_ERR_SYM_F,        IB_PC_LINK_RECOVERS_F,  IB_PC_LINK_DOWNED_F,   IB_PC_ERR_RCV_F,
    IB_PC_ERR_PHYSRCV_F,    IB_PC_XMT_DISCARDS_F,   IB_PC_ERR_LOCALINTEG_F, IB_PC_ERR_EXCESS_OVR_F,
    IB_PC_XMT_WAIT_F,       IB_PC_EXT_XMT_BYTES_F,  IB_PC_EXT_RCV_BYTES_F,  IB_PC_EXT_XMT_PKTS_F,
    IB_PC_EXT_RCV_PKTS_F};

// The LID and port number the PMA of this end answers on.
std::pair<std::uint16_t, int> address(const Fabric& f, const LinkEnd& e) {
  if (e.index == kNone) return {0, 0};
  if (e.kind == NodeKind::kSwitch) return {f.switches()[e.index].lid, e.port};
  const Nic& n = f.nics()[e.index];
  return {n.lid, e.port > 0 ? e.port : n.port};
}

}  // namespace

std::vector<PmaPort> read_pma(const Fabric& fabric, const PmaOptions& o) {
  std::string ca = o.ca;
  umad_ca_t info{};
  if (const int rc = umad_get_ca(ca.empty() ? nullptr : ca.data(), &info); rc < 0) {
    throw core::Unsupported(fmt::format(
        "PMA port counters: no local CA{} can send MADs (umad_get_ca: {}); run on a host with an "
        "InfiniBand port",
        o.ca.empty() ? "" : " '" + o.ca + "'", std::strerror(-rc)));
  }
  umad_release_ca(&info);
  int classes[] = {IB_SMI_CLASS, IB_SMI_DIRECT_CLASS, IB_PERFORMANCE_CLASS};
  MadPortPtr port(mad_rpc_open_port(ca.empty() ? nullptr : ca.data(), o.ca_port, classes, 3));
  if (!port) {
    throw core::Unsupported(
        fmt::format("PMA port counters: mad_rpc_open_port(ca '{}', port {}) failed; check "
                    "/dev/infiniband/umad* "
                    "access (root or the rdma group)",
                    o.ca, o.ca_port));
  }
  std::vector<PmaPort> out;
  const auto& links = fabric.links();
  for (std::size_t l = 0; l < links.size(); ++l) {
    for (int side = 0; side < 2; ++side) {
      PmaPort p;
      p.link = static_cast<Index>(l);
      p.side = side;
      std::tie(p.lid, p.port) = address(fabric, side == 0 ? links[l].a : links[l].b);
      if (p.lid != 0 && p.port > 0) {
        ib_portid_t pid{};
        ib_portid_set(&pid, p.lid, 0, 0);
        std::uint8_t buf[1024] = {};
        if (pma_query_via(buf, &pid, p.port, o.timeout_ms, IB_GSI_PORT_COUNTERS, port.get()) !=
            nullptr) {
          p.ok = true;
          for (std::size_t c = 0; c < kPmaExtFirst; ++c) {
            std::uint32_t v = 0;
            mad_decode_field(buf, kFields[c], &v);
            p.values[c] = v;
          }
          std::memset(buf, 0, sizeof buf);
          if (pma_query_via(buf, &pid, p.port, o.timeout_ms, IB_GSI_PORT_COUNTERS_EXT,
                            port.get()) != nullptr) {
            p.ext_ok = true;
            for (std::size_t c = kPmaExtFirst; c < kFields.size(); ++c) {
              std::uint64_t v = 0;  // 64-bit fields
              mad_decode_field(buf, kFields[c], &v);
              p.values[c] = v;
            }
          }
        }
      }
      out.push_back(p);
    }
  }
  return out;
}

std::vector<PmaPort> pma_deltas(const std::vector<PmaPort>& before,
                                const std::vector<PmaPort>& after) {
  std::vector<PmaPort> out = after;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const bool both = i < before.size() && before[i].ok && after[i].ok &&
                      before[i].link == after[i].link && before[i].side == after[i].side;
    out[i].ok = both;
    out[i].ext_ok = both && before[i].ext_ok && after[i].ext_ok;
    for (std::size_t c = 0; c < out[i].values.size(); ++c) {
      const bool have = c < kPmaExtFirst ? out[i].ok : out[i].ext_ok;
      const std::uint64_t a = after[i].values[c];
      const std::uint64_t b = have ? before[i].values[c] : 0;
      out[i].values[c] = !have ? 0 : a >= b ? a - b : a;
    }
  }
  return out;
}

std::string end_name(const Fabric& f, const LinkEnd& e) {
  if (e.index == kNone) return "?";
  if (e.kind == NodeKind::kSwitch) return fmt::format("{}[{}]", f.switches()[e.index].name, e.port);
  const Nic& n = f.nics()[e.index];
  const std::string host = n.host != kNone ? f.hosts()[n.host].name : std::string("?");
  return fmt::format("{} {}[{}]", host, n.device.empty() ? "nic" : n.device,
                     e.port > 0 ? e.port : n.port);
}

std::vector<std::string> describe_errors(const Fabric& f, const std::vector<PmaPort>& deltas) {
  std::vector<std::string> out;
  for (const auto& d : deltas) {
    if (!d.ok || d.link == kNone) continue;
    std::string rose;
    for (std::size_t c = 0; c < kPmaErrorCounters; ++c) {
      if (d.values[c] > 0)
        rose += fmt::format("{}{} +{}", rose.empty() ? "" : ", ", kPmaCounters[c], d.values[c]);
    }
    if (rose.empty()) continue;
    const Link& l = f.links()[d.link];
    out.push_back(fmt::format("{} <-> {}: at {}: {}", end_name(f, l.a), end_name(f, l.b),
                              end_name(f, d.side == 0 ? l.a : l.b), rose));
  }
  return out;
}

std::string encode_pma(const std::vector<PmaPort>& ports) {
  std::string out;
  for (const auto& p : ports) {
    out += fmt::format("{} {} {} {} {} {}", p.link, p.side, p.lid, p.port, p.ok ? 1 : 0,
                       p.ext_ok ? 1 : 0);
    for (const auto v : p.values) out += fmt::format(" {}", v);
    out += '\n';
  }
  return out;
}

std::vector<PmaPort> decode_pma(const std::string& text, const std::string& what) {
  std::vector<PmaPort> out;
  std::istringstream in(text);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    std::istringstream ls(line);
    PmaPort p;
    int ok = 0, ext_ok = 0;
    ls >> p.link >> p.side >> p.lid >> p.port >> ok >> ext_ok;
    for (auto& v : p.values) ls >> v;
    if (!ls || (p.side != 0 && p.side != 1)) {
      throw core::UsageError(
          fmt::format("{}:{}: expected 'link side lid port ok ext_ok' and {} counter values", what,
                      n, kPmaCounters.size()));
    }
    p.ok = ok != 0;
    p.ext_ok = ext_ok != 0;
    out.push_back(p);
  }
  return out;
}

}  // namespace fabscope::topology
