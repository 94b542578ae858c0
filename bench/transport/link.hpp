// A connected pair of ranks and the three point-to-point patterns every benchmark is built from.
// Each transport (mpi now, verbs next) implements the patterns with its own hot loop; the
// suites own sizes, iterations and statistics.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string_view>

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
};

// The names --transport accepts.
[[nodiscard]] bool is_known_transport(std::string_view name);

// Connects this rank to `peer` (which makes the matching call) with buffers for messages up to
// `max_size` bytes. Throws core::Error on failure.
[[nodiscard]] std::unique_ptr<Link> connect(std::string_view transport, const runtime::Comm& comm,
                                            int peer, std::size_t max_size);

}  // namespace fabscope::transport
