// A connected pair of ranks and the three point-to-point patterns every benchmark is built from.
// Each transport (mpi now, verbs next) implements the patterns with its own hot loop; the
// suites own sizes, iterations and statistics.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace fabscope::runtime {
class Comm;
}

namespace fabscope::transport {

inline constexpr int kWindow = 64;  // messages in flight per window (bw, bibw, pairs)

class Link {
 public:
  virtual ~Link() = default;

  // Ping-pong of `size` bytes: `warmup` untimed round trips, then one per element of
  // `one_way_ns`. The initiator stores round-trip time / 2 of each timed iteration; the
  // responder's span must have the same length and is left untouched.
  virtual void pingpong(bool initiator, std::size_t size, int warmup,
                        std::span<double> one_way_ns) = 0;

  // Windows of kWindow messages of `size` bytes from sender to receiver, each acknowledged by a
  // 4-byte message. The sender stores each timed window's duration (ns) in `window_ns`.
  virtual void stream(bool sender, std::size_t size, int warmup, std::span<double> window_ns) = 0;

  // Both ranks send a window to each other at once; each stores its own window durations (ns).
  virtual void bistream(std::size_t size, int warmup, std::span<double> window_ns) = 0;

  [[nodiscard]] virtual int peer() const noexcept = 0;

  // Absolute deadline (core::now_ns() clock) for everything this link does from now on: an
  // operation still waiting then throws core::Timeout. 0 = none (the per-operation timeout of
  // Options::timeout_s still applies). connect() sets it from Options::pair_timeout_s.
  void set_deadline(std::int64_t deadline_ns) noexcept { deadline_ns_ = deadline_ns; }
  [[nodiscard]] std::int64_t deadline() const noexcept { return deadline_ns_; }

 protected:
  std::int64_t deadline_ns_ = 0;
};

// Transport settings (typed; apps/ fills them from the command line or a suite).
struct Options {
  std::string device;                // verbs: NAME or NAME:PORT (default: first active port)
  std::vector<std::string> devices;  // verbs: local rank i uses devices[i] (one rank per NIC)
  int gid_index = -1;                // verbs: -1 = RoCEv2 IPv4-mapped GID on RoCE, LID on IB
  int mtu = 0;                       // verbs: path MTU in bytes (256..4096); 0 = smaller of the ends
  std::string verb = "write";        // verbs: write, send, read, fetch_add, cmp_swap
  int tx_depth = 128;                // verbs: send queue depth (outstanding operations per QP)
  int qps = 1;                       // verbs: queue pairs per link; stream windows spread over them
  int post_list = 1;                 // verbs: work requests chained per ibv_post_send call
  int cq_mod = 1;                    // verbs: request a completion every cq_mod sends (stream)
  int inline_size = -1;              // verbs: max inline bytes; -1 = 220 (perftest's default) if possible
  double timeout_s = 30;             // per operation; a peer silent this long fails the pair
  double pair_timeout_s = 0;         // pairs: the whole pair (connect + every pattern) must finish in this; 0 = none
  // pairs: how long a rank waits for the others between pairs (round barrier, result gather)
  // before it ends the job; -1 = pair_timeout + 2 x timeout + 30 s when pair_timeout is set, else
  // none; 0 = none
  double round_timeout_s = -1;
  int channel = 0;                   // mpi: this connection's message tags (pairs: the round), so a late
                                     // message of a pair that timed out never matches a later pair's
  std::string cm = "oob";            // verbs: how RC QPs connect: oob (exchange over MPI) or rdmacm (librdmacm)
};

// The verbs operations --verb accepts, and which patterns each supports.
[[nodiscard]] bool is_known_verb(std::string_view verb);

}  // namespace fabscope::transport
