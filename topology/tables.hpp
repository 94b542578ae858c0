// The model as plain columns, for the HDF5 writer (bench/io) to store under /topology without
// knowing the model: one group per table, one dataset per column (int64, float64 or
// variable-length UTF-8 string), `units` attribute when a column has units. Row i of `hosts` is
// host index i, and the index columns (rack, leaf, pod, host, ...) refer to rows of the other
// tables (-1 = none). Layout proposed in topology/PLANS.md ("Storing the topology").
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "topology/model.hpp"
#include "topology/plan.hpp"

namespace fabscope::topology {

struct Column {
  std::string name;
  std::string units;  // "" for none
  std::variant<std::vector<std::int64_t>, std::vector<double>, std::vector<std::string>> values;
};

struct Table {
  std::string name;  // hosts, nics, switches, links, racks, pods
  std::vector<Column> columns;
};

[[nodiscard]] std::vector<Table> topology_tables(const Fabric& fabric);

// Attributes of /topology: source, name, counts, routes_known, hop_definition, hop_class_names.
[[nodiscard]] std::vector<std::pair<std::string, std::string>> topology_attributes(
    const Fabric& fabric);

// Per rank (endpoint i = rank i): topology host and NIC index, for /topology/ranks.
[[nodiscard]] Table rank_table(const Endpoints& endpoints);

}  // namespace fabscope::topology
