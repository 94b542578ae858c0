#include "verbs/verbs.hpp"

#include <fmt/format.h>
#include <sched.h>
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/log.hpp"

namespace fabscope::verbs {

template <typename T, int (*Destroy)(T*)>
void Destroyer<T, Destroy>::operator()(T* p) const noexcept {
  if (p == nullptr) return;
  // Destructors never throw: a failed destroy (EBUSY: children still alive) is logged.
  if (const int rc = Destroy(p); rc != 0) core::log::warn("verbs: destroy failed: {}", std::strerror(rc));
}
template struct Destroyer<ibv_context, ibv_close_device>;
template struct Destroyer<ibv_pd, ibv_dealloc_pd>;
template struct Destroyer<ibv_mr, ibv_dereg_mr>;
template struct Destroyer<ibv_cq, ibv_destroy_cq>;
template struct Destroyer<ibv_qp, ibv_destroy_qp>;
template struct Destroyer<ibv_comp_channel, ibv_destroy_comp_channel>;

void fail(const std::string& verb, const std::string& where, int err, const std::string& hint) {
  throw core::Error(core::ExitCode::kFailure,
                    fmt::format("{} on {}: {} (errno {}){}", verb, where, std::strerror(err), err,
                                hint.empty() ? "" : "; " + hint));
}

bool is_ipv4_mapped(const ibv_gid& g) noexcept {
  for (int i = 0; i < 10; ++i)
    if (g.raw[i] != 0) return false;
  return g.raw[10] == 0xff && g.raw[11] == 0xff;
}

namespace {

const char* state_name(ibv_port_state s) { return ibv_port_state_str(s); }

std::string memlock_hint() {
  rlimit rl{};
  getrlimit(RLIMIT_MEMLOCK, &rl);
  if (rl.rlim_cur == RLIM_INFINITY) return "check free memory";
  return fmt::format("raise ulimit -l / memlock (now {} KiB; set 'unlimited' in limits.conf or the "
                     "launcher)",
                     rl.rlim_cur / 1024);
}

// "0-3,8-11" -> {0,1,2,3,8,9,10,11}
std::vector<int> parse_cpulist(const std::string& text) {
  std::vector<int> cpus;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto comma = text.find(',', pos);
    const std::string piece = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    const auto dash = piece.find('-');
    try {
      const int lo = std::stoi(piece.substr(0, dash));
      const int hi = dash == std::string::npos ? lo : std::stoi(piece.substr(dash + 1));
      for (int c = lo; c <= hi; ++c) cpus.push_back(c);
    } catch (const std::exception&) {
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return cpus;
}

// Warns when none of this rank's CPUs is on the NIC's NUMA node: traffic then crosses the
// inter-socket link and the numbers describe the host, not the fabric.
void warn_if_far(const std::string& device) {
  int node = -1;
  try {
    node =
        std::stoi(core::read_first_line("/sys/class/infiniband/" + device + "/device/numa_node"));
  } catch (const std::exception&) {
    return;
  }
  if (node < 0) return;
  const auto near = parse_cpulist(
      core::read_first_line("/sys/devices/system/node/node" + std::to_string(node) + "/cpulist"));
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0 || near.empty()) return;
  for (int c : near)
    if (c < CPU_SETSIZE && CPU_ISSET(c, &set)) return;
  core::log::warn("{} is on NUMA node {} but this rank runs on none of its CPUs; bind ranks near their NIC "
                  "(e.g. mpirun --map-by numa --bind-to core, or numactl -N {})",
                  device, node, node);
}

}  // namespace

DeviceList device_list() {
  int n = 0;
  ibv_device** list = ibv_get_device_list(&n);
  return {list, static_cast<std::size_t>(std::max(n, 0))};
}

Port open_port(const DeviceOptions& opt, int local_rank) {
  const DeviceList devs = device_list();
  if (devs.empty()) {
    throw core::Unsupported("no RDMA device found (ibv_get_device_list returned none): this host has no "
                            "InfiniBand/RoCE device or driver; use --transport mpi, or load a driver "
                            "(e.g. rdma_rxe for Soft-RoCE)");
  }
  std::string want = opt.device;
  if (!opt.devices.empty()) want = opt.devices[static_cast<std::size_t>(local_rank) % opt.devices.size()];
  int want_port = 0;
  if (const auto colon = want.find(':'); colon != std::string::npos) {
    try {
      want_port = std::stoi(want.substr(colon + 1));
    } catch (const std::exception&) {
      throw core::UsageError(fmt::format("--device {}: the port after ':' must be a number, e.g. mlx5_0:1", want));
    }
    want.resize(colon);
  }
  std::string names;
  for (std::size_t i = 0; i < devs.size(); ++i)
    names += (i ? ", " : "") + std::string(ibv_get_device_name(devs[i]));
  for (ibv_device* d : devs) {
    const std::string name = ibv_get_device_name(d);
    if (!want.empty() && name != want) continue;
    Port p;
    p.device = name;
    p.ctx.reset(ibv_open_device(d));
    if (!p.ctx) fail("ibv_open_device", name, errno);
    ibv_device_attr dattr{};
    if (const int rc = ibv_query_device(p.ctx.get(), &dattr); rc != 0) fail("ibv_query_device", name, rc);
    const int first = want_port > 0 ? want_port : 1;
    const int last = want_port > 0 ? want_port : dattr.phys_port_cnt;
    if (want_port > dattr.phys_port_cnt) {
      throw core::UsageError(fmt::format("--device {}:{}: the device has {} port(s)", name, want_port, dattr.phys_port_cnt));
    }
    for (int port = first; port <= last; ++port) {
      ibv_port_attr pa{};
      if (const int rc = ibv_query_port(p.ctx.get(), static_cast<std::uint8_t>(port), &pa); rc != 0) {
        fail("ibv_query_port", fmt::format("{}:{}", name, port), rc);
      }
      if (pa.state != IBV_PORT_ACTIVE) {
        if (want_port > 0 || !want.empty()) {
          throw core::UsageError(fmt::format("--device {}:{}: port state is {}, not ACTIVE; check the cable/link "
                                             "(ibstat) or pick another port",
                                             name, port, state_name(pa.state)));
        }
        continue;
      }
      p.port = port;
      p.attr = pa;
      warn_if_far(name);
      const std::string where = p.where();
      if (opt.gid_index >= 0) {
        if (opt.gid_index >= pa.gid_tbl_len) {
          throw core::UsageError(fmt::format("--gid-index {}: {} has GID indices 0..{}", opt.gid_index, where, pa.gid_tbl_len - 1));
        }
        if (ibv_query_gid(p.ctx.get(), static_cast<std::uint8_t>(port), opt.gid_index, &p.gid) != 0 ||
            (p.gid.global.subnet_prefix == 0 && p.gid.global.interface_id == 0)) {
          throw core::UsageError(fmt::format("--gid-index {}: GID entry on {} is empty or unreadable; list valid "
                                             "ones with 'show_gids' or ibv_devinfo -v",
                                             opt.gid_index, where));
        }
        p.gid_index = opt.gid_index;
      } else if (p.is_roce()) {
        // RoCE needs a GRH: prefer the RoCEv2 GID of an IPv4 address (routable, what perftest -x picks).
        int fallback = -1;
        for (int g = 0; g < pa.gid_tbl_len; ++g) {
          ibv_gid_entry e{};
          if (ibv_query_gid_ex(p.ctx.get(), static_cast<std::uint32_t>(port), static_cast<std::uint32_t>(g), &e, 0) != 0) continue;
          if (e.gid_type != IBV_GID_TYPE_ROCE_V2) continue;
          ibv_gid gid{};
          std::memcpy(gid.raw, e.gid.raw, sizeof gid.raw);
          if (is_ipv4_mapped(gid)) {
            p.gid_index = g;
            p.gid = gid;
            break;
          }
          if (fallback < 0) fallback = g;
        }
        if (p.gid_index < 0 && fallback >= 0) {
          p.gid_index = fallback;
          ibv_query_gid(p.ctx.get(), static_cast<std::uint8_t>(port), fallback, &p.gid);
        }
        if (p.gid_index < 0) {
          throw core::UsageError(fmt::format("{}: no RoCEv2 GID found; give the netdev an IP address or pass "
                                             "--gid-index N",
                                             where));
        }
      }
      // One protection domain per opened device: every endpoint on this port registers its memory
      // and creates its QPs in it (ibv_alloc_pd(3)); it is freed before the context (Port's members).
      p.pd.reset(ibv_alloc_pd(p.ctx.get()));
      if (!p.pd) fail("ibv_alloc_pd", p.where(), errno);
      return p;
    }
    if (!want.empty()) break;
  }
  if (!want.empty()) {
    throw core::UsageError(fmt::format("--device {}: no such RDMA device here (found: {})", want, names));
  }
  throw core::UsageError(fmt::format("no active RDMA port on any device ({}); check links with ibv_devinfo", names));
}

void Endpoint::FreeBuf::operator()(std::uint8_t* p) const noexcept { std::free(p); }

Endpoint::Endpoint(Port& port, std::size_t buffer_bytes, int tx_depth, int rx_depth, std::uint32_t inline_bytes,
                   bool inline_optional)
    : port_(port), bytes_(buffer_bytes) {
  void* mem = nullptr;
  const std::size_t rounded = (buffer_bytes + 4095) / 4096 * 4096;
  if (posix_memalign(&mem, 4096, rounded) != 0) fail("posix_memalign", port.where(), ENOMEM);
  std::memset(mem, 0, rounded);
  buf_.reset(static_cast<std::uint8_t*>(mem));
  const int access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_ATOMIC;
  mr_.reset(ibv_reg_mr(port.pd.get(), mem, rounded, access));
  if (!mr_) {
    const int err = errno;
    fail("ibv_reg_mr", fmt::format("{} ({} bytes)", port.where(), rounded), err, err == ENOMEM ? memlock_hint() : "");
  }
  cq_.reset(ibv_create_cq(port.ctx.get(), tx_depth + rx_depth + 1, nullptr, nullptr, 0));
  if (!cq_) fail("ibv_create_cq", fmt::format("{} ({} entries)", port.where(), tx_depth + rx_depth + 1), errno);
  ibv_qp_init_attr init{};
  init.send_cq = cq_.get();
  init.recv_cq = cq_.get();
  init.qp_type = IBV_QPT_RC;
  init.sq_sig_all = 0;
  init.cap.max_send_wr = static_cast<std::uint32_t>(tx_depth);
  init.cap.max_recv_wr = static_cast<std::uint32_t>(rx_depth);
  init.cap.max_send_sge = 1;
  init.cap.max_recv_sge = 1;
  init.cap.max_inline_data = inline_bytes;
  qp_.reset(ibv_create_qp(port.pd.get(), &init));
  if (!qp_ && inline_optional && inline_bytes > 0) {
    init.cap.max_inline_data = 0;
    qp_.reset(ibv_create_qp(port.pd.get(), &init));
  }
  if (!qp_) {
    fail("ibv_create_qp", fmt::format("{} (send {} recv {} inline {})", port.where(), tx_depth, rx_depth, inline_bytes), errno,
         "lower --tx-depth or --inline");
  }
  inline_ = init.cap.max_inline_data;
  std::random_device rd;
  psn_ = rd() & 0xffffff;
}

std::string Endpoint::where() const { return fmt::format("{} qpn 0x{:x}", port_.where(), qp_->qp_num); }

WireInfo Endpoint::local_info() const {
  WireInfo w;
  w.qpn = qp_->qp_num;
  w.psn = psn_;
  w.rkey = mr_->rkey;
  w.lid = port_.attr.lid;
  w.mtu = static_cast<std::uint32_t>(port_.attr.active_mtu);
  std::memcpy(w.gid, port_.gid.raw, 16);
  w.addr = reinterpret_cast<std::uintptr_t>(buf_.get());
  return w;
}

void Endpoint::connect(const WireInfo& remote, int forced_mtu) {
  ibv_qp_attr a{};
  a.qp_state = IBV_QPS_INIT;
  a.pkey_index = 0;
  a.port_num = static_cast<std::uint8_t>(port_.port);
  a.qp_access_flags = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_ATOMIC;
  if (const int rc = ibv_modify_qp(qp_.get(), &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS); rc != 0) {
    fail("ibv_modify_qp(INIT)", where(), rc);
  }
  a = {};
  a.qp_state = IBV_QPS_RTR;
  // Path MTU: the smaller active MTU of the two ends, unless forced (--mtu).
  ibv_mtu mtu = std::min(port_.attr.active_mtu, static_cast<ibv_mtu>(remote.mtu));
  if (forced_mtu > 0) mtu = static_cast<ibv_mtu>(forced_mtu);
  a.path_mtu = mtu;
  a.dest_qp_num = remote.qpn;
  a.rq_psn = remote.psn;
  // Outstanding RDMA reads / atomics: as many as the device allows (perftest does the same; a
  // fixed 16 throttles read bandwidth on devices that take more).
  ibv_device_attr dev{};
  ibv_query_device(port_.ctx.get(), &dev);
  a.max_dest_rd_atomic = static_cast<std::uint8_t>(std::clamp(dev.max_qp_rd_atom, 1, 255));
  a.min_rnr_timer = kQpMinRnrTimer;
  a.ah_attr.dlid = remote.lid;
  a.ah_attr.sl = 0;
  a.ah_attr.src_path_bits = 0;
  a.ah_attr.port_num = static_cast<std::uint8_t>(port_.port);
  if (port_.gid_index >= 0) {
    a.ah_attr.is_global = 1;
    std::memcpy(a.ah_attr.grh.dgid.raw, remote.gid, 16);
    a.ah_attr.grh.sgid_index = static_cast<std::uint8_t>(port_.gid_index);
    a.ah_attr.grh.hop_limit = 64;
  }
  int rc = ibv_modify_qp(qp_.get(), &a,
                         IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
                             IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER);
  if (rc != 0) fail("ibv_modify_qp(RTR)", fmt::format("{} -> remote qpn 0x{:x}", where(), remote.qpn), rc,
                    "check --gid-index and that both ends are on the same fabric");
  a = {};
  a.qp_state = IBV_QPS_RTS;
  a.timeout = kQpTimeout;
  a.retry_cnt = kQpRetryCount;
  a.rnr_retry = kQpRnrRetry;
  a.sq_psn = psn_;
  a.max_rd_atomic = static_cast<std::uint8_t>(std::clamp(dev.max_qp_init_rd_atom, 1, 255));
  rc = ibv_modify_qp(qp_.get(), &a,
                     IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC);
  if (rc != 0) fail("ibv_modify_qp(RTS)", where(), rc);
}

std::map<std::string, std::uint64_t> read_counters(const std::string& device, int port, const std::string& root) {
  namespace fs = std::filesystem;
  std::map<std::string, std::uint64_t> out;
  const fs::path base = fs::path(root) / device / "ports" / std::to_string(port);
  for (const char* dir : {"counters", "hw_counters"}) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(base / dir, ec)) {
      std::ifstream in(e.path());
      std::uint64_t v = 0;
      if (in >> v) out[std::string(dir) + "/" + e.path().filename().string()] = v;
    }
  }
  return out;
}

std::vector<PortMtu> query_port_mtus() {
  // enum ibv_mtu: IBV_MTU_256 = 1 ... IBV_MTU_4096 = 5
  const auto bytes = [](int mtu) { return mtu >= 1 && mtu <= 5 ? 128 << mtu : 0; };
  std::vector<PortMtu> out;
  const DeviceList devs = device_list();
  for (ibv_device* d : devs) {
    const ContextPtr ctx(ibv_open_device(d));
    if (!ctx) continue;
    ibv_device_attr dattr{};
    if (ibv_query_device(ctx.get(), &dattr) != 0) continue;
    for (int port = 1; port <= dattr.phys_port_cnt; ++port) {
      ibv_port_attr pa{};
      if (ibv_query_port(ctx.get(), static_cast<std::uint8_t>(port), &pa) != 0) continue;
      out.push_back({ibv_get_device_name(d), port, bytes(pa.active_mtu), bytes(pa.max_mtu)});
    }
  }
  return out;
}

}  // namespace fabscope::verbs
