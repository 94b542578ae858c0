// The fabric model: hosts, NICs, switches and links, with the hierarchy host -> leaf (rack) ->
// spine (pod) -> core, rails for multi-NIC hosts, and hop distances between any two NICs/hosts.
//
// Everything is index based (vectors of small structs, int32 indices) so that a 12,500-host,
// 100,000-NIC fabric costs a few tens of MB. A Fabric is built once by a FabricBuilder (the
// sources: YAML, host-name pattern, ibnetdiscover dump, libibnetdisc, the fat-tree generator) and
// is immutable afterwards except for routes and locally discovered NIC details.
//
// Tiers. A switch's level is 1 for a leaf (it has NICs cabled to it), 2 for a spine (linked to
// leaves, no NICs), 3 for a core (linked to spines), and so on up. A pod is a group of leaves and
// spines that are linked to each other (a connected component of the leaf+spine graph); cores
// belong to no pod. Sources that know the tiers (YAML, generator) set them; the others derive them.
//
// Hop distance (nic_hops / host_hops): the number of LINKS on a shortest path between two NIC
// ports, host links included. So:
//   same NIC                          0
//   same leaf                         2   host - leaf - host                           same_leaf
//   same pod (leaves share a spine)   4   host - leaf - spine - leaf - host            same_pod
//   different pods, via cores         6   host - leaf - spine - core - spine - leaf - host
//                                                                                     cross_spine
// (switch hops = links - 1: 1, 3, 5). Between pods the distance is measured over the tiers above
// the spines (so a 4-tier fabric gives 8). Within a pod whose leaves do not all share a spine,
// leaves with no common spine count 6 (a path via another tier), which is exact for the usual
// Clos wirings. When routes are known (InfiniBand LFTs), route() gives the real path instead.
// Hosts are compared by their primary NIC (the lowest rail).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace fabscope::topology {

using Index = std::int32_t;
inline constexpr Index kNone = -1;

enum class LinkLayer : std::uint8_t { kUnknown, kInfiniBand, kEthernet };
// Values of the InfiniBand PortInfo PortState field (IBA 14.2.5.6); sysfs prints the same numbers.
enum class PortState : std::uint8_t { kUnknown = 0, kDown = 1, kInit = 2, kArmed = 3, kActive = 4 };
enum class HopClass : std::uint8_t { kSameHost, kSameLeaf, kSamePod, kCrossSpine, kUnknown };
inline constexpr int kHopClasses = 5;

[[nodiscard]] std::string_view to_string(LinkLayer v);
[[nodiscard]] std::string_view to_string(PortState v);
// "same_host", "same_leaf", "same_pod", "cross_spine", "unknown" (the HDF5 and report names).
[[nodiscard]] std::string_view to_string(HopClass v);
[[nodiscard]] LinkLayer parse_link_layer(
    std::string_view text);  // "ethernet"/"infiniband", any case

struct Nic {
  Index host = kNone;
  std::string device;           // RDMA device, e.g. "mlx5_0" (may be empty for YAML/regex sources)
  std::uint8_t port = 1;        // port number on the device
  std::uint64_t node_guid = 0;  // 0 when unknown (Ethernet)
  std::uint64_t port_guid = 0;
  std::uint16_t lid = 0;
  LinkLayer link_layer = LinkLayer::kUnknown;
  double rate_gbps = 0;    // nominal signalling rate, as ibstat prints it (4x HDR = 200)
  std::uint8_t width = 0;  // lanes: 1, 2, 4, 8, 12; 0 unknown
  PortState state = PortState::kUnknown;
  std::uint16_t mtu_bytes = 0;  // active RDMA MTU; 0 unknown
  std::int16_t numa_node = -1;
  std::string pci_address;      // "0000:3b:00.0"
  std::string netdev;           // "eth2", "ib0"
  std::int16_t rail = 0;        // 0-based rail; the primary NIC of a host is its lowest rail
  Index leaf = kNone;           // switch the port is cabled to (derived from the links)
  std::int16_t leaf_port = -1;  // port on that switch
  bool operator==(const Nic&) const = default;
};

struct Host {
  std::string name;
  Index rack = kNone;
  Index first_nic = 0;  // NICs of a host are contiguous and ordered by rail
  Index nic_count = 0;
  bool operator==(const Host&) const = default;
};

struct Switch {
  std::string name;
  std::uint64_t guid = 0;
  std::uint16_t lid = 0;
  std::uint8_t level = 0;   // 1 leaf, 2 spine, 3 core, ...; 0 unknown (not connected to any leaf)
  Index pod = kNone;        // pod of a leaf or spine; kNone for cores
  std::uint16_t ports = 0;  // highest port number
  bool operator==(const Switch&) const = default;
};

enum class NodeKind : std::uint8_t { kNic, kSwitch };

struct LinkEnd {
  NodeKind kind = NodeKind::kSwitch;
  Index index = kNone;    // into nics() or switches()
  std::int16_t port = 0;  // switch port; for a NIC end the NIC's own port; 0 = assign automatically
  bool operator==(const LinkEnd&) const = default;
};

