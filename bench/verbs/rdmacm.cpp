#include "verbs/rdmacm.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/files.hpp"
#include "core/log.hpp"

namespace fabscope::verbs {
namespace {

// fabscope's private data in the CM REQ (active -> passive) and REP (passive -> active). A REQ
// carries at most 56 bytes of user data over IB/RoCE (rdma_connect(3)), a REP 196.
struct PrivateData {
  std::uint32_t magic = 0;
  std::uint32_t generation = 0;
  std::uint32_t index = 0;  // which QP of the link
  std::uint32_t rkey = 0;
  std::uint64_t addr = 0;
};
static_assert(sizeof(PrivateData) <= 56);
constexpr std::uint32_t kMagic = 0x4d435346;  // "FSCM"

struct IfAddrsDeleter {
  void operator()(ifaddrs* p) const noexcept { freeifaddrs(p); }
};

// The hint for an event that ends a connection attempt.
std::string event_hint(rdma_cm_event_type type, int status) {
  switch (type) {
    case RDMA_CM_EVENT_ADDR_ERROR:
      return "check that the peer's address is reachable from this port's interface (ip route get "
             "ADDRESS; ping)";
    case RDMA_CM_EVENT_ROUTE_ERROR:
      return "no route to the peer over this port; check the interface's routes";
    case RDMA_CM_EVENT_UNREACHABLE:
      return "the peer did not answer the CM handshake; check the link and that RoCE traffic (UDP "
             "4791) passes";
    case RDMA_CM_EVENT_REJECTED:
      // IB CM reject reasons (IBTA 12.6.7.2): 8 = invalid service ID, i.e. nobody listens there.
      return status == 8
                 ? "nobody listens on that address and port (IB CM reason 8: invalid service ID)"
                 : "the peer rejected the connection";
    case RDMA_CM_EVENT_CONNECT_ERROR:
      return "the connection failed during the handshake";
    case RDMA_CM_EVENT_DISCONNECTED:
      return "the peer disconnected (it gave up on this pair)";
    case RDMA_CM_EVENT_DEVICE_REMOVAL:
      return "the RDMA device went away";
    case RDMA_CM_EVENT_ADDR_CHANGE:
      return "the IP address moved to another device";
    default:
      return "";
  }
}

std::string status_text(rdma_cm_event_type type, int status) {
  if (status == 0) return "status 0";
  // REJECTED carries an IB CM reject reason, every other event a negative errno.
  if (type == RDMA_CM_EVENT_REJECTED) return fmt::format("reject reason {}", status);
  return fmt::format("status {}: {}", status, std::strerror(status < 0 ? -status : status));
}

constexpr int kAccess = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ |
                        IBV_ACCESS_REMOTE_ATOMIC;

}  // namespace

void EventChannelDeleter::operator()(rdma_event_channel* ch) const noexcept {
  rdma_destroy_event_channel(ch);
}

void CmIdDeleter::operator()(rdma_cm_id* id) const noexcept {
  if (id != nullptr && rdma_destroy_id(id) != 0)
    core::log::warn("rdma_destroy_id failed: {}", std::strerror(errno));
}

void CmEventDeleter::operator()(rdma_cm_event* ev) const noexcept {
  if (ev != nullptr && rdma_ack_cm_event(ev) != 0)
    core::log::warn("rdma_ack_cm_event failed: {}", std::strerror(errno));
}

std::uint16_t SockAddr::port() const noexcept {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  if (family() == AF_INET6)
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
  return 0;
}

void SockAddr::set_port(std::uint16_t port) noexcept {
  if (family() == AF_INET) reinterpret_cast<sockaddr_in*>(&storage)->sin_port = htons(port);
  if (family() == AF_INET6) reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port = htons(port);
}

std::string SockAddr::str() const {
  char text[INET6_ADDRSTRLEN] = {};
  std::string out;
  if (family() == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr, text,
              sizeof text);
    out = text;
  } else if (family() == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&storage);
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    out = in6->sin6_scope_id != 0 ? fmt::format("[{}%{}]", text, in6->sin6_scope_id)
                                  : fmt::format("[{}]", text);
  } else {
    return "(no address)";
  }
  return port() != 0 ? fmt::format("{}:{}", out, port()) : out;
}

