#include "transport/link.hpp"

#include <fmt/format.h>

#include "core/error.hpp"

namespace fabscope::transport {

std::unique_ptr<Link> make_mpi_link(const runtime::Comm& comm, int peer, std::size_t max_size);

bool is_known_transport(std::string_view name) { return name == "mpi"; }

std::unique_ptr<Link> connect(std::string_view transport, const runtime::Comm& comm, int peer,
                              std::size_t max_size) {
  if (transport == "mpi") return make_mpi_link(comm, peer, max_size);
  throw core::UsageError(fmt::format("--transport: unknown transport '{}'; use mpi", transport));
}

}  // namespace fabscope::transport
