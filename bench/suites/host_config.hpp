// Configuration evidence of every rank's host: what a fabric engineer checks first when a host is
// slow. Per RDMA port: negotiated rate and width, active and maximum MTU, firmware, driver, the
// NIC's PCIe link (current vs maximum speed and width) and NUMA node; per rank: the NUMA nodes of
// its CPU binding and its memlock limit. Gathered on every rank at start-up into /hosts
// (results/SCHEMA.md), and judged by `fabscope doctor` (check_hosts).
//
// Everything comes from sysfs below a root that tests may move (a fake tree in a temporary
// directory is a real filesystem input): ROOT/class/infiniband/DEV/{fw_ver,ports/P/{rate,state,
// link_layer},device/{current_link_speed,current_link_width,max_link_speed,max_link_width,
// numa_node,driver}} and ROOT/devices/system/node/nodeN/cpulist. Only the MTUs need the device
// opened (ibv_query_port(3)); sysfs has none for RDMA ports, so they are queried only when the root
// is the real /sys.
//
// A port's maximum rate is not in sysfs nor in ibv_query_port(3), which report only the active
// width and speed; the supported ones are in the InfiniBand PortInfo attribute (LinkWidthSupported,
// LinkSpeedSupported: `smpquery portinfo`). A trained-down port is therefore found against the
// fabric's majority of the same port, or against --link-rate.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "io/results.hpp"
#include "runtime/comm.hpp"

namespace fabscope::suites {

struct PortConfig {
  std::string device{};               // e.g. mlx5_0, rxe0
  int port = 0;                       // 1-based
  std::string link_layer{}, state{};  // InfiniBand | Ethernet; ACTIVE, DOWN, ...
  double rate_gbps = NAN;             // negotiated (sysfs rate "200 Gb/sec (4X HDR)"); NaN unknown
  std::string width{}, speed{};       // "4X", "HDR" from the same text; "" unknown
  int active_mtu_bytes = 0, max_mtu_bytes = 0;            // ibv_query_port; 0 unknown
  std::string fw_ver{}, driver{};                         // sysfs fw_ver; device/driver link's name
  double pcie_speed_gts = NAN, pcie_max_speed_gts = NAN;  // GT/s per lane; NaN unknown
  int pcie_width = 0, pcie_max_width = 0;                 // lanes; 0 unknown
  int numa_node = -1;                                     // device/numa_node; -1 unknown
};

struct HostConfig {
  int rank = 0;
  std::string hostname{}, kernel_release{};
  std::vector<PortConfig> ports{};
  std::vector<int> cpu_numa_nodes{};  // NUMA nodes of the CPUs the rank may run on; empty unknown
  std::int64_t memlock_bytes = 0;     // RLIMIT_MEMLOCK soft limit; -1 unlimited
  bool cap_ipc_lock = false;          // CAP_IPC_LOCK: registration ignores the memlock limit
};

// The RDMA ports and NUMA layout under `sys_root` (e.g. "/sys"), with `cpus` as the rank's CPU set.
// Hostname, kernel, memlock and capabilities are left for local_host_config.
[[nodiscard]] HostConfig read_host_config(const std::string& sys_root,
                                          const std::vector<int>& cpus);
// NUMA nodes whose cpulist (ROOT/devices/system/node/nodeN/cpulist) holds any of `cpus`, ascending.
[[nodiscard]] std::vector<int> numa_nodes_of(const std::string& sys_root,
                                             const std::vector<int>& cpus);
// "0-3,8,10-11" -> {0, 1, 2, 3, 8, 10, 11}; garbage pieces are skipped.
[[nodiscard]] std::vector<int> parse_cpulist(const std::string& text);
// This process: read_host_config with its sched_getaffinity(2) CPUs, plus hostname, kernel
// release, memlock limit, CAP_IPC_LOCK and (when sys_root is "/sys") the ports' MTUs.
[[nodiscard]] HostConfig local_host_config(const std::string& sys_root);

// Every rank's configuration, on rank 0 (others get an empty vector); collective.
[[nodiscard]] std::vector<HostConfig> gather_host_configs(const runtime::Comm& comm,
                                                          const std::string& sys_root);
// Round trip of one configuration through the text the gather sends.
[[nodiscard]] std::string encode(const HostConfig& h);
[[nodiscard]] HostConfig decode(const std::string& text);

// /hosts/ports/* (one row per rank and port), /hosts/cpu_numa_nodes, /hosts/memlock_bytes,
// /hosts/cap_ipc_lock and /hosts/config_problems (check_hosts' lines); results/SCHEMA.md.
void write_host_configs(io::ResultsWriter& out, const std::vector<HostConfig>& hosts,
                        const std::vector<std::string>& problems);

struct DoctorOptions {
  double link_rate_gbps = 0;  // > 0: every active port should run at this rate (--link-rate)
};

struct Problem {
  std::string host{}, device{};  // device "" for host- or rank-wide problems
  int port = 0;              // 0: the whole device or host
  int rank = -1;             // >= 0: a problem of that rank (binding, limits)
  std::string what{};        // e.g. "PCIe x8 of x16"
  // "h7 mlx5_0 port 1: PCIe x8 of x16", "h7 rank 3: memlock limit 64 KiB (...)"
  [[nodiscard]] std::string line() const;
};

// The checks `fabscope doctor` prints, host by host in rank order: per port (state, PCIe link
// below its maximum, rate below --link-rate), per rank (CPU binding off the NICs' NUMA nodes,
// memlock limit), and across hosts (firmware, driver, kernel, MTU, rate and width that differ from
// the majority of the same port on the other hosts).
[[nodiscard]] std::vector<Problem> check_hosts(const std::vector<HostConfig>& hosts,
                                               const DoctorOptions& options);

}  // namespace fabscope::suites
