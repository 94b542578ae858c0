// Internals shared by the Flows implementations (multi_mpi.cpp, multi_verbs.cpp); not for suites.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "transport/multi.hpp"

namespace fabscope::verbs {
struct Port;
}

namespace fabscope::transport::flows {

// MPI tags of one Flows object's connection with one peer. Both sides count the Flows objects
// that connect them (the relation is symmetric: a streams to b <=> b has a in `from`), so they
// agree on the generation, and a message of a connection that failed can never be taken for one
// of a later connection.
struct Tags {
  int data, ack, ping, pong, wire_out, wire_in, ready, fin;
};
[[nodiscard]] Tags tags_for(int peer);
// tags_for() for every distinct peer of a spec (to and from), each generation counted once.
[[nodiscard]] std::map<int, Tags> tags_of(const FlowsSpec& spec);

// A poll loop's patience: after kSpinsBeforeYield polls without progress it yields the CPU, so
// oversubscribed ranks (more ranks than cores) let the rank that can progress run.
inline constexpr int kSpinsBeforeYield = 64;

std::unique_ptr<Flows> make_mpi_flows(const runtime::Comm& comm, const FlowsSpec& spec,
                                      const Options& opt);
std::unique_ptr<Flows> make_verbs_flows(const runtime::Comm& comm, verbs::Port& port, const FlowsSpec& spec,
                                        const Options& opt);
// Ethtool statistics of `ifname` that is_pause_counter() keeps (SIOCETHTOOL ETHTOOL_GSTATS).
std::map<std::string, std::uint64_t> netdev_pause_counters(const std::string& ifname);

}  // namespace fabscope::transport::flows
