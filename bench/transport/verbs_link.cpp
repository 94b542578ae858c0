// The verbs transport: RC queue pairs through libibverbs, measured the way perftest measures.
//   write ping-pong: each side RDMA-WRITEs `size` bytes into the peer's receive area and polls the
//     last byte of its own area for the iteration's tag (as ib_write_lat). Sample = round trip / 2.
//   send ping-pong: SEND / pre-posted RECV each way. Sample = round trip / 2.
//   read, fetch_add, cmp_swap: the initiator's operation completes a round trip by itself; the
//     sample is the whole operation (what ib_read_lat / ib_atomic_lat report), not halved.
//   stream: windows of kWindow operations (write, send or read) spread round-robin over --qps
//     queue pairs, up to --tx-depth in flight per QP, posted --post-list at a time, a completion
//     requested every --cq-mod operations and for the last one of each QP's share; the window ends
//     when all its completions are in (an RC completion means the peer's NIC has the data).
//   bistream: both sides run windows at once.
// Memory: one registered buffer per QP: [0, max) send area, [max, 2max) receive area, then 8
// bytes for atomics. Every poll loop has a deadline: a silent peer is an error, not a hang.
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <optional>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "runtime/comm.hpp"
#include "transport/link.hpp"
#include "verbs/verbs.hpp"

namespace fabscope::transport {
namespace {

constexpr int kTagWire = 201;
constexpr int kTagSync = 202;
constexpr int kRxDepth = 2 * kWindow + 8;
constexpr std::uint32_t kDefaultInline = 220;
constexpr int kMaxPostList = 64;

// One open port per process, shared by every link (opening a device costs milliseconds).
verbs::Port& shared_port(const Options& opt, int local_rank) {
  static std::optional<verbs::Port> port;
  if (!port) {
    verbs::DeviceOptions d{opt.device, opt.devices, opt.gid_index, 0};
    port.emplace(verbs::open_port(d, local_rank));
  }
  return *port;
}

int mtu_enum(int bytes) {
  switch (bytes) {
    case 0: return 0;
    case 256: return IBV_MTU_256;
    case 512: return IBV_MTU_512;
    case 1024: return IBV_MTU_1024;
    case 2048: return IBV_MTU_2048;
    case 4096: return IBV_MTU_4096;
    default: throw core::UsageError(fmt::format("--mtu {}: use 256, 512, 1024, 2048 or 4096", bytes));
  }
}

// Per-QP bookkeeping: operations posted and not yet known complete, and those posted since the
// last signaled one (a signaled completion retires them all: wr_id carries how many).
struct QpState {
  std::uint64_t outstanding = 0;
  std::uint64_t unsignaled = 0;
  verbs::WireInfo remote{};
};

class VerbsLink final : public Link {
 public:
  VerbsLink(const runtime::Comm& comm, int peer, std::size_t max_size, const Options& opt)
      : comm_(comm), peer_(peer), max_(max_size), opt_(opt), port_(shared_port(opt, comm.local_rank())) {
    const int n = std::max(1, opt.qps);
    const auto inline_bytes = opt.inline_size >= 0 ? static_cast<std::uint32_t>(opt.inline_size) : kDefaultInline;
    for (int q = 0; q < n; ++q) {
      eps_.push_back(std::make_unique<verbs::Endpoint>(port_, 2 * max_size + 64, opt.tx_depth, kRxDepth, inline_bytes,
                                                       opt.inline_size < 0));
    }
    state_.resize(eps_.size());
    // Out-of-band exchange over MPI: the lower rank sends first.
    std::vector<verbs::WireInfo> mine, theirs(eps_.size());
    for (const auto& ep : eps_) mine.push_back(ep->local_info());
    const std::size_t bytes = sizeof(verbs::WireInfo) * eps_.size();
    if (comm_.rank() < peer_) {
      comm_.send(mine.data(), bytes, peer_, kTagWire);
      comm_.recv(theirs.data(), bytes, peer_, kTagWire);
    } else {
      comm_.recv(theirs.data(), bytes, peer_, kTagWire);
      comm_.send(mine.data(), bytes, peer_, kTagWire);
    }
    for (std::size_t q = 0; q < eps_.size(); ++q) {
      state_[q].remote = theirs[q];
      eps_[q]->connect(theirs[q], mtu_enum(opt.mtu));
      // Receives can be posted only once the QP has left RESET (ibv_post_recv(3): EINVAL before).
      if (opt.verb == "send") post_recvs(q, kRxDepth);
    }
    sync();  // every QP is in RTS with its receives posted before anyone sends
  }

