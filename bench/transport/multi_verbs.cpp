// Flows over RC queue pairs: one verbs::Endpoint (QP, CQ, registered buffer) per flow, connected
// by an out-of-band exchange over MPI with every peer at once (runtime::Requests), or with
// --cm rdmacm by librdmacm (verbs/rdmacm.hpp): the receiving end of each flow listens, the sending
// end connects, and only where the listener listens goes over MPI.
// Buffer of every endpoint: [0, size) send area, [size, 2 size) receive area.
//   outgoing window: kWindow RDMA WRITEs from the send area into the peer's receive area; the
//     send area's last byte carries the window's tag, so the receiver can see its flow move.
//   run(): when a sender is done it tells each receiver with a 1-byte MPI message; a receiver
//     waits for those quietly, and fails the flow when the tag in its receive area stays still
//     for --timeout seconds.
//   ring_pingpong(): RDMA WRITE ping-pong polling the last byte of the receive area (as
//     ib_write_lat), initiator and responder roles interleaved in one loop.
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <exception>
#include <thread>
#include <tuple>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/files.hpp"
#include "runtime/comm.hpp"
#include "transport/multi_impl.hpp"
#include "verbs/rdmacm.hpp"
#include "verbs/verbs.hpp"

namespace fabscope::transport::flows {
namespace {

constexpr std::uint32_t kDefaultInline = 220;
constexpr int kMaxPostList = 64;
constexpr int kPollsPerClockRead = 4096;

int mtu_enum(int bytes) {
  switch (bytes) {
    case 256:
      return IBV_MTU_256;
    case 512:
      return IBV_MTU_512;
    case 1024:
      return IBV_MTU_1024;
    case 2048:
      return IBV_MTU_2048;
    case 4096:
      return IBV_MTU_4096;
    default:
      return 0;
  }
}

struct Conn {
  int peer = 0;
  Tags tags{};
  // --cm rdmacm: declared before the endpoint, so the QP goes before its cm id (rdmacm.hpp)
  std::unique_ptr<verbs::CmConnection> cm;
  std::unique_ptr<verbs::Endpoint> ep;
  verbs::WireInfo remote{};
  // outgoing: operations posted and not yet known complete; posted since the last signaled one
  std::uint64_t outstanding = 0, unsignaled = 0;
  bool active = false;  // a window in flight
  int left = 0;         // operations of the window not yet posted
  int done = 0;         // windows completed
  std::int64_t t0 = 0;
  std::uint8_t tag = 0;  // outgoing: tag of the current window; incoming: last tag seen
};

class VerbsFlows final : public Flows {
 public:
  VerbsFlows(const runtime::Comm& comm, verbs::Port& port, const FlowsSpec& spec, const Options& opt)
      : comm_(comm),
        spec_(spec),
        opt_(opt),
        port_(port),
        silence_ns_(static_cast<std::int64_t>(opt.timeout_s * 1e9)),
        reqs_(comm, 2 * (spec.to.size() + spec.from.size())) {
    const auto tags = tags_of(spec);
    const auto inline_bytes =
        opt.inline_size >= 0 ? static_cast<std::uint32_t>(opt.inline_size) : kDefaultInline;
    auto make = [&](int peer) {
      Conn c;
      c.peer = peer;
      c.tags = tags.at(peer);
      c.ep = std::make_unique<verbs::Endpoint>(port_, 2 * spec.size + 64, opt.tx_depth, 1,
                                               inline_bytes, opt.inline_size < 0);
      return c;
    };
    for (const int p : spec.to) outs_.push_back(make(p));
    for (const int p : spec.from) ins_.push_back(make(p));
    if (opt.cm == "rdmacm") {
      connect_rdmacm();
    } else {
      connect_oob();
    }
    // Every QP of every peer is ready to receive before anyone writes.
    const std::size_t n = outs_.size() + ins_.size();
    std::vector<char> flag(2 * n, 1);
    std::size_t k = 0;
    for (const auto* list : {&outs_, &ins_}) {
      for (const Conn& c : *list) {
        reqs_.irecv(2 * k, &flag[2 * k], 1, c.peer, c.tags.ready);
        reqs_.isend(2 * k + 1, &flag[2 * k + 1], 1, c.peer, c.tags.ready);
        ++k;
      }
    }
    reqs_.wait_quietly(0, 2 * n, {0, silence_ns_}, first_peer(), "connection ready");
  }

