#include "transport/link.hpp"

#include <fmt/format.h>

#include "core/clock.hpp"
#include "core/error.hpp"

namespace fabscope::transport {

std::unique_ptr<Link> make_mpi_link(const runtime::Comm& comm, int peer, std::size_t max_size, const Options& opt);
std::unique_ptr<Link> make_verbs_link(const runtime::Comm& comm, int peer, std::size_t max_size, const Options& opt);
std::map<std::string, std::uint64_t> verbs_counters(const Options& opt, int local_rank);

bool is_known_transport(std::string_view name) { return name == "mpi" || name == "verbs"; }

bool is_known_verb(std::string_view verb) {
  return verb == "write" || verb == "send" || verb == "read" || verb == "fetch_add" || verb == "cmp_swap";
}

std::map<std::string, std::uint64_t> port_counters(std::string_view transport, const Options& opt, int local_rank) {
  if (transport == "verbs") return verbs_counters(opt, local_rank);
  return {};
}

std::unique_ptr<Link> connect(std::string_view transport, const runtime::Comm& comm, int peer,
                              std::size_t max_size, const Options& opt) {
  const std::int64_t deadline =
      opt.pair_timeout_s > 0 ? core::now_ns() + static_cast<std::int64_t>(opt.pair_timeout_s * 1e9) : 0;
  std::unique_ptr<Link> link;
  if (transport == "mpi") link = make_mpi_link(comm, peer, max_size, opt);
  if (transport == "verbs") link = make_verbs_link(comm, peer, max_size, opt);
  if (link) {
    link->set_deadline(deadline);
    return link;
  }
  throw core::UsageError(fmt::format("--transport: unknown transport '{}'; use mpi or verbs", transport));
}

}  // namespace fabscope::transport
