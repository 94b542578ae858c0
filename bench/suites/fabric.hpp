// The fabric a run is on: built on rank 0 from a topology source (YAML, ibnetdiscover dump, ibnd
// cache, live discovery, host-name pattern or a generated fat tree) joined with what every rank
// discovers about its own host; stored under /topology.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "io/results.hpp"
#include "runtime/comm.hpp"
#include "topology/model.hpp"
#include "topology/plan.hpp"

namespace fabscope::suites {

struct TopologySource {
  std::string yaml;              // --topology FILE.yaml
  std::string ibnetdiscover;     // --ibnetdiscover FILE
  std::string routes;            // --routes FILE (ibroute dump) with --ibnetdiscover
  std::string ibnd_cache;        // --ibnd-cache FILE
  std::string hostname_pattern;  // --hostname-pattern REGEX with (?<rack>...) groups
  std::string generate;          // --generate SPEC (fat tree, see topology/generator.hpp)
  bool live = false;             // --live: libibnetdisc through a local InfiniBand port
  // --slurm-topology[=FILE]: Slurm's switch tree from topology.conf FILE, or without FILE from
  // `scontrol show topology`, else from every task's SLURM_TOPOLOGY_ADDR (topology/slurm.hpp).
  bool slurm = false;
  std::string slurm_topology{};
  [[nodiscard]] bool any() const {
    return live || slurm || !yaml.empty() || !ibnetdiscover.empty() || !ibnd_cache.empty() ||
           !hostname_pattern.empty() || !generate.empty();
  }
};

// Collective. Every rank describes its host (sysfs, verbs, hwloc); rank 0 builds the fabric from
// the source, or from the hosts alone when there is none, and returns it (nullopt elsewhere).
// Errors (bad files) are thrown on rank 0 only: call it inside the preflight.
[[nodiscard]] std::optional<topology::Fabric> build_fabric(const runtime::Comm& comm, const TopologySource& source,
                                                           const std::vector<std::string>& hostnames);

// Rank 0: /topology (tables, attributes) and, with endpoints, /topology/ranks.
void write_topology(io::ResultsWriter& out, const topology::Fabric& fabric, const topology::Endpoints* endpoints);

}  // namespace fabscope::suites