  // Out of band: my outgoing endpoint goes to the peer's incoming one and the other way round.
  void connect_oob() {
    std::vector<verbs::WireInfo> mine;
    for (const auto* list : {&outs_, &ins_})
      for (const Conn& c : *list) mine.push_back(c.ep->local_info());
    const std::size_t n = outs_.size() + ins_.size();
    const std::size_t w = sizeof(verbs::WireInfo);
    std::size_t k = 0;
    for (Conn& c : outs_) {
      reqs_.irecv(2 * k, &c.remote, w, c.peer, c.tags.wire_in);
      reqs_.isend(2 * k + 1, &mine[k], w, c.peer, c.tags.wire_out);
      ++k;
    }
    for (Conn& c : ins_) {
      reqs_.irecv(2 * k, &c.remote, w, c.peer, c.tags.wire_out);
      reqs_.isend(2 * k + 1, &mine[k], w, c.peer, c.tags.wire_in);
      ++k;
    }
    reqs_.wait_quietly(0, 2 * n, {0, silence_ns_}, first_peer(), "connection exchange");
    for (auto* list : {&outs_, &ins_})
      for (Conn& c : *list) c.ep->connect(c.remote, mtu_enum(opt_.mtu));
  }

  // rdma_cm: every incoming flow listens (its address goes to the sender over MPI, every peer at
  // once), then the flows connect one by one in an order all ranks share: by the pair of ranks
  // (lower, higher), the flow from the lower rank first. The first flow not yet connected is
  // then the next one on both of its ends, so no cycle of ranks can wait on each other.
  void connect_rdmacm() {
    const verbs::CmLimits limits{silence_ns_, 0};
    const int me = comm_.rank();
    const std::size_t w = sizeof(verbs::CmListenInfo);
    std::vector<verbs::CmListenInfo> where(outs_.size() + ins_.size());
    std::exception_ptr failed;
    // The generation (the flow's tag) is checked in the handshake: a request left over from an
    // earlier connection between the same ranks is refused.
    auto make_cm = [&](const Conn& c) {
      return std::make_unique<verbs::CmConnection>(port_, fmt::format("rank {}", c.peer), limits,
                                                   static_cast<std::uint32_t>(c.tags.wire_in));
    };
    std::size_t k = 0;
    for (Conn& c : outs_) {
      reqs_.irecv(k, &where[k], w, c.peer, c.tags.wire_in);
      ++k;
    }
    for (Conn& c : ins_) {
      c.cm = make_cm(c);
      try {
        where[k] = c.cm->listen(1);
      } catch (const core::Error&) {
        where[k] = verbs::CmListenInfo{};  // family 0: the sender fails at once
        if (!failed) failed = std::current_exception();
      }
      reqs_.isend(k, &where[k], w, c.peer, c.tags.wire_in);
      ++k;
    }
    reqs_.wait_quietly(0, k, {0, silence_ns_}, first_peer(), "where the peers listen for rdma_cm connections");
    if (failed) std::rethrow_exception(failed);
    struct Step {
      std::tuple<int, int, int> key;
      Conn* c;
      const verbs::CmListenInfo* to;  // outgoing flows: where the receiver listens
    };
    std::vector<Step> order;
    auto key = [](int from, int to) { return std::tuple{std::min(from, to), std::max(from, to), from < to ? 0 : 1}; };
    for (std::size_t i = 0; i < outs_.size(); ++i) order.push_back({key(me, outs_[i].peer), &outs_[i], &where[i]});
    for (Conn& c : ins_) order.push_back({key(c.peer, me), &c, nullptr});
    std::sort(order.begin(), order.end(), [](const Step& a, const Step& b) { return a.key < b.key; });
    const int mtu = mtu_enum(opt_.mtu);
    const auto nothing = [](std::size_t) {};  // RDMA WRITE needs no posted receives
    for (const Step& st : order) {
      Conn& c = *st.c;
      const std::span<const std::unique_ptr<verbs::Endpoint>> eps(&c.ep, 1);
      std::vector<verbs::CmRemote> remote;
      if (st.to != nullptr) {
        c.cm = make_cm(c);
        remote = c.cm->connect(*st.to, eps, mtu, nothing);
      } else {
        remote = c.cm->accept(eps, mtu, nothing);
      }
      c.remote.qpn = remote[0].qpn;
      c.remote.rkey = remote[0].rkey;
      c.remote.addr = remote[0].addr;
    }
  }

