// The mpi transport: MPI point-to-point (whatever the MPI library runs over: shared memory, TCP,
// UCX). Timed loops read the clock once per iteration and call straight into MPI. Every wait
// honours the per-operation timeout (Options::timeout_s) and the pair's deadline: MPI calls then
// poll instead of blocking, and a peer that stops answering fails the pair with core::Timeout.
#include <cstdint>
#include <mutex>
#include <vector>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "runtime/comm.hpp"
#include "transport/buffer.hpp"
#include "transport/link.hpp"

namespace fabscope::transport {
namespace {

// Each connection gets its own tags (Options::channel, which both sides pass alike), so a message
// from a pair that timed out (still in flight, or arriving after the link came back) can never be
// taken for one of a later pair.
constexpr int kTagBase = 1000;
constexpr int kTagsPerLink = 4;
constexpr int kChannels = 4096;  // tags stay below 32767, the smallest MPI_TAG_UB allowed

// Buffers of links that timed out: an MPI send that could not be cancelled may still read them,
// so they are never freed (a few per failed pair).
void keep_forever(Buffer&& b) {
  static std::mutex mutex;
  static std::vector<Buffer> kept;
  const std::lock_guard lock(mutex);
  kept.push_back(std::move(b));
}

class MpiLink final : public Link {
 public:
  MpiLink(const runtime::Comm& comm, int peer, std::size_t max_size, const Options& opt)
      : comm_(comm),
        peer_(peer),
        tag_data_(kTagBase + kTagsPerLink * (opt.channel % kChannels)),
        tag_ack_(tag_data_ + 1),
        silence_ns_(static_cast<std::int64_t>(opt.timeout_s * 1e9)),
        sbuf_(max_size, 0xa5),
        rbuf_(max_size, 0x5a),
        ack_(64) {}

  ~MpiLink() override {
    if (timed_out_) {
      keep_forever(std::move(sbuf_));
      keep_forever(std::move(rbuf_));
      keep_forever(std::move(ack_));
    }
  }
  MpiLink(const MpiLink&) = delete;
  MpiLink& operator=(const MpiLink&) = delete;

  void pingpong(bool initiator, std::size_t size, int warmup, std::span<double> one_way_ns) override {
    guarded([&] {
      const runtime::Deadline d = deadline_spec();
      const int total = warmup + static_cast<int>(one_way_ns.size());
      if (initiator) {
        for (int i = 0; i < total; ++i) {
          const std::int64_t t0 = core::now_ns();
          comm_.send_recv(sbuf_.data(), rbuf_.data(), size, peer_, tag_data_, true, d);
          const std::int64_t t1 = core::now_ns();
          if (i >= warmup) one_way_ns[static_cast<std::size_t>(i - warmup)] = static_cast<double>(t1 - t0) / 2.0;
        }
      } else {
        for (int i = 0; i < total; ++i) comm_.send_recv(sbuf_.data(), rbuf_.data(), size, peer_, tag_data_, false, d);
      }
    });
  }

  void stream(bool sender, std::size_t size, int warmup, std::span<double> window_ns) override {
    guarded([&] {
      const runtime::Deadline d = deadline_spec();
      const int total = warmup + static_cast<int>(window_ns.size());
      if (sender) {
        for (int i = 0; i < total; ++i) {
          const std::int64_t t0 = core::now_ns();
          comm_.send_window(sbuf_.data(), size, kWindow, peer_, tag_data_, d);
          comm_.recv(ack_.data(), 4, peer_, tag_ack_, d);
          const std::int64_t t1 = core::now_ns();
          if (i >= warmup) window_ns[static_cast<std::size_t>(i - warmup)] = static_cast<double>(t1 - t0);
        }
      } else {
        for (int i = 0; i < total; ++i) {
          comm_.recv_window(rbuf_.data(), size, kWindow, peer_, tag_data_, d);
          comm_.send(ack_.data(), 4, peer_, tag_ack_, d);
        }
      }
    });
  }

  void bistream(std::size_t size, int warmup, std::span<double> window_ns) override {
    guarded([&] {
      const runtime::Deadline d = deadline_spec();
      const int total = warmup + static_cast<int>(window_ns.size());
      for (int i = 0; i < total; ++i) {
        const std::int64_t t0 = core::now_ns();
        comm_.exchange_window(sbuf_.data(), rbuf_.data(), size, kWindow, peer_, tag_data_, d);
        const std::int64_t t1 = core::now_ns();
        if (i >= warmup) window_ns[static_cast<std::size_t>(i - warmup)] = static_cast<double>(t1 - t0);
      }
    });
  }

  [[nodiscard]] int peer() const noexcept override { return peer_; }

 private:
  [[nodiscard]] runtime::Deadline deadline_spec() const { return {deadline_ns_, silence_ns_}; }

  // A link that timed out is unusable: MPI may still hold its buffers and unmatched messages.
  template <class F>
  void guarded(F&& body) {
    if (timed_out_) throw core::Timeout("mpi link with rank " + std::to_string(peer_) + " already timed out");
    try {
      body();
    } catch (const core::Timeout&) {
      timed_out_ = true;
      throw;
    }
  }

  const runtime::Comm& comm_;
  int peer_;
  int tag_data_, tag_ack_;
  std::int64_t silence_ns_;
  bool timed_out_ = false;
  Buffer sbuf_;
  Buffer rbuf_;
  Buffer ack_;
};

}  // namespace

std::unique_ptr<Link> make_mpi_link(const runtime::Comm& comm, int peer, std::size_t max_size, const Options& opt) {
  return std::make_unique<MpiLink>(comm, peer, max_size, opt);
}

}  // namespace fabscope::transport
