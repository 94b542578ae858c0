// Generated fat-tree (folded Clos) fabrics: for scale tests of plans (12,500 hosts x 8 NICs), and
// for the ibsim tests (the same fabric written as an ibsim net file).
//
// Shape. Hosts are cut into groups that share leaves. With rail_optimized (the usual GPU design)
// a group is `nics_per_leaf` hosts and has one leaf per rail: NIC r of every host of the group is
// cabled to the group's rail-r leaf. Without it, a group is nics_per_leaf / nics_per_host hosts
// whose NICs all go to one leaf. Leaves are taken in order into pods of `leaves_per_pod`; every
// leaf links once to each of the `spines_per_pod` spines of its pod. With cores_per_plane > 0
// spine j of every pod links to each of the cores_per_plane cores of plane j (3 tiers); with 0
// there must be a single pod (2 tiers).
// Names: hosts node00001.., leaves leaf0001.., spines spine0001.., cores core0001.., racks
// rack0001.. (hosts_per_rack consecutive hosts), pods pod1...; devices mlx5_<rail>.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>

#include "topology/model.hpp"

namespace fabscope::topology {

struct FatTreeSpec {
  std::int32_t hosts = 16;
  std::int32_t nics_per_host = 1;  // rails
  std::int32_t nics_per_leaf = 4;  // host-facing ports used per leaf
  bool rail_optimized = true;
  std::int32_t leaves_per_pod = 4;
  std::int32_t spines_per_pod = 2;
  std::int32_t cores_per_plane = 0;  // 0: two tiers
  std::int32_t hosts_per_rack = 0;   // 0: the hosts of one leaf group
  double rate_gbps = 200;            // every link (nominal, 4x HDR)
  std::int32_t width = 4;
  LinkLayer link_layer = LinkLayer::kInfiniBand;
  std::string host_prefix = "node";
};

// "hosts=12500,rails=8,nics-per-leaf=32,leaves-per-pod=64,spines-per-pod=32,cores-per-plane=16,
// hosts-per-rack=4,rate=400,link-layer=ethernet,rail-optimized=1"; unknown keys and bad numbers
// throw core::UsageError naming `what`. Missing keys keep their defaults.
[[nodiscard]] FatTreeSpec parse_fat_tree_spec(std::string_view text, std::string_view what);

// Throws core::UsageError for an impossible spec (e.g. several pods without cores).
[[nodiscard]] Fabric generate_fat_tree(const FatTreeSpec& spec);

// The ibsim net file of a fabric (InfiniBand only): one record per switch and per NIC, quoted
// node ids = switch names and "<host>-<device>" for NICs (what SIM_HOST takes), NodeDescription
// "<host> <device>" for NICs and the name for switches, every port at the link's speed
// ("# lid 0 4xHDR"). GUIDs are left to ibsim.
void write_ibsim_net(const Fabric& fabric, std::ostream& out);

}  // namespace fabscope::topology