  void run(int warmup, int windows, std::span<double> window_ns) override {
    guarded([&] {
      const int total = warmup + windows;
      for (Conn& c : outs_) c.done = 0;
      for (Conn& c : ins_) c.tag = last_byte(c);
      // fin: slot 2k receives from incoming flow k's sender, slot 2k+1 tells outgoing flow k's
      // receiver.
      std::vector<char>& fin = fin_;
      fin.assign(2 * (outs_.size() + ins_.size()), 1);
      for (std::size_t k = 0; k < ins_.size(); ++k)
        reqs_.irecv(2 * k, &fin[2 * k], 1, ins_[k].peer, ins_[k].tags.fin);
      bool told = false;
      try {
        std::int64_t silent_since = 0;
        bool moved = false;
        for (std::uint64_t spins = 0;; ++spins) {
          bool sending = false, progressed = false;
          for (std::size_t f = 0; f < outs_.size(); ++f) {
            Conn& c = outs_[f];
            if (c.done >= total && !c.active) continue;
            sending = true;
            progressed = poll(c) || progressed;
            if (c.active && c.left == 0 && c.outstanding == 0) {
              const std::int64_t t1 = core::now_ns();
              if (c.done >= warmup)
                window_ns[f * static_cast<std::size_t>(windows) +
                          static_cast<std::size_t>(c.done - warmup)] =
                    static_cast<double>(t1 - c.t0);
              finish(c, t1);
              progressed = true;
            }
            if (!c.active && c.done < total) start(c);
            if (c.active) pump(c);
          }
          if (!sending && !told) {
            tell_done(fin);
            told = true;
          }
          if (told && reqs_.test(0, fin.size())) return;
          moved = moved || progressed;
          if ((spins & (kPollsPerClockRead - 1)) != kPollsPerClockRead - 1 && sending) continue;
          // Incoming flows move when the tag in their receive area changes.
          for (Conn& c : ins_) {
            const std::uint8_t t = last_byte(c);
            if (t != c.tag) {
              c.tag = t;
              moved = true;
            }
          }
          const std::int64_t now = core::now_ns();
          if (moved || silent_since == 0) silent_since = now;
          moved = false;
          if (now - silent_since > silence_ns_) {
            throw core::Timeout(fmt::format(
                "verbs flows on {}: no progress for {:.0f} s (--timeout) waiting on rank {}",
                port_.where(), opt_.timeout_s, stuck_peer(total)));
          }
          if (!sending)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));  // only waiting: quietly
        }
      } catch (...) {
        if (!told) tell_done(fin);  // best effort: receivers need not wait for --timeout
        throw;
      }
    });
  }

  void ring_pingpong(int warmup, std::span<double> one_way_ns) override {
    if (outs_.size() != 1 || ins_.size() != 1) {
      throw core::Error(core::ExitCode::kFailure,
                        "internal: ring ping-pong needs one outgoing and one incoming flow");
    }
    guarded([&] {
      const int total = warmup + static_cast<int>(one_way_ns.size());
      Conn& to = outs_[0];
      Conn& from = ins_[0];
      volatile std::uint8_t* pong = to.ep->data() + 2 * spec_.size - 1;
      volatile std::uint8_t* ping = from.ep->data() + 2 * spec_.size - 1;
      int sent = 0, answered = 0;
      bool waiting = false;
      std::int64_t t0 = 0, silent_since = 0;
      for (std::uint64_t spins = 0;; ++spins) {
        bool progressed = false;
        if (waiting && *pong == to.tag) {
          std::atomic_thread_fence(std::memory_order_acquire);
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
          to.tag = static_cast<std::uint8_t>((pings_ + static_cast<std::uint64_t>(sent)) % 255 + 1);
          to.ep->data()[spec_.size - 1] = to.tag;
          post(to, 1, true);
          waiting = true;
        }
        const auto expect =
            static_cast<std::uint8_t>((pongs_ + static_cast<std::uint64_t>(answered)) % 255 + 1);
        if (answered < total && *ping == expect) {
          std::atomic_thread_fence(std::memory_order_acquire);
          from.ep->data()[spec_.size - 1] = expect;
          post(from, 1, true);
          ++answered;
          progressed = true;
        }
        poll(to);
        poll(from);
        if (sent == total && answered == total && to.outstanding == 0 && from.outstanding == 0) {
          // Tags continue across calls: a receive area still holds the last call's final tag.
          pings_ += static_cast<std::uint64_t>(total);
          pongs_ += static_cast<std::uint64_t>(total);
          return;
        }
        if (progressed) {
          silent_since = 0;
          continue;
        }
        if ((spins & (kPollsPerClockRead - 1)) == kPollsPerClockRead - 1) {
          const std::int64_t now = core::now_ns();
          if (silent_since == 0) silent_since = now;
          if (now - silent_since > silence_ns_) {
            throw core::Timeout(fmt::format(
                "verbs ring ping-pong on {}: no answer for {:.0f} s (--timeout) from rank {}",
                port_.where(), opt_.timeout_s, sent < total ? to.peer : from.peer));
          }
        }
      }
    });
  }

