// The mpi transport: MPI point-to-point (whatever the MPI library runs over: shared memory, TCP,
// UCX). Timed loops read the clock once per iteration and call straight into MPI.
#include <cstdint>

#include "core/clock.hpp"
#include "runtime/comm.hpp"
#include "transport/buffer.hpp"
#include "transport/link.hpp"

namespace fabscope::transport {
namespace {

constexpr int kTagData = 101;
constexpr int kTagAck = 102;

class MpiLink final : public Link {
 public:
  MpiLink(const runtime::Comm& comm, int peer, std::size_t max_size)
      : comm_(comm), peer_(peer), sbuf_(max_size, 0xa5), rbuf_(max_size, 0x5a), ack_(64) {}

  void pingpong(bool initiator, std::size_t size, int warmup,
                std::span<double> one_way_ns) override {
    const int total = warmup + static_cast<int>(one_way_ns.size());
    if (initiator) {
      for (int i = 0; i < total; ++i) {
        const std::int64_t t0 = core::now_ns();
        comm_.send(sbuf_.data(), size, peer_, kTagData);
        comm_.recv(rbuf_.data(), size, peer_, kTagData);
        const std::int64_t t1 = core::now_ns();
        if (i >= warmup) one_way_ns[static_cast<std::size_t>(i - warmup)] = static_cast<double>(t1 - t0) / 2.0;
      }
    } else {
      for (int i = 0; i < total; ++i) {
        comm_.recv(rbuf_.data(), size, peer_, kTagData);
        comm_.send(sbuf_.data(), size, peer_, kTagData);
      }
    }
  }

  void stream(bool sender, std::size_t size, int warmup, std::span<double> window_ns) override {
    const int total = warmup + static_cast<int>(window_ns.size());
    if (sender) {
      for (int i = 0; i < total; ++i) {
        const std::int64_t t0 = core::now_ns();
        comm_.send_window(sbuf_.data(), size, kWindow, peer_, kTagData);
        comm_.recv(ack_.data(), 4, peer_, kTagAck);
        const std::int64_t t1 = core::now_ns();
        if (i >= warmup) window_ns[static_cast<std::size_t>(i - warmup)] = static_cast<double>(t1 - t0);
      }
    } else {
      for (int i = 0; i < total; ++i) {
        comm_.recv_window(rbuf_.data(), size, kWindow, peer_, kTagData);
        comm_.send(ack_.data(), 4, peer_, kTagAck);
      }
    }
  }

  void bistream(std::size_t size, int warmup, std::span<double> window_ns) override {
    const int total = warmup + static_cast<int>(window_ns.size());
    for (int i = 0; i < total; ++i) {
      const std::int64_t t0 = core::now_ns();
      comm_.exchange_window(sbuf_.data(), rbuf_.data(), size, kWindow, peer_, kTagData);
      const std::int64_t t1 = core::now_ns();
      if (i >= warmup) window_ns[static_cast<std::size_t>(i - warmup)] = static_cast<double>(t1 - t0);
    }
  }

  [[nodiscard]] int peer() const noexcept override { return peer_; }

 private:
  const runtime::Comm& comm_;
  int peer_;
  Buffer sbuf_;
  Buffer rbuf_;
  Buffer ack_;
};

}  // namespace

std::unique_ptr<Link> make_mpi_link(const runtime::Comm& comm, int peer, std::size_t max_size) {
  return std::make_unique<MpiLink>(comm, peer, max_size);
}

}  // namespace fabscope::transport
