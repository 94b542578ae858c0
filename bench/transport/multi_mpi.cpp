// Flows over MPI point-to-point: every flow is a set of request slots in one runtime::Requests
// pool, progressed by MPI_Testall on its slots from one loop.
//   outgoing flow: kWindow MPI_Isend of `size` bytes + an MPI_Irecv for the 4-byte ack; the window
//     ends when all of them completed (sample = that time since the first Isend).
//   incoming flow: kWindow MPI_Irecv; once all arrived, the next window's receives are posted
//     before the ack is sent, so the sender's next window always finds them.
// The messages of all flows share one send and one receive buffer (as osu_bw's windows do).
#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <mutex>
#include <thread>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "runtime/comm.hpp"
#include "transport/buffer.hpp"
#include "transport/multi_impl.hpp"

namespace fabscope::transport::flows {
namespace {

constexpr std::size_t kW = kWindow;
constexpr std::size_t kAckBytes = 4;
constexpr int kPollsPerClockRead = 256;

// Buffers of flows that timed out: an MPI send that could not be cancelled may still read them.
void keep_forever(Buffer&& b) {
  static std::mutex mutex;
  static std::vector<Buffer> kept;
  const std::lock_guard lock(mutex);
  kept.push_back(std::move(b));
}

struct Out {
  int peer = 0;
  Tags tags{};
  std::size_t slot = 0;  // kW data sends, then the ack receive
  bool active = false;
  std::int64_t t0 = 0;
  int done = 0;
};

struct In {
  int peer = 0;
  Tags tags{};
  std::size_t slot = 0;  // kW data receives, then the ack send
  bool posted = false;
  int received = 0;
};

class MpiFlows final : public Flows {
 public:
  MpiFlows(const runtime::Comm& comm, const FlowsSpec& spec, const Options& opt)
      : comm_(comm),
        spec_(spec),
        silence_ns_(static_cast<std::int64_t>(opt.timeout_s * 1e9)),
        sbuf_(spec.size, 0xa5),
        rbuf_(spec.size, 0x5a),
        pong_(spec.size, 0x5a),
        acks_(kAckBytes * (spec.to.size() + spec.from.size()) + 8, 0),
        reqs_(comm, (kW + 1) * (spec.to.size() + spec.from.size()) + 4) {
    const auto tags = tags_of(spec);
    std::size_t slot = 0;
    for (const int p : spec.to) {
      outs_.push_back({p, tags.at(p), slot});
      slot += kW + 1;
    }
    for (const int p : spec.from) {
      ins_.push_back({p, tags.at(p), slot});
      slot += kW + 1;
    }
    ping_slot_ = slot;
  }

  ~MpiFlows() override {
    if (failed_) {
      keep_forever(std::move(sbuf_));
      keep_forever(std::move(rbuf_));
      keep_forever(std::move(pong_));
      keep_forever(std::move(acks_));
    }
  }
  MpiFlows(const MpiFlows&) = delete;
  MpiFlows& operator=(const MpiFlows&) = delete;

  void run(int warmup, int windows, std::span<double> window_ns) override {
    guarded([&] {
      const int total = warmup + windows;
      for (auto& o : outs_) o.done = 0;
      for (auto& i : ins_) {
        i.received = 0;
        if (total > 0) post_window(i);
      }
      Silence silence;
      for (int spins = 0;;) {
        bool progressed = false, pending = false;
        for (std::size_t f = 0; f < outs_.size(); ++f) {
          Out& o = outs_[f];
          if (o.active && reqs_.test(o.slot, kW + 1)) {
            const std::int64_t t1 = core::now_ns();
            if (o.done >= warmup)
              window_ns[f * static_cast<std::size_t>(windows) +
                        static_cast<std::size_t>(o.done - warmup)] = static_cast<double>(t1 - o.t0);
            finish_window(o, t1);
            progressed = true;
          }
          if (!o.active && o.done < total) {
            start_window(o);
            progressed = true;
          }
          pending = pending || o.active;
        }
        for (In& i : ins_) {
          if (i.posted && reqs_.test(i.slot, kW)) {
            receive_window(i, i.received + 1 < total);
            progressed = true;
          }
          pending = pending || i.received < total || !reqs_.test(i.slot + kW, 1);
        }
        if (!pending) return;
        if (progressed) {
          spins = 0;
          silence.reset();
          continue;
        }
        if (++spins % kPollsPerClockRead == 0)
          silence.check(silence_ns_, [&] { return stuck_peer(total); });
        if (spins >= kSpinsBeforeYield) std::this_thread::yield();
      }
    });
  }