// A cable. After build, `a` is the lower end (the NIC, or the lower-level switch).
struct Link {
  LinkEnd a, b;
  double rate_gbps = 0;
  std::uint8_t width = 0;
  // The rate both ends could train to (InfiniBand PortInfo: the widest enabled width x the fastest
  // enabled speed, the lower of the two ends); 0 unknown. Above rate_gbps: the link trained down.
  double max_rate_gbps = 0;
  bool operator==(const Link&) const = default;
};

// Linear forwarding tables of the switches (InfiniBand, after a subnet manager ran):
// lft[switch][lid] = output port, kNoPort when the LID has no route. Empty vector = not read.
inline constexpr std::uint8_t kNoPort = 0xff;
struct SwitchLft {
  std::uint64_t guid = 0;
  std::vector<std::uint8_t> ports;  // indexed by LID
  // The highest output port in `ports` and where it was read ("FILE:LINE"), so that set_routes can
  // name the line that routes through a port the switch does not have. Empty when not from a file.
  std::uint8_t max_port = 0;
  std::string max_port_at{};  // a default initializer keeps {guid, ports} free of warnings
};

struct Route {
  std::vector<Index> switches;  // in path order, source leaf first
  std::vector<Index> links;     // in path order, source host link first
};

class FabricBuilder;

class Fabric {
 public:
  Fabric() = default;

  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] const std::string& source() const { return source_; }  // "yaml:FILE", ...
  [[nodiscard]] const std::vector<Host>& hosts() const { return hosts_; }
  [[nodiscard]] const std::vector<Nic>& nics() const { return nics_; }
  [[nodiscard]] const std::vector<Switch>& switches() const { return switches_; }
  [[nodiscard]] const std::vector<Link>& links() const { return links_; }
  [[nodiscard]] const std::vector<std::string>& racks() const { return racks_; }
  [[nodiscard]] const std::vector<std::string>& pods() const { return pods_; }
  [[nodiscard]] int rails() const { return rails_; }
  [[nodiscard]] int max_level() const { return max_level_; }

  [[nodiscard]] Index find_host(std::string_view name) const;    // kNone if absent
  [[nodiscard]] Index find_switch(std::string_view name) const;  // by name, kNone if absent
  [[nodiscard]] Index find_switch_guid(std::uint64_t guid) const;
  [[nodiscard]] Index find_rack(std::string_view name) const;
  // NIC of `host` with this device name (and port); kNone if absent.
  [[nodiscard]] Index find_nic(Index host, std::string_view device, int port = 0) const;

  [[nodiscard]] Index primary_nic(Index host) const;  // kNone for a host without NICs
  [[nodiscard]] Index host_leaf(Index host) const;    // leaf of the primary NIC
  [[nodiscard]] Index host_pod(Index host) const;
  [[nodiscard]] Index nic_link(Index nic) const { return nic_link_[static_cast<std::size_t>(nic)]; }
  // Links at a switch, and the link at one of its ports (kNone when unused).
  [[nodiscard]] std::span<const Index> switch_links(Index sw) const;
  [[nodiscard]] Index port_link(Index sw, int port) const;
  // Number of links from a leaf up to spines (its ECMP fan-out).
  [[nodiscard]] int uplinks(Index leaf) const { return uplinks_[static_cast<std::size_t>(leaf)]; }
  [[nodiscard]] bool is_leaf_spine_link(Index link) const;
  [[nodiscard]] std::int64_t count_switches(int level) const;
  [[nodiscard]] std::int64_t host_link_count() const;  // NIC-leaf links
  [[nodiscard]] std::int64_t leaf_spine_link_count() const;

  [[nodiscard]] int nic_hops(Index a, Index b) const;  // -1 when unknown/unreachable
  [[nodiscard]] HopClass nic_hop_class(Index a, Index b) const;
  [[nodiscard]] int host_hops(Index a, Index b) const;
  [[nodiscard]] HopClass host_hop_class(Index a, Index b) const;
  // Links on a shortest path by breadth-first search over the cables (for checks; O(fabric)).
  [[nodiscard]] int shortest_nic_hops(Index a, Index b) const;

  // Topology order of hosts for heatmaps: by pod, leaf, rack, then host name (natural order).
  // order[i] = host at position i.
  [[nodiscard]] std::vector<Index> host_order() const;

  // Routes. set_routes maps tables by switch GUID; tables for unknown GUIDs, or naming an output
  // port beyond a switch's port count, are a core::UsageError.
  void set_routes(std::span<const SwitchLft> tables);
  [[nodiscard]] bool has_routes() const { return has_routes_; }
  [[nodiscard]] const std::vector<std::vector<std::uint8_t>>& lfts() const { return lft_; }
  [[nodiscard]] Index nic_by_lid(std::uint16_t lid) const;
  // The path the forwarding tables give from NIC a to NIC b; nullopt without routes or when the
  // tables lose the packet (no entry, a loop, a port that is not cabled).
  [[nodiscard]] std::optional<Route> route(Index a, Index b) const;
  // The first spine (level 2) the route from a to b climbs through; kNone if none or no routes.
  [[nodiscard]] Index route_spine(Index a, Index b) const;

  // Locally discovered details (from every rank) are joined to NICs after build.
  Nic& mutable_nic(Index nic) { return nics_[static_cast<std::size_t>(nic)]; }

 private:
  friend class FabricBuilder;
  void index();

  std::string name_, source_;
  std::vector<Host> hosts_;
  std::vector<Nic> nics_;
  std::vector<Switch> switches_;
  std::vector<Link> links_;
  std::vector<std::string> racks_, pods_;
  int rails_ = 0;
  int max_level_ = 0;
  bool assume_clos_ = false;  // pods without spine data are assumed connected via cores

  // Derived indexes (rebuilt by index()).
  std::unordered_map<std::string, Index> host_by_name_, switch_by_name_, rack_by_name_;
  std::unordered_map<std::uint64_t, Index> switch_by_guid_;
  std::vector<Index> nic_link_;
  std::vector<Index> sw_link_offset_, sw_links_;      // CSR: links at each switch
  std::vector<Index> sw_port_offset_, sw_port_link_;  // per switch, per port (0..ports)
  std::vector<int> uplinks_;
  std::vector<Index> leaf_spine_offset_, leaf_spines_;  // sorted spines of each leaf
  std::vector<std::uint8_t> pod_full_mesh_;
  std::vector<std::int16_t> pod_dist_;  // [P*P] links between the spines of two pods, -1 none

  bool has_routes_ = false;
  std::vector<std::vector<std::uint8_t>> lft_;
  std::vector<Index> nic_by_lid_;
};

