// Several connections of one rank at once, for the load benchmarks (shift, congestion). A Link is
// one pair running one blocking pattern; here a rank streams to every peer in `to` while every
// peer in `from` streams to it, all progressed by one polling loop, so it sends on one connection
// while it receives on another (mpiGraph's shift step, an incast target, an all-to-all member).
//
// A window on an outgoing flow is kWindow messages of `size` bytes, as Link::stream:
//   mpi    kWindow MPI_Isend, acknowledged by a 4-byte message once all have arrived; the window
//          ends when the acknowledgement is in.
//   verbs  kWindow RDMA WRITEs on the flow's own RC queue pair (up to --tx-depth in flight, a
//          completion every --cq-mod and for the last); the window ends when all completions are
//          in (an RC completion means the peer's NIC has the data). Receivers spend no CPU.
// Every wait honours Options::timeout_s: a flow whose peer stays silent that long throws
// core::Timeout; a completion error throws core::Error naming the status, qpn and peer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "transport/link.hpp"

namespace fabscope::runtime {
class Comm;
}

namespace fabscope::transport {

struct FlowsSpec {
  std::vector<int> to;    // peers this rank streams to (its outgoing flows)
  std::vector<int> from;  // peers that stream to this rank (its incoming flows)
  std::size_t size = 0;   // message size in bytes (>= 1)
};

class Flows {
 public:
  virtual ~Flows() = default;

  // Every flow runs `warmup` + `windows` windows, all flows at once. window_ns[f * windows + i]
  // receives the duration of outgoing flow f's timed window i (ns). Returns once this rank's
  // outgoing windows are done and every incoming flow has delivered all of its windows.
  virtual void run(int warmup, int windows, std::span<double> window_ns) = 0;

  // Ring ping-pong of `size` bytes with one outgoing and one incoming flow: this rank pings to[0]
  // (and times the round trips: one_way_ns = round trip / 2) while it answers from[0]'s pings,
  // both at once. `warmup` untimed round trips first; every rank runs the same counts.
  virtual void ring_pingpong(int warmup, std::span<double> one_way_ns) = 0;

  // Continuous load, polled by the caller (see congestion.cpp for the stop protocol). One call
  // never blocks: finishes what completed, starts a window on every idle outgoing flow while
  // `start_new`, serves incoming flows. Returns whether anything progressed.
  virtual bool progress(bool start_new) = 0;
  // No outgoing window in flight.
  [[nodiscard]] virtual bool idle() const = 0;
  // After every sender of this rank's incoming flows is idle for good: releases what incoming
  // flows still wait for (posted receives). The object is then only good for destruction.
  virtual void close() = 0;
  // Bits moved by this rank's completed outgoing windows since construction, and the span from
  // the first window's start to the last one's end (ns; 0 before any window completed).
  [[nodiscard]] virtual double bits_sent() const = 0;
  [[nodiscard]] virtual std::int64_t busy_ns() const = 0;
};

// The ethtool statistics names Transport::load_counters keeps (pure; unit-tested).
[[nodiscard]] bool is_pause_counter(std::string_view name);

}  // namespace fabscope::transport
