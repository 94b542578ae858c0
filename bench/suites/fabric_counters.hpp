// --pma: the fabric's own error counters (topology/pma.hpp) read by rank 0 before the first run and
// after the last, their deltas stored per cable end under /pma (results/SCHEMA.md).
#pragma once

#include <string>
#include <vector>

#include "io/results.hpp"
#include "topology/model.hpp"
#include "topology/pma.hpp"

namespace fabscope::suites {

// The first reading. Throws core::UsageError when no cable end of the fabric has a LID (a
// topology without a subnet manager's LIDs: a YAML file, a dump taken before the SM ran), and
// core::Unsupported when this host cannot send MADs.
[[nodiscard]] std::vector<topology::PmaPort> read_fabric_counters(const topology::Fabric& fabric);

// /pma/{names,link,side,end,peer,host,ok,delta}; returns the lines of describe_errors.
std::vector<std::string> write_pma(io::ResultsWriter& out, const topology::Fabric& fabric,
                                   const std::vector<topology::PmaPort>& deltas);

}  // namespace fabscope::suites
