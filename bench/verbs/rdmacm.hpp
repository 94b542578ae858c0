// RC connections through librdmacm (rdma_cm(7)) for QPs fabscope creates itself (Endpoint).
//
// rdma_cm resolves the peer's IP address and route, carries the CM handshake (REQ, REP, RTU) with
// fabscope's private data (rkey and buffer address of each QP), and computes the attributes of
// every QP transition (rdma_init_qp_attr(3)). The QPs are not attached to the cm ids:
// rdma_connect(3) and rdma_accept(3) take their qp_num, and the active side completes with
// rdma_establish(3) once its QP is in RTS. The same Endpoint (PD, MR, CQ, QP) therefore serves both
// connection methods and the timed loops never know which one connected it.
//
// Roles: the passive side binds to its port's IP address on an ephemeral TCP-space port and
// listens; the caller tells the active side where (CmListenInfo, over MPI). The active side
// resolves that address and route and connects one cm id per QP, one QP at a time.
//
// Destroy order (rdma_destroy_id(3), rdma_destroy_event_channel(3)): the caller's QPs first (the
// owner declares its CmConnection before its Endpoints), then every cm id, then the channel;
// every event is acked before its id goes.
#pragma once

#include <netinet/in.h>
#include <rdma/rdma_cma.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "verbs/verbs.hpp"

namespace fabscope::verbs {

struct EventChannelDeleter {
  void operator()(rdma_event_channel* ch) const noexcept;
};
struct CmIdDeleter {
  void operator()(rdma_cm_id* id) const noexcept;  // logs a failed rdma_destroy_id, never throws
};
struct CmEventDeleter {
  void operator()(rdma_cm_event* ev) const noexcept;  // rdma_ack_cm_event
};
using EventChannelPtr = std::unique_ptr<rdma_event_channel, EventChannelDeleter>;
using CmIdPtr = std::unique_ptr<rdma_cm_id, CmIdDeleter>;
using CmEventPtr = std::unique_ptr<rdma_cm_event, CmEventDeleter>;

// An IPv4 or IPv6 socket address as rdma_cm takes it.
struct SockAddr {
  sockaddr_storage storage{};
  [[nodiscard]] sockaddr* get() noexcept { return reinterpret_cast<sockaddr*>(&storage); }
  [[nodiscard]] const sockaddr* get() const noexcept {
    return reinterpret_cast<const sockaddr*>(&storage);
  }
  [[nodiscard]] int family() const noexcept { return storage.ss_family; }
  [[nodiscard]] std::uint16_t port() const noexcept;  // host order
  void set_port(std::uint16_t port) noexcept;
  [[nodiscard]] std::string str() const;  // "198.18.0.1", "198.18.0.1:40123", "[fe80::1%3]:40123"
};

// The IP address rdma_cm uses for `port`: the IPv4 address inside its RoCE GID (IPv4-mapped),
// else an address of the port's network interface (RoCE: the GID's netdev; InfiniBand: the IPoIB
// interface of the port), IPv4 first. Throws core::UsageError naming the device, the interface and
// the fix when there is none. `sysfs` is the root of the device tree (tests point it elsewhere).
[[nodiscard]] SockAddr port_address(const Port& port,
                                    const std::string& sysfs = "/sys/class/infiniband");

// The network interface behind `port` (empty if sysfs does not say).
[[nodiscard]] std::string port_netdev(const Port& port,
                                      const std::string& sysfs = "/sys/class/infiniband");

// Everything --cm rdmacm needs on this rank, checked before any benchmark runs: the rdma_cm device
// (rdma_ucm module; core::Unsupported, exit 77, without it) and the port's IP address (UsageError).
void check_rdmacm(const Port& port);

// Where a passive side listens: sent to the active side over the out-of-band channel. Plain bytes;
// family 0 means "the passive side failed to listen" (so the peer fails at once instead of
// waiting for its timeout).
struct CmListenInfo {
  std::uint16_t family = 0;  // AF_INET or AF_INET6
  std::uint16_t port = 0;    // host order
  std::uint32_t reserved = 0;
  std::uint8_t addr[16] = {};
};

// What a QP learns about its peer QP from the handshake.
struct CmRemote {
  std::uint32_t qpn = 0, rkey = 0;
  std::uint64_t addr = 0;
};

// Every wait of a connection honours both: an event must come within `silence_ns` of the call that
// waits for it, and nothing waits past the absolute `deadline_ns` (core::now_ns() clock; 0 = none).
struct CmLimits {
  std::int64_t silence_ns = 0;
  std::int64_t deadline_ns = 0;
};

// The rdma_cm side of one link: an event channel, a listening id (passive side) and one connected
// id per QP. `peer` names the other side in messages ("peer rank 3"); `generation` must be the same
// on both sides (it is checked in the private data, so a request meant for an earlier link between
// the same ranks is rejected instead of accepted).
class CmConnection {
 public:
  CmConnection(const Port& port, std::string peer, CmLimits limits, std::uint32_t generation);
  CmConnection(const CmConnection&) = delete;
  CmConnection& operator=(const CmConnection&) = delete;
  CmConnection(CmConnection&&) = default;
  CmConnection& operator=(CmConnection&&) = default;
  ~CmConnection() = default;

  // Called for QP i once it is in RTS and before the peer may send (post receives here).
  using OnRts = std::function<void(std::size_t)>;

  // Passive side: binds to the port's address on an ephemeral port and listens for `eps.size()`
  // connections; returns what the active side needs.
  [[nodiscard]] CmListenInfo listen(std::size_t backlog);
  // Passive side: accepts one connection per endpoint (the request names its QP index) and waits
  // until each is established.
  [[nodiscard]] std::vector<CmRemote> accept(std::span<const std::unique_ptr<Endpoint>> eps,
                                             int forced_mtu, const OnRts& on_rts);
  // Active side: connects endpoint i to the listener's QP i, one after the other.
  [[nodiscard]] std::vector<CmRemote> connect(const CmListenInfo& to,
                                              std::span<const std::unique_ptr<Endpoint>> eps,
                                              int forced_mtu, const OnRts& on_rts);

 private:
  [[nodiscard]] CmEventPtr next_event(const std::string& waiting_for);
  [[noreturn]] void unexpected(const rdma_cm_event& ev, const std::string& waiting_for) const;
  void check_device(const rdma_cm_id* id, const char* after) const;
  void bring_up(Endpoint& ep, rdma_cm_id* id, int forced_mtu, int resp_res, int init_depth) const;
  [[nodiscard]] std::string where()
      const;  // "rxe0:1 (198.18.0.1 -> 198.18.0.2:40123), peer rank 1"

  const Port* port_;
  std::string peer_;
  CmLimits limits_;
  std::uint32_t generation_;
  SockAddr local_;
  std::string remote_;  // the listener's address once known
  // Creation order = declaration order, so the ids go before the channel they report to.
  EventChannelPtr channel_;
  CmIdPtr listen_;
  std::vector<CmIdPtr> ids_;
};

}  // namespace fabscope::verbs
