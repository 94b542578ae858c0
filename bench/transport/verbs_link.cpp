// The verbs transport: RC queue pairs through libibverbs, measured the way perftest measures.
//   write ping-pong: each side RDMA-WRITEs `size` bytes into the peer's receive area and polls the
//     last byte of its own area for the iteration's tag (as ib_write_lat). Sample = round trip / 2.
//   send ping-pong: SEND / pre-posted RECV each way. Sample = round trip / 2.
//   read, fetch_add, cmp_swap: the initiator's operation completes a round trip by itself; the
//     sample is the whole operation (what ib_read_lat / ib_atomic_lat report), not halved.
//   stream: windows of kWindow operations (write, send or read), up to tx_depth in flight; the
//     window ends when all its completions are in (RC completions mean the peer's NIC has the data).
//   bistream: both sides run windows at once.
// Memory: one registered buffer per endpoint: [0, max) send area, [max, 2max) receive area,
// then 8 bytes for atomics. Every poll loop has a deadline: a silent peer becomes an error, not a
// hang.
#include <fmt/format.h>

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

class VerbsLink final : public Link {
 public:
  VerbsLink(const runtime::Comm& comm, int peer, std::size_t max_size, const Options& opt)
      : comm_(comm), peer_(peer), max_(max_size), opt_(opt), port_(shared_port(opt, comm.local_rank())),
        ep_(port_, 2 * max_size + 64, opt.tx_depth, kRxDepth,
            opt.inline_size >= 0 ? static_cast<std::uint32_t>(opt.inline_size) : kDefaultInline, opt.inline_size < 0) {
    // Out-of-band exchange over MPI: the lower rank sends first.
    verbs::WireInfo mine = ep_.local_info();
    if (comm_.rank() < peer_) {
      comm_.send(&mine, sizeof mine, peer_, kTagWire);
      comm_.recv(&remote_, sizeof remote_, peer_, kTagWire);
    } else {
      comm_.recv(&remote_, sizeof remote_, peer_, kTagWire);
      comm_.send(&mine, sizeof mine, peer_, kTagWire);
    }
    ep_.connect(remote_, mtu_enum(opt.mtu));
    // Receives can be posted only once the QP has left RESET (ibv_post_recv(3): EINVAL before).
    if (opt.verb == "send") post_recvs(kRxDepth);
    sync();  // both QPs are in RTS, receives posted, before anyone sends
  }