  void pingpong(bool initiator, std::size_t size, int warmup, std::span<double> out) override {
    const std::string& verb = opt_.verb;
    if (verb == "read" || verb == "fetch_add" || verb == "cmp_swap") {
      // One operation is a whole round trip: the sample is not halved; the peer only waits.
      if (initiator) {
        timed_iterations(true, warmup, out, 1.0, [&] {
          post_one_sided(0, verb, size, true);
          wait_sends();
        });
      }
    } else if (verb == "send") {
      timed_iterations(initiator, warmup, out, 2.0, [&] {
        if (initiator) {
          post_send(0, IBV_WR_SEND, size, true);
          wait_recvs(1);
        } else {
          wait_recvs(1);
          post_send(0, IBV_WR_SEND, size, true);
        }
        wait_sends();
      });
    } else {
      // write: poll the last byte of the receive area for this iteration's tag.
      verbs::Endpoint& ep = *eps_[0];
      volatile std::uint8_t* last = ep.data() + max_ + size - 1;
      std::uint8_t* send_last = ep.data() + size - 1;
      timed_iterations(initiator, warmup, out, 2.0, [&] {
        const auto tag = static_cast<std::uint8_t>(++tag_ % 255 + 1);
        if (initiator) {
          *send_last = tag;
          post_send(0, IBV_WR_RDMA_WRITE, size, true);
          wait_byte(last, tag);
        } else {
          wait_byte(last, tag);
          *send_last = tag;
          post_send(0, IBV_WR_RDMA_WRITE, size, true);
        }
        wait_sends();
      });
    }
    sync();
  }

  void stream(bool sender, std::size_t size, int warmup, std::span<double> window_ns) override {
    windows(sender, /*both=*/false, size, warmup, window_ns);
  }

  void bistream(std::size_t size, int warmup, std::span<double> window_ns) override {
    windows(true, /*both=*/true, size, warmup, window_ns);
  }

  [[nodiscard]] int peer() const noexcept override { return peer_; }

 private:
  [[noreturn]] void completion_error(std::size_t q, const ibv_wc& wc) const {
    throw core::Error(core::ExitCode::kFailure,
                      fmt::format("completion error on {} (peer rank {}, remote qpn 0x{:x}): {} (status {}, vendor error 0x{:x})",
                                  eps_[q]->where(), peer_, state_[q].remote.qpn, ibv_wc_status_str(wc.status),
                                  static_cast<int>(wc.status), wc.vendor_err));
  }

  [[noreturn]] void timeout(const char* what) const {
    throw core::Timeout(fmt::format("timed out after {:.0f} s waiting for {} on {} (peer rank {}, remote qpn 0x{:x})",
                                    opt_.timeout_s, what, eps_[0]->where(), peer_, state_[0].remote.qpn));
  }

  // Deadlines are armed lazily: the first clock read happens after 4096 empty polls, so a wait
  // that completes at once reads no clock (a clock read is ~1 us on some virtual clocksources).
  struct Deadline {
    std::int64_t end = 0;
    // True once the timeout has passed since the first check.
    bool passed(std::int64_t timeout_ns) {
      const std::int64_t now = core::now_ns();
      if (end == 0) end = now + timeout_ns;
      return now > end;
    }
  };
  // warmup + out.size() iterations of `body`; when `timing`, one clock read per iteration (as
  // perftest): sample = (stamp after iteration i - stamp after iteration i-1) / divisor.
  template <typename Body>
  static void timed_iterations(bool timing, int warmup, std::span<double> out, double divisor, Body&& body) {
    const int total = warmup + static_cast<int>(out.size());
    std::int64_t prev = timing ? core::now_ns() : 0;
    for (int i = 0; i < total; ++i) {
      body();
      if (timing) {
        const std::int64_t now = core::now_ns();
        if (i >= warmup) out[static_cast<std::size_t>(i - warmup)] = static_cast<double>(now - prev) / divisor;
        prev = now;
      }
    }
  }

  [[nodiscard]] std::int64_t timeout_ns() const { return static_cast<std::int64_t>(opt_.timeout_s * 1e9); }

  void sync() {
    char b = 0, r = 0;
    if (comm_.rank() < peer_) {
      comm_.send_quietly(&b, 1, peer_, kTagSync);
      comm_.recv_quietly(&r, 1, peer_, kTagSync);
    } else {
      comm_.recv_quietly(&r, 1, peer_, kTagSync);
      comm_.send_quietly(&b, 1, peer_, kTagSync);
    }
  }

  void post_recvs(std::size_t q, int n) {
    verbs::Endpoint& ep = *eps_[q];
    for (int i = 0; i < n; ++i) {
      ibv_sge sge{reinterpret_cast<std::uintptr_t>(ep.data() + max_), static_cast<std::uint32_t>(max_), ep.lkey()};
      ibv_recv_wr wr{};
      wr.sg_list = &sge;
      wr.num_sge = 1;
      ibv_recv_wr* bad = nullptr;
      if (const int rc = ibv_post_recv(ep.qp(), &wr, &bad); rc != 0) verbs::fail("ibv_post_recv", ep.where(), rc);
    }
  }

