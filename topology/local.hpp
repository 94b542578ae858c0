// What one host knows about itself: its RDMA NIC ports (sysfs, libibverbs), their netdevs, PCI
// addresses and NUMA nodes, and the machine's NUMA/core layout (hwloc). Every rank runs
// discover_local(); the lead's runtime gathers encode_local() strings to rank 0, which joins them
// to the fabric model with merge_local() and stores them under /topology.
//
// Sources, per NIC port:
//   /sys/class/infiniband/<dev>/node_guid, ports/<p>/{state,rate,lid,link_layer,gids/0}
//   /sys/class/infiniband/<dev>/device -> the PCI device (address = its directory name),
//     device/numa_node, device/net/<netdev> (or ports/<p>/gid_attrs/ndevs/0 for RoCE)
//   libibverbs ibv_query_port: active MTU (sysfs has none for InfiniBand)
//   hwloc (I/O devices kept, OS devices of type OPENFABRICS): NUMA node when sysfs says -1,
//     and the machine's NUMA nodes, cores and PUs.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "topology/model.hpp"

namespace fabscope::topology {

struct LocalNic {
  std::string device;
  int port = 1;
  std::uint64_t node_guid = 0;
  std::uint64_t port_guid = 0;
  std::uint16_t lid = 0;
  LinkLayer link_layer = LinkLayer::kUnknown;
  double rate_gbps = 0;
  int width = 0;
  PortState state = PortState::kUnknown;
  int mtu_bytes = 0;
  int numa_node = -1;
  std::string pci_address;
  std::string netdev;
  bool operator==(const LocalNic&) const = default;
};

struct LocalHost {
  std::string hostname;
  int numa_nodes = 0;
  int cores = 0;
  int pus = 0;
  std::vector<LocalNic> nics;
  std::string notes;  // what could not be read, e.g. "hwloc: ..."; empty when all went well
  bool operator==(const LocalHost&) const = default;
};

struct LocalOptions {
  std::string sysfs_root = "/sys";  // tests point this at a fake tree
  bool use_hwloc = true;
  bool use_verbs = true;  // only with the real /sys
  std::string hostname;   // empty = gethostname()
};

// Never throws for a host without RDMA devices (nics is empty); throws core::Error only when
// hwloc itself cannot be initialised.
[[nodiscard]] LocalHost discover_local(const LocalOptions& options = {});

// One line per field, text only, so ranks can send it through any byte channel.
[[nodiscard]] std::string encode_local(const LocalHost& host);
// Throws core::UsageError on text encode_local did not write.
[[nodiscard]] LocalHost decode_local(std::string_view text);

struct MergeReport {
  std::int64_t matched = 0;
  std::vector<std::string> unmatched;  // "host:device port" of NICs the fabric does not know
};

// Joins local NIC details to the fabric's NICs: by port GUID when both have one, else by host
// name + device + port. Fills state, MTU, NUMA node, PCI address, netdev and any field the
// fabric left unknown (LID, GUIDs, rate, width, link layer).
MergeReport merge_local(Fabric& fabric, std::span<const LocalHost> hosts);

// A fabric of hosts and NICs only (no switches), when nothing else is known.
[[nodiscard]] Fabric fabric_from_local(std::span<const LocalHost> hosts);

// "100 Gb/sec (4X EDR)" -> {100, 4}; {0, 0} when unreadable.
[[nodiscard]] std::pair<double, int> parse_sysfs_rate(std::string_view text);

}  // namespace fabscope::topology
