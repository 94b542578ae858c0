// RAII over libibverbs: one move-only owner per verbs object, errors with the verb, the device and
// port, the qpn, sizes, strerror and a hint. Destroy order follows the verbs man pages: a QP and
// the MRs go before their PD and CQ, and everything before the device context (see Endpoint).
#pragma once

#include <infiniband/verbs.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/c_array.hpp"

namespace fabscope::verbs {

// "<verb> on DEV:PORT[ qpn 0x..]: <strerror> (errno N)[; hint]" as a core::Error (exit 1).
[[noreturn]] void fail(const std::string& verb, const std::string& where, int err,
                       const std::string& hint = "");

template <typename T, int (*Destroy)(T*)>
struct Destroyer {
  void operator()(T* p) const noexcept;
};
using ContextPtr = std::unique_ptr<ibv_context, Destroyer<ibv_context, ibv_close_device>>;
using PdPtr = std::unique_ptr<ibv_pd, Destroyer<ibv_pd, ibv_dealloc_pd>>;
using MrPtr = std::unique_ptr<ibv_mr, Destroyer<ibv_mr, ibv_dereg_mr>>;
using CqPtr = std::unique_ptr<ibv_cq, Destroyer<ibv_cq, ibv_destroy_cq>>;
using QpPtr = std::unique_ptr<ibv_qp, Destroyer<ibv_qp, ibv_destroy_qp>>;
using ChannelPtr = std::unique_ptr<ibv_comp_channel, Destroyer<ibv_comp_channel, ibv_destroy_comp_channel>>;

// The RDMA devices libibverbs sees, freed with ibv_free_device_list(3) (after which a device that
// was not opened must not be used).
using DeviceList = core::CArray<ibv_device*, ibv_free_device_list>;
// ibv_get_device_list(3); empty when there is no device or the call fails.
[[nodiscard]] DeviceList device_list();

// What the user asked for (typed; only apps/ reads the command line).
struct DeviceOptions {
  std::string device;                // NAME or NAME:PORT; empty: first active port
  std::vector<std::string> devices;  // local rank i uses devices[i % size] (rail-aligned runs)
  int gid_index = -1;                // -1: RoCE -> RoCEv2 IPv4-mapped GID, IB -> LID routing
  int mtu = 0;                       // 0: the smaller active MTU of the two ends; else 256..4096
};

// True for a GID that embeds an IPv4 address (::ffff:a.b.c.d, the RoCEv2 GID of an IPv4 address).
[[nodiscard]] bool is_ipv4_mapped(const ibv_gid& gid) noexcept;

// RC QP settings fabscope chooses whichever way the QP is connected (oob or rdma_cm): RNR NAK
// timer 12 (0.64 ms), local ACK timeout 14 (4.096 us * 2^14 = 67 ms), 7 retries, RNR retries
// without limit (IBTA 9.7.5.2.8: 7 = infinite). Addressing and PSNs come from the method.
inline constexpr std::uint8_t kQpMinRnrTimer = 12;
inline constexpr std::uint8_t kQpTimeout = 14;
inline constexpr std::uint8_t kQpRetryCount = 7;
inline constexpr std::uint8_t kQpRnrRetry = 7;

// An opened device port, ready for endpoints: its device context and the one protection domain
// every endpoint on it uses (declared after ctx, so it is freed first).
struct Port {
  ContextPtr ctx;
  PdPtr pd;
  std::string device;
  int port = 1;
  ibv_port_attr attr{};
  int gid_index = -1;  // -1: no GRH (InfiniBand LID routing)
  ibv_gid gid{};
  [[nodiscard]] std::string where() const { return device + ":" + std::to_string(port); }
  [[nodiscard]] bool is_roce() const { return attr.link_layer == IBV_LINK_LAYER_ETHERNET; }
};

// Opens the device and port for this rank. Throws core::Unsupported (exit 77) when the host has no
// RDMA device, core::UsageError (exit 2) for a wrong name, a port that is not active, or a bad GID
// index.
[[nodiscard]] Port open_port(const DeviceOptions& opt, int local_rank);

// The connection data a peer needs (exchanged out of band).
struct WireInfo {
  std::uint32_t qpn = 0, psn = 0, rkey = 0, mtu = 0;  // mtu: enum ibv_mtu
  std::uint16_t lid = 0;
  std::uint8_t gid[16] = {};
  std::uint64_t addr = 0;
};

// One RC QP with its CQ over one registered buffer. Members are declared in creation order so
// the destructor tears down qp, cq, mr, buffer in that order (pd and ctx belong to Port, which
// outlives its endpoints: transport::Transport owns the ports).
class Endpoint {
 public:
  // inline_optional: if the device refuses `inline_bytes`, fall back to no inline data.
  Endpoint(Port& port, std::size_t buffer_bytes, int tx_depth, int rx_depth, std::uint32_t inline_bytes,
           bool inline_optional = false);
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;

  [[nodiscard]] WireInfo local_info() const;
  // RESET -> INIT -> RTR -> RTS against the peer's info (path MTU as DeviceOptions says).
  void connect(const WireInfo& remote, int forced_mtu);

  [[nodiscard]] ibv_qp* qp() const noexcept { return qp_.get(); }
  [[nodiscard]] ibv_cq* cq() const noexcept { return cq_.get(); }
  [[nodiscard]] std::uint32_t lkey() const noexcept { return mr_->lkey; }
  [[nodiscard]] std::uint8_t* data() const noexcept { return buf_.get(); }
  [[nodiscard]] std::size_t size() const noexcept { return bytes_; }
  [[nodiscard]] std::uint32_t inline_bytes() const noexcept { return inline_; }
  [[nodiscard]] std::string where() const;

 private:
  struct FreeBuf {
    void operator()(std::uint8_t* p) const noexcept;
  };
  Port& port_;
  std::size_t bytes_;
  std::unique_ptr<std::uint8_t, FreeBuf> buf_;
  MrPtr mr_;
  CqPtr cq_;
  QpPtr qp_;
  std::uint32_t psn_;
  std::uint32_t inline_ = 0;
};

// The MTUs of one device port as ibv_query_port(3) reports them (sysfs has no MTU for RDMA ports).
struct PortMtu {
  std::string device;
  int port = 0;
  int active_mtu_bytes = 0;  // 256..4096; 0 unknown
  int max_mtu_bytes = 0;
};
// Every port of every device libibverbs sees; a device that cannot be opened or queried is left out
// (its sysfs entry still shows it). Empty without devices.
[[nodiscard]] std::vector<PortMtu> query_port_mtus();

// Port counters (counters/ and hw_counters/ in sysfs), name -> value.
[[nodiscard]] std::map<std::string, std::uint64_t> read_counters(const std::string& device, int port,
                                                                 const std::string& root = "/sys/class/infiniband");

}  // namespace fabscope::verbs
