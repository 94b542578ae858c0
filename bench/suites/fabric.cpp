#include "suites/fabric.hpp"

#include <fmt/format.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <variant>

#include "core/error.hpp"
#include "runtime/launcher.hpp"
#include "topology/generator.hpp"
#include "topology/ibnd.hpp"
#include "topology/local.hpp"
#include "topology/slurm.hpp"
#include "topology/sources.hpp"
#include "topology/tables.hpp"

namespace fabscope::suites {
namespace {

// `scontrol show topology`: its output when it ran and printed switches, else "" and why not.
std::string scontrol_topology(std::string& why) {
  std::FILE* p = ::popen("scontrol show topology 2>&1", "r");
  if (p == nullptr) {
    why = "cannot start scontrol";
    return "";
  }
  std::string text;
  char buf[4096];
  for (std::size_t n = 0; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) text.append(buf, n);
  const int status = ::pclose(p);
  if (status != 0 || text.find("SwitchName=") == std::string::npos) {
    const auto nl = text.find('\n');
    const std::string first = text.substr(0, nl);
    why = WIFEXITED(status) && WEXITSTATUS(status) == 127
              ? std::string("scontrol is not installed here")
              : fmt::format("scontrol show topology printed no switches ('{}')", first);
    return "";
  }
  return text;
}

topology::Fabric slurm_fabric(const TopologySource& source,
                              const std::vector<std::string>& hostnames,
                              const std::vector<std::string>& addrs) {
  if (!source.slurm_topology.empty()) return topology::load_slurm_topology(source.slurm_topology);
  std::string why;
  if (const std::string text = scontrol_topology(why); !text.empty())
    return topology::parse_slurm_topology(text, "scontrol show topology");
  if (std::any_of(addrs.begin(), addrs.end(), [](const std::string& a) { return !a.empty(); }))
    return topology::fabric_from_topology_addrs(hostnames, addrs);
  throw core::UsageError(fmt::format(
      "--slurm-topology: no file given, {}, and no task has SLURM_TOPOLOGY_ADDR (Slurm sets it "
      "with TopologyPlugin=topology/tree); give the file: --slurm-topology=topology.conf",
      why));
}

}  // namespace

std::optional<topology::Fabric> build_fabric(const runtime::Comm& comm, const TopologySource& source,
                                             const std::vector<std::string>& hostnames) {
  std::string mine;
  try {
    mine = topology::encode_local(topology::discover_local());
  } catch (const core::Error&) {
    mine.clear();  // hwloc failed on this host: the fabric still builds from the source
  }
  const auto all = comm.gather_strings(mine);
  // Every task's switch path, for --slurm-topology without a file (collective, so only then).
  const std::vector<std::string> addrs = source.slurm && source.slurm_topology.empty()
                                             ? comm.gather_strings(runtime::slurm_topology_addr())
                                             : std::vector<std::string>{};
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
  } else if (source.slurm) {
    f = slurm_fabric(source, hostnames, addrs);
  } else if (!source.generate.empty()) {
    f = topology::generate_fat_tree(topology::parse_fat_tree_spec(source.generate, "--generate"));
  }
  if (!f) return topology::fabric_from_local(hosts);
  if (source.generate.empty()) (void)topology::merge_local(*f, hosts);
  return f;
}

namespace {

// With forwarding tables: which spine "plane" carries traffic TO each rank. Destination-based
// routing (OpenSM ftree/updn, D-mod-K) sends every flow to a NIC up through the same spine
// position of the source's pod, so a route from any NIC on another leaf tells it. Plane = the
// spine's position among its pod's spines in switch order; -1 when no route climbs a spine.
// The analysis uses it to name a bad leaf-spine cable (analysis/fabscope_analyze/layout.py).
std::vector<std::int64_t> dest_planes(const topology::Fabric& fabric, const topology::Endpoints& eps) {
  const auto& sw = fabric.switches();
  std::vector<std::int64_t> position(sw.size(), -1);
  std::map<topology::Index, std::int64_t> next_in_pod;
  for (std::size_t k = 0; k < sw.size(); ++k) {
    if (sw[k].level == 2) position[k] = next_in_pod[sw[k].pod]++;
  }
  const auto& nics = fabric.nics();
  std::vector<std::int64_t> plane(eps.size(), -1);
  for (std::size_t i = 0; i < eps.size(); ++i) {
    const topology::Index d = eps[i].nic;
    if (d == topology::kNone) continue;
    const topology::Index d_leaf = nics[static_cast<std::size_t>(d)].leaf;
    for (std::size_t s = 0, tries = 0; s < nics.size() && tries < 64; ++s) {
      if (nics[s].leaf == d_leaf || nics[s].leaf == topology::kNone) continue;
      ++tries;
      const topology::Index spine = fabric.route_spine(static_cast<topology::Index>(s), d);
      if (spine != topology::kNone) {
        plane[i] = position[static_cast<std::size_t>(spine)];
        break;
      }
    }
  }
  return plane;
}

}  // namespace

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
  if (endpoints != nullptr) {
    write_table(topology::rank_table(*endpoints));
    if (fabric.has_routes()) out.write_ints("/topology/ranks/dest_plane", dest_planes(fabric, *endpoints), {endpoints->size()}, "");
  }
  for (const auto& [k, v] : topology::topology_attributes(fabric)) out.set_attr("/topology", k, v);
}

}  // namespace fabscope::suites