  void pingpong(bool initiator, std::size_t size, int warmup, std::span<double> out) override {
    const int total = warmup + static_cast<int>(out.size());
    const std::string& verb = opt_.verb;
    if (verb == "read" || verb == "fetch_add" || verb == "cmp_swap") {
      if (initiator) {
        for (int i = 0; i < total; ++i) {
          const std::int64_t t0 = core::now_ns();
          post_one_sided(verb, size);
          wait_sends();
          const std::int64_t t1 = core::now_ns();
          if (i >= warmup) out[static_cast<std::size_t>(i - warmup)] = static_cast<double>(t1 - t0);
        }
      }
      sync();
      return;
    }
    if (verb == "send") {
      for (int i = 0; i < total; ++i) {
        const std::int64_t t0 = core::now_ns();
        if (initiator) {
          post_send(IBV_WR_SEND, size);
          wait_recvs(1);
        } else {
          wait_recvs(1);
          post_send(IBV_WR_SEND, size);
        }
        wait_sends();
        const std::int64_t t1 = core::now_ns();
        if (initiator && i >= warmup) out[static_cast<std::size_t>(i - warmup)] = static_cast<double>(t1 - t0) / 2.0;
      }
      sync();
      return;
    }
    // write: poll the last byte of the receive area for this iteration's tag.
    volatile std::uint8_t* last = ep_.data() + max_ + size - 1;
    std::uint8_t* send_last = ep_.data() + size - 1;
    for (int i = 0; i < total; ++i) {
      const auto tag = static_cast<std::uint8_t>(++tag_ % 255 + 1);
      const std::int64_t t0 = core::now_ns();
      if (initiator) {
        *send_last = tag;
        post_send(IBV_WR_RDMA_WRITE, size);
        wait_byte(last, tag);
      } else {
        wait_byte(last, tag);
        *send_last = tag;
        post_send(IBV_WR_RDMA_WRITE, size);
      }
      wait_sends();
      const std::int64_t t1 = core::now_ns();
      if (initiator && i >= warmup) out[static_cast<std::size_t>(i - warmup)] = static_cast<double>(t1 - t0) / 2.0;
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
  [[noreturn]] void completion_error(const ibv_wc& wc) const {
    throw core::Error(core::ExitCode::kFailure,
                      fmt::format("completion error on {} (peer rank {}, remote qpn 0x{:x}): {} (status {}, vendor error 0x{:x})",
                                  ep_.where(), peer_, remote_.qpn, ibv_wc_status_str(wc.status),
                                  static_cast<int>(wc.status), wc.vendor_err));
  }

  [[noreturn]] void timeout(const char* what) const {
    throw core::Timeout(fmt::format("timed out after {:.0f} s waiting for {} on {} (peer rank {}, remote qpn 0x{:x})",
                                  opt_.timeout_s, what, ep_.where(), peer_, remote_.qpn));
  }

  [[nodiscard]] std::int64_t deadline() const {
    return core::now_ns() + static_cast<std::int64_t>(opt_.timeout_s * 1e9);
  }

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

  void post_recvs(int n) {
    for (int i = 0; i < n; ++i) {
      ibv_sge sge{reinterpret_cast<std::uintptr_t>(ep_.data() + max_), static_cast<std::uint32_t>(max_), ep_.lkey()};
      ibv_recv_wr wr{};
      wr.wr_id = 2;
      wr.sg_list = &sge;
      wr.num_sge = 1;
      ibv_recv_wr* bad = nullptr;
      if (const int rc = ibv_post_recv(ep_.qp(), &wr, &bad); rc != 0) verbs::fail("ibv_post_recv", ep_.where(), rc);
    }
  }

  void post_send(ibv_wr_opcode opcode, std::size_t size) {
    ibv_sge sge{reinterpret_cast<std::uintptr_t>(ep_.data()), static_cast<std::uint32_t>(size), ep_.lkey()};
    ibv_send_wr wr{};
    wr.wr_id = 1;
    wr.sg_list = &sge;
    wr.num_sge = 1;
    wr.opcode = opcode;
    wr.send_flags = IBV_SEND_SIGNALED;
    if (size <= ep_.inline_bytes()) wr.send_flags |= IBV_SEND_INLINE;
    if (opcode == IBV_WR_RDMA_WRITE) {
      wr.wr.rdma.remote_addr = remote_.addr + max_;
      wr.wr.rdma.rkey = remote_.rkey;
    }
    ibv_send_wr* bad = nullptr;
    if (const int rc = ibv_post_send(ep_.qp(), &wr, &bad); rc != 0) {
      verbs::fail("ibv_post_send", fmt::format("{} ({} bytes)", ep_.where(), size), rc);
    }
    ++outstanding_;
  }

  // RDMA READ of `size` bytes from the peer's send area, or an 8-byte atomic on its atomic word.
  void post_one_sided(const std::string& verb, std::size_t size) {
    const bool atomic = verb != "read";
    ibv_sge sge{reinterpret_cast<std::uintptr_t>(ep_.data() + max_), atomic ? 8u : static_cast<std::uint32_t>(size), ep_.lkey()};
    ibv_send_wr wr{};
    wr.wr_id = 1;
    wr.sg_list = &sge;
    wr.num_sge = 1;
    wr.send_flags = IBV_SEND_SIGNALED;
    if (atomic) {
      wr.opcode = verb == "fetch_add" ? IBV_WR_ATOMIC_FETCH_AND_ADD : IBV_WR_ATOMIC_CMP_AND_SWP;
      wr.wr.atomic.remote_addr = remote_.addr + 2 * max_ + 8 - (remote_.addr + 2 * max_) % 8;
      wr.wr.atomic.rkey = remote_.rkey;
      wr.wr.atomic.compare_add = 1;
      wr.wr.atomic.swap = 0;
    } else {
      wr.opcode = IBV_WR_RDMA_READ;
      wr.wr.rdma.remote_addr = remote_.addr;
      wr.wr.rdma.rkey = remote_.rkey;
    }
    ibv_send_wr* bad = nullptr;
    if (const int rc = ibv_post_send(ep_.qp(), &wr, &bad); rc != 0) {
      verbs::fail("ibv_post_send", fmt::format("{} ({} {} bytes)", ep_.where(), verb, size), rc);
    }
    ++outstanding_;
  }

  // Polls the CQ once; counts send and receive completions (receives are re-posted at once).
  void poll_once() {
    ibv_wc wc[16];
    const int n = ibv_poll_cq(ep_.cq(), 16, wc);
    if (n < 0) verbs::fail("ibv_poll_cq", ep_.where(), EIO);
    for (int i = 0; i < n; ++i) {
      if (wc[i].status != IBV_WC_SUCCESS) completion_error(wc[i]);
      if (wc[i].opcode & IBV_WC_RECV) {
        ++recvs_;
        post_recvs(1);
      } else {
        --outstanding_;
      }
    }
  }

  // Until every posted operation has completed (completions reaped while waiting for something
  // else count too).
  void wait_sends() {
    const std::int64_t end = deadline();
    for (std::uint64_t spins = 0; outstanding_ > 0; ++spins) {
      poll_once();
      if ((spins & 4095) == 4095 && core::now_ns() > end) timeout("send completions");
    }
  }

  void wait_recvs(std::uint64_t n) {
    const std::uint64_t target = recvs_consumed_ + n;
    const std::int64_t end = deadline();
    for (std::uint64_t spins = 0; recvs_ < target; ++spins) {
      poll_once();
      if ((spins & 4095) == 4095 && core::now_ns() > end) timeout("a message from the peer");
    }
    recvs_consumed_ = target;
  }

  void wait_byte(volatile std::uint8_t* p, std::uint8_t tag) {
    const std::int64_t end = deadline();
    for (std::uint64_t spins = 0; *p != tag; ++spins) {
      if ((spins & 4095) == 4095) {
        poll_once();  // surfaces a completion error instead of spinning until the deadline
        if (core::now_ns() > end) timeout("the peer's RDMA write");
      }
    }
    std::atomic_thread_fence(std::memory_order_acquire);
  }

  // Windows of kWindow operations. `post`: this side posts (and times); `both`: the peer posts too.
  void windows(bool post, bool both, std::size_t size, int warmup, std::span<double> window_ns) {
    const std::string& verb = opt_.verb;
    const bool sends = verb == "send";
    const bool one_sided_read = verb == "read";
    const int total = warmup + static_cast<int>(window_ns.size());
    const auto depth = static_cast<std::uint64_t>(std::max(1, opt_.tx_depth));
    if (!post && !sends) {  // the peer's NIC does everything: wait without spinning
      sync();
      return;
    }
    for (int i = 0; i < total; ++i) {
      const std::int64_t t0 = core::now_ns();
      if (post) {
        for (int k = 0; k < kWindow; ++k) {
          while (outstanding_ >= depth) poll_once();
          if (one_sided_read) post_one_sided("read", size);
          else post_send(sends ? IBV_WR_SEND : IBV_WR_RDMA_WRITE, size);
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
  verbs::Endpoint ep_;
  verbs::WireInfo remote_{};
  std::uint64_t outstanding_ = 0, recvs_ = 0, recvs_consumed_ = 0;
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