  bool progress(bool start_new) override {
    bool progressed = false;
    guarded([&] {
      for (Conn& c : outs_) {
        progressed = poll(c) || progressed;
        if (c.active && c.left == 0 && c.outstanding == 0) {
          finish(c, core::now_ns());
          progressed = true;
        }
        if (!c.active && start_new) {
          start(c);
          progressed = true;
        }
        if (c.active) pump(c);
      }
      if (progressed || ++idle_polls_ % kPollsPerClockRead != 0) {
        if (progressed) idle_polls_ = 0;
        return;
      }
      const std::int64_t now = core::now_ns();
      for (const Conn& c : outs_) {
        if (c.active && now - c.t0 > silence_ns_) {
          throw core::Timeout(
              fmt::format("verbs flow on {} to rank {} (remote qpn 0x{:x}): a window not complete "
                          "within {:.0f} s (--timeout)",
                          c.ep->where(), c.peer, c.remote.qpn, opt_.timeout_s));
        }
      }
    });
    return progressed;
  }

  [[nodiscard]] bool idle() const override {
    return std::none_of(outs_.begin(), outs_.end(), [](const Conn& c) { return c.active; });
  }

  void close() override {}  // incoming flows post nothing: the NIC writes into the receive areas

  [[nodiscard]] double bits_sent() const override { return bits_; }
  [[nodiscard]] std::int64_t busy_ns() const override { return last_end_ns_ - first_start_ns_; }

 private:
  [[nodiscard]] int first_peer() const {
    return !outs_.empty() ? outs_.front().peer : ins_.empty() ? -1 : ins_.front().peer;
  }

  [[nodiscard]] int stuck_peer(int total) const {
    for (const Conn& c : outs_)
      if (c.active || c.done < total) return c.peer;
    return ins_.empty() ? -1 : ins_.front().peer;
  }

  template <class F>
  void guarded(F&& body) {
    if (failed_)
      throw core::Error(core::ExitCode::kFailure,
                        "verbs flows already failed; the connection set cannot be reused");
    try {
      body();
    } catch (const core::Error&) {
      failed_ = true;
      throw;
    }
  }

  [[nodiscard]] std::uint8_t last_byte(const Conn& c) const {
    return *static_cast<volatile std::uint8_t*>(c.ep->data() + 2 * spec_.size - 1);
  }

  void tell_done(std::vector<char>& fin) {
    for (std::size_t k = 0; k < outs_.size(); ++k)
      reqs_.isend(2 * k + 1, &fin[2 * k + 1], 1, outs_[k].peer, outs_[k].tags.fin);
  }

  void start(Conn& c) {
    c.t0 = core::now_ns();
    if (first_start_ns_ == 0) first_start_ns_ = c.t0;
    c.tag = static_cast<std::uint8_t>(c.done % 255 + 1);
    c.ep->data()[spec_.size - 1] = c.tag;
    c.left = kWindow;
    c.active = true;
  }

  void finish(Conn& c, std::int64_t t1) {
    c.active = false;
    ++c.done;
    bits_ += static_cast<double>(kWindow) * static_cast<double>(spec_.size) * 8.0;
    last_end_ns_ = t1;
  }

