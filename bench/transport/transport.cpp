#include "transport/transport.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/files.hpp"
#include "runtime/comm.hpp"
#include "transport/multi_impl.hpp"
#include "verbs/rdmacm.hpp"
#include "verbs/verbs.hpp"

namespace fabscope::transport {

std::unique_ptr<Link> make_mpi_link(const runtime::Comm& comm, int peer, std::size_t max_size,
                                    const Options& opt);
std::unique_ptr<Link> make_verbs_link(const runtime::Comm& comm, verbs::Port& port, int peer,
                                      std::size_t max_size, const Options& opt);

std::string_view kind_name(Kind kind) { return kind == Kind::kVerbs ? "verbs" : "mpi"; }

std::optional<Kind> parse_kind(std::string_view name) {
  if (name == "mpi") return Kind::kMpi;
  if (name == "verbs") return Kind::kVerbs;
  return std::nullopt;
}

Transport::Transport(const runtime::Comm& comm) : comm_(comm) {}

Transport::~Transport() = default;

verbs::Port& Transport::port(const Options& opt) {
  const int local_rank = comm_.local_rank();
  const std::string key = fmt::format("{}|{}|{}|{}", opt.device, fmt::join(opt.devices, ","),
                                      opt.gid_index, local_rank);
  auto it = ports_.find(key);
  if (it == ports_.end()) {
    const verbs::DeviceOptions d{opt.device, opt.devices, opt.gid_index, 0};
    it = ports_.emplace(key, std::make_unique<verbs::Port>(verbs::open_port(d, local_rank))).first;
  }
  return *it->second;
}

std::unique_ptr<Link> Transport::connect(Kind kind, int peer, std::size_t max_size,
                                         const Options& opt) {
  const std::int64_t deadline =
      opt.pair_timeout_s > 0 ? core::now_ns() + static_cast<std::int64_t>(opt.pair_timeout_s * 1e9)
                             : 0;
  std::unique_ptr<Link> link = kind == Kind::kVerbs
                                   ? make_verbs_link(comm_, port(opt), peer, max_size, opt)
                                   : make_mpi_link(comm_, peer, max_size, opt);
  link->set_deadline(deadline);
  return link;
}

std::unique_ptr<Flows> Transport::connect_flows(Kind kind, const FlowsSpec& spec,
                                                const Options& opt) {
  if (spec.size == 0) throw core::UsageError("flows: message size must be at least 1 byte");
  if (kind == Kind::kVerbs) return flows::make_verbs_flows(comm_, port(opt), spec, opt);
  return flows::make_mpi_flows(comm_, spec, opt);
}

std::map<std::string, std::uint64_t> Transport::port_counters(Kind kind, const Options& opt) {
  if (kind != Kind::kVerbs) return {};
  const verbs::Port& p = port(opt);
  // --cm rdmacm: an rdma_cm device and an IP address on the port are needed; checked here, where
  // preflight opens the port, so a host without them fails before anything runs.
  if (opt.cm == "rdmacm") verbs::check_rdmacm(p);
  return verbs::read_counters(p.device, p.port);
}

std::map<std::string, std::uint64_t> Transport::load_counters(Kind kind, const Options& opt) {
  auto out = port_counters(kind, opt);
  if (kind == Kind::kVerbs) {
    const verbs::Port& p = port(opt);
    const std::string netdev = p.is_roce() && p.gid_index >= 0 ? verbs::port_netdev(p) : "";
    for (const auto& [k, v] : flows::netdev_pause_counters(netdev)) out[k] = v;
  }
  return out;
}

double Transport::port_rate_gbps(Kind kind, const Options& opt) {
  if (kind != Kind::kVerbs) return std::nan("");
  const verbs::Port& p = port(opt);
  const std::string text = core::read_first_line(
      fmt::format("/sys/class/infiniband/{}/ports/{}/rate", p.device, p.port));
  try {
    return std::stod(text);  // "100 Gb/sec (4X EDR)"
  } catch (const std::exception&) {
    return std::nan("");
  }
}

}  // namespace fabscope::transport
