// InfiniBand fabric discovery through libibnetdisc (rdma-core), live or from a cache file, and
// the switches' linear forwarding tables through libibmad SMPs.
//
// Live discovery sends SMPs from a local CA port through libibumad, so it needs an InfiniBand
// port (or ibsim: run under LD_PRELOAD=.../umad2sim/libumad2sim.so with IBSIM_SOCKNAME set).
// Routes: after a subnet manager has programmed the switches, each switch's LFT is read with
// SubnGet(SwitchInfo) for LinearFDBTop and SubnGet(LinearForwardingTable) blocks of 64 LIDs
// (IBA 14.2.5.10), sent along the directed route libibnetdisc found to that switch. Directed
// routes work before and after the SM has assigned LIDs and are what ibroute itself uses when
// given a DR path; under libumad2sim both work (tested with ibsim + opensm --once).
// A cache file (ibnetdiscover --cache, or save_cache here) holds no forwarding tables; routes for
// an offline model come from an `ibroute` dump (sources.hpp: parse_ibroute_dump).
#pragma once

#include <string>
#include <vector>

#include "topology/model.hpp"

namespace fabscope::topology {

struct LiveOptions {
  std::string ca;           // CA name; empty = the first with an active port
  int ca_port = 0;          // 0 = any
  bool read_routes = true;  // read switch LFTs after discovery
  unsigned timeout_ms = 0;  // per SMP; 0 = library default
  std::string cache_path;   // when set, also write an ibnd cache file of the discovery
};

// Throws core::Unsupported when no local InfiniBand port can send SMPs (the usual case on hosts
// without InfiniBand), core::Error for a discovery that fails part-way.
[[nodiscard]] Fabric discover_fabric_live(const LiveOptions& options);

// Loads a cache written by `ibnetdiscover --cache FILE` or by discover_fabric_live. Needs no
// fabric access. Throws core::UsageError naming the file when it cannot be loaded.
[[nodiscard]] Fabric load_ibnd_cache(const std::string& path);

}  // namespace fabscope::topology
