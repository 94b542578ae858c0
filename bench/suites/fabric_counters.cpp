#include "suites/fabric_counters.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.hpp"

namespace fabscope::suites {

std::vector<topology::PmaPort> read_fabric_counters(const topology::Fabric& fabric) {
  auto ports = topology::read_pma(fabric, {});
  if (std::none_of(ports.begin(), ports.end(), [](const topology::PmaPort& p) { return p.lid; })) {
    throw core::UsageError(
        "--pma: no cable end of the topology has a LID; give a fabric a subnet manager has "
        "configured (--live, or --ibnetdiscover / --ibnd-cache taken after it ran)");
  }
  return ports;
}

std::vector<std::string> write_pma(io::ResultsWriter& out, const topology::Fabric& fabric,
                                   const std::vector<topology::PmaPort>& deltas) {
  std::vector<std::string> names(topology::kPmaCounters.begin(), topology::kPmaCounters.end());
  std::vector<std::int64_t> link, side, ok, ok_ext, delta;
  std::vector<std::string> end, peer, host;
  for (const auto& d : deltas) {
    const auto& l = fabric.links()[d.link];
    const auto& me = d.side == 0 ? l.a : l.b;
    const auto& other = d.side == 0 ? l.b : l.a;
    link.push_back(d.link);
    side.push_back(d.side);
    ok.push_back(d.ok ? 1 : 0);
    ok_ext.push_back(d.ext_ok ? 1 : 0);
    end.push_back(topology::end_name(fabric, me));
    peer.push_back(topology::end_name(fabric, other));
    std::string h;
    for (const auto* e : {&l.a, &l.b}) {
      if (e->kind == topology::NodeKind::kNic && e->index != topology::kNone) {
        const auto hi = fabric.nics()[e->index].host;
        if (hi != topology::kNone) h = fabric.hosts()[hi].name;
      }
    }
    host.push_back(h);
    for (const auto v : d.values) delta.push_back(static_cast<std::int64_t>(v));
  }
  const std::uint64_t e = deltas.size();
  out.write_strings("/pma/names", names);
  out.write_ints("/pma/link", link, {e}, "1");
  out.write_ints("/pma/side", side, {e}, "1");
  out.write_ints("/pma/ok", ok, {e}, "1");
  out.write_ints("/pma/ok_ext", ok_ext, {e}, "1");
  out.write_strings("/pma/end", end);
  out.write_strings("/pma/peer", peer);
  out.write_strings("/pma/host", host);
  out.write_ints("/pma/delta", delta, {e, names.size()}, "1");
  return topology::describe_errors(fabric, deltas);
}

}  // namespace fabscope::suites
