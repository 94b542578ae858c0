#include "suites/fabric.hpp"

#include <fmt/format.h>

#include <variant>

#include "core/error.hpp"
#include "topology/generator.hpp"
#include "topology/ibnd.hpp"
#include "topology/local.hpp"
#include "topology/sources.hpp"
#include "topology/tables.hpp"

namespace fabscope::suites {

std::optional<topology::Fabric> build_fabric(const runtime::Comm& comm, const TopologySource& source,
                                             const std::vector<std::string>& hostnames) {
  std::string mine;
  try {
    mine = topology::encode_local(topology::discover_local());
  } catch (const core::Error&) {
    mine.clear();  // hwloc failed on this host: the fabric still builds from the source
  }
  const auto all = comm.gather_strings(mine);
  if (comm.rank() != 0) return std::nullopt;
  std::vector<topology::LocalHost> hosts;
  for (const auto& s : all)
    if (!s.empty()) hosts.push_back(topology::decode_local(s));
  std::optional<topology::Fabric> f;
  if (!source.yaml.empty()) {
    f = topology::load_topology_yaml(source.yaml);
  } else if (!source.ibnetdiscover.empty()) {
    f = topology::load_ibnetdiscover(source.ibnetdiscover);
    if (!source.routes.empty()) {
      f->set_routes(topology::parse_ibroute_dump(topology::read_text_file(source.routes, "--routes"), source.routes));
    }
  } else if (!source.ibnd_cache.empty()) {
    f = topology::load_ibnd_cache(source.ibnd_cache);
  } else if (source.live) {
    f = topology::discover_fabric_live({});
  } else if (!source.hostname_pattern.empty()) {
    f = topology::fabric_from_hostnames(hostnames, source.hostname_pattern);
  } else if (!source.generate.empty()) {
    f = topology::generate_fat_tree(topology::parse_fat_tree_spec(source.generate, "--generate"));
  }
  if (!f) return topology::fabric_from_local(hosts);
  if (source.generate.empty()) (void)topology::merge_local(*f, hosts);
  return f;
}

void write_topology(io::ResultsWriter& out, const topology::Fabric& fabric, const topology::Endpoints* endpoints) {
  auto write_table = [&](const topology::Table& t) {
    const std::string base = "/topology/" + t.name + "/";
    for (const auto& c : t.columns) {
      std::visit(
          [&](const auto& v) {
            using V = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<V, std::vector<std::string>>) {
              out.write_strings(base + c.name, v);
            } else if constexpr (std::is_same_v<V, std::vector<double>>) {
              out.write_doubles(base + c.name, v, {v.size()}, c.units);
            } else {
              out.write_ints(base + c.name, v, {v.size()}, c.units);
            }
          },
          c.values);
    }
  };
  for (const auto& t : topology::topology_tables(fabric)) write_table(t);
  if (endpoints != nullptr) write_table(topology::rank_table(*endpoints));
  for (const auto& [k, v] : topology::topology_attributes(fabric)) out.set_attr("/topology", k, v);
}

}  // namespace fabscope::suites
