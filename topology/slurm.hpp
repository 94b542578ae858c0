// The fabric as Slurm describes it (TopologyPlugin=topology/tree): topology.conf, the output of
// `scontrol show topology`, or the SLURM_TOPOLOGY_ADDR every task sees. Many sites keep their
// switch tree in topology.conf for scheduling, so it is a source they already have.
//
// topology.conf (slurm.conf(5) companion, topology.conf(5)):
//   # comment                              '#' to the end of the line
//   SwitchName=leaf1 Nodes=n[001-032]      a switch with nodes is a leaf (level 1)
//   SwitchName=leaf2 Nodes=n[033-064,066]  (a '\' at the end of a line continues it on the next)
//   SwitchName=spine1 Switches=leaf[1-2]   a parent of leaves is a spine (level 2), and so on up
// Keys are case-insensitive (as Slurm reads them). LinkSpeed is Slurm's relative weight, not a
// rate: it is accepted and not used. `scontrol show topology` prints the same keys plus Level=
// (0 = leaf), and lists every node below a switch under Nodes=, so there nodes are attached only
// to Level=0 switches. Each node becomes a host with one NIC on its leaf (a node under two leaves
// gets a NIC on each); racks are named after leaves; levels and pods are derived by the model.
//
// Every mistake is one core::UsageError "FILE:LINE: problem; fix".
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "topology/model.hpp"

namespace fabscope::topology {

// Most names one file may expand to (a 100,000-GPU fabric has ~12,500 nodes; the largest Slurm
// clusters a few tens of thousands), and most nodes plus child switches under one switch (the model
// numbers a switch's ports in 16 bits). The bounds keep a hostile file from costing gigabytes and
// minutes: 176,000 nodes on one leaf took 28 s under ASan (found by tests/fuzz slurm_topology).
inline constexpr std::size_t kMaxHostlistNames = 65'536;
inline constexpr std::size_t kMaxSwitchChildren = 16'384;

// Expands a Slurm hostlist expression: "n[001-003,7],gpu1,r[1-2]n[1-2]" -> n001 n002 n003 n7 gpu1
// r1n1 r1n2 r2n1 r2n2. A range keeps the zero padding of its lower bound. Throws core::UsageError
// "`where`: problem" on unbalanced brackets, empty names, reversed or non-numeric ranges, or more
// than `max_names` names.
[[nodiscard]] std::vector<std::string> expand_hostlist(std::string_view expr,
                                                       std::string_view where,
                                                       std::size_t max_names = kMaxHostlistNames);

// topology.conf text (or `scontrol show topology` output); `name` is what errors call it.
[[nodiscard]] Fabric parse_slurm_topology(std::string_view text, const std::string& name);
[[nodiscard]] Fabric load_slurm_topology(const std::string& path);

// SLURM_TOPOLOGY_ADDR of each host ("spine1.leaf2.n3": the switches from the top down, then the
// node), hosts[i] with addrs[i]. The last component must be the host's own name. Throws
// core::UsageError naming the host whose address is missing or has no switch.
[[nodiscard]] Fabric fabric_from_topology_addrs(std::span<const std::string> hosts,
                                                std::span<const std::string> addrs);

}  // namespace fabscope::topology