  // Fills one send work request (write or send from the send area).
  void fill_send(std::size_t q, ibv_send_wr& wr, ibv_sge& sge, ibv_wr_opcode opcode, std::size_t size) {
    verbs::Endpoint& ep = *eps_[q];
    sge = {reinterpret_cast<std::uintptr_t>(ep.data()), static_cast<std::uint32_t>(size), ep.lkey()};
    wr = {};
    wr.sg_list = &sge;
    wr.num_sge = 1;
    wr.opcode = opcode;
    if (size <= ep.inline_bytes()) wr.send_flags |= IBV_SEND_INLINE;
    if (opcode == IBV_WR_RDMA_WRITE) {
      wr.wr.rdma.remote_addr = state_[q].remote.addr + max_;
      wr.wr.rdma.rkey = state_[q].remote.rkey;
    }
  }

  // RDMA READ of `size` bytes from the peer's send area, or an 8-byte atomic on its atomic word.
  void fill_one_sided(std::size_t q, ibv_send_wr& wr, ibv_sge& sge, const std::string& verb, std::size_t size) {
    verbs::Endpoint& ep = *eps_[q];
    const bool atomic = verb != "read";
    sge = {reinterpret_cast<std::uintptr_t>(ep.data() + max_), atomic ? 8u : static_cast<std::uint32_t>(size), ep.lkey()};
    wr = {};
    wr.sg_list = &sge;
    wr.num_sge = 1;
    const std::uint64_t base = state_[q].remote.addr + 2 * max_;
    if (atomic) {
      wr.opcode = verb == "fetch_add" ? IBV_WR_ATOMIC_FETCH_AND_ADD : IBV_WR_ATOMIC_CMP_AND_SWP;
      wr.wr.atomic.remote_addr = base + 8 - base % 8;
      wr.wr.atomic.rkey = state_[q].remote.rkey;
      wr.wr.atomic.compare_add = 1;
      wr.wr.atomic.swap = 0;
    } else {
      wr.opcode = IBV_WR_RDMA_READ;
      wr.wr.rdma.remote_addr = state_[q].remote.addr;
      wr.wr.rdma.rkey = state_[q].remote.rkey;
    }
  }

  // Posts a chain of n work requests on QP q; `signal_last` requests a completion for the last.
  void post_chain(std::size_t q, ibv_send_wr* wrs, int n, bool signal_last) {
    QpState& st = state_[q];
    for (int i = 0; i < n; ++i) {
      wrs[i].next = i + 1 < n ? &wrs[i + 1] : nullptr;
      ++st.unsignaled;
      const bool sig = (signal_last && i == n - 1) || (opt_.cq_mod > 0 && st.unsignaled >= static_cast<std::uint64_t>(opt_.cq_mod));
      if (sig) {
        wrs[i].send_flags |= IBV_SEND_SIGNALED;
        wrs[i].wr_id = st.unsignaled;  // this completion retires that many operations
        st.unsignaled = 0;
      }
    }
    ibv_send_wr* bad = nullptr;
    if (const int rc = ibv_post_send(eps_[q]->qp(), wrs, &bad); rc != 0) {
      verbs::fail("ibv_post_send", fmt::format("{} ({} work requests)", eps_[q]->where(), n), rc);
    }
    st.outstanding += static_cast<std::uint64_t>(n);
  }

  void post_send(std::size_t q, ibv_wr_opcode opcode, std::size_t size, bool signaled) {
    ibv_send_wr wr;
    ibv_sge sge;
    fill_send(q, wr, sge, opcode, size);
    post_chain(q, &wr, 1, signaled);
  }

  void post_one_sided(std::size_t q, const std::string& verb, std::size_t size, bool signaled) {
    ibv_send_wr wr;
    ibv_sge sge;
    fill_one_sided(q, wr, sge, verb, size);
    post_chain(q, &wr, 1, signaled);
  }

  // Polls every CQ once; retires completed sends and counts receives (re-posted at once).
  void poll_once() {
    for (std::size_t q = 0; q < eps_.size(); ++q) {
      ibv_wc wc[16];
      const int n = ibv_poll_cq(eps_[q]->cq(), 16, wc);
      if (n < 0) verbs::fail("ibv_poll_cq", eps_[q]->where(), EIO);
      for (int i = 0; i < n; ++i) {
        if (wc[i].status != IBV_WC_SUCCESS) completion_error(q, wc[i]);
        if (wc[i].opcode & IBV_WC_RECV) {
          ++recvs_;
          post_recvs(q, 1);
        } else {
          state_[q].outstanding -= wc[i].wr_id;
        }
      }
    }
  }

