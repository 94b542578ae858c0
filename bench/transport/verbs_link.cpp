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
// bytes for atomics.
// Connection (Options::cm): "oob" swaps qpn, psn, lid, gid, rkey and address over MPI and moves
// the QPs to RTS itself; "rdmacm" lets librdmacm connect the same QPs (verbs/rdmacm.hpp): the lower
// rank listens on its port's IP address (an ephemeral port it tells the peer over MPI; nothing
// else of the connection goes over MPI), the higher rank connects, rkey and address travel as the
// CM's private data. Either way the patterns below run on the same Endpoints.
// Deadlines: every wait (completion polling, the connection, the MPI messages that end each
// pattern) gives up when the peer stays silent for Options::timeout_s or when the pair's deadline
// (Link::deadline(), from Options::pair_timeout_s; connect honours it too) passes, and throws
// core::Timeout naming the verb, device, qpn and peer. The rank that only waits while its peer's
// NIC works (read/atomic latency responder, write/read stream receiver) has no silence limit of
// its own: the working rank detects a silent peer, and a rank that gives up tells its peer
// (a 1-byte failure notice in place of the end-of-pattern message), so neither waits long.
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
#include "verbs/rdmacm.hpp"
#include "verbs/verbs.hpp"

namespace fabscope::transport {
namespace {

// Each link to a peer gets its own MPI tags (connection data, end-of-pattern messages), so a late
// message of a pair that failed can never be taken for one of a later pair. Both sides count
// their links to each other, so they agree on the generation. The range is disjoint from the mpi
// transport's tags (1000..17383) and stays below 32767, the smallest MPI_TAG_UB allowed.
constexpr int kTagBase = 20000;
constexpr int kTagsPerLink = 2;
constexpr int kGenerations = 4096;
constexpr std::uint8_t kSyncOk = 1;
constexpr std::uint8_t kSyncFailed = 2;
constexpr int kRxDepth = 2 * kWindow + 8;
constexpr std::uint32_t kDefaultInline = 220;
constexpr int kMaxPostList = 64;

// One open port per process, shared by every link (opening a device costs milliseconds).
int next_generation(int peer) {
  static std::map<int, int> generations;
  return generations[peer]++ % kGenerations;
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
  VerbsLink(const runtime::Comm& comm, verbs::Port& port, int peer, std::size_t max_size, const Options& opt)
      : comm_(comm),
        peer_(peer),
        max_(max_size),
        opt_(opt),
        generation_(next_generation(peer)),
        tag_wire_(kTagBase + kTagsPerLink * generation_),
        tag_sync_(tag_wire_ + 1),
        port_(port),
        sync_in_(std::make_unique<std::uint8_t>(0)),
        requests_(comm, 2) {
    // Connecting honours the pair's deadline too; transport::connect re-arms it from the start of
    // its call (a few microseconds earlier) once the link exists.
    if (opt.pair_timeout_s > 0) deadline_ns_ = core::now_ns() + static_cast<std::int64_t>(opt.pair_timeout_s * 1e9);
    const int n = std::max(1, opt.qps);
    const auto inline_bytes = opt.inline_size >= 0 ? static_cast<std::uint32_t>(opt.inline_size) : kDefaultInline;
    for (int q = 0; q < n; ++q) {
      eps_.push_back(std::make_unique<verbs::Endpoint>(port_, 2 * max_size + 64, opt.tx_depth, kRxDepth, inline_bytes,
                                                       opt.inline_size < 0));
    }
    state_.resize(eps_.size());
    left_.resize(eps_.size());
    const int mtu = mtu_enum(opt.mtu);
    try {
      if (opt.cm == "rdmacm") {
        connect_rdmacm(mtu);
      } else {
        connect_oob(mtu);
      }
      sync(false);  // every QP is in RTS with its receives posted before anyone sends
    } catch (const core::Error&) {
      notify_failure();
      throw;
    }
  }

  ~VerbsLink() override = default;
  VerbsLink(const VerbsLink&) = delete;
  VerbsLink& operator=(const VerbsLink&) = delete;

  void pingpong(bool initiator, std::size_t size, int warmup, std::span<double> out) override {
    guarded([&] {
      const std::string& verb = opt_.verb;
      const bool one_sided = verb == "read" || verb == "fetch_add" || verb == "cmp_swap";
      if (one_sided) {
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
      sync(one_sided && !initiator);
    });
  }

  void stream(bool sender, std::size_t size, int warmup, std::span<double> window_ns) override {
    guarded([&] { windows(sender, /*both=*/false, size, warmup, window_ns); });
  }

  void bistream(std::size_t size, int warmup, std::span<double> window_ns) override {
    guarded([&] { windows(true, /*both=*/true, size, warmup, window_ns); });
  }

  [[nodiscard]] int peer() const noexcept override { return peer_; }

 private:
  [[noreturn]] void completion_error(std::size_t q, const ibv_wc& wc) const {
    throw core::Error(core::ExitCode::kFailure,
                      fmt::format("completion error on {} (verb {}, peer rank {}, remote qpn 0x{:x}): {} (status {}, vendor error 0x{:x})",
                                  eps_[q]->where(), opt_.verb, peer_, state_[q].remote.qpn, ibv_wc_status_str(wc.status),
                                  static_cast<int>(wc.status), wc.vendor_err));
  }

  // Why a wait gave up: the pair's deadline if it has passed, else the silence limit.
  [[noreturn]] void timeout(const std::string& what) const {
    const bool pair = deadline_ns_ != 0 && core::now_ns() > deadline_ns_;
    throw core::Timeout(fmt::format("timed out waiting for {} (verb {}) on {} (peer rank {}, remote qpn 0x{:x}): {}", what,
                                    opt_.verb, eps_[0]->where(), peer_, state_[0].remote.qpn,
                                    pair ? std::string("the pair's deadline (--pair-timeout) passed")
                                         : fmt::format("peer silent for {:.1f} s (--timeout)", opt_.timeout_s)));
  }

  // Called by a polling wait every 4096 empty polls: arms the silence limit on the first call (so
  // a wait that completes at once reads no clock: a clock read is ~1 us on some virtual
  // clocksources), and gives up past it or past the pair's deadline.
  void check_wait(std::int64_t& silent_until, const char* what) {
    const std::int64_t now = core::now_ns();
    if (silent_until == 0) silent_until = now + timeout_ns();
    if (now > silent_until || (deadline_ns_ != 0 && now > deadline_ns_)) timeout(what);
  }

  // A link that failed is unusable (QPs in error, MPI messages in flight); a failing rank tells
  // its peer (see sync()) so the peer does not wait for its own timeout.
  template <class F>
  void guarded(F&& body) {
    if (failed_) {
      throw core::Error(core::ExitCode::kFailure, fmt::format("verbs link with rank {} already failed", peer_));
    }
    try {
      body();
    } catch (const core::Error&) {
      failed_ = true;
      notify_failure();
      throw;
    }
  }

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
  [[nodiscard]] runtime::Deadline limits(bool passive = false) const {
    return {deadline_ns_, passive ? 0 : timeout_ns()};
  }

  // A small connect-time message over MPI under the link's limits. The buffer is heap-allocated
  // and leaked if the wait gives up: a send MPI could not cancel may still read it.
  void oob_send(const void* data, std::size_t bytes, const char* what) {
    auto buf = std::make_unique<std::uint8_t[]>(bytes);
    std::memcpy(buf.get(), data, bytes);
    try {
      comm_.send(buf.get(), bytes, peer_, tag_wire_, limits());
    } catch (const core::Timeout&) {
      (void)buf.release();
      timeout(what);
    }
  }
  void oob_recv(void* data, std::size_t bytes, const char* what) {
    auto buf = std::make_unique<std::uint8_t[]>(bytes);
    try {
      comm_.recv(buf.get(), bytes, peer_, tag_wire_, limits());
    } catch (const core::Timeout&) {
      (void)buf.release();
      timeout(what);
    }
    std::memcpy(data, buf.get(), bytes);
  }

  // Out-of-band exchange over MPI (qpn, psn, lid, gid, rkey, address): the lower rank sends first.
  void connect_oob(int mtu) {
    std::vector<verbs::WireInfo> mine, theirs(eps_.size());
    for (const auto& ep : eps_) mine.push_back(ep->local_info());
    const std::size_t bytes = sizeof(verbs::WireInfo) * eps_.size();
    const char* what = "the peer's connection data (qpn, psn, gid, rkey) over MPI";
    if (comm_.rank() < peer_) {
      oob_send(mine.data(), bytes, what);
      oob_recv(theirs.data(), bytes, what);
    } else {
      oob_recv(theirs.data(), bytes, what);
      oob_send(mine.data(), bytes, what);
    }
    for (std::size_t q = 0; q < eps_.size(); ++q) {
      state_[q].remote = theirs[q];
      eps_[q]->connect(theirs[q], mtu);
      // Receives can be posted only once the QP has left RESET (ibv_post_recv(3): EINVAL before).
      if (opt_.verb == "send") post_recvs(q, kRxDepth);
    }
  }

  // rdma_cm: the lower rank listens, the higher rank connects; only where the listener listens
  // goes over MPI.
  void connect_rdmacm(int mtu) {
    cm_.emplace(port_, fmt::format("peer rank {}", peer_), verbs::CmLimits{timeout_ns(), deadline_ns_},
                static_cast<std::uint32_t>(generation_));
    const auto on_rts = [&](std::size_t q) {
      if (opt_.verb == "send") post_recvs(q, kRxDepth);
    };
    const char* what = "where the peer listens for rdma_cm connections (over MPI)";
    std::vector<verbs::CmRemote> remote;
    if (comm_.rank() < peer_) {
      verbs::CmListenInfo info;
      try {
        info = cm_->listen(eps_.size());
      } catch (const core::Error&) {
        const verbs::CmListenInfo failed{};  // family 0: the peer fails at once
        try {
          oob_send(&failed, sizeof failed, what);
        } catch (const core::Error&) {
        }
        throw;
      }
      oob_send(&info, sizeof info, what);
      remote = cm_->accept(eps_, mtu, on_rts);
    } else {
      verbs::CmListenInfo info;
      oob_recv(&info, sizeof info, what);
      remote = cm_->connect(info, eps_, mtu, on_rts);
    }
    for (std::size_t q = 0; q < eps_.size(); ++q) {
      state_[q].remote.qpn = remote[q].qpn;
      state_[q].remote.rkey = remote[q].rkey;
      state_[q].remote.addr = remote[q].addr;
    }
  }

  // The end of every pattern (and of connecting): both ranks post a 1-byte receive and send at
  // once and wait without holding the CPU (on a host where the RDMA stack is software, a spinning
  // waiter takes the core the peer's work needs). `passive`: this rank only waited while the
  // peer's NIC worked, so it has no silence limit of its own (see the top of the file).
  void sync(bool passive) {
    *sync_in_ = 0;
    requests_.irecv(0, sync_in_.get(), 1, peer_, tag_sync_);
    requests_.isend(1, &kSyncOk, 1, peer_, tag_sync_);
    try {
      requests_.wait_quietly(0, 2, limits(passive), peer_, "end-of-pattern message");
    } catch (const core::Timeout&) {
      // The receive was cancelled, but MPI may still complete it into its byte: leave that byte
      // allocated for good.
      (void)sync_in_.release();
      sync_in_ = std::make_unique<std::uint8_t>(0);
      timeout(passive ? "the peer to finish (it does the work of this pattern)" : "the peer's end-of-pattern message");
    }
    if (*sync_in_ == kSyncFailed) {
      throw core::Error(core::ExitCode::kFailure,
                        fmt::format("peer rank {} gave up on the pair (verb {} on {}); its own error says why", peer_,
                                    opt_.verb, eps_[0]->where()));
    }
  }

  // Best effort, never throws: tells a peer waiting in sync() that this rank gave up.
  void notify_failure() noexcept {
    try {
      requests_.cancel(0, 2);
      requests_.isend(1, &kSyncFailed, 1, peer_, tag_sync_);
    } catch (...) {
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

  // Completions requested every cq_mod operations; never more than the send queue holds, or the
  // queue could fill with operations that no completion retires.
  [[nodiscard]] std::uint64_t cq_mod() const {
    return static_cast<std::uint64_t>(std::clamp(opt_.cq_mod, 1, std::max(1, opt_.tx_depth)));
  }

  // Posts a chain of n work requests on QP q; `signal_last` requests a completion for the last.
  void post_chain(std::size_t q, ibv_send_wr* wrs, int n, bool signal_last) {
    QpState& st = state_[q];
    const std::uint64_t mod = cq_mod();
    for (int i = 0; i < n; ++i) {
      wrs[i].next = i + 1 < n ? &wrs[i + 1] : nullptr;
      ++st.unsignaled;
      const bool sig = (signal_last && i == n - 1) || st.unsignaled >= mod;
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
    std::int64_t silent_until = 0;
    for (std::uint64_t spins = 0; outstanding() > 0; ++spins) {
      poll_once();
      if ((spins & 4095) == 4095) check_wait(silent_until, "send completions");
    }
  }

  void wait_recvs(std::uint64_t n) {
    const std::uint64_t target = recvs_consumed_ + n;
    std::int64_t silent_until = 0;
    for (std::uint64_t spins = 0; recvs_ < target; ++spins) {
      poll_once();
      if ((spins & 4095) == 4095) check_wait(silent_until, "a message from the peer");
    }
    recvs_consumed_ = target;
  }

  void wait_byte(volatile std::uint8_t* p, std::uint8_t tag) {
    std::int64_t silent_until = 0;
    for (std::uint64_t spins = 0; *p != tag; ++spins) {
      if ((spins & 4095) == 4095) {
        poll_once();  // surfaces a completion error instead of spinning until the deadline
        check_wait(silent_until, "the peer's RDMA write");
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
      sync(true);
      return;
    }
    ibv_send_wr wrs[kMaxPostList];
    ibv_sge sges[kMaxPostList];
    for (int i = 0; i < total; ++i) {
      const std::int64_t t0 = core::now_ns();
      if (post) {
        // QP q carries operations q, q + nq, ...: its share of the window.
        std::vector<int>& left = left_;
        for (std::size_t q = 0; q < nq; ++q) left[q] = kWindow / static_cast<int>(nq) + (static_cast<int>(q) < kWindow % static_cast<int>(nq) ? 1 : 0);
        for (bool more = true; more;) {
          more = false;
          for (std::size_t q = 0; q < nq; ++q) {
            if (left[q] == 0) continue;
            const int n = std::min(list, left[q]);
            std::int64_t silent_until = 0;
            for (std::uint64_t spins = 0; state_[q].outstanding + static_cast<std::uint64_t>(n) > depth; ++spins) {
              poll_once();
              if ((spins & 4095) == 4095) check_wait(silent_until, "send queue space");
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
    sync(false);
  }

  const runtime::Comm& comm_;
  int peer_;
  std::size_t max_;
  Options opt_;
  int generation_;
  int tag_wire_, tag_sync_;
  verbs::Port& port_;
  std::unique_ptr<std::uint8_t> sync_in_;  // declared first: requests_ cancels before it goes
  runtime::Requests requests_;              // end-of-pattern messages: slot 0 receive, slot 1 send
  bool failed_ = false;
  // Declared before the endpoints: the QPs go before the cm ids that connected them.
  std::optional<verbs::CmConnection> cm_;
  std::vector<std::unique_ptr<verbs::Endpoint>> eps_;
  std::vector<QpState> state_;
  std::vector<int> left_;  // windows(): operations of the window each QP has still to post
  std::uint64_t recvs_ = 0, recvs_consumed_ = 0;
  unsigned tag_ = 0;
};

}  // namespace

std::unique_ptr<Link> make_verbs_link(const runtime::Comm& comm, verbs::Port& port, int peer, std::size_t max_size,
                                      const Options& opt) {
  return std::make_unique<VerbsLink>(comm, port, peer, max_size, opt);
}

}  // namespace fabscope::transport