  void ring_pingpong(int warmup, std::span<double> one_way_ns) override {
    if (spec_.to.size() != 1 || spec_.from.size() != 1) {
      throw core::Error(core::ExitCode::kFailure,
                        "internal: ring ping-pong needs one outgoing and one incoming flow");
    }
    guarded([&] {
      const int total = warmup + static_cast<int>(one_way_ns.size());
      const Out& to = outs_[0];
      const In& from = ins_[0];
      const std::size_t ping_send = ping_slot_, pong_recv = ping_slot_ + 1,
                        ping_recv = ping_slot_ + 2, pong_send = ping_slot_ + 3;
      const std::size_t n = spec_.size;
      int sent = 0, answered = 0;
      bool waiting = false, listening = false;
      std::int64_t t0 = 0;
      Silence silence;
      for (int spins = 0;;) {
        bool progressed = false;
        // Initiator towards `to`: ping, then wait for its pong.
        if (waiting && reqs_.test(ping_send, 2)) {
          const std::int64_t t1 = core::now_ns();
          if (sent >= warmup)
            one_way_ns[static_cast<std::size_t>(sent - warmup)] =
                static_cast<double>(t1 - t0) / 2.0;
          ++sent;
          waiting = false;
          progressed = true;
        }
        if (!waiting && sent < total) {
          t0 = core::now_ns();
          reqs_.irecv(pong_recv, pong_.data(), n, to.peer, to.tags.pong);
          reqs_.isend(ping_send, sbuf_.data(), n, to.peer, to.tags.ping);
          waiting = true;
        }
        // Responder for `from`: wait for its ping, answer with a pong.
        if (listening && reqs_.test(ping_recv, 1) && reqs_.test(pong_send, 1)) {
          reqs_.isend(pong_send, sbuf_.data(), n, from.peer, from.tags.pong);
          ++answered;
          listening = false;
          progressed = true;
        }
        if (!listening && answered < total) {
          reqs_.irecv(ping_recv, rbuf_.data(), n, from.peer, from.tags.ping);
          listening = true;
        }
        if (sent == total && answered == total && reqs_.test(pong_send, 1)) return;
        if (progressed) {
          spins = 0;
          silence.reset();
          continue;
        }
        if (++spins % kPollsPerClockRead == 0) {
          silence.check(silence_ns_, [&] { return sent < total ? to.peer : from.peer; });
        }
      }
    });
  }

  bool progress(bool start_new) override {
    bool progressed = false;
    guarded([&] {
      if (!started_) {
        for (In& i : ins_) post_window(i);
        started_ = true;
      }
      for (Out& o : outs_) {
        if (o.active && reqs_.test(o.slot, kW + 1)) {
          finish_window(o, core::now_ns());
          progressed = true;
        }
        if (!o.active && start_new) {
          start_window(o);
          progressed = true;
        }
      }
      for (In& i : ins_) {
        if (i.posted && reqs_.test(i.slot, kW)) {
          receive_window(i, true);
          progressed = true;
        }
      }
      if (progressed) {
        idle_polls_ = 0;
        return;
      }
      if (++idle_polls_ % kPollsPerClockRead != 0) return;
      const std::int64_t now = core::now_ns();
      for (const Out& o : outs_) {
        if (o.active && now - o.t0 > silence_ns_) {
          throw core::Timeout(
              fmt::format("mpi flow to rank {}: a window of {} x {} B not acknowledged within "
                          "{:.1f} s (--timeout)",
                          o.peer, kW, spec_.size, static_cast<double>(silence_ns_) / 1e9));
        }
      }
    });
    return progressed;
  }

  [[nodiscard]] bool idle() const override {
    for (const Out& o : outs_)
      if (o.active) return false;
    return true;
  }