// Collects hosts, switches, NICs and links from a source, then build() checks them, derives what
// the source did not say (levels, pods, racks, rails, ports), sorts everything into a canonical
// order (hosts by natural name, switches by level then name, NICs by host then rail/device) so
// that two sources describing the same fabric give equal models, and builds the indexes.
class FabricBuilder {
 public:
  explicit FabricBuilder(std::string name = "", std::string source = "");

  Index host(std::string_view name);  // find or add
  Index rack(std::string_view name);  // find or add
  Index pod(std::string_view name);   // find or add
  void set_rack(Index host, Index rack);
  Index add_switch(Switch sw);  // names must be unique
  [[nodiscard]] Index find_switch(std::string_view name) const;
  [[nodiscard]] Switch& switch_at(Index i) { return switches_[static_cast<std::size_t>(i)]; }
  Index add_nic(Nic nic);  // nic.host must be set
  [[nodiscard]] Nic& nic_at(Index i) { return nics_[static_cast<std::size_t>(i)]; }
  Index connect(LinkEnd a, LinkEnd b, double rate_gbps = 0, int width = 0, double max_rate_gbps = 0);
  // The source set every NIC's rail (YAML, generator); otherwise rails are numbered per host.
  void rails_explicit(bool v) { rails_explicit_ = v; }
  // Pods without spine information (host-name pattern) count as linked through cores.
  void assume_clos(bool v) { assume_clos_ = v; }
  [[nodiscard]] std::size_t host_count() const { return hosts_.size(); }

  // Throws core::UsageError naming the source on inconsistent input (a port used twice, a NIC
  // cabled twice, a NIC cabled to nothing but a NIC).
  [[nodiscard]] Fabric build() &&;

 private:
  std::string name_, source_;
  std::vector<Host> hosts_;
  std::vector<Nic> nics_;
  std::vector<Switch> switches_;
  std::vector<Link> links_;
  std::vector<std::string> racks_, pods_;
  std::unordered_map<std::string, Index> host_idx_, rack_idx_, pod_idx_, switch_idx_;
  bool rails_explicit_ = false;
  bool assume_clos_ = false;
};

// "h2" < "h10": digit runs compare as numbers.
[[nodiscard]] bool natural_less(std::string_view a, std::string_view b);

// Nominal per-lane rate of an InfiniBand speed name ("SDR", "HDR", "FDR10", ...); 0 if unknown.
[[nodiscard]] double ib_lane_gbps(std::string_view speed);

// One line per host/NIC/switch/link in canonical order, for comparing models from different
// sources and for tests. `local_fields` adds what only some sources know (port state, MTU, NUMA,
// PCI address, netdev).
[[nodiscard]] std::string canonical_text(const Fabric& fabric, bool local_fields = false);

// The hierarchy summary `fabscope topo` prints: counts per tier, pods, rails, link rates, and
// warnings (hosts without links, leaves without uplinks, mixed rates). At most `max_lines` lines
// of per-pod detail.
[[nodiscard]] std::string format_summary(const Fabric& fabric, int max_lines = 40);

}  // namespace fabscope::topology