std::string port_netdev(const Port& port, const std::string& sysfs) {
  namespace fs = std::filesystem;
  const fs::path dev = fs::path(sysfs) / port.device;
  if (port.is_roce()) {
    // The GID table entry names its netdev (sysfs-class-infiniband: gid_attrs/ndevs/<index>).
    return core::read_first_line(dev / "ports" / std::to_string(port.port) / "gid_attrs" / "ndevs" /
                                 std::to_string(std::max(port.gid_index, 0)));
  }
  // InfiniBand: the IPoIB interfaces of the HCA; dev_port (or, on old kernels, dev_id) says the
  // port.
  std::error_code ec;
  std::string only;
  int count = 0;
  for (const auto& e : fs::directory_iterator(dev / "device" / "net", ec)) {
    std::string name = e.path().filename().string();
    ++count;
    only = name;
    std::string dev_port = core::read_first_line(e.path() / "dev_port");
    if (dev_port.empty()) dev_port = core::read_first_line(e.path() / "dev_id");
    try {
      if (!dev_port.empty() && std::stoi(dev_port, nullptr, 0) == port.port - 1) return name;
    } catch (const std::exception&) {
    }
  }
  return count == 1 ? only : "";
}

SockAddr port_address(const Port& port, const std::string& sysfs) {
  SockAddr a;
  if (port.gid_index >= 0 && is_ipv4_mapped(port.gid)) {
    auto* in = reinterpret_cast<sockaddr_in*>(&a.storage);
    in->sin_family = AF_INET;
    std::memcpy(&in->sin_addr, port.gid.raw + 12, 4);
    return a;
  }
  const std::string netdev = port_netdev(port, sysfs);
  if (netdev.empty()) {
    throw core::UsageError(
        fmt::format("--cm rdmacm: {} has no network interface in sysfs, and rdma_cm connects by IP "
                    "address; use --cm oob",
                    port.where()));
  }
  ifaddrs* raw = nullptr;
  if (getifaddrs(&raw) != 0) fail("getifaddrs", port.where(), errno);
  const std::unique_ptr<ifaddrs, IfAddrsDeleter> list(raw);
  // Preference: IPv4, then the IPv6 address of the GID, then a global IPv6, then link-local.
  int best = 0;
  for (const ifaddrs* i = list.get(); i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || netdev != i->ifa_name) continue;
    int rank = 0;
    if (i->ifa_addr->sa_family == AF_INET) {
      rank = 4;
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
      if (port.gid_index >= 0 && std::memcmp(&in6->sin6_addr, port.gid.raw, 16) == 0)
        rank = 3;
      else
        rank = IN6_IS_ADDR_LINKLOCAL(&in6->sin6_addr) ? 1 : 2;
    }
    if (rank <= best) continue;
    best = rank;
    a = {};
    std::memcpy(&a.storage, i->ifa_addr,
                i->ifa_addr->sa_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6));
    a.set_port(0);
    if (a.family() == AF_INET6) {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
      in6->sin6_scope_id =
          IN6_IS_ADDR_LINKLOCAL(&in6->sin6_addr) ? if_nametoindex(netdev.c_str()) : 0;
    }
  }
  if (best == 0) {
    throw core::UsageError(
        fmt::format("--cm rdmacm: {} (netdev {}) has no IP address, and rdma_cm connects by IP "
                    "address; give {} one (e.g. ip addr add 198.18.0.1/24 dev {}) or use --cm oob",
                    port.where(), netdev, netdev, netdev));
  }
  return a;
}

void check_rdmacm(const Port& port) {
  (void)port_address(port);
  const EventChannelPtr ch(rdma_create_event_channel());
  if (!ch) {
    const int err = errno;
    throw core::Unsupported(fmt::format(
        "--cm rdmacm: rdma_create_event_channel for {}: {} (errno {}): librdmacm cannot "
        "reach the kernel's RDMA connection manager (/dev/infiniband/rdma_cm); load "
        "rdma_ucm (modprobe rdma_ucm) or use --cm oob",
        port.where(), std::strerror(err), err));
  }
}