  [[nodiscard]] std::uint64_t outstanding() const {
    std::uint64_t n = 0;
    for (const auto& st : state_) n += st.outstanding;
    return n;
  }

  // Until every posted operation has completed (completions reaped while waiting for something
  // else count too).
  void wait_sends() {
    Deadline d;
    for (std::uint64_t spins = 0; outstanding() > 0; ++spins) {
      poll_once();
      if ((spins & 4095) == 4095 && d.passed(timeout_ns())) timeout("send completions");
    }
  }

  void wait_recvs(std::uint64_t n) {
    const std::uint64_t target = recvs_consumed_ + n;
    Deadline d;
    for (std::uint64_t spins = 0; recvs_ < target; ++spins) {
      poll_once();
      if ((spins & 4095) == 4095 && d.passed(timeout_ns())) timeout("a message from the peer");
    }
    recvs_consumed_ = target;
  }

  void wait_byte(volatile std::uint8_t* p, std::uint8_t tag) {
    Deadline d;
    for (std::uint64_t spins = 0; *p != tag; ++spins) {
      if ((spins & 4095) == 4095) {
        poll_once();  // surfaces a completion error instead of spinning until the deadline
        if (d.passed(timeout_ns())) timeout("the peer's RDMA write");
      }
    }
    std::atomic_thread_fence(std::memory_order_acquire);
  }

  // Windows of kWindow operations. `post`: this side posts (and times); `both`: the peer posts too.
  void windows(bool post, bool both, std::size_t size, int warmup, std::span<double> window_ns) {
    const std::string& verb = opt_.verb;
    const bool sends = verb == "send";
    const bool read = verb == "read";
    const int total = warmup + static_cast<int>(window_ns.size());
    const auto depth = static_cast<std::uint64_t>(std::max(1, opt_.tx_depth));
    const int list = std::clamp(opt_.post_list, 1, kMaxPostList);
    const std::size_t nq = eps_.size();
    if (!post && !sends) {  // the peer's NIC does everything: wait without spinning
      sync();
      return;
    }
    ibv_send_wr wrs[kMaxPostList];
    ibv_sge sges[kMaxPostList];
    for (int i = 0; i < total; ++i) {
      const std::int64_t t0 = core::now_ns();
      if (post) {
        // QP q carries operations q, q + nq, ...: its share of the window.
        std::vector<int> left(nq);
        for (std::size_t q = 0; q < nq; ++q) left[q] = kWindow / static_cast<int>(nq) + (static_cast<int>(q) < kWindow % static_cast<int>(nq) ? 1 : 0);
        for (bool more = true; more;) {
          more = false;
          for (std::size_t q = 0; q < nq; ++q) {
            if (left[q] == 0) continue;
            const int n = std::min(list, left[q]);
            Deadline d;
            for (std::uint64_t spins = 0; state_[q].outstanding + static_cast<std::uint64_t>(n) > depth; ++spins) {
              poll_once();
              if ((spins & 4095) == 4095 && d.passed(timeout_ns())) timeout("send queue space");
            }
            for (int k = 0; k < n; ++k) {
              if (read) fill_one_sided(q, wrs[k], sges[k], "read", size);
              else fill_send(q, wrs[k], sges[k], sends ? IBV_WR_SEND : IBV_WR_RDMA_WRITE, size);
            }
            left[q] -= n;
            post_chain(q, wrs, n, left[q] == 0);
            more = more || left[q] > 0;
          }
        }
        wait_sends();
      }
      if (sends && (both || !post)) wait_recvs(kWindow);
      const std::int64_t t1 = core::now_ns();
      if (post && i >= warmup) window_ns[static_cast<std::size_t>(i - warmup)] = static_cast<double>(t1 - t0);
    }
    sync();
  }

  const runtime::Comm& comm_;
  int peer_;
  std::size_t max_;
  Options opt_;
  verbs::Port& port_;
  std::vector<std::unique_ptr<verbs::Endpoint>> eps_;
  std::vector<QpState> state_;
  std::uint64_t recvs_ = 0, recvs_consumed_ = 0;
  unsigned tag_ = 0;
};

}  // namespace

std::unique_ptr<Link> make_verbs_link(const runtime::Comm& comm, int peer, std::size_t max_size, const Options& opt) {
  return std::make_unique<VerbsLink>(comm, peer, max_size, opt);
}

std::map<std::string, std::uint64_t> verbs_counters(const Options& opt, int local_rank) {
  const verbs::Port& p = shared_port(opt, local_rank);
  return verbs::read_counters(p.device, p.port);
}

}  // namespace fabscope::transport
