// RDMA devices and ports as the kernel shows them in sysfs (/sys/class/infiniband). Works without
// opening a device, so provenance is recorded even where a provider library is missing.
#pragma once

#include <string>
#include <vector>

namespace fabscope::verbs {

struct PortInfo {
  std::string device;      // e.g. mlx5_0, rxe0
  int port = 0;            // 1-based
  std::string fw_ver;      // device firmware
  std::string node_guid;   // device node GUID
  std::string link_layer;  // InfiniBand or Ethernet
  std::string state;       // e.g. ACTIVE (from "4: ACTIVE")
  std::string rate;        // e.g. "400 Gb/sec (4X NDR)"
};

// Every port of every device under `root`, sorted by device then port; empty if none.
[[nodiscard]] std::vector<PortInfo> scan_ports(const std::string& root = "/sys/class/infiniband");

// One line per port: "NAME port P: fw FW, link_layer LL, state STATE, rate RATE", ';'-joined.
[[nodiscard]] std::string describe_ports(const std::vector<PortInfo>& ports);

// The rdma-core (libibverbs) version fabscope was built against.
[[nodiscard]] std::string rdma_core_version();

}  // namespace fabscope::verbs