  void close() override {
    // Every sender is idle: the posted receives of the next window will never match, and the
    // last acks were received (their senders went idle only after that).
    for (In& i : ins_) {
      reqs_.cancel(i.slot, kW);
      i.posted = false;
    }
    Silence silence;
    for (In& i : ins_) {
      while (!reqs_.test(i.slot + kW, 1)) silence.check(silence_ns_, [&] { return i.peer; });
    }
  }

  [[nodiscard]] double bits_sent() const override { return bits_; }
  [[nodiscard]] std::int64_t busy_ns() const override { return last_end_ns_ - first_start_ns_; }

 private:
  // Silence limit of a loop: armed at the first check after progress, so a loop that keeps
  // progressing never reads the clock more than every kPollsPerClockRead empty polls.
  struct Silence {
    std::int64_t since = 0;
    void reset() { since = 0; }
    template <typename Peer>
    void check(std::int64_t limit_ns, Peer&& peer) {
      const std::int64_t now = core::now_ns();
      if (since == 0) since = now;
      if (limit_ns > 0 && now - since > limit_ns) {
        throw core::Timeout(
            fmt::format("mpi flows: no progress for {:.1f} s (--timeout) waiting on rank {}",
                        static_cast<double>(limit_ns) / 1e9, peer()));
      }
    }
  };

  template <class F>
  void guarded(F&& body) {
    if (failed_)
      throw core::Timeout("mpi flows already failed; the connection set cannot be reused");
    try {
      body();
    } catch (const core::Error&) {
      failed_ = true;
      reqs_.cancel(0, (kW + 1) * (outs_.size() + ins_.size()) + 4);
      throw;
    }
  }

  [[nodiscard]] int stuck_peer(int total) const {
    for (const Out& o : outs_)
      if (o.active) return o.peer;
    for (const In& i : ins_)
      if (i.received < total) return i.peer;
    return -1;
  }

  std::byte* ack_of(std::size_t index) { return acks_.data() + kAckBytes * index; }

  void start_window(Out& o) {
    o.t0 = core::now_ns();
    if (first_start_ns_ == 0) first_start_ns_ = o.t0;
    const auto f = static_cast<std::size_t>(&o - outs_.data());
    reqs_.irecv(o.slot + kW, ack_of(f), kAckBytes, o.peer, o.tags.ack);
    for (std::size_t k = 0; k < kW; ++k)
      reqs_.isend(o.slot + k, sbuf_.data(), spec_.size, o.peer, o.tags.data);
    o.active = true;
  }

  void finish_window(Out& o, std::int64_t t1) {
    o.active = false;
    ++o.done;
    bits_ += static_cast<double>(kW) * static_cast<double>(spec_.size) * 8.0;
    last_end_ns_ = t1;
  }

  void post_window(In& i) {
    for (std::size_t k = 0; k < kW; ++k)
      reqs_.irecv(i.slot + k, rbuf_.data(), spec_.size, i.peer, i.tags.data);
    i.posted = true;
  }

  // A window arrived: post the next one's receives (when more follow), then acknowledge.
  void receive_window(In& i, bool more) {
    ++i.received;
    i.posted = false;
    if (more) post_window(i);
    // The previous ack is a 4-byte message its receiver already consumed (the sender waits for
    // it before sending this window): its request completes at once.
    Silence silence;
    while (!reqs_.test(i.slot + kW, 1)) silence.check(silence_ns_, [&] { return i.peer; });
    const auto index = outs_.size() + static_cast<std::size_t>(&i - ins_.data());
    reqs_.isend(i.slot + kW, ack_of(index), kAckBytes, i.peer, i.tags.ack);
  }

  const runtime::Comm& comm_;
  FlowsSpec spec_;
  std::int64_t silence_ns_;
  Buffer sbuf_, rbuf_, pong_, acks_;
  runtime::Requests reqs_;
  std::vector<Out> outs_;
  std::vector<In> ins_;
  std::size_t ping_slot_ = 0;
  bool started_ = false, failed_ = false;
  int idle_polls_ = 0;
  double bits_ = 0;
  std::int64_t first_start_ns_ = 0, last_end_ns_ = 0;
};

}  // namespace

std::unique_ptr<Flows> make_mpi_flows(const runtime::Comm& comm, const FlowsSpec& spec,
                                      const Options& opt) {
  return std::make_unique<MpiFlows>(comm, spec, opt);
}

}  // namespace fabscope::transport::flows
