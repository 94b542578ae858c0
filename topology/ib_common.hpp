// Internal: the node/port records that both InfiniBand sources (ibnetdiscover text dumps and
// libibnetdisc) produce, and the one function that turns them into a Fabric, so that both give
// the same model for the same fabric.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "topology/model.hpp"

namespace fabscope::topology::detail {

struct IbPort {
  int num = 0;
  std::uint64_t guid = 0;  // this port's GUID (CA ports); 0 unknown
  std::uint16_t lid = 0;   // this port's base LID (CA ports)
  int width = 0;           // lanes; 0 unknown
  double lane_gbps = 0;    // per-lane rate; 0 unknown
  // What the port could train to (PortInfo: widest enabled width, fastest enabled speed); 0
  // unknown (ibnetdiscover dumps show only the active rate).
  int max_width = 0;
  double max_lane_gbps = 0;
  std::string remote_id;   // id of the node at the other end ("" = not cabled)
  int remote_port = 0;
  PortState state = PortState::kUnknown;
  std::uint16_t mtu_bytes = 0;
  int line = 0;  // where it was read (0 when not from a file)
};

struct IbNode {
  bool is_switch = false;
  std::string id;  // unique key: the quoted id of a dump, the GUID for libibnetdisc
  std::uint64_t guid = 0;
  int nports = 0;
  std::string desc;       // NodeDescription
  std::uint16_t lid = 0;  // switch port 0 LID
  std::vector<IbPort> ports;
  int line = 0;
};

// Hosts from CA descriptions ("host device"), switch names from descriptions (several switches
// sharing one description are all suffixed " [0x<guid>]"), links deduplicated (both ends list
// them), rate = the lower of the two ends' width x lane rate when both are known.
// `where` prefixes error messages (a file name).
[[nodiscard]] Fabric build_ib_fabric(const std::vector<IbNode>& nodes, const std::string& name,
                                     const std::string& source, const std::string& where);

// IBA PortInfo LinkWidthActive bits -> lanes (1x=1, 4x=2, 8x=4, 12x=8, 2x=16); 0 if unknown.
[[nodiscard]] int ib_width_lanes(unsigned bits);
// The most lanes of a LinkWidthEnabled/Supported bit set (several bits); 0 if none is known.
[[nodiscard]] int ib_max_width_lanes(unsigned bits);

}  // namespace fabscope::topology::detail