CmConnection::CmConnection(const Port& port, std::string peer, CmLimits limits,
                           std::uint32_t generation)
    : port_(&port),
      peer_(std::move(peer)),
      limits_(limits),
      generation_(generation),
      local_(port_address(port)) {
  channel_.reset(rdma_create_event_channel());
  if (!channel_)
    fail("rdma_create_event_channel", where(), errno,
         "load rdma_ucm (modprobe rdma_ucm) or use --cm oob");
  // Non-blocking: every wait polls the fd with a deadline (rdma_get_cm_event(3) blocks otherwise).
  const int flags = fcntl(channel_->fd, F_GETFL);
  if (flags < 0 || fcntl(channel_->fd, F_SETFL, flags | O_NONBLOCK) < 0)
    fail("fcntl(O_NONBLOCK) on the rdma_cm channel", where(), errno);
}

std::string CmConnection::where() const {
  if (remote_.empty())
    return fmt::format("{} ({}{}), {}", port_->where(), listen_ ? "listening on " : "",
                       local_.str(), peer_);
  return fmt::format("{} ({} {} {}), {}", port_->where(), local_.str(), listen_ ? "<-" : "->",
                     remote_, peer_);
}

CmEventPtr CmConnection::next_event(const std::string& waiting_for) {
  const std::int64_t start = core::now_ns();
  std::int64_t until = limits_.silence_ns > 0 ? start + limits_.silence_ns : 0;
  bool pair_deadline = false;
  if (limits_.deadline_ns != 0 && (until == 0 || limits_.deadline_ns < until)) {
    until = limits_.deadline_ns;
    pair_deadline = true;
  }
  for (;;) {
    rdma_cm_event* ev = nullptr;
    if (rdma_get_cm_event(channel_.get(), &ev) == 0) return CmEventPtr(ev);
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
      fail("rdma_get_cm_event", where(), errno);
    int wait_ms = -1;
    if (until != 0) {
      const std::int64_t left = until - core::now_ns();
      if (left <= 0) {
        throw core::Timeout(fmt::format(
            "rdma_cm: timed out waiting for {} on {}: {}", waiting_for, where(),
            pair_deadline ? std::string("the pair's deadline (--pair-timeout) passed")
                          : fmt::format("no event for {:.1f} s (--timeout)",
                                        static_cast<double>(limits_.silence_ns) / 1e9)));
      }
      wait_ms = static_cast<int>(std::min<std::int64_t>((left + 999'999) / 1'000'000, INT_MAX));
    }
    pollfd p{channel_->fd, POLLIN, 0};
    if (::poll(&p, 1, wait_ms) < 0 && errno != EINTR)
      fail("poll on the rdma_cm channel", where(), errno);
  }
}

void CmConnection::unexpected(const rdma_cm_event& ev, const std::string& waiting_for) const {
  const std::string hint = event_hint(ev.event, ev.status);
  throw core::Error(core::ExitCode::kFailure,
                    fmt::format("rdma_cm: {} ({}) while waiting for {} on {}{}",
                                rdma_event_str(ev.event), status_text(ev.event, ev.status),
                                waiting_for, where(), hint.empty() ? "" : "; " + hint));
}

void CmConnection::check_device(const rdma_cm_id* id, const char* after) const {
  if (id->verbs == nullptr) {
    throw core::Error(
        core::ExitCode::kFailure,
        fmt::format(
            "rdma_cm: after {} on {} the id has no RDMA device: the address is not on an RDMA "
            "interface",
            after, where()));
  }
  const std::string name = ibv_get_device_name(id->verbs->device);
  if (name != port_->device || id->port_num != port_->port) {
    throw core::UsageError(fmt::format(
        "--cm rdmacm: {} goes through {}:{}, not {} (the port this rank measures); pick "
        "that --device, or give this port's interface its own address",
        local_.str(), name, id->port_num, port_->where()));
  }
}

// RESET -> INIT -> RTR -> RTS with the attributes rdma_cm computed for this connection (address
// vector, PSNs, path MTU, destination QPN, rd_atomic), and fabscope's own choices where the oob
// path makes them too (access flags, retry, RNR and ack timers: verbs::kQp*), so both methods
// measure the same QP. resp_res / init_depth < 0: keep what rdma_cm negotiated.
void CmConnection::bring_up(Endpoint& ep, rdma_cm_id* id, int forced_mtu, int resp_res,
                            int init_depth) const {
  for (const ibv_qp_state state : {IBV_QPS_INIT, IBV_QPS_RTR, IBV_QPS_RTS}) {
    const char* name = state == IBV_QPS_INIT ? "INIT" : state == IBV_QPS_RTR ? "RTR" : "RTS";
    ibv_qp_attr a{};
    a.qp_state = state;
    int mask = 0;
    if (rdma_init_qp_attr(id, &a, &mask) != 0)
      fail(fmt::format("rdma_init_qp_attr({})", name), where(), errno);
    if (state == IBV_QPS_INIT) {
      a.qp_access_flags = kAccess;
      mask |= IBV_QP_ACCESS_FLAGS;
    } else if (state == IBV_QPS_RTR) {
      // librdmacm masks attribute bits 21-23 off on InfiniBand ports (a kernel bug; cma.c,
      // ucma_modify_qp_rtr): do the same.
      if (!port_->is_roce()) mask &= ~0xe00000;
      if (forced_mtu > 0) a.path_mtu = static_cast<ibv_mtu>(forced_mtu);
      if (resp_res >= 0) a.max_dest_rd_atomic = static_cast<std::uint8_t>(resp_res);
      a.min_rnr_timer = kQpMinRnrTimer;
      mask |= IBV_QP_MIN_RNR_TIMER;
    } else {
      if (init_depth >= 0) a.max_rd_atomic = static_cast<std::uint8_t>(init_depth);
      a.timeout = kQpTimeout;
      a.retry_cnt = kQpRetryCount;
      a.rnr_retry = kQpRnrRetry;
      mask |= IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY;
    }
    if (const int rc = ibv_modify_qp(ep.qp(), &a, mask); rc != 0) {
      fail(fmt::format("ibv_modify_qp({}) with rdma_cm's attributes", name),
           fmt::format("{}, {}", ep.where(), where()), rc);
    }
  }
}

CmListenInfo CmConnection::listen(std::size_t backlog) {
  listen_.reset([&] {
    rdma_cm_id* id = nullptr;
    if (rdma_create_id(channel_.get(), &id, nullptr, RDMA_PS_TCP) != 0)
      fail("rdma_create_id", where(), errno);
    return id;
  }());
  SockAddr bind_to = local_;
  bind_to.set_port(0);  // ephemeral
  if (rdma_bind_addr(listen_.get(), bind_to.get()) != 0) {
    fail("rdma_bind_addr", where(), errno,
         "is the address still configured on the port's interface?");
  }
  check_device(listen_.get(), "rdma_bind_addr");
  if (rdma_listen(listen_.get(), static_cast<int>(std::max<std::size_t>(backlog, 1))) != 0)
    fail("rdma_listen", where(), errno);
  local_.set_port(ntohs(rdma_get_src_port(listen_.get())));
  CmListenInfo info;
  info.family = static_cast<std::uint16_t>(local_.family());
  info.port = local_.port();
  if (local_.family() == AF_INET) {
    std::memcpy(info.addr, &reinterpret_cast<const sockaddr_in*>(&local_.storage)->sin_addr, 4);
  } else {
    std::memcpy(info.addr, &reinterpret_cast<const sockaddr_in6*>(&local_.storage)->sin6_addr, 16);
  }
  return info;
}

std::vector<CmRemote> CmConnection::accept(std::span<const std::unique_ptr<Endpoint>> eps,
                                           int forced_mtu, const OnRts& on_rts) {
  ibv_device_attr dev{};
  if (const int rc = ibv_query_device(port_->ctx.get(), &dev); rc != 0)
    fail("ibv_query_device", where(), rc);
  std::vector<CmRemote> remote(eps.size());
  std::vector<bool> accepted(eps.size(), false);
  std::size_t established = 0;
  while (established < eps.size()) {
    const std::string waiting =
        fmt::format("connection {} of {} (RDMA_CM_EVENT_CONNECT_REQUEST / ESTABLISHED)",
                    established + 1, eps.size());
    CmEventPtr ev = next_event(waiting);
    if (ev->event == RDMA_CM_EVENT_ESTABLISHED) {
      const bool ours = std::any_of(ids_.begin(), ids_.end(),
                                    [&](const CmIdPtr& p) { return p.get() == ev->id; });
      if (!ours) unexpected(*ev, waiting);
      ++established;
      continue;
    }
    if (ev->event != RDMA_CM_EVENT_CONNECT_REQUEST) unexpected(*ev, waiting);
    // The request's id is new and ours to destroy; copy what the event carries, then ack it
    // (rdma_destroy_id(3) waits for the acks of its events).
    CmIdPtr conn(ev->id);
    const rdma_conn_param req = ev->param.conn;
    PrivateData pd{};
    const bool sized = req.private_data != nullptr && req.private_data_len >= sizeof pd;
    if (sized) std::memcpy(&pd, req.private_data, sizeof pd);
    ev.reset();
    SockAddr from;
    std::memcpy(&from.storage, rdma_get_peer_addr(conn.get()), sizeof(sockaddr_storage));
    remote_ = from.str();
    if (!sized || pd.magic != kMagic || pd.generation != generation_ || pd.index >= eps.size() ||
        accepted[pd.index]) {
      // Not for this link (an earlier link's late request, or another program): turn it away.
      core::log::warn(
          "rdma_cm: rejected a connection request on {} that is not this link's (magic 0x{:x}, "
          "generation {} vs {}, QP index {})",
          where(), pd.magic, pd.generation, generation_, pd.index);
      rdma_reject(conn.get(), nullptr, 0);
      continue;
    }
    const std::size_t q = pd.index;
    check_device(conn.get(), "a connection request");
    // The request's responder_resources / initiator_depth are seen from this side (rdma_cm(7)):
    // as many reads the peer may have outstanding here, and as many this side may issue.
    const int resp = std::min<int>(req.responder_resources, std::clamp(dev.max_qp_rd_atom, 0, 255));
    const int init =
        std::min<int>(req.initiator_depth, std::clamp(dev.max_qp_init_rd_atom, 0, 255));
    bring_up(*eps[q], conn.get(), forced_mtu, resp, init);
    if (on_rts) on_rts(q);
    const WireInfo mine = eps[q]->local_info();
    const PrivateData reply{kMagic, generation_, static_cast<std::uint32_t>(q), mine.rkey,
                            mine.addr};
    rdma_conn_param param{};
    param.private_data = &reply;
    param.private_data_len = sizeof reply;
    param.responder_resources = static_cast<std::uint8_t>(resp);
    param.initiator_depth = static_cast<std::uint8_t>(init);
    param.retry_count = kQpRetryCount;
    param.rnr_retry_count = kQpRnrRetry;
    param.qp_num = mine.qpn;
    if (rdma_accept(conn.get(), &param) != 0)
      fail("rdma_accept", fmt::format("{}, {}", eps[q]->where(), where()), errno);
    remote[q] = {req.qp_num, pd.rkey, pd.addr};
    accepted[q] = true;
    ids_.push_back(std::move(conn));
  }
  return remote;
}

std::vector<CmRemote> CmConnection::connect(const CmListenInfo& to,
                                            std::span<const std::unique_ptr<Endpoint>> eps,
                                            int forced_mtu, const OnRts& on_rts) {
  SockAddr dst;
  if (to.family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&dst.storage);
    in->sin_family = AF_INET;
    std::memcpy(&in->sin_addr, to.addr, 4);
  } else if (to.family == AF_INET6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&dst.storage);
    in6->sin6_family = AF_INET6;
    std::memcpy(&in6->sin6_addr, to.addr, 16);
    // A link-local peer is reached through this side's interface.
    if (IN6_IS_ADDR_LINKLOCAL(&in6->sin6_addr) && local_.family() == AF_INET6) {
      in6->sin6_scope_id = reinterpret_cast<const sockaddr_in6*>(&local_.storage)->sin6_scope_id;
    }
  } else {
    throw core::Error(
        core::ExitCode::kFailure,
        fmt::format("rdma_cm: {} could not listen for connections (its own error says why)",
                    peer_));
  }
  dst.set_port(to.port);
  remote_ = dst.str();
  std::vector<CmRemote> remote(eps.size());
  for (std::size_t q = 0; q < eps.size(); ++q) {
    rdma_cm_id* raw = nullptr;
    if (rdma_create_id(channel_.get(), &raw, nullptr, RDMA_PS_TCP) != 0)
      fail("rdma_create_id", where(), errno);
    CmIdPtr id(raw);
    // Address and route resolution give up on their own after timeout_ms (an ADDR_ERROR /
    // ROUTE_ERROR event); our own wait keeps its deadline either way.
    const int resolve_ms =
        static_cast<int>(std::clamp<std::int64_t>(limits_.silence_ns / 1'000'000, 100, 60'000));
    SockAddr src = local_;
    src.set_port(0);
    if (rdma_resolve_addr(id.get(), src.get(), dst.get(), resolve_ms) != 0) {
      fail("rdma_resolve_addr", where(), errno,
           "check the peer's address and this port's interface");
    }
    CmEventPtr ev = next_event("address resolution (RDMA_CM_EVENT_ADDR_RESOLVED)");
    if (ev->event != RDMA_CM_EVENT_ADDR_RESOLVED || ev->status != 0)
      unexpected(*ev, "address resolution");
    ev.reset();
    check_device(id.get(), "rdma_resolve_addr");
    if (rdma_resolve_route(id.get(), resolve_ms) != 0) fail("rdma_resolve_route", where(), errno);
    ev = next_event("route resolution (RDMA_CM_EVENT_ROUTE_RESOLVED)");
    if (ev->event != RDMA_CM_EVENT_ROUTE_RESOLVED || ev->status != 0)
      unexpected(*ev, "route resolution");
    ev.reset();

    const WireInfo mine = eps[q]->local_info();
    const PrivateData request{kMagic, generation_, static_cast<std::uint32_t>(q), mine.rkey,
                              mine.addr};
    rdma_conn_param param{};
    param.private_data = &request;
    param.private_data_len = sizeof request;
    param.responder_resources = RDMA_MAX_RESP_RES;  // the device's maximum (rdma_connect(3))
    param.initiator_depth = RDMA_MAX_INIT_DEPTH;
    param.retry_count = kQpRetryCount;
    param.rnr_retry_count = kQpRnrRetry;
    param.qp_num = mine.qpn;
    if (rdma_connect(id.get(), &param) != 0)
      fail("rdma_connect", fmt::format("{}, {}", eps[q]->where(), where()), errno);
    const std::string waiting = fmt::format(
        "the answer to connection {} of {} (RDMA_CM_EVENT_CONNECT_RESPONSE)", q + 1, eps.size());
    ev = next_event(waiting);
    // Without a QP on the id, librdmacm reports the REP as CONNECT_RESPONSE and leaves the QP
    // transitions and the RTU (rdma_establish) to us.
    if (ev->event != RDMA_CM_EVENT_CONNECT_RESPONSE || ev->status != 0) unexpected(*ev, waiting);
    const rdma_conn_param rep = ev->param.conn;
    PrivateData pd{};
    const bool sized = rep.private_data != nullptr && rep.private_data_len >= sizeof pd;
    if (sized) std::memcpy(&pd, rep.private_data, sizeof pd);
    ev.reset();
    if (!sized || pd.magic != kMagic || pd.generation != generation_ || pd.index != q) {
      throw core::Error(
          core::ExitCode::kFailure,
          fmt::format(
              "rdma_cm: the answer to connection {} on {} is not from this link (magic 0x{:x}, "
              "generation {} vs {}, QP index {})",
              q + 1, where(), pd.magic, pd.generation, generation_, pd.index));
    }
    bring_up(*eps[q], id.get(), forced_mtu, -1, -1);
    if (on_rts) on_rts(q);
    if (rdma_establish(id.get()) != 0)
      fail("rdma_establish", fmt::format("{}, {}", eps[q]->where(), where()), errno);
    remote[q] = {rep.qp_num, pd.rkey, pd.addr};
    ids_.push_back(std::move(id));
  }
  return remote;
}

}  // namespace fabscope::verbs