  // Posts as much of the window as the send queue takes, --post-list at a time.
  void pump(Conn& c) {
    const auto depth = static_cast<std::uint64_t>(std::max(1, opt_.tx_depth));
    const int list = std::clamp(opt_.post_list, 1, kMaxPostList);
    while (c.left > 0 && c.outstanding < depth) {
      const int n = static_cast<int>(
          std::min<std::uint64_t>({static_cast<std::uint64_t>(list),
                                   static_cast<std::uint64_t>(c.left), depth - c.outstanding}));
      c.left -= n;
      post(c, n, c.left == 0);
    }
  }

  // A chain of n RDMA WRITEs of the send area into the peer's receive area; a completion is
  // requested every --cq-mod operations and for the last when `signal_last` (wr_id = how many
  // operations that completion retires).
  void post(Conn& c, int n, bool signal_last) {
    verbs::Endpoint& ep = *c.ep;
    ibv_send_wr wrs[kMaxPostList];
    ibv_sge sges[kMaxPostList];
    for (int i = 0; i < n; ++i) {
      sges[i] = {reinterpret_cast<std::uintptr_t>(ep.data()),
                 static_cast<std::uint32_t>(spec_.size), ep.lkey()};
      wrs[i] = {};
      wrs[i].sg_list = &sges[i];
      wrs[i].num_sge = 1;
      wrs[i].opcode = IBV_WR_RDMA_WRITE;
      if (spec_.size <= ep.inline_bytes()) wrs[i].send_flags |= IBV_SEND_INLINE;
      wrs[i].wr.rdma.remote_addr = c.remote.addr + spec_.size;
      wrs[i].wr.rdma.rkey = c.remote.rkey;
      wrs[i].next = i + 1 < n ? &wrs[i + 1] : nullptr;
      ++c.unsignaled;
      if ((signal_last && i == n - 1) ||
          c.unsignaled >= static_cast<std::uint64_t>(std::max(1, opt_.cq_mod))) {
        wrs[i].send_flags |= IBV_SEND_SIGNALED;
        wrs[i].wr_id = c.unsignaled;
        c.unsignaled = 0;
      }
    }
    ibv_send_wr* bad = nullptr;
    if (const int rc = ibv_post_send(ep.qp(), wrs, &bad); rc != 0) {
      verbs::fail("ibv_post_send",
                  fmt::format("{} ({} RDMA WRITEs to rank {})", ep.where(), n, c.peer), rc);
    }
    c.outstanding += static_cast<std::uint64_t>(n);
  }

  // Reaps the completions of c's CQ; a failed one ends the flow with its status.
  bool poll(Conn& c) {
    ibv_wc wc[16];
    const int n = ibv_poll_cq(c.ep->cq(), 16, wc);
    if (n < 0) verbs::fail("ibv_poll_cq", c.ep->where(), EIO);
    for (int i = 0; i < n; ++i) {
      if (wc[i].status != IBV_WC_SUCCESS) {
        throw core::Error(
            core::ExitCode::kFailure,
            fmt::format("completion error on {} (peer rank {}, remote qpn 0x{:x}): {} (status {}, "
                        "vendor error 0x{:x})",
                        c.ep->where(), c.peer, c.remote.qpn, ibv_wc_status_str(wc[i].status),
                        static_cast<int>(wc[i].status), wc[i].vendor_err));
      }
      c.outstanding -= std::min(c.outstanding, static_cast<std::uint64_t>(wc[i].wr_id));
    }
    return n > 0;
  }

  const runtime::Comm& comm_;
  FlowsSpec spec_;
  Options opt_;
  verbs::Port& port_;
  std::int64_t silence_ns_;
  std::vector<char>
      fin_;  // run()'s 1-byte "done" messages; declared before reqs_, so it outlives them
  runtime::Requests reqs_;
  std::vector<Conn> outs_, ins_;
  std::uint64_t pings_ = 0, pongs_ = 0;  // ring ping-pong round trips of earlier calls (tags)
  bool failed_ = false;
  int idle_polls_ = 0;
  double bits_ = 0;
  std::int64_t first_start_ns_ = 0, last_end_ns_ = 0;
};

}  // namespace

std::unique_ptr<Flows> make_verbs_flows(const runtime::Comm& comm, verbs::Port& port, const FlowsSpec& spec,
                                        const Options& opt) {
  return std::make_unique<VerbsFlows>(comm, port, spec, opt);
}

}  // namespace fabscope::transport::flows
